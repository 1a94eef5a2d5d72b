"""Wait states inferred from aggregated profiles match what the runtime printed.

`truth.json` of each recorded Go version says which state the runtime printed in debug=2
for every goroutine of tests/goapps/states; the debug=0 and debug=1 profiles of the same
run must infer the same state from the stack alone, debug=1 from the frames it shows and
the PCs of those it hides (see src/grprof/data/wait_states.yaml). The one documented gap:
a debug=1 profile holding one kind of a pair only (a goroutineleak profile with a nil
channel send and no real one, `select {}` and no select) reads as the common kind.
`test_agreement_with_debug2` measures the agreement with debug=2 of the same process per
Go version and format (the figures in docs/formats.md).
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

import grprof
from grprof.formats import debug1, pprof
from grprof.formats.states import Chain, HiddenChains, compile_rules, hidden_chains, infer_state, load_rules
from grprof.model import Frame, Snapshot

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STATES = FIXTURES / "states"
ZOO = FIXTURES / "zoo"
# What debug=1 reads when a profile holds one kind of a pair only (wait_states.yaml, hidden).
COMMON_KIND = {
    "chan send (nil chan)": "chan send",
    "chan receive (nil chan)": "chan receive",
    "select (no cases)": "select",
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


def test_every_go_version_is_recorded() -> None:
    minors = {json.loads((d / "truth.json").read_text())["go_minor"] for d in _dirs()}
    assert {19, 21, 22, 26, 27} <= minors, f"fixtures missing under {STATES}: have {sorted(minors)}"


@pytest.mark.parametrize("path", _profiles())
def test_inferred_states_match_truth(path: Path) -> None:
    truth = json.loads((path.parent / "truth.json").read_text())
    snap = _load(path)
    # Only a goroutineleak profile (a few goroutines) lacks the other kind of some pair.
    ambiguous = snap.format == "debug=1" and snap.profile == "goroutineleak"
    want: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for g in truth["goroutines"]:
        if snap.profile == "goroutine" or g["leak"]:
            want[g["function"]][str(g["state"])] += 1
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
    assert got.keys() == want.keys()
    for function, states in want.items():
        if ambiguous and got[function] != states:
            assert {COMMON_KIND.get(s, s): n for s, n in states.items()} == got[function], function
        else:
            assert got[function] == states, (function, dict(got[function]))
    if snap.profile == "goroutine":
        # Outside the truth: the goroutine serving the scrape, and at most its reader.
        assert others["running"] == 1, others
        assert sum(others.values()) <= 2, others
        assert "unknown" not in others, others
    else:
        assert not others


@pytest.mark.parametrize("name", ["goroutine.debug0.pb.gz", "goroutine.debug1.txt"])
def test_every_state_comes_back(name: str) -> None:
    """Nothing is unknown: every state of the truth comes back, from either format."""
    seen = set()
    for d in _dirs():
        if (d / name).exists():
            seen |= {h.state for h in _load(d / name).table.headers}
    assert "unknown" not in seen
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
        {"rules": [{"function": "f", "go_before": 20, "state": "x"}]},
        {"rules": [{"function": "f", "go_before": "go1.20", "state": "x"}]},
        {"rules": [], "empty_stack": ""},
        {"rules": [], "colour": "red"},
        {"rules": [], "hidden": []},
        {"rules": [], "hidden": {"chains": [{"sites": ["a"]}]}},
        {"rules": [], "hidden": {"chains": [{"sites": "a", "state": "x", "extra": 1}]}},
        {"rules": [], "hidden": {"chains": [], "layout": "a"}},
        {"rules": [], "hidden": {"chains": [], "layout": [["a", "b"], ["a"]]}},
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


def test_empty_stack_is_a_goroutine_not_started_yet() -> None:
    # Profiles drop runtime.goexit; a goroutine that never ran has nothing else
    # (debug=2 of the same runs shows it `[runnable]`).
    assert infer_state([]) == "runnable"
    for d in _dirs():
        for name in ("goroutine.debug0.pb.gz", "goroutine.debug1.txt"):
            if (d / name).exists():
                t = _load(d / name).table
                assert all(
                    t.headers[t.header[r]].state == "runnable"
                    for r in range(len(t))
                    if not t.stacks[t.stack[r]].frames
                )


def test_go_version_decides_the_mutex_state_string() -> None:
    mutex = [
        Frame("sync.runtime_SemacquireMutex", "/usr/local/go/src/runtime/sema.go", 77),
        Frame("sync.(*Mutex).lockSlow", "/usr/local/go/src/sync/mutex.go", 171),
        Frame("sync.(*Mutex).Lock", "/usr/local/go/src/sync/mutex.go", 90),
        Frame("main.f", "/app/main.go", 3),
    ]
    assert infer_state(mutex, 19) == "semacquire"
    assert infer_state(mutex, 20) == infer_state(mutex, 22) == infer_state(mutex) == "sync.Mutex.Lock"


def test_go_119_is_recognized_without_its_goroot_path() -> None:
    """Go 1.19's profiles under an unversioned GOROOT: its runtime's line numbers date it,
    and with it the "semacquire" of its mutex waits."""
    d = STATES / "go1.19.8"
    text = (d / "goroutine.debug1.txt").read_bytes().replace(b"/usr/lib/go-1.19/", b"/usr/local/go/")
    snap = debug1.parse(text, "p.txt")[0]
    assert snap.go_version == "1.19"
    proto = gzip.decompress((d / "goroutine.debug0.pb.gz").read_bytes())
    # Same length, so the protobuf's string lengths still hold.
    proto = proto.replace(b"/usr/lib/go-1.19/", b"/usr/local/go//./")
    snap0 = pprof.parse(proto, "p.pb")
    assert snap0.go_version == "1.19"
    for s in (snap, snap0):
        t = s.table
        assert {
            t.headers[t.header[r]].state
            for r in range(len(t))
            if any(f.function == "main.blockMutex" for f in t.stacks[t.stack[r]].frames)
        } == {"semacquire"}


# -- agreement with debug=2 of the same process ------------------------------------------------


def _stack_key(frames: tuple[Frame, ...]) -> str:
    """A goroutine's innermost main.* function, else the function it started in."""
    frames = tuple(f for f in frames if f.function != "runtime.goexit")
    main = next((f.function for f in frames if f.function.startswith("main.")), None)
    return main or (frames[-1].function if frames else "")


def _by_key(snap: Snapshot, leaked_only: bool = False) -> dict[str, collections.Counter[str]]:
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    t = snap.table
    for r in range(len(t)):
        h = t.headers[t.header[r]]
        if not leaked_only or h.leaked:
            out[_stack_key(t.stacks[t.stack[r]].frames)][h.state] += (
                t.counts[r] if t.counts is not None else 1
            )
    return out


def agreement(profile: Snapshot, dump: Snapshot) -> tuple[int, int]:
    """(goroutines whose inferred state is the one debug=2 printed, goroutines in the profile).

    Goroutines are matched by stack (`_stack_key`); those of stacks only one side has (the
    connection that served each scrape, a goroutine not started yet, whose debug=2 frame
    debug=0/1 drop) are matched by state among themselves."""
    got, want = _by_key(profile), _by_key(dump, leaked_only=profile.profile == "goroutineleak")
    same = 0
    rest_got: collections.Counter[str] = collections.Counter()
    rest_want: collections.Counter[str] = collections.Counter()
    for key in got.keys() | want.keys():
        if key in got and key in want:
            same += sum((got[key] & want[key]).values())
        else:
            rest_got += got.get(key, collections.Counter())
            rest_want += want.get(key, collections.Counter())
    same += sum((rest_got & rest_want).values())
    return same, profile.total


def _pairs() -> list[tuple[str, str, Path, Path]]:
    """(Go version, format, profile, debug=2 dump of the same process)."""
    out = []
    for d in _dirs():
        version = d.name.split("-")[0].removeprefix("go").rsplit(".", 1)[0]
        for prof in ("goroutine", "goroutineleak"):
            for fmt, name in (("debug=0", f"{prof}.debug0.pb.gz"), ("debug=1", f"{prof}.debug1.txt")):
                if (d / name).exists() and (d / f"{prof}.debug2.txt").exists():
                    out.append((version, f"{fmt} {prof}", d / name, d / f"{prof}.debug2.txt"))
    for phase in sorted({p.name.split(".")[0] for p in ZOO.glob("*.goroutine.debug2.txt")}):
        for fmt, name in (("debug=0", "goroutine.debug0.pb.gz"), ("debug=1", "goroutine.debug1.txt")):
            out.append(
                (
                    "1.26 zoo",
                    f"{fmt} goroutine",
                    ZOO / f"{phase}.{name}",
                    ZOO / f"{phase}.goroutine.debug2.txt",
                )
            )
    return out


def test_agreement_with_debug2(capsys: pytest.CaptureFixture[str]) -> None:
    """Per Go version and format, the share of goroutines whose inferred state is what debug=2
    of the same process printed: at least 95% for the goroutine profile. A goroutineleak
    debug=1 profile is a handful of goroutines with one kind of some pairs only: its misses
    are all the documented reading of a lone kind (COMMON_KIND)."""
    totals: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for version, fmt, path, dump_path in _pairs():
        profile = grprof.load(path)
        dump = grprof.load(dump_path)
        same, total = agreement(profile, dump)
        totals[version, fmt][0] += same
        totals[version, fmt][1] += total
        if fmt == "debug=1 goroutineleak":
            want = _by_key(dump, leaked_only=True)
            for key, states in _by_key(profile).items():
                assert states == want[key] or states == collections.Counter(
                    {COMMON_KIND.get(s, s): n for s, n in want[key].items()}
                ), (path, key, states, want[key])
    lines = ["Go version  format                 agreement"]
    for (version, fmt), (same, total) in sorted(totals.items()):
        lines.append(f"{version:<10}  {fmt:<21}  {same:>4}/{total:<4} {100 * same / total:5.1f}%")
        if fmt.endswith(" goroutine"):
            assert same >= 0.95 * total, (version, fmt, same, total)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert {v.split()[0] for v, _ in totals} >= {"1.19", "1.21", "1.22", "1.26", "1.27"}


@pytest.mark.slow
def test_live_agreement_with_debug2() -> None:
    """The same, on the machine's Go, live: the three formats of one process."""
    from gobuild import fetch, run_goapp

    with run_goapp("states", "-n", "2") as app:
        dumps = {d: fetch(app.base_url, f"/debug/pprof/goroutine?debug={d}") for d in (0, 1, 2)}
    ref = grprof.load(dumps[2])
    for d in (0, 1):
        profile = grprof.load(dumps[d])
        same, total = agreement(profile, ref)
        assert same >= 0.95 * total, (d, same, total)
        assert profile.go_version is not None, d


# -- debug=1: the hidden runtime frames ----------------------------------------------------------

GOPARK, CHANRECV, CHANRECV_NIL, CHANRECV1, CHANRECV2 = 0x48C78A, 0x419C6E, 0x419999, 0x4197B2, 0x4197D0
CHANSEND, CHANSEND_NIL, CHANSEND1 = 0x418D5C, 0x418A6C, 0x418957
SELECTGO, BLOCK = 0x465717, 0x464C66


def solve(*tuples: tuple[int, ...], counts: tuple[int, ...] = ()) -> list[str | None]:
    got = hidden_chains().solve({t: (counts[i] if counts else 1) for i, t in enumerate(tuples)})
    return [got.get(t) for t in tuples]


def test_hidden_pcs_tell_every_kind_apart_when_the_dump_has_them_all() -> None:
    # Go 1.27.3's PCs (tests/fixtures/states/go1.27.3/goroutine.debug1.txt).
    kinds = {
        (GOPARK, CHANRECV, CHANRECV1): "chan receive",
        (GOPARK, CHANRECV_NIL, CHANRECV1): "chan receive (nil chan)",
        (GOPARK, CHANSEND, CHANSEND1): "chan send",
        (GOPARK, CHANSEND_NIL, CHANSEND1): "chan send (nil chan)",
        (GOPARK, SELECTGO): "select",
        (GOPARK, BLOCK): "select (no cases)",
        (GOPARK, CHANRECV, CHANRECV2): "chan receive",
    }
    assert solve(*kinds) == list(kinds.values())


def test_a_lone_kind_reads_as_the_common_one() -> None:
    assert solve((GOPARK, CHANSEND_NIL, CHANSEND1)) == ["chan receive"]
    assert solve((GOPARK, BLOCK)) == ["select"]
    # Two channel operations: the lower return address is the send (chan.go's order).
    assert solve((GOPARK, CHANSEND, CHANSEND1), (GOPARK, CHANRECV, CHANRECV1)) == [
        "chan send",
        "chan receive",
    ]
    # Two callers of one callee (shared park PC): chanrecv1 and chanrecv2.
    assert solve((GOPARK, CHANRECV, CHANRECV1), (GOPARK, CHANRECV, CHANRECV2)) == ["chan receive"] * 2
    # Two park sites under one caller: the first is the nil channel's.
    assert solve((GOPARK, CHANSEND, CHANSEND1), (GOPARK, CHANSEND_NIL, CHANSEND1)) == [
        "chan receive",
        "chan receive (nil chan)",
    ]


def test_hidden_pcs_no_chain_explains_are_left_unknown() -> None:
    # A different innermost PC than every other stack's gopark: not a park we know.
    assert solve((GOPARK, CHANRECV, CHANRECV1), (0x1234, CHANRECV, CHANRECV1), counts=(5, 1)) == [
        "chan receive",
        None,
    ]
    assert solve((GOPARK,), (GOPARK, 1, 2, 3)) == [None, None]
    assert hidden_chains().solve({}) == {}


def test_hidden_pcs_search_is_bounded() -> None:
    # Many distinct runs of PCs (a huge binary, or garbage): a greedy answer, quickly.
    many = {(GOPARK, 0x500000 + i, 0x400000 + i): 100 - i for i in range(40)}
    got = hidden_chains().solve(many)
    assert got[GOPARK, 0x500000, 0x400000] == "chan receive"
    assert set(got.values()) <= {c.state for c in hidden_chains().chains}


def test_hidden_chains_in_a_real_profile() -> None:
    text = (STATES / "go1.27.3" / "goroutine.debug1.txt").read_bytes()
    snap = debug1.parse(text, "p.txt")[0]
    t = snap.table
    states = {_stack_key(t.stacks[t.stack[r]].frames): t.headers[t.header[r]].state for r in range(len(t))}
    assert states["main.blockSelectNoCases"] == "select (no cases)"
    assert states["main.blockNilChanSend"] == "chan send (nil chan)"
    assert states["main.main"] == "chan receive"
    # A block whose count line lacks the first frame's PC (edited text): nothing to go by.
    broken = text.replace(b"0x6ed669\tmain.blockSelectNoCases", b"0x7ed669\tmain.blockSelectNoCases")
    t = debug1.parse(broken, "p.txt")[0].table
    assert {
        t.headers[t.header[r]].state
        for r in range(len(t))
        if _stack_key(t.stacks[t.stack[r]].frames) == "main.blockSelectNoCases"
    } == {"unknown"}


def test_custom_hidden_model() -> None:
    model = HiddenChains((Chain(("a", "b"), "x"), Chain(("a", "c"), "y")), {"b": (0, 0), "c": (0, 1)})
    assert model.solve({(1, 10): 1, (1, 20): 5}) == {(1, 10): "x", (1, 20): "y"}
    assert model.solve({(1, 20): 1, (1, 10): 5}) == {(1, 10): "x", (1, 20): "y"}


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


# -- inferred states are marked ------------------------------------------------------------------


def test_inferred_states_are_marked_in_groups_and_reports() -> None:
    from grprof.report.jsonout import report_json
    from grprof.report.model import build_report
    from grprof.report.text import state_text

    d = STATES / "go1.27.3"
    snaps = [
        grprof.load(d / n) for n in ("goroutine.debug0.pb.gz", "goroutine.debug1.txt", "goroutine.debug2.txt")
    ]
    for s in snaps:
        inferred = s.format != "debug=2"
        assert {g.state_inferred for g in s.groups()} == {inferred}
        assert all(state_text(g).endswith(" (inferred)") == inferred for g in s.groups())
    doc = report_json(build_report(snaps))
    by_snapshot = collections.defaultdict(set)
    for g in doc["groups"]:
        by_snapshot[g["snapshot"]].add(g["state_inferred"])
    assert by_snapshot == {0: {True}, 1: {True}, 2: {False}}


def test_api_group_json_says_whether_the_state_was_inferred() -> None:
    import datetime as dt

    from grprof.server.api import group_json
    from grprof.store.model import SnapshotMeta, StoredGroup

    g = StoredGroup("s", "t", 1, "select", {"select": 1}, 0, 0, 0, {}, (), None)
    for fmt, inferred in (("debug=0", True), ("debug=1", True), ("debug=2", False)):
        meta = SnapshotMeta(
            1, "x", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), fmt, "goroutine", 1, 1, False, False
        )
        doc = group_json(meta, g)
        assert doc["state_inferred"] is inferred and doc["state"] == "select"
