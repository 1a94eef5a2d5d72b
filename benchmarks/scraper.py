#!/usr/bin/env python3
"""CPU of `grprof serve`'s scraper alone: its schedule, HTTP and gunzip, without the pipeline.

    .venv/bin/python benchmarks/scraper.py [--targets 1000] [--warmup 20] [--seconds 60] [--rounds 2]

`goapps/fleet` (the fleet of benchmarks/serve.py: N loopback services answering with profiles
recorded from real Go programs) is scraped by one `grprof.collect.scraper.Scraper` in this
process, at serve's default settings but for the 15 s interval and `scrape.format: debug=0`
(every 4th scheduled scrape a debug=2, goroutineleak where served), every result handed to an
`on_result` that only counts it. After `--warmup` seconds, this process's CPU time (user +
system, all threads: the event loop is the only busy one) is read over `--seconds`, `--rounds`
times, and printed per result and as a share of one core.

To compare two trees, run it with each one's `src` first on `PYTHONPATH`. Nothing is
asserted: it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import go_build, machine, running_fleet

import grprof
from grprof.collect.model import ScrapeResult, Target
from grprof.collect.scraper import Scraper, ScrapeSettings


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(
    targets: list[Target], warmup: float, seconds: float, rounds: int
) -> list[tuple[int, float]]:
    delivered = 0

    async def count(result: ScrapeResult) -> None:
        nonlocal delivered
        if result.status != "ok" and result.status != "not_found":
            raise SystemExit(f"{result.target}: {result.status}: {result.error}")
        delivered += 1

    scraper = Scraper(ScrapeSettings(interval=15.0, format="debug=0"), count)
    scraper.set_targets(targets)
    await scraper.start()
    out = []
    try:
        await asyncio.sleep(warmup)
        for _ in range(rounds):
            c0, n0 = cpu_seconds(), delivered
            await asyncio.sleep(seconds)
            out.append((delivered - n0, cpu_seconds() - c0))
    finally:
        await scraper.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds per measured round")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    m = machine()
    print(
        f"machine: {m['cpus']} CPUs, {m['cpu_model']}, load average {m['load1_at_start']}; "
        f"Python {m['python']}, {m['go']}; grprof from {Path(grprof.__file__).parent}; "
        f"{args.targets} targets every 15 s, debug=0"
    )
    with running_fleet(go_build("fleet"), args.targets, 60.0) as fleet:
        targets = [Target(s["name"], f"http://{s['addr']}") for s in fleet.services]
        rounds = asyncio.run(measure(targets, args.warmup, args.seconds, args.rounds))
    for n, cpu in rounds:
        print(
            f"  {n} results in {args.seconds:g} s: {cpu / args.seconds:.4f} of a core, "
            f"{1e3 * cpu / n:.3f} ms each"
        )
    per = [1e3 * cpu / n for n, cpu in rounds]
    print(
        f"CPU per result, ms: best {min(per):.3f}, median {statistics.median(per):.3f}, worst {max(per):.3f}"
    )


if __name__ == "__main__":
    main()
