"""The store's interface and records. Implemented by `grprof.store.sql.SQLStore`.

Calls are synchronous (SQLAlchemy Core); the server runs them in a worker thread. Every
write is one transaction: a `kill -9` loses at most the write in flight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from grprof import schema
from grprof.collect.model import ScrapeKind, ScrapeStatus, Target
from grprof.detect.model import Finding
from grprof.model import Frame, Snapshot, site_of
from grprof.units import iso_utc

FindingState = Literal["new", "ongoing", "resolved"]


@dataclass(frozen=True, slots=True)
class ScrapeRecord:
    target: str
    kind: ScrapeKind
    started: dt.datetime
    duration: float
    status: ScrapeStatus
    bytes: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class StoredTarget:
    name: str
    url: str
    labels: Mapping[str, str]
    shard: str | None
    """`I/N` of the replica that scrapes it, None when unsharded."""
    up: bool
    last_scrape: dt.datetime | None
    last_success: dt.datetime | None
    last_error: str
    goroutines: int | None
    """Total in the latest snapshot."""
    open_findings: int
    removed: bool = False
    """No longer in any replica's configuration (kept for its history)."""


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    id: int
    target: str
    time: dt.datetime
    format: str
    profile: str
    total: int
    groups: int
    truncated: bool
    has_raw: bool
    downsampled: bool = False


@dataclass(frozen=True, slots=True)
class StoredGroup:
    signature: str
    track: str
    """The detector's track id for this group (`grprof.detect.series.track_id`): what a finding's id is."""
    count: int
    state: str
    states: Mapping[str, int]
    max_wait_minutes: int
    leaked: int
    orphans: int
    labels: Mapping[str, Mapping[str, int]]
    frames: Sequence[Frame]
    created_by: Frame | None

    @property
    def site(self) -> Frame | None:
        """The same site `Group.site` names for the same stack (`grprof.model.site_of`)."""
        return site_of(self.frames)

    def to_json(self, state_inferred: bool) -> schema.StoredGroup:
        """The API's group (`grprof.schema.StoredGroup`); `state_inferred`: its snapshot's format
        (debug=0, debug=1) carries no goroutine states, so grprof inferred them from the stacks."""
        return {
            "signature": self.signature,
            "track": self.track,
            "count": self.count,
            "state": self.state,
            "states": dict(self.states),
            "max_wait_minutes": self.max_wait_minutes,
            "leaked": self.leaked,
            "orphans": self.orphans,
            "labels": {k: dict(v) for k, v in self.labels.items()},
            "site": schema.frame_or_none(self.site),
            "created_by": schema.frame_or_none(self.created_by),
            "frames": schema.frames(self.frames),
            "state_inferred": state_inferred,
        }


@dataclass(frozen=True, slots=True)
class StoredFinding:
    target: str
    id: str
    state: FindingState
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved_at: dt.datetime | None
    finding: Mapping[str, Any]
    """`Finding.to_json()` as last seen (the same schema as `grprof analyze --json`)."""

    def to_json(self) -> schema.StoredFinding:
        # `state` stays the finding's goroutine state (the `grprof analyze --json` schema);
        # the lifecycle goes by its own name.
        return {
            **self.finding,  # type: ignore[typeddict-item]  # a stored document, checked on the way out
            "target": self.target,
            "lifecycle": self.state,
            "first_seen": iso_utc(self.first_seen),
            "last_seen": iso_utc(self.last_seen),
            "resolved_at": iso_utc(self.resolved_at),
        }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A config reload or a deploy (`grprof.store.events`), marked on the target chart."""

    time: dt.datetime
    kind: str
    """`reload` or `deploy`."""
    text: str
    """In a few words: `config version 3 → 4: targets (+1) (SIGHUP)`, `deploy: go1.26.8 → go1.27.3`."""
    target: str | None
    """None: about every target (a reload)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    raw_for: float = 3600.0
    """Seconds to keep raw profile bytes."""
    raw_budget: int = 256 << 20
    """Bytes of raw profiles kept at most, oldest dropped first."""
    full_for: float = 86400.0
    """Seconds to keep every snapshot; older ones are downsampled."""
    downsample_every: float = 300.0
    """After `full_for`, keep one snapshot per target per this many seconds."""
    max_age: float = 14 * 86400.0
    """Seconds after which snapshots, scrapes and resolved findings are deleted."""


@dataclass(frozen=True, slots=True)
class WriteStats:
    """The store's batched writes so far (`grprof.store.commits`), for `/metrics`."""

    queued: int
    """Writes waiting for the next batch."""
    batches: int
    """Transactions that committed queued writes."""
    written: int
    """Writes committed."""
    failed: int
    """Writes that failed (each logged), lost."""


class Store(Protocol):
    def close(self) -> None: ...

    def write_stats(self) -> WriteStats:
        """The batched writes so far (`add_scrape(..., wait=False)` and the others)."""

    # -- targets and scrapes -----------------------------------------------------------
    def upsert_targets(self, targets: Sequence[Target], shard: str | None) -> None:
        """The targets this replica scrapes now; its earlier targets missing from the list are
        marked removed (a target another replica owns is left alone)."""

    def record_scrape(self, rec: ScrapeRecord, *, wait: bool = True) -> None:
        """Also updates the target's up / last_scrape / last_success / last_error. With
        `wait=False`, queued for the next batch of writes (as `add_scrape`)."""

    def targets(self) -> list[StoredTarget]:
        """Every target of every replica (the federated view)."""

    # -- snapshots ---------------------------------------------------------------------
    def add_snapshot(self, target: str, snap: Snapshot, raw: bytes | None = None) -> int:
        """Store a snapshot's groups (compressed) and, optionally, its raw profile bytes."""

    def add_scrape(
        self,
        rec: ScrapeRecord,
        snap: Snapshot | None = None,
        raw: bytes | None = None,
        findings: Sequence[Finding] | None = None,
        *,
        wait: bool = True,
    ) -> int | None:
        """`record_scrape`, when the scrape gave one `add_snapshot`, and with `findings` the
        detection run over it (`sync_findings` at the scrape's start, `report=False`), in one
        transaction (a daemon does this for every scrape); returns the snapshot's id.

        With `wait=False` it returns None at once: the write joins the next batch, committed
        within a quarter of a second with the other scrapes queued meanwhile
        (`grprof.store.commits`); an error is logged, not raised. Every other method of the
        store (reads included) first waits for what is queued, so none sees the store
        without it."""

    def snapshots(
        self, target: str, *, limit: int = 100, before: dt.datetime | None = None
    ) -> list[SnapshotMeta]:
        """Newest first."""

    def goroutine_series(
        self, targets: Sequence[str] | None, since: dt.datetime, *, step: float = 0.0
    ) -> dict[str, list[tuple[dt.datetime, int]]]:
        """Goroutine totals of many targets since `since`, oldest first, in one query; with
        `step` > 0 seconds, one point (the largest) per target and step."""

    def snapshot(self, snapshot_id: int) -> tuple[SnapshotMeta, list[StoredGroup]] | None: ...

    def raw(self, snapshot_id: int) -> bytes | None: ...

    def recent_snapshots(self, target: str, limit: int) -> list[Snapshot]:
        """The latest `limit` snapshots, oldest first, rebuilt as `Snapshot`s (one row per stored
        group) for the detector: what a restarted replica resumes from."""

    # -- findings ----------------------------------------------------------------------
    def sync_findings(
        self, target: str, findings: Sequence[Finding], now: dt.datetime, *, report: bool = True
    ) -> list[StoredFinding]:
        """Record a detection run: findings not open yet become `new` (a resolved one reopens as
        `new`), open ones seen again become `ongoing`, open ones not seen become `resolved`.
        Deduplicated by (target, finding id). Returns the findings touched, unless `report` is
        false (a daemon after every scrape does not need them read back)."""

    def findings(
        self,
        *,
        target: str | None = None,
        verdict: str | None = None,
        category: str | None = None,
        state: FindingState | None = None,
    ) -> list[StoredFinding]: ...

    # -- events ------------------------------------------------------------------------
    def add_event(self, kind: str, text: str, when: dt.datetime, target: str | None = None) -> None:
        """Record a reload (`target` None: every target) or another event of a target."""

    def events(
        self, target: str, start: dt.datetime, end: dt.datetime, *, limit: int = 500
    ) -> list[StoredEvent]:
        """The newest `limit` events in [start, end] of `target` and those about every target,
        oldest first (deploys are recorded by the store itself when a snapshot's build changes;
        the limit bounds a chart's markers)."""

    # -- search and housekeeping -------------------------------------------------------
    def search_labels(
        self, key: str | None, value: str, *, limit: int = 100
    ) -> list[tuple[SnapshotMeta, StoredGroup]]:
        """Groups (newest snapshots first) whose goroutines carry label key=value; with `key`
        None, the value under any key (the UI's search by a trace id, route or tenant)."""

    def apply_retention(self, policy: RetentionPolicy, now: dt.datetime) -> dict[str, int]:
        """Drop raw bytes past `raw_for`/the budget, downsample, delete past `max_age`; counts."""


__all__ = [
    "FindingState",
    "RetentionPolicy",
    "ScrapeRecord",
    "SnapshotMeta",
    "Store",
    "StoredEvent",
    "StoredFinding",
    "StoredGroup",
    "StoredTarget",
]
