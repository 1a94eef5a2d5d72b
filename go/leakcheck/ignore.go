package leakcheck

// Ignore is one entry of DefaultIgnores: Function is a regular expression
// matched against whole function names, on any frame of the stack, or only
// against the innermost frame outside package runtime when Top is set.
type Ignore struct {
	Function string
	Top      bool
	Why      string
}

// DefaultIgnores are goroutines that packages start once and keep for the
// life of the process; a test that happens to trigger them first would
// otherwise be blamed for them. NoDefaultIgnores drops the list.
//
// grpc-go is deliberately absent: it has no per-process goroutines (v1.5x to
// v1.8x); the goroutines of a closed ClientConn or a stopped Server end
// asynchronously, which the timeout covers, and ignoring them would hide the
// commonest gRPC leak, a ClientConn that is never closed.
var DefaultIgnores = []Ignore{
	// database/sql: one opener (and one cleaner with SetConnMaxLifetime/IdleTime) per *sql.DB,
	// for DBs a test suite opens once and shares. A DB opened per test and never closed
	// is a leak this hides: use NoDefaultIgnores to catch it.
	{Function: `database/sql\.\(\*DB\)\.connectionOpener`, Why: "database/sql connection opener of a shared *sql.DB"},
	{Function: `database/sql\.\(\*DB\)\.connectionCleaner`, Why: "database/sql connection cleaner of a shared *sql.DB"},
	// Loggers' flush daemons.
	{Function: `k8s\.io/klog/v2\.\(\*flushDaemon\)\.run\.func\d+`, Why: "klog flush daemon"},
	{Function: `k8s\.io/klog(/v2)?\.\(\*loggingT\)\.flushDaemon`, Why: "klog flush daemon"},
	{Function: `github\.com/golang/glog\.\(\*fileSink\)\.flushDaemon`, Why: "glog flush daemon"},
	{Function: `github\.com/golang/glog\.\(\*loggingT\)\.flushDaemon`, Why: "glog flush daemon"},
	// Telemetry exporters.
	{Function: `go\.opencensus\.io/stats/view\.\(\*worker\)\.start`, Why: "OpenCensus stats worker"},
	{Function: `go\.opentelemetry\.io/otel/sdk/trace\.\(\*batchSpanProcessor\)\.processQueue`, Why: "OpenTelemetry batch span processor"},
	{Function: `go\.opentelemetry\.io/otel/sdk/metric\.\(\*PeriodicReader\)\.run`, Why: "OpenTelemetry periodic metric reader"},
	// The standard library's process-wide goroutines.
	{Function: `os/signal\.loop|os/signal\.signal_recv`, Why: "os/signal dispatcher (first signal.Notify)"},
	// The testing package's own waits (a test waiting for subtests or parallel tests).
	{Function: `testing\.\(\*T\)\.Run|testing\.\(\*T\)\.Parallel|testing\.\(\*testState\)\.waitParallel|testing\.\(\*testContext\)\.waitParallel|testing\.tRunner\.func\d+|testing\.runTests(\.func\d+)?|testing\.\(\*M\)\.startAlarm\.func\d+`, Top: true, Why: "testing framework"},
}
