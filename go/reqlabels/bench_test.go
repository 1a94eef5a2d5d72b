package reqlabels_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/grprof/grprof/go/reqlabels"
)

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header       { return w.h }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

var (
	sink    context.Context
	sinkReq *http.Request
)

// BenchmarkPprofDo is the floor: pprof.Do with the same two labels (keys in
// sorted order, which pprof.Labels does not have to sort) and nothing else.
func BenchmarkPprofDo(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		pprof.Do(ctx, pprof.Labels("method", "GET", "route", "GET /items/{id}"), func(ctx context.Context) { sink = ctx })
	}
}

// BenchmarkPprofDoTrace is the floor with trace_id/span_id as well (their hex strings included).
func BenchmarkPprofDoTrace(b *testing.B) {
	ctx := spanCtx()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sc := trace.SpanContextFromContext(ctx)
		pprof.Do(ctx, pprof.Labels("method", "GET", "route", "GET /items/{id}",
			"span_id", sc.SpanID().String(), "trace_id", sc.TraceID().String()), func(ctx context.Context) { sink = ctx })
	}
}

func BenchmarkDo2(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		reqlabels.Do2(ctx, func(ctx context.Context) { sink = ctx }, "route", "GET /items/{id}", "method", "GET")
	}
}

func BenchmarkDo2Trace(b *testing.B) {
	ctx := spanCtx()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		reqlabels.Do2(ctx, func(ctx context.Context) { sink = ctx }, "route", "GET /items/{id}", "method", "GET")
	}
}

// BenchmarkRequestWithContext is what the HTTP middleware adds on top of pprof.Do:
// r.WithContext, so the handler sees the labelled context.
func BenchmarkRequestWithContext(b *testing.B) {
	r := httptest.NewRequest("GET", "/items/42", nil)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sinkReq = r.WithContext(ctx)
	}
}

func BenchmarkHandler(b *testing.B) {
	h := reqlabels.Handler("GET /items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sink = r.Context() }))
	r := httptest.NewRequest("GET", "/items/42", nil)
	w := nopWriter{http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkHandlerGoroutineOnly(b *testing.B) {
	h := reqlabels.HandlerGoroutineOnly("GET /items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sinkReq = r }))
	r := httptest.NewRequest("GET", "/items/42", nil)
	w := nopWriter{http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkHandlerTrace(b *testing.B) {
	h := reqlabels.Handler("GET /items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sink = r.Context() }))
	r := httptest.NewRequest("GET", "/items/42", nil).WithContext(spanCtx())
	w := nopWriter{http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, r)
	}
}

func spanCtx() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc)
}
