package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

var (
	apiConns    atomic.Int64
	apiRequests atomic.Int64
)

// startAPI serves a small HTTP/1.1 API whose clients keep their connections alive between
// requests: an idle connection is a goroutine parked in net/http.(*conn).serve.
func startAPI(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/item", item)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				apiConns.Add(1)
			case http.StateClosed, http.StateHijacked:
				apiConns.Add(-1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

func item(w http.ResponseWriter, r *http.Request) {
	apiRequests.Add(1)
	// Some work: a lookup that takes a few milliseconds.
	time.Sleep(time.Duration(2+rand.Intn(15)) * time.Millisecond)
	fmt.Fprintf(w, "{\"id\": %q, \"ok\": true}\n", r.URL.Query().Get("id"))
}

// poll (the client side) makes requests on one keep-alive connection of its own until ctx ends,
// then closes it.
func poll(ctx context.Context, addr string, rng *rand.Rand) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/item?id=%d", addr, i), nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !sleepCtx(ctx, time.Duration(300+rng.Intn(1200))*time.Millisecond) {
			return nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
