"""Run a real Prometheus server (Debian package `prometheus`) for tests.

`ensure_prometheus()` installs the package when it is missing and we are root
(idempotent; CI starts from a clean machine), and returns the binary path or
None when it cannot. `run_prometheus({"job": ["127.0.0.1:PORT"]})` starts our own
process (never the packaged service) on a free loopback port with a temporary
TSDB and a generated config scraping every second, waits until it is ready, and
yields a `PromServer`; the process is stopped on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
START_TIMEOUT = 60.0


class PromServerError(RuntimeError):
    """Prometheus could not be installed or started."""


class PromServer(NamedTuple):
    url: str
    """Base URL, e.g. http://127.0.0.1:41234"""
    process: subprocess.Popen[bytes]
    config: Path


def ensure_prometheus() -> str | None:
    """The prometheus binary, installing the Debian package if needed; None if impossible here."""
    if _installed():
        return PROMETHEUS
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    # pytest-xdist workers may get here together: one installs, the others wait and re-check.
    with open(os.path.join(tempfile.gettempdir(), "grprof-apt-prometheus.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            _apt_install("prometheus")
    return PROMETHEUS


def _installed() -> bool:
    return Path(PROMETHEUS).is_file() and Path(PROMTOOL).is_file()


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=300"]  # another apt run (not ours) may hold the lock
    for cmd in (["apt-get", *wait, "update", "-qq"], ["apt-get", *wait, "install", "-y", "-qq", package]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PromServerError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def prometheus_config(
    jobs: Mapping[str, Sequence[str]],
    scrape_interval: str = "1s",
    *,
    rule_files: Sequence[Path] = (),
    alertmanagers: Sequence[str] = (),
) -> str:
    """A prometheus.yml scraping each job's `host:port` targets (JSON is valid YAML: no quoting
    bugs), rules evaluated at the scrape interval; with `rule_files` loaded and alerts sent to
    `alertmanagers` (`host:port`) when given."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in jobs.items()
        ],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    return json.dumps(config, indent=2) + "\n"


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check config PATH`."""
    cmd = [PROMTOOL, "check", "config", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def run_prometheus(
    jobs: Mapping[str, Sequence[str]],
    scrape_interval: str = "1s",
    *,
    rule_files: Sequence[Path] = (),
    alertmanagers: Sequence[str] = (),
) -> Iterator[PromServer]:
    """Our own Prometheus (see the module's docstring); `rule_files` and `alertmanagers` as in
    `prometheus_config`, the config checked by promtool first."""
    binary = ensure_prometheus()
    if binary is None:
        raise PromServerError("prometheus is not installed and cannot be (not root, or no apt-get)")
    with tempfile.TemporaryDirectory(prefix="grprof-prom-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            prometheus_config(jobs, scrape_interval, rule_files=rule_files, alertmanagers=alertmanagers)
        )
        check = check_config(config)
        if check.returncode != 0:
            raise PromServerError(f"promtool check config failed:\n{check.stdout}{check.stderr}")
        # Another process may grab the free port between our probe and Prometheus' bind: retry.
        for attempt in range(3):
            port = _free_port()
            with tempfile.TemporaryFile() as log:
                proc = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={Path(tmp) / f'data{attempt}'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=log,
                    cwd=tmp,
                )
                url = f"http://127.0.0.1:{port}"
                try:
                    if wait_ready(proc, url, log):
                        yield PromServer(url, proc, config)
                        return
                finally:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        raise PromServerError("prometheus did not start: its port was taken three times")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: IO[bytes], what: str = "prometheus") -> bool:
    """True once /-/ready answers 200 (Prometheus and Alertmanager both serve it); False if the
    port was in use; PromServerError otherwise."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = _tail(log)
            if "address already in use" in text:
                return False
            raise PromServerError(f"{what} exited with {proc.returncode}:\n{text}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
            if resp.status == 200:
                return True
        time.sleep(0.2)
    raise PromServerError(f"{what} not ready within {START_TIMEOUT}s:\n{_tail(log)}")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read()[-4000:].decode(errors="replace")


def instant(url: str, query: str) -> Any:
    """The raw `data` of an instant query (test plumbing, independent of the code under test)."""
    full = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(full, timeout=10) as r:
        return json.load(r)["data"]


def wait_for_series(url: str, query: str, want: int = 1, timeout: float = 60.0) -> None:
    """Poll until `query` returns at least `want` series (e.g. until two scrapes make rate() work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(instant(url, query)["result"]) >= want:
            return
        time.sleep(0.5)
    raise PromServerError(f"no series for {query!r} within {timeout}s")
