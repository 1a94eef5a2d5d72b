package main

import (
	"context"
	"net/http"
	"runtime/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// requestDuration is the latency histogram grprof's SLA-adaptive threshold reads
// (p95 through PromQL): every request of every endpoint, labelled by handler.
var requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "http_request_duration_seconds",
	Help:    "Latency of the zoo's HTTP requests.",
	Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
}, []string{"handler"})

func init() {
	prometheus.MustRegister(requestDuration)
}

func metricsHandler() http.HandlerFunc {
	return promhttp.Handler().ServeHTTP
}

// handle registers h for pattern, timed into the histogram. The handler runs
// under the pprof label handler=<pattern>, which every goroutine it starts
// inherits (that is how labels reach goroutines a library starts for a request,
// e.g. net/http's persistConn loops).
func handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	timed := promhttp.InstrumentHandlerDuration(requestDuration.MustCurryWith(prometheus.Labels{"handler": pattern}), h)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		pprof.Do(r.Context(), pprof.Labels("handler", pattern), func(ctx context.Context) {
			timed.ServeHTTP(w, r.WithContext(ctx))
		})
	})
}
