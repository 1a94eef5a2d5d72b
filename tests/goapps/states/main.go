// Command states parks goroutines in every wait state it can reach, serves
// net/http/pprof on 127.0.0.1 and writes what it knows about them (ids,
// expected states, functions, labels) as a JSON truth file, so tests can
// compare a parser's view of a real dump with the truth.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY" once every
// goroutine is parked and the runtime's own traceback agrees with the truth.
// Stdlib only and `go 1.19` so every recorded toolchain builds it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

// quit is never closed: main parks on it so it stays alive (and is not a leak).
var quit = make(chan struct{})

func main() {
	truthPath := flag.String("truth", "", "write the truth JSON to this path")
	n := flag.Int("n", 2, "scale: goroutines per kind are n times the kind's weight")
	depth := flag.Int("depth", 200, "recursion depth of the deep goroutines")
	wait := flag.Duration("wait", 0, "after parking: GC (stamps wait times), sleep this long, then READY")
	variant := flag.String("variant", "", "free text copied to the truth (how this run was built and run)")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("listen: %v", err)
	}
	http.HandleFunc("/spawn", spawnHandler)
	go serve(ln, curID())
	base := "http://" + ln.Addr().String()
	fmt.Println("LISTEN " + base)

	register("main", 0)
	startAll(*n, *depth, ln.Addr().String())
	settle(10*time.Second, 0)
	if *wait > 0 {
		waitMinutes(*wait)
	}
	if *truthPath != "" {
		writeTruth(*truthPath, *variant, *n, *depth, *wait)
	}
	fmt.Println("READY")
	<-quit
}

// waitMinutes makes headers show ", N minutes": a GC mark phase stamps
// waitsince on every blocked goroutine and minutes count from that stamp, so the
// GC must come before the sleep, not after it.
func waitMinutes(wait time.Duration) {
	runtime.GC()
	time.Sleep(wait)
	runtime.GC()
	minutes := int(wait / time.Minute)
	regMu.Lock()
	for _, r := range reg {
		// main is running now; the server's Accept returns on every scrape.
		if r.Kind != "main" && r.Kind != "server" {
			r.WaitMinutes = minutes
		}
	}
	regMu.Unlock()
	settle(10*time.Second, minutes)
}

func serve(ln net.Listener, creator int64) {
	register("server", creator)
	if err := http.Serve(ln, nil); err != nil {
		fatalf("serve: %v", err)
	}
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "states: "+format+"\n", args...)
	os.Exit(1)
}

// Truth is the JSON document written by -truth.
type Truth struct {
	GoVersion string `json:"go_version"`
	Variant   string `json:"variant"`
	// Minor is the 19 of go1.19.8, so consumers need not parse versions.
	Minor       int               `json:"go_minor"`
	Build       map[string]string `json:"build"`
	GODEBUG     string            `json:"godebug"`
	GOTRACEBACK string            `json:"gotraceback"`
	N           int               `json:"n"`
	Depth       int               `json:"depth"`
	// WaitMinutes is the least ", N minutes" every parked goroutine shows (0: none shown).
	WaitMinutes int `json:"wait_minutes"`
	// HeaderLabels: the runtime prints labels in debug=2 goroutine headers.
	HeaderLabels bool `json:"header_labels"`
	// LeakProfile: the goroutineleak profile exists in this build.
	LeakProfile bool           `json:"leak_profile"`
	Goroutines  []*Record      `json:"goroutines"`
	Counts      map[string]int `json:"counts"`
	Kinds       map[string]int `json:"kinds"`
}

func writeTruth(path, variant string, n, depth int, wait time.Duration) {
	recs := records()
	t := Truth{
		GoVersion:    runtime.Version(),
		Variant:      variant,
		Minor:        goMinor(),
		Build:        buildSettings(),
		GODEBUG:      os.Getenv("GODEBUG"),
		GOTRACEBACK:  os.Getenv("GOTRACEBACK"),
		N:            n,
		Depth:        depth,
		WaitMinutes:  int(wait / time.Minute),
		HeaderLabels: headerLabelsShown(recs),
		LeakProfile:  pprof.Lookup("goroutineleak") != nil,
		Goroutines:   recs,
		Counts:       map[string]int{},
		Kinds:        map[string]int{},
	}
	for _, r := range recs {
		t.Counts[r.State]++
		t.Kinds[r.Kind]++
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		fatalf("truth: %v", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		fatalf("truth: %v", err)
	}
}

// buildSettings keeps the build settings that change what dumps look like.
func buildSettings() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOEXPERIMENT", "DefaultGODEBUG", "GOARCH", "GOOS", "CGO_ENABLED":
			out[s.Key] = s.Value
		}
	}
	return out
}

// headerLabelsShown reports whether debug=2 headers of labeled goroutines carry
// their labels (Go 1.26 GODEBUG=tracebacklabels=1, Go 1.27 go.mod >= 1.27).
func headerLabelsShown(recs []*Record) bool {
	stacks := parseStacks(allStacks())
	for _, r := range recs {
		if len(r.Labels) == 0 {
			continue
		}
		if s, ok := stacks[r.ID]; ok {
			return s.labels
		}
	}
	return false
}

func sortedRecords(m map[int64]*Record) []*Record {
	out := make([]*Record, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// goMinor is the minor version of the running toolchain (19 for go1.19.8).
func goMinor() int {
	v := runtime.Version()
	i := strings.Index(v, "go1.")
	if i < 0 {
		return 0
	}
	m := 0
	for _, c := range v[i+4:] {
		if c < '0' || c > '9' {
			break
		}
		m = m*10 + int(c-'0')
	}
	return m
}
