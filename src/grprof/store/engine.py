"""Connecting to the store's database, and migrating it.

SQLite: WAL (readers never block the writer), `synchronous=NORMAL` (a commit survives a
crash of the process, not necessarily of the machine), foreign keys on, a busy timeout, and
`BEGIN IMMEDIATE` for writes so a read-then-write transaction never fails half way on a lock.
PostgreSQL: psycopg 3, pre-pinged pooled connections; migrations under an advisory lock so
replicas starting together take turns.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from grprof.errors import GrprofError

MIGRATIONS = pathlib.Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
# pg_advisory_xact_lock key of the migration: ASCII "grprof-m".
MIGRATION_LOCK = int.from_bytes(b"grprof-m", "big") & 0x7FFF_FFFF_FFFF_FFFF
WRITE = "grprof_write"
"""Execution option: this transaction writes (SQLite: `BEGIN IMMEDIATE`)."""


class StoreError(GrprofError):
    """The store's database cannot be opened or migrated."""


def database_url(url_or_path: str) -> sa.URL:
    """A path or `sqlite:///...` is SQLite; `postgres(ql)://...` is PostgreSQL through psycopg 3."""
    if "://" not in url_or_path:
        path = pathlib.Path(url_or_path).expanduser().resolve()
        return sa.make_url(f"sqlite:///{path}")
    url = sa.make_url(url_or_path)
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:"):
            raise StoreError(f"{url_or_path}: the store needs a file, not an in-memory SQLite database")
        return url
    raise StoreError(f"{url_or_path}: unsupported database (a file path, sqlite:///PATH or postgresql://...)")


def make_engine(url: sa.URL, **pool: Any) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **pool)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def writer(engine: sa.Engine) -> sa.Engine:
    """The engine a store writes through. SQLite: its own, of one connection, which writers of
    this process take in turn (waiting up to the busy timeout); PostgreSQL: `engine`.

    Why: a SQLite connection drops its whole page cache when it starts a transaction after
    another connection wrote. With the pool's connections taking turns at writing, as a
    daemon's worker threads do, every write began cold: the b-tree pages of each table and
    index it touched read again from the file (`pread`) at every scrape. One writing
    connection keeps them; SQLite lets one writer at a time in any case."""
    if engine.dialect.name != "sqlite":
        return engine
    return make_engine(engine.url, pool_size=1, max_overflow=0, pool_timeout=BUSY_TIMEOUT_MS / 1000)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is off: `_sqlite_begin` issues BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # Only takes effect on a new, empty database (before the first table).
    cur.execute("PRAGMA auto_vacuum = INCREMENTAL")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


@contextlib.contextmanager
def transaction(engine: sa.Engine, *, write: bool) -> Iterator[sa.Connection]:
    """One transaction on a pooled connection, committed on success, rolled back on error."""
    with engine.connect() as conn:
        if write:
            conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


def migrate(engine: sa.Engine) -> None:
    """`alembic upgrade head`, serialized across processes opening the database at once."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def connect(url_or_path: str) -> sa.Engine:
    """An engine on a migrated database; `StoreError` (password hidden) when that fails."""
    url = database_url(url_or_path)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
    except (ImportError, sa.exc.ArgumentError) as e:
        raise StoreError(f"{shown}: {e}") from e
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"{shown}: {_first_line(e)}") from e
    return engine


def _first_line(e: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return text.splitlines()[0] if text else type(e).__name__
