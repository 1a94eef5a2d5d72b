package main

import (
	"context"
	"net/http"
)

type userKey struct{}

// watchBackground waits for the end of a context that never ends: a value on
// context.Background is never cancelled.
func watchBackground(user string) {
	base := context.Background()
	ctx := context.WithValue(base, userKey{}, user)
	go func() {
		<-ctx.Done()
		total.Add(-1)
	}()
}

// watchUncancelled derives a cancellable context but drops its cancel function (go vet's
// lostcancel check flags it too).
func watchUncancelled() {
	ctx, _ := context.WithCancel(context.TODO())
	go func() {
		<-ctx.Done()
	}()
}

// watchCancelled (near-miss) cancels its context when it returns (here it is still busy).
func watchCancelled(gate <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ctx.Done()
	}()
	<-gate
}

// watchRequest (near-miss) waits on the request's context, which ends with the request.
func watchRequest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	go func() {
		<-ctx.Done()
	}()
	<-hold
}
