package main

import (
	"context"
	"io"
	"net/http"
)

// Category context: goroutines waiting for a context that can never be cancelled.
var contextLeaks = []*Leak{
	{
		Kind: "ctx-background-done", Category: "context", Endpoint: "/leak/ctx-background-done",
		Summary:    "a cleanup goroutine waits on ctx.Done() of a context derived from context.Background() with WithValue instead of the request's context: Done() is nil and never closes",
		run:        backgroundDone,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.releaseOnDone", CreatedBy: "main.backgroundDone", States: []string{"chan receive (nil chan)"}, LeakProfile: true})},
	},
	{
		Kind: "ctx-select-cancel-lost", Category: "context", Endpoint: "/leak/ctx-select-cancel-lost",
		Summary:    "a subscription loop whose only exit is ctx.Done() of a WithCancel(Background) context whose cancel func is dropped",
		run:        selectCancelLost,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.subscribe", CreatedBy: "main.selectCancelLost", States: []string{"select"}, LeakProfile: true})},
	},
}

type requestIDKey struct{}

func backgroundDone(_ *deps, w http.ResponseWriter, r *http.Request) {
	// should have been r.Context(): Background never ends
	ctx := context.WithValue(context.Background(), requestIDKey{}, r.Header.Get("X-Request-Id"))
	go releaseOnDone(ctx)
	_, _ = io.WriteString(w, "ok\n")
}

func releaseOnDone(ctx context.Context) {
	<-ctx.Done()
	_ = ctx.Value(requestIDKey{})
}

func selectCancelLost(_ *deps, w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan string)
	go subscribe(ctx, updates)
	_ = cancel // should be deferred (or the request's context used)
	_, _ = io.WriteString(w, "subscribed\n")
}

func subscribe(ctx context.Context, updates <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			_ = u
		}
	}
}
