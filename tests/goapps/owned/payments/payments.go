// Package payments leaks in the standard library: each Settle leaves a goroutine in
// sync.(*WaitGroup).Wait on a WaitGroup nobody calls Done on.
package payments

import "sync"

// Settle starts a confirmation waiter and forgets the WaitGroup's Done.
//
//go:noinline
func Settle() {
	var wg sync.WaitGroup
	wg.Add(1)
	go confirm(&wg)
}

//go:noinline
func confirm(wg *sync.WaitGroup) { wg.Wait() }
