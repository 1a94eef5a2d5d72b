"""Leak detection on real snapshots: runtime proof, growth, orphans, and what one snapshot can tell."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gobuild import fetch, run_goapp

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.rules import load_rules
from grprof.detect.series import Point, Track, build_series
from grprof.detect.signals import default_settings, growth, kendall_tau, theil_sen

FIXTURES = Path(__file__).parent / "fixtures"
STATES = FIXTURES / "states" / "go1.26.8"
ROOT = Path(__file__).parent.parent


def truth() -> dict[str, object]:
    return dict(json.loads((STATES / "truth.json").read_text()))


def leak_functions() -> set[str]:
    return {str(g["function"]) for g in truth()["goroutines"] if g["leak"]}  # type: ignore[index, union-attr]


def test_tracks_match_across_formats() -> None:
    snaps = [
        grprof.load(STATES / f)
        for f in ("goroutine.debug0.pb.gz", "goroutine.debug1.txt", "goroutine.debug2.txt")
    ]
    series = build_series(snaps, 30.0)
    by_fn = {}
    for t in series.tracks:
        fn = next((f for f, _ in t.key if f.startswith("main.")), None)
        if fn:
            by_fn[fn] = t.counts
    kinds = {}
    for g in truth()["goroutines"]:  # type: ignore[union-attr]
        kinds[g["function"]] = kinds.get(g["function"], 0) + 1  # type: ignore[index]
    for fn, n in kinds.items():
        if fn in ("main.main", "main.blockLabeled.func1", "main.recurse"):
            continue
        assert by_fn.get(fn) == [n, n, n], fn


@pytest.mark.parametrize(
    "name", ["goroutineleak.debug1.txt", "goroutineleak.debug0.pb.gz", "goroutine-after-leak.debug2.txt"]
)
def test_runtime_proof_in_one_snapshot(name: str) -> None:
    d = detect([grprof.load(STATES / name)])
    leaks = [f for f in d.findings if f.verdict == "leak"]
    sites = {f.site.function for f in leaks if f.site}
    assert sites == leak_functions()
    assert all(f.runtime_confirmed and f.confidence >= 0.95 for f in leaks)
    assert all(any(e.signal == "runtime_proof" for e in f.evidence) for f in leaks)


def test_one_plain_snapshot_only_suspects_orphans() -> None:
    # No proof, no series, no long waits: nothing can be called a leak; orphans are suspects.
    d = detect([grprof.load(STATES / "goroutine.debug2.txt")])
    assert all(f.verdict == "suspect" for f in d.findings)
    orphaned = {g["function"] for g in truth()["goroutines"] if g["orphan"]}  # type: ignore[union-attr,index]
    assert {f.site.function for f in d.findings if f.site} == orphaned
    assert all(f.orphans >= 3 for f in d.findings)


def test_theil_sen_and_kendall() -> None:
    xs = [0, 1, 2, 3, 4, 5]
    assert theil_sen(xs, [0, 2, 4, 6, 8, 10]) == 2
    assert theil_sen(xs, [0, 2, 4, 100, 8, 10]) == 2  # one outlier does not bend it
    assert kendall_tau([1, 2, 3, 4]) == 1
    assert kendall_tau([4, 3, 2, 1]) == -1
    assert kendall_tau([5, 5, 5]) == 0


def _track(counts: list[int]) -> Track:
    g = grprof.load(STATES / "goroutine.debug2.txt").groups()[0]
    return Track((("main.f", 1),), "x", [Point(c, 0, 0, 0, [g]) if c else None for c in counts])


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        ([0, 15, 30, 45, 60, 75, 90, 105, 120], "leak"),  # 1 goroutine/s at 15 s polls
        ([200, 200, 201, 200, 199, 200, 200, 200, 200], None),  # an idle pool
        ([0, 80, 0, 60, 0, 90, 0, 70, 0], None),  # bursts that drain
        ([0, 20, 40, 60, 80, 100, 40, 10, 0], None),  # grew, then fell back
        ([0, 2, 4, 6, 8, 10, 12, 14, 16], "suspect"),  # slow: 8/min but only 16 above baseline
    ],
)
def test_growth_verdicts(counts: list[int], verdict: str | None) -> None:
    times = [15.0 * i for i in range(len(counts))]
    assert growth(_track(counts), times, default_settings()).verdict == verdict


def test_sla_alpha_scales_growth_thresholds() -> None:
    st = default_settings()
    tight = st.scaled(0.58)
    assert tight.leak.rate_per_minute == pytest.approx(st.leak.rate_per_minute * 0.58)
    assert tight.suspect.above_baseline == pytest.approx(st.suspect.above_baseline * 0.58)
    assert tight.leak.trend == st.leak.trend


def _grprof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grprof.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_fail_on_exit_status() -> None:
    leak = str(STATES / "goroutineleak.debug1.txt")
    plain = str(STATES / "goroutine.debug2.txt")
    assert _grprof("analyze", leak).returncode == 0
    assert _grprof("analyze", leak, "--fail-on", "leak").returncode == 1
    assert _grprof("analyze", plain, "--fail-on", "leak").returncode == 0
    assert _grprof("analyze", plain, "--fail-on", "suspect").returncode == 1


def test_json_findings_schema() -> None:
    p = _grprof("analyze", "--json", str(STATES / "goroutineleak.debug1.txt"))
    r = json.loads(p.stdout)
    keys = {
        "id",
        "verdict",
        "confidence",
        "category",
        "title",
        "explanation",
        "fix",
        "site",
        "created_by",
        "state",
        "count",
        "counts",
        "growth_per_minute",
        "max_wait_minutes",
        "orphans",
        "runtime_confirmed",
        "source_confirmed",
        "labels",
        "evidence",
    }
    assert r["findings"]
    for f in r["findings"]:
        assert keys <= f.keys()
        assert f["verdict"] in ("leak", "suspect") and 0 <= f["confidence"] <= 1
        assert set(f["site"]) == {"function", "file", "line"}
    assert r["detection"]["leak_profiles"] == 1


@pytest.mark.slow
def test_live_series_finds_the_leaky_handler(tmp_path: Path) -> None:
    """examples/leaky leaks a goroutine per /leaky request; its worker pool is healthy."""
    with run_goapp("../../examples/leaky", "-addr", "127.0.0.1:0", "-rate", "40") as (_, base):
        files = []
        for i in range(6):
            time.sleep(1.0)
            debug = (1, 0, 2)[i % 3]
            name = "pb.gz" if debug == 0 else "txt"
            f = tmp_path / f"s{i}.debug{debug}.{name}"
            f.write_bytes(fetch(base, f"/debug/pprof/goroutine?debug={debug}"))
            files.append(str(f))
    p = _grprof("analyze", "--json", "--interval", "30s", *files)
    r = json.loads(p.stdout)
    leaks = [f for f in r["findings"] if f["verdict"] == "leak"]
    assert [f["site"]["function"] for f in leaks] == ["main.leakyHandler.func1"]
    assert leaks[0]["category"] == "channel"
    assert leaks[0]["growth_per_minute"] > 10
    assert not any("workerPool" in (f["site"] or {}).get("function", "") for f in r["findings"])


def test_leak_after_a_long_flat_stretch_is_found_quickly() -> None:
    # 10 minutes of a stable group, then a leak of 1 goroutine/s at 15 s polls: the flat part
    # must not outvote the rise (the whole-window slope stays 0 for minutes).
    flat = [50] * 40
    for polls in (4, 5, 8):
        counts = (flat + [50 + 15 * i for i in range(1, polls + 1)])[-40:]
        times = [15.0 * i for i in range(len(counts))]
        got = growth(_track(counts), times, default_settings()).verdict
        assert got == "leak", (polls, got)


def test_max_verdict_caps_a_growing_group_without_proof(tmp_path: Path) -> None:
    """A rule with `max_verdict: suspect` (patterns that grow with load, like idle keep-alive
    connections) keeps growth alone from calling its group a leak; runtime proof still does."""
    zoo = FIXTURES / "zoo"
    counted = [grprof.load(p) for p in sorted(zoo.glob("*.goroutine.debug1.txt"))]
    proofs = [grprof.load(p) for p in sorted(zoo.glob("*.goroutineleak.debug1.txt"))]
    plain = detect(counted, Options(interval=30.0))
    grown = [f for f in plain.findings if f.verdict == "leak" and f.growth_per_minute]
    assert grown, [(f.verdict, f.title) for f in plain.findings]
    target = grown[0]
    assert target.site is not None
    rule = tmp_path / "cap.yaml"
    rule.write_text(
        "version: 1\nrules:\n"
        "  - id: capped\n    category: channel\n"
        f"    when: {{top: ['{target.site.function}', main.leakyHandler.func1]}}\n"
        "    max_verdict: suspect\n    title: t\n    explanation: e\n    fix: f\n"
    )
    rules = load_rules([rule], entry_points=False)

    capped = detect(counted, Options(interval=30.0, rules=rules))
    [f] = [f for f in capped.findings if f.id == target.id]
    assert (f.verdict, f.rule) == ("suspect", "capped")
    assert f.confidence <= 0.6
    assert "rule" in [e.signal for e in f.evidence]
    others = {g.id: g.verdict for g in capped.findings if g.id != target.id}
    assert others == {g.id: g.verdict for g in plain.findings if g.id != target.id}

    with_proof = detect(counted + proofs, Options(interval=30.0, rules=rules))
    proven = [f for f in with_proof.findings if f.rule == "capped" and f.runtime_confirmed]
    assert [(f.site and f.site.function, f.verdict) for f in proven] == [("main.leakyHandler.func1", "leak")]


def test_a_rule_says_how_long_its_goroutines_may_wait() -> None:
    """A readLoop in `select` is idle by its state, but the rule that knows net/http says it holds
    a response body nobody closed (`wait_kind: blocking`): its growth is a leak, not load."""
    zoo = FIXTURES / "zoo"
    counted = [grprof.load(p) for p in sorted(zoo.glob("*.goroutine.debug1.txt"))]
    d = detect(counted, Options(interval=30.0))
    [f] = [f for f in d.findings if f.rule == "http-client-body-not-closed"]
    assert (f.wait_kind, f.state) == ("blocking", "select")


def test_units_form_when_the_latest_snapshot_has_no_ids() -> None:
    """A daemon scrapes debug=1 between debug=2 captures: the creators seen in the latest debug=2
    snapshot still tie a unit together when the newest snapshot is a debug=1."""
    zoo = FIXTURES / "zoo"
    d2 = sorted(zoo.glob("*.goroutine.debug2.txt"))
    d1 = sorted(zoo.glob("*.goroutine.debug1.txt"))
    ending_in_ids = detect([grprof.load(p) for p in d2], Options(interval=30.0))
    mixed = detect([*(grprof.load(p) for p in d2[:-1]), grprof.load(d1[-1])], Options(interval=30.0))

    def started(d: Detection) -> set[str]:
        return {
            f.id
            for f in d.findings
            if f.members and any("started" in e.summary for e in f.evidence if e.signal == "unit")
        }

    assert started(ending_in_ids)
    assert started(mixed) == started(ending_in_ids)


def test_snapshots_of_different_processes_are_named() -> None:
    """A growth series assumes one process: inputs from another Go version or another build of
    main are named in a warning (stderr and JSON); one process's series gets none."""
    states = FIXTURES / "states"
    mixed = [
        grprof.load(states / "go1.26.8" / "goroutine.debug2.txt"),
        grprof.load(states / "go1.22.12" / "goroutine.debug2.txt"),
        grprof.load(FIXTURES / "zoo" / "0-warm-up.goroutine.debug2.txt"),
    ]
    warnings = detect(mixed, Options(interval=30.0)).warnings
    assert "(Go 1.26) and" in warnings[0] and "(Go 1.22) come from different builds" in warnings[0]
    assert "(Go 1.22) and" in warnings[1] and "(Go 1.26) come from different builds" in warnings[1]
    assert warnings[-1].startswith("a growth series needs snapshots of one process")
    zoo = [grprof.load(p) for p in sorted((FIXTURES / "zoo").glob("*.goroutine.debug2.txt"))]
    assert detect(zoo, Options(interval=30.0)).warnings == []
    p = _grprof("analyze", *(s.source for s in mixed))
    assert p.returncode == 0
    assert p.stderr.count("grprof: warning: ") == len(warnings)


def test_another_build_of_main_is_named() -> None:
    same_go = [
        grprof.load(FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt"),
        grprof.load(FIXTURES / "zoo" / "0-warm-up.goroutine.debug2.txt"),
    ]
    [different, advice] = detect(same_go, Options(interval=30.0)).warnings
    assert "run different builds (main.main at /tmp/grprof-record/states/main.go:57 and" in different
    assert "judge each process apart" in advice


def test_a_track_is_one_call_of_the_services_code_whatever_library_path_it_is_in() -> None:
    """A goroutine caught for one snapshot in another standard-library path under the same call
    of the service's code (an allocation inside bufio instead of the IO wait) stays in its
    track: split off, its track's count would dip and seem to grow back. Stacks that never
    leave the standard library keep every frame apart (net/http's readLoop and writeLoop)."""
    import dataclasses

    from grprof.detect.series import track_key
    from grprof.frames import site_of

    groups = [g for p in sorted((FIXTURES / "zoo").glob("*.debug2.txt")) for g in grprof.load(p).groups()]
    under = [
        g for g in groups if g.frames and g.frames[0].is_stdlib and (s := site_of(g.frames)) and s.is_user
    ]
    assert len(under) >= 2
    a, b = under[0], next(g for g in under[1:] if g.frames[:2] != under[0].frames[:2])
    cut = next(i for i, f in enumerate(a.frames) if not f.is_stdlib)
    prefix_b = tuple(f for f in b.frames if f.is_stdlib)[:3]
    moved = dataclasses.replace(a, frames=prefix_b + a.frames[cut:])
    assert track_key(moved) == track_key(a)
    elsewhere = dataclasses.replace(a, frames=(*a.frames[:cut], dataclasses.replace(a.frames[cut], line=1)))
    assert track_key(elsewhere) != track_key(a)
    stdlib_only = [g for g in groups if g.frames and all(f.is_stdlib for f in g.frames)]
    assert len({track_key(g) for g in stdlib_only}) == len({g.frames for g in stdlib_only}) > 1
