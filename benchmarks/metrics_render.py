"""CPU of one `/metrics` exposition of a `grprof serve` replica watching N targets.

The replica's runtime is filled as the daemon fills it: every target shows the leak zoo's
last recorded phase (tests/fixtures/zoo, debug=2, go1.26.8) with its real top groups and wait
classes, every 10th the detector's real findings over the zoo's phases, three static labels,
and one scrape of each kind (debug=0, debug=2, goroutineleak) observed. Prints the samples,
then the best of `--runs` of: `RuntimeCollector.collect()` alone, `grprof.server.metrics.
exposition` (what `GET /metrics` runs) and prometheus_client's `generate_latest` of the same
registry (the same bytes; checked).

    .venv/bin/python benchmarks/metrics_render.py --targets 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prometheus_client

import grprof
from grprof.collect.model import ScrapeResult, Target
from grprof.detect.detector import detect
from grprof.server.metrics import exposition
from grprof.server.runtime import Runtime, TargetRuntime, blocked_by_class

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4")
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def runtime(targets: int) -> Runtime:
    snaps = [grprof.load(ZOO / f"{p}.goroutine.debug2.txt") for p in PHASES]
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
    findings = detect(snaps).findings
    groups = snaps[-1].groups()
    rt = Runtime.create((1, 1))
    for i in range(targets):
        name = f"svc-{i:04d}"
        labels = {"env": "prod", "team": f"team-{i % 7}", "zone": f"zone-{i % 3}"}
        rt.targets[name] = TargetRuntime(
            Target(name, f"http://127.0.0.1:{20000 + i}", labels),
            up=True,
            last_scrape=T0,
            last_success=T0,
            goroutines=snaps[-1].total,
            growth_per_minute=1.5,
            blocked=blocked_by_class(groups),
            top_groups=groups,
            findings=findings if i % 10 == 0 else [],
            leak_profile=False,
            scrape_lag=0.1,
        )
        for kind in ("debug=0", "debug=2", "goroutineleak"):
            rt.observe_scrape(ScrapeResult(name, kind, T0, 0.002, "ok"))  # type: ignore[arg-type]
    return rt


def best(f: Callable[[], Any], runs: int) -> tuple[float, Any]:
    fastest, out = float("inf"), None
    for _ in range(runs):
        t = time.process_time()
        out = f()
        fastest = min(fastest, time.process_time() - t)
    return fastest, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    reg = runtime(args.targets).metrics.registry
    t_collect, families = best(lambda: list(reg.collect()), args.runs)
    t_ours, ours = best(lambda: exposition(reg), args.runs)
    t_peer, peer = best(lambda: prometheus_client.generate_latest(reg), args.runs)
    assert ours == peer, "exposition differs from generate_latest"
    n = sum(len(f.samples) for f in families)
    print(f"{args.targets} targets: {n} samples, {len(ours) / 1e6:.1f} MB")
    print(f"CPU, best of {args.runs}: collect {1000 * t_collect:.0f} ms; exposition {1000 * t_ours:.0f} ms")
    print(f"prometheus_client generate_latest of the same registry: {1000 * t_peer:.0f} ms (same bytes)")


if __name__ == "__main__":
    main()
