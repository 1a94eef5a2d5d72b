// Command labelled is a small HTTP server using reqlabels: each request runs
// under the labels route and method, and so do the goroutines it starts.
// GET /work/{id} blocks (with a worker goroutine it starts) until
// POST /release; /debug/pprof/ serves the profiles (unlabelled).
//
// It prints "LISTEN http://addr" and "READY" on stdout (tests/gobuild.py's
// protocol). Flag -addr sets the listen address (default 127.0.0.1:0).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"

	"github.com/grprof/grprof/go/reqlabels"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()

	var mu sync.Mutex
	release := make(chan struct{})

	mux := reqlabels.NewServeMux()
	mux.HandleFunc("GET /work/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c := release
		mu.Unlock()
		done := make(chan struct{})
		go worker(c, done) // inherits route and method
		wait(c)
		<-done
		fmt.Fprintf(w, "done %s\n", r.PathValue("id"))
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		close(release)
		release = make(chan struct{})
		mu.Unlock()
		fmt.Fprintln(w, "released")
	})
	// The profiler on the plain mux: its own requests stay unlabelled.
	mux.ServeMux.HandleFunc("/debug/pprof/", pprof.Index)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\nREADY\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

//go:noinline
func wait(c chan struct{}) { <-c }

//go:noinline
func worker(c, done chan struct{}) {
	<-c
	close(done)
}
