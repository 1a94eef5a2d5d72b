"""Process identity (`Snapshot.origin`) and the series warning it gives.

debug=0 profiles name the program's binary and build id (their main Mapping); journald and
`kubectl logs --prefix` line prefixes name the process or pod. Snapshots of one series whose
origins differ get a warning naming both inputs and what differs; snapshots of one process
get none. The profiles are scraped live from examples/instrumented built twice with different
`-ldflags -X` (so different build ids).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import grprof
from grprof.detect.series import build_series, series_warnings
from grprof.formats import Origin
from grprof.model import moved_code

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "instrumented"
DEBUG2 = HERE / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")


def build(tmp: Path, version: str) -> Path:
    out = tmp / f"instrumented-{version}"
    subprocess.run(
        ["go", "build", "-o", str(out), "-ldflags", f"-X main.version={version}", "."],
        cwd=EXAMPLE,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@contextmanager
def running(binary: Path) -> Iterator[str]:
    """Start the example on free loopback ports; yield its pprof base URL."""
    proc = subprocess.Popen(
        [str(binary), "-addr", "127.0.0.1:0", "-pprof-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        m = re.search(r"API on (http://\S+), pprof on (http://\S+)/debug/pprof/", line)
        assert m, line
        # Once the API answers, main.main is parked in Serve (its line is the same in every
        # snapshot; right after the print it may still be in Fprintf, one line before).
        with urllib.request.urlopen(m.group(1) + "/version", timeout=30) as r:
            r.read()
        yield m.group(2)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def scrape(base: str, name: str) -> grprof.Snapshot:
    with urllib.request.urlopen(base + "/debug/pprof/goroutine?debug=0", timeout=30) as r:
        data = r.read()
    return grprof.load(data, name=name)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("identity")
    return build(tmp, "1.0.0"), build(tmp, "1.0.1")


@needs_go
def test_two_builds_are_named_in_a_warning(builds: tuple[Path, Path]) -> None:
    a, b = builds
    with running(a) as url:
        first = scrape(url, "a.pb.gz")
    with running(b) as url:
        second = scrape(url, "b.pb.gz")
    assert first.origin is not None and second.origin is not None
    assert first.origin.binary == str(a) and second.origin.binary == str(b)
    assert first.origin.build_id and second.origin.build_id
    assert first.origin.build_id != second.origin.build_id
    warnings = series_warnings(build_series([first, second]))
    assert warnings[0] == (
        f"a.pb.gz and b.pb.gz come from different builds (build id {first.origin.build_id} and "
        f"{second.origin.build_id}; binary {a} and {b})"
    )
    assert warnings[-1].startswith("a growth series needs snapshots of one process")


@needs_go
def test_one_process_scraped_twice_gives_no_warning(builds: tuple[Path, Path]) -> None:
    with running(builds[0]) as url:
        first = scrape(url, "1.pb.gz")
        time.sleep(0.05)
        second = scrape(url, "2.pb.gz")
    assert first.origin == second.origin and first.origin is not None
    assert series_warnings(build_series([first, second])) == []


@needs_go
def test_the_same_build_id_from_another_path_is_another_binary(
    builds: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "moved"
    shutil.copy2(builds[0], copy)
    with running(builds[0]) as url:
        first = scrape(url, "a.pb.gz")
    with running(copy) as url:
        second = scrape(url, "moved.pb.gz")
    assert first.origin is not None and second.origin is not None
    assert first.origin.build_id == second.origin.build_id
    (warning, _) = series_warnings(build_series([first, second]))
    assert warning == f"a.pb.gz and moved.pb.gz come from different builds (binary {builds[0]} and {copy})"


@needs_go
def test_debug1_profiles_of_two_builds_warn_by_where_code_sits() -> None:
    """debug=1 names no build id; its PCs and offsets place the functions goroutines start
    in, and the same source built otherwise (`-gcflags=-N -l`) places them elsewhere. Two
    runs of one build (not a PIE: loaded at the same address) place them the same."""
    from gobuild import build_goapp, fetch, run_goapp

    def debug1(binary: Path, name: str) -> grprof.Snapshot:
        with run_goapp(binary) as (_, base):
            return grprof.load(fetch(base, "/debug/pprof/goroutine?debug=1"), name=name)

    plain = build_goapp("healthy")
    first, second = debug1(plain, "a.txt"), debug1(plain, "b.txt")
    rebuilt = debug1(build_goapp("healthy", flags=["-gcflags=-N -l"]), "c.txt")
    assert first.origin is not None and second.origin is not None and rebuilt.origin is not None
    assert moved_code(dict(first.origin.code), dict(second.origin.code)) is None
    assert moved_code(dict(first.origin.code), dict(rebuilt.origin.code)) is not None
    assert not [w for w in series_warnings(build_series([first, second])) if "moved" in w]
    # The warning names the move (or, had main.main been caught at another line in one of
    # the runs, that: one warning per pair).
    warning = series_warnings(build_series([first, rebuilt]))[0]
    moved = r"\(main\.\S+ moved from 0x[0-9a-f]+ to 0x[0-9a-f]+\)"
    assert re.fullmatch(rf"a\.txt and c\.txt come from different processes {moved}", warning) or (
        "main.main at" in warning
    ), warning


def test_recorded_profiles_carry_their_binary() -> None:
    snap = grprof.load(HERE / "fixtures" / "states" / "go1.26.8" / "goroutine.debug0.pb.gz")
    assert snap.origin == Origin(
        binary="/tmp/grprof-record/bin/states-go1.26.8", build_id="5ec51d1bbae764e7b4b6e5e8381d47754c1b6132"
    )
    # Go 1.19's linker wrote no GNU build id: the binary only.
    old = grprof.load(HERE / "fixtures" / "states" / "go1.19.8" / "goroutine.debug0.pb.gz")
    assert old.origin == Origin(binary="/tmp/grprof-record/bin/states-go1.19.8")


def journald(pid: int, host: str = "node-1") -> bytes:
    lines = DEBUG2.read_text().rstrip("\n").split("\n")
    return "".join(f"Dec 03 07:00:00 {host} leaky[{pid}]: {ln}\n" for ln in lines).encode()


def kubectl_prefix(pod: str) -> bytes:
    lines = DEBUG2.read_text().rstrip("\n").split("\n")
    return "".join(f"[pod/{pod}/app] {ln}\n" for ln in lines).encode()


def test_journald_pids_are_kept() -> None:
    snap = grprof.load(journald(4242))
    assert snap.origin == Origin(pid=4242, host="node-1")
    assert snap.total == grprof.load(DEBUG2).total


def test_journald_logs_of_two_pids_warn() -> None:
    a = grprof.load(journald(4242), name="before.log")
    b = grprof.load(journald(5151), name="after.log")
    same = grprof.load(journald(4242), name="again.log")
    assert series_warnings(build_series([a, same])) == []
    (warning, _) = series_warnings(build_series([a, b]))
    assert warning == "before.log and after.log come from different processes (pid 4242 and 5151)"


def test_kubectl_prefix_pods_are_kept_and_compared() -> None:
    a = grprof.load(kubectl_prefix("api-7d9f-x1"), name="x1.log")
    b = grprof.load(kubectl_prefix("api-7d9f-x2"), name="x2.log")
    assert a.origin == Origin(pod="api-7d9f-x1", container="app")
    assert a.notes == ("x1.log: stripped the kubectl --prefix prefix from 1053 of 1053 lines",)
    (warning, _) = series_warnings(build_series([a, b]))
    assert warning == "x1.log and x2.log come from different processes (pod api-7d9f-x1 and api-7d9f-x2)"


def test_a_log_of_several_processes_has_no_single_origin() -> None:
    data = journald(1) + journald(2)
    snaps = grprof.load_all(data, name="two.log")
    assert all(s.origin is None for s in snaps)
    assert any(
        "its lines come from 2 processes: host node-1, pid 1; host node-1, pid 2" in n for n in snaps[0].notes
    )


def test_inputs_without_origin_are_not_compared() -> None:
    a = grprof.load(DEBUG2, name="a.txt")
    b = grprof.load(journald(7), name="b.log")
    assert a.origin is None
    assert series_warnings(build_series([a, b])) == []


# -- examples/instrumented: the service docs/instrumenting.md describes ----------------------


@needs_go
def test_the_instrumented_example_vets_and_builds(tmp_path: Path) -> None:
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    for cmd in (["go", "vet", "."], ["go", "build", "-o", str(tmp_path / "instrumented"), "."]):
        p = subprocess.run(
            cmd, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert p.returncode == 0, p.stderr


def test_the_go_snippets_of_the_docs_are_in_the_example() -> None:
    """Every ```go block of docs/instrumenting.md is an excerpt of examples/instrumented/main.go,
    which the test above compiles: the snippets compile."""
    doc = (HERE.parent / "docs" / "instrumenting.md").read_text()
    source = (EXAMPLE / "main.go").read_text()
    blocks = re.findall(r"```go\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 4
    for block in blocks:
        assert block in source, block


@needs_go
def test_the_instrumented_example_serves_pprof_on_its_private_address_only(builds: tuple[Path, Path]) -> None:
    proc = subprocess.Popen(
        [str(builds[0]), "-addr", "127.0.0.1:0", "-pprof-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        m = re.search(r"API on (http://\S+), pprof on (http://\S+)/debug/pprof/", line)
        assert m, line
        api, debug = m.groups()
        with urllib.request.urlopen(api + "/version", timeout=30) as r:
            assert r.read() == b"1.0.0\n"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(api + "/debug/pprof/", timeout=30)
        assert e.value.code == 404
        snap = grprof.load(debug + "/debug/pprof/goroutine?debug=1")
        labelled = [g for g in snap.groups() if g.labels]
        assert [dict(g.labels) for g in labelled] == [{"job": {"refresh": 1}}]
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
