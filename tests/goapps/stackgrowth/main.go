// stackgrowth leaks goroutines in steps, each with a stack grown past the runtime's 2 KiB
// start (a recursion with a buffer on every frame), and reports the runtime's own figures:
// tests/test_cost.py checks grprof's stack-cost estimate against runtime.MemStats.StackInuse.
//
//	GET /leak?n=N      leaks N more goroutines, answers once they are all parked
//	GET /memstats      {"stack_inuse": B, "goroutines": N, "unix_nano": T} from runtime.ReadMemStats
//	GET /metrics       Prometheus metrics of client_golang's Go collector (go_memstats_*, go_goroutines, go_gc_gomemlimit_bytes)
//	GET /debug/pprof/  the runtime's profiles (heap?debug=1 ends with "# Stack = inuse / sys")
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// deep parks at the bottom of `depth` frames of about 1 KiB each: a stack of 8 KiB or more.
//
//go:noinline
func deep(depth int, parked *sync.WaitGroup, never <-chan struct{}) byte {
	var pad [1024]byte
	pad[depth%len(pad)] = byte(depth)
	if depth == 0 {
		parked.Done()
		<-never
		return pad[0]
	}
	return deep(depth-1, parked, never) + pad[depth%len(pad)]
}

var (
	never = make(chan struct{}) // never closed: every goroutine of deep leaks
	depth = flag.Int("depth", 6, "frames of about 1 KiB each under every leaked goroutine")
)

func leak(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		http.Error(w, "n: want a count", http.StatusBadRequest)
		return
	}
	var parked sync.WaitGroup
	parked.Add(n)
	for i := 0; i < n; i++ {
		go deep(*depth, &parked, never)
	}
	parked.Wait()
	fmt.Fprintf(w, "leaked %d\n", n)
}

func memstats(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	json.NewEncoder(w).Encode(map[string]uint64{
		"stack_inuse": m.StackInuse,
		"goroutines":  uint64(runtime.NumGoroutine()),
		"unix_nano":   uint64(time.Now().UnixNano()),
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC)))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	http.HandleFunc("/leak", leak)
	http.HandleFunc("/memstats", memstats)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	fmt.Println("READY")
	log.Fatal(http.Serve(ln, nil))
}
