package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Record is what the truth file says about one goroutine.
type Record struct {
	ID int64 `json:"id"`
	// Kind names the scenario: chan_receive, mutex, deep, orphan, ...
	Kind string `json:"kind"`
	// State is the exact status or wait reason this Go version prints.
	State string `json:"state"`
	// Function is the innermost main.* function on the goroutine's stack.
	Function string            `json:"function"`
	Labels   map[string]string `json:"labels"`
	Locked   bool              `json:"locked"`
	// Orphan: the creator goroutine had exited when the truth was written.
	Orphan bool `json:"orphan"`
	// Leak: the goroutineleak profile reports it (where that profile exists).
	Leak bool `json:"leak"`
	// Creator is the id of the goroutine whose `go` statement started this one (0: none).
	Creator int64 `json:"creator"`
	// WaitMinutes is the least ", N minutes" its debug=2 header shows.
	WaitMinutes int `json:"wait_minutes"`
}

var (
	regMu sync.Mutex
	reg   = map[int64]*Record{}
)

// register records the calling goroutine; Function is the caller's function,
// the frame the goroutine then blocks in.
//
//go:noinline
func register(kind string, creator int64) {
	add(kind, creator, nil, callerName())
}

//go:noinline
func registerLabeled(kind string, creator int64, labels map[string]string) {
	add(kind, creator, labels, callerName())
}

// callerName is the function that called register/registerLabeled (both not
// inlined, so the frame count is fixed); CallersFrames resolves inlining.
//
//go:noinline
func callerName() string {
	pcs := make([]uintptr, 1)
	runtime.Callers(3, pcs)
	f, _ := runtime.CallersFrames(pcs).Next()
	return f.Function
}

func add(kind string, creator int64, labels map[string]string, fn string) {
	r := &Record{
		ID:       curID(),
		Kind:     kind,
		State:    expectedState(kind),
		Function: fn,
		Labels:   labels,
		Locked:   kind == "locked",
		Leak:     kind == "leak" || kind == "select_no_cases" || kind == "nil_chan_receive" || kind == "nil_chan_send",
		Creator:  creator,
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	regMu.Lock()
	reg[r.ID] = r
	regMu.Unlock()
}

func records() []*Record {
	regMu.Lock()
	defer regMu.Unlock()
	return sortedRecords(reg)
}

func registered() int {
	regMu.Lock()
	defer regMu.Unlock()
	return len(reg)
}

// expectedState is the string this Go version prints for a kind's goroutines:
// 1.20 split "semacquire" into the sync.Mutex/RWMutex reasons, 1.24 did the same
// for sync.WaitGroup.Wait.
func expectedState(kind string) string {
	minor := goMinor()
	switch kind {
	case "chan_send":
		return "chan send"
	case "select":
		return "select"
	case "select_no_cases":
		return "select (no cases)"
	case "nil_chan_receive":
		return "chan receive (nil chan)"
	case "nil_chan_send":
		return "chan send (nil chan)"
	case "mutex":
		return since(minor, 20, "sync.Mutex.Lock")
	case "rwmutex_rlock":
		return since(minor, 20, "sync.RWMutex.RLock")
	case "rwmutex_lock":
		return since(minor, 20, "sync.RWMutex.Lock")
	case "waitgroup":
		return since(minor, 24, "sync.WaitGroup.Wait")
	case "cond":
		return "sync.Cond.Wait"
	case "sleep":
		return "sleep"
	case "io_wait", "server":
		return "IO wait"
	case "syscall":
		return "syscall"
	}
	return "chan receive"
}

func since(minor, first int, reason string) string {
	if minor >= first {
		return reason
	}
	return "semacquire"
}

// Everything a parked goroutine waits on lives in a global, so the goroutine
// leak detector (which treats globals as roots) reports only the goroutines
// built to leak.
var (
	recvCh     = make(chan int) // never sent on
	sendCh     = make(chan int) // never received from
	selA, selB = make(chan int), make(chan int)
	heldMu     sync.Mutex // locked by main, never unlocked
	rwMutexes  []*sync.RWMutex
	neverDone  sync.WaitGroup
	condMu     sync.Mutex
	cond       = sync.NewCond(&condMu)
	ioConns    []net.Conn
	pipeFDs    [][2]int
)

// weights: goroutines per kind are weight*n, so kinds have distinct counts.
const (
	wChanReceive = 3
	wMutex       = 3
	wTwo         = 2
	wOne         = 1
)

// startAll launches every scenario from main; counts scale with n.
func startAll(n, depth int, addr string) {
	me := curID()
	want := registered()
	launch := func(count int, f func(i int)) {
		for i := 0; i < count; i++ {
			f(i)
		}
		want += count
	}
	launch(wChanReceive*n, func(int) { go blockChanReceive(me) })
	launch(wTwo*n, func(int) { go blockChanSend(me) })
	launch(wTwo*n, func(int) { go blockSelect(me) })
	launch(wOne*n, func(int) { go blockSelectNoCases(me) })
	launch(wOne*n, func(int) { go blockNilChanReceive(me) })
	launch(wOne*n, func(int) { go blockNilChanSend(me) })
	heldMu.Lock()
	launch(wMutex*n, func(int) { go blockMutex(me) })
	startRWMutexes(n, me, &want)
	neverDone.Add(1)
	launch(wTwo*n, func(int) { go blockWaitGroup(me) })
	launch(wTwo*n, func(int) { go blockCond(me) })
	launch(wTwo*n, func(int) { go blockSleep(me) })
	startIOWait(wTwo*n, me, &want)
	startSyscall(wOne*n, me, &want)
	launch(wOne*n, func(int) { go blockLocked(me) })
	launch(wOne*n, func(i int) { go blockLabeled(me, i) })
	want += wOne * n // each labeled goroutine starts one child
	launch(wOne*n, func(int) { go recurse(depth, me) })
	launch(wOne*n, func(int) { go leakUnreachable(me) })
	for i := 0; i < n; i++ {
		go spawnOrphans(wTwo)
		want += wTwo
	}
	waitRegistered(want)
	requestSpawn(addr, wTwo*n)
	waitRegistered(want + wTwo*n)
}

func waitRegistered(want int) {
	deadline := time.Now().Add(10 * time.Second)
	for registered() < want {
		if time.Now().After(deadline) {
			fatalf("only %d of %d goroutines registered", registered(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func blockChanReceive(creator int64) {
	register("chan_receive", creator)
	<-recvCh
}

func blockChanSend(creator int64) {
	register("chan_send", creator)
	sendCh <- 1
}

func blockSelect(creator int64) {
	register("select", creator)
	select {
	case <-selA:
	case selB <- 1:
	}
}

func blockSelectNoCases(creator int64) {
	register("select_no_cases", creator)
	select {}
}

func blockNilChanReceive(creator int64) {
	register("nil_chan_receive", creator)
	var c chan int
	<-c
}

func blockNilChanSend(creator int64) {
	register("nil_chan_send", creator)
	var c chan int
	c <- 1
}

func blockMutex(creator int64) {
	register("mutex", creator)
	heldMu.Lock()
}

// startRWMutexes parks one writer per RWMutex (main holds a read lock, so the
// writer waits for readers), then readers, which queue behind the pending writer.
// A second writer would wait on the inner sync.Mutex instead.
func startRWMutexes(n int, me int64, want *int) {
	for i := 0; i < wOne*n; i++ {
		rw := new(sync.RWMutex)
		rw.RLock()
		rwMutexes = append(rwMutexes, rw)
		go blockRWMutexLock(me, rw)
	}
	*want += wOne * n
	waitRegistered(*want)
	settle(10*time.Second, 0)
	for i := 0; i < wTwo*n; i++ {
		go blockRWMutexRLock(me, rwMutexes[i%len(rwMutexes)])
	}
	*want += wTwo * n
}

func blockRWMutexLock(creator int64, rw *sync.RWMutex) {
	register("rwmutex_lock", creator)
	rw.Lock()
}

func blockRWMutexRLock(creator int64, rw *sync.RWMutex) {
	register("rwmutex_rlock", creator)
	rw.RLock()
}

func blockWaitGroup(creator int64) {
	register("waitgroup", creator)
	neverDone.Wait()
}

func blockCond(creator int64) {
	register("cond", creator)
	condMu.Lock()
	for {
		cond.Wait()
	}
}

func blockSleep(creator int64) {
	register("sleep", creator)
	time.Sleep(24 * time.Hour)
}

// startIOWait connects count loopback TCP pairs; each reader blocks in the netpoller.
func startIOWait(count int, me int64, want *int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("io listen: %v", err)
	}
	defer ln.Close()
	for i := 0; i < count; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fatalf("io dial: %v", err)
		}
		s, err := ln.Accept()
		if err != nil {
			fatalf("io accept: %v", err)
		}
		ioConns = append(ioConns, c, s)
		go blockIOWait(me, c)
	}
	*want += count
}

func blockIOWait(creator int64, c net.Conn) {
	register("io_wait", creator)
	buf := make([]byte, 1)
	_, _ = c.Read(buf)
}

// startSyscall blocks goroutines in a raw read(2) on a blocking pipe: the
// goroutine stays in the syscall status, not the netpoller's IO wait.
func startSyscall(count int, me int64, want *int) {
	for i := 0; i < count; i++ {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			fatalf("pipe: %v", err)
		}
		if err := syscall.SetNonblock(p[0], false); err != nil {
			fatalf("pipe: %v", err)
		}
		pipeFDs = append(pipeFDs, p)
		go blockSyscall(me, p[0])
	}
	*want += count
}

func blockSyscall(creator int64, fd int) {
	register("syscall", creator)
	buf := make([]byte, 1)
	_, _ = syscall.Read(fd, buf)
}

func blockLocked(creator int64) {
	runtime.LockOSThread()
	register("locked", creator)
	<-recvCh
}

// labelsFor exercises label quoting: a key with a space, a value with quotes,
// a tab, non-ASCII and non-BMP characters, a value with "]:" that breaks naive
// header splitting, and an empty value.
func labelsFor(i int) map[string]string {
	return map[string]string{
		"span id":     "s-" + strconv.Itoa(i%2),
		"msg":         "say \"hi\"\tü 😀",
		"plain.key/x": "bare_value",
		"tricky":      "a]: b",
		"empty":       "",
	}
}

func blockLabeled(creator int64, i int) {
	labels := labelsFor(i)
	var kv []string
	for k, v := range labels {
		kv = append(kv, k, v)
	}
	pprof.Do(context.Background(), pprof.Labels(kv...), func(context.Context) {
		registerLabeled("labeled", creator, labels)
		go labeledChild(curID(), labels) // inherits the labels
		<-recvCh
	})
}

func labeledChild(creator int64, labels map[string]string) {
	registerLabeled("labeled_child", creator, labels)
	<-recvCh
}

// recurse parks at the bottom of depth frames of itself, deep enough for
// debug=2 to elide frames (it keeps the first and last 50 since Go 1.21, the
// first 100 before).
//
//go:noinline
func recurse(depth int, creator int64) int {
	if depth <= 1 {
		register("deep", creator)
		return <-recvCh
	}
	return recurse(depth-1, creator) + 1
}

// leakUnreachable blocks on a channel no other goroutine or global can reach:
// the goroutineleak profile reports it.
func leakUnreachable(creator int64) {
	ch := make(chan int)
	register("leak", creator)
	<-ch
}

// spawnOrphans starts children and returns at once: its children outlive it.
func spawnOrphans(count int) {
	me := curID()
	for i := 0; i < count; i++ {
		go orphanChild(me)
	}
}

func orphanChild(creator int64) {
	register("orphan", creator)
	<-recvCh
}

// spawnHandler is a request handler that starts goroutines which outlive the
// request (and the connection goroutine that ran it), with a route label.
func spawnHandler(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	me := curID()
	labels := map[string]string{"http.route": "/spawn"}
	var started sync.WaitGroup
	pprof.Do(r.Context(), pprof.Labels("http.route", "/spawn"), func(context.Context) {
		for i := 0; i < n; i++ {
			started.Add(1)
			go handlerChild(me, labels, &started)
		}
	})
	started.Wait()
	fmt.Fprintf(w, "started %d\n", n)
}

func handlerChild(creator int64, labels map[string]string, started *sync.WaitGroup) {
	registerLabeled("handler", creator, labels)
	started.Done()
	<-recvCh
}

// requestSpawn calls /spawn over a raw HTTP/1.0 connection, so no client
// goroutines linger and the server's connection goroutine exits afterwards.
func requestSpawn(addr string, n int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fatalf("spawn dial: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /spawn?n=%d HTTP/1.0\r\nHost: %s\r\n\r\n", n, addr)
	if _, err := io.ReadAll(c); err != nil {
		fatalf("spawn read: %v", err)
	}
}
