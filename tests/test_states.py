"""Wait states inferred from aggregated profiles match what the runtime printed.

`truth.json` of each recorded Go version says which state the runtime printed in debug=2
for every goroutine of tests/goapps/states; the debug=0 and debug=1 profiles of the same
run must infer the same state from the stack alone. Known, documented gaps (see
src/grprof/data/wait_states.yaml): debug=1 hides the runtime frames of channel and select
waits ("unknown"), and Go 1.19 printed "semacquire" for sync.Mutex waits whose stack is
the same as 1.20's ("sync.Mutex.Lock").
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from grprof.formats import debug1, pprof
from grprof.formats.states import compile_rules, infer_state, load_rules
from grprof.model import Frame, Snapshot

STATES = Path(__file__).resolve().parent / "fixtures" / "states"
# Kinds whose telling frames are all runtime.*, which debug=1 hides.
HIDDEN_IN_DEBUG1 = {
    "chan receive",
    "chan send",
    "select",
    "select (no cases)",
    "chan receive (nil chan)",
    "chan send (nil chan)",
}


def _dirs() -> list[Path]:
    return sorted(p for p in STATES.glob("go1.*") if (p / "truth.json").is_file())


def _profiles() -> list[Any]:
    out = []
    for d in _dirs():
        for f in sorted(d.iterdir()):
            if re.fullmatch(r"goroutine(leak)?\.debug[01]\.(txt|pb\.gz)", f.name):
                out.append(pytest.param(f, id=f"{d.name}/{f.name}"))
    return out


def _load(path: Path) -> Snapshot:
    data = path.read_bytes()
    if path.name.endswith(".pb.gz"):
        return pprof.parse(gzip.decompress(data), str(path))
    snaps = debug1.parse(data, str(path))
    assert len(snaps) == 1
    return snaps[0]


def expected_state(g: dict[str, Any], fmt: str, minor: int) -> str:
    if fmt == "debug=1" and g["state"] in HIDDEN_IN_DEBUG1:
        return "unknown"
    if minor < 20 and g["kind"] == "mutex":
        return "sync.Mutex.Lock"  # 1.19 printed "semacquire"; same stack as 1.20-1.23
    return str(g["state"])


def test_every_go_version_is_recorded() -> None:
    minors = {json.loads((d / "truth.json").read_text())["go_minor"] for d in _dirs()}
    assert {19, 21, 22, 26, 27} <= minors, f"fixtures missing under {STATES}: have {sorted(minors)}"


@pytest.mark.parametrize("path", _profiles())
def test_inferred_states_match_truth(path: Path) -> None:
    truth = json.loads((path.parent / "truth.json").read_text())
    snap = _load(path)
    want: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for g in truth["goroutines"]:
        if snap.profile == "goroutine" or g["leak"]:
            want[g["function"]][expected_state(g, snap.format, truth["go_minor"])] += 1
    got: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    others: collections.Counter[str] = collections.Counter()
    t = snap.table
    assert t.counts is not None
    for row in range(len(t)):
        frames = t.stacks[t.stack[row]].frames
        state = t.headers[t.header[row]].state
        main = next((f.function for f in frames if f.function.startswith("main.")), None)
        if main is None:
            others[state] += t.counts[row]
        else:
            got[main][state] += t.counts[row]
    assert got == want
    if snap.profile == "goroutine":
        # Outside the truth: the goroutine serving the scrape, and at most its reader.
        assert others["running"] == 1, others
        assert sum(others.values()) <= 2, others
    else:
        assert not others


def test_debug0_shows_every_state_exactly() -> None:
    """On 1.20+ debug=0 nothing is unknown: every truth state comes back."""
    seen = set()
    for d in _dirs():
        truth = json.loads((d / "truth.json").read_text())
        if truth["go_minor"] >= 20 and (d / "goroutine.debug0.pb.gz").exists():
            snap = _load(d / "goroutine.debug0.pb.gz")
            seen |= {h.state for h in snap.table.headers}
    assert {
        "chan receive",
        "chan send",
        "select",
        "select (no cases)",
        "chan receive (nil chan)",
        "chan send (nil chan)",
        "sync.Mutex.Lock",
        "sync.RWMutex.RLock",
        "sync.RWMutex.Lock",
        "sync.WaitGroup.Wait",
        "semacquire",
        "sync.Cond.Wait",
        "sleep",
        "IO wait",
        "syscall",
        "running",
    } <= seen


# -- the rules file -----------------------------------------------------------------------


def test_rules_load_once() -> None:
    assert load_rules() is load_rules()
    assert load_rules().exact["time.Sleep"][0].state == "sleep"


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"rules": {}},
        {"rules": [{"function": "f"}]},  # no state
        {"rules": [{"state": "x"}]},  # no matcher
        {"rules": [{"function": "f", "prefix": "g", "state": "x"}]},
        {"rules": [{"function": "f", "state": "x", "colour": "red"}]},
        {"rules": [{"function": ["f", 3], "state": "x"}]},
        {"rules": [{"function": "f", "max_lines_below_caller": "ten", "state": "x"}]},
    ],
)
def test_malformed_rules_are_rejected(doc: Any) -> None:
    with pytest.raises(ValueError, match=r"wait_states\.yaml"):
        compile_rules(doc)


def test_scan_stops_at_user_code() -> None:
    # A user frame between the innermost frame and a rule's function: the rule's frame is
    # a caller further out, not where the goroutine is parked.
    frames = [Frame("main.compute", "/app/main.go", 10), Frame("time.Sleep", "/go/time.go", 5)]
    assert infer_state(frames) == "unknown"
    assert infer_state(frames[1:]) == "sleep"
    assert infer_state([]) == "unknown"


# -- live: states outside the fixture program ------------------------------------------------

EXTRA = r"""
package main

/*
#include <unistd.h>
static void csleep(void) { sleep(60); }
*/
import "C"

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

//go:noinline
func inC() { C.csleep() }

func main() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
	go inC()
	time.Sleep(500 * time.Millisecond)
	for d, name := range []string{"p.debug0.pb.gz", "p.debug1.txt", "p.debug2.txt"} {
		f, _ := os.Create(name)
		pprof.Lookup("goroutine").WriteTo(f, d)
		f.Close()
	}
}
"""


@pytest.mark.slow
def test_signal_and_cgo_goroutines_are_in_syscall(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module extra\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text(EXTRA)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "", "CGO_ENABLED": "1"}
    build = subprocess.run(["go", "build", "-o", "extra", "."], cwd=tmp_path, env=env, capture_output=True)
    if build.returncode != 0 and b"gcc" in build.stderr:
        pytest.skip("cgo needs a C compiler")
    assert build.returncode == 0, build.stderr.decode()
    subprocess.run([str(tmp_path / "extra")], cwd=tmp_path, check=True, timeout=60)
    # What the runtime itself printed for the two goroutines, from debug=2 of the same run.
    dump = (tmp_path / "p.debug2.txt").read_text()
    assert re.search(r"\[syscall\]:\nos/signal\.signal_recv", dump)
    assert re.search(r"\[syscall\]:\nmain\._Cfunc_csleep", dump)
    for name in ("p.debug0.pb.gz", "p.debug1.txt"):
        snap = _load(tmp_path / name)
        states = {
            next(f.function for f in reversed(frames) if not f.is_runtime): h.state
            for h, frames in (
                (snap.table.headers[snap.table.header[r]], snap.table.stacks[snap.table.stack[r]].frames)
                for r in range(len(snap.table))
            )
        }
        assert states["os/signal.loop"] == "syscall", (name, states)
        assert states["main.inC"] == "syscall", (name, states)
        assert states["main.main"] == "running", (name, states)
