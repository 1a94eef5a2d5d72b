"""`kill -9` at any moment leaves the store consistent and loses at most the snapshot in flight.

A writer subprocess (this file run as a script) opens the store and adds real snapshots, raw
bytes included, in a loop: zoo dumps with labels, and a big debug=2 dump of a real Go program
parking a thousand goroutines with deep stacks. It prints `BEGIN k` before each write and
`COMMIT id k` after each commit. The test SIGKILLs it at random moments (many while the big
snapshot is being written), then opens the database: SQLite's integrity check passes, every
id printed as committed is there with its groups, raw bytes and label rows intact, at most
the one write in flight is missing (or is there, whole), and the next writer carries on.
"""

from __future__ import annotations

import hashlib
import queue
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
SMALL = [
    *sorted(ZOO.glob("*.goroutine.debug2.txt")),
    ZOO / "4-leak-4.goroutine.debug1.txt",
    ZOO / "4-leak-4.goroutine.debug0.pb.gz",
    ZOO / "4-leak-4.goroutineleak.debug1.txt",
    FIXTURES / "states" / "go1.26.8" / "goroutine-after-leak.debug2.txt",
    FIXTURES / "states" / "go1.27.3-gomod1.27" / "goroutine.debug2.txt",
]
STARTUP_TIMEOUT = 60.0


# -- the writer (this file as a script) ------------------------------------------------------


def writer_main(argv: list[str]) -> None:
    """`python test_store_crash.py URL START FILE...`: add FILE[(START + i) % n] forever."""
    import grprof
    from grprof.store.sql import SQLStore

    url, start, paths = argv[0], int(argv[1]), argv[2:]
    snaps = [grprof.load(p) for p in paths]
    raws = [Path(p).read_bytes() for p in paths]
    store = SQLStore.open(url)
    print("READY", flush=True)
    i = start
    while True:
        k = i % len(paths)
        print(f"BEGIN {k}", flush=True)
        sid = store.add_snapshot(f"t{k % 3}", snaps[k], raw=raws[k])
        print(f"COMMIT {sid} {k}", flush=True)
        i += 1


# -- the test side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a fixture's stored snapshot must hold."""

    total: int
    groups: list[tuple[str, int]]
    raw_sha: str
    label_rows: int


def expectations(paths: list[Path]) -> list[Expected]:
    import grprof
    from grprof.store.codec import label_rows

    out = []
    for p in paths:
        snap = grprof.load(p)
        groups = snap.groups()
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        out.append(
            Expected(snap.total, [(g.signature, g.count) for g in groups], sha, len(list(label_rows(groups))))
        )
    return out


class Writer:
    """A running writer and the lines it printed (a thread drains its stdout)."""

    def __init__(self, url: str, start: int, paths: list[Path]) -> None:
        cmd = [sys.executable, __file__, url, str(start), *map(str, paths)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.endswith(b"\n"):  # a line cut by the kill never happened
                self.lines.put(raw.decode().strip())
        self.lines.put(None)

    def wait_for(self, pred: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"writer: no expected line within {timeout}s; saw {self.seen[-5:]}"
                ) from None
            if line is None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"writer exited with {self.proc.wait()}:\n{err[-3000:]}")
            self.seen.append(line)
            if pred(line):
                return

    def kill(self) -> tuple[dict[int, int], int | None]:
        """SIGKILL; return (committed id -> fixture index, fixture in flight or None)."""
        self.proc.kill()
        self.proc.wait()
        while (line := self.lines.get(timeout=30)) is not None:
            self.seen.append(line)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        committed: dict[int, int] = {}
        in_flight = None
        for line in self.seen:
            word, *args = line.split()
            if word == "BEGIN":
                in_flight = int(args[0])
            elif word == "COMMIT":
                committed[int(args[0])] = int(args[1])
                in_flight = None
        return committed, in_flight


@dataclass
class Run:
    url: str
    paths: list[Path]
    expected: list[Expected]
    committed: dict[int, int] = field(default_factory=dict)
    kills_in_flight: int = 0
    kills_in_big: int = 0

    @property
    def big(self) -> int:
        return len(self.paths) - 1

    def cycle(self, rng: random.Random) -> None:
        w = Writer(self.url, rng.randrange(len(self.paths)), self.paths)
        try:
            w.wait_for(lambda line: line == "READY", STARTUP_TIMEOUT)
            if rng.random() < 0.5:  # during (or just before, or just after) the big write
                w.wait_for(lambda line: line == f"BEGIN {self.big}", STARTUP_TIMEOUT)
                time.sleep(rng.uniform(0.0, 0.08))
            else:
                n = rng.randrange(6)
                for _ in range(n):
                    w.wait_for(lambda line: line.startswith("COMMIT"), STARTUP_TIMEOUT)
                time.sleep(rng.uniform(0.0, 0.01))
        finally:
            committed, in_flight = w.kill()
        self.kills_in_flight += in_flight is not None
        self.kills_in_big += in_flight == self.big
        self.check(committed, in_flight)

    def check(self, new: dict[int, int], in_flight: int | None) -> None:
        from grprof.store.sql import SQLStore

        if self.url.startswith("postgres"):
            check_postgres_consistent(self.url)
        else:
            check_sqlite_consistent(self.url)
        store = SQLStore.open(self.url)
        try:
            ids = {m.id for t in ("t0", "t1", "t2") for m in store.snapshots(t, limit=10**6)}
            missing = set(self.committed) - ids
            assert not missing, f"committed snapshots lost: {sorted(missing)}"
            extra = ids - set(self.committed) - set(new)
            # The write in flight committed before its COMMIT line was printed: whole, or absent.
            assert len(extra) <= 1 and (not extra or in_flight is not None), (extra, in_flight)
            for sid in extra:
                assert in_flight is not None
                new[sid] = in_flight
            self.committed |= new
            for sid, k in new.items():
                check_snapshot(store, sid, self.expected[k])
        finally:
            store.close()

    def check_all(self) -> None:
        from grprof.store.sql import SQLStore

        store = SQLStore.open(self.url)
        try:
            for sid, k in self.committed.items():
                check_snapshot(store, sid, self.expected[k])
        finally:
            store.close()


def check_snapshot(store: object, sid: int, exp: Expected) -> None:
    from grprof.store.sql import SQLStore

    assert isinstance(store, SQLStore)
    got = store.snapshot(sid)
    assert got is not None, sid
    meta, groups = got
    assert (meta.total, meta.has_raw) == (exp.total, True), sid
    assert [(g.signature, g.count) for g in groups] == exp.groups, sid
    raw = store.raw(sid)
    assert raw is not None and hashlib.sha256(raw).hexdigest() == exp.raw_sha, sid
    with store.engine.connect() as conn:
        n = conn.exec_driver_sql(f"SELECT count(*) FROM labels WHERE snapshot_id = {int(sid)}").scalar()
    assert n == exp.label_rows, sid


def check_sqlite_consistent(path: str) -> None:
    """Open it the way anything else would (sqlite3, no grprof): recovery, then full checks."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def check_postgres_consistent(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgres://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            for table in ("labels", "raws"):
                sql = f"SELECT count(*) FROM {table} WHERE snapshot_id NOT IN (SELECT id FROM snapshots)"
                assert conn.exec_driver_sql(sql).scalar() == 0, table
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~6 MB debug=2 dump of a real Go program (tests/goapps/many), fetched over HTTP."""
    from gobuild import fetch, run_goapp

    with run_goapp("many", "-n", "1000", "-depth", "60") as (_, base):
        data = fetch(base, "/debug/pprof/goroutine?debug=2")
    path = tmp_path_factory.mktemp("crash") / "many.goroutine.debug2.txt"
    path.write_bytes(data)
    assert len(data) > 4 << 20
    return path


def run_kills(url: str, big_dump: Path, kills: int, seed: int) -> Run:
    paths = [*SMALL, big_dump]
    run = Run(url, paths, expectations(paths))
    rng = random.Random(seed)
    for _ in range(kills):
        run.cycle(rng)
    # Writing continues after the last kill too, and nothing written earlier has changed.
    before = len(run.committed)
    w = Writer(url, 0, paths)
    try:
        w.wait_for(lambda line: line == "READY", STARTUP_TIMEOUT)
        for _ in range(3):
            w.wait_for(lambda line: line.startswith("COMMIT"), STARTUP_TIMEOUT)
    finally:
        committed, in_flight = w.kill()
    run.check(committed, in_flight)
    assert len(run.committed) >= before + 3
    run.check_all()
    return run


def test_sqlite_survives_kill_9(tmp_path: Path, big_dump: Path) -> None:
    run = run_kills(str(tmp_path / "crash.db"), big_dump, kills=24, seed=1)
    # The kills really landed inside writes, the big one included.
    assert run.kills_in_flight >= 8 and run.kills_in_big >= 4, (run.kills_in_flight, run.kills_in_big)


def test_postgresql_survives_kill_9(postgres: object, big_dump: Path) -> None:
    from pgserver import PgServer

    assert isinstance(postgres, PgServer)
    url = postgres.create_database(f"crash_{uuid.uuid4().hex[:12]}")
    run = run_kills(url, big_dump, kills=8, seed=2)
    assert run.kills_in_flight >= 2, run.kills_in_flight


if __name__ == "__main__":
    writer_main(sys.argv[1:])
