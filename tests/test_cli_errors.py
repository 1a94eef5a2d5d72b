"""Bad input: one line naming the input and what is wrong, exit status 2, no traceback."""

from __future__ import annotations

import gzip
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from serveproc import run_serve

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


# -- serve: the error comes before the "serve on" line, as one line, exit 2 ------------------


def serve_fails(tmp_path: Path, *args: str) -> str:
    p = run("serve", "--db", str(tmp_path / "g.db"), *args, timeout=60)
    line = assert_bad_input(p, *(a for a in args if not a.startswith("-")))
    assert "serve on" not in p.stderr + p.stdout
    return line


@pytest.mark.parametrize(
    ("listen", "needle"),
    [("nonsense", "must be HOST:PORT"), ("127.0.0.1:99999", "must be HOST:PORT")],
)
def test_serve_bad_listen(tmp_path: Path, listen: str, needle: str) -> None:
    line = serve_fails(tmp_path, "--listen", listen)
    assert f"--listen {listen}:" in line and needle in line


def test_serve_unresolvable_listen_host(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--listen", "no-such-host.invalid:8080")
    assert "cannot resolve" in line


def test_serve_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        line = serve_fails(tmp_path, "--listen", listen)
    assert "address already in use" in line
    assert not (tmp_path / "g.db").exists()  # failed before opening (creating) the database


def test_serve_bad_config_value(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text("listen: 127.0.0.1:8080\nscrape: {interval: soon}\n")
    line = serve_fails(tmp_path, "--config", str(cfg))
    assert f"{cfg}:2: scrape.interval" in line


def test_serve_missing_config(tmp_path: Path) -> None:
    cfg = tmp_path / "nope.yaml"
    line = serve_fails(tmp_path, "--config", str(cfg))
    assert "cannot read the configuration: No such file" in line


def test_serve_config_is_a_directory(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--config", str(tmp_path))
    assert "cannot read the configuration" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_serve_unreadable_config(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text("listen: 127.0.0.1:8080\n")
    cfg.chmod(0)
    line = serve_fails(tmp_path, "--config", str(cfg))
    assert "Permission denied" in line


def test_usage_error_is_one_line() -> None:
    p = run("analyze", "--top", "many", "x.txt")
    assert_bad_input(p, "--top", "not a number", "grprof analyze --help")


# -- broken pipe -------------------------------------------------------------------------------


def many_groups(path: Path, n: int = 5000) -> Path:
    """A dump of `n` distinct goroutine groups: megabytes of report, far over a pipe's buffer."""
    with path.open("w") as f:
        for i in range(1, n + 1):
            f.write(
                f"goroutine {i} [chan receive, {i % 60} minutes]:\nmain.worker{i}(0xc000{i:06x})\n"
                f"\t/src/app/main.go:{i} +0x{i:x}\ncreated by main.main in goroutine 1\n"
                "\t/src/app/main.go:3 +0x1d\n\n"
            )
    return path


@pytest.mark.parametrize("fmt", [["--json"], ["--top", "5000", "--stacks", "5000"]])
def test_broken_pipe_is_quiet(tmp_path: Path, fmt: list[str]) -> None:
    """`grprof analyze big.txt | head -c 10`: status 0, nothing on stderr."""
    dump = many_groups(tmp_path / "many.txt")
    grprof = subprocess.Popen(
        [*GRPROF, "analyze", *fmt, str(dump)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert grprof.stdout is not None
    head = subprocess.run(["head", "-c", "10"], stdin=grprof.stdout, capture_output=True, timeout=60)
    grprof.stdout.close()  # only `head` held the read end, and it exited: the pipe is broken
    _, err = grprof.communicate(timeout=60)
    assert len(head.stdout) == 10
    assert grprof.returncode == 0, err
    assert err == b""


# -- /docs offline ------------------------------------------------------------------------------


def test_docs_use_packaged_assets(tmp_path: Path) -> None:
    with run_serve(["--db", str(tmp_path / "g.db")]) as srv:
        html = srv.get("/docs")
        urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]|url:\s*['"]([^'"]+)['"]""", html)
        assets = [a or b for a, b in urls]
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets), html
        assert any(a.endswith("swagger-ui.css") for a in assets), html
        for asset in assets:
            assert asset.startswith("/"), asset  # local: no CDN, no other host
            with urllib.request.urlopen(srv.base + asset, timeout=30) as r:
                assert r.status == 200, asset
                assert r.read(), asset
        assert "//" not in "".join(a for a in assets)
        assert "cdn" not in html.lower()
        # ReDoc too, from the copy vendored in grprof/data/redoc
        with urllib.request.urlopen(srv.base + "/redoc", timeout=30) as r:
            page = r.read().decode()
        (js,) = re.findall(r'src="([^"]+\.js)"', page)
        assert js.startswith("/redoc/assets/") and "cdn" not in page.lower() and "//" not in js
        with urllib.request.urlopen(srv.base + js, timeout=30) as r:
            assert r.status == 200 and len(r.read()) > 100_000


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--version"], ["--help"]])
def test_reader_gone_before_output(tmp_path: Path, fmt: list[str]) -> None:
    """Small outputs too (a buffered write fails only at the final flush): quiet, status 0."""
    dump = many_groups(tmp_path / "few.txt", n=3)
    r, w = os.pipe()
    os.close(r)  # the reader left before grprof wrote anything
    try:
        args = fmt if fmt in (["--version"], ["--help"]) else ["analyze", *fmt, str(dump)]
        p = subprocess.run([*GRPROF, *args], stdout=w, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(w)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
