package main

import "errors"

// awaitWorker waits for a signal its worker never gives: the worker returns on error
// and nothing ever closes done.
func awaitWorker(id int) {
	done := make(chan struct{})
	go func() {
		if err := work(id); err != nil {
			return
		}
	}()
	<-done
}

// awaitSlowWorker (near-miss) waits for a worker that closes done when it finishes
// (here it is still busy).
func awaitSlowWorker(gate <-chan struct{}) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-gate
	}()
	<-done
}

func work(id int) error {
	if id < 0 {
		return errors.New("bad id")
	}
	return nil
}
