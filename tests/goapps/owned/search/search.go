// Package search leaks inside a vendored SDK: each Query leaves a goroutine in
// sdk.(*Client).Await on a channel nobody sends on.
package search

import "grprof.test/owned/third_party/sdk"

// Query starts a reply waiter whose channel is dropped.
//
//go:noinline
func Query() {
	c := sdk.New(make(chan int))
	go wait(c)
}

//go:noinline
func wait(c *sdk.Client) { c.Await() }
