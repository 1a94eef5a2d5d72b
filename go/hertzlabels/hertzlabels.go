// Package hertzlabels has a Hertz (github.com/cloudwego/hertz) middleware
// that runs each request under the runtime/pprof labels route=<route path as
// registered, c.FullPath()> and method (plus trace_id and span_id from the
// OpenTelemetry span in the context), so the goroutines a request starts
// carry them in goroutine profiles.
//
// It is its own module (github.com/grprof/grprof/go/hertzlabels) so that
// the core module does not depend on Hertz.
package hertzlabels

import (
	"context"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/grprof/grprof/go/reqlabels"
)

// Middleware returns the labelling middleware; register it with h.Use
// (Hertz routes before it runs the handler chain, so c.FullPath() is the
// matched route in a global middleware too). Put it after an OpenTelemetry
// middleware (hertz-contrib/obs-opentelemetry) for the trace labels.
func Middleware() app.HandlerFunc { return handle }

func handle(ctx context.Context, c *app.RequestContext) {
	reqlabels.Do2(ctx, func(ctx context.Context) {
		c.Next(ctx)
	}, reqlabels.Route, c.FullPath(), reqlabels.Method, methodString(c.Method()))
}

// methodString avoids an allocation for the common methods.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	}
	return string(m)
}
