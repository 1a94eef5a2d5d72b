// Command crash produces real Go tracebacks (panics, fatal errors, SIGQUIT
// dumps) for grprof's parser fixtures. Each mode first prints one line
//
//	GRPROF-TRUTH {json}
//
// on stdout with what the program knows about its goroutines (ids, expected
// states, innermost main.* function, creator ids), then crashes or dumps on
// stderr. Modes that wait for a signal print READY on stdout when parked.
//
// Stdlib only; it must build with Go 1.19 (no min/max, slices, range-over-int).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// G is what the program knows about one goroutine.
type G struct {
	ID int64 `json:"id"`
	// State is the expected header status or wait reason without modifiers;
	// empty when the program cannot know it (e.g. a racing writer).
	State string `json:"state,omitempty"`
	// Func is the innermost function of package main on the goroutine's stack.
	Func      string            `json:"func"`
	Creator   int64             `json:"creator,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
	Locked    bool              `json:"locked_to_thread,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Ancestors []int64           `json:"ancestors,omitempty"`
	Synctest  bool              `json:"synctest,omitempty"`
	Durable   bool              `json:"durable,omitempty"`
	Note      string            `json:"note,omitempty"`
}

// Truth is the GRPROF-TRUTH line.
type Truth struct {
	Mode        string `json:"mode"`
	Go          string `json:"go"`
	GOTRACEBACK string `json:"gotraceback"`
	GODEBUG     string `json:"godebug"`
	// Scope says which goroutines the dump should contain: "all" (every
	// goroutine listed), "current" (only the one marked by Current),
	// "truncated" (a prefix of a full dump).
	Scope      string            `json:"scope"`
	Current    int64             `json:"current,omitempty"`
	Goroutines []G               `json:"goroutines"`
	Prologue   []string          `json:"prologue,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
}

type modeFunc func(t *Truth)

var modes = map[string]modeFunc{}

func register(name string, f modeFunc) { modes[name] = f }

func main() {
	mode := flag.String("mode", "", "mode to run")
	list := flag.Bool("list", false, "list modes")
	flag.Parse()
	if *list {
		printModes()
		return
	}
	f, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", *mode)
		printModes()
		os.Exit(64)
	}
	f(newTruth(*mode))
}

func printModes() {
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println(strings.Join(names, "\n"))
}

func newTruth(mode string) *Truth {
	return &Truth{
		Mode:        mode,
		Go:          runtime.Version(),
		GOTRACEBACK: os.Getenv("GOTRACEBACK"),
		GODEBUG:     os.Getenv("GODEBUG"),
		Scope:       scopeFor(os.Getenv("GOTRACEBACK")),
		Current:     goid(),
	}
}

// scopeFor is what a panic prints at a GOTRACEBACK level: only the
// panicking goroutine at none/single (the default), all user goroutines above.
func scopeFor(level string) string {
	switch level {
	case "", "single", "0", "1", "none":
		return "current"
	}
	return "all"
}

// emit prints the truth line; it must come before anything on stderr.
func emit(t *Truth) {
	qualify(t)
	b, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString("GRPROF-TRUTH " + string(b) + "\n")
}

// qualify rewrites "main." function names for a test binary, where the
// package's functions print under its import path (grproftest/crash.F).
func qualify(t *Truth) {
	pfx := strings.TrimSuffix(runtime.FuncForPC(reflect.ValueOf(goid).Pointer()).Name(), "goid")
	if pfx == "main." {
		return
	}
	for i := range t.Goroutines {
		g := &t.Goroutines[i]
		g.Func = strings.Replace(g.Func, "main.", pfx, 1)
		g.CreatedBy = strings.Replace(g.CreatedBy, "main.", pfx, 1)
	}
}

// ready tells the recording script that every goroutine is parked.
func ready() { os.Stdout.WriteString("READY\n") }

// goid parses the current goroutine's id from its own traceback header,
// "goroutine 18 [running]:" (with "gp=... m=..." or labels on newer Go).
func goid() int64 {
	var buf [128]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n]))
	id, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		panic("goid: " + string(buf[:n]))
	}
	return id
}

// goMinor is the minor version of the running toolchain (22 for go1.22.12).
func goMinor() int {
	v := strings.TrimPrefix(runtime.Version(), "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return n
}

// mutexReason is how a goroutine blocked in sync.Mutex.Lock shows.
func mutexReason() string {
	if goMinor() >= 20 {
		return "sync.Mutex.Lock"
	}
	return "semacquire"
}

// waitGroupReason is how a goroutine blocked in sync.WaitGroup.Wait shows.
func waitGroupReason() string {
	if goMinor() >= 24 {
		return "sync.WaitGroup.Wait"
	}
	return "semacquire"
}
