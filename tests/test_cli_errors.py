"""Bad input: one line naming the input and what is wrong, exit status 2, no traceback."""

from __future__ import annotations

import gzip
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

GRPROF = [sys.executable, "-m", "grprof.cli"]


def run(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRPROF, *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_bad_input(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    line = lines[0]
    assert line.startswith("grprof: ")
    for n in needles:
        assert n in line, (n, line)
    return line


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    assert_bad_input(run("analyze", str(missing)), str(missing), "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_bad_input(run("analyze", str(tmp_path)), str(tmp_path), "directory")


def test_not_a_dump(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello\nthis is not a goroutine dump\n" * 100)
    assert_bad_input(run("analyze", str(f)), str(f), 'not a goroutine dump: no "goroutine N [" header')


def test_empty_input(tmp_path: Path) -> None:
    f = tmp_path / "empty.txt"
    f.write_bytes(b"")
    assert_bad_input(run("analyze", str(f)), str(f), "empty input")


def test_binary_garbage_from_stdin() -> None:
    p = run("analyze", "-", stdin=bytes(range(256)) * 40)
    assert_bad_input(p, "<stdin>")


def test_corrupt_gzip(tmp_path: Path) -> None:
    f = tmp_path / "dump.txt.gz"
    data = gzip.compress(b"goroutine 1 [running]:\nmain.main()\n\t/x/main.go:3 +0x1\n" * 50)
    f.write_bytes(data[:20] + b"\xff" * 40 + data[60:])
    assert_bad_input(run("analyze", str(f)), str(f), "gzip")


def test_truncated_gzip(tmp_path: Path) -> None:
    f = tmp_path / "dump.txt.gz"
    data = gzip.compress(os.urandom(1 << 16))
    f.write_bytes(data[: len(data) // 2])
    assert_bad_input(run("analyze", str(f)), str(f), "gzip: stream ends early")


def test_gzip_bomb_stops_at_limit(tmp_path: Path) -> None:
    f = tmp_path / "bomb.gz"
    with gzip.open(f, "wb", compresslevel=9) as g:
        zeros = b"\0" * (1 << 20)
        for _ in range(64):
            g.write(zeros)
    assert f.stat().st_size < 1 << 20
    p = run("analyze", "--max-size", "8MiB", str(f))
    assert_bad_input(p, str(f), "size limit of 8 MiB", "--max-size")


def test_bad_regex_is_a_usage_error(tmp_path: Path) -> None:
    p = run("analyze", "--filter", "(", "x.txt")
    assert p.returncode == 2
    assert "bad regular expression" in p.stderr
    assert "Traceback" not in p.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/debug/pprof/goroutine?debug=2"
    assert_bad_input(run("analyze", url), url, "unreachable", "refused")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(5)
        try:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"404 page not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # /slow: grprof gave up waiting (what the test checks) and closed the socket

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_http_error_status(server: str) -> None:
    url = server + "/debug/pprof/goroutineleak?debug=1"
    assert_bad_input(run("analyze", url), url, "HTTP 404")


def test_http_timeout(server: str) -> None:
    url = server + "/slow"
    t0 = time.monotonic()
    line = assert_bad_input(run("analyze", "--timeout", "0.5", url), url, "timed out after 0.5s")
    assert time.monotonic() - t0 < 4.5, line
