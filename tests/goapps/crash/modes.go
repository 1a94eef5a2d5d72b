package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
)

func init() {
	register("panic", modePanic)
	register("panic-multiline", modePanicMultiline)
	register("repanic", modeRepanic)
	register("repanic-new", modeRepanicNew)
	register("nilmap", modeNilMap)
	register("segv", modeSegv)
	register("deadlock", modeDeadlock)
	register("concurrent-map", modeConcurrentMap)
	register("stackoverflow", modeStackOverflow)
	register("sigquit", modeSigquit)
	register("ancestors", modeAncestors)
	register("labels", modeLabels)
	register("stack-small", modeStackSmall)
	register("log", modeLog)
	register("running", modeRunning)
}

// self records the goroutine running the mode (goroutine 1, main).
func self(t *Truth, state, fn string) {
	t.Goroutines = append(t.Goroutines, G{ID: t.Current, State: state, Func: fn})
}

//go:noinline
func doPanic(v interface{}) { panic(v) }

// blockMain parks the main goroutine for good.
//
//go:noinline
func blockMain() { <-make(chan int) }

func modePanic(t *Truth) {
	startParked(t, allKinds)
	self(t, "running", "main.doPanic")
	t.Prologue = []string{"panic: boom"}
	emit(t)
	doPanic("boom")
}

func modePanicMultiline(t *Truth) {
	self(t, "running", "main.doPanic")
	t.Prologue = []string{"panic: first line", "second line", "third line"}
	if goMinor() >= 23 {
		t.Prologue = []string{"panic: first line", "\tsecond line", "\tthird line"}
	}
	emit(t)
	doPanic(errors.New("first line\nsecond line\nthird line"))
}

func modeRepanic(t *Truth) {
	self(t, "running", "main.repanicSame.func1")
	t.Prologue = []string{"panic: boom [recovered]", "\tpanic: boom"}
	if goMinor() >= 25 {
		t.Prologue = []string{"panic: boom [recovered, repanicked]"}
	}
	emit(t)
	repanicSame()
}

//go:noinline
func repanicSame() {
	defer func() { panic(recover()) }()
	doPanic("boom")
}

func modeRepanicNew(t *Truth) {
	self(t, "running", "main.repanicNew.func1")
	t.Prologue = []string{"panic: first [recovered]", "\tpanic: second"}
	emit(t)
	repanicNew()
}

//go:noinline
func repanicNew() {
	defer func() {
		_ = recover()
		panic("second")
	}()
	doPanic("first")
}

func modeNilMap(t *Truth) {
	self(t, "running", "main.writeNilMap")
	t.Prologue = []string{"panic: assignment to entry in nil map"}
	emit(t)
	writeNilMap(nil)
}

//go:noinline
func writeNilMap(m map[string]int) { m["k"] = 1 }

type node struct{ next *node }

func modeSegv(t *Truth) {
	startParked(t, fewKinds)
	self(t, "running", "main.derefNil")
	t.Prologue = []string{"panic: runtime error: invalid memory address or nil pointer dereference"}
	emit(t)
	derefNil(nil)
}

//go:noinline
func derefNil(n *node) *node { return n.next }

func modeDeadlock(t *Truth) {
	startParked(t, deadlockKinds)
	self(t, "chan receive", "main.blockMain")
	t.Scope = "all"
	t.Prologue = []string{"fatal error: all goroutines are asleep - deadlock!"}
	emit(t)
	blockMain()
}

func modeConcurrentMap(t *Truth) {
	m := map[int]int{}
	ids, start := make(chan int64), make(chan struct{})
	go mapWriter(m, ids, start)
	go mapWriter(m, ids, start)
	for i := 0; i < 2; i++ {
		t.Goroutines = append(t.Goroutines, G{ID: <-ids, Func: "main.mapWriter",
			Creator: t.Current, CreatedBy: "main.modeConcurrentMap",
			Note: "one of the writers throws; the other is running or runnable"})
	}
	self(t, "chan receive", "main.blockMain")
	t.Current = 0 // the throwing writer, unknown in advance
	t.Prologue = []string{"fatal error: concurrent map writes"}
	emit(t)
	close(start)
	blockMain()
}

//go:noinline
func mapWriter(m map[int]int, ids chan<- int64, start <-chan struct{}) {
	ids <- goid()
	<-start
	for i := 0; ; i++ {
		m[i%64] = i
	}
}

func modeStackOverflow(t *Truth) {
	self(t, "running", "main.recurse")
	t.Scope = "all" // a runtime throw prints every goroutine
	t.Prologue = []string{"runtime: goroutine stack exceeds 1000000000-byte limit", "fatal error: stack overflow"}
	emit(t)
	recurse(0)
}

//go:noinline
func recurse(n int) int { return recurse(n+1) + 1 }

func modeSigquit(t *Truth) {
	startParked(t, allKinds)
	self(t, "chan receive", "main.blockMain")
	t.Scope = "all" // SIGQUIT dumps every goroutine at any level but none
	t.Prologue = []string{"SIGQUIT: quit"}
	emit(t)
	ready()
	blockMain()
}

func modeAncestors(t *Truth) {
	ids := make(chan int64)
	go ancestorA(ids)
	a, b, c := <-ids, <-ids, <-ids
	settle()
	t.Goroutines = append(t.Goroutines,
		G{ID: a, State: "chan receive", Func: "main.ancestorA", Creator: t.Current,
			CreatedBy: "main.modeAncestors", Ancestors: []int64{t.Current}},
		G{ID: c, State: "chan receive", Func: "main.ancestorC", Creator: b,
			CreatedBy: "main.ancestorB", Ancestors: []int64{b, a, t.Current},
			Note: "creator exited before the dump"})
	self(t, "running", "main.doPanic")
	t.Extra = map[string]string{"exited": fmt.Sprint(b)}
	t.Prologue = []string{"panic: ancestors"}
	emit(t)
	doPanic("ancestors")
}

//go:noinline
func ancestorA(ids chan<- int64) {
	ids <- goid()
	go ancestorB(ids)
	<-make(chan int)
}

//go:noinline
func ancestorB(ids chan<- int64) {
	ids <- goid()
	go ancestorC(ids)
}

//go:noinline
func ancestorC(ids chan<- int64) {
	ids <- goid()
	<-make(chan int)
}

// Labels: a key with a space, a value with quotes, a bare path value, an
// empty value and one with a tab and a non-ASCII letter, inherited by goroutines started inside pprof.Do.
func modeLabels(t *Truth) {
	ctx := context.Background()
	first := map[string]string{"span id": "s-1", "user": `say "hi"`, "path": "/api/v1", "empty": "",
		"note": "caf\u00e9\t1"}
	second := map[string]string{"trace_id": "t-1"}
	startLabelled(ctx, t, first, []string{"chanrecv", "select"})
	startLabelled(ctx, t, second, []string{"sleep"})
	startParked(t, []string{"chansend"})
	// No pprof.Do here: its deferred restore would run during the panic and
	// clear the labels before the traceback is printed.
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("request", "r/1")))
	self(t, "running", "main.doPanic")
	t.Goroutines[len(t.Goroutines)-1].Labels = map[string]string{"request": "r/1"}
	t.Prologue = []string{"panic: labelled"}
	emit(t)
	doPanic("labelled")
}

func startLabelled(ctx context.Context, t *Truth, labels map[string]string, names []string) {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k, v)
	}
	before := len(t.Goroutines)
	pprof.Do(ctx, pprof.Labels(kv...), func(context.Context) { startParked(t, names) })
	for i := before; i < len(t.Goroutines); i++ {
		t.Goroutines[i].Labels = labels
	}
}

func modeStackSmall(t *Truth) {
	startParked(t, allKinds)
	self(t, "running", "main.modeStackSmall")
	t.Scope = "truncated"
	buf := make([]byte, 1500)
	t.Extra = map[string]string{"buffer": "1500"}
	emit(t)
	n := runtime.Stack(buf, true)
	os.Stderr.Write(buf[:n])
}

// modeLog is a small service: it logs, net/http recovers a handler panic and
// logs that goroutine's stack, the service logs on, then dies of a panic.
func modeLog(t *Truth) {
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	logger.Printf("service starting pid=%d", os.Getpid())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	handlerID := make(chan int64, 1)
	srv := &http.Server{ErrorLog: logger, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlePanic(handlerID)
	})}
	go srv.Serve(ln)
	logger.Printf("listening on %s", ln.Addr())
	_, err = http.Get("http://" + ln.Addr().String() + "/boom")
	logger.Printf("GET /boom: %v", err)
	t.Goroutines = append(t.Goroutines, G{ID: <-handlerID, State: "running", Func: "main.handlePanic",
		Note: "logged by net/http, the first dump in the log"})
	self(t, "running", "main.doPanic")
	t.Scope = "all" // the handler's logged stack and the final panic
	t.Prologue = []string{"panic: giving up after handler panic"}
	logger.Printf("handler panicked; flushing state")
	logger.Printf("shutting down")
	emit(t)
	doPanic("giving up after handler panic")
}

//go:noinline
func handlePanic(id chan<- int64) {
	id <- goid()
	panic("handler boom")
}

// modeRunning panics while another goroutine spins on another thread. Run
// with GODEBUG=asyncpreemptoff=1 so the spinner cannot be stopped: its
// stack prints as "goroutine running on other thread; stack unavailable".
func modeRunning(t *Truth) {
	ids := make(chan int64)
	go spin(ids)
	t.Goroutines = append(t.Goroutines, G{ID: <-ids, State: "running", Func: "main.spin",
		Creator: t.Current, CreatedBy: "main.modeRunning", Note: "no stack: running on another thread"})
	settle()
	self(t, "running", "main.doPanic")
	t.Prologue = []string{"panic: while spinning"}
	emit(t)
	doPanic("while spinning")
}

var spins int

//go:noinline
func spin(ids chan<- int64) {
	ids <- goid()
	for {
		spins++
	}
}
