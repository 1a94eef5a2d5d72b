#!/usr/bin/env python3
"""Signature benchmark: the group-signature step alone, Rust against Python.

    .venv/bin/python benchmarks/signatures.py [--iters N] [--json OUT]

On the 20,000-distinct-stack dump (debug=0, debug=1, debug=2 forms) and the 21,000-goroutine,
52-shape dump that `benchmarks/pprof.py` generates into benchmarks/.work/ (run it once
first; `goapps/distinct` writes the distinct one: goroutine i on call path i, 3 to 20 frames
from chains of 300 functions). Each file is loaded once; then, for each similarity, one
warm-up and best / median / max of N runs, each after a `gc.collect()`, of
`aggregate.signatures(stacks, similarity)` over the table's distinct stacks (exact with the
first row's argument key of each stack), with the Rust extension (`native=True`) and with the
pure-Python path (`native=False`), and the ratio of the medians. For loose similarity it
times the loose grouping (`_loose_groups`), which is what `group()` runs: texts, grouping by
text, and one signature per group.

The two paths' signatures are compared once per file and similarity (a mismatch exits 1).
Nothing else is asserted.
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
from grprof.aggregate import SIMILARITIES, _loose_groups, signatures

WORK = Path(__file__).resolve().parent / ".work"
FILES = (
    "distinct-20000.debug2.txt",
    "distinct-20000.debug0.pb.gz",
    "distinct-20000.debug1.txt",
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


def _step(stacks: list[Any], sim: str, keys: list[int], native: bool) -> Callable[[], object]:
    if sim == "loose":
        return lambda: _loose_groups(stacks, native)
    return lambda: signatures(stacks, sim, keys, native=native)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=20, help="timed runs per measurement (default 20)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    args = ap.parse_args()
    print(f"grprof from {Path(grprof.__file__).parent}, load average {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {}
    for name in FILES:
        path = WORK / name
        if not path.exists():
            print(f"{name}: missing (run benchmarks/pprof.py first)", file=sys.stderr)
            continue
        table = grprof.load(path.read_bytes()).table
        stacks = table.stacks
        first: dict[int, int] = {}
        for si, key in zip(table.stack, table.argkey, strict=True):
            first.setdefault(si, key)
        keys = [first.get(i, 0) for i in range(len(stacks))]
        frames = sum(len(s.frames) for s in stacks)
        print(f"{name}: {len(table)} rows, {len(stacks)} stacks, {frames} frames", flush=True)
        row: dict[str, Any] = {}
        for sim in SIMILARITIES:
            if _step(stacks, sim, keys, True)() != _step(stacks, sim, keys, False)():
                print(f"  {sim}: Rust and Python signatures differ", file=sys.stderr)
                sys.exit(1)
            rust = _time(_step(stacks, sim, keys, True), args.iters)
            pure = _time(_step(stacks, sim, keys, False), args.iters)
            ratio = pure["median_ms"] / rust["median_ms"]
            row[sim] = {"rust": rust, "python": pure, "speedup_median": ratio}
            print(
                f"  {sim:8} rust {rust['best_ms']:.2f} / {rust['median_ms']:.2f} / {rust['max_ms']:.2f} ms"
                f"   python {pure['best_ms']:.2f} / {pure['median_ms']:.2f} / {pure['max_ms']:.2f} ms"
                f"   x{ratio:.1f}",
                flush=True,
            )
        results[name] = row
    if args.json:
        doc = {"loadavg_1m": os.getloadavg()[0], "results": results}
        Path(args.json).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
