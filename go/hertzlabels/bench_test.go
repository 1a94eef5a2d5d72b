package hertzlabels_test

import (
	"context"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/grprof/grprof/go/hertzlabels"
)

var sink context.Context

// The middleware and a handler, chained as the Hertz engine chains them
// after routing (c.FullPath() set), without the network.
func BenchmarkMiddleware(b *testing.B) {
	c := app.NewContext(0)
	c.Request.Header.SetMethod("GET")
	c.SetFullPath("/users/:id")
	c.SetHandlers(app.HandlersChain{hertzlabels.Middleware(), func(ctx context.Context, c *app.RequestContext) { sink = ctx }})
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.SetIndex(-1)
		c.Next(ctx)
	}
}
