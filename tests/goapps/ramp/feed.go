package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The ramp.Feed gRPC service, written out by hand (no protoc): a server-streaming Subscribe on
// protobuf's StringValue that sends an update every second until the client goes away.
type feedService interface {
	Subscribe(*wrapperspb.StringValue, grpc.ServerStream) error
}

var feedDesc = grpc.ServiceDesc{
	ServiceName: "ramp.Feed",
	HandlerType: (*feedService)(nil),
	Streams:     []grpc.StreamDesc{{StreamName: "Subscribe", Handler: subscribeHandler, ServerStreams: true}},
	Metadata:    "ramp.proto",
}

var (
	subscribeDesc = &feedDesc.Streams[0]
	feedStreams   atomic.Int64
)

func subscribeHandler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(feedService).Subscribe(in, stream)
}

type feedServer struct{}

func (*feedServer) Subscribe(in *wrapperspb.StringValue, stream grpc.ServerStream) error {
	feedStreams.Add(1)
	defer feedStreams.Add(-1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-tick.C:
			if err := stream.SendMsg(wrapperspb.String(fmt.Sprintf("%s update %d", in.GetValue(), n))); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

func startFeed(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("grpc listen: %w", err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&feedDesc, &feedServer{})
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// subscribe (the client side) opens its own connection and stream, and reads updates until ctx
// ends; then it closes the connection.
func subscribe(ctx context.Context, addr, topic string) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cc.NewStream(ctx, subscribeDesc, "/ramp.Feed/Subscribe")
	if err != nil {
		return err
	}
	if err := stream.SendMsg(wrapperspb.String(topic)); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		msg := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
