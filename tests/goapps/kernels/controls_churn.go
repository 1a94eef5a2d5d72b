package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// Request-like goroutines that churn: a load generator starts them all the
// time, each blocks briefly and finishes, and new ones (new ids) take their
// place, so their count is steady and none lives long.
var churnControls = []control{
	{
		name: "load-generator", start: startLoadGenerator,
		summary: "the singleton that starts the request-like goroutines from a ticker until shutdown",
		sites:   liveAt("main.generateLoad", 1, 1),
	},
	{
		name: "churn-rpc-wait", start: startRPCBackend,
		summary: "20 calls/s, each blocked 50-400 ms receiving its reply from a backend loop",
		sites: []csite{
			{suffix: "calls", function: "main.handleRPC", min: 0, max: 40},
			{suffix: "backend", function: "main.rpcBackend", min: 1, max: 1},
		},
	},
	{
		name: "churn-sleep", start: noStart,
		summary: "10 downloads/s on average, each sleeping 100-500 ms (a slow disk or network read)",
		sites:   liveAt("main.serveDownload", 0, 25),
	},
	{
		name: "churn-long-poll", start: noStart,
		summary: "10 long polls/s on average, each waiting up to 300 ms on a notification channel or its context's deadline",
		sites:   liveAt("main.handleLongPoll", 0, 25),
	},
	{
		name: "fanout-drained", start: noStart,
		summary: "about once a second, five senders answer a collector that receives all five answers",
		sites: []csite{
			{suffix: "senders", function: "main.collectQuotes.func1", min: 0, max: 25},
			{suffix: "collector", function: "main.collectQuotes", min: 0, max: 5},
		},
	},
	{
		name: "semaphore-churn", start: noStart,
		summary: "bursts of six conversions (about one burst a second) share three semaphore slots (a buffered channel), released on every path; the others wait briefly to acquire",
		sites:   liveAt("main.convertDocument", 0, 30),
	},
}

func noStart() error { return nil }

func arrives(p float64) bool { return rand.Float64() < p }

// --- load-generator -----------------------------------------------------------------

func startLoadGenerator() error {
	go generateLoad(50 * time.Millisecond)
	return nil
}

func generateLoad(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// Requests arrive at random (a Bernoulli draw per tick), not in step with any scraper.
		go handleRPC(tick)
		if arrives(0.5) {
			go serveDownload(tick)
		}
		if arrives(0.5) {
			go handleLongPoll(tick)
		}
		if arrives(0.05) {
			go collectQuotes([]string{"ACME", "INIT", "GLOB", "UMBR", "WAYN"})
		}
		if arrives(0.05) {
			for i := 0; i < 6; i++ {
				go convertDocument(tick + i)
			}
		}
		if arrives(0.15) {
			notifyWaiter()
		}
		loop.post("tick")
		spans.record("span " + strconv.Itoa(tick))
	}
}

// --- churn-rpc-wait -----------------------------------------------------------------

type rpcCall struct {
	id    int
	reply chan string
}

var rpcRequests = make(chan rpcCall)

func startRPCBackend() error {
	go rpcBackend()
	return nil
}

func rpcBackend() {
	for {
		select {
		case c := <-rpcRequests:
			d := time.Duration(50+rand.IntN(350)) * time.Millisecond
			time.AfterFunc(d, func() { c.reply <- "ok " + strconv.Itoa(c.id) })
		case <-stop:
			return
		}
	}
}

var rpcServed atomic.Int64

func handleRPC(id int) {
	c := rpcCall{id: id, reply: make(chan string, 1)}
	select {
	case rpcRequests <- c:
	case <-stop:
		return
	}
	r := <-c.reply
	rpcServed.Add(int64(len(r)))
}

// --- churn-sleep --------------------------------------------------------------------

var bytesServed atomic.Int64

func serveDownload(id int) {
	time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
	bytesServed.Add(int64(id))
}

// --- churn-long-poll ----------------------------------------------------------------

var notifications = make(chan int)

func notifyWaiter() {
	select {
	case notifications <- 1:
	default:
	}
}

func handleLongPoll(id int) {
	ctx, cancel := context.WithTimeout(rootCtx, 300*time.Millisecond)
	defer cancel()
	select {
	case n := <-notifications:
		bytesServed.Add(int64(n + id))
	case <-ctx.Done():
	}
}

// --- fanout-drained -----------------------------------------------------------------

var quotesSeen atomic.Int64

func collectQuotes(symbols []string) {
	answers := make(chan int)
	for _, s := range symbols {
		go func() {
			time.Sleep(time.Duration(10+rand.IntN(200)) * time.Millisecond)
			answers <- len(s)
		}()
	}
	for range symbols {
		quotesSeen.Add(int64(<-answers))
	}
}

// --- semaphore-churn ----------------------------------------------------------------

var convertSlots = make(chan struct{}, 3)

func convertDocument(id int) {
	convertSlots <- struct{}{}
	defer func() { <-convertSlots }()
	time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
	bytesServed.Add(int64(id))
}
