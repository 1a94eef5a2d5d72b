package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Category channel: goroutines blocked on a channel operation whose other side
// is gone (returned early, never started, never closes).
var channelKernels = []kernel{
	{
		name: "timeout-send", calls: 4, run: serveLookup,
		summary: "the caller waits for its worker's result with a timeout and returns; the worker's send on the unbuffered result channel blocks forever (etcd, grpc)",
		sites:   leakAt("channel", "main.fetchWithTimeout.func1", 1),
	},
	{
		name: "ctx-timeout-send", calls: 3, run: renderPreview,
		summary: "the caller gives up when its context times out; the worker, named waitCtx but waiting on no context, blocks sending its result",
		sites:   leakAt("channel", "main.waitCtx", 1),
	},
	{
		name: "error-path-receive", calls: 3, run: reloadConfig,
		summary: "a goroutine waits for the parsed config, but the parser returned on its error path without sending or closing (moby)",
		sites:   leakAt("channel", "main.applyConfig.func1", 1),
	},
	{
		name: "fanout-first-answer", calls: 2, run: readQuorum,
		summary: "five replicas answer on one unbuffered channel, the caller reads the first answer and returns; four senders block forever",
		sites:   leakAt("channel", "main.queryReplicas.func1", 4),
	},
	{
		name: "select-no-cases", calls: 2, run: loadPlugins,
		summary: "a plugin goroutine registers itself and parks in select {} to stay alive: it can never end",
		sites:   leakAt("channel", "main.registerPlugin.func1", 1),
	},
	{
		name: "nil-channel-send", calls: 2, run: recordLogin,
		summary: "an auditLog built as a zero value (not with newAuditLog) has a nil events channel; every emit blocks forever",
		sites:   leakAt("channel", "main.(*auditLog).emit", 2),
	},
	{
		name: "nil-channel-receive", calls: 3, run: startCompactor,
		summary: "a compactor built without its quit channel waits on <-c.quit, a receive from a nil channel (not a context)",
		sites:   leakAt("channel", "main.(*compactor).run", 1),
	},
	{
		name: "range-never-closed", calls: 3, run: exportTable,
		summary: "the consumer ranges over rows; the producer returns on a read error without close(rows)",
		sites:   leakAt("channel", "main.exportRows.func1", 1),
	},
	{
		name: "unsubscribe-no-close", calls: 2, run: watchPrices,
		summary: "Unsubscribe removes the subscriber's channel from the feed but never closes it; the forwarding goroutine ranges over it forever",
		sites:   leakAt("channel", "main.forwardEvents", 2),
	},
	{
		name: "pool-consumer-quit", calls: 2, run: resizeUpload,
		summary: "a worker pool sends results on a channel without a done case; the consumer returns at the first error and three workers block on their sends",
		sites:   leakAt("channel", "main.resizeWorker", 3),
	},
	{
		name: "producer-error-receive", calls: 2, run: syncPeers,
		summary: "tickLoop (no ticker in it) receives peer updates; the producer returns on an unreachable peer without closing the channel (LeakProf)",
		sites:   leakAt("channel", "main.tickLoop", 1),
	},
	{
		name: "select-abandoned", calls: 3, run: startInformer,
		summary: "an informer's loop selects on its stop and update channels; the starter returns on a list error and neither is ever used again (kubernetes)",
		sites:   leakAt("channel", "main.(*informer).processLoop", 1),
	},
	{
		name: "buffered-queue-full", calls: 3, run: shipLogs,
		summary: "the shipper gives up on the first send error; producers fill the queue's buffer and the next one blocks",
		sites:   leakAt("channel", "main.(*logShipper).enqueue", 1),
	},
	{
		name: "semaphore-not-released", calls: 2, run: uploadBatch,
		summary: "a channel used as a semaphore: uploads that fail the quota check return without releasing their slot; the next uploads block acquiring",
		sites:   leakAt("channel", "main.(*uploadLimiter).acquire", 3),
	},
	{
		name: "lock-held-send", calls: 2, run: proposeEntries,
		summary: "append blocks sending to an applier that never started, with the log's Mutex held; every later reader blocks on Lock (cockroach)",
		sites: []site{
			{suffix: "holder", category: "channel", function: "main.(*raftLog).append", perCall: 1},
			{suffix: "waiters", category: "sync", function: "main.(*raftLog).lastIndex", perCall: 3},
		},
	},
}

var errTimeout = errors.New("timeout")

// --- timeout-send ------------------------------------------------------------------

func serveLookup() {
	_, _ = fetchWithTimeout("user:42")
}

func fetchWithTimeout(key string) (string, error) {
	ch := make(chan string)
	go func() {
		ch <- lookupBackend(key, 100*time.Millisecond)
	}()
	select {
	case v := <-ch:
		return v, nil
	case <-time.After(5 * time.Millisecond):
		return "", errTimeout
	}
}

func lookupBackend(key string, latency time.Duration) string {
	time.Sleep(latency)
	return "value of " + key
}

// --- ctx-timeout-send ---------------------------------------------------------------

func renderPreview() {
	_, _ = renderWithDeadline(context.Background(), "draft")
}

func renderWithDeadline(ctx context.Context, doc string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	out := make(chan string)
	go waitCtx(doc, out)
	select {
	case s := <-out:
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitCtx renders the document and hands it back.
func waitCtx(doc string, out chan<- string) {
	time.Sleep(100 * time.Millisecond)
	out <- strings.ToUpper(doc)
}

// --- error-path-receive -------------------------------------------------------------

type config struct {
	ttl int
}

var activeConfig atomic.Pointer[config]

func reloadConfig() {
	_ = applyConfig("ttl=")
}

func applyConfig(raw string) error {
	parsed := make(chan config)
	go func() {
		cfg := <-parsed
		activeConfig.Store(&cfg)
	}()
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	parsed <- cfg
	return nil
}

func parseConfig(raw string) (config, error) {
	k, v, ok := strings.Cut(raw, "=")
	if !ok || k != "ttl" {
		return config{}, fmt.Errorf("bad config %q", raw)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return config{}, fmt.Errorf("bad ttl %q: %w", v, err)
	}
	return config{ttl: n}, nil
}

// --- fanout-first-answer ------------------------------------------------------------

func readQuorum() {
	_ = queryReplicas([]string{"r1", "r2", "r3", "r4", "r5"})
}

func queryReplicas(replicas []string) string {
	answers := make(chan string)
	for i, r := range replicas {
		go func() {
			answers <- askReplica(r, time.Duration(i+1)*time.Millisecond)
		}()
	}
	return <-answers
}

func askReplica(r string, latency time.Duration) string {
	time.Sleep(latency)
	return r + ": v7"
}

// --- select-no-cases ----------------------------------------------------------------

var plugins sync.Map

func loadPlugins() {
	registerPlugin("audit")
}

func registerPlugin(name string) {
	go func() {
		plugins.Store(name, time.Now())
		select {}
	}()
}

// --- nil-channel-send ---------------------------------------------------------------

type auditEvent struct {
	user string
	seq  int
}

type auditLog struct {
	events chan auditEvent
}

func newAuditLog() *auditLog {
	return &auditLog{events: make(chan auditEvent, 64)}
}

func recordLogin() {
	a := &auditLog{}
	for i := 0; i < 2; i++ {
		go a.emit(auditEvent{user: "alice", seq: i})
	}
}

func (a *auditLog) emit(ev auditEvent) {
	a.events <- ev
}

// --- nil-channel-receive ------------------------------------------------------------

type compactor struct {
	quit chan struct{}
	runs int
}

func startCompactor() {
	c := &compactor{}
	go c.run()
}

func (c *compactor) run() {
	c.runs++
	<-c.quit
	c.runs = 0
}

// --- range-never-closed -------------------------------------------------------------

type row []string

var csvCells atomic.Int64

func exportTable() {
	_ = exportRows("orders")
}

func exportRows(table string) error {
	rows := make(chan row)
	go func() {
		for r := range rows {
			csvCells.Add(int64(len(r)))
		}
	}()
	for i := 0; i < 3; i++ {
		r, err := readRow(table, i)
		if err != nil {
			return err
		}
		rows <- r
	}
	close(rows)
	return nil
}

func readRow(table string, i int) (row, error) {
	if i == 2 {
		return nil, fmt.Errorf("%s: row %d: checksum mismatch", table, i)
	}
	return row{table, strconv.Itoa(i)}, nil
}

// --- unsubscribe-no-close -----------------------------------------------------------

type event struct {
	topic string
	seq   int
}

// feed fans events out to its subscribers; a slow subscriber misses events.
type feed struct {
	topic string
	mu    sync.Mutex
	subs  map[int]chan event
	next  int
	seq   int
}

func newFeed(topic string) *feed {
	return &feed{topic: topic, subs: map[int]chan event{}}
}

func (f *feed) Subscribe() (int, <-chan event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	ch := make(chan event, 8)
	f.subs[f.next] = ch
	return f.next, ch
}

func (f *feed) Unsubscribe(id int) {
	f.mu.Lock()
	delete(f.subs, id)
	f.mu.Unlock()
}

func (f *feed) publish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	for _, ch := range f.subs {
		select {
		case ch <- event{topic: f.topic, seq: f.seq}:
		default:
		}
	}
}

var (
	priceFeed = newFeed("prices")
	lastPrice atomic.Int64
)

func watchPrices() {
	for _, sym := range []string{"ACME", "INIT"} {
		id, ch := priceFeed.Subscribe()
		go forwardEvents(sym, ch)
		defer priceFeed.Unsubscribe(id)
	}
}

func forwardEvents(sym string, ch <-chan event) {
	for ev := range ch {
		lastPrice.Store(int64(ev.seq + len(sym)))
	}
}

// --- pool-consumer-quit -------------------------------------------------------------

type resizeResult struct {
	path string
	err  error
}

func resizeUpload() {
	_ = resizeImages([]string{"a.png", "b.png", "c.png", "d.png"})
}

func resizeImages(paths []string) error {
	jobs := make(chan string, len(paths))
	for _, p := range paths {
		jobs <- p
	}
	close(jobs)
	results := make(chan resizeResult)
	for i := 0; i < 4; i++ {
		go resizeWorker(jobs, results)
	}
	for range paths {
		if r := <-results; r.err != nil {
			return r.err
		}
	}
	return nil
}

func resizeWorker(jobs <-chan string, results chan<- resizeResult) {
	for p := range jobs {
		results <- resize(p)
	}
}

func resize(p string) resizeResult {
	return resizeResult{path: p, err: fmt.Errorf("%s: no such file", p)}
}

// --- producer-error-receive ---------------------------------------------------------

var peersApplied atomic.Int64

func syncPeers() {
	_ = pushUpdates([]string{"10.0.0.1", "bad-peer", "10.0.0.3"})
}

func pushUpdates(peers []string) error {
	updates := make(chan string)
	go tickLoop(updates)
	for _, p := range peers {
		if strings.HasPrefix(p, "bad") {
			return fmt.Errorf("peer %s unreachable", p)
		}
		updates <- p
	}
	close(updates)
	return nil
}

func tickLoop(updates <-chan string) {
	for {
		p, ok := <-updates
		if !ok {
			return
		}
		peersApplied.Add(int64(len(p)))
	}
}

// --- select-abandoned ---------------------------------------------------------------

type informer struct {
	stopCh  chan struct{}
	updates chan string
	handled int
}

func startInformer() {
	inf := &informer{stopCh: make(chan struct{}), updates: make(chan string)}
	go inf.processLoop()
	items, err := inf.list()
	if err != nil {
		return
	}
	for _, it := range items {
		inf.updates <- it
	}
	close(inf.stopCh)
}

func (i *informer) list() ([]string, error) {
	return nil, errors.New("list pods: 410 Gone")
}

func (i *informer) processLoop() {
	for {
		select {
		case <-i.stopCh:
			return
		case u := <-i.updates:
			i.handled += len(u)
		}
	}
}

// --- buffered-queue-full ------------------------------------------------------------

type logShipper struct {
	queue chan string
}

func shipLogs() {
	s := &logShipper{queue: make(chan string, 4)}
	go s.run()
	for i := 0; i < 6; i++ {
		go s.enqueue(fmt.Sprintf("line %d", i))
	}
}

func (s *logShipper) run() {
	for line := range s.queue {
		if err := s.send(line); err != nil {
			return
		}
	}
}

func (s *logShipper) send(line string) error {
	return fmt.Errorf("collector unreachable: dropped %q", line)
}

func (s *logShipper) enqueue(line string) {
	s.queue <- line
}

// --- semaphore-not-released ---------------------------------------------------------

type uploadLimiter struct {
	slots chan struct{}
}

func uploadBatch() {
	l := &uploadLimiter{slots: make(chan struct{}, 2)}
	for i := 0; i < 5; i++ {
		go func() {
			_ = l.upload(fmt.Sprintf("part-%d", i))
		}()
	}
}

func (l *uploadLimiter) upload(name string) error {
	l.acquire()
	if err := checkQuota(name); err != nil {
		return err
	}
	defer l.release()
	return nil
}

func (l *uploadLimiter) acquire() {
	l.slots <- struct{}{}
}

func (l *uploadLimiter) release() {
	<-l.slots
}

func checkQuota(name string) error {
	return fmt.Errorf("%s: quota exceeded", name)
}

// --- lock-held-send -----------------------------------------------------------------

type raftLog struct {
	mu      sync.Mutex
	entries []string
	applied chan int
}

func proposeEntries() {
	l := &raftLog{applied: make(chan int)}
	go l.append("put k v")
	// Status requests arrive a little later and read the log.
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 3; i++ {
		go l.lastIndex()
	}
}

func (l *raftLog) append(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	l.applied <- len(l.entries)
}

func (l *raftLog) lastIndex() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
