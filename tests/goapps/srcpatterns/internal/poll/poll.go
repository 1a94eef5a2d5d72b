// Package poll runs periodic checks.
package poll

import (
	"context"
	"time"
)

// Start polls forever: its ticker is never stopped and its loop has no way out, so every
// call leaks a goroutine and a ticker.
func Start(check func()) {
	go func() {
		t := time.NewTicker(time.Hour)
		for {
			<-t.C
			check()
		}
	}()
}

// StartStoppable (near-miss) stops its ticker and returns when ctx ends.
func StartStoppable(ctx context.Context, check func()) {
	go func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				check()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// StartUntil (near-miss) never stops its ticker, but its loop returns when ctx ends.
func StartUntil(ctx context.Context, check func()) {
	go func() {
		t := time.NewTicker(time.Hour)
		for {
			select {
			case <-t.C:
				check()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Times (near-miss) never stops its ticker, but its loop ends after n ticks.
func Times(n int, check func()) {
	go func() {
		t := time.NewTicker(time.Hour)
		for i := 0; i < n; i++ {
			<-t.C
			check()
		}
	}()
}

// Every ticks forever with time.Tick, which cannot be stopped, in a loop with no way out.
func Every(d time.Duration, check func()) {
	go func() {
	ticks:
		for range time.Tick(d) {
			if d < 0 {
				continue ticks
			}
			check()
		}
	}()
}

// Tracker keeps its ticker in a field and loops until stop is closed.
type Tracker struct {
	t    *time.Ticker
	stop chan struct{}
	n    int
}

func (r *Tracker) loop() {
	for {
		select {
		case <-r.t.C:
			r.n++
		case <-r.stop:
			r.t.Stop()
			return
		}
	}
}

// StartTracker leaks its loop and its ticker: nothing ever closes stop.
func StartTracker() *Tracker {
	r := &Tracker{t: time.NewTicker(time.Hour), stop: make(chan struct{})}
	go r.loop()
	return r
}
