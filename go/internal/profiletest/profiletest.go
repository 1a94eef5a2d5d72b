// Package profiletest takes goroutine profiles of the running test binary at
// debug=1 (text) and debug=0 (gzipped protobuf) and finds goroutines by
// their pprof labels, for the middleware tests.
package profiletest

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/grprof/grprof/go/internal/debug1"
)

// Goroutine is one record of a goroutine profile.
type Goroutine = debug1.Goroutine

// ParseDebug1 parses a debug=1 goroutine profile.
func ParseDebug1(text []byte) ([]Goroutine, error) { return debug1.Parse(text) }

// ParseDebug0 parses a debug=0 (protobuf) goroutine profile with
// github.com/google/pprof/profile.
func ParseDebug0(data []byte) ([]Goroutine, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, err
	}
	var out []Goroutine
	for _, s := range p.Sample {
		g := Goroutine{Count: int(s.Value[0]), Labels: map[string]string{}}
		for k, vs := range s.Label {
			if len(vs) > 0 {
				g.Labels[k] = vs[0]
			}
		}
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function != nil {
					g.Funcs = append(g.Funcs, ln.Function.Name)
				}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// Take returns this process's goroutine profile at debug (0 or 1), raw.
func Take(t testing.TB, debug int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, debug); err != nil {
		t.Fatalf("goroutine profile debug=%d: %v", debug, err)
	}
	return b.Bytes()
}

// Parse parses a profile taken at debug 0 or 1.
func Parse(debug int, data []byte) ([]Goroutine, error) {
	if debug == 0 {
		return ParseDebug0(data)
	}
	return ParseDebug1(data)
}

// Find returns the goroutines of gs that carry every label in want and have
// a frame whose function contains fn (any frame when fn is "").
func Find(gs []Goroutine, want map[string]string, fn string) []Goroutine {
	var out []Goroutine
	for _, g := range gs {
		if g.Matches(want) && (fn == "" || g.HasFunc(fn)) {
			out = append(out, g)
		}
	}
	return out
}

// Expect takes goroutine profiles at debug=1 and debug=0 of the test process
// and fails t unless each has a goroutine carrying want with a frame
// containing fn. It retries for up to 10s (the goroutine may still be on
// its way to the point where it blocks).
func Expect(t testing.TB, want map[string]string, fn string) {
	t.Helper()
	for _, debug := range []int{1, 0} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			data := Take(t, debug)
			gs, err := Parse(debug, data)
			if err != nil {
				t.Fatalf("parse debug=%d: %v", debug, err)
			}
			if len(Find(gs, want, fn)) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("debug=%d: no goroutine with labels %v in %q; profile:\n%s", debug, want, fn, Dump(gs))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Dump prints labelled records, for failure messages.
func Dump(gs []Goroutine) string {
	var b strings.Builder
	for _, g := range gs {
		if len(g.Labels) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%d %v\n", g.Count, g.Labels)
		for _, f := range g.Funcs {
			fmt.Fprintf(&b, "\t%s\n", f)
		}
	}
	return b.String()
}
