// longrun holds goroutines whose verdict needs minutes of snapshots (tests/test_longrun.py):
// waits that read as a blocked receive although something still wakes them, beside
// goroutines that really are stuck, singletons that wait for the whole process by design,
// producers held back by a slow consumer, and bursts that drain slowly.
//
//   - sessions: an opener started by main opens a session every 20 s, up to 6, then returns.
//     Each session pings its peer from `for range time.Tick(time.Second)`: in debug=2 a plain
//     `chan receive` in main.session, creator gone, a count that ramps and then holds. Healthy.
//   - pumps: each session's pump ranges over a channel its feeder sends on every 2 s (another
//     `chan receive`, fed). Healthy.
//   - stuck: every 20 s a request goroutine starts a worker that waits on a channel nobody
//     ever closes, and returns. A leak: the same ids, blocked, their wait age rising.
//   - tickers: every 30 s a request goroutine starts a poller ranging over time.Tick that
//     nothing stops, and returns. A leak too, though woken every 500 ms: one per request.
//   - reloadOnHUP: a setup goroutine registers for SIGHUP, starts one reloader ranging over
//     the signal channel, and returns. Healthy: one goroutine waiting as long as the process.
//   - produceBatch: main starts 3 producers on a small buffer that nothing drains (the
//     consumer gave up), then waits forever itself. A leak with its creator alive: the same
//     3 sends, never taken, for the whole run.
//   - shipLines: 3 producers feed logShipper, which takes a line every 100 ms: at almost any
//     instant all 3 are blocked on their send, yet each keeps making progress. Healthy.
//   - publishEvent: every 4 minutes from the second, a short-lived publisher starts 90
//     senders to a subscriber that takes one every 2.5 s: each burst drains in under 4
//     minutes, falling at every snapshot. Healthy.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

var pings, polls, reloads, shipped, events atomic.Int64

func session(id int) {
	in := make(chan int)
	go pump(in)
	go feeder(in)
	for range time.Tick(time.Second) {
		pings.Add(1)
	}
}

func pump(in <-chan int) {
	for v := range in {
		pings.Add(int64(v))
	}
}

func feeder(out chan<- int) {
	for {
		time.Sleep(2 * time.Second)
		out <- 1
	}
}

func openSessions(n int, every time.Duration) {
	for i := 0; i < n; i++ {
		go session(i)
		time.Sleep(every)
	}
}

func awaitReply(done <-chan struct{}) {
	<-done // leak: the request returned without closing done
}

func handleExport() {
	done := make(chan struct{})
	go awaitReply(done)
}

func poll() {
	for range time.Tick(500 * time.Millisecond) { // leak: nothing stops it
		polls.Add(1)
	}
}

func handleWatch() {
	go poll()
}

func setupReload() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	go reloadOnHUP(sig)
}

func reloadOnHUP(sig <-chan os.Signal) {
	for range sig {
		reloads.Add(1)
	}
}

func produceBatch(out chan<- int) {
	for i := 0; ; i++ {
		out <- i // leak: the consumer returned on its first error
	}
}

func shipLines(out chan<- string) {
	for {
		out <- "line"
		shipped.Add(1)
	}
}

func logShipper(in <-chan string) {
	for range in {
		time.Sleep(100 * time.Millisecond)
	}
}

func publishEvent(out chan<- int, v int) {
	out <- v
}

func publish(out chan<- int) {
	for i := 0; i < 90; i++ {
		go publishEvent(out, i)
	}
}

func subscriber(in <-chan int) {
	for v := range in {
		events.Add(int64(v))
		time.Sleep(2500 * time.Millisecond)
	}
}

func every(d time.Duration, f func()) {
	for {
		go f() // a short-lived "request" goroutine per call
		time.Sleep(d)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "pprof listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	go func() { log.Fatal(http.Serve(ln, nil)) }()
	go openSessions(6, 20*time.Second)
	go every(20*time.Second, handleExport)
	go every(30*time.Second, handleWatch)
	go setupReload()
	lines := make(chan string)
	go logShipper(lines)
	for i := 0; i < 3; i++ {
		go shipLines(lines)
	}
	published := make(chan int)
	go subscriber(published)
	go func() {
		time.Sleep(2 * time.Minute)
		every(4*time.Minute, func() { publish(published) })
	}()
	batch := make(chan int, 4)
	for i := 0; i < 3; i++ {
		go produceBatch(batch)
	}
	fmt.Println("READY")
	select {}
}
