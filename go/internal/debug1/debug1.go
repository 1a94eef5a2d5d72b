// Package debug1 parses the debug=1 text form of runtime/pprof goroutine
// profiles (records of stacks with their counts and pprof labels); it uses
// only the standard library.
package debug1

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Goroutine is one record of a goroutine profile: a stack shared by Count
// goroutines with the same labels.
type Goroutine struct {
	Count  int
	Labels map[string]string
	Funcs  []string // innermost first
	Files  []string // file:line of each frame in Funcs
	Text   string   // the record as printed
}

// HasFunc reports whether any frame's function name contains sub.
func (g Goroutine) HasFunc(sub string) bool {
	for _, f := range g.Funcs {
		if strings.Contains(f, sub) {
			return true
		}
	}
	return false
}

// Matches reports whether g carries every label of want.
func (g Goroutine) Matches(want map[string]string) bool {
	for k, v := range want {
		if got, ok := g.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

var labelPair = regexp.MustCompile(`("(?:[^"\\]|\\.)*"):("(?:[^"\\]|\\.)*")`)

// Parse parses a debug=1 goroutine profile.
func Parse(text []byte) ([]Goroutine, error) {
	var out []Goroutine
	var cur *Goroutine
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if cur != nil && line != "" {
			cur.Text += line + "\n"
		}
		switch {
		case strings.HasPrefix(line, "goroutine profile:"):
		case line == "":
			cur = nil
		case strings.Contains(line, " @ ") && cur == nil:
			n, err := strconv.Atoi(strings.TrimSpace(line[:strings.Index(line, " @ ")]))
			if err != nil {
				return nil, fmt.Errorf("bad record header %q", line)
			}
			out = append(out, Goroutine{Count: n, Labels: map[string]string{}, Text: line + "\n"})
			cur = &out[len(out)-1]
		case strings.HasPrefix(line, "# labels: ") && cur != nil:
			for _, m := range labelPair.FindAllStringSubmatch(line, -1) {
				k, err1 := strconv.Unquote(m[1])
				v, err2 := strconv.Unquote(m[2])
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("bad labels %q", line)
				}
				cur.Labels[k] = v
			}
		case strings.HasPrefix(line, "#\t") && cur != nil:
			// "#\t0x4a1b2c\tpkg.fn+0x2c\t/path/file.go:12"
			fields := strings.Split(line, "\t")
			if len(fields) >= 3 {
				fn := fields[2]
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				cur.Funcs = append(cur.Funcs, fn)
				file := ""
				if len(fields) >= 4 {
					file = strings.TrimSpace(fields[len(fields)-1])
				}
				cur.Files = append(cur.Files, file)
			}
		}
	}
	return out, sc.Err()
}
