"""History: targets, scrapes, snapshots (groups) and findings, in SQLite or PostgreSQL.

`open_store(url_or_path)` returns a `Store`: a path (default `./grprof.db`) is SQLite in WAL
mode, `postgresql://...` is PostgreSQL for shared deployments. The schema is managed by
Alembic migrations, applied on open.
"""

from grprof.store.model import (
    RetentionPolicy,
    ScrapeRecord,
    SnapshotMeta,
    Store,
    StoredEvent,
    StoredFinding,
    StoredGroup,
    StoredTarget,
)

__all__ = [
    "RetentionPolicy",
    "ScrapeRecord",
    "SnapshotMeta",
    "Store",
    "StoredEvent",
    "StoredFinding",
    "StoredGroup",
    "StoredTarget",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open (and migrate) the store at a path (SQLite) or a `postgresql://` URL."""
    from grprof.store.sql import SQLStore

    return SQLStore.open(url)
