#!/usr/bin/env python3
"""Measure roughly what each goroutine endpoint costs the process (docs/instrumenting.md).

    .venv/bin/python examples/instrumented/measure.py [N ...]
    GO=$(scripts/go-toolchain.sh 1.27.3) .venv/bin/python examples/instrumented/measure.py [N ...]

For each N, starts tests/goapps/many built with $GO (default: the machine's go; N goroutines
parked with stacks 20 frames deep, stdlib net/http/pprof on 127.0.0.1) and, for each of
goroutine?debug=0, 1 and 2 (and goroutineleak?debug=1 when that Go serves it), times the request
(median of 5) while a second thread polls the same process's /debug/pprof/cmdline (a
trivial handler) every millisecond: the longest cmdline response during the dump shows how
long the process stopped serving (a stopped world serves nothing).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from gobuild import build_goapp, go_version, run_goapp


def get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        n = len(r.read())
    return time.perf_counter() - t, n


def measure(base: str, path: str) -> tuple[float, float, int]:
    """(median request seconds, worst cmdline latency seconds during the requests, bytes)."""
    stop = threading.Event()
    worst = [0.0]

    def probe() -> None:
        while not stop.is_set():
            worst[0] = max(worst[0], get(base + "/debug/pprof/cmdline")[0])
            time.sleep(0.001)

    times = []
    size = 0
    th = threading.Thread(target=probe)
    th.start()
    try:
        for _ in range(5):
            dt, size = get(f"{base}/debug/pprof/{path}")
            times.append(dt)
    finally:
        stop.set()
        th.join()
    return statistics.median(times), worst[0], size


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
    go = os.environ.get("GO", "go")
    version = go_version(go)
    print(f"{version}, {os.cpu_count()} CPUs")
    print("goroutines  endpoint                  request ms  worst stall ms  bytes")
    paths = [f"goroutine?debug={d}" for d in (0, 1, 2)]
    if version >= "go1.27":
        paths.append("goroutineleak?debug=1")
    for n in counts:
        with run_goapp(build_goapp("many", go), "-n", str(n), "-depth", "20") as app:
            for path in paths:
                med, worst, size = measure(app.base_url, path)
                print(f"{n:>10}  {path:<22}  {med * 1000:>10.1f}  {worst * 1000:>14.1f}  {size}")


if __name__ == "__main__":
    main()
