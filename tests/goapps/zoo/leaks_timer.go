package main

import (
	"io"
	"net/http"
	"time"
)

// Category timer: per-request polling loops that never stop.
var timerLeaks = []*Leak{
	{
		Kind: "timer-ticker-loop", Category: "timer", Endpoint: "/leak/timer-ticker-loop",
		Summary: "a per-request time.Ticker polling loop whose exit condition never becomes true",
		run:     tickerLoop,
		// Awake for a moment every 250 ms: then runnable or running.
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.pollJobStatus", CreatedBy: "main.tickerLoop",
			States: []string{"chan receive", "runnable", "running"}})},
	},
	{
		Kind: "timer-after-loop", Category: "timer", Endpoint: "/leak/timer-after-loop",
		Summary: "a loop with time.After in every iteration that never exits",
		run:     afterLoop,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.heartbeat", CreatedBy: "main.afterLoop",
			States: []string{"select", "runnable", "running"}})},
	},
}

func tickerLoop(_ *deps, w http.ResponseWriter, r *http.Request) {
	go pollJobStatus(r.URL.Query().Get("job"))
	_, _ = io.WriteString(w, "polling\n")
}

// pollJobStatus polls until the job is done; an unknown job is never done.
func pollJobStatus(job string) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if jobDone(job) {
			return
		}
	}
}

func jobDone(job string) bool { return job == "done" }

func afterLoop(_ *deps, w http.ResponseWriter, r *http.Request) {
	events := make(chan string)
	go heartbeat(events)
	_, _ = io.WriteString(w, "heartbeat started\n")
}

func heartbeat(events <-chan string) {
	beats := 0
	for {
		select {
		case e := <-events:
			_ = e
		case <-time.After(200 * time.Millisecond):
			beats++
		}
	}
}
