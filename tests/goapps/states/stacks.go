package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// curID parses the calling goroutine's id from "goroutine 18 [running]:".
func curID() int64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(string(buf))
	if len(f) < 2 {
		fatalf("cannot parse goroutine id from %q", buf)
	}
	id, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		fatalf("cannot parse goroutine id from %q", buf)
	}
	return id
}

// allStacks is the same traceback debug=2 serves (runtime.Stack of all goroutines).
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// stackInfo is what the self-check reads from one goroutine's traceback.
type stackInfo struct {
	state     string
	locked    bool
	labels    bool
	minutes   int
	firstMain string
}

// parseStacks reads just enough of a traceback to check the truth against it.
func parseStacks(dump string) map[int64]stackInfo {
	out := map[int64]stackInfo{}
	for _, block := range strings.Split(dump, "\n\n") {
		lines := strings.Split(block, "\n")
		f := strings.Fields(lines[0])
		if len(f) < 3 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		info := parseHeader(lines[0])
		info.firstMain = firstMainFrame(lines[1:])
		out[id] = info
	}
	return out
}

// parseHeader splits "goroutine 7 [chan receive, 1 minutes, locked to thread]:"
// with Go 1.26 " labels:{...}" inside the brackets or 1.27 " {...}" after them.
func parseHeader(h string) stackInfo {
	var info stackInfo
	open := strings.Index(h, " [")
	if open < 0 {
		return info
	}
	body := h[open+2:]
	if i := strings.Index(body, " labels:{"); i >= 0 {
		body, info.labels = body[:i], true
	} else if i := strings.Index(body, "]"); i >= 0 {
		info.labels = strings.HasPrefix(body[i:], "] {")
		body = body[:i]
	}
	parts := strings.Split(body, ", ")
	info.state = parts[0]
	for _, suffix := range []string{" (durable)", " (scan)", " (leaked)"} {
		info.state = strings.TrimSuffix(info.state, suffix)
	}
	for _, p := range parts[1:] {
		if p == "locked to thread" {
			info.locked = true
		} else if strings.HasSuffix(p, " minutes") {
			info.minutes, _ = strconv.Atoi(strings.TrimSuffix(p, " minutes"))
		}
	}
	return info
}

func firstMainFrame(lines []string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
			continue
		}
		if i := strings.LastIndex(l, "("); i > 0 && strings.HasPrefix(l, "main.") {
			return l[:i]
		}
	}
	return ""
}

// settle waits until every registered goroutine (but main, which is still
// running) shows the state, function and flags the truth claims, and until the
// creators of orphans have exited; then it fills in Orphan. It exits the
// program if the runtime and the truth still disagree at the deadline.
func settle(timeout time.Duration, minMinutes int) {
	deadline := time.Now().Add(timeout)
	for {
		stacks := parseStacks(allStacks())
		problems := check(stacks, minMinutes)
		if len(problems) == 0 {
			markOrphans(stacks)
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "states: truth disagrees with runtime.Stack:\n  "+strings.Join(problems, "\n  "))
			os.Exit(3)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func check(stacks map[int64]stackInfo, minMinutes int) []string {
	var problems []string
	for _, r := range records() {
		if r.Kind == "main" {
			continue
		}
		s, ok := stacks[r.ID]
		_, creatorAlive := stacks[r.Creator]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("goroutine %d (%s) missing", r.ID, r.Kind))
		case s.state != r.State || s.firstMain != r.Function || s.locked != r.Locked:
			problems = append(problems, fmt.Sprintf("goroutine %d (%s): runtime says %q in %s locked=%v, truth %q in %s locked=%v",
				r.ID, r.Kind, s.state, s.firstMain, s.locked, r.State, r.Function, r.Locked))
		case (r.Kind == "orphan" || r.Kind == "handler") && creatorAlive:
			problems = append(problems, fmt.Sprintf("goroutine %d (%s): creator %d still alive", r.ID, r.Kind, r.Creator))
		case r.Kind != "server" && s.minutes < minMinutes:
			problems = append(problems, fmt.Sprintf("goroutine %d (%s): %d minutes, want >= %d", r.ID, r.Kind, s.minutes, minMinutes))
		}
	}
	return problems
}

func markOrphans(stacks map[int64]stackInfo) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, r := range reg {
		_, alive := stacks[r.Creator]
		r.Orphan = r.Creator != 0 && !alive
	}
}
