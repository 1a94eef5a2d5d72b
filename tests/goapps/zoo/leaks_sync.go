package main

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// Category sync: goroutines blocked on a sync primitive nobody will release.
var syncLeaks = []*Leak{
	{
		Kind: "sync-mutex-unreleased", Category: "sync", Endpoint: "/leak/sync-mutex-unreleased",
		Summary: "a Mutex locked on an error path and never unlocked: the first request leaves it locked, every later one blocks in Lock",
		run:     mutexUnreleased,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.recordStats", Frames: []string{"sync.(*Mutex).Lock"},
			CreatedBy: "main.mutexUnreleased", States: []string{"sync.Mutex.Lock"}})},
		FreeRequests: 1,
	},
	{
		Kind: "sync-waitgroup-never-zero", Category: "sync", Endpoint: "/leak/sync-waitgroup-never-zero",
		Summary: "a WaitGroup whose counter never reaches zero: one worker's error path skips Done",
		run:     waitGroupNeverZero,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.closeWhenDone", Frames: []string{"sync.(*WaitGroup).Wait"},
			CreatedBy: "main.waitGroupNeverZero", States: []string{"sync.WaitGroup.Wait"}, LeakProfile: true})},
	},
	{
		Kind: "sync-cond-never-signalled", Category: "sync", Endpoint: "/leak/sync-cond-never-signalled",
		Summary: "a goroutine waits on a sync.Cond that nobody ever signals or broadcasts",
		run:     condNeverSignalled,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.(*batch).flushOnClose", Frames: []string{"sync.(*Cond).Wait"},
			CreatedBy: "main.condNeverSignalled", States: []string{"sync.Cond.Wait"}, LeakProfile: true})},
	},
}

var (
	statsMu      sync.Mutex
	statsFlushed int
)

var errFlush = errors.New("flush failed")

func mutexUnreleased(_ *deps, w http.ResponseWriter, r *http.Request) {
	go recordStats()
	_, _ = io.WriteString(w, "recording\n")
}

func recordStats() {
	statsMu.Lock()
	if err := flushStats(); err != nil {
		return // missing statsMu.Unlock()
	}
	statsMu.Unlock()
}

// flushStats fails the first time, which is the path that forgets to unlock.
func flushStats() error {
	statsFlushed++
	if statsFlushed == 1 {
		return errFlush
	}
	return nil
}

func waitGroupNeverZero(_ *deps, w http.ResponseWriter, r *http.Request) {
	results := make(chan int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go fetchPart(i, &wg, results)
	}
	go closeWhenDone(&wg, results)
	_, _ = io.WriteString(w, "fetching\n")
}

func fetchPart(i int, wg *sync.WaitGroup, results chan<- int) {
	if i == 2 {
		return // error path: missing wg.Done()
	}
	defer wg.Done()
	results <- i
}

func closeWhenDone(wg *sync.WaitGroup, results chan int) {
	wg.Wait()
	close(results)
}

type batch struct {
	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
}

func condNeverSignalled(_ *deps, w http.ResponseWriter, r *http.Request) {
	b := &batch{}
	b.cond = sync.NewCond(&b.mu)
	go b.flushOnClose()
	// the close path sets b.closed but never calls b.cond.Broadcast(); here it does not even run
	_, _ = io.WriteString(w, "batching\n")
}

func (b *batch) flushOnClose() {
	b.mu.Lock()
	for !b.closed {
		b.cond.Wait()
	}
	b.mu.Unlock()
}
