"""Initial schema: targets, scrapes, snapshots, raws, labels, findings.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types in grprof.store.schema as of this revision.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time: sa.Double[float] = sa.Double()


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True)


def _fk(owner: str, column: str, table: str, *, primary_key: bool = False) -> sa.Column[int]:
    fk = sa.ForeignKey(f"{table}.id", ondelete="CASCADE", name=f"fk_{owner}_{column}_{table}")
    return sa.Column(column, Id, fk, nullable=False, primary_key=primary_key)


def upgrade() -> None:
    op.create_table(
        "targets",
        _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False, server_default=""),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("shard", sa.Text(), nullable=True),
        sa.Column("up", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_scrape", Time, nullable=True),
        sa.Column("last_success", Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_targets"),
        sa.UniqueConstraint("name", name="uq_targets_name"),
    )
    op.create_index("ix_targets_shard", "targets", ["shard"])

    op.create_table(
        "scrapes",
        _id(),
        _fk("scrapes", "target_id", "targets"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("started", Time, nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_scrapes"),
    )
    op.create_index("ix_scrapes_target_id_started", "scrapes", ["target_id", "started"])
    op.create_index("ix_scrapes_started", "scrapes", ["started"])

    op.create_table(
        "snapshots",
        _id(),
        _fk("snapshots", "target_id", "targets"),
        sa.Column("time", Time, nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("group_count", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("downsampled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("groups", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_snapshots_target_id_time", "snapshots", ["target_id", "time"])
    op.create_index("ix_snapshots_time", "snapshots", ["time"])
    op.create_index("ix_snapshots_downsampled_time", "snapshots", ["downsampled", "time"])

    op.create_table(
        "raws",
        _fk("raws", "snapshot_id", "snapshots", primary_key=True),
        sa.Column("time", Time, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", name="pk_raws"),
    )
    op.create_index("ix_raws_time", "raws", ["time"])

    op.create_table(
        "labels",
        _fk("labels", "snapshot_id", "snapshots"),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("time", Time, nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "signature", "key", "value", name="pk_labels"),
    )
    op.create_index("ix_labels_key_value_time", "labels", ["key", "value", "time"])

    op.create_table(
        "findings",
        _id(),
        _fk("findings", "target_id", "targets"),
        sa.Column("finding_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("first_seen", Time, nullable=False),
        sa.Column("last_seen", Time, nullable=False),
        sa.Column("resolved_at", Time, nullable=True),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.UniqueConstraint("target_id", "finding_id", name="uq_findings_target_id_finding_id"),
    )
    op.create_index("ix_findings_state_resolved_at", "findings", ["state", "resolved_at"])
    op.create_index("ix_findings_verdict", "findings", ["verdict"])
    op.create_index("ix_findings_category", "findings", ["category"])


def downgrade() -> None:
    for table in ("findings", "labels", "raws", "snapshots", "scrapes", "targets"):
        op.drop_table(table)
