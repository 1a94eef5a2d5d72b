// Command hertzserver is a small Hertz server using hertzlabels: GET
// /users/:id blocks, with a worker goroutine it starts, until POST /release
// on the HTTP port below. A middleware in front of hertzlabels reads a W3C
// traceparent request header into the context (as Hertz's obs-opentelemetry
// middleware would), so a request sending one is labelled with trace_id and
// span_id too.
//
// /debug/pprof/, /release and /hertz (the Hertz engine's URL) are served by
// net/http on a separate port. It
// prints "LISTEN http://addr" (that port), "HERTZ http://addr" and "READY" on
// stdout (tests/gobuild.py's protocol); READY comes once the Hertz engine
// answers.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"go.opentelemetry.io/otel/trace"

	"github.com/grprof/grprof/go/hertzlabels"
)

//go:noinline
func wait(c chan struct{}) { <-c }

//go:noinline
func worker(c, done chan struct{}) {
	<-c
	close(done)
}

// spanFromTraceParent stands in for obs-opentelemetry's server middleware.
func spanFromTraceParent(ctx context.Context, c *app.RequestContext) {
	parts := strings.Split(string(c.GetHeader("traceparent")), "-")
	if len(parts) == 4 {
		tid, err1 := trace.TraceIDFromHex(parts[1])
		sid, err2 := trace.SpanIDFromHex(parts[2])
		if err1 == nil && err2 == nil {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	c.Next(ctx)
}

func main() {
	hertzAddr := flag.String("hertz-addr", "127.0.0.1:0", "Hertz listen address")
	httpAddr := flag.String("addr", "127.0.0.1:0", "HTTP (pprof and control) listen address")
	flag.Parse()
	hlog.SetLevel(hlog.LevelError)

	var mu sync.Mutex
	release := make(chan struct{})

	hln, err := net.Listen("tcp", *hertzAddr)
	if err != nil {
		log.Fatal(err)
	}
	h := server.New(server.WithListener(hln))
	h.Use(spanFromTraceParent, hertzlabels.Middleware())
	h.GET("/users/:id", func(ctx context.Context, c *app.RequestContext) {
		mu.Lock()
		ch := release
		mu.Unlock()
		done := make(chan struct{})
		go worker(ch, done) // inherits route, method (and the trace labels)
		wait(ch)
		<-done
		c.String(200, "done %s\n", c.Param("id"))
	})
	h.GET("/ping", func(ctx context.Context, c *app.RequestContext) { c.String(200, "pong") })
	go h.Spin()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		close(release)
		release = make(chan struct{})
		mu.Unlock()
		fmt.Fprintln(w, "released")
	})
	hertzURL := "http://" + hln.Addr().String()
	mux.HandleFunc("GET /hertz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, hertzURL) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; ; i++ { // the engine starts serving asynchronously
		resp, err := http.Get(hertzURL + "/ping")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			log.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	fmt.Printf("LISTEN http://%s\nHERTZ %s\nREADY\n", ln.Addr(), hertzURL)
	log.Fatal(http.Serve(ln, mux))
}
