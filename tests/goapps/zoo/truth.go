package main

import (
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
)

// Stack describes one group of goroutines by what a debug=2 dump shows for it.
// Every claim here was checked against real dumps of this program (see
// tests/test_zoo_truth.py, which checks it again on every run).
type Stack struct {
	// Function is the innermost main.* frame, "" when the stack has none
	// (goroutines started inside a library).
	Function string `json:"function"`
	// Frames are non-main functions the stack contains, in stack order
	// (innermost first, a subsequence of the stack, runtime frames left out).
	Frames []string `json:"frames"`
	// CreatedBy is the function of the "created by" line.
	CreatedBy string `json:"created_by"`
	// States are the wait reasons (or statuses) the goroutines show; the first
	// is the one they show almost always.
	States []string `json:"states"`
	// Labels are the pprof labels the goroutines carry (inherited from the
	// request's handler label when a request started them).
	Labels map[string]string `json:"labels"`
	// LeakProfile is true when Go's goroutineleak profile reports these
	// goroutines (blocked on something no live goroutine can reach).
	LeakProfile bool `json:"leak_profile"`
	// Side is "client" or "server" for the two ends of a leaked connection
	// inside this one process, "" otherwise.
	Side string `json:"side"`
}

// Accumulating is a goroutine group a leak adds to on every request.
type Accumulating struct {
	Stack
	PerRequest int `json:"per_request"`
}

// Leak is one leak kind behind one endpoint.
type Leak struct {
	Kind     string `json:"kind"`
	Category string `json:"category"`
	Endpoint string `json:"endpoint"`
	Summary  string `json:"summary"`
	// Goroutines accumulate per request, except for the first FreeRequests
	// requests after start, which leave none (a Mutex's first request leaves it
	// locked, the first Rows fill the connection pool).
	Goroutines   []Accumulating `json:"goroutines"`
	PerRequest   int            `json:"per_request"`
	FreeRequests int            `json:"free_requests"`
	// Requests served so far: expect PerRequest * max(0, Requests - FreeRequests) goroutines.
	Requests int64 `json:"requests"`
	Enabled  bool  `json:"enabled"`

	run     func(d *deps, w http.ResponseWriter, r *http.Request)
	needsDB bool
}

func grows(perRequest int, s Stack) Accumulating {
	return Accumulating{Stack: s, PerRequest: perRequest}
}

// Bounded is a healthy goroutine group and the bounds of its count.
type Bounded struct {
	Stack
	// Min and Max bound the count while the zoo runs; Max -1 means it scales
	// with traffic (bursts) but drains by itself.
	Min int `json:"min"`
	Max int `json:"max"`
	// SharesStackWith lists leak kinds whose accumulating goroutines have this
	// very stack (same state, frames and creator): a group of them counts both.
	SharesStackWith []string `json:"shares_stack_with"`
}

// Control is a healthy part of the zoo that must never be called a leak.
type Control struct {
	Name       string    `json:"name"`
	Endpoint   string    `json:"endpoint"` // "" when it runs without requests
	Summary    string    `json:"summary"`
	Goroutines []Bounded `json:"goroutines"`
	NeedsDB    bool      `json:"needs_db"`
}

// Truth is the /truth document.
type Truth struct {
	Schema      string    `json:"schema"`
	GoVersion   string    `json:"go_version"`
	LeakProfile bool      `json:"leak_profile"`
	Database    bool      `json:"database"`
	Leaks       []Leak    `json:"leaks"`
	Controls    []Control `json:"controls"`
}

// requests counts each leak kind's requests (kept apart so Leak can be copied).
var requests = map[string]*atomic.Int64{}

func init() {
	for _, l := range leaks {
		requests[l.Kind] = new(atomic.Int64)
	}
}

func (l *Leak) handler(d *deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if l.needsDB && d.txDB == nil {
			http.Error(w, "started without -db", http.StatusServiceUnavailable)
			return
		}
		requests[l.Kind].Add(1)
		l.run(d, w, r)
	}
}

func buildTruth(d *deps) Truth {
	t := Truth{
		Schema:      "grprof.zoo.truth/v1",
		GoVersion:   runtime.Version(),
		LeakProfile: leakProfileBuilt(),
		Database:    d.txDB != nil,
	}
	for _, l := range leaks {
		t.Leaks = append(t.Leaks, leakView(l, d))
	}
	for _, c := range controls {
		if !c.NeedsDB || t.Database {
			t.Controls = append(t.Controls, withLabels(c))
		}
	}
	return t
}

// leakView is a copy of l with its derived fields filled in. Every goroutine a
// request starts, directly or inside a library, inherits the handler's pprof
// label; the in-process gRPC server's goroutines ("server" side) do not.
func leakView(l *Leak, d *deps) Leak {
	v := *l
	v.Requests = requests[l.Kind].Load()
	v.Enabled = !l.needsDB || d.txDB != nil
	v.Goroutines = slices.Clone(l.Goroutines)
	v.PerRequest = 0
	for i := range v.Goroutines {
		g := &v.Goroutines[i]
		v.PerRequest += g.PerRequest
		g.Labels = map[string]string{}
		g.Frames = nonNil(g.Frames)
		if g.Side != "server" {
			g.Labels["handler"] = l.Endpoint
		}
	}
	return v
}

// withLabels gives a control's client-side goroutines its endpoint's label.
func withLabels(c Control) Control {
	c.Goroutines = slices.Clone(c.Goroutines)
	for i := range c.Goroutines {
		g := &c.Goroutines[i]
		g.Labels = map[string]string{}
		g.Frames = nonNil(g.Frames)
		if c.Endpoint != "" && g.Side != "server" {
			g.Labels["handler"] = c.Endpoint
		}
		if g.SharesStackWith == nil {
			g.SharesStackWith = []string{}
		}
	}
	return c
}

// leakProfileBuilt reports whether /debug/pprof/goroutineleak exists: Go 1.26
// has it only when built with GOEXPERIMENT=goroutineleakprofile, Go 1.27 always.
func leakProfileBuilt() bool {
	return pprof.Lookup("goroutineleak") != nil
}

// nonNil keeps empty lists as [] rather than null in the JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
