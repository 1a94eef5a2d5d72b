"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

This is the schema as of the newest migration: `migrations/versions/` creates it, and
`tests/test_store.py` checks that a migrated database and this metadata do not differ.
Times are Unix seconds (UTC) in double columns: they compare and index the same way on both
databases, with no time zone handling in either. docs/storage.md describes every column.
"""

from __future__ import annotations

import sqlalchemy as sa

# SQLite only auto-numbers an `INTEGER PRIMARY KEY` (the rowid); PostgreSQL gets 64 bits.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time: sa.Double[float] = sa.Double()

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _target_fk() -> sa.Column[int]:
    return sa.Column("target_id", Id, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False)


targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.Text(), nullable=False, unique=True),
    sa.Column("url", sa.Text(), nullable=False, server_default=""),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("shard", sa.Text(), nullable=True),
    sa.Column("up", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("last_scrape", Time, nullable=True),
    sa.Column("last_success", Time, nullable=True),
    sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
    sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index(None, "shard"),
)

scrapes = sa.Table(
    "scrapes",
    metadata,
    sa.Column("id", Id, primary_key=True),
    _target_fk(),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("started", Time, nullable=False),
    sa.Column("duration", sa.Double(), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False, server_default=""),
    sa.Index(None, "target_id", "started"),
    sa.Index(None, "started"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", Id, primary_key=True),
    _target_fk(),
    sa.Column("time", Time, nullable=False),
    sa.Column("format", sa.Text(), nullable=False),
    sa.Column("profile", sa.Text(), nullable=False),
    sa.Column("total", sa.BigInteger(), nullable=False),
    sa.Column("group_count", sa.Integer(), nullable=False),
    sa.Column("truncated", sa.Boolean(), nullable=False),
    sa.Column("downsampled", sa.Boolean(), nullable=False, server_default=sa.false()),
    # Last: SQLite then reads the columns before it without touching the blob's overflow pages.
    sa.Column("groups", sa.LargeBinary(), nullable=False),
    # Added by migration 0002, so after the blob in SQLite: written once per snapshot and read
    # for one row (the target's previous build), never by a listing (see `events`).
    sa.Column("build", sa.JSON(), nullable=True),
    sa.Index(None, "target_id", "time"),
    sa.Index(None, "time"),
    sa.Index(None, "downsampled", "time"),
    sqlite_autoincrement=True,  # ids are never reused, even after the newest row is deleted
)

raws = sa.Table(
    "raws",
    metadata,
    sa.Column("snapshot_id", Id, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("time", Time, nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.Index(None, "time"),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("snapshot_id", Id, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("signature", sa.Text(), primary_key=True),
    sa.Column("key", sa.Text(), primary_key=True),
    sa.Column("value", sa.Text(), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Index(None, "key", "value", "time"),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", Id, primary_key=True),
    _target_fk(),
    sa.Column("finding_id", sa.Text(), nullable=False),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("first_seen", Time, nullable=False),
    sa.Column("last_seen", Time, nullable=False),
    sa.Column("resolved_at", Time, nullable=True),
    sa.Column("verdict", sa.Text(), nullable=False),
    sa.Column("category", sa.Text(), nullable=False),
    sa.Column("doc", sa.JSON(), nullable=False),
    sa.UniqueConstraint("target_id", "finding_id"),
    sa.Index(None, "state", "resolved_at"),
    sa.Index(None, "verdict"),
    sa.Index(None, "category"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("time", Time, nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),
    # NULL: about every target (a config reload of `grprof serve`).
    sa.Column("target_id", Id, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Index(None, "time"),
    sa.Index(None, "target_id", "time"),
)
