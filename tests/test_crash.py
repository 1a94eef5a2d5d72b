"""Panics, fatal errors, SIGQUIT and `go test` tracebacks of real Go programs (1.19-1.27),
compared with what each program knew about its own goroutines."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import grprof
from grprof.formats.traceback import crashed_goroutine
from grprof.model import Goroutine, Snapshot
from grprof.report import text
from grprof.report.jsonout import report_json
from grprof.report.model import build_report

CRASH = Path(__file__).parent / "fixtures" / "crash"
FIXTURES_STATES = Path(__file__).parent / "fixtures" / "states" / "go1.26.8"
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


# -- the crashed goroutine first ------------------------------------------------------------------

CRASH_MODES = {
    "panic",
    "panic-multiline",
    "repanic",
    "repanic-new",
    "nilmap",
    "segv",
    "deadlock",
    "stackoverflow",
}


def _crash_truths() -> list[Path]:
    return [t for t in TRUTHS if json.loads(t.read_text()).get("mode") in CRASH_MODES]


@pytest.mark.parametrize(
    "truth", _crash_truths(), ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.truth.json')}"
)
def test_the_crashed_goroutine_is_identified(truth: Path) -> None:
    t = json.loads(truth.read_text())
    (snap,) = grprof.load_all(dump_of(truth))
    assert crashed_goroutine(snap) == t["current"]
    report = report_json(build_report([snap]))
    assert report["snapshots"][0]["crashed_goroutine"] == t["current"]
    flagged = [g for g in report["groups"] if g["crashed"]]
    assert len(flagged) == 1 and t["current"] in flagged[0]["ids"]


def test_dumps_without_a_crash_name_no_goroutine() -> None:
    for name in ("sigquit.all", "sigquit.crash", "stack-small", "cgo.system"):
        for s in grprof.load_all(CRASH / "go1.26.8" / f"{name}.txt"):
            assert crashed_goroutine(s) is None, name
    first, second = grprof.load_all(CRASH / "go1.26.8" / "log.txt")
    assert crashed_goroutine(first) is None  # a recovered panic net/http logged
    assert crashed_goroutine(second) == 1
    assert [crashed_goroutine(s) for s in grprof.load_all(CRASH / "go1.26.8" / "two-dumps.txt")] == [1, None]
    # Not a traceback at all.
    assert crashed_goroutine(grprof.load(FIXTURES_STATES / "goroutine.debug1.txt")) is None


def _text(snap: grprof.Snapshot, **kw: int) -> str:
    console = Console(file=io.StringIO(), width=200, highlight=False, color_system=None)
    text.render(build_report([snap]), console, **kw)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_analyze_shows_the_crashed_goroutine_first() -> None:
    # goroutine 1 panicked; its group is not the first by size and signature.
    snap = grprof.load(CRASH / "go1.22.12" / "panic.all.txt")
    assert 1 not in build_report([snap]).snapshots[0].groups[0].ids
    out = _text(snap, top=3, stacks=1)
    assert "crashed: goroutine 1 [running] at main.doPanic" in out
    table = out[out.index("#  count") :].splitlines()
    assert re.match(r"\s*1\s+1\s+running \(crashed\)\s+.*main\.doPanic", table[1]), table[1]
    first_stack = out[out.index("\n#1 ") :]
    assert first_stack.startswith("\n#1 crashed: 1 goroutines · running\n  main.doPanic")
    # And through the command line.
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "grprof.cli",
            "analyze",
            str(CRASH / "go1.19.8" / "deadlock.txt"),
            "--top",
            "2",
        ],
        capture_output=True,
        timeout=120,
    )
    lines = p.stdout.decode().splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("#  count")) + 1]
    assert "(crashed)" in row and "main.blockMain" in row, row


# -- Go 1.19 and 1.20: the version from the runtime's line numbers -----------------------------------

_GOROOTS = re.compile(
    rb"/usr/lib/go-1\.\d+/|/root/go/pkg/mod/golang\.org/toolchain@v0\.0\.1-go[0-9.]+\.linux-amd64/"
)


def _unversioned(path: Path) -> bytes:
    """The dump as if Go were installed in /usr/local/go: no path names the version."""
    return _GOROOTS.sub(b"/usr/local/go/", path.read_bytes())


def test_go_119_dumps_are_dated_by_their_runtime_frames() -> None:
    d = CRASH / "go1.19.8"
    # Panics and SIGQUIT at every GOTRACEBACK that shows stdlib frames, deadlocks, overflows.
    for name in (
        "panic.all",
        "panic.system",
        "panic.crash",
        "sigquit.all",
        "sigquit.system",
        "sigquit.crash",
        "deadlock",
        "stackoverflow",
        "gotest-timeout",
        "cgo.system",
    ):
        (snap,) = grprof.load_all(_unversioned(d / f"{name}.txt"))
        assert snap.go_version == "1.19", (name, snap.go_version)
    states = FIXTURES_STATES.parent / "go1.19.8" / "goroutine.debug2.txt"
    assert grprof.load(_unversioned(states)).go_version == "1.19"
    # With the path, the exact release as before.
    assert grprof.load(d / "panic.all.txt").go_version == "1.19"
    # Only the program's own frames (GOTRACEBACK=single): nothing to date it by.
    assert grprof.load(_unversioned(d / "panic.single.txt")).go_version is None


@pytest.mark.parametrize("version", sorted({p.parent.name for p in TRUTHS}))
def test_versions_from_line_numbers_are_never_wrong(version: str) -> None:
    """Every recorded dump, its GOROOT paths removed: an exact version is the true minor, and
    a lower bound is not above it."""
    minor = int(version.split(".")[1])
    exact = 0
    for path in sorted((CRASH / version).glob("*.txt")):
        if path.name == "skipped.txt":
            continue
        for snap in grprof.load_all(_unversioned(path)):
            v = snap.go_version
            if v is None:
                continue
            if v.startswith(">="):
                assert int(v.split(".")[1]) <= minor, (path.name, v)
            else:
                assert v == f"1.{minor}", (path.name, v)
                exact += 1
    # The newest version the table knows reads as a lower bound (a later Go may share its lines).
    assert exact > 0 or minor == 27


# -- the crash first, in the text and HTML reports ---------------------------------------------


@pytest.mark.parametrize(
    "truth", _crash_truths(), ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.truth.json')}"
)
def test_html_lists_the_crashed_goroutine_first_under_its_message(truth: Path) -> None:
    from html import escape

    from grprof.report import html

    t = json.loads(truth.read_text())
    (snap,) = grprof.load_all(dump_of(truth))
    page = html.render(build_report([snap]))
    # The message, at the top of the page, before the snapshot's sections.
    banner = page.index('<section class="crash" id="crash0">')
    assert banner < page.index('<section class="snapshot"')
    first = snap.prologue.strip().split("\n", 1)[0]
    assert escape(first) in page[banner : page.index("</section>", banner)]
    assert f"Crashed here:</b> goroutine {t['current']}" in page
    # The crashed goroutine's group is the first row, marked.
    rows = re.findall(r'<tr id="s0-g-(\w+)"><td class="num">(\d+)(.*?)</td>', page, re.S)
    (crashed,) = [g for g in build_report([snap]).snapshots[0].groups if t["current"] in g.ids]
    assert rows[0][:2] == (crashed.signature, "1") and "crashed here" in rows[0][2]
    assert not any("crashed here" in r[2] for r in rows[1:])
    assert f'href="#s0-g-{crashed.signature}"' in page[banner:]


def test_text_puts_the_panic_message_first() -> None:
    snap = grprof.load(CRASH / "go1.22.12" / "panic.all.txt")
    out = _text(snap, top=3, stacks=1)
    panel = out.splitlines()
    assert "panic: boom" in panel[1] and "crashed: goroutine 1 [running]" in panel[2], panel[:3]
    # Above the findings, when there are any: the first line of each crash's message.
    console = Console(file=io.StringIO(), width=200, highlight=False, color_system=None)
    for line in text.crash_banner(build_report([snap])):
        console.print(line)
    assert console.file.getvalue().startswith("crashed: panic: boom  (goroutine 1")  # type: ignore[attr-defined]
    # A SIGQUIT dump is no crash: its prologue stays under the facts, nothing is marked.
    quit_ = grprof.load(CRASH / "go1.26.8" / "sigquit.all.txt")
    assert text.crash_banner(build_report([quit_])) == []
    assert "crashed" not in _text(quit_, top=3, stacks=1)
