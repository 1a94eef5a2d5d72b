package leakcheck_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.uber.org/goleak"

	"github.com/grprof/grprof/go/leakcheck"
)

//go:noinline
func finishLate(d time.Duration) { time.Sleep(d) }

// A goroutine that ends a little after the test is not a leak.
func TestLateGoroutineNotFlagged(t *testing.T) {
	leakcheck.Check(t)
	go finishLate(200 * time.Millisecond)
}

// An HTTP server and client started and stopped properly leave nothing behind
// (their connection goroutines end asynchronously, within the timeout);
// goleak agrees (this test is not parallel, so goleak can be used here).
func TestServerStartedAndStopped(t *testing.T) {
	defer goleak.VerifyNone(t)
	leakcheck.Check(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	srv.Close()
}

// goTest runs `go test -count=1 -v args...` in this module and returns its output.
func goTest(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	// The toolchain that built this test, else the one on PATH.
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command")
		}
	}
	cmd := exec.Command(gobin, append([]string{"test", "-count=1", "-v"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s test %s:\n%s", gobin, strings.Join(args, " "), out)
	return string(out), err
}

func mustContain(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}

func TestLeakyTestIsBlamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, err := goTest(t, []string{leakcheck.EnvDir + "=" + dir}, "./testdata/leaky")
	if err == nil {
		t.Fatal("go test ./testdata/leaky passed; want TestLeaks and TestTooLate to fail")
	}
	mustContain(t, out,
		"--- FAIL: TestLeaks",
		"leakcheck: TestLeaks leaked 1 goroutine (still running 2s after the test):",
		`# labels: {"test":"TestLeaks"}`,
		"leaky.parkForever",
		"--- PASS: TestClean",
		"--- PASS: TestLateFinisher", // ends 300ms after the test: within the timeout
		"--- FAIL: TestTooLate",      // Timeout(50ms): its 3s goroutine is reported
		"leakcheck: TestTooLate leaked 1 goroutine (still running 50ms after the test):",
		"leakcheck: goroutine profiles written: "+filepath.Join(dir, "TestLeaks.goroutine.debug2.txt"),
	)
	if strings.Contains(out, "leaky.finishLate") && strings.Count(out, "leaky.finishLate") != 1 {
		t.Errorf("finishLate reported more than once (TestLateFinisher blamed?)")
	}

	// The profiles written for the later `grprof gate`.
	d2, err := os.ReadFile(filepath.Join(dir, "TestLeaks.goroutine.debug2.txt"))
	if err != nil || !bytes.Contains(d2, []byte("leaky.parkForever")) {
		t.Errorf("debug2 profile: %v\n%s", err, d2)
	}
	d1, err := os.ReadFile(filepath.Join(dir, "TestLeaks.goroutine.debug1.txt"))
	if err != nil || bytes.Count(d1, []byte(`# labels: {"test":"TestLeaks"}`)) != 1 {
		// Exactly one: the leaked goroutine, not the test goroutine writing the profile.
		t.Errorf("debug1 profile: %v\n%s", err, d1)
	}
	f, err := os.Open(filepath.Join(dir, "TestLeaks.goroutine.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range p.Sample {
		if len(s.Label["test"]) == 1 && s.Label["test"][0] == "TestLeaks" {
			for _, loc := range s.Location {
				for _, ln := range loc.Line {
					found = found || strings.HasSuffix(ln.Function.Name, "leaky.parkForever")
				}
			}
		}
	}
	if !found {
		t.Errorf("debug=0 profile has no sample labelled test=TestLeaks in parkForever")
	}
}

// The same package with goleak (VerifyNone in each test): it flags TestLeaks's
// goroutine as leakcheck does, and it is fine with TestClean and with
// TestLateFinisher's late goroutine as leakcheck is (run without TestLeaks,
// both pass); but run after TestLeaks, goleak fails every later test for
// TestLeaks's goroutine, where leakcheck passes them.
func TestLeakyComparedWithGoleak(t *testing.T) {
	t.Parallel()
	env := []string{"LEAKCHECK_TOOL=goleak"}
	out, err := goTest(t, env, "./testdata/leaky")
	if err == nil {
		t.Fatal("want goleak to fail TestLeaks")
	}
	mustContain(t, out, "--- FAIL: TestLeaks", "found unexpected goroutines",
		"--- FAIL: TestClean", "--- FAIL: TestLateFinisher", "--- FAIL: TestTooLate")
	if n := strings.Count(out, "with github.com/grprof/grprof/go/leakcheck/testdata/leaky.parkForever on top of the stack"); n != 4 {
		t.Errorf("want TestLeaks's goroutine in all 4 goleak reports, got %d", n)
	}
	// TestLateFinisher's own goroutine (300ms) is not in its report: goleak retries too.
	if i, j := strings.Index(out, "=== RUN   TestLateFinisher"), strings.Index(out, "=== RUN   TestTooLate"); i < 0 || j < i {
		t.Errorf("test order")
	} else if strings.Contains(out[i:j], "leaky.finishLate") {
		t.Errorf("goleak reported TestLateFinisher's late goroutine:\n%s", out[i:j])
	}
	out, err = goTest(t, env, "-run", "^(TestClean|TestLateFinisher)$", "./testdata/leaky")
	if err != nil {
		t.Fatalf("goleak without TestLeaks: %v", err)
	}
	mustContain(t, out, "--- PASS: TestClean", "--- PASS: TestLateFinisher")
	out, err = goTest(t, nil, "-run", "^(TestClean|TestLateFinisher)$", "./testdata/leaky")
	if err != nil {
		t.Fatalf("leakcheck without TestLeaks: %v", err)
	}
	mustContain(t, out, "--- PASS: TestClean", "--- PASS: TestLateFinisher")
}

// When the runtime has a goroutineleak profile (Go 1.26 with
// GOEXPERIMENT=goroutineleakprofile) leakcheck writes it too.
func TestGoroutineLeakProfileWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{leakcheck.EnvDir + "=" + dir}
	if pprof.Lookup("goroutineleak") == nil { // Go 1.26: an experiment; later: always there
		env = append(env, "GOEXPERIMENT=goroutineleakprofile")
	}
	out, err := goTest(t, env, "-run", "TestLeaks$", "./testdata/leaky")
	if err == nil {
		t.Fatal("want TestLeaks to fail")
	}
	if strings.Contains(out, "unknown GOEXPERIMENT") {
		t.Skip("this Go has no goroutineleakprofile experiment")
	}
	mustContain(t, out, "--- FAIL: TestLeaks")
	data, err := os.ReadFile(filepath.Join(dir, "TestLeaks.goroutineleak.debug1.txt"))
	if err != nil {
		t.Fatalf("goroutineleak profile not written: %v", err)
	}
	// parkForever waits on a channel nothing else can reach: the GC proves the leak.
	if !bytes.HasPrefix(data, []byte("goroutineleak profile: total ")) ||
		!bytes.Contains(data, []byte(`# labels: {"test":"TestLeaks"}`)) ||
		!bytes.Contains(data, []byte("leaky.parkForever")) {
		t.Errorf("goroutineleak profile:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "TestLeaks.goroutineleak.pb.gz")); err != nil {
		t.Error(err)
	}
}

// In a parallel suite only the leaky test is blamed; goleak (VerifyNone in each
// test) blames the tests that run alongside it as well. GOMAXPROCS=1 checks TestA
// while its leaked goroutine has not run yet: Go 1.22's goroutine profile leaves
// such a goroutine out, so one clean profile must not pass the test.
func TestParallelSuite(t *testing.T) {
	t.Parallel()
	for _, env := range [][]string{nil, {"GOMAXPROCS=1"}} {
		out, err := goTest(t, env, "./testdata/parallel")
		if err == nil {
			t.Fatalf("%v: want TestA to fail", env)
		}
		mustContain(t, out, "--- FAIL: TestA", "--- PASS: TestB", "--- PASS: TestC",
			"leakcheck: TestA leaked 1 goroutine", "parallel.leakedByA")
		for _, wrong := range []string{"helperOfB", "helperOfC", "--- FAIL: TestB", "--- FAIL: TestC"} {
			if strings.Contains(out, wrong) {
				t.Errorf("%v: leakcheck output has %q", env, wrong)
			}
		}
	}

	out, err := goTest(t, []string{"LEAKCHECK_TOOL=goleak"}, "./testdata/parallel")
	if err == nil {
		t.Fatal("want goleak to fail")
	}
	// goleak sees every goroutine of the process: TestB and TestC fail for TestA's leak.
	mustContain(t, out, "--- FAIL: TestA", "--- FAIL: TestB", "--- FAIL: TestC", "found unexpected goroutines")
	if strings.Count(out, "with github.com/grprof/grprof/go/leakcheck/testdata/parallel.leakedByA on top of the stack") < 3 {
		t.Errorf("want TestA's leaked goroutine in all three goleak reports")
	}
}

func TestVerifyTestMain(t *testing.T) {
	t.Parallel()
	out, err := goTest(t, nil, "./testdata/verifymain")
	if err == nil {
		t.Fatal("want VerifyTestMain to fail the run")
	}
	mustContain(t, out, "--- PASS: TestNoCheck", "--- PASS: TestFine",
		"leakcheck: after all tests (TestMain): 1 goroutine still running, not attributed to a test",
		"verifymain.parkedNoCheck")
}
