#!/usr/bin/env python3
"""debug=0 and debug=1 parse benchmark: grprof (native decoder and pure Python) vs Go's profile.Parse.

    .venv/bin/python benchmarks/pprof.py [--iters N] [--json OUT] [--no-fixtures]

It builds benchmarks/goapps/pprofparse (github.com/google/pprof/profile.Parse, what
`go tool pprof` uses) and the two generators into benchmarks/.work/, makes the inputs when
missing, and times, on each file, in the same run:

- grprof `load(data)`: the file's bytes from memory through grprof's whole reading path
  (sniffing, gunzip with its size cap, parsing, the snapshot's table), one warm-up, then
  best and median of N, each after a `gc.collect()`; with the native decoder and with
  GRPROF_PURE=1 (the debug=1 parser is Python either way);
- `pprofparse -n N FILE`: `profile.Parse(bytes.NewReader(data))`, gunzip included, one
  warm-up, then best and median of N, each after a `runtime.GC()`.

Inputs: `shapes -n 21000` (21,000 goroutines in 52 shapes: the few-stacks profile a fleet
scrapes), `distinct -n 20000` (20,000 goroutines, each its own stack: the worst case), and
the recorded fixtures' debug=0 files together (one line, summed). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE))

from parse import go_build, machine  # noqa: E402


def inputs() -> list[tuple[str, Path, Path]]:
    """(label, debug=0 file, debug=1 file) for each generated input, made when missing."""
    shapes, distinct = go_build("shapes"), go_build("distinct")
    out = []
    s0, s1 = WORK / "shapes-21000.debug0.pb.gz", WORK / "shapes-21000.debug1.txt"
    if not s0.exists() or s0.stat().st_mtime < shapes.stat().st_mtime:
        print("generating shapes-21000 ...", file=sys.stderr)
        cmd = [
            str(shapes),
            "-n",
            "21000",
            "-out",
            str(WORK / "shapes-21000.debug2.txt"),
            "-debug0",
            str(s0),
            "-debug1",
            str(s1),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    out.append(("shapes: 21,000 goroutines, 52 shapes", s0, s1))
    d0, d1 = WORK / "distinct-20000.debug0.pb.gz", WORK / "distinct-20000.debug1.txt"
    if not d0.exists() or d0.stat().st_mtime < distinct.stat().st_mtime:
        print("generating distinct-20000 ...", file=sys.stderr)
        subprocess.run(
            [str(distinct), "-n", "20000", "-out", str(WORK / "distinct-20000")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    out.append(("distinct: 20,000 goroutines, 20,002 stacks", d0, d1))
    return out


def time_grprof(data: bytes, iters: int, pure: bool) -> dict[str, Any]:
    import grprof
    from grprof.formats import pprof

    old = os.environ.pop("GRPROF_PURE", None)
    if pure:
        os.environ["GRPROF_PURE"] = "1"
    try:
        snap = grprof.load(data, name="bench")
        native = pprof.native_decoder() is not None
        times = []
        for _ in range(iters):
            snap = None  # type: ignore[assignment]
            gc.collect()
            t0 = time.perf_counter()
            snap = grprof.load(data, name="bench")
            times.append(time.perf_counter() - t0)
        return {
            "best_ms": min(times) * 1e3,
            "median_ms": statistics.median(times) * 1e3,
            "goroutines": snap.total,
            "stacks": len(snap.table.stacks),
            "native": native and snap.format == "debug=0",
        }
    finally:
        os.environ.pop("GRPROF_PURE", None)
        if old is not None:
            os.environ["GRPROF_PURE"] = old


def time_go(tool: Path, files: list[Path], iters: int) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(tool), "-n", str(iters), *map(str, files)], check=True, capture_output=True, text=True
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=20, help="timed runs per tool and file (default 20)")
    ap.add_argument("--json", metavar="OUT", help="also write all results as JSON to OUT")
    ap.add_argument("--no-fixtures", action="store_true", help="skip the recorded fixtures")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    tool = go_build("pprofparse")
    info = machine()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}; {info['go']}; Python {info['python']}; "
        f"load average {info['loadavg_1m']}; grprof {info['grprof_commit']}"
    )
    cases: list[tuple[str, str, list[Path]]] = []
    for label, f0, f1 in inputs():
        cases += [(label, "debug=0", [f0]), (label, "debug=1", [f1])]
    if not args.no_fixtures:
        fixtures = sorted((REPO / "tests" / "fixtures").rglob("*.pb.gz"))
        cases.append((f"the {len(fixtures)} recorded debug=0 fixtures, summed", "debug=0", fixtures))

    rows = []
    head = f"{'input':46} {'format':8} {'tool':34} {'best ms':>9} {'median ms':>10} {'vs Go (best)':>12}"
    print(head + "\n" + "-" * len(head))
    for label, fmt, files in cases:
        go = time_go(tool, files, args.iters)
        go_best = sum(r["best_ms"] for r in go)
        go_median = sum(r["median_ms"] for r in go)
        results = [("Go profile.Parse", {"best_ms": go_best, "median_ms": go_median})]
        for pure in (False, True):
            res = [time_grprof(f.read_bytes(), args.iters, pure) for f in files]
            tool_name = (
                "grprof, pure Python (GRPROF_PURE=1)"
                if pure
                else ("grprof, native decoder" if all(r["native"] for r in res) else "grprof (Python parser)")
            )
            results.append(
                (
                    tool_name,
                    {
                        "best_ms": sum(r["best_ms"] for r in res),
                        "median_ms": sum(r["median_ms"] for r in res),
                        "goroutines": sum(r["goroutines"] for r in res),
                    },
                )
            )
        for name, r in results:
            ratio = r["best_ms"] / go_best if go_best else float("nan")
            print(f"{label:46} {fmt:8} {name:34} {r['best_ms']:9.2f} {r['median_ms']:10.2f} {ratio:11.1f}x")
            rows.append({"input": label, "format": fmt, "tool": name, **r, "vs_go_best": ratio})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
