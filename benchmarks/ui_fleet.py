#!/usr/bin/env python3
"""The fleet page (`GET /`) with a big store: server time of the UI's first page.

    .venv/bin/python benchmarks/ui_fleet.py [--targets 1000] [--hours 6] [--interval 15]
                                            [--db PATH | --db postgresql://...] [--requests 20]

Fills a store with `--targets` targets and `--hours` of snapshots every `--interval`
seconds each (metadata rows written straight into the `snapshots` table with an empty group
blob: the fleet page reads only the time and the total), ~5% of them with a service label,
then times `GET /` and `GET /?sort=goroutines&page=3` in process (the UI app through
Starlette's TestClient: routing, store queries and template rendering, no network), and the
batched sparkline query alone. Reports median and p95 (goal: under 300 ms, issue 10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from grprof.collect.model import Target
from grprof.server.runtime import Runtime
from grprof.server.ui.routes import ui_app
from grprof.store.schema import snapshots as S
from grprof.store.sql import SQLStore, target_id, transaction

GOAL_MS = 300.0


def fill(store: SQLStore, targets: int, hours: float, interval: float) -> float:
    t0 = time.perf_counter()
    names = [f"svc-{i % 50:02d}/10.0.{i // 250}.{i % 250}:6060" for i in range(targets)]
    store.upsert_targets(
        [
            Target(n, f"http://{n.split('/')[1]}", {"service": f"svc-{i % 50:02d}"})
            for i, n in enumerate(names)
        ],
        None,
    )
    now = time.time()
    steps = int(hours * 3600 / interval)
    with transaction(store.engine, write=True) as conn:
        ids = [target_id(conn, n) for n in names]
    for k, tid in enumerate(ids):
        rows = [
            {
                "target_id": tid,
                "time": now - (steps - j) * interval,
                "format": "debug=1",
                "profile": "goroutine",
                "total": 100 + (k % 7) * j // 10 + j % 13,
                "group_count": 10,
                "truncated": False,
                "downsampled": False,
                "groups": b"",
            }
            for j in range(steps)
        ]
        with transaction(store.engine, write=True) as conn:
            conn.execute(S.insert(), rows)
    return time.perf_counter() - t0


def timed(client: TestClient, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


def show(label: str, ms: list[float]) -> None:
    s = sorted(ms)
    p95 = s[min(len(s) - 1, int(len(s) * 0.95))]
    ok = "meets" if p95 < GOAL_MS else "MISSES"
    print(f"{label:42s} median {statistics.median(s):7.1f} ms  p95 {p95:7.1f} ms  ({ok} {GOAL_MS:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--db", default="")
    ap.add_argument("--requests", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = a.db or str(Path(tmp) / "ui-fleet.db")
        store = SQLStore.open(db)
        try:
            took = fill(store, a.targets, a.hours, a.interval)
            n = a.targets * int(a.hours * 3600 / a.interval)
            print(f"{store.dialect}: {a.targets} targets, {n:,} snapshots filled in {took:.1f} s")
            with TestClient(ui_app(store, Runtime.create())) as c:
                timed(c, "/", 2)  # warm up: templates, connection pool, page cache
                show("GET /  (first page of 100)", timed(c, "/", a.requests))
                show("GET /?sort=goroutines&page=3", timed(c, "/?sort=goroutines&page=3", a.requests))
                show("GET /?label=service=svc-07", timed(c, "/?label=service%3Dsvc-07", a.requests))
            import datetime as dt

            names = [t.name for t in store.targets()][:100]
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
            qs = []
            for _ in range(a.requests):
                t = time.perf_counter()
                store.goroutine_series(names, since, step=240)
                qs.append((time.perf_counter() - t) * 1000)
            show("goroutine_series(100 targets, 6 h, 240 s)", qs)
        finally:
            store.close()


if __name__ == "__main__":
    main()
