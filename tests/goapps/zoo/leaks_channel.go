package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// Category channel: goroutines blocked on a channel operation that can never complete.
var channelLeaks = []*Leak{
	{
		Kind: "chan-send-timeout", Category: "channel", Endpoint: "/leak/chan-send-timeout",
		Summary:    "the classic leakyHandler: the worker sends on an unbuffered channel after the handler's select timed out",
		run:        leakyHandler,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.leakyHandler.func1", CreatedBy: "main.leakyHandler", States: []string{"chan send"}, LeakProfile: true})},
	},
	{
		Kind: "chan-recv-no-sender", Category: "channel", Endpoint: "/leak/chan-recv-no-sender",
		Summary:    "a goroutine waits for a result that the handler's early-return path never sends",
		run:        recvNoSender,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.awaitResult", CreatedBy: "main.recvNoSender", States: []string{"chan receive"}, LeakProfile: true})},
	},
	{
		Kind: "chan-range-unclosed", Category: "channel", Endpoint: "/leak/chan-range-unclosed",
		Summary:    "a consumer ranges over a channel the producer never closes",
		run:        rangeUnclosed,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.consumeItems", CreatedBy: "main.rangeUnclosed", States: []string{"chan receive"}, LeakProfile: true})},
	},
	{
		Kind: "chan-nil", Category: "channel", Endpoint: "/leak/chan-nil",
		Summary:    "a goroutine sends on a channel field that was never made (nil)",
		run:        nilChannel,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.(*resultSink).publish", CreatedBy: "main.nilChannel", States: []string{"chan send (nil chan)"}, LeakProfile: true})},
	},
	{
		Kind: "chan-select-never", Category: "channel", Endpoint: "/leak/chan-select-never",
		Summary:    "a select whose channels nobody else ever uses: no case can fire",
		run:        selectNever,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.waitReadyOrStop", CreatedBy: "main.selectNever", States: []string{"select"}, LeakProfile: true})},
	},
}

// leakyHandler is the classic leakyHandler example, with short durations: the
// worker is slower than the handler's timeout, so nobody receives its send.
func leakyHandler(_ *deps, w http.ResponseWriter, r *http.Request) {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond) // slow backend call
		ch <- "done"
	}()
	select {
	case msg := <-ch:
		_, _ = io.WriteString(w, msg)
	case <-time.After(5 * time.Millisecond):
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

func recvNoSender(_ *deps, w http.ResponseWriter, r *http.Request) {
	result := make(chan int)
	go awaitResult(result)
	if r.URL.Query().Get("valid") == "" { // validation failed: return before computing
		http.Error(w, "invalid request", http.StatusBadRequest)
		return
	}
	result <- 42
}

func awaitResult(result <-chan int) {
	v := <-result
	_ = v
}

func rangeUnclosed(_ *deps, w http.ResponseWriter, r *http.Request) {
	items := make(chan int)
	go consumeItems(items)
	for i := range 3 {
		items <- i
	}
	// missing close(items): consumeItems ranges forever
	_, _ = io.WriteString(w, "sent 3 items\n")
}

func consumeItems(items <-chan int) {
	sum := 0
	for v := range items {
		sum += v
	}
	_ = sum
}

type resultSink struct {
	results chan string // never made: the constructor forgot make(chan string)
}

func nilChannel(_ *deps, w http.ResponseWriter, r *http.Request) {
	sink := &resultSink{}
	go sink.publish("done")
	_, _ = io.WriteString(w, "published\n")
}

func (s *resultSink) publish(v string) {
	s.results <- v
}

func selectNever(_ *deps, w http.ResponseWriter, r *http.Request) {
	ready, stop := make(chan struct{}), make(chan struct{})
	go waitReadyOrStop(ready, stop)
	// neither channel is kept, closed or sent on by anyone else
	_, _ = fmt.Fprintln(w, "waiting")
}

func waitReadyOrStop(ready, stop chan struct{}) {
	select {
	case <-ready:
	case <-stop:
	}
}
