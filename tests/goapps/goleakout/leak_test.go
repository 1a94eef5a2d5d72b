// Package goleakout leaks goroutines in known states under go.uber.org/goleak, so that
// grprof's tests can read what goleak really prints (tests/fixtures/goleak/make.sh).
//
// Each leak parks its goroutine for good in one state:
//
//	main.blockRecv   chan receive           on a channel nobody sends on
//	main.blockSelect select                 on two channels nobody uses
//	main.blockAccept IO wait                in net.Listener.Accept (one listener each: a
//	                                        second Accept on one listener waits in semacquire
//	                                        for the first's lock on the socket)
//	main.blockLock   sync.Mutex.Lock        on a mutex held forever
//	main.blockWait   sync.WaitGroup.Wait    on a WaitGroup never done
package goleakout

import (
	"context"
	"net"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func blockRecv(ch chan int) { <-ch }

func blockSelect(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}

func blockAccept(l net.Listener) { _, _ = l.Accept() }

func blockLock(mu *sync.Mutex) { mu.Lock() }

func blockWait(wg *sync.WaitGroup) { wg.Wait() }

// Leak starts n goroutines in each state and waits until they are parked.
func Leak(t testing.TB, n int) {
	t.Helper()
	var mu sync.Mutex
	mu.Lock()
	var wg sync.WaitGroup
	wg.Add(1)
	for i := 0; i < n; i++ {
		go blockRecv(make(chan int))
		go blockSelect(make(chan int), make(chan int))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go blockAccept(l)
		go blockLock(&mu)
		go blockWait(&wg)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestLeaks leaks 2 goroutines in each state, then checks with goleak.VerifyNone.
func TestLeaks(t *testing.T) {
	defer goleak.VerifyNone(t)
	Leak(t, 2)
}

// TestClean leaks nothing: goleak passes.
func TestClean(t *testing.T) {
	defer goleak.VerifyNone(t)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
}

// TestParallel runs two parallel subtests that leak one goroutine per state each; each
// checks with VerifyNone, ignoring the goroutines the test framework runs itself.
func TestParallel(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			Leak(t, 1)
		})
	}
}

// TestLabelled leaks 2 goroutines in chan receive under pprof labels (route=/orders), which
// Go 1.27 prints in the goroutine header for modules that say `go 1.27`, and goleak then
// keeps in the state it reports. Skipped unless GOLEAK_LABELS=1 (make.sh sets it).
func TestLabelled(t *testing.T) {
	if os.Getenv("GOLEAK_LABELS") != "1" {
		t.Skip("GOLEAK_LABELS=1 not set")
	}
	defer goleak.VerifyNone(t)
	pprof.Do(context.Background(), pprof.Labels("route", "/orders"), func(context.Context) {
		for i := 0; i < 2; i++ {
			go blockRecv(make(chan int))
		}
	})
	time.Sleep(200 * time.Millisecond)
}
