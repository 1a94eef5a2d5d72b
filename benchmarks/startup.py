#!/usr/bin/env python3
"""Start-up time of the `grprof` command (issue 9): whole-process wall time.

    .venv/bin/python benchmarks/startup.py [--runs 20] [--src DIR] [--json OUT]

Runs `python -m grprof.cli ARGS > /dev/null` in a fresh process, N times per case (after one
warm-up that is not counted), and prints min / median / max wall seconds for:

- `help` (`grprof --help`), `version` (`grprof --version`);
- `analyze FIXTURE` of a 6-goroutine crash log from tests/fixtures (text report);
- Python's bytecode compiled once (into a `PYCACHE` prefix in the temp dir, so the tree timed
  is not written to) as it is for an installed package, whatever PYTHONDONTWRITEBYTECODE says;
- each with a warm cache (the user cache dir primed by the warm-up) and with an empty one
  (a new, empty `GRPROF_CACHE_DIR` for every run: what the first run after an install or an
  upgrade pays).

`--src DIR` puts DIR first on PYTHONPATH, to time another tree (e.g. `--src /path/to/main/src`
for the code before a change) with the same interpreter. Given several times (`--src after/src
--src before/src`), the trees are timed in turn, one run of each before the next run of any,
so that the machine's load falls on all of them alike; each tree has its own warm cache. The
load average at the start and the end is printed with the numbers. Nothing is asserted: it
reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE = REPO / "tests" / "fixtures" / "crash" / "go1.24.11" / "synctest-panic.all.txt"
PYCACHE = Path(tempfile.gettempdir()) / "grprof-startup-pycache"
CASES: dict[str, list[str]] = {
    "help": ["--help"],
    "version": ["--version"],
    "analyze": ["analyze", str(FIXTURE)],
}


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def environment(src: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    # Bytecode as an installed package has it: compiled once, by the warm-up, into a prefix
    # (the tree timed is not written to), whatever PYTHONDONTWRITEBYTECODE says here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def measure(args: list[str], runs: int, srcs: list[Path], cache: str, tmp: Path) -> list[list[float]]:
    """Wall seconds of `runs` runs per tree, the trees taking turns (after one warm-up each)."""
    argv = [sys.executable, "-m", "grprof.cli", *args]
    envs = [environment(src) for src in srcs]
    times: list[list[float]] = [[] for _ in srcs]
    for i in range(runs + 1):  # run 0: the warm-up (primes the warm cache)
        for k, env in enumerate(envs):
            if cache == "warm":
                # One warm cache per tree: a tree's entries would replace another's (one per file).
                env["GRPROF_CACHE_DIR"] = str(tmp / f"warm-{k}")
            else:
                env["GRPROF_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp, prefix="empty-")
            t = run_once(argv, env)
            if i:
                times[k].append(t)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    ap.add_argument(
        "--src",
        type=Path,
        action="append",
        help="a tree to time (default: ./src); repeat to time several in turn",
    )
    ap.add_argument("--json", type=Path, help="also write the numbers as JSON")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (repeatable)")
    opts = ap.parse_args()
    srcs = [s.resolve() for s in opts.src or [REPO / "src"]]
    load_before = os.getloadavg()
    results: dict[str, dict[str, dict[str, float]]] = {str(s): {} for s in srcs}
    print(f"python {sys.version.split()[0]}  runs {opts.runs}")
    for k, src in enumerate(srcs):
        print(f"  [{k}] {src}")
    print(f"{'case':<22} {'tree':>4} {'min':>7} {'median':>7} {'max':>7}   (seconds, whole process)")
    with tempfile.TemporaryDirectory(prefix="grprof-startup-") as tmp:
        for name in opts.case or CASES:
            for cache in ("warm", "empty"):
                per_tree = measure(CASES[name], opts.runs, srcs, cache, Path(tmp))
                for k, (src, times) in enumerate(zip(srcs, per_tree, strict=True)):
                    row = {"min": min(times), "median": statistics.median(times), "max": max(times)}
                    results[str(src)][f"{name} ({cache} cache)"] = row
                    label = f"{name} ({cache})"
                    print(f"{label:<22} {k:>4} {row['min']:7.3f} {row['median']:7.3f} {row['max']:7.3f}")
    load_after = os.getloadavg()
    fmt = "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}"
    print(fmt.format(*load_before, *load_after))
    if opts.json:
        opts.json.write_text(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
