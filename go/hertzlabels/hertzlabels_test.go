package hertzlabels_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"

	"github.com/grprof/grprof/go/hertzlabels"
	"github.com/grprof/grprof/go/internal/profiletest"
)

//go:noinline
func handlerWait(c chan struct{}) { <-c }

//go:noinline
func childWait(c chan struct{}, done chan struct{}) { <-c; close(done) }

func TestMiddleware(t *testing.T) {
	hlog.SetLevel(hlog.LevelError)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := server.New(server.WithListener(ln), server.WithExitWaitTime(time.Second))
	h.Use(hertzlabels.Middleware())
	h.GET("/users/:id", func(ctx context.Context, c *app.RequestContext) {
		done := make(chan struct{})
		go childWait(release, done)
		entered <- struct{}{}
		handlerWait(release)
		<-done
		c.String(200, "ok")
	})
	go h.Spin()
	defer h.Shutdown(context.Background())

	url := "http://" + ln.Addr().String() + "/users/7"
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var resp *http.Response
		var err error
		for i := 0; i < 100; i++ { // the engine may still be starting
			if resp, err = http.Get(url); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("GET: %v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("GET: %d %q", resp.StatusCode, body)
		}
	}()
	<-entered
	want := map[string]string{"route": "/users/:id", "method": "GET"}
	profiletest.Expect(t, want, "hertzlabels_test.handlerWait")
	profiletest.Expect(t, want, "hertzlabels_test.childWait")
	close(release)
	wg.Wait()
}
