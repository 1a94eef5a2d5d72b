package reqlabels_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/grprof/grprof/go/internal/profiletest"
	"github.com/grprof/grprof/go/reqlabels"
)

// blocker is a handler that parks (and parks a goroutine it starts) until release is closed.
type blocker struct {
	release chan struct{}
	entered chan struct{}
	labels  chan map[string]string
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), entered: make(chan struct{}, 16), labels: make(chan map[string]string, 16)}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := map[string]string{}
	pprof.ForLabels(r.Context(), func(k, v string) bool { got[k] = v; return true })
	b.labels <- got
	done := make(chan struct{})
	go childWait(b.release, done) // inherits the request's labels
	b.entered <- struct{}{}
	handlerWait(b.release)
	<-done
	io.WriteString(w, "ok")
}

//go:noinline
func handlerWait(c chan struct{}) { <-c }

//go:noinline
func childWait(c chan struct{}, done chan struct{}) { <-c; close(done) }

func get(t *testing.T, wg *sync.WaitGroup, url string) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
		}
	}()
}

func TestServeMuxLabels(t *testing.T) {
	b := newBlocker()
	mux := reqlabels.NewServeMux()
	mux.Handle("GET /items/{id}", b)
	mux.HandleFunc("/plain/", b.ServeHTTP)
	mux.ServeMux.Handle("GET /fast", reqlabels.HandlerGoroutineOnly("GET /fast", b))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var wg sync.WaitGroup
	get(t, &wg, srv.URL+"/items/42")
	get(t, &wg, srv.URL+"/plain/x")
	get(t, &wg, srv.URL+"/fast")
	<-b.entered
	<-b.entered
	<-b.entered
	want1 := map[string]string{"route": "GET /items/{id}", "method": "GET"}
	want2 := map[string]string{"route": "/plain/", "method": "GET"}
	want3 := map[string]string{"route": "GET /fast", "method": "GET"}
	for _, want := range []map[string]string{want1, want2, want3} {
		profiletest.Expect(t, want, "reqlabels_test.handlerWait")
		profiletest.Expect(t, want, "reqlabels_test.childWait")
	}
	close(b.release)
	wg.Wait()
	// The handlers' r.Context() carries the labels, but for HandlerGoroutineOnly.
	routes := map[string]int{}
	for i := 0; i < 3; i++ {
		routes[(<-b.labels)["route"]]++
	}
	if want := map[string]int{want1["route"]: 1, want2["route"]: 1, "": 1}; fmt.Sprint(routes) != fmt.Sprint(want) {
		t.Errorf("routes in handler contexts = %v, want %v", routes, want)
	}
}

func TestHandlerAndTraceLabels(t *testing.T) {
	b := newBlocker()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	// Stands in for otelhttp: puts a span context into the request context.
	withSpan := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
			next.ServeHTTP(w, r.WithContext(trace.ContextWithSpanContext(r.Context(), sc)))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("POST /jobs", withSpan(reqlabels.Handler("POST /jobs", b)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Post(srv.URL+"/jobs", "text/plain", nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}()
	<-b.entered
	profiletest.Expect(t, map[string]string{
		"route": "POST /jobs", "method": "POST",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
	}, "reqlabels_test.childWait")
	close(b.release)
	wg.Wait()
}

func TestMiddlewareAroundMux(t *testing.T) {
	b := newBlocker()
	mux := http.NewServeMux()
	mux.Handle("GET /a/{x}", b)
	srv := httptest.NewServer(reqlabels.Middleware(mux))
	defer srv.Close()
	var wg sync.WaitGroup
	get(t, &wg, srv.URL+"/a/1")
	<-b.entered
	profiletest.Expect(t, map[string]string{"route": "GET /a/{x}", "method": "GET"}, "reqlabels_test.handlerWait")
	close(b.release)
	wg.Wait()
}

func TestDoSkipsEmptyAndRestores(t *testing.T) {
	ctx := context.Background()
	reqlabels.Do(ctx, func(ctx context.Context) {
		got := map[string]string{}
		pprof.ForLabels(ctx, func(k, v string) bool { got[k] = v; return true })
		if len(got) != 1 || got["rpc"] != "/a.B/C" {
			t.Errorf("labels = %v", got)
		}
	}, "rpc", "/a.B/C", "route", "", "odd")
}

func TestDoSortsAndKeepsAll(t *testing.T) {
	kv := []string{"z", "1", "b", "2", "y", "3", "a", "4", "x", "5", "c", "6", "w", "7", "d", "8", "v", "9"}
	reqlabels.Do(context.Background(), func(ctx context.Context) {
		got := map[string]string{}
		pprof.ForLabels(ctx, func(k, v string) bool { got[k] = v; return true })
		if len(got) != len(kv)/2 {
			t.Fatalf("labels = %v", got)
		}
		for i := 0; i < len(kv); i += 2 {
			if got[kv[i]] != kv[i+1] {
				t.Errorf("%s = %q, want %q", kv[i], got[kv[i]], kv[i+1])
			}
		}
	}, kv...)
}
