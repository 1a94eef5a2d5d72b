package debug1

import (
	"bytes"
	"context"
	"runtime/pprof"
	"testing"
	"time"
)

func TestParseLive(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	// Values with a quote, a comma-space and a non-ASCII rune survive %q quoting.
	labels := pprof.Labels("route", `GET /a/{id}", "x":"y`, "ü", "v\tw")
	pprof.Do(context.Background(), labels, func(context.Context) {
		go func() { close(started); <-release }()
	})
	<-started
	// Retry: the goroutine may not be parked yet (Go 1.22 can leave it out of a
	// profile taken then), and with -count>1 the previous runs' goroutines are
	// still exiting.
	var b bytes.Buffer
	var found []Goroutine
	for try := 0; try < 200; try++ {
		b.Reset()
		if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
			t.Fatal(err)
		}
		gs, err := Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		found = found[:0]
		for _, g := range gs {
			if g.Matches(map[string]string{"route": `GET /a/{id}", "x":"y`, "ü": "v\tw"}) {
				found = append(found, g)
			}
		}
		if len(found) == 1 && found[0].Count == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(found) != 1 || found[0].Count != 1 || len(found[0].Labels) != 2 || !found[0].HasFunc("debug1.TestParseLive.func") {
		t.Fatalf("found %+v in\n%s", found, b.String())
	}
	if len(found[0].Funcs) != len(found[0].Files) || found[0].Files[0] == "" {
		t.Errorf("frames %v files %v", found[0].Funcs, found[0].Files)
	}
}
