// Package parallel is run by leakcheck's tests as a subprocess: a parallel
// suite where only TestA leaks. With LEAKCHECK_TOOL=goleak every test
// defers goleak.VerifyNone(t) instead of calling leakcheck.Check(t), to
// show goleak blaming the tests that did not leak.
package parallel

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grprof/grprof/go/leakcheck"
)

//go:noinline
func leakedByA(c chan struct{}) { <-c }

//go:noinline
func helperOfB(d time.Duration) { time.Sleep(d) }

//go:noinline
func helperOfC(d time.Duration) { time.Sleep(d) }

var never = make(chan struct{})

var goleakMode = os.Getenv("LEAKCHECK_TOOL") == "goleak"

func check(t *testing.T) {
	if goleakMode {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		return
	}
	leakcheck.Check(t)
}

func TestA(t *testing.T) {
	check(t)
	if goleakMode {
		// Leaked before the parallel phase: the scheduler may resume TestB and TestC before
		// TestA, and goleak's reports of them must show this leak whatever the order.
		go leakedByA(never)
		t.Parallel()
		return
	}
	t.Parallel()
	go leakedByA(never)
}

// TestB and TestC run longer than TestA and have a helper goroutine running
// (which they wait for) while TestA is checked.
func TestB(t *testing.T) {
	check(t)
	t.Parallel()
	done := make(chan struct{})
	go func() { helperOfB(400 * time.Millisecond); close(done) }()
	<-done
}

func TestC(t *testing.T) {
	check(t)
	t.Parallel()
	done := make(chan struct{})
	go func() { helperOfC(400 * time.Millisecond); close(done) }()
	<-done
}
