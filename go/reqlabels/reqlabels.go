// Package reqlabels runs request handlers under runtime/pprof labels, so that
// every goroutine a request starts inherits them and shows them in goroutine
// profiles (debug=0 and debug=1 of /debug/pprof/goroutine), where grprof
// groups and prints them.
//
// Labels: `route` (the net/http ServeMux pattern or the Hertz route),
// `method` (HTTP method), `rpc` (gRPC full method, Kitex service/method), and
// `trace_id` / `span_id` from the OpenTelemetry span in the context when
// there is a valid one (the names Pyroscope and Datadog use).
//
// Sub-packages and nested modules add the framework middleware:
// github.com/grprof/grprof/go/kitexlabels (no Kitex import),
// github.com/grprof/grprof/go/grpclabels and
// github.com/grprof/grprof/go/hertzlabels (their own modules, so this one
// does not depend on gRPC or Hertz).
package reqlabels

import (
	"context"
	"runtime/pprof"

	"go.opentelemetry.io/otel/trace"
)

// Label keys.
const (
	Route   = "route"
	Method  = "method"
	RPC     = "rpc"
	TraceID = "trace_id"
	SpanID  = "span_id"
)

// Do calls f with a context carrying the labels kv (key, value pairs; an odd
// trailing key is dropped) plus trace_id and span_id when ctx holds a valid
// OpenTelemetry span context. The calling goroutine runs f under those
// labels (pprof.Do), and so does every goroutine started while f runs.
// Empty values are skipped.
func Do(ctx context.Context, f func(context.Context), kv ...string) {
	// A fixed array keeps the label list on the stack: pprof.Labels copies it.
	var buf [16]string
	args := buf[:0]
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			args = append(args, kv[i], kv[i+1])
		}
	}
	// Insertion sort of the pairs by key: pprof.Labels sorts unsorted keys
	// itself, at the cost of an allocation.
	for i := 2; i < len(args); i += 2 {
		for j := i; j > 0 && args[j] < args[j-2]; j -= 2 {
			args[j], args[j+1], args[j-2], args[j-1] = args[j-2], args[j-1], args[j], args[j+1]
		}
	}
	args = appendTrace(ctx, args)
	if len(args) == 0 {
		f(ctx)
		return
	}
	pprof.Do(ctx, pprof.Labels(args...), f)
}

// do2 is Do for two labels without a variadic slice (the middleware's fast path).
func do2(ctx context.Context, f func(context.Context), k1, v1, k2, v2 string) {
	var buf [8]string
	args := buf[:0]
	if k1 > k2 {
		// pprof.Labels sorts unsorted keys: hand them over sorted.
		k1, v1, k2, v2 = k2, v2, k1, v1
	}
	if v1 != "" {
		args = append(args, k1, v1)
	}
	if v2 != "" {
		args = append(args, k2, v2)
	}
	args = appendTrace(ctx, args)
	if len(args) == 0 {
		f(ctx)
		return
	}
	pprof.Do(ctx, pprof.Labels(args...), f)
}

// Do2 calls f under two labels (k1=v1, k2=v2) plus the trace labels; it is
// Do without the variadic argument list, for middleware on a hot path.
func Do2(ctx context.Context, f func(context.Context), k1, v1, k2, v2 string) {
	do2(ctx, f, k1, v1, k2, v2)
}

// TraceLabels returns trace_id and span_id of ctx's OpenTelemetry span
// context, or empty strings when there is no valid one.
func TraceLabels(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

func appendTrace(ctx context.Context, args []string) []string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return args
	}
	// span_id < trace_id, and both sort after every other key used here.
	return append(args, SpanID, sc.SpanID().String(), TraceID, sc.TraceID().String())
}
