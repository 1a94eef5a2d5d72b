// Package kitexshape copies just the type declarations of Kitex's
// pkg/endpoint (github.com/cloudwego/kitex/pkg/endpoint, as documented for
// Kitex v0.x), so kitexlabels can be checked for assignability to them
// without importing Kitex (the Go module proxy used to build grprof does not
// serve it).
package kitexshape

import "context"

// Endpoint represent one method for calling from remote.
type Endpoint func(ctx context.Context, req, resp interface{}) (err error)

// Middleware deal with input Endpoint and output Endpoint.
type Middleware func(Endpoint) Endpoint

// MiddlewareBuilder builds a middleware with information from a context.
type MiddlewareBuilder func(ctx context.Context) Middleware

// Chain connect middlewares into one middleware.
func Chain(mws ...Middleware) Middleware {
	return func(next Endpoint) Endpoint {
		for i := len(mws) - 1; i >= 0; i-- {
			next = mws[i](next)
		}
		return next
	}
}
