#!/usr/bin/env python3
"""debug=0 and debug=1 parse benchmark: grprof (native decoder and pure Python) vs Go's profile.Parse.

    .venv/bin/python benchmarks/pprof.py [--iters N] [--json OUT] [--no-fixtures]

It builds benchmarks/goapps/pprofparse (github.com/google/pprof/profile.Parse, what
`go tool pprof` uses) and the two generators into benchmarks/.work/, makes the inputs when
missing, and times, on each file, in the same run:

- grprof `load(data)`: the file's bytes from memory through grprof's whole reading path
  (sniffing, gunzip with its size cap, parsing, the snapshot's table), and `groups()` on
  the result (load + aggregate), one warm-up, then best, median and max of N, each after a
  `gc.collect()`; with the native parsers (debug=0 and debug=1) and with GRPROF_PURE=1;
- `pprofparse -n N FILE`: `profile.Parse(bytes.NewReader(data))`, gunzip included, one
  warm-up, then best, median and max of N, each after a `runtime.GC()`: on the debug=0
  file of the same run for both formats (the goal's reference), and on the debug=1 text
  too (profile.Parse reads the legacy text format).

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


def _stats(times: list[float]) -> dict[str, float]:
    return {
        "best_ms": min(times) * 1e3,
        "median_ms": statistics.median(times) * 1e3,
        "max_ms": max(times) * 1e3,
    }


def time_grprof(data: bytes, iters: int, pure: bool) -> dict[str, Any]:
    """`load(data)` and `load(data).groups()` (load + aggregate), each run timed for both."""
    import grprof
    from grprof.formats import debug1, pprof

    old = os.environ.pop("GRPROF_PURE", None)
    if pure:
        os.environ["GRPROF_PURE"] = "1"
    try:
        snap = grprof.load(data, name="bench")
        snap.groups()
        native = {"debug=0": pprof.native_decoder(), "debug=1": debug1.native_parser()}.get(snap.format)
        loads, totals = [], []
        for _ in range(iters):
            snap = None  # type: ignore[assignment]
            gc.collect()
            t0 = time.perf_counter()
            snap = grprof.load(data, name="bench")
            t1 = time.perf_counter()
            snap.groups()
            t2 = time.perf_counter()
            loads.append(t1 - t0)
            totals.append(t2 - t0)
        return {
            "load": _stats(loads),
            "load_groups": _stats(totals),
            "goroutines": snap.total,
            "stacks": len(snap.table.stacks),
            "native": native is not None,
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
    # (label, format, grprof's files, the debug=0 files Go parses: the same profiles)
    cases: list[tuple[str, str, list[Path], list[Path]]] = []
    for label, f0, f1 in inputs():
        cases += [(label, "debug=0", [f0], [f0]), (label, "debug=1", [f1], [f0])]
    if not args.no_fixtures:
        fixtures = sorted((REPO / "tests" / "fixtures").rglob("*.pb.gz"))
        label = f"the {len(fixtures)} recorded debug=0 fixtures, summed"
        cases.append((label, "debug=0", fixtures, fixtures))

    def summed(res: list[dict[str, Any]], key: str | None = None) -> dict[str, float]:
        return {k: sum((r[key] if key else r)[k] for r in res) for k in ("best_ms", "median_ms", "max_ms")}

    def speed(go: dict[str, float], ours: dict[str, float]) -> str:
        """Go's time over grprof's (>= 1: grprof at least as fast), best / median / max."""
        return " / ".join(f"{go[k] / ours[k]:.2f}" for k in ("best_ms", "median_ms", "max_ms"))

    def ms(r: dict[str, float]) -> str:
        return f"{r['best_ms']:.2f} / {r['median_ms']:.2f} / {r['max_ms']:.2f}"

    rows = []
    print(
        "ms best / median / max of N; 'x Go' = Go profile.Parse of the debug=0 form over grprof, "
        "best/best, median/median, max/max (>= 1: grprof at least as fast)"
    )
    for label, fmt, files, go_files in cases:
        go = summed(time_go(tool, go_files, args.iters))
        print(f"\n{label}, {fmt}\n  Go profile.Parse (debug=0 form): {ms(go)}")
        row: dict[str, Any] = {"input": label, "format": fmt, "go_debug0": go}
        if fmt == "debug=1":
            text = summed(time_go(tool, files, args.iters))
            print(f"  Go profile.Parse (this debug=1 text): {ms(text)}")
            row["go_debug1"] = text
        for pure in (False, True):
            res = [time_grprof(f.read_bytes(), args.iters, pure) for f in files]
            name = (
                "pure Python (GRPROF_PURE=1)"
                if pure
                else ("native" if all(r["native"] for r in res) else "native unavailable: Python")
            )
            load, total = summed(res, "load"), summed(res, "load_groups")
            print(
                f"  grprof, {name}: load {ms(load)} (x Go {speed(go, load)}); "
                f"load + groups {ms(total)} (x Go {speed(go, total)})"
            )
            row["pure" if pure else "native"] = {
                "tool": name,
                "load": load,
                "load_groups": total,
                "goroutines": sum(r["goroutines"] for r in res),
                "x_go_load": speed(go, load),
                "x_go_load_groups": speed(go, total),
            }
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
