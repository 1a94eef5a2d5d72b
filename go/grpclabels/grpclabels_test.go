package grpclabels_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"go.opentelemetry.io/otel/trace"

	"github.com/grprof/grprof/go/grpclabels"
	"github.com/grprof/grprof/go/internal/profiletest"
	"github.com/grprof/grprof/go/leakcheck"
)

// healthServer blocks Check and Watch (and a goroutine each starts) until release is closed.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	release chan struct{}
	entered chan string
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	done := make(chan struct{})
	go childWait(h.release, done)
	h.entered <- "check"
	checkWait(h.release)
	<-done
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	done := make(chan struct{})
	go childWait(h.release, done)
	h.entered <- "watch"
	watchWait(h.release)
	<-done
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

//go:noinline
func checkWait(c chan struct{}) { <-c }

//go:noinline
func watchWait(c chan struct{}) { <-c }

//go:noinline
func childWait(c chan struct{}, done chan struct{}) { <-c; close(done) }

func TestInterceptors(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &healthServer{release: make(chan struct{}), entered: make(chan string, 4)}
	// withSpan stands in for otelgrpc: it puts a span context into the call's context.
	withSpan := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		return handler(trace.ContextWithSpanContext(ctx, sc), req)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(withSpan, grpclabels.UnaryServerInterceptor()),
		grpc.StreamInterceptor(grpclabels.StreamServerInterceptor()),
	)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpclabels.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(grpclabels.StreamClientInterceptor()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("Check: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		st, err := client.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Errorf("Watch: %v", err)
			return
		}
		if _, err := st.Recv(); err != nil {
			t.Errorf("Watch Recv: %v", err)
		}
	}()
	<-hs.entered
	<-hs.entered

	check := map[string]string{"rpc": "/grpc.health.v1.Health/Check"}
	watch := map[string]string{"rpc": "/grpc.health.v1.Health/Watch"}
	// Server side: the handler goroutines and the goroutines they start.
	checkTraced := map[string]string{"rpc": check["rpc"],
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
	profiletest.Expect(t, checkTraced, "grpclabels_test.checkWait")
	profiletest.Expect(t, checkTraced, "grpclabels_test.childWait")
	profiletest.Expect(t, watch, "grpclabels_test.watchWait")
	profiletest.Expect(t, check, "grpclabels_test.childWait")
	profiletest.Expect(t, watch, "grpclabels_test.childWait")
	// Client side: the goroutine blocked in Invoke, and the goroutine gRPC
	// starts per client stream (it inherits the labels of stream creation).
	profiletest.Expect(t, check, "grpc.(*ClientConn).Invoke")
	profiletest.Expect(t, watch, "grpc.newClientStreamWithParams")

	close(hs.release)
	wg.Wait()
}

// A gRPC server and client started and stopped properly are not flagged by
// leakcheck: their goroutines end asynchronously after Close/Stop, within
// leakcheck's timeout.
func TestLeakcheckServerStartedAndStopped(t *testing.T) {
	leakcheck.Check(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(grpclabels.UnaryServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpclabels.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	cc.Close()
	srv.Stop()
	<-served
}
