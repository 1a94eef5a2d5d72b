//go:build goexperiment.synctest && !go1.25

// synctest refuses the pre-1.23 timer channels that go.mod's "go 1.19" selects.
//
//go:debug asynctimerchan=0
package main

import (
	"testing"
	"testing/synctest"
)

// Go 1.24 (GOEXPERIMENT=synctest): bubbles are "synctest group N".
func TestSynctest(t *testing.T) {
	me := goid()
	synctest.Run(func() { synctestBody(me) })
}
