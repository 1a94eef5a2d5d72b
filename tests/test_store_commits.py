"""Scrapes written in batches (grprof.store.commits): one transaction per batch, in order, a
bad job failing alone, and nothing a reader or a closed store can miss."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from grprof.store import ScrapeRecord, open_store
from grprof.store.commits import GroupCommit
from grprof.store.engine import make_engine, transaction

ROWS = sa.table("rows", sa.column("n", sa.Integer))


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    e = make_engine(sa.make_url(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with transaction(e, write=True) as conn:
        conn.exec_driver_sql("CREATE TABLE rows (n INTEGER NOT NULL CHECK (n >= 0))")
    return e


def _begins(engine: sa.Engine) -> list[int]:
    seen: list[int] = []
    sa.event.listen(engine, "begin", lambda conn: seen.append(1))
    return seen


def _rows(engine: sa.Engine) -> list[int]:
    with transaction(engine, write=False) as conn:
        return [r[0] for r in conn.execute(sa.select(ROWS.c.n).order_by(sa.text("rowid")))]


def _insert(n: int):  # type: ignore[no-untyped-def]
    return lambda conn: conn.execute(sa.insert(ROWS).values(n=n))


def test_queued_writes_commit_in_one_transaction_in_order(engine: sa.Engine) -> None:
    commits = GroupCommit(engine, interval=60.0)
    commits.flush()
    commits.run(lambda conn: None, "a batch now: the next is due in a minute, or when waited for")
    begins = _begins(engine)
    for n in range(50):
        commits.submit(_insert(n), f"row {n}")
    assert _rows(engine) == []  # queued, not written yet
    before = len(begins)
    commits.flush()
    assert len(begins) - before == 1  # the 50 rows and flush's own marker
    assert _rows(engine) == list(range(50))
    commits.close()


def test_a_bad_job_fails_alone(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    rolled_back = threading.Event()
    commits = GroupCommit(engine, interval=60.0, on_rollback=rolled_back.set)
    commits.submit(_insert(1), "row 1")
    commits.submit(_insert(-1), "target t: the bad row")  # the CHECK fails
    commits.submit(_insert(2), "row 2")
    with caplog.at_level(logging.ERROR, logger="grprof.store.commits"):
        with pytest.raises(sa.exc.IntegrityError):
            commits.run(_insert(-2), "a waited bad row")
        assert (
            commits.run(
                lambda conn: conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar(), "count"
            )
            == 2
        )
    assert _rows(engine) == [1, 2]
    assert rolled_back.is_set()
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and logged[0].startswith("store: target t: the bad row: ")
    commits.close()


def test_a_batch_starts_after_the_interval_without_a_waiter(engine: sa.Engine) -> None:
    commits = GroupCommit(engine, interval=0.05)
    commits.submit(_insert(7), "row 7")
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while _rows(engine) != [7]:
        assert dt.datetime.now() < deadline, "the queued row was never committed"
    commits.close()


def test_close_commits_what_is_queued_and_what_comes_after(engine: sa.Engine) -> None:
    commits = GroupCommit(engine, interval=60.0)
    for n in range(3):
        commits.submit(_insert(n), f"row {n}")
    commits.close()
    assert _rows(engine) == [0, 1, 2]
    # a worker finishing its scrape while the daemon stops: written at once, not lost
    commits.submit(_insert(9), "row 9")
    assert _rows(engine) == [0, 1, 2, 9]
    assert commits.run(lambda conn: conn.execute(sa.select(sa.func.max(ROWS.c.n))).scalar(), "max") == 9


def test_a_store_reads_the_scrapes_it_queued(tmp_path: Path) -> None:
    """The daemon's writes (`wait=False`) are seen by every later read, and survive close."""
    path = str(tmp_path / "grprof.db")
    store = open_store(path)
    started = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    for i in range(20):
        rec = ScrapeRecord(f"t{i % 4}", "debug=1", started + dt.timedelta(seconds=i), 0.01, "ok", 10)
        store.add_scrape(rec, wait=False)
    assert {t.name: t.last_scrape for t in store.targets()} == {
        f"t{i}": started + dt.timedelta(seconds=16 + i) for i in range(4)
    }
    store.add_scrape(
        ScrapeRecord("t9", "debug=1", started, 0.01, "connection_error", 0, "refused"), wait=False
    )
    store.close()
    again = open_store(path)
    assert [t.name for t in again.targets()] == ["t0", "t1", "t2", "t3", "t9"]
    again.close()


def test_a_full_queue_makes_writers_wait(engine: sa.Engine) -> None:
    """A database slower than the scrapes slows the scrapes; memory does not fill with writes."""
    commits = GroupCommit(engine, interval=60.0, max_jobs=1, max_queued=2)
    started, release = threading.Event(), threading.Event()
    commits.submit(lambda conn: (started.set(), release.wait(10)), "a slow write")
    assert started.wait(10)
    commits.submit(_insert(1), "row 1")
    commits.submit(_insert(2), "row 2")  # the queue is full now
    third = threading.Thread(target=commits.submit, args=(_insert(3), "row 3"))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "a write was queued past the limit"
    release.set()
    third.join(10)
    assert not third.is_alive()
    commits.close()
    assert _rows(engine) == [1, 2, 3]
