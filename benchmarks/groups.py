#!/usr/bin/env python3
"""Aggregation benchmark: `aggregate.group()` alone, and `load` + `groups()`, per format.

    .venv/bin/python benchmarks/groups.py [--iters N] [--json OUT] [FILE ...]
    # before: the same against another tree (this script imports grprof from PYTHONPATH)
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/groups.py

On the files `benchmarks/pprof.py` generates into benchmarks/.work/ (run it once first):
the 20,000-distinct-stack dump in its three forms (debug=0, debug=1, debug=2, written by
one process at one moment) and the 21,000-goroutine, 52-shape one (debug=0, debug=2), or
the FILEs given. For each file it loads the snapshot once, then times, one warm-up then
best / median / max of N, each after a `gc.collect()`:

- `group(table, similarity)` for each similarity (default, exact, loose): what
  `Snapshot.groups()` runs, without the snapshot's cache; the result is dropped after each
  run, so the time includes the collector's pass over what `group` built and freeing it;
- `load(data)` + `groups()` from the file's bytes in memory (the whole reading path);
- `stack_tree(groups)` of the default groups (the flame graph's tree, which `build_report`
  builds), the tree dropped after each run, as for `group`.

Nothing is asserted. The grprof imported is the one on `sys.path` (PYTHONPATH first).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grprof
from grprof.aggregate import SIMILARITIES, group, stack_tree

WORK = Path(__file__).resolve().parent / ".work"
FILES = (
    "distinct-20000.debug0.pb.gz",
    "distinct-20000.debug1.txt",
    "distinct-20000.debug2.txt",
    "shapes-21000.debug0.pb.gz",
    "shapes-21000.debug2.txt",
)


def _time(fn: Callable[[], object], iters: int) -> dict[str, float]:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "best_ms": min(times) * 1e3,
        "median_ms": statistics.median(times) * 1e3,
        "max_ms": max(times) * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=20, help="timed runs per measurement (default 20)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    ap.add_argument("files", nargs="*", type=Path, help="dumps to measure (default: the files above)")
    args = ap.parse_args()
    print(f"grprof from {Path(grprof.__file__).parent}, load average {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {}
    for path in args.files or [WORK / name for name in FILES]:
        name = path.name
        if not path.exists():
            print(f"{name}: missing (run benchmarks/pprof.py first)", file=sys.stderr)
            continue
        data = path.read_bytes()
        table = grprof.load(data).table
        row: dict[str, Any] = {}
        for sim in SIMILARITIES:
            row[f"group_{sim}"] = _time(lambda t=table, s=sim: group(t, s), args.iters)
        row["load_groups"] = _time(lambda d=data: grprof.load(d).groups(), args.iters)
        groups = group(table, "default")
        row["stack_tree"] = _time(lambda g=groups: stack_tree(g), args.iters)
        results[name] = row
        cells = "  ".join(
            f"{k} {v['best_ms']:.1f} / {v['median_ms']:.1f} / {v['max_ms']:.1f}" for k, v in row.items()
        )
        print(f"{name} ({len(table)} rows, {len(table.stacks)} stacks): {cells}", flush=True)
    if args.json:
        doc = {"loadavg_1m": os.getloadavg()[0], "results": results}
        Path(args.json).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
