// Package leakcheck finds goroutines that Go tests leave running, and blames
// the right test even when tests run in parallel.
//
// Check(t) labels the test's goroutine with the runtime/pprof label
// test=t.Name(). Goroutines inherit the labels of the goroutine that starts
// them, so everything the test starts (and everything those start) carries
// the label. When the test and its subtests have finished, Check's cleanup
// takes goroutine profiles until no goroutine with that label is left, or
// the timeout passes (goroutines that are just finishing are not leaks);
// then it fails the test with the leaked goroutines' stacks. Goroutines of
// other tests running in parallel carry other labels, so they are never
// blamed on this one (go.uber.org/goleak's VerifyNone sees every goroutine
// of the process, which is why it cannot be used with t.Parallel).
//
// VerifyTestMain(m) runs the tests and then reports every goroutine still
// running, grouped by the test label when the test called Check.
//
// When leaks are found and a directory is set (Dir, or the environment
// variable GRPROF_LEAKCHECK_DIR), the goroutine profile is written there at
// debug=2 (text), debug=1 (text with labels) and debug=0 (protobuf with
// labels), plus the goroutineleak profile when the runtime has one
// (runtime/pprof.Lookup("goroutineleak"): Go 1.26 with
// GOEXPERIMENT=goroutineleakprofile, Go 1.27), for `grprof gate` and
// `grprof analyze`.
package leakcheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grprof/grprof/go/internal/debug1"
)

// Label is the pprof label key that carries the test name.
const Label = "test"

// EnvDir is the environment variable naming the directory for profiles of leaks.
const EnvDir = "GRPROF_LEAKCHECK_DIR"

// DefaultTimeout is how long Check waits for a test's goroutines to finish.
const DefaultTimeout = 2 * time.Second

// Option configures Check and VerifyTestMain.
type Option func(*config)

type ignore struct {
	top bool // match the innermost frame outside package runtime only
	re  *regexp.Regexp
	why string
}

type config struct {
	timeout  time.Duration
	dir      string
	ignores  []ignore
	defaults bool
}

// Timeout sets how long to wait for goroutines that are still finishing
// (default DefaultTimeout). Profiles are retaken with a backoff of 1ms
// doubling up to 100ms.
func Timeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Dir sets the directory for the profiles of leaks (default: $GRPROF_LEAKCHECK_DIR;
// none when both are empty). It is created when needed.
func Dir(path string) Option { return func(c *config) { c.dir = path } }

// IgnoreTopFunction ignores goroutines whose innermost function outside
// package runtime is f (a fully qualified name, as in a stack trace:
// "example.com/pkg.(*T).run").
func IgnoreTopFunction(f string) Option {
	return func(c *config) {
		c.ignores = append(c.ignores, ignore{top: true, re: exact(f), why: "IgnoreTopFunction"})
	}
}

// IgnoreAnyFunction ignores goroutines with f anywhere on their stack.
func IgnoreAnyFunction(f string) Option {
	return func(c *config) {
		c.ignores = append(c.ignores, ignore{re: exact(f), why: "IgnoreAnyFunction"})
	}
}

// IgnoreFunctionRegexp ignores goroutines with a function on their stack
// whose whole name matches the regular expression re.
func IgnoreFunctionRegexp(re string) Option {
	return func(c *config) {
		c.ignores = append(c.ignores, ignore{re: regexp.MustCompile(`^(?:` + re + `)$`), why: "IgnoreFunctionRegexp"})
	}
}

// NoDefaultIgnores drops DefaultIgnores.
func NoDefaultIgnores() Option { return func(c *config) { c.defaults = false } }

func exact(f string) *regexp.Regexp { return regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `$`) }

func newConfig(opts []Option) *config {
	c := &config{timeout: DefaultTimeout, dir: os.Getenv(EnvDir), defaults: true}
	for _, o := range opts {
		o(c)
	}
	if c.defaults {
		for _, d := range DefaultIgnores {
			c.ignores = append(c.ignores, ignore{top: d.Top, re: regexp.MustCompile(`^(?:` + d.Function + `)$`), why: d.Why})
		}
	}
	return c
}

// Check labels the calling test goroutine with test=t.Name() and, when the
// test and its subtests have finished, fails t if goroutines carrying that
// label are still running after the timeout. Call it first in the test,
// before t.Parallel() and before starting anything; goroutines started
// before Check are not attributed to the test.
//
// A subtest that calls Check gets its own label; the goroutines of a
// subtest that does not call Check carry its parent's label.
func Check(t testing.TB, opts ...Option) {
	t.Helper()
	c := newConfig(opts)
	name := t.Name()
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(Label, name)))
	t.Cleanup(func() {
		// The test is over (this cleanup, registered first, runs last): unlabel
		// the test goroutine so the profiles written below do not count it.
		pprof.SetGoroutineLabels(context.Background())
		leaks, err := c.wait(func(g debug1.Goroutine) bool { return g.Labels[Label] == name })
		if err != nil {
			t.Errorf("leakcheck: %v", err)
			return
		}
		if len(leaks) == 0 {
			return
		}
		files := c.write(name)
		t.Errorf("%s", report(fmt.Sprintf("leakcheck: %s leaked %d goroutine%s (still running %v after the test):",
			name, count(leaks), plural(count(leaks)), c.timeout), leaks, files))
	})
}

// VerifyTestMain runs the tests (m.Run) and then, if they passed, waits up
// to the timeout for all goroutines to finish; it reports the ones still
// running, by test label when they have one, and exits with status 1. Use
// it as TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
func VerifyTestMain(m *testing.M, opts ...Option) {
	code := m.Run()
	if code == 0 {
		c := newConfig(opts)
		leaks, err := c.wait(func(debug1.Goroutine) bool { return true })
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "leakcheck: %v\n", err)
			code = 1
		case len(leaks) > 0:
			files := c.write("TestMain")
			byTest := map[string][]debug1.Goroutine{}
			for _, g := range leaks {
				byTest[g.Labels[Label]] = append(byTest[g.Labels[Label]], g)
			}
			names := make([]string, 0, len(byTest))
			for n := range byTest {
				names = append(names, n)
			}
			sort.Strings(names)
			for i, n := range names {
				who := "started by " + n
				if n == "" {
					who = "not attributed to a test (no test label: their test did not call leakcheck.Check)"
				}
				var f []string
				if i == len(names)-1 {
					f = files
				}
				fmt.Fprintln(os.Stdout, report(fmt.Sprintf("leakcheck: after all tests (TestMain): %d goroutine%s still running, %s:",
					count(byTest[n]), plural(count(byTest[n])), who), byTest[n], f))
			}
			fmt.Fprintln(os.Stdout, "FAIL")
			code = 1
		}
	}
	os.Exit(code)
}

// wait retakes the goroutine profile until no goroutine selected by keep
// (and not ignored, and not the caller) is left, or the timeout passes.
func (c *config) wait(keep func(debug1.Goroutine) bool) ([]debug1.Goroutine, error) {
	deadline := time.Now().Add(c.timeout)
	sleep := time.Millisecond
	clean := false
	for {
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
			return nil, err
		}
		all, err := debug1.Parse(b.Bytes())
		if err != nil {
			return nil, err
		}
		var leaks []debug1.Goroutine
		for _, g := range all {
			if keep(g) && !self(g) && !c.ignored(g) {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 && !clean {
			// One clean profile is not enough: Go 1.22's concurrent goroutine profile
			// can miss a goroutine created an instant before that has not run yet
			// (seen with GOMAXPROCS=1 and on a loaded machine). Let it run, look again.
			clean = true
			runtime.Gosched()
			time.Sleep(time.Millisecond)
			continue
		}
		if len(leaks) == 0 || !time.Now().Before(deadline) {
			return leaks, nil
		}
		clean = false
		time.Sleep(sleep)
		if sleep *= 2; sleep > 100*time.Millisecond {
			sleep = 100 * time.Millisecond
		}
	}
}

// self reports whether g is a goroutine taking a goroutine profile: the caller.
func self(g debug1.Goroutine) bool {
	for _, f := range g.Funcs {
		if f == "runtime/pprof.writeGoroutine" || f == "runtime/pprof.(*Profile).WriteTo" {
			return true
		}
	}
	return false
}

func (c *config) ignored(g debug1.Goroutine) bool {
	top := ""
	for _, f := range g.Funcs {
		if !strings.HasPrefix(f, "runtime.") {
			top = f
			break
		}
	}
	for _, ig := range c.ignores {
		if ig.top {
			if ig.re.MatchString(top) {
				return true
			}
			continue
		}
		for _, f := range g.Funcs {
			if ig.re.MatchString(f) {
				return true
			}
		}
	}
	return false
}

// write saves the goroutine profiles for a leak by name; it returns the paths written.
func (c *config) write(name string) []string {
	if c.dir == "" {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return []string{"(not written: " + err.Error() + ")"}
	}
	base := filepath.Join(c.dir, safeName(name))
	var files []string
	save := func(profile string, debug int, suffix string) {
		p := pprof.Lookup(profile)
		if p == nil {
			return
		}
		var b bytes.Buffer
		if err := p.WriteTo(&b, debug); err != nil {
			files = append(files, fmt.Sprintf("(%s debug=%d not written: %v)", profile, debug, err))
			return
		}
		path := base + suffix
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			files = append(files, fmt.Sprintf("(%s not written: %v)", path, err))
			return
		}
		files = append(files, path)
	}
	save("goroutine", 2, ".goroutine.debug2.txt")
	save("goroutine", 1, ".goroutine.debug1.txt")
	save("goroutine", 0, ".goroutine.pb.gz")
	save("goroutineleak", 1, ".goroutineleak.debug1.txt")
	save("goroutineleak", 0, ".goroutineleak.pb.gz")
	return files
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(name string) string { return unsafeChars.ReplaceAllString(name, "_") }

func report(head string, leaks []debug1.Goroutine, files []string) string {
	var b strings.Builder
	b.WriteString(head)
	b.WriteString("\n")
	for _, g := range leaks {
		b.WriteString(g.Text)
		b.WriteString("\n")
	}
	if len(files) > 0 {
		b.WriteString("leakcheck: goroutine profiles written: " + strings.Join(files, ", ") + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func count(gs []debug1.Goroutine) int {
	n := 0
	for _, g := range gs {
		n += g.Count
	}
	return n
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
