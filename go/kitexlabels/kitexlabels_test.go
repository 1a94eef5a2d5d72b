package kitexlabels_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/grprof/grprof/go/internal/kitexshape"
	"github.com/grprof/grprof/go/internal/profiletest"
	"github.com/grprof/grprof/go/kitexlabels"
)

type methodKey struct{}

// name stands in for the rpcinfo lookup a Kitex user writes.
func name(ctx context.Context) string {
	s, _ := ctx.Value(methodKey{}).(string)
	return s
}

// Compile-time checks against the copied Kitex declarations.
var (
	_ kitexshape.Middleware = kitexlabels.New[kitexshape.Endpoint](name)
	_ kitexshape.Middleware = kitexlabels.New[kitexshape.Endpoint](nil)
	// Inference from the assignment target (Go 1.21+) is not possible for New
	// (its result, not the function, is the middleware), but Wrap's result is
	// an endpoint.Endpoint and a kitexlabels.Endpoint is assignable both ways:
	_ kitexshape.Endpoint  = kitexlabels.Wrap(name, kitexshape.Endpoint(nil))
	_ kitexlabels.Endpoint = kitexshape.Endpoint(nil)
	_ kitexshape.Endpoint  = kitexlabels.Endpoint(nil)
	// As a MiddlewareBuilder.
	_ kitexshape.MiddlewareBuilder = func(context.Context) kitexshape.Middleware {
		return kitexlabels.New[kitexshape.Endpoint](name)
	}
)

//go:noinline
func handlerWait(c chan struct{}) { <-c }

//go:noinline
func childWait(c chan struct{}, done chan struct{}) { <-c; close(done) }

// There is no Kitex server here (the module proxy does not serve Kitex):
// the middleware is chained as Kitex would chain it and the endpoint is
// called from a goroutine, as a Kitex server calls it per request.
func TestMiddlewareLabels(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	var handler kitexshape.Endpoint = func(ctx context.Context, req, resp interface{}) error {
		done := make(chan struct{})
		go childWait(release, done)
		close(entered)
		handlerWait(release)
		<-done
		*resp.(*string) = req.(string) + "!"
		return errors.New("sentinel")
	}
	ep := kitexshape.Chain(kitexlabels.New[kitexshape.Endpoint](name))(handler)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var resp string
		ctx := context.WithValue(context.Background(), methodKey{}, "echo/Echo")
		err := ep(ctx, "hi", &resp)
		if err == nil || err.Error() != "sentinel" || resp != "hi!" {
			t.Errorf("endpoint: resp %q err %v", resp, err)
		}
	}()
	<-entered
	want := map[string]string{"rpc": "echo/Echo"}
	profiletest.Expect(t, want, "kitexlabels_test.handlerWait")
	profiletest.Expect(t, want, "kitexlabels_test.childWait")
	close(release)
	wg.Wait()
}
