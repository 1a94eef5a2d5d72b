"""`SQLStore`: the history store on SQLite (default) or PostgreSQL (shared deployments).

    store = SQLStore.open("grprof.db")            # or "postgresql://user@host/db"
    sid = store.add_snapshot("api", snapshot, raw=body)
    snaps = store.recent_snapshots("api", 20)     # for the detector after a restart

Every method is one transaction (a `kill -9` loses at most the write in flight) on a pooled
connection, so the API's threads read while a worker thread writes. docs/storage.md has the
schema and the design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from grprof.collect.health import health_change
from grprof.collect.model import Target
from grprof.detect.model import Finding
from grprof.model import Snapshot
from grprof.store import codec
from grprof.store.commits import GroupCommit
from grprof.store.engine import StoreError, connect, transaction, writer
from grprof.store.events import DEPLOY, build_identity, deploy_text, known_identity
from grprof.store.model import (
    FindingState,
    RetentionPolicy,
    ScrapeRecord,
    SnapshotMeta,
    StoredEvent,
    StoredFinding,
    StoredGroup,
    StoredTarget,
    WriteStats,
)
from grprof.store.retention import apply_retention
from grprof.store.schema import events as E
from grprof.store.schema import findings as F
from grprof.store.schema import labels as L
from grprof.store.schema import raws as R
from grprof.store.schema import scrapes as SC
from grprof.store.schema import snapshots as S
from grprof.store.schema import targets as T

__all__ = ["SQLStore", "StoreError"]

CHUNK = 500
"""Ids per `IN (...)` list: far below SQLite's variable limit."""
PREVIOUS_BUILDS = 50
"""Snapshots looked back through for a target's previous build identity (`_previous_build`)."""


def ts(d: dt.datetime) -> float:
    """Unix seconds; a naive datetime is taken to be UTC."""
    return (d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp()


def utc(x: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(x, dt.UTC)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT with `ON CONFLICT`, in the connection's dialect."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# The statements every scrape runs, built once with bound parameters: building one (`.values`,
# `.where`) costs about five times what executing it on SQLite does, and a daemon runs them
# some 70 times a second at 1,000 targets (docs/performance.md, "Serving 1,000 targets").
# SQLAlchemy compiles each once per parameter set and caches it.
_INSERT_SCRAPE = sa.insert(SC)
_UPDATE_TARGET = sa.update(T).where(T.c.id == sa.bindparam("tid_"))
_INSERT_SNAPSHOT = sa.insert(S).returning(S.c.id)
_INSERT_RAW = sa.insert(R)
_INSERT_LABELS = sa.insert(L)
_FINDING_COLS = (F.c.id, F.c.finding_id, F.c.state)
_OPEN_FINDINGS = sa.select(*_FINDING_COLS).where(
    F.c.target_id == sa.bindparam("tid_"), F.c.state != "resolved"
)
_FINDINGS_BY_ID = sa.select(*_FINDING_COLS).where(
    F.c.target_id == sa.bindparam("tid_"), F.c.finding_id.in_(sa.bindparam("ids_", expanding=True))
)
_UPDATE_FINDING = sa.update(F).where(F.c.id == sa.bindparam("id_"))
# Built once: a statement with its values inline makes SQLAlchemy derive a cache key from
# them at every call (4 % of the busy samples of a daemon of 1,000 targets).
_RESOLVE_FINDINGS = (
    sa.update(F).where(F.c.id.in_(sa.bindparam("ids_", expanding=True))).values(state="resolved")
)
_NEW_FINDING = {
    name: make(F).on_conflict_do_nothing(index_elements=["target_id", "finding_id"])
    for name, make in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def target_id(conn: sa.Connection, name: str, known: dict[str, int] | None = None) -> int:
    """The target's row id, creating a bare row for a name never upserted.

    `known` caches ids of rows that existed before this transaction (target rows are never
    deleted, so their ids never change); a row made here is cached only by a later call, once
    its transaction has committed."""
    if known is not None and name in known:
        return known[name]
    found = conn.execute(sa.select(T.c.id).where(T.c.name == name)).scalar()
    if found is not None:
        if known is not None:
            known[name] = int(found)
        return int(found)
    stmt = (
        _insert(conn, T).values(name=name, url="", labels={}).on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(stmt)
    return int(conn.execute(sa.select(T.c.id).where(T.c.name == name)).scalar_one())


class SQLStore:
    """`grprof.store.model.Store` on SQLAlchemy Core."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._target_ids: dict[str, int] = {}
        self._builds: dict[int, Mapping[str, Any] | None] = {}
        """Each target's latest stored build identity (`grprof.store.events`), read from the
        database once per target, kept here after: a target has one writer (its shard's
        replica), and reading it back would walk the previous snapshot's blob on SQLite."""
        self._texts = codec.RecentTexts()
        """The group texts of each target's snapshot `add_scrape` stored last, per format and
        profile: a daemon's unchanged groups are encoded once."""
        self._commits = GroupCommit(self._writer, on_rollback=self._forget)
        """Scrapes are written in batches (`grprof.store.commits`); every other call flushes
        them first, so it sees (and comes after) every write made before it."""

    @classmethod
    def open(cls, url_or_path: str) -> SQLStore:
        """Open a path / `sqlite:///PATH` (SQLite) or `postgresql://` / `postgres://` URL and
        migrate it to the newest schema. Raises `StoreError`."""
        return cls(connect(url_or_path))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self._commits.close()
        self._writer.dispose()
        self.engine.dispose()

    def _read(self) -> AbstractContextManager[sa.Connection]:
        self._commits.flush()
        return transaction(self.engine, write=False)

    def _write(self) -> AbstractContextManager[sa.Connection]:
        self._commits.flush()
        return transaction(self._writer, write=True)

    def write_stats(self) -> WriteStats:
        return self._commits.stats()

    def _forget(self) -> None:
        """A batch was rolled back: ids and builds it cached may be of rows that are gone."""
        self._target_ids.clear()
        self._builds.clear()

    # -- targets and scrapes -----------------------------------------------------------

    def upsert_targets(self, targets: Sequence[Target], shard: str | None) -> None:
        names = {t.name for t in targets}
        with self._write() as conn:
            for t in _unique(targets):
                values = {"url": t.url, "labels": dict(t.labels), "shard": shard, "removed": False}
                stmt = _insert(conn, T).values(name=t.name, **values)
                conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
            mine = T.c.shard.is_(None) if shard is None else T.c.shard == shard
            owned = conn.execute(sa.select(T.c.name).where(mine, T.c.removed.is_(False))).scalars()
            gone = [n for n in owned if n not in names]
            for part in chunks(gone):
                conn.execute(sa.update(T).where(T.c.name.in_(part)).values(removed=True))

    def record_scrape(self, rec: ScrapeRecord, *, wait: bool = True) -> None:
        self.add_scrape(rec, wait=wait)

    def add_scrape(
        self,
        rec: ScrapeRecord,
        snap: Snapshot | None = None,
        raw: bytes | None = None,
        findings: Sequence[Finding] | None = None,
        *,
        wait: bool = True,
    ) -> int | None:
        staged = _stage_snapshot(snap, self._texts, rec.target) if snap is not None else None

        def write(conn: sa.Connection) -> int | None:
            tid = target_id(conn, rec.target, self._target_ids)
            _insert_scrape(conn, tid, rec)
            if findings is not None:
                _sync_findings(conn, tid, findings, ts(rec.started))
            if snap is None or staged is None:
                return None
            return _insert_snapshot(conn, tid, snap, staged, raw, self._builds)

        what = f"target {rec.target}: storing a {rec.kind} scrape"
        if wait:
            return self._commits.run(write, what)
        self._commits.submit(write, what)
        return None

    def targets(self) -> list[StoredTarget]:
        latest = (
            sa.select(S.c.total)
            .where(S.c.target_id == T.c.id, S.c.profile == "goroutine")
            .order_by(S.c.time.desc(), S.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        open_ = (
            sa.select(sa.func.count())
            .select_from(F)
            .where(F.c.target_id == T.c.id, F.c.state != "resolved")
            .scalar_subquery()
        )
        q = sa.select(T, latest.label("goroutines"), open_.label("open_findings")).order_by(T.c.name)
        with self._read() as conn:
            return [_stored_target(r) for r in conn.execute(q).mappings()]

    # -- snapshots ---------------------------------------------------------------------

    def add_snapshot(self, target: str, snap: Snapshot, raw: bytes | None = None) -> int:
        staged = _stage_snapshot(snap)  # the slow part, before the write lock is taken
        with self._write() as conn:
            tid = target_id(conn, target, self._target_ids)
            return _insert_snapshot(conn, tid, snap, staged, raw, self._builds)

    def snapshots(
        self, target: str, *, limit: int = 100, before: dt.datetime | None = None
    ) -> list[SnapshotMeta]:
        q = _meta_query().where(T.c.name == target)
        if before is not None:
            q = q.where(S.c.time < ts(before))
        q = q.order_by(S.c.time.desc(), S.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_meta(r) for r in conn.execute(q).mappings()]

    def goroutine_series(
        self, targets: Sequence[str] | None, since: dt.datetime, *, step: float = 0.0
    ) -> dict[str, list[tuple[dt.datetime, int]]]:
        """Goroutine totals since `since` of many targets in one statement (per `IN` chunk of
        `CHUNK` names; `targets=None` is every target): `{target: [(time, total), ...]}`,
        oldest first. With `step` seconds > 0, one point per target and step: the largest
        total in it, at its latest time (a sparkline of 1,000 targets reads 1,000 x buckets
        rows, not every snapshot). Goroutine profiles only (not goroutineleak ones)."""
        out: dict[str, list[tuple[dt.datetime, int]]] = {}
        names = None if targets is None else list(dict.fromkeys(targets))
        if names is not None and not names:
            return out
        # The target ids first, then `target_id IN (ids)`: PostgreSQL plans a join on the names
        # as a scan of every snapshot since `since` (1,000 targets x 7 days: 445 ms instead of
        # 81 ms through `(target_id, time)`, benchmarks/ui_fleet.py --postgres --days 7).
        base = sa.select(S.c.target_id, S.c.time, S.c.total)
        # Goroutine profiles only: a goroutineleak profile's total is its leaked goroutines.
        base = base.where(S.c.time >= ts(since), S.c.profile == "goroutine")
        with self._read() as conn:
            for part in [None] if names is None else chunks(names):
                who = sa.select(T.c.id, T.c.name)
                ids: dict[int, str] = dict(
                    conn.execute(who if part is None else who.where(T.c.name.in_(part))).all()
                )
                if not ids:
                    continue
                q = base if part is None else base.where(S.c.target_id.in_(list(ids)))
                if step > 0:
                    bucket = sa.cast(S.c.time / step, sa.BigInteger)
                    sub = q.add_columns(bucket.label("bucket")).subquery()
                    q = sa.select(
                        sub.c.target_id, sa.func.max(sub.c.time), sa.func.max(sub.c.total)
                    ).group_by(sub.c.target_id, sub.c.bucket)
                    rows = list(conn.execute(q))
                else:
                    rows = list(conn.execute(q.order_by(S.c.target_id, S.c.time, S.c.id)))
                for tid, when, total in sorted(rows, key=lambda r: (ids.get(r[0], ""), r[1])):
                    if tid in ids:
                        out.setdefault(ids[tid], []).append((utc(when), int(total)))
        return out

    def snapshot(self, snapshot_id: int) -> tuple[SnapshotMeta, list[StoredGroup]] | None:
        q = _meta_query(S.c.groups).where(S.c.id == snapshot_id)
        with self._read() as conn:
            r = conn.execute(q).mappings().first()
        if r is None:
            return None
        return _meta(r), [codec.stored_group(g) for g in codec.decode(r["groups"])["groups"]]

    def raw(self, snapshot_id: int) -> bytes | None:
        with self._read() as conn:
            data = conn.execute(sa.select(R.c.data).where(R.c.snapshot_id == snapshot_id)).scalar()
        return bytes(data) if data is not None else None

    def recent_snapshots(self, target: str, limit: int) -> list[Snapshot]:
        cols = (S.c.time, S.c.format, S.c.profile, S.c.truncated, S.c.groups)
        q = (
            sa.select(*cols)
            .join(T, T.c.id == S.c.target_id)
            .where(T.c.name == target)
            .order_by(S.c.time.desc(), S.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(q).mappings().all()
        return [_rebuild(r) for r in reversed(rows)]

    # -- events ------------------------------------------------------------------------

    def add_event(self, kind: str, text: str, when: dt.datetime, target: str | None = None) -> None:
        with self._write() as conn:
            tid = None if target is None else target_id(conn, target, self._target_ids)
            conn.execute(sa.insert(E).values(time=ts(when), kind=kind, text=text, target_id=tid))

    def events(
        self, target: str, start: dt.datetime, end: dt.datetime, *, limit: int = 500
    ) -> list[StoredEvent]:
        q = (
            sa.select(E.c.time, E.c.kind, E.c.text, T.c.name)
            .select_from(E.outerjoin(T, T.c.id == E.c.target_id))
            .where(E.c.time >= ts(start), E.c.time <= ts(end))
            .where(sa.or_(E.c.target_id.is_(None), T.c.name == target))
            .order_by(E.c.time.desc(), E.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [StoredEvent(utc(t), kind, text, name) for t, kind, text, name in reversed(rows)]

    # -- findings ----------------------------------------------------------------------

    def sync_findings(
        self, target: str, findings: Sequence[Finding], now: dt.datetime, *, report: bool = True
    ) -> list[StoredFinding]:
        with self._write() as conn:
            tid = target_id(conn, target, self._target_ids)
            seen, gone = _sync_findings(conn, tid, findings, ts(now))
            if not report:
                return []
            touched = [*seen, *gone]
            out: dict[str, StoredFinding] = {}
            for part in chunks(touched):  # only these: a target's resolved history can be long
                q = _findings_query().where(F.c.target_id == tid, F.c.finding_id.in_(part))
                out.update((r["finding_id"], _stored_finding(r)) for r in conn.execute(q).mappings())
        return [out[fid] for fid in touched if fid in out]

    def findings(
        self,
        *,
        target: str | None = None,
        verdict: str | None = None,
        category: str | None = None,
        state: FindingState | None = None,
    ) -> list[StoredFinding]:
        q = _findings_query()
        for col, value in (
            (T.c.name, target),
            (F.c.verdict, verdict),
            (F.c.category, category),
            (F.c.state, state),
        ):
            if value is not None:
                q = q.where(col == value)
        q = q.order_by((F.c.state == "resolved"), F.c.last_seen.desc(), T.c.name, F.c.finding_id)
        with self._read() as conn:
            return [_stored_finding(r) for r in conn.execute(q).mappings()]

    # -- search and housekeeping -------------------------------------------------------

    def search_labels(
        self, key: str | None, value: str, *, limit: int = 100
    ) -> list[tuple[SnapshotMeta, StoredGroup]]:
        with self._read() as conn:
            # Without a key: the value under each key there is, so that the (key, value, time)
            # index still answers; past MAX_SEARCH_KEYS keys, a scan of the value column.
            keys = [key] if key is not None else _label_keys(conn)
            hits = (
                sa.select(L.c.snapshot_id, L.c.signature)
                .where(L.c.value == value)
                .order_by(L.c.time.desc(), L.c.snapshot_id.desc(), L.c.signature)
                .limit(limit)
            )
            if keys is not None:
                hits = hits.where(L.c.key.in_(keys))
            # One row per group, even when the value is under two of its keys.
            found = list(dict.fromkeys(tuple(r) for r in conn.execute(hits))) if keys != [] else []
            ids = list(dict.fromkeys(sid for sid, _ in found))
            snaps = {}
            for part in chunks(ids):
                for r in conn.execute(_meta_query(S.c.groups).where(S.c.id.in_(part))).mappings():
                    snaps[r["id"]] = (_meta(r), codec.decode(r["groups"])["groups"])
        return list(_label_hits(found, snaps))

    def apply_retention(self, policy: RetentionPolicy, now: dt.datetime) -> dict[str, int]:
        with self._write() as conn:
            counts = apply_retention(conn, policy, ts(now))
        if self.dialect == "sqlite" and any(counts.values()):
            self._release_free_pages()
        return counts

    def _release_free_pages(self) -> None:
        """Shrink the SQLite file by the pages retention freed. `incremental_vacuum` frees one
        page per step and the driver's `execute` steps once; `executescript` runs it out."""
        conn = self._writer.raw_connection()
        try:
            conn.driver_connection.executescript("PRAGMA incremental_vacuum;")  # type: ignore[union-attr]
        finally:
            conn.close()


# -- helpers ---------------------------------------------------------------------------------


def _unique(targets: Iterable[Target]) -> list[Target]:
    """One per name (the last wins), in name order: replicas lock rows in the same order."""
    by_name = {t.name: t for t in targets}
    return [by_name[n] for n in sorted(by_name)]


def _insert_scrape(conn: sa.Connection, tid: int, rec: ScrapeRecord) -> None:
    started = ts(rec.started)
    conn.execute(
        _INSERT_SCRAPE,
        {
            "target_id": tid,
            "kind": rec.kind,
            "started": started,
            "duration": rec.duration,
            "bytes": rec.bytes,
            "status": rec.status,
            "error": rec.error,
        },
    )
    conn.execute(_UPDATE_TARGET, {"tid_": tid, **_health(rec, started)})


@dataclass(frozen=True, slots=True)
class _Staged:
    """A snapshot's rows, encoded outside the transaction."""

    groups: int
    blob: bytes
    when: float
    labels: list[tuple[str, str, str, int]]


def _stage_snapshot(snap: Snapshot, texts: codec.RecentTexts | None = None, target: str = "") -> _Staged:
    """The rows of `snap`; with `texts`, encoded reusing the texts of the target's previous
    snapshot of the same format and profile (`codec.RecentTexts`)."""
    groups = snap.groups()
    when = ts(snap.time or snap.mtime or dt.datetime.now(dt.UTC))
    if texts is None:
        blob = codec.encode(snap, groups)
    else:
        blob = texts.encode((target, snap.format, snap.profile), snap, groups)
    return _Staged(len(groups), blob, when, list(codec.label_rows(groups)))


def _insert_snapshot(
    conn: sa.Connection,
    tid: int,
    snap: Snapshot,
    st: _Staged,
    raw: bytes | None,
    builds: dict[int, Mapping[str, Any] | None],
) -> int:
    build = build_identity(snap)
    row: dict[str, Any] = {
        "target_id": tid,
        "time": st.when,
        "format": snap.format,
        "profile": snap.profile,
        "total": snap.total,
        "group_count": st.groups,
        "truncated": snap.truncated,
        "downsampled": False,
        "groups": st.blob,
    }
    if build is not None:  # left out when absent: SQL NULL, where a None would be JSON null
        row["build"] = build
    sid = int(conn.execute(_INSERT_SNAPSHOT, row).scalar_one())
    if build is not None:
        if tid not in builds:
            builds[tid] = _previous_build(conn, tid, sid)
        text = deploy_text(builds[tid], build)
        if text is not None:
            conn.execute(sa.insert(E).values(time=st.when, kind=DEPLOY, text=text, target_id=tid))
        builds[tid] = known_identity(builds[tid], build, deployed=text is not None)
    if raw is not None:
        conn.execute(_INSERT_RAW, {"snapshot_id": sid, "time": st.when, "size": len(raw), "data": raw})
    if st.labels:
        conn.execute(_INSERT_LABELS, [_label(sid, st.when, r) for r in st.labels])
    return sid


def _previous_build(conn: sa.Connection, tid: int, sid: int) -> Mapping[str, Any] | None:
    """The build identity of the target's newest snapshot (before `sid`) that has one, among
    its latest `PREVIOUS_BUILDS` (each row read walks its blob on SQLite: a bounded look back,
    once per target and process)."""
    recent = (
        sa.select(S.c.id)
        .where(S.c.target_id == tid, S.c.id != sid)
        .order_by(S.c.time.desc(), S.c.id.desc())
        .limit(PREVIOUS_BUILDS)
        .subquery()
    )
    q = (
        sa.select(S.c.build)
        .where(S.c.id.in_(sa.select(recent.c.id)), S.c.build.is_not(None))
        .order_by(S.c.time.desc(), S.c.id.desc())
        .limit(1)
    )
    found = conn.execute(q).scalar()
    return found if isinstance(found, Mapping) else None


def _health(rec: ScrapeRecord, started: float) -> dict[str, Any]:
    """Target columns a scrape updates, by the one rule of `grprof.collect.health` (the same
    the replica's in-memory `TargetRuntime` follows): every scrape moves last_scrape; a
    goroutine profile scrape decides up, last_success and last_error."""
    values: dict[str, Any] = {"last_scrape": started}
    change = health_change(rec.kind, rec.status, rec.error)
    if change is None:
        return values
    values["up"] = change.up
    values["last_error"] = change.last_error
    if change.up:
        values["last_success"] = started
    return values


def _stored_target(r: sa.RowMapping) -> StoredTarget:
    return StoredTarget(
        name=r["name"],
        url=r["url"],
        labels=dict(r["labels"] or {}),
        shard=r["shard"],
        up=bool(r["up"]),
        last_scrape=utc(r["last_scrape"]) if r["last_scrape"] is not None else None,
        last_success=utc(r["last_success"]) if r["last_success"] is not None else None,
        last_error=r["last_error"],
        goroutines=r["goroutines"],
        open_findings=int(r["open_findings"]),
        removed=bool(r["removed"]),
    )


def _label(sid: int, when: float, row: tuple[str, str, str, int]) -> dict[str, Any]:
    sig, key, value, count = row
    return {"snapshot_id": sid, "signature": sig, "key": key, "value": value, "count": count, "time": when}


def _meta_query(*extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
    has_raw = sa.exists().where(R.c.snapshot_id == S.c.id)
    cols = [
        S.c[c]
        for c in ("id", "time", "format", "profile", "total", "group_count", "truncated", "downsampled")
    ]
    return sa.select(*cols, T.c.name.label("target"), has_raw.label("has_raw"), *extra).join(
        T, T.c.id == S.c.target_id
    )


def _meta(r: sa.RowMapping) -> SnapshotMeta:
    return SnapshotMeta(
        id=int(r["id"]),
        target=r["target"],
        time=utc(r["time"]),
        format=r["format"],
        profile=r["profile"],
        total=int(r["total"]),
        groups=int(r["group_count"]),
        truncated=bool(r["truncated"]),
        has_raw=bool(r["has_raw"]),
        downsampled=bool(r["downsampled"]),
    )


def _rebuild(r: sa.RowMapping) -> Snapshot:
    return codec.rebuild(
        codec.decode(r["groups"]),
        format=r["format"],
        profile=r["profile"],
        time=utc(r["time"]),
        truncated=bool(r["truncated"]),
    )


MAX_SEARCH_KEYS = 256
"""Label keys probed one by one by a search without a key; more, and it scans the values."""


def _label_keys(conn: sa.Connection) -> list[str] | None:
    """Every label key, one index probe each (a loose index scan: `DISTINCT key` would read
    every label row); None past `MAX_SEARCH_KEYS` (hostile or id-like keys)."""
    keys: list[str] = []
    nxt = conn.execute(sa.select(sa.func.min(L.c.key))).scalar()
    while nxt is not None:
        if len(keys) == MAX_SEARCH_KEYS:
            return None
        keys.append(nxt)
        nxt = conn.execute(sa.select(sa.func.min(L.c.key)).where(L.c.key > nxt)).scalar()
    return keys


def _label_hits(
    found: Sequence[Any], snaps: Mapping[int, tuple[SnapshotMeta, list[codec.GroupDoc]]]
) -> Iterator[tuple[SnapshotMeta, StoredGroup]]:
    for sid, sig in found:
        if sid not in snaps:
            continue  # deleted between the two queries of another transaction: cannot happen here
        meta, groups = snaps[sid]
        for g in groups:
            if g["signature"] == sig:
                yield meta, codec.stored_group(g)
                break


def _findings_query() -> sa.Select[Any]:
    return sa.select(F, T.c.name.label("target")).join(T, T.c.id == F.c.target_id)


def _sync_findings(
    conn: sa.Connection, tid: int, findings: Sequence[Finding], t: float
) -> tuple[list[str], list[str]]:
    """`sync_findings` inside a transaction: the finding ids seen (first of duplicates wins)
    and those resolved now."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.id, f)
    rows = _finding_rows(conn, tid, list(seen))
    for fid, f in seen.items():
        _record_finding(conn, tid, rows.get(fid), f, t)
    gone = [fid for fid, r in rows.items() if fid not in seen and r["state"] != "resolved"]
    for part in chunks([rows[fid]["id"] for fid in gone]):
        conn.execute(_RESOLVE_FINDINGS, {"ids_": list(part), "resolved_at": t})
    return list(seen), gone


def _finding_rows(conn: sa.Connection, tid: int, ids: Sequence[str]) -> dict[str, sa.RowMapping]:
    """The target's open findings and any row (resolved too) of the ids seen now."""
    rows = {r["finding_id"]: r for r in conn.execute(_OPEN_FINDINGS, {"tid_": tid}).mappings()}
    # An open row is the id's only row (unique per target): ask only for the others.
    for part in chunks([i for i in ids if i not in rows]):
        found = conn.execute(_FINDINGS_BY_ID, {"tid_": tid, "ids_": list(part)}).mappings()
        rows.update({r["finding_id"]: r for r in found})
    return rows


def _record_finding(conn: sa.Connection, tid: int, row: sa.RowMapping | None, f: Finding, t: float) -> None:
    doc = {"doc": f.to_json(), "verdict": f.verdict, "category": f.category, "last_seen": t}
    if row is None:  # DO NOTHING: a replica that owned the target until just now wrote it first
        new = _NEW_FINDING[conn.dialect.name]
        conn.execute(new, {"target_id": tid, "finding_id": f.id, "state": "new", "first_seen": t, **doc})
    elif row["state"] == "resolved":  # it came back: a new episode
        conn.execute(
            _UPDATE_FINDING, {"id_": row["id"], "state": "new", "first_seen": t, "resolved_at": None, **doc}
        )
    else:
        conn.execute(_UPDATE_FINDING, {"id_": row["id"], "state": "ongoing", **doc})


def _stored_finding(r: sa.RowMapping) -> StoredFinding:
    return StoredFinding(
        target=r["target"],
        id=r["finding_id"],
        state=r["state"],
        first_seen=utc(r["first_seen"]),
        last_seen=utc(r["last_seen"]),
        resolved_at=utc(r["resolved_at"]) if r["resolved_at"] is not None else None,
        finding=r["doc"],
    )
