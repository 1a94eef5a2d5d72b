"""Panics, fatal errors, SIGQUIT and `go test` tracebacks of real Go programs (1.19-1.27),
compared with what each program knew about its own goroutines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import grprof
from grprof.model import Goroutine, Snapshot

CRASH = Path(__file__).parent / "fixtures" / "crash"
TRUTHS = sorted(CRASH.glob("go*/*.truth.json"))


@pytest.fixture(params=["native", "pure"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "pure":
        monkeypatch.setenv("GRPROF_PURE", "1")


def dump_of(truth: Path) -> Path:
    return truth.with_name(truth.name.removesuffix(".truth.json") + ".txt")


def innermost_own(g: Goroutine, func: str) -> str | None:
    """The innermost frame of the program's own package (`main.` or a test binary's path)."""
    pkg = func[: func.index(".", func.rfind("/") + 1) + 1]
    return next((f.function for f in g.frames if f.function.startswith(pkg)), None)


def check_goroutine(g: Goroutine, want: dict[str, Any], ctx: object, minor: int) -> None:
    if "state" in want:
        assert g.state == want["state"], ctx
    if g.frames:  # not "goroutine running on other thread; stack unavailable"
        assert innermost_own(g, want["func"]) == want["func"], ctx
    if "created_by" in want:
        assert g.created_by is not None and g.created_by.function == want["created_by"], ctx
    if "creator" in want:
        assert g.creator_id in (want["creator"], None), ctx
    assert g.locked_to_thread == want.get("locked_to_thread", False), ctx
    if "labels" in want and g.labels:  # headers show labels on 1.26 with GODEBUG, 1.27 with go 1.27
        assert dict(g.labels) == want["labels"], ctx
    if "ancestors" in want:
        assert [a.id for a in g.ancestors] == want["ancestors"], ctx
    if want.get("synctest"):
        assert any(f.startswith("synctest ") for f in g.flags), (ctx, g.flags)
    if want.get("durable") and (minor >= 25 or g.state != "sleep"):  # 1.24 marks no durable sleep
        assert {"durable", "synctest"} & set(g.flags), (ctx, g.flags)


def check_part(snaps: list[Snapshot], t: dict[str, Any], name: str) -> None:
    goroutines = [g for s in snaps for g in s.goroutines]
    # scope "current": GOTRACEBACK=single (or a throw) prints the failing goroutine only;
    # "truncated": runtime.Stack's buffer ran out.
    optional = t.get("scope") in ("current", "truncated")
    for want in t.get("goroutines", []):
        found = [g for g in goroutines if g.id == want["id"] and not g.partial]
        if optional and not found and want["id"] != t.get("current"):
            continue
        assert found, (name, want)
        check_goroutine(found[0], want, (name, want), int(name.split("/", maxsplit=1)[0].split(".")[1]))
    prologue = "\n".join(s.prologue for s in snaps)
    for line in t.get("prologue", []):
        assert line.strip() in prologue, (name, line, prologue)


@pytest.mark.parametrize(
    "truth", TRUTHS, ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.truth.json')}"
)
def test_crash_dump_matches_truth(truth: Path, scanner: None) -> None:
    t = json.loads(truth.read_text())
    snaps = grprof.load_all(dump_of(truth))
    name = str(dump_of(truth).relative_to(CRASH))
    for s in snaps:
        assert s.format == "debug=2" and s.total == len(s.goroutines)
    if "parts" in t:
        assert len(snaps) == len(t["parts"]), name
        for snap, part in zip(snaps, t["parts"], strict=True):
            check_part([snap], part, name)
        return
    check_part(snaps, t, name)
    if t["mode"] == "labels" and ("tracebacklabels=1" in t["godebug"] or "gomod" in name):
        assert any(g.labels for s in snaps for g in s.goroutines), name
    if t["mode"] == "log":
        # net/http logged a recovered panic's dump, then the program panicked: two dumps.
        assert len(snaps) == 2
    elif t["mode"] != "stack-small":
        assert len(snaps) == 1, (name, [s.total for s in snaps])
    assert snaps[-1].truncated == (t["mode"] == "stack-small"), name


def test_every_version_recorded() -> None:
    versions = {p.parent.name for p in TRUTHS}
    assert {"go1.19.8", "go1.21.13", "go1.26.8", "go1.27.3"} <= versions


def test_sigquit_crash_keeps_one_snapshot_per_dump() -> None:
    # GOTRACEBACK=crash prints per-M sections (`-----`, `SIGQUIT: quit`, g0 stacks, registers)
    # after the goroutines: still one dump, with one goroutine 0 per M.
    snap = grprof.load(CRASH / "go1.26.8" / "sigquit.crash.txt")
    assert len(grprof.load_all(CRASH / "go1.26.8" / "sigquit.crash.txt")) == 1
    zeros = [g for g in snap.goroutines if g.id == 0]
    assert len(zeros) > 1
    ids = [g.id for g in snap.goroutines if g.id != 0]
    assert len(ids) == len(set(ids))
    assert snap.prologue.startswith("SIGQUIT: quit")


def test_go_test_timeout_output() -> None:
    snaps = grprof.load_all(CRASH / "go1.26.8" / "gotest-timeout.txt")
    assert len(snaps) == 1
    assert snaps[0].prologue.startswith("panic: test timed out after 2s")
    assert any(f.function.endswith("TestHang") for g in snaps[0].goroutines for f in g.frames)


def test_two_crash_dumps_in_one_log(scanner: None) -> None:
    # The second `SIGQUIT: quit` is not a per-M section of the first crash: a new dump.
    one = (CRASH / "go1.26.8" / "sigquit.crash.txt").read_bytes()
    single = grprof.load(one)
    snaps = grprof.load_all(one + one)
    assert [s.total for s in snaps] == [single.total, single.total]
    assert all(s.prologue.startswith("SIGQUIT: quit") for s in snaps)
