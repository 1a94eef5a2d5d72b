// leaky is a small HTTP service with the classic goroutine leak (a send on an unbuffered
// channel whose receiver timed out), a healthy worker pool, and a built-in client that sends
// it traffic so it leaks on its own; -fixed serves /leaky with the fix (safeHandler).
//
//	go run . -addr 127.0.0.1:6060
//	grprof analyze 'http://127.0.0.1:6060/debug/pprof/goroutine?debug=2'
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"
)

// leakyHandler starts a worker and waits for it with a timeout. When the timeout wins,
// nobody ever receives from ch and the worker blocks on its send forever.
func leakyHandler(w http.ResponseWriter, r *http.Request) {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond) // slow backend call
		ch <- "done"
	}()
	select {
	case msg := <-ch:
		io.WriteString(w, msg)
	case <-time.After(5 * time.Millisecond):
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

// jobs feeds the worker pool; safeHandler hands it some work now and then.
var jobs = make(chan func())

// safeHandler is the fix: a buffered channel lets the late worker finish.
func safeHandler(w http.ResponseWriter, r *http.Request) {
	select {
	case jobs <- func() { time.Sleep(time.Millisecond) }:
	default: // every worker busy: skip the optional work
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Millisecond)
	defer cancel()
	ch := make(chan string, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		ch <- "done"
	}()
	select {
	case msg := <-ch:
		io.WriteString(w, msg)
	case <-ctx.Done():
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

// workerPool is healthy: a fixed number of long-lived goroutines waiting for jobs.
func workerPool(n int, jobs <-chan func()) {
	for i := 0; i < n; i++ {
		go func() {
			for job := range jobs {
				job()
			}
		}()
	}
}

func traffic(base string, rate int) {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		<-tick.C
		path := "/leaky"
		if i%2 == 1 {
			path = "/safe"
		}
		go func() {
			resp, err := client.Get(base + path)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6060", "listen address (port 0 picks a free port)")
	rate := flag.Int("rate", 40, "requests per second the built-in client sends (0: none)")
	fixed := flag.Bool("fixed", false, "serve /leaky with the fix (a buffered channel and the request's context): no leak")
	flag.Parse()

	if *fixed {
		http.HandleFunc("/leaky", safeHandler)
	} else {
		http.HandleFunc("/leaky", leakyHandler)
	}
	http.HandleFunc("/safe", safeHandler)
	workerPool(8, jobs)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stdout, "LISTEN %s\n", base)
	if *fixed {
		fmt.Fprintln(os.Stdout, "FIXED")
	}
	if *rate > 0 {
		go traffic(base, *rate)
	}
	fmt.Fprintln(os.Stdout, "READY")
	log.Fatal(http.Serve(ln, nil))
}
