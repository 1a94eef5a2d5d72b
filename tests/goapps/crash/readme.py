"""Write tests/fixtures/crash/README.md from the recorded truth files.

Run by record.sh after recording: `python3 readme.py tests/fixtures/crash`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INTRO = """\
# Crash and signal tracebacks (recorded, not hand-written)

Real stderr of `tests/goapps/crash` (one Go program, `-mode NAME`) and the
combined output of `go test` on `tests/goapps/gotest`, recorded by
`tests/goapps/crash/record.sh` (regenerates everything here; no file is edited
by hand). One directory per Go version, named by `go env GOVERSION`:
go1.19.8 is Debian's golang-1.19-go, go1.26.8 the machine's `go`, the others
toolchain modules from the Go module proxy (`scripts/go-toolchain.sh`).

Per recording:
- `<mode>[.<GOTRACEBACK>].txt`: the process's stderr exactly as printed (no
  suffix: GOTRACEBACK unset, i.e. `single`).
- `<same>.truth.json`: the program's `GRPROF-TRUTH` line (printed on stdout
  before the crash) plus `recording` (Go version, exact command and
  environment, build command, exit status, signal sent). Fields:
  `goroutines[]` with `id`, `state` (header status or wait reason, without
  modifiers such as `(durable)`, `locked to thread`), `func` (innermost
  function of the program's own package), `creator` / `created_by`,
  `locked_to_thread`, `labels`, `ancestors` (nearest first), `synctest`,
  `durable`; `scope` (`all`: every listed goroutine is in the dump;
  `current`: only the goroutine `current`; `truncated`: a prefix of a full
  dump); `prologue` (lines expected, in order, before the first goroutine
  header).
- `skipped.txt`: modes this Go version cannot do, and why.

Modes: `panic` (12 goroutines parked in chan receive/send, select, select
(no cases), nil chan, Mutex, RWMutex, WaitGroup, Cond, sleep, IO wait and a
locked thread; at single, all, system and crash; a panic at crash prints the
system-level dump and dies of SIGABRT without per-M blocks), `panic-multiline`
(an error value with newlines), `repanic` (recover and re-panic the same
value), `repanic-new` (recover and panic a new value), `nilmap` (assignment
to entry in nil map), `segv` (nil pointer dereference, `[signal SIGSEGV
...]`), `deadlock`, `concurrent-map` (`fatal error: concurrent map writes`;
which writer throws is not known in advance, the other may be `running on
other thread`), `stackoverflow` (1 GB default limit, frames elided, `runtime
stack:`), `running` (`GODEBUG=asyncpreemptoff=1`, a spinning goroutine
prints `goroutine running on other thread; stack unavailable`), `sigquit`
(parked goroutines, SIGQUIT sent by the script; at crash every M dumps:
`-----`, `goroutine 0` per M, register dumps), `ancestors`
(`GODEBUG=tracebackancestors=5`, a goroutine whose creator has exited),
`labels` (pprof labels: a key with a space, quotes, an empty value, a tab and
non-ASCII; 1.26 and 1.27 only: `labels.all` with default settings prints no
labels, `labels-godebug` adds `GODEBUG=tracebacklabels=1`, and on 1.27
`labels-gomod127` is built with a go.mod saying `go 1.27`), `cgo` (CGO_ENABLED=1: a goroutine blocked in C
`sleep()` and one in a Go callback called from C, SIGQUIT at system and
crash), `cgo-traceback` / `cgo-symbolizer` (the same with
`runtime.SetCgoTraceback`: C frames as `non-Go function at pc=` lines, or
named through `dladdr`; they show only if the SIGQUIT lands on the thread in
C), `cgo-segv` (NULL write inside C), `synctest-stack` / `synctest-panic` /
`synctest-deadlock` (a test binary, `go test -c`; 1.24 with
`GOEXPERIMENT=synctest` and `synctest.Run`, 1.25+ `synctest.Test`:
`runtime.Stack` inside the bubble, a panic inside it, and synctest's own
deadlock report), `stack-small` (`runtime.Stack(buf, true)` with a 1500-byte
buffer: silently cut), `log` (a service's log: net/http logs a recovered
handler panic with its stack, more log lines follow, then the service
panics), `gotest-timeout[-v]` (`go test -timeout 2s` on tests/goapps/gotest:
`panic: test timed out after 2s`, `running tests:`, dump, `FAIL` lines; its
truth comes from the test through `GRPROF_TRUTH_FILE`).

`two-dumps.txt` is NOT the output of one process: it is `panic.all.txt`
followed by `sigquit.all.txt` of the same directory (`cat`), for
several-dumps-in-one-file tests; its truth file lists both parts.

`kept/` holds recordings that record.sh cannot reproduce on demand and does
not touch: `go1.21.13-concurrent-map-double-throw.txt` is a `concurrent-map`
run (`./crash -mode concurrent-map`, GOTRACEBACK unset, built by go1.21.13)
where both writers threw: two `fatal error` lines and goroutine 19 printed
twice (once `stack unavailable`, once with its stack). Its truth file is the
run's own; `scope: current` is too narrow for it (goroutine 1 is printed too).

Paths in the dumps are this machine's (`/work/main/...`, `/usr/local/go`,
`/root/go/pkg/mod/golang.org/toolchain@...`), pointers and ids differ per run.
"""


def rows(vdir: Path) -> list[str]:
    out = []
    for tf in sorted(vdir.glob("*.truth.json")):
        name = tf.name.removesuffix(".truth.json")
        doc = json.loads(tf.read_text(encoding="utf-8"))
        rec = doc.get("recording", {})
        size = (vdir / f"{name}.txt").stat().st_size
        cmd = str(rec.get("command", "")).replace("|", "\\|")
        build = rec.get("build", "")
        status = rec.get("exit_status", "")
        sig = f", sent SIG{rec['signal_sent']}" if rec.get("signal_sent") else ""
        out.append(f"| `{name}.txt` | {size} | `{cmd}` | {build} | {status}{sig} |")
    return out


def section(vdir: Path) -> str:
    lines = [f"## {vdir.name}", "", "| file | bytes | command | build | exit |", "|---|---|---|---|---|"]
    lines += rows(vdir)
    skipped = vdir / "skipped.txt"
    if skipped.exists():
        lines += ["", "Skipped:", ""]
        lines += [f"- {s}" for s in skipped.read_text(encoding="utf-8").splitlines() if s]
    return "\n".join(lines) + "\n"


def version_key(p: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in p.name.removeprefix("go").split(".") if x.isdigit())


def main() -> None:
    root = Path(sys.argv[1])
    parts = [INTRO]
    vdirs = [d for d in root.iterdir() if d.is_dir() and d.name.startswith("go")]
    parts += [section(vdir) for vdir in sorted(vdirs, key=version_key)]
    (root / "README.md").write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
