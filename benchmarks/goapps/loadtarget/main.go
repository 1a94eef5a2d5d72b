// Command loadtarget is both halves of the target-latency benchmark of `grprof serve`:
//
//	loadtarget serve [-parked 300] [-work 1ms]
//	    a Go HTTP service with net/http/pprof: GET /work burns about -work of CPU and
//	    allocates (a JSON answer built from a fresh slice), and -parked goroutines wait in
//	    a few realistic shapes so its goroutine profile has content. Prints
//	    "LISTEN http://127.0.0.1:PORT", then "READY".
//	loadtarget load -url URL -rate 300 -duration 60s [-raw FILE]
//	    a constant-rate (open model) load generator: request i is due at start + i/rate and
//	    is sent then, on its own goroutine, whatever earlier requests are doing. Latency is
//	    measured from the due time, not the send time, so a stalled sender or server is
//	    charged for every request it delayed (no coordinated omission). Prints one JSON
//	    line; -raw writes every latency in microseconds, one per line, in the order the
//	    requests were due.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: loadtarget serve|load [flags]")
	}
	switch os.Args[1] {
	case "serve":
		serveMain(os.Args[2:])
	case "load":
		loadMain(os.Args[2:])
	default:
		log.Fatalf("unknown command %q: serve or load", os.Args[1])
	}
}

// -- the service ------------------------------------------------------------------------

var rounds int // sha256 rounds over a 4 KiB block that take about -work, set at startup

func serveMain(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	parked := fs.Int("parked", 300, "goroutines parked in the background")
	work := fs.Duration("work", time.Millisecond, "CPU time per /work request")
	fs.Parse(args)

	rounds = calibrate(*work)
	park(*parked)
	http.HandleFunc("/work", handleWork)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\nREADY\n", l.Addr())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

var block = make([]byte, 4096)

func burn(n int) [32]byte {
	h := sha256.New()
	for i := 0; i < n; i++ {
		h.Write(block)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// calibrate finds the rounds of burn that take d (best of a few tries: the fastest run is
// the least disturbed one).
func calibrate(d time.Duration) int {
	const probe = 2000
	best := time.Duration(1 << 62)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		burn(probe)
		best = min(best, time.Since(t0))
	}
	return max(1, int(float64(probe)*float64(d)/float64(best)))
}

type item struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Score uint8  `json:"score"`
}

func handleWork(w http.ResponseWriter, r *http.Request) {
	sum := burn(rounds)
	items := make([]item, 64) // a little garbage per request, like decoding and encoding
	for i := range items {
		items[i] = item{ID: i, Name: fmt.Sprintf("item-%d", i), Score: sum[i%32]}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(items)
}

// Reachable from globals, so that the goroutineleak profile (which reports goroutines
// blocked on objects nothing else can reach) finds none: this is a healthy service.
var (
	jobs        = make(chan func())
	mu          sync.Mutex
	cond        = sync.NewCond(&mu)
	subscribers []chan struct{}
)

// park starts n goroutines that wait the way a service's background goroutines do: a
// worker pool on a channel, subscribers in a select, waiters on a sync.Cond, under pprof
// labels for part of them.
func park(n int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0:
			go func() {
				for job := range jobs {
					job()
				}
			}()
		case 1:
			ticks := make(chan struct{})
			subscribers = append(subscribers, ticks)
			labels := pprof.Labels("component", "subscriber")
			go pprof.Do(ctx, labels, func(ctx context.Context) {
				select {
				case <-ctx.Done():
				case <-ticks:
				}
			})
		default:
			go func() {
				mu.Lock()
				cond.Wait()
				mu.Unlock()
			}()
		}
	}
}

// -- the load generator -----------------------------------------------------------------

type summary struct {
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	Rate         float64 `json:"rate"`
	Seconds      float64 `json:"seconds"`
	P50us        int64   `json:"p50_us"`
	P90us        int64   `json:"p90_us"`
	P99us        int64   `json:"p99_us"`
	P999us       int64   `json:"p999_us"`
	MaxUs        int64   `json:"max_us"`
	MeanUs       float64 `json:"mean_us"`
	SendLagP99us int64   `json:"send_lag_p99_us"`
	SendLagMaxUs int64   `json:"send_lag_max_us"`
	BeginUnixNs  int64   `json:"begin_unix_ns"` // request i was due at this + i/rate
}

func loadMain(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	rate := fs.Float64("rate", 300, "requests per second")
	duration := fs.Duration("duration", time.Minute, "how long to send")
	raw := fs.String("raw", "", "write every latency (microseconds, one per line) to this file")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	fs.Parse(args)
	if *url == "" || *rate <= 0 {
		log.Fatal("load: -url and a positive -rate are required")
	}

	n := int(*rate * duration.Seconds())
	lat := make([]time.Duration, n)
	sendLag := make([]time.Duration, n)
	errs := make([]error, n)
	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true,
			IdleConnTimeout: time.Minute,
		},
	}
	period := time.Duration(float64(time.Second) / *rate)
	var wg sync.WaitGroup
	begin := time.Now().Add(50 * time.Millisecond)
	for i := 0; i < n; i++ {
		due := begin.Add(time.Duration(i) * period)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sendLag[i] = time.Since(due)
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			errs[i] = get(client, *url)
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(begin)

	out := summarize(lat, sendLag, errs)
	out.Rate, out.Seconds, out.BeginUnixNs = *rate, elapsed.Seconds(), begin.UnixNano()
	if *raw != "" {
		writeRaw(*raw, lat)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func summarize(lat, sendLag []time.Duration, errs []error) summary {
	s := summary{Requests: len(lat)}
	for _, e := range errs {
		if e != nil {
			if s.Errors == 0 {
				s.FirstError = e.Error()
			}
			s.Errors++
		}
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	var total time.Duration
	for _, d := range sorted {
		total += d
	}
	if len(sorted) > 0 {
		s.MeanUs = float64(total.Microseconds()) / float64(len(sorted))
		s.MaxUs = sorted[len(sorted)-1].Microseconds()
	}
	s.P50us, s.P90us = rank(sorted, 0.50), rank(sorted, 0.90)
	s.P99us, s.P999us = rank(sorted, 0.99), rank(sorted, 0.999)
	lags := append([]time.Duration(nil), sendLag...)
	sort.Slice(lags, func(a, b int) bool { return lags[a] < lags[b] })
	s.SendLagP99us = rank(lags, 0.99)
	if len(lags) > 0 {
		s.SendLagMaxUs = lags[len(lags)-1].Microseconds()
	}
	return s
}

// rank is the nearest-rank percentile of sorted durations, in microseconds.
func rank(sorted []time.Duration, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Microseconds()
}

func writeRaw(path string, lat []time.Duration) {
	var b strings.Builder
	for _, d := range lat {
		fmt.Fprintf(&b, "%d\n", d.Microseconds())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}
