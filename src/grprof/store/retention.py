"""Retention: what `SQLStore.apply_retention` deletes, in one transaction.

Each step reads only rows it is about to change, through an index on time: snapshots past
`max_age` (`ix_snapshots_time`), snapshots past `full_for` not yet downsampled
(`ix_snapshots_downsampled_time`: once kept, a snapshot leaves that range), raw profiles past
`raw_for` (`ix_raws_time`). The raw budget sums the `raws` table, which the two raw limits
keep small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sqlalchemy as sa

from grprof.store.model import RetentionPolicy
from grprof.store.schema import events as E
from grprof.store.schema import findings as F
from grprof.store.schema import raws as R
from grprof.store.schema import scrapes as SC
from grprof.store.schema import snapshots as S

CHUNK = 500

Bucket = tuple[int, str, int]
"""(target id, profile, bucket number): goroutine and goroutineleak snapshots are thinned apart."""


def apply_retention(conn: sa.Connection, policy: RetentionPolicy, now: float) -> dict[str, int]:
    counts = {}
    old = now - policy.max_age
    # Labels and raw bytes go with their snapshot (ON DELETE CASCADE).
    counts["snapshots_deleted"] = conn.execute(sa.delete(S).where(S.c.time < old)).rowcount
    counts["scrapes_deleted"] = conn.execute(sa.delete(SC).where(SC.c.started < old)).rowcount
    counts["findings_deleted"] = conn.execute(
        sa.delete(F).where(F.c.state == "resolved", F.c.resolved_at < old)
    ).rowcount
    counts["events_deleted"] = conn.execute(sa.delete(E).where(E.c.time < old)).rowcount
    counts["downsampled"] = downsample(conn, now - policy.full_for, policy.downsample_every)
    counts["raw_expired"] = conn.execute(sa.delete(R).where(R.c.time < now - policy.raw_for)).rowcount
    counts["raw_over_budget"] = enforce_raw_budget(conn, policy.raw_budget)
    return counts


def downsample(conn: sa.Connection, cutoff: float, every: float) -> int:
    """Keep the first snapshot per target, profile and `every` seconds (buckets aligned to
    the epoch, so they are the same in every call) of those older than `cutoff`; mark the
    kept ones `downsampled`, delete the rest. Returns how many were deleted."""
    if every <= 0:
        return 0
    fresh = conn.execute(
        sa.select(S.c.id, S.c.target_id, S.c.profile, S.c.time)
        .where(S.c.downsampled.is_(False), S.c.time < cutoff)
        .order_by(S.c.time, S.c.id)
    ).all()
    if not fresh:
        return 0
    # Buckets straddling the previous cutoff already have their first snapshot kept.
    since = math.floor(fresh[0].time / every) * every
    kept_before = conn.execute(
        sa.select(S.c.target_id, S.c.profile, S.c.time).where(
            S.c.downsampled.is_(True), S.c.time >= since, S.c.time < cutoff
        )
    ).all()
    taken: set[Bucket] = {(r.target_id, r.profile, math.floor(r.time / every)) for r in kept_before}
    keep: list[int] = []
    drop: list[int] = []
    for r in fresh:
        b = (r.target_id, r.profile, math.floor(r.time / every))
        (drop if b in taken else keep).append(r.id)
        taken.add(b)
    for part in _chunks(keep):
        conn.execute(sa.update(S).where(S.c.id.in_(part)).values(downsampled=True))
    for part in _chunks(drop):
        conn.execute(sa.delete(S).where(S.c.id.in_(part)))
    return len(drop)


def enforce_raw_budget(conn: sa.Connection, budget: int) -> int:
    """Drop the oldest raw profiles until the rest fit in `budget` bytes."""
    total = int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(R.c.size), 0))).scalar_one())
    excess = total - budget
    if excess <= 0:
        return 0
    drop: list[int] = []
    for sid, size in conn.execute(
        sa.select(R.c.snapshot_id, R.c.size).order_by(R.c.time, R.c.snapshot_id)
    ).all():
        if excess <= 0:
            break
        drop.append(sid)
        excess -= size
    for part in _chunks(drop):
        conn.execute(sa.delete(R).where(R.c.snapshot_id.in_(part)))
    return len(drop)


def _chunks(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
