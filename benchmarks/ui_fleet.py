#!/usr/bin/env python3
"""The fleet page (`GET /`) with a big store: server time of the UI's first page.

    .venv/bin/python benchmarks/ui_fleet.py [--targets 1000] [--hours 6 | --days 7] [--interval 15]
                                            [--db PATH | --db postgresql://... | --postgres]
                                            [--requests 20]

Fills a store with `--targets` targets and `--hours` of snapshots every `--interval`
seconds each (metadata rows written straight into the `snapshots` table with an empty group
blob: the fleet page reads only the time and the total), ~5% of them with a service label,
then times `GET /` and `GET /?sort=goroutines&page=3` in process (the UI app through
Starlette's TestClient: routing, store queries and template rendering, no network), and the
batched sparkline query alone. Reports median and p95 (goal: under 300 ms, issue 10).

`--days D`: D days of history in the shape the default retention leaves it
(`grprof.store.RetentionPolicy`): every `--interval` for the last `full_for` (24 h), one
snapshot per `downsample_every` (300 s, marked downsampled) before that. 7 days x 1,000
targets is 7.49 million rows. It also times the target page over 7 days (`?range=7d`).
`--postgres`: a throwaway PostgreSQL server started the way the tests start one
(tests/pgserver.py: initdb in a temporary directory, fsync off), filled with COPY, then
`ANALYZE`d (what autovacuum does to a table that grew), stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

import grprof
from grprof.collect.model import Target
from grprof.server.runtime import Runtime
from grprof.server.ui.routes import ui_app
from grprof.store import RetentionPolicy, codec
from grprof.store.schema import snapshots as S
from grprof.store.sql import SQLStore, target_id, transaction

GOAL_MS = 300.0
FIXTURE = Path(__file__).resolve().parent.parent / "tests/fixtures/states/go1.26.8/goroutine.debug1.txt"


def history(hours: float, days: float, interval: float, now: float) -> list[tuple[float, bool]]:
    """(time, downsampled) of one target's snapshots, oldest first: `hours` at `interval`, or
    `days` shaped by the default retention (full for `full_for`, then one per bucket)."""
    if not days:
        steps = int(hours * 3600 / interval)
        return [(now - (steps - j) * interval, False) for j in range(steps)]
    policy = RetentionPolicy()
    start, full_from = now - days * 86400, now - policy.full_for
    every = policy.downsample_every
    # Aligned buckets, the first snapshot of each kept (`grprof.store.retention.downsample`).
    old = [(b * every, True) for b in range(int(start // every) + 1, int(full_from // every) + 1)]
    steps = int(policy.full_for / interval)
    return old + [(now - (steps - j) * interval, False) for j in range(steps)]


def fill(store: SQLStore, targets: int, hours: float, days: float, interval: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    names = [f"svc-{i % 50:02d}/10.0.{i // 250}.{i % 250}:6060" for i in range(targets)]
    store.upsert_targets(
        [
            Target(n, f"http://{n.split('/')[1]}", {"service": f"svc-{i % 50:02d}"})
            for i, n in enumerate(names)
        ],
        None,
    )
    times = history(hours, days, interval, time.time())
    # The newest snapshot of each target has real groups (the target page decodes it).
    snap = grprof.load(FIXTURE)
    newest = codec.encode(snap, snap.groups())
    with transaction(store.engine, write=True) as conn:
        ids = [target_id(conn, n) for n in names]
    for k, tid in enumerate(ids):
        rows = [
            {
                "target_id": tid,
                "time": when,
                "format": "debug=1",
                "profile": "goroutine",
                "total": 100 + (k % 7) * j // 10 + j % 13,
                "group_count": 10,
                "truncated": False,
                "downsampled": down,
                "groups": newest if j == len(times) - 1 else b"",
            }
            for j, (when, down) in enumerate(times)
        ]
        if store.dialect == "postgresql":
            _copy(store, rows)
        else:
            with transaction(store.engine, write=True) as conn:
                conn.execute(S.insert(), rows)
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0, len(times) * len(ids)


def _copy(store: SQLStore, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY (psycopg 3): an INSERT of 7 million rows row by row takes hours."""
    cols = list(rows[0])
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f"COPY snapshots ({', '.join(cols)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
            for r in rows:
                cp.write_row([r[c] for c in cols])
        raw.commit()
    finally:
        raw.close()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server of tests/pgserver.py for the run; its URL."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pgserver import start_postgres

    with start_postgres() as pg:
        yield pg.url("postgresql")


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
    ap.add_argument("--days", type=float, default=0.0, help="history shaped by the default retention")
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--db", default="")
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server")
    ap.add_argument("--requests", type=int, default=20)
    a = ap.parse_args()
    with contextlib.ExitStack() as stack:
        db = a.db
        if not db and a.postgres:
            db = stack.enter_context(throwaway_postgres())
        elif not db:
            db = str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ui-fleet.db")
        store = SQLStore.open(db)
        stack.callback(store.close)
        took, n = fill(store, a.targets, a.hours, a.days, a.interval)
        span = f"{a.days:g} days (retention-shaped)" if a.days else f"{a.hours:g} h"
        print(f"{store.dialect}: {a.targets} targets x {span}, {n:,} snapshots filled in {took:.1f} s")
        names = [t.name for t in store.targets()][:100]
        with TestClient(ui_app(store, Runtime.create())) as c:
            timed(c, "/", 2)  # warm up: templates, connection pool, page cache
            show("GET /  (first page of 100)", timed(c, "/", a.requests))
            show("GET /?sort=goroutines&page=3", timed(c, "/?sort=goroutines&page=3", a.requests))
            show("GET /?label=service=svc-07", timed(c, "/?label=service%3Dsvc-07", a.requests))
            if a.days:
                path = f"/targets/{names[0]}?range=7d"
                timed(c, path, 2)
                show("GET /targets/NAME?range=7d", timed(c, path, a.requests))
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
        qs = []
        for _ in range(a.requests):
            t = time.perf_counter()
            store.goroutine_series(names, since, step=240)
            qs.append((time.perf_counter() - t) * 1000)
        show("goroutine_series(100 targets, 6 h, 240 s)", qs)


if __name__ == "__main__":
    main()
