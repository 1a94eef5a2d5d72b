// Package kitexlabels has a Kitex (github.com/cloudwego/kitex) middleware
// that runs each call under the runtime/pprof label rpc=<service/method>
// (plus trace_id and span_id from the OpenTelemetry span in the context).
//
// It does not import Kitex. Kitex declares
//
//	type Endpoint func(ctx context.Context, req, resp interface{}) (err error)
//	type Middleware func(Endpoint) Endpoint
//
// A function of the unnamed type func(func(...) error) func(...) error is
// not assignable to endpoint.Middleware (its parameter and result types are
// the named endpoint.Endpoint, not identical to an unnamed func type), so
// the middleware here is generic over the endpoint type:
// Middleware[endpoint.Endpoint] has exactly the type func(endpoint.Endpoint)
// endpoint.Endpoint, which is assignable to endpoint.Middleware:
//
//	name := func(ctx context.Context) string {
//		ri := rpcinfo.GetRPCInfo(ctx)
//		return ri.Invocation().ServiceName() + "/" + ri.Invocation().MethodName()
//	}
//	server.WithMiddleware(kitexlabels.New[endpoint.Endpoint](name))
//	client.WithMiddleware(kitexlabels.New[endpoint.Endpoint](name))
//
// Wrap does the same for one endpoint value, with the plain func type
// Endpoint (a type alias, so it is assignable to and from endpoint.Endpoint).
package kitexlabels

import (
	"context"

	"github.com/grprof/grprof/go/reqlabels"
)

// Endpoint is the shape of Kitex's endpoint.Endpoint as an unnamed func type.
type Endpoint = func(ctx context.Context, req, resp interface{}) (err error)

// NameFunc returns the rpc label of a call (Kitex: service/method from
// rpcinfo.GetRPCInfo(ctx)); "" leaves the label out.
type NameFunc func(ctx context.Context) string

// New returns a middleware for endpoint type E (use endpoint.Endpoint) that
// labels each call with rpc=name(ctx). A nil name sets only the trace labels.
func New[E ~func(ctx context.Context, req, resp interface{}) (err error)](name NameFunc) func(next E) E {
	return func(next E) E {
		return Wrap(name, next)
	}
}

// Wrap returns next labelled with rpc=name(ctx) (see New).
func Wrap[E ~func(ctx context.Context, req, resp interface{}) (err error)](name NameFunc, next E) E {
	return func(ctx context.Context, req, resp interface{}) (err error) {
		rpc := ""
		if name != nil {
			rpc = name(ctx)
		}
		reqlabels.Do2(ctx, func(ctx context.Context) {
			err = next(ctx, req, resp)
		}, reqlabels.RPC, rpc, "", "")
		return err
	}
}
