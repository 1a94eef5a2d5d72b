// Package verifymain is run by leakcheck's tests as a subprocess: every test
// passes, but TestNoCheck leaks without calling Check, and VerifyTestMain
// reports it after the run (and exits 1).
package verifymain

import (
	"testing"

	"github.com/grprof/grprof/go/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m, leakcheck.Timeout(200e6)) }

//go:noinline
func parkedNoCheck(c chan struct{}) { <-c }

var never = make(chan struct{})

func TestNoCheck(t *testing.T) { go parkedNoCheck(never) }

func TestFine(t *testing.T) {}
