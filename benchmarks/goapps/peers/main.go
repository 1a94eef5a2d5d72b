// Command peers times other Go goroutine-dump parsers on one file, for comparison
// with grprof in benchmarks/parse.py.
//
//	peers -tool gostackparse|panicparse|panicparse-min -n ITER FILE
//
// The file is read into memory once; after one untimed warm-up, each of ITER
// iterations parses it from a bytes.Reader. It prints one JSON object with the best
// and median throughput in MiB/s (input bytes / wall time of one iteration).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/DataDog/gostackparse"
	"github.com/maruel/panicparse/v2/stack"
)

// outcome is what one parse produced, reported so the reader can check that every
// tool really read every goroutine.
type outcome struct {
	goroutines int
	groups     int
	errors     int
}

type runner func(data []byte) (outcome, error)

// gostackparse parses only: goroutines and frames, no grouping.
func runGostackparse(data []byte) (outcome, error) {
	gs, errs := gostackparse.Parse(bytes.NewReader(data))
	return outcome{goroutines: len(gs), errors: len(errs)}, nil
}

// panicparse with its default options (what its `pp` tool does: argument naming,
// path guessing, reading sources), then aggregation at AnyPointer similarity, the
// level that ignores pointer values like grprof's default.
func runPanicparse(data []byte) (outcome, error) {
	return panicparse(data, stack.DefaultOpts())
}

// panicparse with every optional pass off: scan + aggregate only.
func runPanicparseMin(data []byte) (outcome, error) {
	return panicparse(data, &stack.Opts{})
}

func panicparse(data []byte, opts *stack.Opts) (outcome, error) {
	s, _, err := stack.ScanSnapshot(bytes.NewReader(data), io.Discard, opts)
	if err != nil && !errors.Is(err, io.EOF) {
		return outcome{}, err
	}
	if s == nil {
		return outcome{}, errors.New("panicparse found no goroutines")
	}
	agg := s.Aggregate(stack.AnyPointer)
	return outcome{goroutines: len(s.Goroutines), groups: len(agg.Buckets)}, nil
}

var runners = map[string]runner{
	"gostackparse":   runGostackparse,
	"panicparse":     runPanicparse,
	"panicparse-min": runPanicparseMin,
}

func mibs(n int, d time.Duration) float64 {
	return float64(n) / (1 << 20) / d.Seconds()
}

func main() {
	tool := flag.String("tool", "gostackparse", "gostackparse, panicparse or panicparse-min")
	iters := flag.Int("n", 5, "timed iterations (after one warm-up)")
	flag.Parse()
	run, ok := runners[*tool]
	if !ok || flag.NArg() != 1 || *iters < 1 {
		flag.Usage()
		os.Exit(2)
	}
	data, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	out, err := run(data) // warm-up
	if err != nil {
		fail(err)
	}
	times := make([]time.Duration, *iters)
	for i := range times {
		runtime.GC() // start each iteration from a clean heap, outside the timing
		start := time.Now()
		if out, err = run(data); err != nil {
			fail(err)
		}
		times[i] = time.Since(start)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	res := map[string]any{
		"tool": *tool, "bytes": len(data), "iterations": *iters,
		"best_mibs":   mibs(len(data), times[0]),
		"median_mibs": mibs(len(data), times[len(times)/2]),
		"goroutines":  out.goroutines, "groups": out.groups, "errors": out.errors,
		"go": runtime.Version(), "times_s": secs(times),
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "peers:", err)
	os.Exit(1)
}

func secs(ts []time.Duration) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = t.Seconds()
	}
	return out
}
