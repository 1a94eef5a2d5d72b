// Command kernels runs small real-world goroutine leak kernels next to healthy
// goroutines that look like them, in one process, and serves net/http/pprof.
//
// The leak kernels have the shapes of the blocking bugs collected by GoBench
// (goker: cockroach, etcd, grpc, kubernetes, moby) and of the leaks in Uber's
// LeakProf paper: a result nobody receives after a timeout, a receive whose
// producer returned on an error path, a fan-out of which only the first answer
// is read, a Mutex left locked, lock-order inversion, a ticker loop without an
// exit, a context that is never cancelled, an io.Pipe never closed, and so on.
// Each is called a few times right after start, from its own short-lived
// "request" goroutine, and leaves a fixed number of goroutines behind.
//
// The controls are the healthy shapes that look the most like them: worker
// pools (busy and idle, their creator alive or gone), watchers and event loops,
// a ticker loop that is stopped at shutdown, a sync.Cond queue, contended
// locks, goroutines that stay blocked for 5-20 s and are then released,
// request goroutines that churn, TCP and HTTP keep-alive connections.
//
// /truth lists every leak and control (truth.go): tests/kernels.py checks it
// against real dumps. Some function names lie about the cause on purpose: a
// detector must classify from the stacks and the source, not from names.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once every
// control runs and every kernel has been called and has had time to park.
// Standard library only, `go 1.22`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of net/http/pprof and /truth")
	settle := flag.Duration("settle", 800*time.Millisecond, "time the kernels get to park before READY")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fatalf("listen: %v", err)
	}
	fmt.Println("LISTEN http://" + ln.Addr().String())

	if err := startControls(); err != nil {
		fatalf("%v", err)
	}
	launchKernels()
	time.Sleep(*settle)

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/truth", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(buildTruth())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println("READY")
	if err := srv.Serve(ln); err != nil {
		fatalf("serve: %v", err)
	}
}

// launchKernels calls every kernel kernel.calls times, each call on its own
// goroutine like a request, a few milliseconds apart.
func launchKernels() {
	for _, k := range kernels {
		for i := 0; i < k.calls; i++ {
			go callKernel(k.run)
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func callKernel(run func()) {
	run()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kernels: "+format+"\n", args...)
	os.Exit(1)
}
