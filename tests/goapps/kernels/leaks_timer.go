package main

import (
	"errors"
	"sync/atomic"
	"time"
)

// Category timer: periodic loops (tickers, time.After, time.Sleep) that never
// stop, and timer callbacks that never return.
var timerKernels = []kernel{
	{
		name: "ticker-range-no-exit", calls: 3, run: openClientSession,
		summary: "handleRequest (it handles no request) keeps a session fresh in `for range ticker.C` with no way out; the ticker is never stopped",
		sites:   leakAt("timer", "main.handleRequest", 1),
	},
	{
		name: "ticker-recv-no-exit", calls: 3, run: startStatsReporter,
		summary: "a reporter loops `for { <-t.C; flush() }` on a ticker that is never stopped, one per call",
		sites:   leakAt("timer", "main.(*statsReporter).loop", 1),
	},
	{
		name: "time-tick-no-exit", calls: 2, run: enforceQuota,
		summary: "watchQuota (it watches nothing cancellable) ranges over time.Tick forever, one per tenant call",
		sites:   leakAt("timer", "main.watchQuota", 1),
	},
	{
		name: "afterfunc-blocked-send", calls: 3, run: retryPayment,
		summary: "a time.AfterFunc callback sends its result on an unbuffered channel after the caller stopped waiting",
		sites:   leakAt("timer", "main.scheduleRetry.func1", 1),
	},
	{
		name: "time-after-loop", calls: 3, run: joinCluster,
		summary: "a gossip loop selects on time.After and a quit channel that the leave path forgets to close",
		sites:   leakAt("timer", "main.(*peer).gossip", 1),
	},
	{
		name: "sleep-poll-forever", calls: 3, run: exportReport,
		summary: "a goroutine polls with time.Sleep for an export that was cancelled and will never finish",
		sites:   leakAt("timer", "main.awaitExport.func1", 1),
	},
}

// --- ticker-range-no-exit -----------------------------------------------------------

type clientSession struct {
	lastSeen atomic.Int64
}

func openClientSession() {
	s := &clientSession{}
	go handleRequest(s)
}

func handleRequest(s *clientSession) {
	t := time.NewTicker(300 * time.Millisecond)
	for range t.C {
		s.lastSeen.Store(time.Now().UnixNano())
	}
}

// --- ticker-recv-no-exit ------------------------------------------------------------

type statsReporter struct {
	flushes atomic.Int64
}

func startStatsReporter() {
	r := &statsReporter{}
	go r.loop()
}

func (r *statsReporter) loop() {
	t := time.NewTicker(400 * time.Millisecond)
	for {
		<-t.C
		r.flushes.Add(1)
	}
}

// --- time-tick-no-exit --------------------------------------------------------------

type quota struct {
	tenant string
	checks atomic.Int64
}

func enforceQuota() {
	q := &quota{tenant: "acme"}
	go watchQuota(q)
}

func watchQuota(q *quota) {
	for range time.Tick(350 * time.Millisecond) {
		q.checks.Add(1)
	}
}

// --- afterfunc-blocked-send ---------------------------------------------------------

var errRetryPending = errors.New("retry still pending")

func retryPayment() {
	_ = scheduleRetry("charge 42")
}

func scheduleRetry(op string) error {
	done := make(chan error)
	time.AfterFunc(100*time.Millisecond, func() {
		done <- runOp(op)
	})
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Millisecond):
		return errRetryPending
	}
}

func runOp(op string) error {
	if op == "" {
		return errors.New("empty op")
	}
	return nil
}

// --- time-after-loop ----------------------------------------------------------------

type peer struct {
	addr    string
	quit    chan struct{}
	digests atomic.Int64
}

func joinCluster() {
	p := &peer{addr: "10.0.0.9:7946", quit: make(chan struct{})}
	go p.gossip()
	if err := p.handshake(); err != nil {
		return
	}
	close(p.quit)
}

func (p *peer) handshake() error {
	return errors.New(p.addr + ": protocol version mismatch")
}

func (p *peer) gossip() {
	for {
		select {
		case <-time.After(300 * time.Millisecond):
			p.digests.Add(1)
		case <-p.quit:
			return
		}
	}
}

// --- sleep-poll-forever -------------------------------------------------------------

var exportsDone atomic.Int64

func exportReport() {
	awaitExport(7)
}

func awaitExport(jobID int) {
	go func() {
		for !exportFinished(jobID) {
			time.Sleep(250 * time.Millisecond)
		}
		exportsDone.Add(1)
	}()
}

// exportFinished asks the export service; job 7 was cancelled there and never finishes.
func exportFinished(jobID int) bool {
	return jobID != 7
}
