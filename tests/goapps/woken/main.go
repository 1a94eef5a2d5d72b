// woken parks goroutines whose debug=2 state reads as a blocked receive although something
// still wakes them, beside goroutines that really are stuck (tests/test_woken.py):
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
	"sync/atomic"
	"time"
)

var pings, polls atomic.Int64

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
	fmt.Println("READY")
	select {}
}
