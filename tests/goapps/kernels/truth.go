package main

import (
	"runtime"
	"runtime/pprof"
)

// kernel is one leak: run is called `calls` times right after start (each call
// on its own goroutine) and every call leaves site.perCall goroutines at each
// of its sites. Most kernels leak at one site; a few leave two groups that
// block differently (a holder and its waiters).
type kernel struct {
	name    string
	calls   int
	run     func()
	summary string
	sites   []site
}

type site struct {
	suffix   string // "" when the kernel has one site; else the entry is "name/suffix"
	category string
	function string
	perCall  int
}

// leakAt is the usual one-site kernel.
func leakAt(category, function string, perCall int) []site {
	return []site{{category: category, function: function, perCall: perCall}}
}

// control is a healthy part of the program; start runs once before READY.
type control struct {
	name    string
	start   func() error
	summary string
	sites   []csite
}

type csite struct {
	suffix   string
	function string
	min, max int
	// releasedAfter is when goroutines blocked on purpose are released (seconds
	// after start); 0 when they live as long as the process.
	releasedAfter float64
}

func liveAt(function string, min, max int) []csite {
	return []csite{{function: function, min: min, max: max}}
}

// Entry is one line of /truth.
//
// Function is the function that owns the goroutines: the innermost frame of
// their stacks that is some entry's Function. For the program's own code it is
// the innermost main.* frame (the site grprof reports); for goroutines that run
// only standard-library code (net/http connections, signal.NotifyContext,
// context's propagateCancel) it is the standard-library function that started
// them.
type Entry struct {
	Name   string `json:"name"`
	Kernel string `json:"kernel"`
	Kind   string `json:"kind"` // "leak" or "control"
	// Category is the root cause of a leak (a grprof category), "" for controls.
	Category string `json:"category"`
	Function string `json:"function"`
	// Count is the number of goroutines a leak leaves (calls x per_call), or
	// the most a control has at once; Min..Max bound the count in any dump
	// taken after READY (Min = Max = Count for leaks).
	Count         int     `json:"count"`
	Min           int     `json:"min"`
	Max           int     `json:"max"`
	Calls         int     `json:"calls"`
	PerCall       int     `json:"per_call"`
	ReleasedAfter float64 `json:"released_after_s"`
	Summary       string  `json:"summary"`
}

// Truth is the /truth document.
type Truth struct {
	Schema      string  `json:"schema"`
	GoVersion   string  `json:"go_version"`
	LeakProfile bool    `json:"leak_profile"`
	Entries     []Entry `json:"entries"`
}

var kernels = concat(channelKernels, syncKernels, contextKernels, timerKernels, ioKernels)

var controls = concatControls(poolControls, loopControls, lateControls, churnControls, netControls)

func concat(lists ...[]kernel) []kernel {
	var all []kernel
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

func concatControls(lists ...[]control) []control {
	var all []control
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

func buildTruth() Truth {
	t := Truth{
		Schema:      "grprof.kernels.truth/v1",
		GoVersion:   runtime.Version(),
		LeakProfile: pprof.Lookup("goroutineleak") != nil,
		Entries:     []Entry{},
	}
	for _, k := range kernels {
		for _, s := range k.sites {
			n := k.calls * s.perCall
			t.Entries = append(t.Entries, Entry{
				Name: entryName(k.name, s.suffix), Kernel: k.name, Kind: "leak", Category: s.category,
				Function: s.function, Count: n, Min: n, Max: n, Calls: k.calls, PerCall: s.perCall,
				Summary: k.summary,
			})
		}
	}
	for _, c := range controls {
		for _, s := range c.sites {
			t.Entries = append(t.Entries, Entry{
				Name: entryName(c.name, s.suffix), Kernel: c.name, Kind: "control", Function: s.function,
				Count: s.max, Min: s.min, Max: s.max, ReleasedAfter: s.releasedAfter, Summary: c.summary,
			})
		}
	}
	return t
}

func entryName(name, suffix string) string {
	if suffix == "" {
		return name
	}
	return name + "/" + suffix
}

func startControls() error {
	for _, c := range controls {
		if err := c.start(); err != nil {
			return err
		}
	}
	return nil
}
