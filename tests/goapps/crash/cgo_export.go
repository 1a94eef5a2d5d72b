//go:build cgo

package main

import "C"

//export goCallbackBlock
func goCallbackBlock() {
	callbackIDs <- goid()
	<-make(chan int)
}
