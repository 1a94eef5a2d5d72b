// Package gatesuite is run by tests/test_gate.py with `go test` and
// GRPROF_LEAKCHECK_DIR set, then judged with `grprof gate`: a parallel suite
// where TestLeaky leaks one goroutine (a result send nobody receives) and
// TestFast and TestSlow run alongside it with helpers that finish. With
// GATESUITE_SECOND_LEAK=1, TestSecondLeak leaks a second, different goroutine
// (started from a closure, parked in a select).
package gatesuite

import (
	"os"
	"testing"
	"time"

	"github.com/grprof/grprof/go/leakcheck"
)

// fetchResult sends its result to a caller that has already given up.
//
//go:noinline
func fetchResult(out chan<- int) {
	out <- 42
}

//go:noinline
func watchUpdates(updates <-chan int, stop <-chan struct{}) {
	for {
		select {
		case <-updates:
		case <-stop:
			return
		}
	}
}

func validate() error { return os.ErrInvalid }

//go:noinline
func helper(d time.Duration) { time.Sleep(d) }

func TestLeaky(t *testing.T) {
	leakcheck.Check(t)
	t.Parallel()
	results := make(chan int)
	go fetchResult(results)
	if err := validate(); err != nil {
		return // gives up without receiving: fetchResult blocks on its send forever
	}
	<-results
}

func TestSecondLeak(t *testing.T) {
	leakcheck.Check(t)
	t.Parallel()
	if os.Getenv("GATESUITE_SECOND_LEAK") != "1" {
		return
	}
	updates, stop := make(chan int), make(chan struct{})
	go func() { watchUpdates(updates, stop) }() // stop is never closed
}

func TestFast(t *testing.T) {
	leakcheck.Check(t)
	t.Parallel()
	done := make(chan struct{})
	go func() { helper(100 * time.Millisecond); close(done) }()
	<-done
}

func TestSlow(t *testing.T) {
	leakcheck.Check(t)
	t.Parallel()
	done := make(chan struct{})
	go func() { helper(500 * time.Millisecond); close(done) }()
	<-done
}
