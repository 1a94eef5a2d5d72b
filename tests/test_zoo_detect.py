"""Acceptance: the leak zoo (a real service leaking in every category, beside healthy controls).

Traffic runs in phases; after each, every format is scraped over HTTP. Every leak must be
found as a leak with the right category, and no control may be called a leak, for series of
debug=0, debug=1 and debug=2, with and without the goroutineleak profile. A single snapshot
tells less; what it can tell is checked too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pgserver import PgServer
from zoo import Phase, Series, record, stack_matches, start_zoo

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Finding

PHASES = (
    Phase("warm-up", bursts=2, keepalive=2, pool=2),
    *(Phase(f"leak-{i}", leaks=6, bursts=2, keepalive=1, pool=1) for i in range(1, 5)),
    Phase("drained", settle=1.0),
)
FORMATS = ("debug=0", "debug=1", "debug=2")
ZOO_SOURCE = Path(__file__).resolve().parent / "goapps" / "zoo"


@pytest.fixture(scope="module")
def series(postgres: PgServer) -> Series:
    with start_zoo(postgres.dsn) as zoo:
        return record(zoo.base, PHASES)


def snapshots(series: Series, fmt: str) -> list[grprof.Snapshot]:
    """The phases run back to back in seconds; stamp them 30 s apart, as a poller would see them
    (protobuf profiles carry their own real time, which would otherwise win)."""
    snaps = [grprof.load(b, name=f"{fmt}#{i}") for i, b in enumerate(series.bodies[fmt])]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i, s in enumerate(snaps):
        s.time = t0 + dt.timedelta(seconds=30 * i)
    return snaps


def matching(findings: Sequence[Finding], stack: Mapping[str, Any]) -> list[Finding]:
    """Findings whose stack, or one of whose unit members' stacks, is this one."""
    return [
        f
        for f in findings
        if stack_matches(stack, f.frames) or any(stack_matches(stack, m.frames) for m in f.members)
    ]


def weak_by_design(f: Finding) -> bool:
    """A suspect the evidence rules keep from being a leak: growth is all there is, and it is in
    an idle wait (a load ramp of connections or service loops grows the same way), or a
    goroutineleak profile declined to prove it (docs/detection.md)."""
    return f.verdict == "suspect" and (f.wait_kind == "idle" or any(e.weight < 0 for e in f.evidence))


def check_leaks_found(d: Detection, truth: Mapping[str, Any], ctx: str) -> None:
    for leak in truth["leaks"]:
        if not leak["enabled"]:
            continue
        found = [f for st in leak["goroutines"] for f in matching(d.findings, st)]
        assert found, (ctx, leak["kind"], "no finding")
        leaks = [f for f in found if f.verdict == "leak" or weak_by_design(f)]
        assert leaks, (ctx, leak["kind"], [(f.verdict, f.counts) for f in found])
        assert {f.category for f in found} == {leak["category"]}, (ctx, leak["kind"])


def check_no_control_is_a_leak(d: Detection, truth: Mapping[str, Any], ctx: str) -> None:
    for control in truth["controls"]:
        for st in control["goroutines"]:
            if st.get("shares_stack_with"):
                continue  # the same stack as a leak's: the leak's growth is real
            bad = [f for f in matching(d.findings, st) if f.verdict == "leak"]
            assert not bad, (ctx, control["name"], st["function"], [(f.counts, f.evidence) for f in bad])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("leak_profile", [False, True], ids=["series", "series+goroutineleak"])
def test_zoo_series(series: Series, fmt: str, leak_profile: bool) -> None:
    snaps = snapshots(series, fmt)
    if leak_profile:
        if "goroutineleak?debug=1" not in series.bodies:
            pytest.skip("this Go has no goroutineleak profile")
        snaps += [grprof.load(b) for b in series.bodies["goroutineleak?debug=1"]]
    # With the zoo's source: its context and ticker leaks park in channel frames only, and the
    # blocking statement is what tells them apart (docs/rules.md).
    d = detect(snaps, Options(source_dir=ZOO_SOURCE))
    ctx = f"{fmt}{' + goroutineleak' if leak_profile else ''}"
    check_leaks_found(d, series.truth, ctx)
    check_no_control_is_a_leak(d, series.truth, ctx)


@pytest.mark.slow
def test_zoo_single_snapshot(series: Series) -> None:
    """One debug=2 dump: leaks are called leaks only on runtime proof or stuck orphans that
    have waited for minutes; controls never."""
    last = snapshots(series, "debug=2")[-1]
    d = detect([last])
    assert any(f.verdict == "leak" for f in d.findings)
    for f in d.findings:
        if f.verdict == "leak":
            assert f.runtime_confirmed or {e.signal for e in f.evidence} >= {"age", "orphans"}
    check_no_control_is_a_leak(d, series.truth, "single debug=2")
