#!/usr/bin/env python3
"""grprof `load(path).groups()` against gostackparse `Parse` on one debug=2 dump, alternating.

    .venv/bin/python benchmarks/vs_gostackparse.py --before /tmp/wt-before [--rounds 4] [--iters 10] [FILE]

Each round runs, one after the other: `benchmarks/parse.py --child time FILE N` in each grprof
tree given (`--before`, then this one; each child imports grprof from its tree's `src`), then
the `peers` program (benchmarks/goapps/peers, built into a temporary directory) with
`-tool gostackparse -n N`. Every child does one untimed warm-up, then N timed runs. Prints
min / median / max in ms and MiB/s over all rounds, grprof's throughput over gostackparse's
(best over best, median over median, worst over worst), and the 1-minute load average at
each round. FILE defaults to benchmarks/.work/distinct-20000.debug2.txt (benchmarks/pprof.py
generates it). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "benchmarks" / ".work" / "distinct-20000.debug2.txt"


def grprof_times(tree: Path, dump: Path, iters: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, "benchmarks/parse.py", "--child", "time", str(dump), str(iters)],
        cwd=tree,
        env=dict(os.environ, PYTHONPATH=str(tree / "src")),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res = json.loads(out)
    if not res["native"]:
        print(f"note: {tree} ran without the native scanner", file=sys.stderr)
    times: list[float] = res["times"]
    return times


def peer_times(peers: Path, dump: Path, iters: int) -> list[float]:
    out = subprocess.run(
        [str(peers), "-tool", "gostackparse", "-n", str(iters), str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    times: list[float] = json.loads(out)["times_s"]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--before", type=Path, action="append", default=[], help="another grprof tree")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    dump = args.file.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        peers = Path(tmp) / "peers"
        src = ROOT / "benchmarks" / "goapps" / "peers"
        subprocess.run(["go", "build", "-o", str(peers), "."], cwd=src, check=True)
        trees = {str(t): t.resolve() for t in args.before} | {"this tree": ROOT}
        times: dict[str, list[float]] = {name: [] for name in [*trees, "gostackparse"]}
        loads = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for name, tree in trees.items():
                times[name] += grprof_times(tree, dump, args.iters)
            times["gostackparse"] += peer_times(peers, dump, args.iters)
    mib = dump.stat().st_size / (1 << 20)
    stats = {k: (min(v), statistics.median(v), max(v)) for k, v in times.items()}
    print(f"{dump.name}: {dump.stat().st_size:,} bytes; {args.rounds} rounds of {args.iters} runs")
    for name, (lo, med, hi) in stats.items():
        print(
            f"{name:>24}  ms {lo * 1e3:7.1f} / {med * 1e3:7.1f} / {hi * 1e3:7.1f}"
            f"   MiB/s {mib / lo:6.1f} / {mib / med:6.1f} / {mib / hi:6.1f}"
        )
    peer = stats["gostackparse"]
    for name in trees:
        ratio = " / ".join(f"{p / t:.2f}" for p, t in zip(peer, stats[name], strict=True))
        print(f"{name:>24}  x gostackparse (best / median / worst): {ratio}")
    print("1-minute load average at each round:", " ".join(f"{x:.2f}" for x in loads))


if __name__ == "__main__":
    main()
