"""A daemon's window keeps one copy of what a service shows again scrape after scrape: the
next snapshot of the same format takes the earlier one's equal groups and detection points
(`Window.add` -> `grprof.detect.series.carry_over`), and nothing it reads changes.

Recorded fixtures (tests/fixtures/zoo: a leak zoo's phases, go1.26.8), played as a scraped
target shows them.
"""

from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path

import grprof
from grprof.detect.series import snapshot_points
from grprof.model import Snapshot
from grprof.serving.window import Window

ZOO = Path(__file__).resolve().parent / "fixtures" / "zoo"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def scrape(name: str, i: int) -> Snapshot:
    snap = grprof.load((ZOO / name).read_bytes())
    snap.time = T0 + dt.timedelta(seconds=15 * i)
    return snap


def fields(s: Snapshot) -> list[tuple[object, ...]]:
    return [
        (
            g.signature,
            g.count,
            g.states,
            g.wait_minutes,
            g.labels,
            list(g.ids),
            list(g.orphans),
            dict(g.creators),
        )
        for g in s.groups()
    ]


def test_an_unchanged_scrape_keeps_the_earlier_groups_and_points() -> None:
    for fmt in ("debug0.pb.gz", "debug1.txt", "debug2.txt"):
        w = Window.empty()
        a, b, c = (scrape(f"0-warm-up.goroutine.{fmt}", i) for i in range(3))
        for s in (a, b, c):
            w.add(s)
            snapshot_points(s)  # as detection does after each scrape
        assert len(a.groups()) > 5, fmt
        assert all(x is y for x, y in zip(a.groups(), c.groups(), strict=True)), fmt
        pa, pc = snapshot_points(a), snapshot_points(c)
        assert pa.keys() == pc.keys() and all(pa[k] is pc[k] for k in pa), fmt
        # ... and they read as the scrape's own would: a fresh load groups the same.
        assert fields(c) == fields(scrape(f"0-warm-up.goroutine.{fmt}", 9)), fmt


def test_a_changed_group_is_the_new_scrapes_own_and_the_rest_are_shared() -> None:
    for fmt in ("debug0.pb.gz", "debug2.txt"):
        w = Window.empty()
        warm, leak = scrape(f"0-warm-up.goroutine.{fmt}", 0), scrape(f"1-leak-1.goroutine.{fmt}", 1)
        w.add(warm)
        snapshot_points(warm)
        w.add(leak)
        before = {g.signature: g for g in warm.groups()}
        shared = [g for g in leak.groups() if before.get(g.signature) is g]
        own = [g for g in leak.groups() if before.get(g.signature) is not g]
        # the leak phase grows some groups and starts others; the idle ones stay as they were
        assert shared and own, fmt
        assert all(g.signature not in before or before[g.signature] != g for g in own), fmt
        assert fields(leak) == fields(scrape(f"1-leak-1.goroutine.{fmt}", 5)), fmt
        points = snapshot_points(leak)
        fresh = snapshot_points(scrape(f"1-leak-1.goroutine.{fmt}", 6))
        assert {k: (p.count, p.leaked, p.max_wait, p.orphans) for k, p in points.items()} == {
            k: (p.count, p.leaked, p.max_wait, p.orphans) for k, p in fresh.items()
        }, fmt


def test_snapshots_of_other_formats_share_nothing() -> None:
    w = Window.empty()
    d0, d2 = scrape("0-warm-up.goroutine.debug0.pb.gz", 0), scrape("0-warm-up.goroutine.debug2.txt", 1)
    w.add(d0)
    snapshot_points(d0)
    w.add(d2)
    assert not {id(g) for g in d0.groups()} & {id(g) for g in d2.groups()}
    assert d2.groups()[0].ids  # the debug=2 scrape keeps its members


def test_a_scrape_that_differs_in_one_goroutine_is_grouped_on_its_own() -> None:
    """An unchanged scrape takes the earlier scrape's groups without grouping its own rows
    (`GoroutineTable.same_rows`); one goroutine's other id, wait or count must still make the
    scrape's own groups, as a fresh load groups them."""
    d2 = (ZOO / "0-warm-up.goroutine.debug2.txt").read_text()
    d1 = (ZOO / "0-warm-up.goroutine.debug1.txt").read_text()
    g23 = "goroutine 23 [IO wait]:"
    edits = {
        "an id": ("debug2.txt", d2.replace(g23, "goroutine 99923 [IO wait]:", 1)),
        "a wait": ("debug2.txt", d2.replace(g23, "goroutine 23 [IO wait, 7 minutes]:", 1)),
        "a count": ("debug1.txt", d1.replace("\n80 @ ", "\n81 @ ", 1).replace("total 310", "total 311", 1)),
    }
    for what, (fmt, text) in edits.items():
        assert text != (d2 if fmt == "debug2.txt" else d1), what
        w = Window.empty()
        a = scrape(f"0-warm-up.goroutine.{fmt}", 0)
        w.add(a)
        b = grprof.load(text.encode())
        b.time = T0 + dt.timedelta(seconds=15)
        w.add(b)
        assert not b.table.same_rows(a.table), what
        assert fields(b) != fields(a), what
        assert fields(b) == fields(grprof.load(text.encode())), what
        # ... and the same rows again are the same rows: the earlier groups, not regrouped.
        c = grprof.load(text.encode())
        c.time = T0 + dt.timedelta(seconds=30)
        w.add(c)
        assert c.table.same_rows(b.table), what
        assert all(x is y for x, y in zip(b.groups(), c.groups(), strict=True)), what


def test_detection_data_goes_with_its_snapshot() -> None:
    """`snapshot_data` keeps a snapshot's detection data by the snapshot's id: the entry must
    go when the snapshot does (a daemon drops a snapshot from each window at every scrape)."""
    from grprof.detect import series

    snaps = [scrape("0-warm-up.goroutine.debug1.txt", i) for i in range(5)]
    keys = [id(s) for s in snaps]
    for s in snaps:
        snapshot_points(s)
    assert all(k in series._DATA for k in keys)
    kept = snaps[2]
    del snaps, s
    gc.collect()
    assert [k in series._DATA for k in keys] == [False, False, True, False, False]
    assert series.snapshot_data(kept).points is not None  # the survivor's data is its own still
