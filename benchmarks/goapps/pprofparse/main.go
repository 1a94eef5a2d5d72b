// Command pprofparse times github.com/google/pprof/profile.Parse, the parser `go tool pprof`
// uses, on goroutine profiles: the peer of grprof's debug=0 (and debug=1) parsers in
// benchmarks/pprof.py.
//
//	pprofparse -n ITER FILE...
//
// Each file is read into memory once; after one untimed warm-up, each of ITER iterations
// runs profile.Parse on a bytes.Reader over it (gunzip and decoding included, as for
// grprof). It prints one JSON object per file: best and median milliseconds, and what the
// parse found (samples, locations, goroutines) so the reader can check it read everything.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/google/pprof/profile"
)

type result struct {
	File       string  `json:"file"`
	BestMS     float64 `json:"best_ms"`
	MedianMS   float64 `json:"median_ms"`
	MaxMS      float64 `json:"max_ms"`
	Iterations int     `json:"iterations"`
	Samples    int     `json:"samples"`
	Locations  int     `json:"locations"`
	Goroutines int64   `json:"goroutines"`
	Error      string  `json:"error,omitempty"`
}

func main() {
	n := flag.Int("n", 20, "timed iterations per file")
	flag.Parse()
	enc := json.NewEncoder(os.Stdout)
	for _, path := range flag.Args() {
		enc.Encode(bench(path, *n))
	}
}

func bench(path string, n int) result {
	r := result{File: path, Iterations: n}
	data, err := os.ReadFile(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	p, err := profile.Parse(bytes.NewReader(data)) // warm-up, and what it found
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Samples, r.Locations = len(p.Sample), len(p.Location)
	for _, s := range p.Sample {
		r.Goroutines += s.Value[0]
	}
	times := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		p = nil
		runtime.GC() // each run starts from a clean heap, as grprof's do
		t0 := time.Now()
		p, err = profile.Parse(bytes.NewReader(data))
		times = append(times, float64(time.Since(t0).Nanoseconds())/1e6)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	sort.Float64s(times)
	r.BestMS, r.MedianMS, r.MaxMS = times[0], times[len(times)/2], times[len(times)-1]
	return r
}
