"""A throwaway real PostgreSQL server for tests.

`start_postgres()` finds the Debian PostgreSQL binaries (installing the
`postgresql` package first when it is missing and we are root), runs `initdb`
into a fresh temporary directory, starts the server on a free 127.0.0.1 port
with its unix socket inside that directory (no collisions between pytest-xdist
workers: each gets its own directory, port and server), creates the database
`grprof`, and returns a `PgServer`. Use it as a context manager or call
`.stop()`; stopping removes the directory.

    with start_postgres() as pg:
        run(..., pg.dsn)   # postgres://postgres@127.0.0.1:PORT/grprof?sslmode=disable

Settings favour speed over durability (fsync off, small shared buffers).
PostgreSQL refuses to run as root, so as root initdb and the server run as the
`postgres` system user (in a directory it owns).

Tests get a session-wide server from the `postgres` fixture; import it into
tests/conftest.py with `from pgserver import postgres  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from types import TracebackType
from typing import NamedTuple

import pytest

DATABASE = "grprof"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
MAX_CONNECTIONS = 300
PG_ROOT = pathlib.Path("/usr/lib/postgresql")

# Durability is worthless for a throwaway server; these make start and writes fast.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": str(MAX_CONNECTIONS),
    "dynamic_shared_memory_type": "mmap",
    "logging_collector": "off",
}


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be provided here; the message says why (tests skip with it)."""


class PgServer:
    """A running throwaway PostgreSQL server."""

    def __init__(self, proc: subprocess.Popen[bytes], root: pathlib.Path, port: int, bindir: pathlib.Path):
        self.proc = proc
        self.root = root
        self.port = port
        self.bindir = bindir
        self.host = "127.0.0.1"
        self.database = DATABASE
        self.user = SUPERUSER

    @property
    def dsn(self) -> str:
        """libpq-style URL (Go's lib/pq and pgx, psql): postgres://postgres@127.0.0.1:PORT/grprof?sslmode=disable"""
        return self.url("postgres") + "?sslmode=disable"

    def url(self, scheme: str = "postgresql", database: str | None = None) -> str:
        """The server as a URL with another scheme, e.g. SQLAlchemy's `postgresql+psycopg`."""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{database or self.database}"

    def create_database(self, name: str) -> str:
        """Create a fresh database (e.g. one per test on a session-wide server); return its dsn."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name must be alphanumeric: {name!r}")
        self.psql(f"CREATE DATABASE {name}", database="postgres")
        return self.url("postgres", name) + "?sslmode=disable"

    @property
    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run one SQL command through psql over TCP; return its unaligned output."""
        cmd = [str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user]
        cmd += ["-d", database or self.database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
        return out.stdout.strip()

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL if it hangs, then remove the directory. Idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_postgres(attempts: int = 5) -> PgServer:
    """Start a fresh server and create its database; raise PgUnavailable if impossible."""
    bindir = find_bindir()
    _remove_stale()
    last = ""
    for _ in range(attempts):
        root = _make_root()
        try:
            _initdb(bindir, root)
            server = _launch(bindir, root, _free_port())
        except _PortTaken as e:  # another worker took the port between probe and bind
            last = str(e)
            shutil.rmtree(root, ignore_errors=True)
            continue
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        try:
            server.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        except BaseException:
            server.stop()
            raise
        return server
    raise PgUnavailable(f"PostgreSQL did not start after {attempts} attempts: {last}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL server for the whole test session (one per xdist worker)."""
    try:
        server = start_postgres()
    except PgUnavailable as e:
        pytest.skip(str(e))
    with server:
        yield server


def find_bindir() -> pathlib.Path:
    """The newest /usr/lib/postgresql/<ver>/bin, installing Debian's package if needed."""
    found = _bindirs()
    if not found:
        _install()
        found = _bindirs()
    if not found:
        raise PgUnavailable(f"no PostgreSQL binaries under {PG_ROOT} after installing `postgresql`")
    return found[-1]


def _bindirs() -> list[pathlib.Path]:
    dirs = [p / "bin" for p in PG_ROOT.glob("*") if (p / "bin" / "initdb").is_file()]
    return sorted(dirs, key=lambda p: _version_key(p.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit())


def _install() -> None:
    if os.geteuid() != 0:
        raise PgUnavailable(
            "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise PgUnavailable(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")


class _PortTaken(RuntimeError):
    pass


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as: the postgres user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError as e:
        raise PgUnavailable("running as root but there is no `postgres` system user to run the server") from e
    return pw.pw_uid, pw.pw_gid


def _make_root() -> pathlib.Path:
    # Not under pytest's tmp_path: its parents are private to root and the server user must enter.
    root = pathlib.Path(tempfile.mkdtemp(prefix="grprof-pg-", dir=_tmp_parent()))
    user = _server_user()
    if user is not None:
        os.chown(root, *user)
    return root


def _remove_stale(min_age: float = 600.0) -> None:
    """Remove data directories of servers whose test run was killed (no live postmaster).

    Only directories older than min_age: a younger one may be another worker's initdb."""
    for root in pathlib.Path(_tmp_parent()).glob("grprof-pg-*"):
        pidfile = root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            if time.time() - root.stat().st_mtime < min_age:
                continue
            if pidfile.exists() and _alive(int(pidfile.read_text().split()[0])):
                continue
            shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tmp_parent() -> str:
    parent = tempfile.gettempdir()
    # The server user must be able to traverse the parent (TMPDIR may be private).
    return parent if os.stat(parent).st_mode & 0o001 else "/tmp"


class _RunAs(NamedTuple):
    """Popen's user, group and extra_groups for the server user (all None when not root)."""

    user: int | None
    group: int | None
    extra_groups: list[int] | None


def _run_as() -> _RunAs:
    user = _server_user()
    if user is None:
        return _RunAs(None, None, None)
    groups = [g.gr_gid for g in grp.getgrall() if "postgres" in g.gr_mem]
    return _RunAs(user[0], user[1], groups)


def _initdb(bindir: pathlib.Path, root: pathlib.Path) -> None:
    cmd = [str(bindir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER, "--auth=trust"]
    cmd += ["--encoding=UTF8", "--locale=C", "--no-sync"]
    who = _run_as()
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        user=who.user,
        group=who.group,
        extra_groups=who.extra_groups,
    )
    if out.returncode != 0:
        raise PgUnavailable(f"initdb failed: {out.stderr.strip()[-800:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _launch(bindir: pathlib.Path, root: pathlib.Path, port: int) -> PgServer:
    settings = {**SETTINGS, "listen_addresses": "127.0.0.1", "port": str(port)}
    settings["unix_socket_directories"] = str(root)
    cmd = [str(bindir / "postgres"), "-D", str(root / "data")]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    cmd = _die_with_parent(cmd)
    log = os.open(root / "postgres.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        who = _run_as()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
            user=who.user,
            group=who.group,
            extra_groups=who.extra_groups,
        )
    finally:
        os.close(log)
    server = PgServer(proc, root, port, bindir)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _die_with_parent(cmd: list[str]) -> list[str]:
    """Wrap cmd so the server gets SIGINT (fast shutdown) when the process that started it
    dies, even by SIGKILL: an aborted test run leaves no server behind. util-linux's setpriv
    sets the parent-death signal after Popen switched users (a uid change would clear it),
    then execs the server in place. The "parent" is the starting thread: start servers from
    a thread that outlives them (pytest's main thread does)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "INT", "--", *cmd] if setpriv else cmd


def _wait_ready(server: PgServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = server.log
            if "Address already in use" in log or "could not bind" in log:
                raise _PortTaken(f"port {server.port} taken")
            raise PgUnavailable(f"postgres exited with {server.proc.returncode}:\n{log[-2000:]}")
        if _accepts(server):
            return
        time.sleep(0.05)
    raise PgUnavailable(f"postgres not ready within {START_TIMEOUT}s:\n{server.log[-2000:]}")


def _accepts(server: PgServer) -> bool:
    cmd = [
        str(server.bindir / "pg_isready"),
        "-q",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        SUPERUSER,
    ]
    with contextlib.suppress(subprocess.TimeoutExpired):
        return subprocess.run(cmd, timeout=5, check=False).returncode == 0
    return False
