"""Run a real `grprof serve` process for tests: free port, wait for /healthz, stop (or kill -9)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serve:
    base: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def get(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(self.base + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if path.startswith("/api") or path == "/healthz" else body.decode()

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_for(self, check: Any, timeout: float = 60.0, every: float = 0.5) -> Any:
        """Poll `check()` until it returns something truthy; fail with the server log."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                last = check()
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(f"timed out; last {last!r}\n--- serve log ---\n{self.logs()[-4000:]}")


def start_serve_process(args: Sequence[str], port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "grprof.cli", "serve", "--listen", f"127.0.0.1:{port}", *args]
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


@contextlib.contextmanager
def run_serve(args: Sequence[str], *, port: int | None = None, timeout: float = 60.0) -> Iterator[Serve]:
    port = port or free_port()
    with tempfile.TemporaryFile() as log:
        proc = start_serve_process(args, port, log)
        srv = Serve(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"grprof serve exited with {proc.returncode}:\n{srv.logs()}")
                with contextlib.suppress(urllib.error.URLError, OSError):
                    if srv.get("/healthz")["status"] == "ok":
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"grprof serve did not answer /healthz:\n{srv.logs()}")
                time.sleep(0.2)
            yield srv
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
