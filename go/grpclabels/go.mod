module github.com/grprof/grprof/go/grpclabels

go 1.22.0

replace github.com/grprof/grprof/go => ../

require (
	github.com/grprof/grprof/go v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel/trace v1.34.0
	google.golang.org/grpc v1.71.0
)

require (
	github.com/google/pprof v0.0.0-20241029153458-d1b30febd7db // indirect
	go.opentelemetry.io/otel v1.34.0 // indirect
	golang.org/x/net v0.34.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
	golang.org/x/text v0.21.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250115164207-1a7da9e5054f // indirect
	google.golang.org/protobuf v1.36.4 // indirect
)
