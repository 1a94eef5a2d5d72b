package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Healthy worker pools and the long-lived goroutines around them. Everything
// here lives until shutdown (SIGTERM or SIGINT), which closes stop and
// cancels rootCtx.
var poolControls = []control{
	{
		name: "pool-busy-main", start: startThumbnailPool,
		summary: "four workers started by main (their creator is alive) range over a jobs channel that gets a job every 400 ms",
		sites:   liveAt("main.thumbnailWorker", 4, 4),
	},
	{
		name: "pool-busy-creator-gone", start: startIndexers,
		summary: "four workers started by a bootstrap goroutine that returned range over a jobs channel that gets a job every 400 ms",
		sites:   liveAt("main.indexWorker", 4, 4),
	},
	{
		name: "pool-idle-main", start: startArchivePool,
		summary: "three archive workers started by main wait for jobs that are rare (none come during a test)",
		sites:   liveAt("main.archiveWorker", 3, 3),
	},
	{
		name: "pool-idle-creator-gone", start: startReindexPool,
		summary: "three reindex workers started by an init goroutine that returned wait on a package-level jobs channel that gets no work during a test",
		sites:   liveAt("main.reindexWorker", 3, 3),
	},
	{
		name: "job-feeder", start: startJobFeeder,
		summary: "a singleton that feeds the busy pools from a ticker until shutdown",
		sites:   liveAt("main.feedJobs", 1, 1),
	},
	{
		name: "cond-queue", start: startWorkQueue,
		summary: "two consumers wait on a sync.Cond for items that a producer pushes every 500 ms",
		sites: []csite{
			{suffix: "consumers", function: "main.(*workQueue).consume", min: 2, max: 2},
			{suffix: "producer", function: "main.produceWork", min: 1, max: 1},
		},
	},
	{
		name: "pubsub-live", start: startDashboards,
		summary: "three dashboards subscribed to a feed that publishes every 500 ms range over their channels; a closer started with them unsubscribes and closes them at shutdown",
		sites: []csite{
			{suffix: "subscribers", function: "main.(*dashboard).consume", min: 3, max: 3},
			{suffix: "closer", function: "main.closeDashboards", min: 1, max: 1},
		},
	},
	{
		name: "feed-publishers", start: startFeeds,
		summary: "one publisher loop per feed (prices and news), ticker and stop channel",
		sites:   liveAt("main.(*feed).run", 2, 2),
	},
	{
		name: "shutdown-signal", start: startShutdownHandler,
		summary: "main's shutdown handler waits on a signal.Notify channel",
		sites:   liveAt("main.waitForShutdown", 1, 1),
	},
	{
		name: "shutdown-ctx", start: startCloser,
		summary: "a goroutine started by main waits on <-ctx.Done() of the root context, which shutdown cancels",
		sites:   liveAt("main.closeOnShutdown", 1, 1),
	},
}

var (
	stop              = make(chan struct{})
	rootCtx, shutdown = context.WithCancel(context.Background())
)

// --- pools --------------------------------------------------------------------------

var (
	thumbJobs   = make(chan string)
	indexJobs   = make(chan string)
	archiveJobs = make(chan string)
	reindexJobs = make(chan int)
	jobsDone    atomic.Int64
)

func startThumbnailPool() error {
	for i := 0; i < 4; i++ {
		go thumbnailWorker(thumbJobs)
	}
	return nil
}

func thumbnailWorker(jobs <-chan string) {
	for name := range jobs {
		time.Sleep(2 * time.Millisecond)
		jobsDone.Add(int64(len(name)))
	}
}

func startIndexers() error {
	go bootstrapIndexers()
	return nil
}

func bootstrapIndexers() {
	for i := 0; i < 4; i++ {
		go indexWorker(indexJobs)
	}
}

func indexWorker(jobs <-chan string) {
	for doc := range jobs {
		time.Sleep(time.Millisecond)
		jobsDone.Add(int64(len(doc)))
	}
}

func startArchivePool() error {
	for i := 0; i < 3; i++ {
		go archiveWorker(archiveJobs)
	}
	return nil
}

func archiveWorker(jobs <-chan string) {
	for path := range jobs {
		jobsDone.Add(int64(len(path)))
	}
}

func startReindexPool() error {
	go initReindexPool()
	return nil
}

func initReindexPool() {
	for i := 0; i < 3; i++ {
		go reindexWorker(i)
	}
}

func reindexWorker(id int) {
	for shard := range reindexJobs {
		jobsDone.Add(int64(shard + id))
	}
}

func startJobFeeder() error {
	go feedJobs()
	return nil
}

func feedJobs() {
	t := time.NewTicker(400 * time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-stop:
			close(thumbJobs)
			close(indexJobs)
			return
		case <-t.C:
			n++
			thumbJobs <- "img"
			indexJobs <- "doc"
		}
	}
}

// --- cond-queue ---------------------------------------------------------------------

type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []int
	closed bool
}

var queue = newWorkQueue()

func newWorkQueue() *workQueue {
	q := &workQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *workQueue) push(item int) {
	q.mu.Lock()
	q.items = append(q.items, item)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *workQueue) consume() {
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		item := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		jobsDone.Add(int64(item))
	}
}

func startWorkQueue() error {
	for i := 0; i < 2; i++ {
		go queue.consume()
	}
	go produceWork(queue)
	return nil
}

func produceWork(q *workQueue) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			q.close()
			return
		default:
		}
		time.Sleep(500 * time.Millisecond)
		q.push(i)
	}
}

// --- pubsub-live --------------------------------------------------------------------

var newsFeed = newFeed("news")

type dashboard struct {
	name string
	seen atomic.Int64
}

func startDashboards() error {
	go openDashboards()
	return nil
}

func openDashboards() {
	var ids []int
	for _, name := range []string{"ops", "sales", "exec"} {
		d := &dashboard{name: name}
		id, ch := newsFeed.Subscribe()
		ids = append(ids, id)
		go d.consume(ch)
	}
	go closeDashboards(ids)
}

// closeDashboards unsubscribes the dashboards at shutdown, which ends their loops.
func closeDashboards(ids []int) {
	<-stop
	for _, id := range ids {
		newsFeed.unsubscribeAndClose(id)
	}
}

func (d *dashboard) consume(ch <-chan event) {
	for ev := range ch {
		d.seen.Store(int64(ev.seq))
	}
}

// unsubscribeAndClose is the correct Unsubscribe: the subscriber's range ends.
func (f *feed) unsubscribeAndClose(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.subs[id]; ok {
		delete(f.subs, id)
		close(ch)
	}
}

func startFeeds() error {
	go priceFeed.run(700 * time.Millisecond)
	go newsFeed.run(500 * time.Millisecond)
	return nil
}

func (f *feed) run(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f.publish()
		}
	}
}

// --- shutdown -----------------------------------------------------------------------

func startShutdownHandler() error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go waitForShutdown(sig)
	return nil
}

func waitForShutdown(sig <-chan os.Signal) {
	<-sig
	shutdown()
	close(stop)
	flusher.stopping.Store(true)
	time.Sleep(200 * time.Millisecond)
	os.Exit(0)
}

var resourcesClosed atomic.Bool

func startCloser() error {
	go closeOnShutdown(rootCtx)
	return nil
}

func closeOnShutdown(ctx context.Context) {
	<-ctx.Done()
	resourcesClosed.Store(true)
}
