"""Alembic environment of the store.

`SQLStore.open` runs `upgrade head` on a connection it already holds inside a transaction
(under a lock: PostgreSQL advisory lock, SQLite `BEGIN IMMEDIATE`) and passes it in
`config.attributes["connection"]`. Without one (developers running `alembic` by hand, e.g.
`alembic -c /dev/null -x url=sqlite:///x.db revision --autogenerate`), it connects to the
`url` given with `-x url=...` or the `sqlalchemy.url` option.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from grprof.store.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: later migrations copy and swap tables there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, sa.Connection):
        _run(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... (or open the store with SQLStore.open)")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


main()
