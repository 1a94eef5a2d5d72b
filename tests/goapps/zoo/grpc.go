package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The zoo.Zoo gRPC service, written out by hand (no protoc): a unary Echo and a
// server-streaming Watch, both on protobuf's StringValue.
type zooService interface {
	Echo(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	Watch(*wrapperspb.StringValue, grpc.ServerStream) error
}

var zooDesc = grpc.ServiceDesc{
	ServiceName: "zoo.Zoo",
	HandlerType: (*zooService)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: echoHandler}},
	Streams:     []grpc.StreamDesc{{StreamName: "Watch", Handler: watchHandler, ServerStreams: true}},
	Metadata:    "zoo.proto",
}

var watchDesc = &zooDesc.Streams[0]

func echoHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	return srv.(zooService).Echo(ctx, in)
}

func watchHandler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(zooService).Watch(in, stream)
}

type zooServer struct{}

func (*zooServer) Echo(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String("echo " + in.GetValue()), nil
}

// Watch sends the current value, then an update whenever one happens (none
// ever does here) until the client goes away.
func (*zooServer) Watch(in *wrapperspb.StringValue, stream grpc.ServerStream) error {
	if err := stream.SendMsg(wrapperspb.String("current " + in.GetValue())); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func startGRPC() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("grpc listen: %w", err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&zooDesc, &zooServer{})
	go serveGRPC(srv, ln)
	return ln.Addr().String(), nil
}

func serveGRPC(srv *grpc.Server, ln net.Listener) {
	_ = srv.Serve(ln)
}

// dialGRPC connects a long-lived ClientConn (the healthy way: one per process)
// and makes one call so its transport is up before READY.
func dialGRPC(addr string) (*grpc.ClientConn, error) {
	cc, err := newGRPCClient(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echo(ctx, cc, "ready"); err != nil {
		return nil, fmt.Errorf("grpc echo: %w", err)
	}
	return cc, nil
}

func newGRPCClient(addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpc client: %w", err)
	}
	return cc, nil
}

func echo(ctx context.Context, cc *grpc.ClientConn, v string) (*wrapperspb.StringValue, error) {
	out := new(wrapperspb.StringValue)
	err := cc.Invoke(ctx, "/zoo.Zoo/Echo", wrapperspb.String(v), out)
	return out, err
}

// watch opens the server stream and returns it after the first message.
func watch(ctx context.Context, cc *grpc.ClientConn, v string) (grpc.ClientStream, error) {
	stream, err := cc.NewStream(ctx, watchDesc, "/zoo.Zoo/Watch")
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(wrapperspb.String(v)); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	first := new(wrapperspb.StringValue)
	return stream, stream.RecvMsg(first)
}
