// Package grpclabels has gRPC server and client interceptors that run each
// call under the runtime/pprof label rpc=<full method> (plus trace_id and
// span_id from the OpenTelemetry span in the context), so the goroutines a
// call starts carry them in goroutine profiles.
//
// It is its own module (github.com/grprof/grprof/go/grpclabels) so that the
// core module does not depend on gRPC.
//
// Install the interceptors inside (after) an OpenTelemetry stats handler or
// interceptor if you want the trace labels: they read the span from the
// context they are given.
package grpclabels

import (
	"context"

	"google.golang.org/grpc"

	"github.com/grprof/grprof/go/reqlabels"
)

// UnaryServerInterceptor labels the handler goroutine of each unary call.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor { return unaryServer }

func unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	reqlabels.Do2(ctx, func(ctx context.Context) {
		resp, err = handler(ctx, req)
	}, reqlabels.RPC, info.FullMethod, "", "")
	return resp, err
}

// StreamServerInterceptor labels the handler goroutine of each streaming
// call; the handler's stream.Context() carries the labels too.
func StreamServerInterceptor() grpc.StreamServerInterceptor { return streamServer }

func streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	reqlabels.Do2(ss.Context(), func(ctx context.Context) {
		err = handler(srv, &labelledStream{ServerStream: ss, ctx: ctx})
	}, reqlabels.RPC, info.FullMethod, "", "")
	return err
}

type labelledStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *labelledStream) Context() context.Context { return s.ctx }

// UnaryClientInterceptor labels the calling goroutine for the duration of
// each unary call (and whatever gRPC starts for it).
func UnaryClientInterceptor() grpc.UnaryClientInterceptor { return unaryClient }

func unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) (err error) {
	reqlabels.Do2(ctx, func(ctx context.Context) {
		err = invoker(ctx, method, req, reply, cc, opts...)
	}, reqlabels.RPC, method, "", "")
	return err
}

// StreamClientInterceptor labels stream creation: the goroutines gRPC starts
// for the stream inherit the labels, and the stream's Context() carries
// them. The caller's later SendMsg/RecvMsg run under the caller's own
// labels (wrap them in pprof.Do(stream.Context(), ...) to label those too).
func StreamClientInterceptor() grpc.StreamClientInterceptor { return streamClient }

func streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (cs grpc.ClientStream, err error) {
	reqlabels.Do2(ctx, func(ctx context.Context) {
		cs, err = streamer(ctx, desc, cc, method, opts...)
	}, reqlabels.RPC, method, "", "")
	return cs, err
}
