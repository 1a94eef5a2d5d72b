module github.com/grprof/grprof/go

go 1.22.0

require (
	github.com/google/pprof v0.0.0-20241029153458-d1b30febd7db
	go.opentelemetry.io/otel/trace v1.34.0
	go.uber.org/goleak v1.3.0
)

require go.opentelemetry.io/otel v1.34.0 // indirect
