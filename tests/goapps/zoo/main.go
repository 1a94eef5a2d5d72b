// Command zoo is a real HTTP service that leaks goroutines in every category
// grprof classifies (channel, context, sdk/net/http, sdk/database/sql,
// sdk/grpc, sync, timer, io) next to healthy goroutines that only look
// suspicious (a large idle worker pool, short bursts, idle keep-alive
// connections, a periodic job). Each leak sits behind its own endpoint and
// leaks a fixed number of goroutines per request, so a test controls the rate.
//
//	zoo -db 'postgres://postgres@127.0.0.1:5432/grprof?sslmode=disable'
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once every
// dependency (PostgreSQL, the gRPC server, the upstreams) is connected.
// Endpoints: GET /leak/<kind>, /control/<name>, /truth (what leaks and what
// does not, as JSON), /metrics (Prometheus), /debug/pprof/.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	dsn := flag.String("db", "", "PostgreSQL DSN; without it the sdk/database/sql leaks answer 503")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	poolSize := flag.Int("pool", 200, "idle workers in the healthy worker pool")
	period := flag.Duration("period", 300*time.Millisecond, "interval of the healthy periodic job")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fatalf("listen: %v", err)
	}
	fmt.Println("LISTEN http://" + ln.Addr().String())

	deps, err := startDeps(*dsn)
	if err != nil {
		fatalf("%v", err)
	}
	startPool(*poolSize)
	go periodicJobs(*period)

	mux := http.NewServeMux()
	routes(mux, deps)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println("READY")
	// The main goroutine serves: its accept loop is one of the usual server goroutines.
	if err := srv.Serve(ln); err != nil {
		fatalf("serve: %v", err)
	}
}

// routes registers every endpoint behind the latency histogram and pprof labels.
func routes(mux *http.ServeMux, deps *deps) {
	for _, l := range leaks {
		handle(mux, l.Endpoint, l.handler(deps))
	}
	handle(mux, "/control/burst", burstHandler)
	handle(mux, "/control/pool", poolHandler)
	handle(mux, "/control/keepalive", deps.keepaliveHandler)
	handle(mux, "/truth", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(buildTruth(deps))
	})
	handle(mux, "/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	handle(mux, "/metrics", metricsHandler())
	handle(mux, "/debug/pprof/", pprof.Index)
	handle(mux, "/debug/pprof/cmdline", pprof.Cmdline)
	handle(mux, "/debug/pprof/profile", pprof.Profile)
	handle(mux, "/debug/pprof/symbol", pprof.Symbol)
	handle(mux, "/debug/pprof/trace", pprof.Trace)
	handle(mux, "/{$}", indexHandler)
}

func indexHandler(w http.ResponseWriter, r *http.Request) {
	var names []string
	for _, l := range leaks {
		names = append(names, l.Endpoint+"  ("+l.Category+")")
	}
	sort.Strings(names)
	fmt.Fprintf(w, "leak zoo\n\n%s\n\n/control/burst?n=50\n/control/pool?n=20\n/control/keepalive\n/truth\n/metrics\n/debug/pprof/\n",
		strings.Join(names, "\n"))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "zoo: "+format+"\n", args...)
	os.Exit(1)
}
