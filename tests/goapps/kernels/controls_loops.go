package main

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Healthy long-lived loops: watchers, tickers, event loops, contended locks,
// a streaming io.Pipe.
var loopControls = []control{
	{
		name: "watchers-select", start: startWatchers,
		summary: "three config watchers started by a setup goroutine that returned, each in a select on its ticker and the stop channel",
		sites:   liveAt("main.(*configWatcher).run", 3, 3),
	},
	{
		name: "ticker-range-stopped", start: startFlusher,
		summary: "a metrics flusher in `for range ticker.C` that stops its ticker and returns at shutdown",
		sites:   liveAt("main.(*metricsFlusher).run", 1, 1),
	},
	{
		name: "mutex-contention", start: startHotCounters,
		summary: "four goroutines take turns on one Mutex, each holding it for 2 ms: often several wait in Lock",
		sites:   liveAt("main.(*hotCounter).incrementLoop", 4, 4),
	},
	{
		name: "rwmutex-cache", start: startPriceCache,
		summary: "three readers take the read lock every 5 ms; a reloader takes the write lock for 300 ms every 2 s, so readers queue in RLock",
		sites: []csite{
			{suffix: "readers", function: "main.(*priceCache).readLoop", min: 3, max: 3},
			{suffix: "reloader", function: "main.(*priceCache).reload", min: 1, max: 1},
		},
	},
	{
		name: "refresher-sleep", start: startTokenRefresher,
		summary: "a background token refresher in a time.Sleep loop, started by main",
		sites:   liveAt("main.refreshTokens", 1, 1),
	},
	{
		name: "event-loop", start: startEventLoop,
		summary: "a singleton event loop in a select on events, commands, a ticker and stop",
		sites:   liveAt("main.(*eventLoop).run", 1, 1),
	},
	{
		name: "span-batcher", start: startSpanBatcher,
		summary: "a batcher in a select on its input, a flush timer and stop",
		sites:   liveAt("main.(*spanBatcher).run", 1, 1),
	},
	{
		name: "lease-keepalive", start: startLease,
		summary: "a lease renewer in a select on time.After and the root context",
		sites:   liveAt("main.(*lease).keepAlive", 1, 1),
	},
	{
		name: "pipe-stream", start: startLogTail,
		summary: "a log tail reads an io.Pipe line by line while its writer writes a line every 200 ms until shutdown, which closes the pipe",
		sites: []csite{
			{suffix: "reader", function: "main.(*logTail).run", min: 1, max: 1},
			{suffix: "writer", function: "main.streamLogs", min: 1, max: 1},
		},
	},
}

// --- watchers-select ----------------------------------------------------------------

type configWatcher struct {
	path    string
	checks  atomic.Int64
	version atomic.Int64
}

func startWatchers() error {
	go setupWatchers()
	return nil
}

func setupWatchers() {
	for _, p := range []string{"/etc/app/limits.yaml", "/etc/app/routes.yaml", "/etc/app/flags.yaml"} {
		w := &configWatcher{path: p}
		go w.run(time.Second)
	}
}

func (w *configWatcher) run(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.checks.Add(1)
		case <-stop:
			return
		}
	}
}

// --- ticker-range-stopped -----------------------------------------------------------

type metricsFlusher struct {
	stopping atomic.Bool
	flushes  atomic.Int64
}

var flusher = &metricsFlusher{}

func startFlusher() error {
	go flusher.run(750 * time.Millisecond)
	return nil
}

func (f *metricsFlusher) run(every time.Duration) {
	t := time.NewTicker(every)
	for range t.C {
		if f.stopping.Load() {
			t.Stop()
			return
		}
		f.flushes.Add(1)
	}
}

// --- mutex-contention ---------------------------------------------------------------

type hotCounter struct {
	mu sync.Mutex
	n  int
}

var requestsSeen = &hotCounter{}

func startHotCounters() error {
	for i := 0; i < 4; i++ {
		go requestsSeen.incrementLoop()
	}
	return nil
}

func (c *hotCounter) incrementLoop() {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c.mu.Lock()
		c.n++
		time.Sleep(2 * time.Millisecond)
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// --- rwmutex-cache ------------------------------------------------------------------

type priceCache struct {
	mu     sync.RWMutex
	prices map[string]int
	reads  atomic.Int64
}

var prices = &priceCache{prices: map[string]int{"ACME": 10}}

func startPriceCache() error {
	for i := 0; i < 3; i++ {
		go prices.readLoop()
	}
	go prices.reload(2 * time.Second)
	return nil
}

func (c *priceCache) readLoop() {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c.mu.RLock()
		c.reads.Add(int64(c.prices["ACME"]))
		c.mu.RUnlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *priceCache) reload(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.mu.Lock()
			time.Sleep(300 * time.Millisecond) // rebuild the table
			c.prices["ACME"]++
			c.mu.Unlock()
		}
	}
}

// --- refresher-sleep ----------------------------------------------------------------

var tokenVersion atomic.Int64

func startTokenRefresher() error {
	go refreshTokens(2 * time.Second)
	return nil
}

func refreshTokens(every time.Duration) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		time.Sleep(every)
		tokenVersion.Add(1)
	}
}

// --- event-loop ---------------------------------------------------------------------

type eventLoop struct {
	events   chan string
	commands chan func(map[string]int)
	counts   map[string]int
}

var loop = &eventLoop{events: make(chan string), commands: make(chan func(map[string]int)), counts: map[string]int{}}

func startEventLoop() error {
	go loop.run()
	return nil
}

func (l *eventLoop) run() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case ev := <-l.events:
			l.counts[ev]++
		case cmd := <-l.commands:
			cmd(l.counts)
		case <-t.C:
			clear(l.counts)
		case <-stop:
			return
		}
	}
}

// post hands an event to the loop (or drops it at shutdown).
func (l *eventLoop) post(ev string) {
	select {
	case l.events <- ev:
	case <-stop:
	}
}

// --- span-batcher -------------------------------------------------------------------

type spanBatcher struct {
	in      chan string
	batch   []string
	flushed atomic.Int64
}

var spans = &spanBatcher{in: make(chan string, 64)}

func startSpanBatcher() error {
	go spans.run(500 * time.Millisecond)
	return nil
}

func (b *spanBatcher) run(every time.Duration) {
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case s := <-b.in:
			b.batch = append(b.batch, s)
			if len(b.batch) >= 50 {
				b.flush()
			}
		case <-timer.C:
			b.flush()
			timer.Reset(every)
		case <-stop:
			b.flush()
			return
		}
	}
}

func (b *spanBatcher) flush() {
	b.flushed.Add(int64(len(b.batch)))
	b.batch = b.batch[:0]
}

// record hands a span to the batcher, dropping it when the buffer is full.
func (b *spanBatcher) record(s string) {
	select {
	case b.in <- s:
	default:
	}
}

// --- lease-keepalive ----------------------------------------------------------------

type lease struct {
	id       string
	renewals atomic.Int64
}

func startLease() error {
	l := &lease{id: "leader-" + strconv.Itoa(rand.IntN(1000))}
	go l.keepAlive(time.Second)
	return nil
}

func (l *lease) keepAlive(every time.Duration) {
	for {
		select {
		case <-time.After(every):
			l.renewals.Add(1)
		case <-rootCtx.Done():
			return
		}
	}
}

// --- pipe-stream --------------------------------------------------------------------

type logTail struct {
	lines atomic.Int64
}

func startLogTail() error {
	pr, pw := io.Pipe()
	t := &logTail{}
	go streamLogs(pw, 200*time.Millisecond)
	go t.run(pr)
	return nil
}

func streamLogs(pw *io.PipeWriter, every time.Duration) {
	defer pw.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := io.WriteString(pw, "request "+strconv.Itoa(i)+" served\n"); err != nil {
				return
			}
		}
	}
}

func (t *logTail) run(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t.lines.Add(1)
	}
}
