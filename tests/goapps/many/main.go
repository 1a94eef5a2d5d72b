// Command many parks many goroutines with deep stacks in a few shapes and serves
// net/http/pprof on 127.0.0.1, so tests can fetch a debug=2 dump larger than
// the 64 MiB the pprof handler stops at (the dump then ends mid-goroutine).
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once all
// goroutines are parked. Stdlib only, `go 1.19`.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

var (
	block = make(chan int) // never sent on: every goroutine parks here
	mu    sync.Mutex       // held by main: the mutex shape parks on it
)

func main() {
	n := flag.Int("n", 12000, "goroutines to park")
	depth := flag.Int("depth", 120, "stack depth of each goroutine")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "many:", err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, nil) }()
	fmt.Println("LISTEN http://" + ln.Addr().String())

	mu.Lock()
	shapes := []func(int, int) int{shapeAlpha, shapeBeta, shapeGammaWithALongerName, shapeDelta}
	var started sync.WaitGroup
	started.Add(*n)
	for i := 0; i < *n; i++ {
		go shapes[i%len(shapes)](*depth, 0)
		started.Done()
	}
	started.Wait()
	waitParked(*n, 30*time.Second)
	fmt.Println("READY")
	<-block
}

// waitParked polls the goroutine count of blocked goroutines via runtime.Stack
// headers: all n must be waiting before READY.
func waitParked(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() >= n && parked() >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "many: goroutines did not park in time")
	os.Exit(3)
}

// parked counts goroutines waiting on the shared channel or mutex; it reads
// headers only, with a buffer large enough for every goroutine's first frames.
func parked() int {
	buf := make([]byte, 256<<20)
	s := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(s, " [chan receive]:\n") + strings.Count(s, " [semacquire]:\n") +
		strings.Count(s, " [sync.Mutex.Lock]:\n")
}

//go:noinline
func shapeAlpha(depth, acc int) int {
	if depth <= 1 {
		return <-block + acc
	}
	return shapeAlpha(depth-1, acc+1) + 1
}

//go:noinline
func shapeBeta(depth, acc int) int {
	var pad [8]int // a bigger frame than alpha's
	pad[depth%8] = acc
	if depth <= 1 {
		return <-block + pad[0]
	}
	return shapeBeta(depth-1, acc+2) + pad[1]
}

//go:noinline
func shapeGammaWithALongerName(depth, acc int) int {
	if depth <= 1 {
		mu.Lock()
		return acc
	}
	return shapeGammaWithALongerName(depth-1, acc^depth) + 1
}

//go:noinline
func shapeDelta(depth, acc int) int {
	if depth <= 1 {
		select {
		case v := <-block:
			return v
		}
	}
	if depth%2 == 0 {
		return shapeDelta(depth-1, acc) + 1
	}
	return shapeDeltaOdd(depth-1, acc) + 1
}

//go:noinline
func shapeDeltaOdd(depth, acc int) int {
	return shapeDelta(depth, acc+1)
}
