"""Property tests over every parser: whatever the bytes, only ParseError escapes.

Inputs: random bytes, real fixtures of every format mutated at random, and every
truncation of real dumps. ParseError must name the input and, when it has a position,
point inside it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grprof
from grprof import ParseError

FIXTURES = Path(__file__).parent / "fixtures"
NAME = "fuzz-input"


def _fixture_files() -> list[Path]:
    return sorted(
        p for p in FIXTURES.rglob("*") if p.suffix in (".txt", ".gz") and p.stat().st_size < 200_000
    )


def _raw(p: Path) -> bytes:
    data = p.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


FILES = _fixture_files()
SEEDS = [_raw(p) for p in FILES]


def check(data: bytes) -> None:
    try:
        snaps = grprof.load_all(data, name=NAME)
    except ParseError as e:
        assert e.source == NAME
        assert e.position is None or 0 <= e.position <= len(data), (e.position, len(data))
        assert "\n" not in str(e)
        return
    # Whatever parsed must be usable: totals add up, groups and goroutines build.
    for s in snaps:
        groups = s.groups()
        assert sum(g.count for g in groups) == s.total
        if s.format == "debug=2":
            assert len(s.goroutines) == s.total
        for sim in ("exact", "loose"):
            assert sum(g.count for g in s.groups(sim)) == s.total  # type: ignore[arg-type]
        s.stack_tree()


def test_fixtures_exist() -> None:
    assert any(p.name.endswith(".pb.gz") for p in FILES)
    assert any(p.name.endswith(".debug1.txt") for p in FILES)
    assert any(p.name.endswith(".debug2.txt") for p in FILES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(max(len(SEEDS), 1))), st.data())
def test_mutated_fixtures(i: int, draw: st.DataObject) -> None:
    if not SEEDS:
        pytest.skip("no fixtures")
    data = bytearray(SEEDS[i])
    for _ in range(draw.draw(st.integers(1, 8))):
        op = draw.draw(st.sampled_from(["flip", "delete", "insert", "dup"]))
        pos = draw.draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw.draw(st.integers(0, 7))
        elif op == "delete":
            del data[pos : pos + draw.draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw.draw(st.binary(min_size=1, max_size=32))
        else:
            n = draw.draw(st.integers(1, 256))
            data[pos:pos] = data[pos : pos + n]
    check(bytes(data))


def _truncation_seeds() -> list[Path]:
    # One small real file per format: debug=2 (a crash), debug=1 and debug=0.
    picks = []
    for pattern in ("crash/*/panic*.txt", "states/*/goroutine.debug1.txt", "states/*/goroutine.debug0.pb.gz"):
        found = sorted(FIXTURES.glob(pattern), key=lambda p: p.stat().st_size)
        if found:
            picks.append(found[0])
    return picks


@pytest.mark.parametrize("path", _truncation_seeds(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_truncation(path: Path) -> None:
    data = _raw(path)
    step = max(1, len(data) // 3000)
    for cut in range(0, len(data), step):
        check(data[:cut])
