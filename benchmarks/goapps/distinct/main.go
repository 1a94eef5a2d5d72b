// Command distinct parks goroutines that each have their own stack and writes this
// process's goroutine dump and profiles, as input for benchmarks of `grprof analyze` on
// dumps where grouping does not help: N goroutines, N distinct stacks.
//
//	distinct -n 20000 -out .work/distinct-20000     // writes .debug2.txt, .debug1.txt, .debug0.pb.gz
//	distinct -n 1000000 -paths 100000 -writer stack -out .work/distinct-1m  // 1M goroutines, 100k stacks, no cap
//
// Every goroutine walks its own path through 300 generated functions in 6 layered
// packages (internal/api -> handler -> service -> store -> cache -> rpc; gen.go writes
// them), 2 to 14 frames of them (a call made inside a closure adds a frame), shorter
// paths likelier, and parks at the end in one of 12 ways (channel receive and send, select
// with and without a timer, select{}, nil channel, Mutex, RWMutex both ways, WaitGroup,
// Cond, sleep). With the blocker's and the sync package's frames that is 3 to 20 frames.
// Paths are random walks over the call graph (so stacks share prefixes, as in a real
// service) and never repeat: no two goroutines have the same stack. Goroutines are started by 40
// spawner goroutines, half of which exit afterwards (their goroutines are orphans) and
// half of which stay parked; half the goroutines carry a pprof label (`tenant`), printed in
// debug=2 headers (GODEBUG=tracebacklabels=1, Go 1.26). With -paths P (0 < P < N) only P
// distinct paths are drawn and goroutine i takes path i % P: N goroutines, P distinct stacks.
// The three outputs come from the same process at the same moment:
//
//	PREFIX.debug2.txt    pprof.Lookup("goroutine").WriteTo(w, 2)  (/debug/pprof/goroutine?debug=2)
//	                     or, with -writer stack, runtime.Stack(buf, true) with a buffer grown
//	                     until everything fits (the same text, without pprof's 64 MiB cap)
//	PREFIX.debug1.txt    WriteTo(w, 1)
//	PREFIX.debug0.pb.gz  WriteTo(w, 0)
//
// It prints a one-line JSON summary on stdout.
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
	"time"

	"grprof.bench/distinct/chain"
	"grprof.bench/distinct/internal/api"
)

const spawners = 40

var parked = make(chan int)

// walks draws n distinct paths: random walks from an entry function of internal/api, of
// minLen to maxLen functions, each with a blocker; a repeated (path, blocker) is redrawn.
func walks(n, minLen, maxLen int, skew float64, rng *rand.Rand) []*chain.W {
	var entries []uint16
	for id := range api.Entries {
		entries = append(entries, id)
	}
	// Map iteration order is random: sort for a reproducible dump.
	for i := range entries {
		for j := i + 1; j < len(entries); j++ {
			if entries[j] < entries[i] {
				entries[i], entries[j] = entries[j], entries[i]
			}
		}
	}
	seen := make(map[string]bool, n)
	out := make([]*chain.W, 0, n)
	for len(out) < n {
		// Frames of the chain: one per function, one more per call made inside a closure.
		// Skewed towards short paths (u^skew), as in a real service: most stacks are shallow.
		target := minLen + int(float64(maxLen-minLen+1)*math.Pow(rng.Float64(), skew))
		path := []uint16{entries[rng.Intn(len(entries))]}
		for frames := 1; frames < target; {
			last := path[len(path)-1]
			next := succ[last]
			g := next[rng.Intn(len(next))]
			cost := 1
			if closure[[2]uint16{last, g}] {
				cost = 2
			}
			if frames+cost > target {
				continue // would overshoot: draw another callee
			}
			frames += cost
			path = append(path, g)
		}
		b := blocker(rng)
		key := fmt.Sprint(path, b)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, &chain.W{Path: path, Block: chain.Blockers[b], ID: len(out)})
	}
	return out
}

// blocker draws an index into chain.Blockers by chain.Weights.
func blocker(rng *rand.Rand) int {
	total := 0
	for _, w := range chain.Weights {
		total += w
	}
	x := rng.Intn(total)
	for i, w := range chain.Weights {
		if x < w {
			return i
		}
		x -= w
	}
	return 0
}

// spawner starts its goroutines (half of them with a label), then exits or stays parked.
func spawner(k int, ws []*chain.W, stay bool, started *sync.WaitGroup) {
	plain := context.Background()
	for i, w := range ws {
		if i%2 == 0 {
			ctx := pprof.WithLabels(plain, pprof.Labels("tenant", fmt.Sprintf("t%02d", (k+i)%16)))
			pprof.SetGoroutineLabels(ctx)
		} else {
			pprof.SetGoroutineLabels(plain)
		}
		go api.Entries[w.Path[0]](w, 1)
	}
	pprof.SetGoroutineLabels(plain)
	started.Done()
	if stay {
		chain.Ready.Add(1)
		<-parked
	}
}

// assign gives goroutine i (of n) path i % len(paths), each with its own walker.
func assign(paths []*chain.W, n int) []*chain.W {
	if n == len(paths) {
		return paths
	}
	ws := make([]*chain.W, n)
	for i := range ws {
		p := paths[i%len(paths)]
		ws[i] = &chain.W{Path: p.Path, Block: p.Block, ID: i}
	}
	return ws
}

func write(path string, debug int) int {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, debug); err != nil {
		fail(err)
	}
	if debug == 2 && b.Len() >= 64<<20 {
		fmt.Fprintln(os.Stderr, "distinct: warning: pprof output hit its 64 MiB cap; use -writer stack")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		fail(err)
	}
	return b.Len()
}

// stackDump is runtime.Stack(buf, true) with a buffer grown until everything fits: the
// debug=2 text without pprof's 64 MiB cap (as shapes -writer stack).
func stackDump() []byte {
	buf := make([]byte, 64<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "distinct:", err)
	os.Exit(1)
}

func main() {
	n := flag.Int("n", 20000, "goroutines to park, each with its own stack")
	out := flag.String("out", "", "output prefix (required): PREFIX.debug2.txt, .debug1.txt, .debug0.pb.gz")
	minLen := flag.Int("min", 2, "fewest frames of generated functions on a path (closures count)")
	maxLen := flag.Int("max", 14, "most frames of generated functions on a path")
	skew := flag.Float64("skew", 3, "path length = min + (max-min+1)·u^skew, u uniform in [0,1)")
	seed := flag.Int64("seed", 14, "random seed (paths, blockers)")
	paths := flag.Int("paths", 0, "distinct paths (0: one per goroutine); goroutine i takes path i % paths")
	writer := flag.String("writer", "pprof", `debug=2 by "pprof" (WriteTo, 64 MiB cap) or "stack" (runtime.Stack, no cap)`)
	flag.Parse()
	if *paths <= 0 || *paths > *n {
		*paths = *n
	}
	if *out == "" || *minLen < 1 || *maxLen < *minLen || (*writer != "pprof" && *writer != "stack") {
		flag.Usage()
		os.Exit(2)
	}
	v := "tracebacklabels=1" // Go 1.26: labels in traceback headers; re-read on Setenv
	if old := os.Getenv("GODEBUG"); old != "" {
		v = old + "," + v
	}
	if err := os.Setenv("GODEBUG", v); err != nil {
		fail(err)
	}
	chain.Hold()
	ws := assign(walks(*paths, *minLen, *maxLen, *skew, rand.New(rand.NewSource(*seed))), *n)
	var started sync.WaitGroup
	started.Add(spawners)
	per := (len(ws) + spawners - 1) / spawners
	stay := 0
	for k := 0; k < spawners; k++ {
		lo, hi := min(k*per, len(ws)), min((k+1)*per, len(ws))
		if k%2 == 1 {
			stay++
		}
		go spawner(k, ws[lo:hi], k%2 == 1, &started)
	}
	started.Wait()
	for chain.Ready.Load() < int64(len(ws)+stay) {
		time.Sleep(10 * time.Millisecond)
	}
	// Settle: no goroutine may still be runnable on its way to its blocker.
	var settled []byte // -writer stack: the last (settled) dump, written as is
	for try := 0; try < 50; try++ {
		time.Sleep(time.Duration(50+len(ws)/1000) * time.Millisecond)
		if *writer == "stack" {
			settled = nil // let the previous dump go before taking the next
			settled = stackDump()
		} else {
			var b bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
			settled = b.Bytes()
		}
		if !bytes.Contains(settled, []byte(" [runnable")) && runtime.NumGoroutine() == len(ws)+stay+1 {
			break
		}
	}
	sizes := map[string]int{}
	if *writer == "stack" {
		if err := os.WriteFile(*out+".debug2.txt", settled, 0o644); err != nil {
			fail(err)
		}
		sizes["debug2"] = len(settled)
	} else {
		sizes["debug2"] = write(*out+".debug2.txt", 2)
	}
	settled = nil
	sizes["debug1"] = write(*out+".debug1.txt", 1)
	sizes["debug0"] = write(*out+".debug0.pb.gz", 0)
	summary := map[string]any{
		"goroutines": runtime.NumGoroutine(), "distinct": *paths, "bytes": sizes,
		"go": runtime.Version(), "out": *out,
	}
	if *writer == "stack" || *paths != *n {
		summary["writer"], summary["paths"] = *writer, *paths
	}
	if err := json.NewEncoder(os.Stdout).Encode(summary); err != nil {
		fail(err)
	}
}
