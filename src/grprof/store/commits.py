"""Writes of many threads committed together: one transaction per batch, not per scrape.

Contract: `GroupCommit.submit(job)` queues `job(conn)` and returns at once; `run(job)` queues
it and waits for its result (or exception). Jobs run in the order they were queued, on one
thread of their own, each batch (what is queued when that thread wakes, up to `max_jobs`) in
one write transaction. The thread wakes `interval` seconds after it last began a batch, or at
once when someone waits (`run`, `flush`), when `max_jobs` are queued, or at `close`. A batch
that fails is rolled back, `on_rollback` is called (caches of rows the batch made are wrong
now), and its jobs run again one transaction each: a bad job fails alone, and only it. The
exception of a job nobody waits for is logged with the job's description. `flush()` returns
once everything queued before it is committed (or failed); `close()` flushes, then stops the
thread; a job queued after it is committed at once, in the caller's thread. A job must not
call back into the store's public methods (they flush: it would wait for itself).

Why: a daemon of 1,000 targets stores some 67 scrapes a second. In a transaction each, every
scrape pays BEGIN and COMMIT and writes again the pages it shares with the scrapes of the other
targets (the tail pages of `scrapes`, `snapshots` and their indexes by time, the label index's
inner pages): in SQLite's WAL, one 4 KiB frame per page and commit. In batches, those pages
are written once per batch; what a scrape's worker thread waited for (the one writing
connection, `engine.writer`) it no longer waits for. The price: a crash loses what was queued
(at most `interval` seconds of scrapes, or `max_queued` writes when the database is slower
than the scrapes), and the store's reads flush first, so a reader still
sees every write made before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from grprof.store.engine import transaction
from grprof.store.model import WriteStats

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sa.Connection], Any]

INTERVAL = 0.25
"""Seconds between batches when nobody waits: at 67 scrapes a second, batches of ~17."""
MAX_JOBS = 256
MAX_QUEUED = 4 * MAX_JOBS
"""Writes queued at most: past it, `submit` waits (a slow database slows the scrapes, which
`grprof_scrape_lag_seconds` shows, rather than filling memory with queued snapshots)."""
THREAD = "grprof-store-writer"


@dataclass(eq=False)
class _Queued:
    """A job, what it is (for the log) and, when someone waits, where its result goes."""

    fn: Job
    what: str
    done: Future[Any] | None = field(default=None)
    counted: bool = True
    """False for `flush`'s own marker: not a write in `stats()`."""


class GroupCommit:
    """The write queue of one engine (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        on_rollback: Callable[[], None] = lambda: None,
        interval: float = INTERVAL,
        max_jobs: int = MAX_JOBS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._engine = engine
        self._on_rollback = on_rollback
        self._interval = interval
        self._max = max_jobs
        self._max_queued = max_queued
        self._cond = threading.Condition()
        self._queue: list[_Queued] = []
        self._waited = 0  # queued jobs someone waits for: the batch starts now
        self._unfinished = 0  # queued or in the running batch
        self._closing = False
        self._thread: threading.Thread | None = None
        self._batches = self._written = self._failed = 0

    def submit(self, fn: Job, what: str) -> None:
        """Queue `fn`; its exception, if any, is logged as `what`."""
        self._put(_Queued(fn, what))

    def run(self, fn: Callable[[sa.Connection], T], what: str) -> T:
        """Queue `fn`, commit its batch now, and return what it returned (or raise)."""
        done: Future[T] = Future()
        self._put(_Queued(fn, what, done))
        return done.result()

    def flush(self) -> None:
        """Return once what was queued before is committed (or has failed)."""
        with self._cond:
            if self._unfinished == 0:
                return
        done: Future[None] = Future()
        self._put(_Queued(lambda conn: None, "flush", done, counted=False))
        done.result()

    def stats(self) -> WriteStats:
        with self._cond:
            return WriteStats(len(self._queue), self._batches, self._written, self._failed)

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- the writing thread ----------------------------------------------------------------

    def _put(self, q: _Queued) -> None:
        with self._cond:
            while len(self._queue) >= self._max_queued and not self._closing:
                self._cond.wait()
            closing = self._closing
            if not closing:
                self._queue.append(q)
                self._unfinished += 1
                if q.done is not None:
                    self._waited += 1
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=THREAD, daemon=True)
                    self._thread.start()
                self._cond.notify_all()
        if closing:
            # A write that comes after close (a worker thread finishing a scrape while the
            # daemon stops) is not lost: it is committed here, in a transaction of its own.
            self._commit([q])

    def _loop(self) -> None:
        last = -self._interval
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                due = last + self._interval
                while not (self._waited or self._closing or len(self._queue) >= self._max):
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                self._waited -= sum(q.done is not None for q in batch)
                self._cond.notify_all()  # room in the queue
            last = time.monotonic()
            try:
                self._commit(batch)
            except Exception as e:  # `on_rollback` failed: no waiter may be left hanging
                log.exception("store: a batch of %d writes", len(batch))
                for q in batch:
                    if q.done is not None and not q.done.done():
                        q.done.set_exception(e)
            finally:
                with self._cond:
                    self._unfinished -= len(batch)

    def _commit(self, batch: list[_Queued]) -> None:
        try:
            with transaction(self._engine, write=True) as conn:
                results = [q.fn(conn) for q in batch]
        except Exception as e:
            self._on_rollback()
            if len(batch) == 1:
                with self._cond:
                    self._failed += batch[0].counted
                _fail(batch[0], e)
                return
            for q in batch:  # one at a time: only the bad job fails
                self._commit([q])
            return
        with self._cond:
            written = sum(q.counted for q in batch)
            self._batches += written > 0
            self._written += written
        for q, r in zip(batch, results, strict=True):
            if q.done is not None:
                q.done.set_result(r)


def _fail(q: _Queued, e: Exception) -> None:
    if q.done is not None:
        q.done.set_exception(e)
    else:
        log.error("store: %s: %s", q.what, e)
