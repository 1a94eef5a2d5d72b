package main

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// Objects the parked goroutines block on. Globals, so nothing is collected
// (a collected pipe writer would be closed by its finalizer and wake the reader).
var (
	heldMu   sync.Mutex
	heldRW   sync.RWMutex
	neverWG  sync.WaitGroup
	condMu   sync.Mutex
	neverCnd = sync.NewCond(&condMu)
	pipeR    *os.File
	pipeW    *os.File
)

// kind describes one way to park a goroutine.
type kind struct {
	fn     string
	state  func() string
	locked bool
}

func fixed(s string) func() string { return func() string { return s } }

var kinds = map[string]kind{
	"chanrecv":      {fn: "main.parkChanRecv", state: fixed("chan receive")},
	"chansend":      {fn: "main.parkChanSend", state: fixed("chan send")},
	"select":        {fn: "main.parkSelect", state: fixed("select")},
	"selectnocases": {fn: "main.parkSelectNoCases", state: fixed("select (no cases)")},
	"nilchan":       {fn: "main.parkNilChan", state: fixed("chan receive (nil chan)")},
	"mutex":         {fn: "main.parkMutex", state: mutexReason},
	"rwmutex":       {fn: "main.parkRWMutex", state: rwReason},
	"waitgroup":     {fn: "main.parkWaitGroup", state: waitGroupReason},
	"cond":          {fn: "main.parkCond", state: fixed("sync.Cond.Wait")},
	"sleep":         {fn: "main.parkSleep", state: fixed("sleep")},
	"iowait":        {fn: "main.parkIOWait", state: fixed("IO wait")},
	"locked":        {fn: "main.parkLocked", state: fixed("chan receive"), locked: true},
}

// Kinds used by most modes; deadlockKinds avoids timers and the netpoller,
// which keep the runtime from declaring a deadlock.
var (
	allKinds      = []string{"chanrecv", "chansend", "select", "selectnocases", "nilchan", "mutex", "rwmutex", "waitgroup", "cond", "sleep", "iowait", "locked"}
	deadlockKinds = []string{"chanrecv", "chansend", "select", "mutex", "waitgroup", "locked"}
	fewKinds      = []string{"chanrecv", "select", "sleep"}
)

func rwReason() string {
	if goMinor() >= 20 {
		return "sync.RWMutex.RLock"
	}
	return "semacquire"
}

// startParked starts one goroutine per kind, waits until each reported its
// id, and records them. The go statements live here so every goroutine says
// "created by main.startParked".
func startParked(t *Truth, names []string) {
	prepareParking()
	me := goid()
	ids := make(chan int64)
	for _, name := range names {
		switch name {
		case "chanrecv":
			go parkChanRecv(ids)
		case "chansend":
			go parkChanSend(ids)
		case "select":
			go parkSelect(ids)
		case "selectnocases":
			go parkSelectNoCases(ids)
		case "nilchan":
			go parkNilChan(ids)
		case "mutex":
			go parkMutex(ids)
		case "rwmutex":
			go parkRWMutex(ids)
		case "waitgroup":
			go parkWaitGroup(ids)
		case "cond":
			go parkCond(ids)
		case "sleep":
			go parkSleep(ids)
		case "iowait":
			go parkIOWait(ids)
		case "locked":
			go parkLocked(ids)
		default:
			panic("unknown kind " + name)
		}
		k := kinds[name]
		t.Goroutines = append(t.Goroutines, G{
			ID: <-ids, State: k.state(), Func: k.fn, Creator: me,
			CreatedBy: "main.startParked", Locked: k.locked,
		})
	}
	settle()
}

var prepared bool

func prepareParking() {
	if prepared {
		return
	}
	prepared = true
	heldMu.Lock()
	heldRW.Lock()
	neverWG.Add(1)
	var err error
	if pipeR, pipeW, err = os.Pipe(); err != nil {
		panic(err)
	}
}

// settle gives reported goroutines time to reach their blocking call.
func settle() { time.Sleep(200 * time.Millisecond) }

//go:noinline
func parkChanRecv(ids chan<- int64) {
	ids <- goid()
	<-make(chan int)
}

//go:noinline
func parkChanSend(ids chan<- int64) {
	ids <- goid()
	make(chan int) <- 1
}

//go:noinline
func parkSelect(ids chan<- int64) {
	ids <- goid()
	a, b := make(chan int), make(chan int)
	select {
	case <-a:
	case b <- 1:
	}
}

//go:noinline
func parkSelectNoCases(ids chan<- int64) {
	ids <- goid()
	select {}
}

//go:noinline
func parkNilChan(ids chan<- int64) {
	ids <- goid()
	var c chan int
	<-c
}

//go:noinline
func parkMutex(ids chan<- int64) {
	ids <- goid()
	heldMu.Lock()
}

//go:noinline
func parkRWMutex(ids chan<- int64) {
	ids <- goid()
	heldRW.RLock()
}

//go:noinline
func parkWaitGroup(ids chan<- int64) {
	ids <- goid()
	neverWG.Wait()
}

//go:noinline
func parkCond(ids chan<- int64) {
	ids <- goid()
	condMu.Lock()
	neverCnd.Wait()
}

//go:noinline
func parkSleep(ids chan<- int64) {
	ids <- goid()
	time.Sleep(time.Hour)
}

//go:noinline
func parkIOWait(ids chan<- int64) {
	ids <- goid()
	var b [1]byte
	_, _ = pipeR.Read(b[:])
}

//go:noinline
func parkLocked(ids chan<- int64) {
	runtime.LockOSThread()
	ids <- goid()
	<-make(chan int)
}
