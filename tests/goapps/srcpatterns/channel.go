package main

import (
	"context"
	"time"
)

// fetchWithTimeout is the classic leakyHandler: when the timeout wins, nobody
// receives from ch and the worker blocks on its send forever.
func fetchWithTimeout() string {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond) // slow backend call
		ch <- "result"
	}()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Millisecond):
		return "timeout"
	}
}

// fetchWithContext is the same leak with the caller's context as the timeout.
func fetchWithContext(ctx context.Context) (int, error) {
	results := make(chan int, 0)
	go func() {
		n := slowCount()
		results <- n
	}()
	select {
	case n := <-results:
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// fetchWithTimer is the same leak with a timer's channel as the timeout.
func fetchWithTimer() {
	var done = make(chan bool)
	go func() {
		time.Sleep(20 * time.Millisecond)
		done <- true
	}()
	timer := time.NewTimer(time.Millisecond)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// fetchOrGiveUp polls once and gives up at once (default): a late worker leaks the same way.
func fetchOrGiveUp() {
	reply := make(chan int)
	go func() {
		reply <- slowCount()
	}()
	select {
	case <-reply:
	default:
	}
}

// fetchBuffered (near-miss) has the fix, a buffer of 1, but its worker sends twice: the
// second send blocks. Not the timeout pattern.
func fetchBuffered() {
	ch := make(chan int, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		ch <- 1
		ch <- 2
	}()
	select {
	case <-ch:
	case <-time.After(time.Millisecond):
	}
}

// fetchGuarded (near-miss) sends in a select with the caller's ctx.Done(): the worker
// leaves when that context ends.
func fetchGuarded(ctx context.Context) {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond)
		select {
		case ch <- "result":
		case <-ctx.Done():
		}
	}()
	select {
	case <-ch:
	case <-time.After(time.Millisecond):
	}
}

// fetchNonBlocking (near-miss) sends with select/default, so the worker never blocks on
// ch; it then waits for shutdown like any long-lived helper.
func fetchNonBlocking() {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond)
		select {
		case ch <- "result":
		default:
		}
		<-hold
	}()
	select {
	case <-ch:
	case <-time.After(time.Millisecond):
	}
}

// fetchPatient (near-miss) receives without a timeout: the worker waits on its send only
// until the caller gets there (here the caller first waits for gate).
func fetchPatient(gate <-chan struct{}) int {
	ch := make(chan int)
	go func() {
		ch <- 42
	}()
	<-gate
	return <-ch
}

// fetchEither (near-miss) receives in a select whose other case is no timeout: once the
// caller gets there (here it first waits for gate), it takes the value.
func fetchEither(gate, quit <-chan struct{}) int {
	ch := make(chan int)
	go func() {
		ch <- 7
	}()
	<-gate
	select {
	case v := <-ch:
		return v
	case <-quit:
		return 0
	}
}

func slowCount() int {
	time.Sleep(20 * time.Millisecond)
	return int(total.Add(1))
}
