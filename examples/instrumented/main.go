// instrumented is a Go service set up for grprof (docs/instrumenting.md): its API on the
// public address, net/http/pprof on a separate server bound to a private address, and pprof
// labels on the goroutines each request starts.
//
//	go build -ldflags "-X main.version=1.2.3" .
//	./instrumented -addr :8080 -pprof-addr 127.0.0.1:6060
//	grprof analyze 127.0.0.1:6060
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	runtimepprof "runtime/pprof"
	"time"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// debugMux serves the pprof endpoints. It is not http.DefaultServeMux: importing
// net/http/pprof registers its handlers there, and a public server that used the default mux
// would serve them to everyone.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // goroutine, goroutineleak (Go 1.26+), heap...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// apiMux is the public API. Each request runs under pprof labels, which the goroutines it
// starts inherit: grprof shows them per group (`labels` in its report).
func apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		runtimepprof.Do(r.Context(), runtimepprof.Labels("handler", "orders"), func(ctx context.Context) {
			result := make(chan string, 1) // buffered: the worker never blocks if we time out
			go func() { result <- lookup(ctx) }()
			select {
			case s := <-result:
				fmt.Fprintln(w, s)
			case <-ctx.Done():
				http.Error(w, "timeout", http.StatusGatewayTimeout)
			}
		})
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})
	return mux
}

func lookup(ctx context.Context) string {
	select {
	case <-time.After(10 * time.Millisecond):
		return "order 42"
	case <-ctx.Done():
		return ""
	}
}

// background is a long-lived goroutine labelled by hand: SetGoroutineLabels sets the labels
// of the calling goroutine (and of those it starts later) from a context.
func background(ctx context.Context) {
	runtimepprof.SetGoroutineLabels(runtimepprof.WithLabels(ctx, runtimepprof.Labels("job", "refresh")))
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "public API address")
	pprofAddr := flag.String("pprof-addr", "127.0.0.1:6060", "pprof address: loopback or a pod-internal port, never public")
	flag.Parse()

	go background(context.Background())

	dl, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		log.Fatal(err)
	}
	debug := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	go func() { log.Println(debug.Serve(dl)) }()

	al, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	api := &http.Server{Handler: apiMux(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(os.Stdout, "version %s: API on http://%s, pprof on http://%s/debug/pprof/\n", version, al.Addr(), dl.Addr())
	log.Fatal(api.Serve(al))
}
