// Package chain holds what the generated call chains share: the walker each goroutine
// carries down its path, and the blockers at the end of every path.
package chain

import (
	"sync"
	"sync/atomic"
	"time"
)

// W is one goroutine's walk: Path holds global function ids (the generated packages'
// functions call the one named by Path[d] next), Block parks the goroutine at the end.
type W struct {
	Path  []uint16
	Block func(*W)
	ID    int
	Sink  int
}

// Done runs after a callee returns (never, here): it keeps each caller's frame live.
func (w *W) Done(d int) { w.Sink += d }

// Env is what goroutines block on; main arranges for each to block forever.
var (
	never  = make(chan int)
	full   = make(chan int)
	other  = make(chan string)
	mu     sync.Mutex
	rw     sync.RWMutex
	rw2    sync.RWMutex
	wg     sync.WaitGroup
	condMu sync.Mutex
	cond   = sync.NewCond(&condMu)
	Ready  atomic.Int64
)

// Hold takes the locks and the wait group so that every blocker below blocks forever.
func Hold() {
	mu.Lock()
	rw.Lock()
	rw2.RLock()
	wg.Add(1)
}

// The blockers: each is its own function, so each shows as its own frame. Ready is bumped
// just before blocking so main knows when everyone is parked.

func ChanRecv(w *W) { Ready.Add(1); w.ID += <-never }
func ChanSend(w *W) { Ready.Add(1); full <- w.ID }

func Select(w *W) {
	Ready.Add(1)
	select {
	case <-never:
	case s := <-other:
		w.ID += len(s)
	}
}

func SelectTimeout(w *W) {
	t := time.NewTimer(1000 * time.Hour)
	Ready.Add(1)
	select {
	case <-never:
	case <-t.C:
	}
}

func SelectNoCases(w *W) {
	Ready.Add(1)
	select {}
}

func NilRecv(w *W) {
	var c chan int
	Ready.Add(1)
	w.ID = <-c
}

func Mutex(w *W)     { Ready.Add(1); mu.Lock() }
func RLock(w *W)     { Ready.Add(1); rw.RLock() }
func WLock(w *W)     { Ready.Add(1); rw2.Lock() }
func WaitGroup(w *W) { Ready.Add(1); wg.Wait() }
func Sleep(w *W)     { Ready.Add(1); time.Sleep(1000 * time.Hour) }

func Cond(w *W) {
	condMu.Lock()
	Ready.Add(1)
	for {
		cond.Wait()
	}
}

// Blockers, and Weights: how often a goroutine waits that way, as in a real service
// (channels and select most, then locks and sleeps).
var (
	Blockers = []func(*W){
		ChanRecv, ChanSend, Select, SelectTimeout, SelectNoCases, NilRecv,
		Mutex, RLock, WLock, WaitGroup, Cond, Sleep,
	}
	Weights = []int{3, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}
)
