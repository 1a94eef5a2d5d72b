// srcpatterns parks goroutines in the leak patterns grprof's source check recognises
// (docs/source.md) and in near-misses that look alike but are not those leaks, then
// serves /debug/pprof so a test can take a real dump and map every group back to this
// source with `grprof.detect.source.confirm`.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once every
// goroutine is parked. Each scenario runs `copies` times so each one forms a group.
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

	"grprof.test/srcpatterns/internal/poll"
)

const copies = 3

var (
	// hold is never closed: near-miss goroutines wait on it to stay parked while the test looks.
	hold  = make(chan struct{})
	total atomic.Int64
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	base := "http://" + ln.Addr().String()
	http.HandleFunc("/watch", watchRequest)
	go http.Serve(ln, nil)
	fmt.Println("LISTEN " + base)

	// ctx lives as long as the process: near-misses that leave on ctx.Done() stay parked.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for i := 0; i < copies; i++ {
		startLeaks(ctx)
		startNearMisses(ctx, base)
	}
	// A worker pool that lives as long as the process: its channel is never closed, by design.
	jobs := make(chan func())
	for i := 0; i < copies; i++ {
		go func() {
			for job := range jobs {
				job()
			}
		}()
	}
	go janitor()
	go func() {
		heartbeat() // a process-lifetime ticker loop in a helper
	}()
	// A shutdown hook waiting for a signal this program never gives: started once, by design.
	shutdown := make(chan struct{})
	go func() {
		<-shutdown
		total.Store(-1)
	}()
	time.Sleep(300 * time.Millisecond) // let every timeout fire and every goroutine park
	fmt.Println("READY")
	<-hold
}

// startLeaks runs every leak pattern once.
func startLeaks(ctx context.Context) {
	fetchWithTimeout()
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	fetchWithContext(short)
	cancel()
	fetchWithTimer()
	fetchOrGiveUp()
	go awaitWorker(-1)
	produce([]int{1, 2, 3})
	watchBackground("gopher")
	watchUncancelled()
	poll.Start(func() {})
	poll.Every(time.Hour, func() {})
	poll.StartTracker()
}

// startNearMisses runs code that looks like a leak pattern but is not that pattern.
func startNearMisses(ctx context.Context, base string) {
	fetchBuffered()
	fetchGuarded(ctx)
	fetchNonBlocking()
	go fetchPatient(hold)
	go awaitSlowWorker(hold)
	go produceClosed([]int{1, 2}, hold)
	go watchCancelled(hold)
	poll.StartStoppable(ctx, func() {})
	poll.StartUntil(ctx, func() {})
	poll.Times(copies, func() {})
	go fetchEither(hold, nil)
	go func() {
		if resp, err := http.Get(base + "/watch"); err == nil {
			resp.Body.Close()
		}
	}()
}

// janitor is a periodic background job started once by main: its ticker lives as long
// as the process, by design.
func janitor() {
	t := time.NewTicker(time.Hour)
	for range t.C {
		total.Store(0)
	}
}

// heartbeat ticks forever; main starts it once (through a closure), by design.
func heartbeat() {
	t := time.NewTicker(time.Hour)
	for range t.C {
		total.Add(0)
	}
}
