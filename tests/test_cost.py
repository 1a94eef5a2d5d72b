"""Stack cost (docs/owners.md#cost): 2 KiB per goroutine (the runtime's starting stack, a lower
bound), its growth per hour, and the time until that growth uses up a memory limit's headroom.
Real data: the zoo's recordings (tests/goapps/zoo)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import grprof
from grprof.detect.cost import STACK_MIN, human_bytes, human_hours, stack_cost
from grprof.detect.detector import Options, detect

ZOO = Path(__file__).resolve().parent / "fixtures" / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LIMIT = 64 << 20


def zoo_snapshots() -> list[grprof.Snapshot]:
    snaps = [grprof.load(ZOO / f"{p}.goroutine.debug2.txt") for p in PHASES]
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
    return snaps


def test_the_arithmetic() -> None:
    assert STACK_MIN == 2048
    c = stack_cost(100_000, 10.0, memory_limit=1 << 30, held=100_000 * 2048)
    assert c.bytes == 204_800_000 and c.lower_bound and c.source == "runtime_minimum"
    assert c.bytes_per_hour == 10 * 60 * 2048
    assert c.hours_to_limit == pytest.approx(((1 << 30) - 204_800_000) / (10 * 60 * 2048))
    assert stack_cost(5, None, 1 << 30).hours_to_limit is None  # no growth, no countdown
    assert stack_cost(5, -3.0, 1 << 30).hours_to_limit is None  # shrinking
    assert stack_cost(5, 3.0).hours_to_limit is None  # no limit
    assert stack_cost(5, 3.0, memory_limit=100, held=1000).hours_to_limit == 0  # already past it
    assert human_bytes(204_800_000) == "195.3 MiB" and human_bytes(512) == "512 B"
    assert human_hours(0.5) == "30 min" and human_hours(5) == "5.0 h" and human_hours(72) == "3.0 days"


def test_zoo_findings_carry_their_cost_and_keep_their_verdicts() -> None:
    snaps = zoo_snapshots()
    plain = detect(snaps)
    d = detect(snaps, Options(memory_limit=LIMIT))
    assert [(f.id, f.verdict, f.score) for f in d.findings] == [
        (f.id, f.verdict, f.score) for f in plain.findings
    ]
    held = snaps[-1].total * STACK_MIN
    growing = 0
    for f in d.findings:
        assert f.stack is not None
        assert f.stack.bytes == f.count * STACK_MIN
        doc = f.to_json()
        assert doc["stack_bytes"] == f.count * STACK_MIN and doc["stack"]["lower_bound"]
        if f.growth_per_minute and f.growth_per_minute > 0:
            growing += 1
            rate = f.growth_per_minute * 60 * STACK_MIN
            assert f.stack.bytes_per_hour == pytest.approx(rate)
            assert f.stack.hours_to_limit == pytest.approx((LIMIT - held) / rate)
        else:
            assert f.stack.hours_to_limit is None
    assert growing, "the zoo leaks in steps: some findings grow"
    assert d.stack_bytes == sum(f.count for f in d.findings) * STACK_MIN
    assert d.memory_limit == LIMIT and plain.memory_limit is None
