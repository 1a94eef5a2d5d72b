"""Events (config reloads, deploys) and each snapshot's build identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

`snapshots.build` is added in place (`ALTER TABLE ... ADD COLUMN`, nullable, no default: no
table rewrite on either database, so a large store migrates at once). On SQLite it lands after
the `groups` blob; nothing lists it (a deploy is found when a snapshot is stored and recorded
in `events`). Never a batch copy of `snapshots` on SQLite: with foreign keys on, dropping the
old table would cascade to `raws` and `labels`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the types in grprof.store.schema as of this revision.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.add_column("snapshots", sa.Column("build", sa.JSON(), nullable=True))
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True),
        sa.Column("time", Time, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "target_id",
            Id,
            sa.ForeignKey("targets.id", ondelete="CASCADE", name="fk_events_target_id_targets"),
            nullable=True,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_target_id_time", "events", ["target_id", "time"])


def downgrade() -> None:
    op.drop_table("events")
    # SQLite >= 3.35 drops a column in place (again no copy of `snapshots`).
    op.execute("ALTER TABLE snapshots DROP COLUMN build")
