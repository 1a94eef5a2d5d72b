package main

import (
	"context"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Category context: goroutines waiting for a context that is never cancelled.
var contextKernels = []kernel{
	{
		name: "ctx-background", calls: 3, run: openStream,
		summary: "pumpChannel (no channel pumping in it) waits on <-ctx.Done() of context.Background(), which is never done",
		sites:   leakAt("context", "main.pumpChannel", 1),
	},
	{
		name: "ctx-withvalue-background", calls: 3, run: startSession,
		summary: "the session reaper waits on ctx.Done() of WithValue(Background()): the request's context was needed",
		sites:   leakAt("context", "main.(*session).reap", 1),
	},
	{
		name: "ctx-withoutcancel", calls: 2, run: persistOrder,
		summary: "background work detached with context.WithoutCancel waits on its Done(), which is nil",
		sites:   leakAt("context", "main.persistAsync.func1", 1),
	},
	{
		name: "ctx-cancel-dropped", calls: 3, run: traceRequest,
		summary: "a span finisher waits on a WithCancel context whose cancel func is dropped",
		sites:   leakAt("context", "main.attachSpan.func1", 1),
	},
	{
		name: "ctx-custom-parent", calls: 3, run: runMaintenance,
		summary: "WithCancel of a Context type of our own (a stopper) starts context's propagateCancel goroutine; the cancel func is dropped and the stopper never stops (cockroach)",
		sites:   leakAt("context", "context.(*cancelCtx).propagateCancel.func2", 1),
	},
	{
		name: "notifycontext-not-stopped", calls: 2, run: runJob,
		summary: "signal.NotifyContext per job, its stop func dropped: its goroutine waits for a signal or a cancel that never comes",
		sites:   leakAt("context", "os/signal.NotifyContext.func1", 1),
	},
}

// --- ctx-background -----------------------------------------------------------------

type stream struct {
	name   string
	closed atomic.Bool
}

func openStream() {
	s := &stream{name: "orders"}
	go pumpChannel(context.Background(), s)
}

func pumpChannel(ctx context.Context, s *stream) {
	<-ctx.Done()
	s.closed.Store(true)
}

// --- ctx-withvalue-background -------------------------------------------------------

type sessionKey struct{}

type session struct {
	user    string
	expired atomic.Bool
}

func startSession() {
	ctx := context.WithValue(context.Background(), sessionKey{}, "alice")
	s := &session{user: "alice"}
	go s.reap(ctx)
}

func (s *session) reap(ctx context.Context) {
	<-ctx.Done()
	s.expired.Store(true)
}

// --- ctx-withoutcancel --------------------------------------------------------------

var ordersPersisted atomic.Int64

func persistOrder() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	persistAsync(ctx, 42)
}

func persistAsync(ctx context.Context, order int) {
	bg := context.WithoutCancel(ctx)
	go func() {
		<-bg.Done()
		ordersPersisted.Add(int64(order))
	}()
}

// --- ctx-cancel-dropped -------------------------------------------------------------

type span struct {
	name     string
	finished atomic.Bool
}

func traceRequest() {
	attachSpan("GET /orders")
}

func attachSpan(name string) *span {
	ctx, _ := context.WithCancel(context.Background())
	sp := &span{name: name}
	go func() {
		<-ctx.Done()
		sp.finished.Store(true)
	}()
	return sp
}

// --- ctx-custom-parent --------------------------------------------------------------

// stopper is a Context of our own: done when the server stops.
type stopper struct {
	quit chan struct{}
}

func (s *stopper) Deadline() (time.Time, bool) { return time.Time{}, false }
func (s *stopper) Done() <-chan struct{}       { return s.quit }
func (s *stopper) Value(key any) any           { return nil }
func (s *stopper) Err() error                  { return s.err() }
func (s *stopper) err() error {
	select {
	case <-s.quit:
		return context.Canceled
	default:
		return nil
	}
}

var serverStopper = &stopper{quit: make(chan struct{})}

var maintenanceRuns atomic.Int64

func runMaintenance() {
	ctx, _ := context.WithCancel(serverStopper)
	vacuum(ctx)
}

func vacuum(ctx context.Context) {
	if ctx.Err() == nil {
		maintenanceRuns.Add(1)
	}
}

// --- notifycontext-not-stopped ------------------------------------------------------

var jobsRun atomic.Int64

func runJob() {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGUSR1)
	if ctx.Err() == nil {
		jobsRun.Add(1)
	}
}
