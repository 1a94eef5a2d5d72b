package grpclabels_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/grprof/grprof/go/grpclabels"
)

var sink context.Context

func BenchmarkUnaryServerInterceptor(b *testing.B) {
	icpt := grpclabels.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	handler := func(ctx context.Context, req any) (any, error) { sink = ctx; return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		icpt(ctx, nil, info, handler)
	}
}

func BenchmarkUnaryClientInterceptor(b *testing.B) {
	icpt := grpclabels.UnaryClientInterceptor()
	invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		sink = ctx
		return nil
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		icpt(ctx, "/grpc.health.v1.Health/Check", nil, nil, nil, invoker)
	}
}
