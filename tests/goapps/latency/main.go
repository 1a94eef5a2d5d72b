// Command latency serves requests whose latency the caller chooses and exports
// it as the `http_request_duration_seconds` histogram on /metrics, so tests can
// point a real Prometheus at it and know what p95 to expect.
//
//	GET /work?ms=N   sleeps N milliseconds (0..10000), then answers "ok"
//	GET /idle        never called by the tests: its series stays at zero
//	GET /metrics     Prometheus text exposition (client_golang)
//	GET /moved/...   302 to /metrics (a URL that redirects, for client tests)
//	GET /text/...    200 with plain text (a URL that answers, but not JSON)
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets fine enough around the latencies the tests use (40 ms, 140 ms) that
// each lands well inside one bucket, away from the edges.
var buckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.5, 1, 2.5, 5, 10}

var duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "http_request_duration_seconds",
	Help:    "Time to serve a request, by handler.",
	Buckets: buckets,
}, []string{"handler"})

func main() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(duration)
	// Create both series up front: /idle exists with zero counts, so a quantile
	// over it is NaN (no traffic), not an empty result.
	duration.WithLabelValues("/work")
	duration.WithLabelValues("/idle")

	mux := http.NewServeMux()
	mux.Handle("/work", timed("/work", work))
	mux.Handle("/idle", timed("/idle", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/moved/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/metrics", http.StatusFound)
	})
	mux.HandleFunc("/text/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello from a service that is not Prometheus")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
	fmt.Println("LISTEN http://" + ln.Addr().String())
	fmt.Println("READY")
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func work(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 || ms > 10000 {
		http.Error(w, "ms must be an integer in 0..10000", http.StatusBadRequest)
		return
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	fmt.Fprintln(w, "ok")
}

// timed observes the wall time of each request, as a real service's middleware would.
func timed(handler string, h http.HandlerFunc) http.Handler {
	obs := duration.WithLabelValues(handler)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h(w, r)
		obs.Observe(time.Since(start).Seconds())
	})
}
