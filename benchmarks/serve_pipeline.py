"""CPU per scrape of `grprof serve`'s pipeline, without HTTP or asyncio: where the time goes.

For every scrape the daemon parses the debug=1 body, adds the snapshot to the target's window,
stores the scrape and its snapshot (one transaction), runs the detector over the window and
syncs the findings. This runs exactly those calls, single-threaded, for N targets over R rounds
(bodies: the recorded debug=1 profiles of tests/fixtures, one per target, cycling), and prints
the CPU time per scrape of the last 5 rounds, when every window is full (40 snapshots).

    .venv/bin/python benchmarks/serve_pipeline.py --targets 100 --rounds 45 [--profile]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import datetime as dt
import pstats
import tempfile
import time
from pathlib import Path

from grprof.collect.model import ScrapeResult, Target
from grprof.detect.detector import Options
from grprof.detect.rules import load_rules
from grprof.detect.signals import default_settings
from grprof.serve import Window, judge_window, parse_payload
from grprof.store import ScrapeRecord, open_store

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
MEASURED = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=45, help="scrapes per target (window: 40)")
    ap.add_argument("--profile", action="store_true", help="cProfile the measured rounds")
    args = ap.parse_args()
    bodies = [p.read_bytes() for p in sorted(FIXTURES.glob("states/*/goroutine.debug1.txt"))]
    bodies.append((FIXTURES / "zoo" / "0-warm-up.goroutine.debug1.txt").read_bytes())
    store = open_store(str(Path(tempfile.mkdtemp()) / "grprof.db"))
    names = [f"t{i}" for i in range(args.targets)]
    store.upsert_targets([Target(n, f"http://127.0.0.1:{10000 + i}", {}) for i, n in enumerate(names)], None)
    opts = Options(rules=load_rules())
    windows: dict[str, Window] = {}
    parts: collections.Counter[str] = collections.Counter()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def scrape(i: int, r: int) -> None:
        name, body = names[i], bodies[i % len(bodies)]
        started = t0 + dt.timedelta(seconds=15 * r)
        a = time.process_time()
        snap = parse_payload(ScrapeResult(name, "debug=1", started, 0.01, "ok", len(body), body))
        b = time.process_time()
        w = windows.setdefault(name, Window(collections.deque(maxlen=default_settings().window)))
        w.add(snap)
        store.add_scrape(ScrapeRecord(name, "debug=1", started, 0.01, "ok", len(body)), snap)
        c = time.process_time()
        j = judge_window(w.all(), w.snapshots[-1], opts)
        d = time.process_time()
        store.sync_findings(name, j.detection.findings, started, report=False)
        e = time.process_time()
        parts["parse"] += b - a
        parts["store scrape"] += c - b
        parts["detect"] += d - c
        parts["store findings"] += e - d

    prof = cProfile.Profile() if args.profile else None
    mark = 0.0
    for r in range(args.rounds):
        if r == args.rounds - MEASURED:
            parts.clear()
            mark = time.process_time()
            if prof:
                prof.enable()
        for i in range(len(names)):
            scrape(i, r)
    if prof:
        prof.disable()
    n = MEASURED * len(names)
    total = 1000 * (time.process_time() - mark) / n
    print(f"{len(names)} targets, window {min(args.rounds, default_settings().window)} snapshots")
    print(
        f"CPU per scrape: {total:.2f} ms ("
        + ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in parts.items())
        + ")"
    )
    print(f"at 1,000 targets every 15 s: {total * 1000 / 15 / 1000:.2f} of one core, before HTTP and asyncio")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
