"""go.uber.org/goleak reports in `go test` output read as one snapshot of the leaked goroutines.

The fixtures (tests/fixtures/goleak, recorded by its make.sh with goleak v1.3.0, Go 1.26.8 and
1.27.3) are real `go test` output of tests/goapps/goleakout; the expected groups are what that
program leaks. The last test runs it live when Go is on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import grprof
from grprof.errors import ParseError
from grprof.formats import goleak, parse_chunks

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "goleak"
APP = HERE / "goapps" / "goleakout"
VERSIONS = ("go1.26.8", "go1.27.3")
PKG = "grproftest/goleakout"
# What tests/goapps/goleakout leaks per call of Leak(t, 1): function -> state.
LEAK = {
    f"{PKG}.blockRecv": "chan receive",
    f"{PKG}.blockSelect": "select",
    f"{PKG}.blockAccept": "IO wait",
    f"{PKG}.blockLock": "sync.Mutex.Lock",
    f"{PKG}.blockWait": "sync.WaitGroup.Wait",
}
MAINLEAK = {f"{PKG}/mainleak.parkForever": ("chan receive", 3), f"{PKG}/mainleak.parkInSelect": ("select", 1)}


def groups(snap: grprof.Snapshot) -> dict[str, tuple[str, int]]:
    """Site function -> (state, count)."""
    out: dict[str, tuple[str, int]] = {}
    for g in snap.groups():
        assert g.site is not None
        assert g.site.function not in out
        out[g.site.function] = (g.state, g.count)
    return out


def expected(per_state: int, mainleak: bool = False) -> dict[str, tuple[str, int]]:
    want = {fn: (state, per_state) for fn, state in LEAK.items()}
    if mainleak:
        want.update(MAINLEAK)
    return want


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["verifynone.txt", "verifynone.v.txt"])
def test_verifynone(version: str, name: str) -> None:
    path = FIXTURES / version / name
    (snap,) = grprof.load_all(path)
    assert snap.format == "debug=2" and snap.profile == "goroutine"
    assert groups(snap) == expected(2)
    assert snap.total == 10
    # Dated from the standard-library frames: exact from a toolchain module path, else a bound.
    assert snap.go_version is not None and version.removeprefix("go")[:4] in snap.go_version
    assert snap.notes == (f"{path}: goleak: TestLeaks in {PKG} found 10 unexpected goroutines",)
    # Every leaked goroutine keeps its id, creator and full stack.
    recv = next(g for g in snap.groups() if g.site and g.site.function.endswith("blockRecv"))
    assert recv.created_by is not None and recv.created_by.function == f"{PKG}.Leak"
    accept = next(g for g in snap.groups() if g.site and g.site.function.endswith("blockAccept"))
    assert [f.function for f in accept.frames][:1] == ["internal/poll.runtime_pollWait"]
    assert "net.(*TCPListener).Accept" in [f.function for f in accept.frames]


@pytest.mark.parametrize("version", VERSIONS)
def test_parallel_subtests_report_each_goroutine_once(version: str) -> None:
    path = FIXTURES / version / "parallel.v.txt"
    (snap,) = grprof.load_all(path)
    # Each subtest leaked one goroutine per state; both reports list all ten.
    assert groups(snap) == expected(2)
    assert len({g.id for g in snap.goroutines}) == snap.total == 10
    tests = sorted(n.split(": goleak: ")[1].split(" ")[0] for n in snap.notes)
    assert tests == ["TestParallel/a", "TestParallel/b"]
    assert any("reported before and counted once" in n for n in snap.notes)


@pytest.mark.parametrize("version", VERSIONS)
def test_verify_test_main(version: str) -> None:
    path = FIXTURES / version / "testmain.txt"
    (snap,) = grprof.load_all(path)
    assert groups(snap) == dict(MAINLEAK)
    assert snap.notes == (
        f"{path}: goleak: TestMain (VerifyTestMain) in {PKG}/mainleak found 4 unexpected goroutines",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_go_test_all_packages_in_one_stream(version: str) -> None:
    path = FIXTURES / version / "all.txt"
    (snap,) = grprof.load_all(path)
    # TestLeaks leaks 2 per state, the two parallel subtests 1 each; TestClean reports
    # TestLeaks's goroutines again (still running in the same test binary): counted once.
    assert groups(snap) == expected(4, mainleak=True)
    names = [n.split(": goleak: ")[1].split(" in ")[0] for n in snap.notes]
    assert sorted(names) == sorted(
        ["TestLeaks", "TestClean", "TestParallel/a", "TestParallel/b", "TestMain (VerifyTestMain)"]
    )


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_a_report_after_64_kib_of_test_output(chunk: int) -> None:
    """Past the first 64 KiB the report is found while the text streams, however the chunks
    cut it."""
    data = (FIXTURES / "go1.26.8" / "verifynone.v.txt").read_bytes()
    noise = b"".join(b"=== RUN   TestNoise%d\n--- PASS: TestNoise%d (0.00s)\n" % (i, i) for i in range(3000))
    assert len(noise) > 64 << 10
    stream = noise + data
    (snap,) = parse_chunks([stream[i : i + chunk] for i in range(0, len(stream), chunk)], "long.txt")
    assert groups(snap) == expected(2)
    assert snap.notes == (f"long.txt: goleak: TestLeaks in {PKG} found 10 unexpected goroutines",)


def test_a_logged_report_is_unprefixed_first() -> None:
    # `go test` run in a pod or a CI job whose log adds timestamps or journald prefixes.
    lines = (FIXTURES / "go1.26.8" / "all.txt").read_bytes().rstrip(b"\n").split(b"\n")
    stamped = b"".join(b"2026-12-03T07:00:00.%09dZ %s\n" % (i, ln) for i, ln in enumerate(lines))
    (snap,) = grprof.load_all(stamped, name="ci.log")
    assert groups(snap) == expected(4, mainleak=True)
    assert snap.notes[0].startswith("ci.log: stripped the RFC 3339 timestamp")
    journal = b"".join(b"Dec 03 07:00:00 ci runner[77]: %s\n" % ln for ln in lines)
    (snap,) = grprof.load_all(journal, name="j.log")
    assert groups(snap) == expected(4, mainleak=True)
    assert snap.origin is not None and snap.origin.pid == 77


def test_the_cli_reads_go_test_output_from_stdin() -> None:
    data = (FIXTURES / "go1.26.8" / "all.txt").read_bytes()
    p = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", "-", "--json"],
        input=data,
        capture_output=True,
        check=False,
    )
    assert p.returncode in (0, 1), p.stderr
    assert b"goleak: TestLeaks in grproftest/goleakout found 10 unexpected goroutines" in p.stderr
    assert b"blockAccept" in p.stdout


def test_labels_after_the_bracket_recorded() -> None:
    """Go 1.27 with `go 1.27` in go.mod: `[chan receive] {route: /orders}:`, which goleak turns
    into the state `chan receive] {route: /orders}`."""
    path = FIXTURES / "go1.27.3-gomod1.27" / "labels.txt"
    assert b"in state chan receive] {route: /orders}, with" in path.read_bytes()
    (snap,) = grprof.load_all(path)
    (g,) = snap.groups()
    assert (g.count, g.state, g.labels) == (2, "chan receive", {"route": {"/orders": 2}})
    assert g.site is not None and g.site.function == f"{PKG}.blockRecv"


def test_state_with_labels_after_the_bracket() -> None:
    # Go 1.27 prints labels after the bracket (go.mod `go 1.27`); goleak keeps its `]`.
    text = (
        b"    x_test.go:9: found unexpected goroutines:\n"
        b"        [Goroutine 7 in state chan receive] {k: v}, with main.f on top of the stack:\n"
        b"        main.f(...)\n"
        b"        \t/src/x_test.go:5\n"
        b"        created by main.g in goroutine 6\n"
        b"        \t/src/x_test.go:8 +0x1f\n"
        b"        ]\n"
    )
    assert goleak.detect(text)
    (snap,) = grprof.load_all(text)
    (g,) = snap.goroutines
    assert (g.id, g.state, dict(g.labels)) == (7, "chan receive", {"k": "v"})


def test_a_report_without_goroutines_is_no_dump() -> None:
    with pytest.raises(ParseError):
        grprof.load_all(b"--- FAIL: TestX\n    x_test.go:1: found unexpected goroutines:\n    nothing\n")


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_live_go_test_output(tmp_path: Path) -> None:
    """Run tests/goapps/goleakout's TestLeaks under the machine's Go and goleak v1.3.0."""
    work = tmp_path / "goleakout"
    shutil.copytree(APP, work)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    p = subprocess.run(
        ["go", "test", "-count=1", "-run", "TestLeaks$", "."],
        cwd=work,
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    if p.returncode != 1 or goleak.MARKER not in p.stdout:
        if b"go.uber.org/goleak" in p.stderr + p.stdout and b"FAIL:" not in p.stdout:
            pytest.skip(f"go.uber.org/goleak unavailable: {(p.stderr + p.stdout)[-300:]!r}")
        raise AssertionError(p.stdout + p.stderr)
    (snap,) = grprof.load_all(p.stdout, name="go-test.txt")
    assert groups(snap) == expected(2)
    assert Counter(g.state for g in snap.goroutines) == Counter(dict.fromkeys(LEAK.values(), 2))
