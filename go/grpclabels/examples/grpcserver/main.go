// Command grpcserver is a small gRPC server and client using grpclabels: the
// standard health service (google.golang.org/grpc/health ships its generated
// code) with a Check and a Watch that block, with a goroutine each starts,
// until POST /release. The server and the client (on the same process, over
// loopback TCP) use grpclabels' interceptors.
//
// An HTTP port (separate from the gRPC port) serves /debug/pprof/ and drives
// the client: GET /call/check and GET /call/watch make one call each and
// return when it ends; with ?trace=1 the client sends a W3C traceparent, and
// the server puts that span context into the call's context before grpclabels
// runs (as otelgrpc's stats handler would), so the labels include trace_id
// and span_id.
//
// It prints "LISTEN http://addr" (the HTTP port), "GRPC addr" and "READY" on
// stdout (tests/gobuild.py's protocol).
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

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/grprof/grprof/go/grpclabels"
)

// TraceParent is what ?trace=1 sends.
const TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

type healthServer struct {
	healthpb.UnimplementedHealthServer
	mu      sync.Mutex
	release chan struct{}
}

func (h *healthServer) current() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.release
}

func (h *healthServer) releaseAll() {
	h.mu.Lock()
	close(h.release)
	h.release = make(chan struct{})
	h.mu.Unlock()
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	c := h.current()
	done := make(chan struct{})
	go worker(c, done) // inherits rpc (and the trace labels)
	checkWait(c)
	<-done
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	c := h.current()
	done := make(chan struct{})
	go worker(c, done)
	watchWait(c)
	<-done
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

//go:noinline
func checkWait(c chan struct{}) { <-c }

//go:noinline
func watchWait(c chan struct{}) { <-c }

//go:noinline
func worker(c, done chan struct{}) {
	<-c
	close(done)
}

// spanFromTraceParent stands in for otelgrpc's server side: it reads the
// traceparent metadata into the call's context.
func spanFromTraceParent(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("traceparent")
	if len(v) == 0 {
		return ctx
	}
	parts := strings.Split(v[0], "-")
	if len(parts) != 4 {
		return ctx
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil {
		return ctx
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s tracedStream) Context() context.Context { return s.ctx }

func main() {
	grpcAddr := flag.String("grpc-addr", "127.0.0.1:0", "gRPC listen address")
	httpAddr := flag.String("addr", "127.0.0.1:0", "HTTP (pprof and control) listen address")
	flag.Parse()

	hs := &healthServer{release: make(chan struct{})}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
				return next(spanFromTraceParent(ctx), req)
			},
			grpclabels.UnaryServerInterceptor(),
		),
		grpc.ChainStreamInterceptor(
			func(s any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
				return next(s, tracedStream{ss, spanFromTraceParent(ss.Context())})
			},
			grpclabels.StreamServerInterceptor(),
		),
	)
	healthpb.RegisterHealthServer(srv, hs)
	glis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(srv.Serve(glis)) }()

	cc, err := grpc.NewClient(glis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpclabels.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(grpclabels.StreamClientInterceptor()),
	)
	if err != nil {
		log.Fatal(err)
	}
	client := healthpb.NewHealthClient(cc)
	callCtx := func(r *http.Request) context.Context {
		ctx := context.Background()
		if r.URL.Query().Get("trace") == "1" {
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", TraceParent)
		}
		return ctx
	}

	// The control and pprof server: plain net/http, unlabelled.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /call/check", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Check(callCtx(r), &healthpb.HealthCheckRequest{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "check %s\n", resp.GetStatus())
	})
	mux.HandleFunc("GET /call/watch", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(callCtx(r))
		defer cancel()
		st, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			var resp *healthpb.HealthCheckResponse
			if resp, err = st.Recv(); err == nil {
				fmt.Fprintf(w, "watch %s\n", resp.GetStatus())
				return
			}
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		hs.releaseAll()
		fmt.Fprintln(w, "released")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	hlis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\nGRPC %s\nREADY\n", hlis.Addr(), glis.Addr())
	log.Fatal(http.Serve(hlis, mux))
}
