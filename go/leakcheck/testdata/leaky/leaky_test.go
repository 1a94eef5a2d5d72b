// Package leaky is run by leakcheck's tests as a subprocess: TestLeaks must
// fail (it leaks), TestClean and TestLateFinisher must pass, TestTooLate
// fails only because its Timeout is shorter than its goroutine's life.
// With LEAKCHECK_TOOL=goleak every test defers goleak.VerifyNone(t) instead,
// to compare (the tests run one after the other, not in parallel).
package leaky

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grprof/grprof/go/leakcheck"
)

func check(t *testing.T, opts ...leakcheck.Option) {
	if os.Getenv("LEAKCHECK_TOOL") == "goleak" {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		return
	}
	leakcheck.Check(t, opts...)
}

//go:noinline
func parkForever(c chan struct{}) { <-c }

func TestLeaks(t *testing.T) {
	check(t)
	// Nothing else can reach the channel: with GOEXPERIMENT=goroutineleakprofile
	// the GC proves the goroutine leaked.
	go parkForever(make(chan struct{}))
}

func TestClean(t *testing.T) {
	check(t)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
}

//go:noinline
func finishLate(d time.Duration) { time.Sleep(d) }

func TestLateFinisher(t *testing.T) {
	check(t)
	go finishLate(300 * time.Millisecond)
}

func TestTooLate(t *testing.T) {
	check(t, leakcheck.Timeout(50*time.Millisecond))
	go finishLate(3 * time.Second)
}
