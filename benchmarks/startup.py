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
for the code before a change) with the same interpreter. The load average at the start and
the end is printed with the numbers. Nothing is asserted: it reports.
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


def measure(args: list[str], runs: int, src: Path, cache: str, tmp: Path) -> list[float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    # Bytecode as an installed package has it: compiled once, by the warm-up, into a prefix
    # (the tree timed is not written to), whatever PYTHONDONTWRITEBYTECODE says here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    argv = [sys.executable, "-m", "grprof.cli", *args]
    warm_dir = tmp / "warm"
    times = []
    for i in range(runs + 1):  # run 0: the warm-up (primes the warm cache)
        if cache == "warm":
            env["GRPROF_CACHE_DIR"] = str(warm_dir)
        else:
            env["GRPROF_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp, prefix="empty-")
        t = run_once(argv, env)
        if i:
            times.append(t)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    ap.add_argument("--src", type=Path, default=REPO / "src", help="the tree to time (default: ./src)")
    ap.add_argument("--json", type=Path, help="also write the numbers as JSON")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (repeatable)")
    opts = ap.parse_args()
    load_before = os.getloadavg()
    results: dict[str, dict[str, float]] = {}
    print(f"src {opts.src.resolve()}  python {sys.version.split()[0]}  runs {opts.runs}")
    print(f"{'case':<22} {'min':>7} {'median':>7} {'max':>7}   (seconds, whole process)")
    with tempfile.TemporaryDirectory(prefix="grprof-startup-") as tmp:
        for name in opts.case or CASES:
            for cache in ("warm", "empty"):
                times = measure(CASES[name], opts.runs, opts.src.resolve(), cache, Path(tmp))
                row = {"min": min(times), "median": statistics.median(times), "max": max(times)}
                results[f"{name} ({cache} cache)"] = row
                label = f"{name} ({cache})"
                print(f"{label:<22} {row['min']:7.3f} {row['median']:7.3f} {row['max']:7.3f}")
    load_after = os.getloadavg()
    fmt = "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}"
    print(fmt.format(*load_before, *load_after))
    if opts.json:
        opts.json.write_text(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
