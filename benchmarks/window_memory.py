"""Bytes a daemon's detection window holds per snapshot, when a service shows the same
groups at every scrape and when every scrape differs from the one before.

50 windows of 40 debug=0 snapshots of the leak zoo (tests/fixtures/zoo, go1.26.8), each added
and judged as `grprof serve` does (`Window.add`, `judge_window`): `same` gives each window one
phase's profile 40 times; `cycle` gives it the six phases in turn, so that consecutive
snapshots differ (leaks grow or drain: most groups' counts change). Traced bytes (tracemalloc)
before and after dropping the windows, per retained snapshot.

    .venv/bin/python benchmarks/window_memory.py same
    .venv/bin/python benchmarks/window_memory.py cycle
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import tracemalloc
from pathlib import Path

import grprof
from grprof.detect.detector import Options
from grprof.detect.rules import load_rules
from grprof.serving.judge import judge_window
from grprof.serving.window import Window

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("same", "cycle"))
    ap.add_argument("--windows", type=int, default=50)
    args = ap.parse_args()
    bodies = [p.read_bytes() for p in sorted(ZOO.glob("*.goroutine.debug0.pb.gz"))]
    opts = Options(rules=load_rules())
    tracemalloc.start()
    windows = []
    for t in range(args.windows):
        w = Window.empty()
        size = w.snapshots.maxlen or 40
        for i in range(size):
            body = bodies[(i + t) % len(bodies)] if args.mode == "cycle" else bodies[t % len(bodies)]
            snap = grprof.load(body)
            snap.time = T0 + dt.timedelta(seconds=15 * i)
            w.add(snap)
            judge_window(w.all(), w.snapshots[-1], opts)
        windows.append(w)
    kept = sum(len(w.snapshots) for w in windows)
    gc.collect()
    full = tracemalloc.get_traced_memory()[0]
    windows.clear()
    gc.collect()
    empty = tracemalloc.get_traced_memory()[0]
    print(f"{args.mode}: {(full - empty) / kept / 1024:.1f} KiB per retained snapshot ({kept} snapshots)")


if __name__ == "__main__":
    main()
