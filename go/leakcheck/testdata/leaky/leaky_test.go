// Package leaky is run by leakcheck's tests as a subprocess: TestLeaks must
// fail (it leaks), TestClean and TestLateFinisher must pass, TestTooLate
// fails only because its Timeout is shorter than its goroutine's life.
package leaky

import (
	"testing"
	"time"

	"github.com/grprof/grprof/go/leakcheck"
)

//go:noinline
func parkForever(c chan struct{}) { <-c }

func TestLeaks(t *testing.T) {
	leakcheck.Check(t)
	// Nothing else can reach the channel: with GOEXPERIMENT=goroutineleakprofile
	// the GC proves the goroutine leaked.
	go parkForever(make(chan struct{}))
}

func TestClean(t *testing.T) {
	leakcheck.Check(t)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
}

//go:noinline
func finishLate(d time.Duration) { time.Sleep(d) }

func TestLateFinisher(t *testing.T) {
	leakcheck.Check(t)
	go finishLate(300 * time.Millisecond)
}

func TestTooLate(t *testing.T) {
	leakcheck.Check(t, leakcheck.Timeout(50*time.Millisecond))
	go finishLate(3 * time.Second)
}
