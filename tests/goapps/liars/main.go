// liars parks goroutines whose function names lie about what they wait on: a context
// leak in pumpChannel, a plain channel leak in waitCtx, a ticker leak in handleRequest, a
// channel leak in tickLoop, an AfterFunc callback leak in consume, and more. grprof must
// classify them from their stacks and, with --source, from their blocking statements, never
// from their names (tests/test_liars.py).
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once every goroutine is
// parked. Each "request" (serveOne) runs on its own goroutine, as a server's handlers do,
// and starts every leak once; `copies` requests run.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync/atomic"
	"time"
)

const copies = 3

var (
	hold  = make(chan struct{}) // never closed: main waits on it while the test looks
	never = make(chan int)      // nobody ever sends on it or closes it
	total atomic.Int64
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, nil)
	fmt.Println("LISTEN http://" + ln.Addr().String())
	for i := 0; i < copies; i++ {
		go serveOne()
	}
	time.Sleep(300 * time.Millisecond) // let every timeout fire and every goroutine park
	fmt.Println("READY")
	<-hold
}

// serveOne plays one request: it starts every leak once and returns.
func serveOne() {
	startPump()
	startBatch()
	relayChannel()
	go waitCtx(make(chan struct{}))
	go handleRequest()
	go tickLoop(make(chan int))
	go watchContext(make(chan string))
	time.AfterFunc(time.Millisecond, consume)
	go awaitCancel(&state{})
	fanOut()
	_ = firstOf()
}

// pumpChannel is a context leak: it waits for ctx, whose cancel function startPump drops.
func pumpChannel(ctx context.Context) {
	<-ctx.Done()
	total.Add(-1)
}

func startPump() {
	ctx, cancel := context.WithCancel(context.Background())
	go pumpChannel(ctx)
	_ = cancel // never called: nothing ends ctx
}

// sendBatch is a context leak: its only way out is ctx.Done(), and startBatch discarded the
// cancel function of ctx (it ends only at its deadline, an hour from now).
func sendBatch(ctx context.Context, batch <-chan int) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-batch:
			total.Add(int64(n))
		}
	}
}

func startBatch() {
	ctx, _ := context.WithTimeout(context.Background(), time.Hour) //nolint:govet // the leak
	go sendBatch(ctx, make(chan int))
}

type key struct{}

// relayChannel is a context leak: a value on context.Background() is never cancelled.
func relayChannel() {
	ctx := context.WithValue(context.Background(), key{}, "request")
	go func() {
		<-ctx.Done()
		total.Add(-1)
	}()
}

// waitCtx is a channel leak: nothing ever closes done.
func waitCtx(done chan struct{}) {
	<-done
}

// handleRequest is a ticker leak: its ticker is never stopped and its loop never ends.
func handleRequest() {
	t := time.NewTicker(time.Hour)
	for range t.C {
		total.Add(1)
	}
}

// tickLoop is a channel leak: it ranges over a channel nobody sends on or closes.
func tickLoop(in <-chan int) {
	for v := range in {
		total.Add(int64(v))
	}
}

// watchContext is a timer leak: a loop that wakes on time.After and never ends.
func watchContext(events <-chan string) {
	for {
		select {
		case e := <-events:
			total.Add(int64(len(e)))
		case <-time.After(time.Hour):
			total.Add(1)
		}
	}
}

// consume is a time.AfterFunc callback that blocks forever.
func consume() {
	total.Add(int64(<-never))
}

type state struct {
	done chan struct{} // never made
}

// awaitCancel is a channel leak: s.done is a nil channel (a field never made), not a context.
func awaitCancel(s *state) {
	<-s.done
}

// fanOut starts 3 workers that send on one unbuffered channel, takes the first result or
// gives up after a millisecond: every worker of a call that timed out blocks forever.
func fanOut() {
	results := make(chan string)
	for i := 0; i < 3; i++ {
		go func(i int) {
			time.Sleep(20 * time.Millisecond)
			results <- fmt.Sprint(i)
		}(i)
	}
	select {
	case r := <-results:
		total.Add(int64(len(r)))
	case <-time.After(time.Millisecond):
	}
}

// firstOf asks 3 replicas and keeps the first answer: the other 2 block forever.
func firstOf() string {
	replies := make(chan string)
	for _, name := range []string{"a", "b", "c"} {
		go func(name string) {
			replies <- name
		}(name)
	}
	return <-replies
}
