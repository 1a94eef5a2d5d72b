//go:build goexperiment.synctest || go1.25

package main

import (
	"os"
	"runtime"
	"testing/synctest"
	"time"
)

// synctestBody runs inside a synctest bubble. GRPROF_SYNCTEST picks what it
// does once the bubble's other goroutines are durably blocked: "stack"
// writes runtime.Stack(all) to stderr and exits 0, "panic" panics inside the
// bubble, "deadlock" returns and leaves them blocked for synctest to report.
func synctestBody(creator int64) {
	what := os.Getenv("GRPROF_SYNCTEST")
	t := newTruth("synctest-" + what)
	t.Scope = "all"
	ids := make(chan int64)
	// One at a time, so each id is matched with its function.
	go bubbleChanRecv(ids)
	t.Goroutines = append(t.Goroutines, bubbleG(t, <-ids, "chan receive", "main.bubbleChanRecv"))
	go bubbleSelect(ids)
	t.Goroutines = append(t.Goroutines, bubbleG(t, <-ids, "select", "main.bubbleSelect"))
	go bubbleSleep(ids)
	t.Goroutines = append(t.Goroutines, bubbleG(t, <-ids, "sleep", "main.bubbleSleep"))
	synctest.Wait()
	t.Extra = map[string]string{"test_goroutine": itoa(creator)}
	switch what {
	case "stack":
		t.Goroutines = append(t.Goroutines, G{ID: t.Current, State: "running", Func: "main.synctestBody", Synctest: true})
		emit(t)
		buf := make([]byte, 1<<16)
		os.Stderr.Write(buf[:runtime.Stack(buf, true)])
		os.Exit(0)
	case "panic":
		t.Goroutines = append(t.Goroutines, G{ID: t.Current, State: "running", Func: "main.doPanic", Synctest: true})
		t.Prologue = []string{"panic: in bubble"}
		if goMinor() >= 25 { // f runs under testing.tRunner, which re-panics
			t.Prologue = []string{"panic: in bubble [recovered, repanicked]"}
		}
		emit(t)
		doPanic("in bubble")
	default:
		t.Current = 0
		if goMinor() < 25 {
			// 1.24 advances the fake clock first: the sleeper wakes and
			// exits before synctest.Run reports the deadlock.
			t.Goroutines = t.Goroutines[:2]
		}
		emit(t)
	}
}

// bubbleG: state is the reason without the "(durable)" (1.25+) or
// "(synctest)" (1.24) suffix the runtime adds for durably blocked goroutines.
func bubbleG(t *Truth, id int64, state, fn string) G {
	return G{ID: id, State: state, Func: fn, Creator: t.Current,
		CreatedBy: "main.synctestBody", Synctest: true, Durable: true}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

//go:noinline
func bubbleChanRecv(ids chan<- int64) {
	ids <- goid()
	<-make(chan int)
}

//go:noinline
func bubbleSelect(ids chan<- int64) {
	ids <- goid()
	a, b := make(chan int), make(chan int)
	select {
	case <-a:
	case b <- 1:
	}
}

//go:noinline
func bubbleSleep(ids chan<- int64) {
	ids <- goid()
	time.Sleep(time.Hour)
}
