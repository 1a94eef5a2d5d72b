// Command fleet simulates a fleet of Go services for the `grprof serve` benchmark: one
// process listening on N loopback ports, each port one "service" whose
// /debug/pprof/goroutine and /debug/pprof/goroutineleak answer like net/http/pprof.
//
// Every body it serves is a profile recorded from a real Go program (tests/fixtures/states
// and tests/fixtures/zoo), never its own runtime profile: all ports would then serve the
// same large dump. Ports cycle over the recorded Go versions; every -grow-every-th port
// serves the leak zoo's recorded phases in order (one more phase every -phase), so that a
// few targets grow and produce findings. goroutineleak answers 404 "Unknown profile" (as a
// Go build without it does) except on the growing ports and on a -leak-share of the ports
// whose recording has it.
//
// Output: one JSON line per port ({"name", "addr", "variant", "growth", "leak"}), then
// `CONTROL 127.0.0.1:PORT` (GET /stats: requests served by profile and status), then READY.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// profiles holds one recording: body by debug level (0, 1, 2); a nil map means absent.
type profiles struct {
	goroutine map[int][]byte
	leak      map[int][]byte
}

type service struct {
	name    string
	variant string
	steady  *profiles
	phases  []*profiles // growing services: the zoo's phases, in order
	leak    bool
}

type counters struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *counters) add(key string) {
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

var (
	start      = time.Now()
	phaseEvery time.Duration
	stats      = &counters{n: map[string]int64{}}
	inFlight   atomic.Int64
)

func main() {
	fixtures := flag.String("fixtures", "tests/fixtures", "directory holding states/ and zoo/")
	n := flag.Int("n", 1000, "services (ports)")
	growEvery := flag.Int("grow-every", 50, "every N-th service serves the growing zoo phases (0: none)")
	leakShare := flag.Float64("leak-share", 0.1, "share of steady services (whose recording has one) serving goroutineleak")
	flag.DurationVar(&phaseEvery, "phase", time.Minute, "growing services move to the next zoo phase this often")
	flag.Parse()

	variants, names := loadStates(filepath.Join(*fixtures, "states"))
	zoo := loadZoo(filepath.Join(*fixtures, "zoo"))
	variants["zoo-warm-up"] = zoo[0]
	names = append(names, "zoo-warm-up")

	services := make([]*service, *n)
	for i := range services {
		services[i] = plan(i, *growEvery, *leakShare, names, variants, zoo)
	}
	listeners := make([]net.Listener, *n)
	for i := range services {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("listen (service %d): %v (raise `ulimit -n`?)", i, err)
		}
		listeners[i] = l
	}
	enc := json.NewEncoder(os.Stdout)
	for i, s := range services {
		line := map[string]any{
			"name": s.name, "addr": listeners[i].Addr().String(), "variant": s.variant,
			"growth": s.phases != nil, "leak": s.leak,
		}
		if err := enc.Encode(line); err != nil {
			log.Fatal(err)
		}
	}
	for i, s := range services {
		go serve(listeners[i], s)
	}
	control, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(control, http.HandlerFunc(serveStats))
	fmt.Printf("CONTROL %s\nREADY\n", control.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// plan decides what service i serves; the same i always gets the same plan.
func plan(i, growEvery int, leakShare float64, names []string, variants map[string]*profiles, zoo []*profiles) *service {
	s := &service{name: fmt.Sprintf("svc-%04d", i)}
	if growEvery > 0 && i%growEvery == growEvery-1 {
		s.variant, s.phases, s.leak = "zoo-growing", zoo, true
		return s
	}
	s.variant = names[i%len(names)]
	s.steady = variants[s.variant]
	// Spread the leak-serving ports evenly: port i serves it when the running share crosses
	// a whole number (Bresenham), among the ports whose recording has the profile.
	k := i / len(names)
	s.leak = s.steady.leak != nil && int(float64(k+1)*leakShare) > int(float64(k)*leakShare)
	return s
}

func (s *service) current() *profiles {
	if s.phases == nil {
		return s.steady
	}
	p := int(time.Since(start) / phaseEvery)
	// Hold the last leaking phase: the zoo's final "drained" phase would end the growth.
	return s.phases[min(p, len(s.phases)-2)]
}

func serve(l net.Listener, s *service) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/{profile}", func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		s.handle(w, r, r.PathValue("profile"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(l); err != nil {
		log.Fatal(err)
	}
}

// handle answers like net/http/pprof's handler.ServeHTTP, headers included.
func (s *service) handle(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := s.current()
	var bodies map[int][]byte
	switch name {
	case "goroutine":
		bodies = p.goroutine
	case "goroutineleak":
		if s.leak {
			bodies = p.leak
		}
	}
	if bodies == nil {
		stats.add(name + " 404")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Go-Pprof", "1")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, "Unknown profile")
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	debug = max(0, min(debug, 2))
	if debug != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	}
	body := bodies[debug]
	if body == nil {
		body = bodies[1] // a recording without this level: the text profile, not an error
	}
	stats.add(fmt.Sprintf("%s debug=%d 200", name, debug))
	w.Write(body)
}

func serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"uptime_seconds": time.Since(start).Seconds(),
		"requests":       stats.snapshot(),
		"in_flight":      inFlight.Load(),
	})
}

// loadStates reads tests/fixtures/states/*/: one variant per recorded Go toolchain.
func loadStates(dir string) (map[string]*profiles, []string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	out := map[string]*profiles{}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := &profiles{
			goroutine: readLevels(filepath.Join(dir, e.Name()), "goroutine."),
			leak:      readLevels(filepath.Join(dir, e.Name()), "goroutineleak."),
		}
		if p.goroutine[1] == nil {
			continue
		}
		out[e.Name()] = p
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		log.Fatalf("no recordings under %s", dir)
	}
	sort.Strings(names)
	// A recording without debug=0 (go1.26.8-wait) borrows it from its build's plain run.
	for _, name := range names {
		base, _, _ := strings.Cut(name, "-")
		if out[name].goroutine[0] == nil && out[base] != nil && out[base].goroutine[0] != nil {
			out[name].goroutine[0] = out[base].goroutine[0]
		}
	}
	return out, names
}

// loadZoo reads tests/fixtures/zoo/N-phase.*: the leak zoo's phases, in order.
func loadZoo(dir string) []*profiles {
	matches, err := filepath.Glob(filepath.Join(dir, "*.goroutine.debug1.txt"))
	if err != nil || len(matches) < 2 {
		log.Fatalf("no zoo phases under %s", dir)
	}
	sort.Strings(matches)
	var out []*profiles
	for _, m := range matches {
		prefix := strings.TrimSuffix(filepath.Base(m), "goroutine.debug1.txt")
		out = append(out, &profiles{
			goroutine: readLevels(dir, prefix+"goroutine."),
			leak:      readLevels(dir, prefix+"goroutineleak."),
		})
	}
	return out
}

// readLevels reads PREFIX{debug0.pb.gz,debug1.txt,debug2.txt} in dir; nil when none exist.
func readLevels(dir, prefix string) map[int][]byte {
	files := map[int]string{0: "debug0.pb.gz", 1: "debug1.txt", 2: "debug2.txt"}
	var out map[int][]byte
	for level, suffix := range files {
		b, err := os.ReadFile(filepath.Join(dir, prefix+suffix))
		if err != nil {
			continue
		}
		if out == nil {
			out = map[int][]byte{}
		}
		out[level] = b
	}
	return out
}
