//go:build go1.25

// synctest refuses the pre-1.23 timer channels that go.mod's "go 1.19" selects.
//
//go:debug asynctimerchan=0
package main

import (
	"testing"
	"testing/synctest"
)

// Go 1.25+: bubbles are "synctest bubble N", durable blocks say "(durable)".
func TestSynctest(t *testing.T) {
	me := goid()
	synctest.Test(t, func(*testing.T) { synctestBody(me) })
}
