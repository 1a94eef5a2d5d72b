// Package gotest has one test that never finishes, so `go test -timeout 2s`
// prints "panic: test timed out after 2s", the running tests and a
// goroutine dump, then FAIL lines. If GRPROF_TRUTH_FILE is set the test
// writes what it knows there as JSON (stdout is part of the recorded output).
package gotest

import (
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

type goroutine struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Func      string `json:"func"`
	Creator   int64  `json:"creator,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

func TestHang(t *testing.T) {
	top := goid()
	t.Run("wait", func(t *testing.T) {
		ids := make(chan int64)
		go helper(ids)
		gs := []goroutine{
			{ID: <-ids, State: "chan receive", Func: "grproftest/gotest.helper",
				Creator: goid(), CreatedBy: "grproftest/gotest.TestHang.func1"},
			{ID: goid(), State: "chan receive", Func: "grproftest/gotest.TestHang.func1", Creator: top},
			{ID: top, State: "chan receive", Func: "grproftest/gotest.TestHang"},
		}
		writeTruth(gs)
		<-make(chan int)
	})
}

//go:noinline
func helper(ids chan<- int64) {
	ids <- goid()
	<-make(chan int)
}

func writeTruth(gs []goroutine) {
	path := os.Getenv("GRPROF_TRUTH_FILE")
	if path == "" {
		return
	}
	b, err := json.Marshal(map[string]interface{}{
		"mode": "gotest-timeout", "go": runtime.Version(), "scope": "all",
		"goroutines": gs, "prologue": []string{"panic: test timed out after 2s"},
	})
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		panic(err)
	}
}

func goid() int64 {
	var buf [128]byte
	f := strings.Fields(string(buf[:runtime.Stack(buf[:], false)]))
	id, _ := strconv.ParseInt(f[1], 10, 64)
	return id
}
