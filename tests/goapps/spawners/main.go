// spawners leaks goroutines that were started through a helper or by one accept loop, the
// shapes that a rule keyed on "who created it" gets wrong (tests/test_spawners.py):
//
//   - fanoutFirst: an errgroup (golang.org/x/sync) whose caller takes the first answer and
//     returns; the other workers block on their send forever. Called a few times at start,
//     never again: no growth, only the same ids staying put can show it.
//   - fanoutWait: the same through sync.WaitGroup.Go (Go 1.25), the caller then blocked in
//     Wait: the workers' creator is alive, but stuck itself. fanoutGroupWait: through
//     errgroup, its caller parked inside errgroup's Wait (a dependency's frame for a site).
//   - reportHandler and uploadHandler: two independent handler bugs on one net/http server
//     (a WaitGroup never done; a semaphore never released), driven by the same traffic, so
//     their counts rise in lockstep and every goroutine was started by the one accept loop.
//     Two bugs, two findings.
//   - replicate: a request starts a proposer, which sends while holding the replica's lock
//     (nobody receives), and a status reader, which waits for that lock: one bug, one unit,
//     named after the proposer (the waiter is the symptom; its fix is not `defer Unlock`).
//   - healthy: a main-level errgroup (a server and a shutdown watcher waiting for the
//     context), a worker pool idle on its jobs channel, and pollers sleeping in a loop,
//     started by a setup function that returned: long-lived by design.
//
// GET /drive?on=0 pauses the traffic, /drive?on=1 resumes it.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

func fanoutFirst() int {
	var g errgroup.Group
	results := make(chan int)
	for i := 0; i < 3; i++ {
		g.Go(func() error {
			results <- i // leak: after the first answer nobody receives
			return nil
		})
	}
	return <-results
}

func fanoutGroupWait() error {
	var g errgroup.Group
	results := make(chan int)
	for i := 0; i < 2; i++ {
		g.Go(func() error {
			results <- i // leak: nobody receives
			return nil
		})
	}
	return g.Wait() // stuck with its workers, inside errgroup
}

func fanoutWait() int {
	var wg sync.WaitGroup
	results := make(chan int)
	for i := 0; i < 3; i++ {
		wg.Go(func() {
			results <- i // leak: after the first answer nobody receives
		})
	}
	first := <-results
	wg.Wait() // stuck with its workers
	return first
}

var sem = make(chan struct{}, 2)

func reportHandler(w http.ResponseWriter, r *http.Request) {
	var wg sync.WaitGroup
	wg.Add(2)
	go wg.Done()
	wg.Wait() // leak: one Done is missing
}

func uploadHandler(w http.ResponseWriter, r *http.Request) {
	sem <- struct{}{} // leak: never released
	w.WriteHeader(http.StatusNoContent)
}

type replica struct {
	mu      sync.Mutex
	applied chan int
	n       int
}

func (r *replica) propose(v int) {
	r.mu.Lock()
	r.applied <- v // leak: nobody applies, and the lock is held meanwhile
	r.mu.Unlock()
}

func (r *replica) status() int {
	r.mu.Lock() // waits for propose, forever
	defer r.mu.Unlock()
	return r.n
}

func replicate() {
	r := &replica{applied: make(chan int)}
	go r.propose(1)
	time.Sleep(time.Millisecond) // the proposer takes the lock first
	go r.status()
}

// startPollers starts long-lived pollers and returns: orphans by design, healthy.
func startPollers() {
	for i := 0; i < 4; i++ {
		go poller()
	}
}

func poller() {
	for {
		time.Sleep(20 * time.Millisecond)
	}
}

func pool(jobs <-chan int) {
	for j := range jobs {
		_ = j
	}
}

// paused stops the traffic while a test takes a snapshot (GET /drive?on=0, then on=1): a
// dump taken between a request's two `go` statements would count one group a goroutine short.
var paused atomic.Bool

func main() {
	http.HandleFunc("/drive", func(w http.ResponseWriter, r *http.Request) {
		paused.Store(r.URL.Query().Get("on") == "0")
	})
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	rate := flag.Int("rate", 4, "handler calls per second, per handler")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())

	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/report", reportHandler)
	mux.HandleFunc("/upload", uploadHandler)

	// Healthy: the usual main-level errgroup, alive as long as the process.
	g, ctx := errgroup.WithContext(context.Background())
	srv := &http.Server{Handler: mux}
	g.Go(func() error { return srv.Serve(app) })
	g.Go(func() error {
		<-ctx.Done()
		return srv.Shutdown(context.Background())
	})
	jobs := make(chan int)
	for i := 0; i < 4; i++ {
		go pool(jobs)
	}

	go startPollers()
	for i := 0; i < 3; i++ {
		go fanoutFirst()
		go fanoutWait()
		go fanoutGroupWait()
	}
	go func() {
		cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 200 * time.Millisecond}
		t := time.NewTicker(time.Second / time.Duration(*rate))
		defer t.Stop()
		for range t.C {
			if paused.Load() {
				continue
			}
			go cl.Get("http://" + app.Addr().String() + "/report")
			go cl.Get("http://" + app.Addr().String() + "/upload")
			go replicate()
		}
	}()
	go func() { log.Fatal(http.Serve(ln, nil)) }()
	time.Sleep(100 * time.Millisecond)
	fmt.Println("READY")
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
}
