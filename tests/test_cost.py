"""Stack cost (docs/owners.md#cost): the target's own average stack from its runtime figures
(heap?debug=1, /metrics), else 2 KiB per goroutine (the runtime's starting stack, a lower
bound); its growth per hour, and the time until that growth uses up a memory limit's headroom.
Real data: the zoo's recordings (tests/goapps/zoo) and a live program that leaks 100k
goroutines with grown stacks (tests/goapps/stackgrowth)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from gobuild import run_goapp
from serveproc import run_serve

import grprof
from grprof.detect.cost import STACK_MIN, StackBasis, human_bytes, human_hours, stack_basis, stack_cost
from grprof.detect.detector import Options, detect
from grprof.formats.memstats import RuntimeStats, StatsError, parse_runtime_stats

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
    basis = stack_basis(100_000, None, 1 << 30)
    assert basis == StackBasis(2048, "runtime_minimum", 100_000 * 2048, 1 << 30, "configured")
    c = stack_cost(100_000, 10.0, basis)
    assert c.bytes == 204_800_000 and c.lower_bound and c.source == "runtime_minimum"
    assert c.bytes_per_hour == 10 * 60 * 2048 and c.limit_source == "configured"
    assert c.hours_to_limit == pytest.approx(((1 << 30) - 204_800_000) / (10 * 60 * 2048))
    limited = StackBasis(memory_limit=1 << 30, limit_source="configured")
    assert stack_cost(5, None, limited).hours_to_limit is None  # no growth, no countdown
    assert stack_cost(5, -3.0, limited).hours_to_limit is None  # shrinking
    assert stack_cost(5, 3.0).hours_to_limit is None  # no limit
    past = StackBasis(held=1000, memory_limit=100, limit_source="configured")
    assert stack_cost(5, 3.0, past).hours_to_limit == 0  # already past it
    # The runtime's own figures: its average stack, no lower bound, GOMEMLIMIT when none is set.
    metrics = RuntimeStats(16 << 20, 1024, 8 << 30, "metrics", "m")
    b = stack_basis(999, metrics)
    assert (b.per_goroutine, b.source, b.held, b.lower_bound) == (16 << 10, "metrics", 16 << 20, False)
    assert (b.memory_limit, b.limit_source) == (8 << 30, "gomemlimit")
    assert stack_basis(999, metrics, 1 << 30).limit_source == "configured"  # configured first
    heap = RuntimeStats(8 << 20, None, None, "heap_profile", "h")  # no count: the snapshot's
    assert stack_basis(1024, heap).per_goroutine == 8 << 10
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


def test_runtime_stats_parse_errors_name_the_input() -> None:
    with pytest.raises(StatsError, match=r"^x\.txt: neither a heap profile"):
        parse_runtime_stats(b"hello {{{ world\n", "x.txt")
    with pytest.raises(StatsError, match=r"^m: no go_memstats_stack_inuse_bytes and no go_goroutines"):
        parse_runtime_stats(b"# TYPE up gauge\nup 1\n", "m")
    with pytest.raises(StatsError, match=r"^g\.pb\.gz: binary data"):
        parse_runtime_stats(b"\x1f\x8b\x08\x00", "g.pb.gz")
    # GOMEMLIMIT unset is math.MaxInt64: no limit.
    unset = parse_runtime_stats(
        b"go_goroutines 10\n"
        b"go_memstats_stack_inuse_bytes 65536\n"
        b"go_gc_gomemlimit_bytes 9.223372036854776e+18\n",
        "m",
    )
    assert (unset.stack_inuse, unset.goroutines, unset.memory_limit) == (65536, 10, None)


def test_memstats_flag_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    dump = ZOO / "0-warm-up.goroutine.debug2.txt"
    for arg, want in (
        (tmp_path / "missing.txt", "missing.txt: no such file"),
        (dump, "neither a heap profile"),
    ):
        p = subprocess.run(
            [sys.executable, "-m", "grprof.cli", "analyze", "--memstats", str(arg), str(dump)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert p.returncode == 2 and want in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


STEPS, PER_STEP, SERVE_STEP = 5, 20_000, 4_000
BIG_LIMIT = 64 << 30


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_the_estimate_matches_the_runtimes_own_stack_growth(tmp_path: Path) -> None:
    """tests/goapps/stackgrowth leaks 100k goroutines in five steps, each on a stack grown past
    2 KiB. With its heap?debug=1 or /metrics figures, grprof's stack bytes, their growth per hour
    and the time to a configured limit match what the program's runtime.MemStats.StackInuse
    did within ±20%; without them, the 2 KiB figure is the lower bound it says it is."""
    stats: list[dict[str, int]] = []
    with run_goapp("stackgrowth") as (_, base):

        def get(path: str) -> bytes:
            with urllib.request.urlopen(base + path, timeout=60) as r:
                body: bytes = r.read()
                return body

        def point(i: int) -> None:
            (tmp_path / f"g{i}.pb.gz").write_bytes(get("/debug/pprof/goroutine"))
            stats.append(json.loads(get("/memstats")))

        point(0)
        for i in range(1, STEPS + 1):
            assert get(f"/leak?n={PER_STEP}") == f"leaked {PER_STEP}\n".encode()
            time.sleep(0.5)
            point(i)
        (tmp_path / "heap.txt").write_bytes(get("/debug/pprof/heap?debug=1"))
        (tmp_path / "metrics.txt").write_bytes(get("/metrics"))
    grown = stats[-1]["stack_inuse"] - stats[0]["stack_inuse"]
    seconds = (stats[-1]["unix_nano"] - stats[0]["unix_nano"]) / 1e9
    rate = grown / seconds * 3600  # the runtime's own stack growth, bytes per hour
    assert grown > 2 * STEPS * PER_STEP * STACK_MIN, "each leaked stack grew past 2 KiB"
    dumps = [str(tmp_path / f"g{i}.pb.gz") for i in range(STEPS + 1)]

    def leak(*flags: str) -> dict[str, Any]:
        p = subprocess.run(
            [sys.executable, "-m", "grprof.cli", "analyze", "--json", *flags, *dumps],
            capture_output=True,
            text=True,
            check=False,
        )
        assert p.returncode in (0, 1), p.stderr
        doc = json.loads(p.stdout)
        [f] = [f for f in doc["findings"] if f["site"]["function"] == "main.deep"]
        assert f["count"] == STEPS * PER_STEP
        return dict(f["stack"]) | {"detection": doc["detection"]}

    for source in ("heap_profile", "metrics"):
        path = tmp_path / ("heap.txt" if source == "heap_profile" else "metrics.txt")
        s = leak("--memstats", str(path), "--memory-limit", str(BIG_LIMIT))
        assert (s["source"], s["lower_bound"], s["limit_source"]) == (source, False, "configured")
        assert s["bytes"] == pytest.approx(grown, rel=0.2), (s, grown)
        assert s["bytes_per_hour"] == pytest.approx(rate, rel=0.2), (s, rate)
        hours = (BIG_LIMIT - stats[-1]["stack_inuse"]) / rate
        assert s["hours_to_limit"] == pytest.approx(hours, rel=0.2), (s, hours)
        assert s["detection"]["stack_source"] == source
    lower = leak()
    assert (lower["source"], lower["lower_bound"]) == ("runtime_minimum", True)
    assert lower["bytes"] == STEPS * PER_STEP * STACK_MIN < grown / 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
@pytest.mark.parametrize("source", ["heap_profile", "metrics"])
def test_serve_costs_findings_with_the_targets_own_figures(tmp_path: Path, source: str) -> None:
    """`grprof serve` fetches the runtime's figures beside the goroutine profiles
    (scrape.memstats_every, memstats_path: heap?debug=1 or the Go collector's /metrics) and
    costs the leak with the target's average stack: per goroutine within ±20% of what the
    program's own StackInuse grew by per leaked goroutine, not the 2 KiB lower bound. From
    /metrics, the target's GOMEMLIMIT is the limit the growth counts down to."""
    path = "/debug/pprof/heap?debug=1" if source == "heap_profile" else "/metrics"
    with run_goapp("stackgrowth", env={"GOMEMLIMIT": "8GiB"}) as (_, base):

        def memstats() -> dict[str, int]:
            with urllib.request.urlopen(base + "/memstats", timeout=60) as r:
                doc: dict[str, int] = json.load(r)
                return doc

        before = memstats()
        cfg = tmp_path / "grprof.yaml"
        cfg.write_text(
            "version: 1\n"
            "scrape: {interval: 2s, timeout: 2s, memstats_every: 1, debug2_every: 0, "
            f"memstats_path: '{path}'}}\n"
            f"targets:\n  - {{name: grow, url: '{base}'}}\n"
        )
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            # Leak in steps until serve calls it (growth is its only evidence here: no
            # goroutineleak profile, no debug=2), however slow the machine.
            leaked, stack, found = 0, None, []
            deadline = time.monotonic() + 150
            while stack is None and time.monotonic() < deadline:
                urllib.request.urlopen(f"{base}/leak?n={SERVE_STEP}", timeout=60).read()
                leaked += SERVE_STEP
                time.sleep(2)
                found = srv.get("/api/v1/findings?target=grow")["findings"]
                deep = [f for f in found if (f["site"] or {}).get("function") == "main.deep"]  # site: null
                if deep and deep[0]["stack"]["source"] != "runtime_minimum":
                    stack = deep[0]["stack"]
            assert stack is not None, f"no costed finding: {found}\n{srv.logs()[-3000:]}"
        per = (memstats()["stack_inuse"] - before["stack_inuse"]) / leaked
    assert (stack["source"], stack["lower_bound"]) == (source, False)
    if source == "metrics":
        assert stack["limit_source"] == "gomemlimit" and stack["hours_to_limit"] is not None, stack
    else:  # the heap profile does not carry GOMEMLIMIT, and no limit is configured
        assert stack["limit_source"] is None and stack["hours_to_limit"] is None, stack
    # A leak step that lands between a goroutine scrape and the heap profile fetched right
    # after it pairs that step's stacks with the count before it (seen in loaded runs: 25 to
    # 33 % over); the finding resolves once the leak stops, so the test cannot wait it out.
    # Either pairing is right within 20 %: with the count now, or one step behind it.
    lagging = per * leaked / (leaked - SERVE_STEP) if leaked > SERVE_STEP else per
    assert 0.8 * per <= stack["per_goroutine"] <= 1.2 * lagging, (stack, per, lagging)
    assert stack["per_goroutine"] > 2 * STACK_MIN
    assert stack["bytes"] == deep[0]["count"] * stack["per_goroutine"]
