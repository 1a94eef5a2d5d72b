package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// leaks lists every leak kind, in category order.
var leaks = concat(channelLeaks, contextLeaks, sdkLeaks, syncLeaks, timerLeaks, ioLeaks)

func concat(lists ...[]*Leak) []*Leak {
	var all []*Leak
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// jobs feeds the healthy worker pool; it is never closed because the pool
// lives as long as the process.
var jobs = make(chan func())

// startPool starts n workers; call it before serving (it records n in the truth).
func startPool(n int) {
	controls[0].Goroutines[0].Min, controls[0].Goroutines[0].Max = n, n
	for range n {
		go poolWorker(jobs)
	}
}

func poolWorker(jobs <-chan func()) {
	for job := range jobs {
		job()
	}
}

// poolHandler runs n small jobs on the pool and waits for them.
func poolHandler(w http.ResponseWriter, r *http.Request) {
	n := intParam(r, "n", 20)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		jobs <- func() {
			defer wg.Done()
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	fmt.Fprintf(w, "ran %d jobs\n", n)
}

// burstHandler starts n goroutines that each finish within 10-100 ms.
func burstHandler(w http.ResponseWriter, r *http.Request) {
	n := intParam(r, "n", 50)
	for range n {
		go burstWorker(10*time.Millisecond + rand.N(90*time.Millisecond))
	}
	fmt.Fprintf(w, "started %d\n", n)
}

func burstWorker(d time.Duration) {
	time.Sleep(d)
}

// keepaliveHandler makes keepConns concurrent requests to the keep-alive
// upstream, reading and closing every body: the connections go back to the
// client's pool and stay there idle, at most keepConns of them.
func (d *deps) keepaliveHandler(w http.ResponseWriter, r *http.Request) {
	var wg sync.WaitGroup
	errs := make(chan error, keepConns)
	for range keepConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- d.fetchUpstream()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (d *deps) fetchUpstream() error {
	resp, err := d.keepClient.Get(d.keepUpstream + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// periodicJobs runs a short job every period, each in its own goroutine.
func periodicJobs(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for range t.C {
		go periodicJob()
	}
}

func periodicJob() {
	time.Sleep(20 * time.Millisecond)
}

func intParam(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil && v >= 0 && v <= 10000 {
		return v
	}
	return def
}

// controls are the healthy goroutines, as real dumps of the zoo show them.
var controls = []Control{
	{
		Name: "worker-pool", Endpoint: "/control/pool",
		Summary: "a large pool of long-lived workers started by main, idle on a job channel between jobs",
		Goroutines: []Bounded{{Stack: Stack{Function: "main.poolWorker", CreatedBy: "main.startPool",
			States: []string{"chan receive", "runnable", "running"}}, Min: -1, Max: -1}}, // set by startPool
	},
	{
		Name: "bursts", Endpoint: "/control/burst",
		Summary: "bursts of short-lived goroutines (10-100 ms), orphaned as soon as the request ends; they drain by themselves",
		Goroutines: []Bounded{{Stack: Stack{Function: "main.burstWorker", Frames: []string{"time.Sleep"}, CreatedBy: "main.burstHandler",
			States: []string{"sleep", "runnable", "running"}}, Min: 0, Max: -1}},
	},
	{
		Name: "keepalive", Endpoint: "/control/keepalive",
		Summary: "idle HTTP keep-alive connections in a bounded client pool (MaxConnsPerHost 4) to a local upstream: the client's read and write loops and the upstream's connection goroutines",
		Goroutines: []Bounded{
			{Stack: Stack{Frames: []string{"net/http.(*persistConn).Read", "net/http.(*persistConn).readLoop"}, CreatedBy: "net/http.(*Transport).dialConn",
				States: []string{"IO wait"}, Side: "client"}, Min: 0, Max: keepConns},
			{Stack: writeLoopStack, Min: 0, Max: keepConns, SharesStackWith: []string{"http-body-unclosed"}},
			{Stack: Stack{Frames: []string{"net/http.(*connReader).Read", "net/http.(*conn).serve"}, CreatedBy: "net/http.(*Server).Serve",
				States: []string{"IO wait"}, Side: "server"}, Min: 0, Max: keepConns},
		},
	},
	{
		Name: "periodic-job", Endpoint: "",
		Summary: "a ticker loop started by main that runs a 20 ms job in a new goroutine every period (300 ms)",
		Goroutines: []Bounded{
			{Stack: Stack{Function: "main.periodicJobs", CreatedBy: "main.main", States: []string{"chan receive", "runnable", "running"}}, Min: 1, Max: 1},
			{Stack: Stack{Function: "main.periodicJob", Frames: []string{"time.Sleep"}, CreatedBy: "main.periodicJobs",
				States: []string{"sleep", "runnable", "running"}}, Min: 0, Max: 2},
		},
	},
	{
		Name: "http-server", Endpoint: "",
		Summary: "the zoo's own HTTP accept loop, in the main goroutine",
		Goroutines: []Bounded{{Stack: Stack{Function: "main.main", Frames: []string{"net.(*TCPListener).Accept", "net/http.(*Server).Serve"},
			States: []string{"IO wait", "runnable", "running"}}, Min: 1, Max: 1}},
	},
	{
		Name: "upstream-servers", Endpoint: "",
		Summary: "accept loops of the two local HTTP upstreams and of the silent TCP peer",
		Goroutines: []Bounded{
			{Stack: Stack{Function: "main.serveUpstream", Frames: []string{"net.(*TCPListener).Accept", "net/http.(*Server).Serve"},
				CreatedBy: "main.startUpstream", States: []string{"IO wait", "runnable", "running"}}, Min: 2, Max: 2},
			{Stack: Stack{Function: "main.(*silentPeer).acceptLoop", Frames: []string{"net.(*TCPListener).Accept"},
				CreatedBy: "main.startSilentPeer", States: []string{"IO wait", "runnable", "running"}}, Min: 1, Max: 1},
		},
	},
	{
		Name: "grpc-server", Endpoint: "",
		Summary: "the in-process gRPC server's accept loop",
		Goroutines: []Bounded{{Stack: Stack{Function: "main.serveGRPC", Frames: []string{"net.(*TCPListener).Accept", "google.golang.org/grpc.(*Server).Serve"},
			CreatedBy: "main.startGRPC", States: []string{"IO wait", "runnable", "running"}}, Min: 1, Max: 1}},
	},
	{
		Name: "grpc-shared-conn", Endpoint: "",
		Summary: "the one long-lived grpc.ClientConn (made by main, as it should be) and the server's side of its connection",
		Goroutines: []Bounded{
			sharedOnce(grpcSerializerStack, 3, "grpc-conn-unclosed"),
			sharedOnce(grpcClientReaderStack, 1, "grpc-conn-unclosed"),
			sharedOnce(grpcClientWriterStack, 1, "grpc-conn-unclosed"),
			sharedOnce(grpcServerReaderStack, 1, "grpc-conn-unclosed"),
			sharedOnce(grpcServerWriterStack, 1, "grpc-conn-unclosed"),
			sharedOnce(grpcServerKeepaliveStack, 1, "grpc-conn-unclosed"),
		},
	},
	{
		Name: "db-pools", Endpoint: "", NeedsDB: true,
		Summary:    "the connectionOpener goroutines of the zoo's two long-lived *sql.DB pools",
		Goroutines: []Bounded{sharedOnce(connectionOpenerStack, 2, "sql-db-unclosed")},
	},
}

// sharedOnce is a fixed number n of healthy goroutines whose stack a leak kind shares.
func sharedOnce(s Stack, n int, kind string) Bounded {
	return Bounded{Stack: s, Min: n, Max: n, SharesStackWith: []string{kind}}
}
