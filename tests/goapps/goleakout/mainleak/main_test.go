// Package mainleak leaks from a test and checks in TestMain with goleak.VerifyTestMain,
// which reports after all the tests passed.
package mainleak

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func parkForever(ch chan struct{}) { <-ch }

func parkInSelect(ch chan struct{}) {
	select {
	case <-ch:
	case <-time.After(time.Hour):
	}
}

// TestLeaksForTestMain leaks 3 goroutines in chan receive and 1 in select.
func TestLeaksForTestMain(t *testing.T) {
	for i := 0; i < 3; i++ {
		go parkForever(make(chan struct{}))
	}
	go parkInSelect(make(chan struct{}))
	time.Sleep(100 * time.Millisecond)
}
