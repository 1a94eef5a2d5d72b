"""The history store on SQLite and on a real PostgreSQL server, with recorded fixtures.

Every test runs on both databases (the `store` fixture). Snapshots are real dumps from
tests/fixtures; findings are what the detector finds on the recorded leak zoo.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from gobuild import build_goapp, fetch, run_goapp
from pgserver import PgServer

import grprof
from grprof.collect.model import Target
from grprof.detect.detector import Options, detect
from grprof.detect.model import Finding
from grprof.detect.series import track_id, track_key
from grprof.model import Group, Snapshot
from grprof.store import RetentionPolicy, ScrapeRecord, Store, StoredGroup, open_store
from grprof.store.schema import metadata
from grprof.store.sql import SQLStore, StoreError

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def dump_files() -> list[Path]:
    """Every recorded goroutine dump and profile: all Go versions, all formats, the zoo phases."""
    states = sorted(p for p in (FIXTURES / "states").glob("*/*") if p.name != "truth.json")
    zoo = sorted(p for p in ZOO.glob("*") if p.suffix != ".json")
    return states + zoo


def zoo_files(kind: str = "goroutine.debug1.txt") -> list[Path]:
    return sorted(ZOO.glob(f"*-*.{kind}"))


# -- fixtures --------------------------------------------------------------------------------


def open_db(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "grprof.db")
    pg: PgServer = request.getfixturevalue("postgres")
    return pg.create_database(f"t_{uuid.uuid4().hex[:16]}")  # postgres://...?sslmode=disable


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return open_db(request.param, tmp_path, request)


@pytest.fixture
def store(db_url: str) -> Iterator[SQLStore]:
    s = SQLStore.open(db_url)
    try:
        yield s
    finally:
        s.close()


def load_at(path: Path, time: dt.datetime | None) -> Snapshot:
    snap = grprof.load(path)
    snap.time = time
    return snap


def group_summary(g: Group) -> tuple[Any, ...]:
    return (
        g.signature,
        track_id(track_key(g)),
        g.count,
        g.state,
        g.states,
        g.max_wait_minutes,
        g.leaked,
        len(g.orphans),
        g.labels,
        tuple(g.frames),
        g.created_by,
    )


def stored_summary(g: StoredGroup) -> tuple[Any, ...]:
    labels = {k: dict(v) for k, v in g.labels.items()}
    fields = (g.signature, g.track, g.count, g.state, dict(g.states), g.max_wait_minutes, g.leaked)
    return (*fields, g.orphans, labels, tuple(g.frames), g.created_by)


def rebuilt_summary(g: Group) -> tuple[Any, ...]:
    """What a rebuilt snapshot keeps exactly (ids and orphans are not stored)."""
    return (
        g.signature,
        track_id(track_key(g)),
        g.count,
        g.states,
        g.wait_minutes,
        g.leaked,
        g.locked_to_thread,
        g.labels,
        g.frames,
        g.frames_elided,
        g.created_by,
    )


def scalar(store: SQLStore, sql: str) -> Any:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


# -- opening and migrations ------------------------------------------------------------------


def test_open_satisfies_the_protocol_and_migrates(db_url: str) -> None:
    store: Store = SQLStore.open(db_url)  # mypy checks SQLStore against the protocol here
    store.close()
    again = open_store(db_url)  # a second open finds the schema current: a no-op
    assert isinstance(again, SQLStore)
    try:
        assert scalar(again, "SELECT version_num FROM alembic_version") == "0002"
        assert scalar(again, "SELECT count(*) FROM alembic_version") == 1
        with again.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], "schema.py and the migrations disagree"
    finally:
        again.close()


def test_sqlite_settings(tmp_path: Path) -> None:
    store = SQLStore.open(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with store.engine.connect() as conn:
            pragma = {
                p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous")
            }
            pragma |= {
                p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("foreign_keys", "busy_timeout")
            }
            pragma["auto_vacuum"] = conn.exec_driver_sql("PRAGMA auto_vacuum").scalar()
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "busy_timeout": 30000,
            "auto_vacuum": 2,  # INCREMENTAL
        }
    finally:
        store.close()


def test_plain_path_is_sqlite(tmp_path: Path) -> None:
    store = SQLStore.open(str(tmp_path / "plain.db"))
    store.close()
    assert store.dialect == "sqlite"
    assert (tmp_path / "plain.db").is_file()


def test_postgresql_url_forms(postgres: PgServer) -> None:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name)
    for url in (
        postgres.url("postgres", name),
        postgres.url("postgresql", name),
        postgres.url("postgresql+psycopg", name),
    ):
        s = SQLStore.open(url)
        assert s.dialect == "postgresql"
        assert s.engine.dialect.driver == "psycopg"
        s.close()


def test_open_errors_are_one_line_and_hide_the_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        SQLStore.open("mysql://u@h/db")
    with pytest.raises(StoreError, match="in-memory"):
        SQLStore.open("sqlite://")
    with pytest.raises(StoreError) as e:
        SQLStore.open(str(tmp_path / "missing-dir" / "x.db"))
    assert "unable to open database file" in str(e.value)
    with pytest.raises(StoreError) as e:
        SQLStore.open("postgresql://bob:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret" not in str(e.value) and "\n" not in str(e.value)
    assert "bob:***@127.0.0.1:1/db" in str(e.value)


def test_replicas_migrate_a_fresh_postgresql_at_once(postgres: PgServer) -> None:
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:16]}")
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    stores: list[SQLStore] = []

    def replica() -> None:
        start.wait()
        try:
            stores.append(SQLStore.open(url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    try:
        assert scalar(stores[0], "SELECT count(*) FROM alembic_version") == 1
        sid = stores[0].add_snapshot("api", grprof.load(zoo_files()[0]))
        assert all(s.snapshot(sid) is not None for s in stores)
    finally:
        for s in stores:
            s.close()


# -- snapshots -------------------------------------------------------------------------------


def test_every_fixture_round_trips(store: SQLStore) -> None:
    for i, path in enumerate(dump_files()):
        snap = grprof.load(path)
        raw = path.read_bytes()
        target = f"t{i % 3}"
        sid = store.add_snapshot(target, snap, raw=raw if i % 2 == 0 else None)
        got = store.snapshot(sid)
        assert got is not None, path
        meta, groups = got
        expected_time = snap.time or snap.mtime
        assert (meta.id, meta.target, meta.time) == (sid, target, expected_time), path
        assert (meta.format, meta.profile, meta.total, meta.truncated) == (
            snap.format,
            snap.profile,
            snap.total,
            snap.truncated,
        )
        original = snap.groups()
        assert meta.groups == len(original)
        assert [stored_summary(g) for g in groups] == [group_summary(g) for g in original], path
        assert store.raw(sid) == (raw if i % 2 == 0 else None)
        assert meta.has_raw == (i % 2 == 0)
    assert store.snapshot(10**9) is None
    assert store.raw(10**9) is None


def test_blob_is_the_documented_document_with_frames_written_once_per_stack() -> None:
    import json
    import zlib

    from grprof.store import codec

    for path in dump_files():
        snap = grprof.load(path)
        groups = snap.groups()
        expected = {
            "v": codec.VERSION,
            "source": snap.source,
            "go_version": snap.go_version,
            "prologue": snap.prologue,
            "groups": [codec.group_doc(g) for g in groups],
        }
        first = codec.encode(snap, groups)  # frames' text cached by the tuples' identity
        again = codec.encode(snap, groups)  # ... and read back from the cache
        assert json.loads(zlib.decompress(first)) == expected, path
        assert again == first, path


def test_recent_texts_forget_keys_not_written_lately() -> None:
    """A target that went away must not keep its last snapshot's groups alive."""
    from grprof.store import codec

    snap = grprof.load(ZOO / "0-warm-up.goroutine.debug1.txt")
    texts = codec.RecentTexts(keep=8)
    texts.encode("gone", snap, snap.groups())
    for _ in range(7):
        texts.encode("live", snap, snap.groups())
    assert len(texts) == 2  # written within the last 8 calls: kept
    for _ in range(8):
        texts.encode("live", snap, snap.groups())
    assert len(texts) == 1
    blob = texts.encode("live", snap, snap.groups())
    assert blob == codec.encode(snap, snap.groups())
    # the same groups and snapshot fields again: the last blob itself, not a new one
    assert texts.encode("live", snap, snap.groups()) is blob
    snap.source = "elsewhere"
    again = texts.encode("live", snap, snap.groups())
    assert again is not blob and again == codec.encode(snap, snap.groups())


def test_snapshot_time_falls_back_to_now(store: SQLStore) -> None:
    snap = grprof.load(ZOO.joinpath("0-warm-up.goroutine.debug1.txt").read_bytes())  # bytes: no mtime
    assert snap.time is None and snap.mtime is None
    before = dt.datetime.now(dt.UTC)
    sid = store.add_snapshot("t", snap)
    got = store.snapshot(sid)
    assert got is not None
    assert before - dt.timedelta(seconds=1) <= got[0].time <= dt.datetime.now(dt.UTC)


def test_snapshots_lists_newest_first(store: SQLStore) -> None:
    files = zoo_files()
    ids = [
        store.add_snapshot("api", load_at(p, T0 + dt.timedelta(seconds=30 * i))) for i, p in enumerate(files)
    ]
    store.add_snapshot("other", load_at(files[0], T0))
    metas = store.snapshots("api")
    assert [m.id for m in metas] == ids[::-1]
    assert [m.time for m in metas] == [T0 + dt.timedelta(seconds=30 * i) for i in reversed(range(len(files)))]
    assert [m.id for m in store.snapshots("api", limit=2)] == ids[:-3:-1]
    before = T0 + dt.timedelta(seconds=60)
    assert [m.id for m in store.snapshots("api", before=before)] == [ids[1], ids[0]]
    assert store.snapshots("nobody") == []


def test_goroutine_series_batches_targets(store: SQLStore) -> None:
    files = zoo_files()
    for i, p in enumerate(files):
        store.add_snapshot("api", load_at(p, T0 + dt.timedelta(seconds=30 * i)))
        store.add_snapshot("web", load_at(p, T0 + dt.timedelta(seconds=30 * i + 5)))
    store.add_snapshot("old", load_at(files[0], T0 - dt.timedelta(hours=1)))
    want = {name: [(m.time, m.total) for m in reversed(store.snapshots(name))] for name in ("api", "web")}
    assert store.goroutine_series(["api", "web", "nobody"], T0) == want
    assert store.goroutine_series(None, T0) == want  # every target; "old" is before `since`
    assert store.goroutine_series([], T0) == {}
    later = T0 + dt.timedelta(seconds=60)
    assert store.goroutine_series(["api"], later) == {"api": [p for p in want["api"] if p[0] >= later]}
    # Bucketed: one point per step, the largest total at the bucket's latest time.
    got = store.goroutine_series(["api"], T0, step=3600)["api"]
    assert len(got) <= 2 and max(n for _, n in got) == max(n for _, n in want["api"])
    assert got[-1][0] == want["api"][-1][0]
    many = [f"t{i}" for i in range(1203)]  # more names than one IN list
    assert store.goroutine_series([*many, "api"], T0) == {"api": want["api"]}
    # A goroutineleak profile counts the leaked goroutines only: not a point of the series.
    leaks = sorted(ZOO.glob("*.goroutineleak.debug1.txt"))
    store.add_snapshot("api", load_at(leaks[0], T0 + dt.timedelta(seconds=31)))
    assert store.snapshots("api", limit=1000)[0].profile == "goroutine"
    assert any(m.profile == "goroutineleak" for m in store.snapshots("api", limit=1000))
    assert store.goroutine_series(["api"], T0) == {"api": want["api"]}


@pytest.mark.parametrize("path", dump_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rebuilt_snapshot_keeps_groups_tracks_and_counts(tmp_path: Path, path: Path) -> None:
    """The property the detector relies on, for every recorded fixture (SQLite: the codec is
    the same on both databases; test_rebuilt_snapshots_on_both covers PostgreSQL)."""
    store = SQLStore.open(str(tmp_path / "r.db"))
    try:
        snap = grprof.load(path)
        store.add_snapshot("t", snap)
        (rebuilt,) = store.recent_snapshots("t", 5)
    finally:
        store.close()
    assert (rebuilt.format, rebuilt.profile, rebuilt.truncated) == (snap.format, snap.profile, snap.truncated)
    assert rebuilt.time == (snap.time or snap.mtime)
    assert rebuilt.go_version == snap.go_version
    assert rebuilt.total == snap.total
    original = snap.groups()
    again = rebuilt.groups()
    assert [rebuilt_summary(g) for g in again] == [rebuilt_summary(g) for g in original]
    assert all(not g.ids and not g.orphans for g in again)  # documented loss


def test_rebuilt_snapshots_on_both(store: SQLStore) -> None:
    files = [*zoo_files("goroutine.debug2.txt"), *zoo_files("goroutine.debug0.pb.gz")]
    snaps = [load_at(p, T0 + dt.timedelta(seconds=i)) for i, p in enumerate(files)]
    for s in snaps:
        store.add_snapshot("z", s)
    rebuilt = store.recent_snapshots("z", 4)
    assert [r.time for r in rebuilt] == [s.time for s in snaps[-4:]]  # the latest, oldest first
    for r, s in zip(rebuilt, snaps[-4:], strict=True):
        assert [rebuilt_summary(g) for g in r.groups()] == [rebuilt_summary(g) for g in s.groups()]
    assert store.recent_snapshots("nobody", 3) == []


def zoo_series(times: bool, leak_profiles: bool = False) -> list[Snapshot]:
    snaps = [
        load_at(p, T0 + dt.timedelta(seconds=30 * i) if times else None) for i, p in enumerate(zoo_files())
    ]
    if leak_profiles:
        leaks = zoo_files("goroutineleak.debug1.txt")
        snaps += [
            load_at(p, T0 + dt.timedelta(seconds=30 * i + 1) if times else None) for i, p in enumerate(leaks)
        ]
    return snaps


def finding_keys(findings: Sequence[Finding]) -> list[tuple[Any, ...]]:
    return [(f.id, f.verdict, f.category, tuple(f.counts), f.count, f.runtime_confirmed) for f in findings]


@pytest.mark.parametrize("leak_profiles", [False, True], ids=["debug1", "debug1+goroutineleak"])
def test_detection_on_rebuilt_zoo_series_is_unchanged(store: SQLStore, leak_profiles: bool) -> None:
    expected = detect(zoo_series(times=False, leak_profiles=leak_profiles), Options(interval=30)).findings
    assert any(f.verdict == "leak" for f in expected)
    for s in zoo_series(times=True, leak_profiles=leak_profiles):  # stamped as a poller would
        store.add_snapshot("zoo", s)
    rebuilt = store.recent_snapshots("zoo", 100)
    got = detect(rebuilt, Options(interval=30)).findings
    assert finding_keys(got) == finding_keys(expected)
    assert [f.to_json() for f in got] == [f.to_json() for f in expected]


# -- findings --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo_findings() -> list[Finding]:
    found = detect(zoo_series(times=False), Options(interval=30)).findings
    assert len({f.category for f in found}) >= 3 and len({f.verdict for f in found}) == 2
    return found


def states(store: SQLStore, target: str = "zoo") -> dict[str, str]:
    return {f.id: f.state for f in store.findings(target=target)}


def test_finding_lifecycle(store: SQLStore, zoo_findings: list[Finding]) -> None:
    a, b, c = zoo_findings[:3]
    t = [T0 + dt.timedelta(minutes=i) for i in range(6)]

    first = store.sync_findings("zoo", [a, b, a], t[0])  # a duplicate id counts once
    assert [(f.id, f.state) for f in first] == [(a.id, "new"), (b.id, "new")]
    assert states(store) == {a.id: "new", b.id: "new"}

    second = store.sync_findings("zoo", [a, c], t[1])
    assert [(f.id, f.state) for f in second] == [(a.id, "ongoing"), (c.id, "new"), (b.id, "resolved")]
    resolved = {f.id: f for f in second}[b.id]
    assert (resolved.first_seen, resolved.last_seen, resolved.resolved_at) == (t[0], t[0], t[1])

    third = {f.id: f for f in store.sync_findings("zoo", [a, b, c], t[2])}
    assert {k: f.state for k, f in third.items()} == {a.id: "ongoing", b.id: "new", c.id: "ongoing"}
    reopened = third[b.id]  # a resolved finding that comes back is a new episode
    assert (reopened.first_seen, reopened.last_seen, reopened.resolved_at) == (t[2], t[2], None)
    assert (third[a.id].first_seen, third[a.id].last_seen) == (t[0], t[2])

    assert store.sync_findings("other", [a], t[3])[0].state == "new"  # deduplicated per target
    fourth = store.sync_findings("zoo", [], t[4])
    assert {f.id: f.state for f in fourth} == {a.id: "resolved", b.id: "resolved", c.id: "resolved"}
    assert store.sync_findings("zoo", [], t[5]) == []  # nothing open, nothing changes
    assert all(f.resolved_at == t[4] for f in store.findings(target="zoo"))
    assert states(store, "other") == {a.id: "new"}


def test_a_scrape_its_snapshot_and_its_findings_in_one_transaction(
    store: SQLStore, zoo_findings: list[Finding]
) -> None:
    """What `grprof serve` does after each scrape: `add_scrape(..., findings)` records the
    findings as `sync_findings` at the scrape's start would, with the scrape and snapshot."""
    a, b, c = zoo_findings[:3]
    snap = load_at(zoo_files()[0], T0)
    t = [T0 + dt.timedelta(minutes=i) for i in range(3)]
    sid = store.add_scrape(ScrapeRecord("zoo", "debug=1", t[0], 0.01, "ok", 10), snap, None, [a, b, a])
    assert sid is not None and store.snapshot(sid) is not None
    assert states(store) == {a.id: "new", b.id: "new"}
    store.add_scrape(ScrapeRecord("zoo", "debug=1", t[1], 0.01, "ok", 10), snap, None, [a, c])
    got = {f.id: f for f in store.findings(target="zoo")}
    assert {k: f.state for k, f in got.items()} == {a.id: "ongoing", b.id: "resolved", c.id: "new"}
    assert (got[a.id].first_seen, got[a.id].last_seen, got[b.id].resolved_at) == (t[0], t[1], t[1])
    # without findings (a failed scrape, or a caller that syncs apart) they stay as they were
    store.add_scrape(ScrapeRecord("zoo", "debug=1", t[2], 5.0, "timeout"))
    assert states(store) == {a.id: "ongoing", b.id: "resolved", c.id: "new"}
    assert scalar(store, "SELECT count(*) FROM scrapes") == 3


def test_queued_scrapes_of_many_threads_are_stored_and_read_in_order(
    store: SQLStore, zoo_findings: list[Finding]
) -> None:
    """The daemon's writes (`wait=False`, committed in batches by the store's writer thread)
    from worker threads at once, with reads among them: each read sees every write queued
    before it; in the end every scrape, snapshot and finding is there, each target's in order."""
    files = zoo_files()[:3]
    totals = [grprof.load(p).total for p in files]
    a, b = zoo_findings[:2]
    rounds = 12
    seen_by_reads: list[int] = []

    def scrapes(worker: int) -> None:
        name = f"w{worker}"
        for r in range(rounds):
            when = T0 + dt.timedelta(seconds=15 * r)
            snap = load_at(files[(worker + r) % len(files)], when)
            findings = [a, b] if r % 2 == 0 else [a]
            store.add_scrape(
                ScrapeRecord(name, "debug=1", when, 0.01, "ok", 10), snap, None, findings, wait=False
            )
            if r % 4 == 3:
                # a read after this thread's own queued writes sees all of them
                seen_by_reads.append(len(store.snapshots(name)) - (r + 1))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(scrapes, range(4)))
    assert seen_by_reads and set(seen_by_reads) == {0}
    for worker in range(4):
        metas = store.snapshots(f"w{worker}", limit=100)
        assert [m.time for m in reversed(metas)] == [T0 + dt.timedelta(seconds=15 * r) for r in range(rounds)]
        assert [m.total for m in reversed(metas)] == [totals[(worker + r) % 3] for r in range(rounds)]
        got = {f.id: f for f in store.findings(target=f"w{worker}")}
        last = T0 + dt.timedelta(seconds=15 * (rounds - 1))
        assert (got[a.id].state, got[a.id].last_seen) == ("ongoing", last)
        assert got[b.id].state == "resolved"  # seen at even rounds, gone at the last (odd) one
    assert scalar(store, "SELECT count(*) FROM scrapes") == 4 * rounds


def test_findings_filters_and_json(store: SQLStore, zoo_findings: list[Finding]) -> None:
    now = T0
    store.sync_findings("zoo", zoo_findings, now)
    store.sync_findings("zoo", zoo_findings[1:], now + dt.timedelta(minutes=1))
    store.sync_findings("api", zoo_findings[:2], now)
    every = store.findings()
    assert len(every) == len(zoo_findings) + 2
    for verdict in ("leak", "suspect"):
        want = {f.id for f in zoo_findings if f.verdict == verdict}
        assert {f.id for f in store.findings(target="zoo", verdict=verdict)} == want
    for cat in {f.category for f in zoo_findings}:
        want = {f.id for f in zoo_findings if f.category == cat}
        assert {f.id for f in store.findings(target="zoo", category=cat)} == want
    assert [f.id for f in store.findings(state="resolved")] == [zoo_findings[0].id]
    assert {f.target for f in store.findings(state="new")} == {"api"}
    assert store.findings(target="nobody") == []
    assert every[-1].state == "resolved"  # open ones first

    doc = store.findings(target="api")[0].to_json()
    original = next(f for f in zoo_findings if f.id == doc["id"]).to_json()
    # The `grprof analyze --json` schema, plus target and lifecycle.
    assert {k: doc[k] for k in original} == original
    assert (doc["target"], doc["lifecycle"], doc["first_seen"]) == ("api", "new", "2026-01-01T00:00:00Z")


# -- targets and scrapes ---------------------------------------------------------------------


def test_targets_shards_and_scrapes(store: SQLStore) -> None:
    a, b, c = (Target(n, f"http://127.0.0.1:{9000 + i}", {"team": n}) for i, n in enumerate("abc"))
    store.upsert_targets([a, b], "0/2")
    store.upsert_targets([c], "1/2")
    assert [(t.name, t.shard, t.removed, dict(t.labels)) for t in store.targets()] == [
        ("a", "0/2", False, {"team": "a"}),
        ("b", "0/2", False, {"team": "b"}),
        ("c", "1/2", False, {"team": "c"}),
    ]
    store.upsert_targets([a], "0/2")  # b left replica 0's configuration; c is replica 1's
    assert {t.name: t.removed for t in store.targets()} == {"a": False, "b": True, "c": False}
    store.upsert_targets([b, c], "1/2")  # b moved to replica 1: back, with its new owner
    assert {t.name: (t.shard, t.removed) for t in store.targets()} == {
        "a": ("0/2", False),
        "b": ("1/2", False),
        "c": ("1/2", False),
    }

    t1, t2 = T0, T0 + dt.timedelta(seconds=15)
    store.record_scrape(ScrapeRecord("a", "debug=1", t1, 0.02, "ok", bytes=1234))
    store.record_scrape(ScrapeRecord("a", "goroutineleak", t2, 0.01, "not_found", error="404"))
    a_now = {t.name: t for t in store.targets()}["a"]
    assert (a_now.up, a_now.last_scrape, a_now.last_success, a_now.last_error) == (True, t2, t1, "")
    store.record_scrape(ScrapeRecord("a", "debug=1", t2, 5.0, "timeout", error="timed out after 5s"))
    a_now = {t.name: t for t in store.targets()}["a"]
    assert (a_now.up, a_now.last_scrape, a_now.last_success, a_now.last_error) == (
        False,
        t2,
        t1,
        "timed out after 5s",
    )
    assert scalar(store, "SELECT count(*) FROM scrapes") == 3

    store.add_snapshot("a", load_at(ZOO / "1-leak-1.goroutine.debug1.txt", t1))
    store.add_snapshot("a", load_at(ZOO / "2-leak-2.goroutine.debug1.txt", t2))
    leak = load_at(ZOO / "2-leak-2.goroutineleak.debug1.txt", t2 + dt.timedelta(seconds=1))
    store.add_snapshot("a", leak)  # not a goroutine count
    finding = detect(zoo_series(times=False), Options(interval=30)).findings[0]
    store.sync_findings("a", [finding], t2)
    by_name = {t.name: t for t in store.targets()}
    assert (by_name["a"].goroutines, by_name["a"].open_findings) == (423, 1)
    assert (by_name["b"].goroutines, by_name["b"].open_findings) == (None, 0)


def test_unsharded_replica_keeps_its_own_targets(store: SQLStore) -> None:
    store.upsert_targets([Target("x", "http://x"), Target("y", "http://y")], None)
    store.upsert_targets([Target("y", "http://y2")], None)
    got = {t.name: (t.url, t.removed, t.shard) for t in store.targets()}
    assert got == {"x": ("http://x", True, None), "y": ("http://y2", False, None)}


# -- label search ----------------------------------------------------------------------------


def test_search_labels(store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    files = zoo_files()
    ids = [
        store.add_snapshot("zoo", load_at(p, T0 + dt.timedelta(seconds=30 * i))) for i, p in enumerate(files)
    ]
    hits = store.search_labels("handler", "/leak/chan-nil")
    assert hits, "the zoo labels its leak handlers' goroutines"
    snaps = [grprof.load(p) for p in files]
    expected = [
        (sid, g.signature, g.labels["handler"]["/leak/chan-nil"])
        for sid, s in reversed(list(zip(ids, snaps, strict=True)))
        for g in sorted(s.groups(), key=lambda g: g.signature)
        if "/leak/chan-nil" in g.labels.get("handler", {})
    ]
    assert [(m.id, g.signature, g.labels["handler"]["/leak/chan-nil"]) for m, g in hits] == expected
    assert [m.time for m, _ in hits] == sorted((m.time for m, _ in hits), reverse=True)
    assert len(store.search_labels("handler", "/leak/chan-nil", limit=2)) == 2
    assert store.search_labels("handler", "/no/such/handler") == []
    assert store.search_labels("no-such-key", "/leak/chan-nil") == []
    # Without a key: the value under any key, the same groups in the same order.
    assert [(m.id, g.signature) for m, g in store.search_labels(None, "/leak/chan-nil")] == [
        (m.id, g.signature) for m, g in hits
    ]
    assert store.search_labels(None, "/no/such/handler") == []
    # Past MAX_SEARCH_KEYS label keys the value column is scanned: the same answer.
    from grprof.store import sql as sql_store

    monkeypatch.setattr(sql_store, "MAX_SEARCH_KEYS", 0)
    assert [(m.id, g.signature) for m, g in store.search_labels(None, "/leak/chan-nil")] == [
        (m.id, g.signature) for m, g in hits
    ]


# -- retention -------------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
POLICY = RetentionPolicy(raw_for=3600, raw_budget=0, full_for=86400, downsample_every=300, max_age=7 * 86400)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def bucket_start(t: dt.datetime, every: float = 300) -> dt.datetime:
    return dt.datetime.fromtimestamp(t.timestamp() // every * every, dt.UTC)


def test_retention(store: SQLStore) -> None:
    path = ZOO / "1-leak-1.goroutine.debug1.txt"
    raw = path.read_bytes()

    def add(t: dt.datetime, *, with_raw: bool = False, file: Path = path) -> int:
        return store.add_snapshot("zoo", load_at(file, t), raw=raw if with_raw else None)

    ancient = add(ago(8 * 86400), with_raw=True)
    b = bucket_start(ago(2 * 86400))
    old = [add(b + dt.timedelta(seconds=60 * k)) for k in range(10)]  # two 300 s buckets
    leak = add(b + dt.timedelta(seconds=61), file=ZOO / "1-leak-1.goroutineleak.debug1.txt")
    stale_raw = [add(ago(7200 + k), with_raw=True) for k in range(2)]
    fresh_raw = [add(ago(600 - 60 * k), with_raw=True) for k in range(3)]
    store.record_scrape(ScrapeRecord("zoo", "debug=1", ago(8 * 86400), 0.1, "ok"))
    store.record_scrape(ScrapeRecord("zoo", "debug=1", ago(3600), 0.1, "ok"))
    findings = detect(zoo_series(times=False), Options(interval=30)).findings[:3]
    store.sync_findings("zoo", findings[:2], ago(9 * 86400))
    store.sync_findings("zoo", findings[1:2], ago(8 * 86400))  # findings[0] resolved 8 days ago
    store.sync_findings("zoo", findings[2:], ago(86400))  # findings[1] resolved a day ago

    policy = dataclasses.replace(POLICY, raw_budget=2 * len(raw))
    counts = store.apply_retention(policy, NOW)
    assert counts == {
        "snapshots_deleted": 1,
        "scrapes_deleted": 1,
        "findings_deleted": 1,
        "events_deleted": 0,
        "downsampled": 8,
        "raw_expired": 2,
        "raw_over_budget": 1,
    }
    left = {m.id: m for m in store.snapshots("zoo", limit=1000)}
    assert set(left) == {old[0], old[5], leak, *stale_raw, *fresh_raw}
    assert [left[i].downsampled for i in (old[0], old[5], leak)] == [True, True, True]
    assert not any(left[i].downsampled for i in (*stale_raw, *fresh_raw))
    assert [store.raw(i) is not None for i in fresh_raw] == [False, True, True]  # oldest over budget
    assert all(store.raw(i) is None for i in (*stale_raw, ancient))
    assert store.snapshot(ancient) is None and store.snapshot(old[1]) is None
    assert (
        scalar(store, "SELECT count(*) FROM labels WHERE snapshot_id NOT IN (SELECT id FROM snapshots)") == 0
    )
    assert scalar(store, "SELECT count(*) FROM raws WHERE snapshot_id NOT IN (SELECT id FROM snapshots)") == 0
    # Every snapshot left holds chan-nil goroutines (the leak profile lists them too).
    assert {m.id for m, _ in store.search_labels("handler", "/leak/chan-nil", limit=1000)} == set(left)
    assert scalar(store, "SELECT count(*) FROM scrapes") == 1
    assert states(store) == {findings[1].id: "resolved", findings[2].id: "new"}

    assert set(store.apply_retention(policy, NOW).values()) == {0}  # idempotent


def test_downsampling_keeps_the_first_of_a_bucket_across_calls(store: SQLStore) -> None:
    b = bucket_start(ago(3 * 86400))
    ids = [
        store.add_snapshot(
            "zoo", load_at(ZOO / "0-warm-up.goroutine.debug1.txt", b + dt.timedelta(seconds=s))
        )
        for s in (0, 100, 200)
    ]
    policy = dataclasses.replace(POLICY, raw_budget=1 << 30, max_age=30 * 86400)
    # First call: the cutoff falls inside the bucket, between the second and third snapshot.
    first = store.apply_retention(policy, b + dt.timedelta(seconds=86400 + 150))
    assert first["downsampled"] == 1
    assert [m.id for m in store.snapshots("zoo")] == [ids[2], ids[0]]
    second = store.apply_retention(policy, b + dt.timedelta(seconds=86400 + 1000))
    assert second["downsampled"] == 1  # the bucket already has its first snapshot
    assert [(m.id, m.downsampled) for m in store.snapshots("zoo")] == [(ids[0], True)]


def test_sqlite_file_shrinks_after_retention(tmp_path: Path) -> None:
    path = tmp_path / "shrink.db"
    store = SQLStore.open(str(path))
    try:
        dump = ZOO / "4-leak-4.goroutine.debug2.txt"
        for i in range(100):
            store.add_snapshot("zoo", load_at(dump, ago(30 * 86400 - i)), raw=dump.read_bytes())

        def size() -> int:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return path.stat().st_size

        full = size()
        assert full > 100 * len(dump.read_bytes())
        assert store.apply_retention(POLICY, NOW)["snapshots_deleted"] == 100
        assert size() < full // 20
    finally:
        store.close()


# -- concurrency -----------------------------------------------------------------------------


def test_writers_and_readers_at_once(db_url: str) -> None:
    """Two stores on one database (two replicas, or a restarted process beside the old one)
    write while readers list, search and rebuild: no lock errors, nothing lost."""
    stores = [SQLStore.open(db_url), SQLStore.open(db_url)]
    files = zoo_files()
    snaps = [load_at(p, T0 + dt.timedelta(seconds=i)) for i, p in enumerate(files)]
    errors: list[BaseException] = []
    written: list[int] = []
    stop = threading.Event()

    def writer(s: SQLStore, n: int) -> None:
        try:
            for i in range(12):
                written.append(s.add_snapshot(f"w{n}", snaps[i % len(snaps)], raw=b"x" * 1000))
                s.record_scrape(ScrapeRecord(f"w{n}", "debug=1", T0, 0.1, "ok"))
                s.sync_findings(f"w{n}", [], T0)
        except BaseException as e:
            errors.append(e)

    def reader(s: SQLStore) -> None:
        try:
            while not stop.is_set():
                s.targets()
                for m in s.snapshots("w0", limit=5):
                    assert s.snapshot(m.id) is not None
                s.search_labels("handler", "/leak/chan-nil", limit=5)
                s.recent_snapshots("w1", 3)
        except BaseException as e:
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(stores[n % 2], n)) for n in range(4)]
    readers = [threading.Thread(target=reader, args=(s,)) for s in stores]
    for t in (*writers, *readers):
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    try:
        assert errors == []
        assert len(set(written)) == 48
        assert sum(len(stores[0].snapshots(f"w{n}")) for n in range(4)) == 48
    finally:
        for s in stores:
            s.close()


def test_add_scrape_records_the_scrape_and_its_snapshot_together(store: SQLStore) -> None:
    store.upsert_targets([Target("a", "http://127.0.0.1:9000", {})], None)
    t1, t2 = T0, T0 + dt.timedelta(seconds=15)
    snap = load_at(ZOO / "1-leak-1.goroutine.debug1.txt", t1)
    sid = store.add_scrape(ScrapeRecord("a", "debug=1", t1, 0.02, "ok", bytes=1234), snap)
    assert sid is not None
    [meta] = store.snapshots("a")
    assert (meta.id, meta.total) == (sid, snap.total)
    a = {t.name: t for t in store.targets()}["a"]
    assert (a.up, a.last_success, a.goroutines) == (True, t1, snap.total)
    failed = ScrapeRecord("a", "debug=1", t2, 5.0, "timeout", error="timed out after 5s")
    assert store.add_scrape(failed) is None  # a failed scrape: recorded, no snapshot
    a = {t.name: t for t in store.targets()}["a"]
    assert (a.up, a.last_scrape, a.last_error) == (False, t2, "timed out after 5s")
    assert scalar(store, "SELECT count(*) FROM scrapes") == 2
    assert len(store.snapshots("a")) == 1


def test_a_daemons_scrapes_store_what_a_fresh_encoding_stores(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add_scrape` reuses the JSON of groups a window carried over from the target's previous
    snapshot (`codec.encode`): what it stores is what encoding each snapshot alone stores,
    when groups are shared, when one changed, across formats and across targets."""
    from grprof.serving.window import Window
    from grprof.store import codec

    encoded: list[str] = []
    head = codec._group_head
    monkeypatch.setattr(codec, "_group_head", lambda g: encoded.append(g.signature) or head(g))
    phases = ["0-warm-up", "0-warm-up", "1-leak-1", "1-leak-1", "0-warm-up"]
    windows = {"a": Window.empty(), "b": Window.empty()}
    i = 0
    for n, phase in enumerate(phases):
        for fmt, kind in (("debug0.pb.gz", "debug=0"), ("debug2.txt", "debug=2")):
            for name, w in windows.items():
                t = T0 + dt.timedelta(seconds=15 * i)
                i += 1
                snap = load_at(ZOO / f"{phase}.goroutine.{fmt}", t)
                w.add(snap)  # shares the unchanged groups of the previous same-format snapshot
                encoded.clear()
                sid = store.add_scrape(ScrapeRecord(name, kind, t, 0.01, "ok", 10), snap)
                assert sid is not None
                # a repeated phase is all shared groups: nothing encoded again; a new one is
                changed = n == 0 or phases[n - 1] != phase
                assert bool(encoded) == changed, (phase, fmt, name)
                _, stored = store.snapshot(sid) or (None, [])
                fresh = codec.decode(codec.encode(snap, snap.groups()))["groups"]
                assert [stored_summary(g) for g in stored] == [
                    stored_summary(codec.stored_group(g)) for g in fresh
                ], (phase, fmt, name)
    assert len(store._texts) == 4  # one snapshot's texts per target and format


def test_sync_findings_without_report_records_the_same(store: SQLStore, zoo_findings: list[Finding]) -> None:
    a, b = zoo_findings[:2]
    assert store.sync_findings("zoo", [a, b], T0, report=False) == []
    assert states(store) == {a.id: "new", b.id: "new"}
    store.sync_findings("zoo", [a], T0 + dt.timedelta(minutes=1), report=False)
    assert states(store) == {a.id: "ongoing", b.id: "resolved"}


# -- events: config reloads and deploys (migration 0002) -------------------------------------


def alembic_config(store: SQLStore) -> Any:
    from alembic.config import Config

    from grprof.store.engine import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_migration_0002_keeps_snapshots_and_downgrades(db_url: str) -> None:
    """A store written at 0001 (a snapshot with its raw bytes and labels) upgrades in place:
    the rows stay (no copy of `snapshots`: on SQLite that would cascade to raws and labels),
    their build is NULL, `events` is there; and the downgrade removes both again."""
    from alembic import command

    store = SQLStore.open(db_url)
    cfg = alembic_config(store)
    try:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert scalar(store, "SELECT version_num FROM alembic_version") == "0001"
        # At 0001 the store's own insert would write `build`: insert the 0001 columns by hand.
        with store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO targets (name, url, labels) VALUES ('old', '', '{}')")
            tid = conn.exec_driver_sql("SELECT id FROM targets WHERE name = 'old'").scalar()
            conn.exec_driver_sql(
                "INSERT INTO snapshots (target_id, time, format, profile, total, group_count, truncated,"
                f" downsampled, groups) VALUES ({tid}, 1.0, 'debug=2', 'goroutine', 3, 1, false, false, '')"
            )
            sid = conn.exec_driver_sql("SELECT id FROM snapshots").scalar()
            conn.exec_driver_sql(
                f"INSERT INTO raws (snapshot_id, time, size, data) VALUES ({sid}, 1.0, 1, '')"
            )
            conn.exec_driver_sql(
                "INSERT INTO labels (snapshot_id, signature, key, value, count, time)"
                f" VALUES ({sid}, 's', 'k', 'v', 1, 1.0)"
            )
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert scalar(store, "SELECT version_num FROM alembic_version") == "0002"
        assert scalar(store, "SELECT count(*) FROM raws") == 1
        assert scalar(store, "SELECT count(*) FROM labels") == 1
        assert scalar(store, f"SELECT count(*) FROM snapshots WHERE id = {sid} AND build IS NULL") == 1
        assert scalar(store, "SELECT count(*) FROM events") == 0
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        # A new snapshot after the upgrade: its build is kept, no deploy against the NULL one.
        store.add_snapshot("old", stamped(STATES_DUMP, T0, "1.26.8"))
        assert scalar(store, "SELECT count(*) FROM snapshots WHERE build IS NOT NULL") == 1
        assert store.events("old", T0 - dt.timedelta(days=3650), T0 + dt.timedelta(days=3650)) == []
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        kinds = {d[0] for d in diff if not isinstance(d, list)}
        assert kinds == {"add_table", "add_index", "add_column"}, diff
        assert any(d[0] == "add_table" and d[1].name == "events" for d in diff)
        assert scalar(store, "SELECT count(*) FROM snapshots") == 2
    finally:
        store.close()


STATES_DUMP = FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt"


def stamped(path: Path, when: dt.datetime, go: str | None, build_id: str | None = None) -> Snapshot:
    from grprof.model import Origin

    snap = grprof.load(path)
    snap.time = when
    snap.go_version = go
    snap.origin = Origin(build_id=build_id) if build_id else None
    return snap


def test_deploys_are_found_when_snapshots_are_stored(store: SQLStore, db_url: str) -> None:
    """Each snapshot keeps its build identity; a changed Go version or build id between a
    target's consecutive snapshots is a `deploy` event. An inferred version (`>=1.21`, `1.19`)
    is no identity, and what only one side knows is not compared (a debug=1 scrape has no
    build id)."""
    path = STATES_DUMP
    at = [T0 + dt.timedelta(minutes=i) for i in range(9)]
    store.add_snapshot("svc", stamped(path, at[0], "1.26.8"))
    store.add_snapshot("svc", stamped(path, at[1], "1.26.8"))  # same build: nothing
    store.add_snapshot("svc", stamped(path, at[2], ">=1.21"))  # inferred: no identity
    store.add_snapshot("svc", stamped(path, at[3], "1.27.3"))  # deploy
    store.add_snapshot("svc", stamped(path, at[4], None, "aaaa1111bbbb2222cccc"))  # build id only
    store.add_snapshot("svc", stamped(path, at[5], "1.27.3", "aaaa1111bbbb2222cccc"))
    store.add_snapshot("svc", stamped(path, at[6], "1.27.3"))  # debug=1-like: no build id
    store.add_snapshot("other", stamped(path, at[6], "1.20.1"))  # another target's own history
    store.add_snapshot("svc", stamped(path, at[7], "1.27.3", "dddd3333"))  # new build, same Go
    ev = store.events("svc", at[0], at[8])
    assert [(e.time, e.kind, e.text, e.target) for e in ev] == [
        (at[3], "deploy", "deploy: go1.26.8 → go1.27.3", "svc"),
        (at[7], "deploy", "deploy: new build (aaaa1111bbbb… → dddd3333)", "svc"),
    ]
    assert store.events("other", at[0], at[8]) == []
    assert scalar(store, "SELECT count(*) FROM snapshots WHERE build IS NULL") == 1  # the `>=1.21`
    # Another process (a restarted replica) picks up from the stored builds, not from zero.
    again = SQLStore.open(db_url)
    try:
        again.add_snapshot("svc", stamped(path, at[8], "1.28.0"))
        assert [e.text for e in again.events("svc", at[8], at[8])] == ["deploy: go1.27.3 → go1.28.0"]
    finally:
        again.close()


def _debug1(binary: Path, when: dt.datetime) -> Snapshot:
    """A debug=1 profile of a fresh run of `binary` (the default scrape's format)."""
    with run_goapp(binary) as (_, base):
        snap = grprof.load(fetch(base, "/debug/pprof/goroutine?debug=1"))
    snap.time = when
    return snap


@pytest.mark.slow
def test_deploys_of_debug1_scrapes_are_found_from_code_addresses(store: SQLStore) -> None:
    """debug=1 has no build id, and the Go version alone misses a rebuild: the PCs its frame
    lines name tell it. A real service, its build rebuilt with other code (`-gcflags=-N -l`:
    the same source compiled otherwise) and as a PIE (loaded at a random address)."""
    plain = build_goapp("healthy")
    other = build_goapp("healthy", flags=["-gcflags=-N -l"])
    pie = build_goapp("healthy", flags=["-buildmode=pie"])
    at = [T0 + dt.timedelta(minutes=i) for i in range(6)]
    first = _debug1(plain, at[0])
    assert first.origin is not None and "main.worker" in dict(first.origin.code)
    store.add_snapshot("svc", first)
    store.add_snapshot("svc", _debug1(plain, at[1]))  # restarted, same build: not a deploy
    store.add_snapshot("svc", _debug1(other, at[2]))  # rebuilt: a deploy
    store.add_snapshot("svc", _debug1(other, at[3]))
    store.add_snapshot("svc", _debug1(pie, at[4]))  # another build again
    store.add_snapshot("svc", _debug1(pie, at[5]))  # a PIE restart moves the code too
    texts = [(e.time, e.text) for e in store.events("svc", at[0], at[5])]
    assert [t for t, _ in texts] == [at[2], at[4], at[5]], texts
    assert all(text.startswith("deploy or restart: the code moved (main.") for _, text in texts), texts


def test_reload_events_are_about_every_target(store: SQLStore) -> None:
    from grprof.config import Config, TargetConfig
    from grprof.store.events import record_reload

    old = Config(version=3, targets=[TargetConfig(name="a", url="http://127.0.0.1:1")])
    new = Config(
        version=4,
        targets=[
            TargetConfig(name="b", url="http://127.0.0.1:1"),
            TargetConfig(name="c", url="http://127.0.0.1:2"),
        ],
        rules=["x.yaml"],
    )
    store.upsert_targets([Target("a", "http://127.0.0.1:1", {})], None)
    before = dt.datetime.now(dt.UTC)
    record_reload(store, "SIGHUP", old, new)
    record_reload(None, "SIGHUP", old, new)  # no store: nothing, no error
    hostile = "<script>alert(1)</script> ' \" \u2028"
    store.add_event("deploy", hostile, before, target="a")
    after = dt.datetime.now(dt.UTC)
    for name in ("a", "anything"):
        got = store.events(name, before - dt.timedelta(seconds=1), after)
        reloads = [e for e in got if e.kind == "reload"]
        assert [(e.text, e.target) for e in reloads] == [
            ("config version 3 → 4: targets (+2, −1), rules (SIGHUP)", None)
        ]
        assert before <= reloads[0].time <= after
    assert [e.text for e in store.events("a", before, after) if e.kind == "deploy"] == [hostile]
    # The limit keeps the newest.
    newest = store.events("a", before, after, limit=1)
    assert len(newest) == 1 and newest[0].time == max(e.time for e in store.events("a", before, after))
    assert store.events("a", after + dt.timedelta(seconds=1), after + dt.timedelta(hours=1)) == []
    # Past max_age, retention deletes events like snapshots.
    policy = RetentionPolicy(max_age=0.0)
    assert store.apply_retention(policy, after + dt.timedelta(seconds=5))["events_deleted"] == 2
