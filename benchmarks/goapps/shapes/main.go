// Command shapes parks goroutines in many distinct stack shapes and writes this
// process's goroutine dump (debug=2 text, exactly what /debug/pprof/goroutine?debug=2
// serves) to a file, as realistic input for dump-parser benchmarks.
//
//	shapes -n 30000 -out dump.txt                          // ~50 shapes, varied depths, ~35 MB
//	shapes -n 1000000 -shallow -writer stack -out big.txt  // shallow stacks, past pprof's 64 MiB cap
//
// It prints a one-line JSON summary (goroutines, shapes, bytes) on stdout.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// request gives every goroutine its own heap object, so pointer arguments differ
// per goroutine the way they do in a real server.
type request struct {
	id    int
	route string
	body  [6]uint64
}

// env holds the things goroutines block on; main arranges for each to block forever.
type env struct {
	never  chan int
	full   chan int
	other  chan string
	mu     sync.Mutex   // held by main
	rw     sync.RWMutex // write-held by main, so RLock blocks
	rw2    sync.RWMutex // read-held by main, so Lock blocks
	wg     sync.WaitGroup
	condMu sync.Mutex
	cond   *sync.Cond
	pipe   *os.File
	pipeW  *os.File // kept so its finalizer never closes the pipe under the readers
	ready  atomic.Int64
}

type parker func(e *env, r *request)

// Each blocker is its own function so each shows up as its own frame; the ready
// counter is bumped just before blocking so main knows when everyone is parked.

func blockChanRecv(e *env, r *request) { e.ready.Add(1); <-e.never }
func blockChanSend(e *env, r *request) { e.ready.Add(1); e.full <- r.id }
func blockSelectNoCases(e *env, r *request) {
	e.ready.Add(1)
	select {}
}
func blockMutex(e *env, r *request)     { e.ready.Add(1); e.mu.Lock() }
func blockRLock(e *env, r *request)     { e.ready.Add(1); e.rw.RLock() }
func blockWLock(e *env, r *request)     { e.ready.Add(1); e.rw2.Lock() }
func blockWaitGroup(e *env, r *request) { e.ready.Add(1); e.wg.Wait() }
func blockSleep(e *env, r *request)     { e.ready.Add(1); time.Sleep(1000 * time.Hour) }

func blockSelect(e *env, r *request) {
	e.ready.Add(1)
	select {
	case <-e.never:
	case s := <-e.other:
		r.route = s
	}
}

func blockNilRecv(e *env, r *request) {
	var c chan int
	e.ready.Add(1)
	r.id = <-c
}

func blockNilSend(e *env, r *request) {
	var c chan *request
	e.ready.Add(1)
	c <- r
}

func blockCond(e *env, r *request) {
	e.condMu.Lock()
	e.ready.Add(1)
	for {
		e.cond.Wait()
	}
}

func blockPipe(e *env, r *request) {
	buf := make([]byte, 8)
	e.ready.Add(1)
	_, _ = e.pipe.Read(buf)
}

var blockers = []parker{
	blockChanRecv, blockChanSend, blockSelect, blockSelectNoCases, blockNilRecv,
	blockNilSend, blockMutex, blockRLock, blockWLock, blockWaitGroup, blockCond,
	blockSleep, blockPipe,
}

// Call paths of different depths leading to a blocker. Recursion and non-inlined
// helpers give each path its own frames; arguments carry per-goroutine values.

//go:noinline
func pathDirect(e *env, p parker, r *request) { p(e, r) }

//go:noinline
func serveHTTP(e *env, p parker, r *request) { middleware(e, p, r, 3, r.route) }

//go:noinline
func middleware(e *env, p parker, r *request, depth int, route string) {
	if depth == 0 {
		handle(e, p, r)
		return
	}
	middleware(e, p, r, depth-1, route)
	r.body[depth%len(r.body)] += uint64(len(route)) // live after the call: printed as real values
}

//go:noinline
func handle(e *env, p parker, r *request) { p(e, r) }

//go:noinline
func serveLabelled(e *env, p parker, r *request) {
	pprof.Do(context.Background(), pprof.Labels("route", r.route), func(ctx context.Context) {
		decode(ctx, e, p, r, 4)
	})
}

//go:noinline
func decode(ctx context.Context, e *env, p parker, r *request, depth int) {
	if depth == 0 {
		p(e, r)
		return
	}
	decode(ctx, e, p, r, depth-1)
	r.body[depth%len(r.body)]++ // live after the call: printed as real values
}

type pool[T any] struct {
	name  string
	items []T
}

//go:noinline
func (q *pool[T]) run(e *env, p parker, r *request) { q.dispatch(e, p, r, 5) }

//go:noinline
func (q *pool[T]) dispatch(e *env, p parker, r *request, depth int) {
	if depth == 0 {
		func() { p(e, r) }()
		return
	}
	q.dispatch(e, p, r, depth-1)
	r.body[depth%len(r.body)] += uint64(len(q.items))
}

func serveGeneric(e *env, p parker, r *request) {
	q := &pool[*request]{name: "jobs", items: []*request{r}}
	q.run(e, p, r)
}

var paths = []func(*env, parker, *request){pathDirect, serveHTTP, serveLabelled, serveGeneric}

type shape struct {
	path  func(*env, parker, *request)
	park  parker
	count int
}

// plan spreads n goroutines over shapes with a Zipf-like skew (a few big groups,
// a long tail), in a fixed pseudo-random order so depth and size are mixed.
func plan(n int, shallow bool) []shape {
	var all []shape
	for pi, path := range paths {
		if shallow && pi > 0 {
			break
		}
		for _, b := range blockers {
			all = append(all, shape{path: path, park: b})
		}
	}
	rng := rand.New(rand.NewSource(1))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	weights := make([]float64, len(all))
	sum := 0.0
	for i := range all {
		weights[i] = 1 / math.Pow(float64(i+1), 0.8)
		sum += weights[i]
	}
	left := n
	for i := range all {
		c := int(float64(n) * weights[i] / sum)
		if i == len(all)-1 {
			c = left
		}
		all[i].count = c
		left -= c
	}
	return all
}

func newEnv() *env {
	e := &env{never: make(chan int), full: make(chan int), other: make(chan string)}
	e.cond = sync.NewCond(&e.condMu)
	e.mu.Lock()
	e.rw.Lock()
	e.rw2.RLock()
	e.wg.Add(1)
	r, w, err := os.Pipe()
	if err != nil {
		fail(err)
	}
	e.pipe, e.pipeW = r, w
	return e
}

var routes = []string{"/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/search", "/admin/jobs"}

func spawn(e *env, shapes []shape) int {
	id := 0
	for _, s := range shapes {
		for i := 0; i < s.count; i++ {
			r := &request{id: id, route: routes[id%len(routes)]}
			go s.path(e, s.park, r)
			id++
		}
	}
	return id
}

// dump returns the debug=2 text; "pprof" is pprof.Lookup("goroutine").WriteTo(w, 2),
// capped by the runtime at 64 MiB, "stack" is the same runtime.Stack(buf, true) call
// with a buffer grown until everything fits.
func dump(writer string) []byte {
	if writer == "pprof" {
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
			fail(err)
		}
		if b.Len() >= 64<<20 {
			fmt.Fprintln(os.Stderr, "shapes: warning: pprof output hit its 64 MiB cap; use -writer stack")
		}
		return b.Bytes()
	}
	buf := make([]byte, 64<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// settledDump waits until every goroutine is parked (none runnable) and returns the dump.
func settledDump(e *env, n int, writer string) []byte {
	for e.ready.Load() < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	var out []byte
	for try := 0; try < 50; try++ {
		time.Sleep(time.Duration(50+n/1000) * time.Millisecond)
		out = dump(writer)
		if !bytes.Contains(out, []byte(" [runnable]:")) {
			break
		}
	}
	return out
}

// enableTracebackLabels turns on Go 1.26's label printing in traceback headers; the
// runtime re-reads GODEBUG when it is set through os.Setenv.
func enableTracebackLabels() {
	v := "tracebacklabels=1"
	if old := os.Getenv("GODEBUG"); old != "" {
		v = old + "," + v
	}
	if err := os.Setenv("GODEBUG", v); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "shapes:", err)
	os.Exit(1)
}

func main() {
	n := flag.Int("n", 30000, "goroutines to park")
	out := flag.String("out", "", "file to write the debug=2 dump to (required)")
	shallow := flag.Bool("shallow", false, "only the shallowest call path (for huge dumps)")
	writer := flag.String("writer", "pprof", `"pprof" (WriteTo debug=2, 64 MiB cap) or "stack" (runtime.Stack, no cap)`)
	labels := flag.Bool("labels", true, "print pprof labels in tracebacks (GODEBUG=tracebacklabels=1, Go 1.26+)")
	debug0 := flag.String("debug0", "", "also write WriteTo(w, 0) (gzipped profile.proto) to this file, at the same moment")
	debug1 := flag.String("debug1", "", "also write WriteTo(w, 1) (debug=1 text) to this file, at the same moment")
	flag.Parse()
	if *out == "" || (*writer != "pprof" && *writer != "stack") {
		flag.Usage()
		os.Exit(2)
	}
	if *labels {
		enableTracebackLabels()
	}
	e := newEnv()
	shapes := plan(*n, *shallow)
	spawned := spawn(e, shapes)
	data := settledDump(e, spawned, *writer)
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fail(err)
	}
	for debug, path := range map[int]string{0: *debug0, 1: *debug1} {
		if path == "" {
			continue
		}
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, debug); err != nil {
			fail(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			fail(err)
		}
	}
	summary := map[string]any{
		"goroutines": spawned, "shapes": len(shapes), "bytes": len(data),
		"writer": *writer, "go": runtime.Version(), "out": *out,
	}
	if err := json.NewEncoder(os.Stdout).Encode(summary); err != nil {
		fail(err)
	}
}
