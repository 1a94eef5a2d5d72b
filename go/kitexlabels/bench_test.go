package kitexlabels_test

import (
	"context"
	"testing"

	"github.com/grprof/grprof/go/internal/kitexshape"
	"github.com/grprof/grprof/go/kitexlabels"
)

var sink context.Context

func BenchmarkMiddleware(b *testing.B) {
	ep := kitexlabels.New[kitexshape.Endpoint](func(context.Context) string { return "echo/Echo" })(
		func(ctx context.Context, req, resp interface{}) error { sink = ctx; return nil })
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ep(ctx, nil, nil)
	}
}
