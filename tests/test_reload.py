"""`grprof serve` and values the configuration accepts but the scraper refuses, and reloads.

A reload is all-or-nothing: everything new is built and checked before anything old stops; a
refused reload is one log line and the old configuration keeps running (and scraping). The
retention policy follows the running configuration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from misbehaving import FakeTargets, fake_targets
from serveproc import free_port, run_serve

from grprof import serve as serve_module
from grprof.collect.scraper import Scraper, ScrapeSettings
from grprof.config import Config, load_config, parse_config
from grprof.errors import GrprofError
from grprof.serve import Daemon
from grprof.store import RetentionPolicy, Store, open_store


def config_text(
    version: int,
    targets: dict[str, str],
    scrape: str = "{interval: 1s, timeout: 1s}",
    auth: str | None = None,
    **extra: str,
) -> str:
    """A serve configuration; `auth` is the last target's."""
    lines = [f"version: {version}", f"scrape: {scrape}"]
    lines.append("targets:" if targets else "targets: []")
    for name, url in targets.items():
        lines += [f"  - name: {name}", f"    url: {url}"]
    if auth is not None:
        lines.append(f"    auth: {auth}")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def scrapes_of(ft: FakeTargets) -> int:
    return len([h for h in ft.hits_of("healthy") if h.profile == "goroutine"])


# -- at start ------------------------------------------------------------------------------

BOTH_AUTHS = "{bearer_token_file: /run/token, basic_auth: {username: u, password_file: /run/pw}}"
"""A target auth the configuration accepts and the scraper refuses (one kind of auth only)."""


def unchecked_interval(config: Config, interval: float) -> Config:
    """`config` with a scrape interval the configuration does not check: what the daemon must
    refuse on its own, whatever `Config` checks (today it checks this one too)."""
    return config.model_copy(update={"scrape": config.scrape.model_copy(update={"interval": interval})})


def serve_cmd(tmp_path: Path, cfg: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "grprof.cli", "serve", "--config", str(cfg)),
        *("--listen", f"127.0.0.1:{free_port()}", "--db", str(tmp_path / "g.db")),
    ]


@pytest.mark.parametrize(
    ("extra", "key"),
    [({"scrape": "{interval: 10m}"}, "scrape.interval"), ({"auth": BOTH_AUTHS}, "targets.0.auth")],
)
def test_start_with_a_value_the_scraper_refuses_is_one_line(
    tmp_path: Path, extra: dict[str, str], key: str
) -> None:
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text(config_text(1, {"a": "http://127.0.0.1:1"}, **extra))
    p = subprocess.run(serve_cmd(tmp_path, cfg), capture_output=True, text=True, timeout=30, check=False)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert re.match(rf"grprof: {re.escape(str(cfg))}(:\d+)?: {re.escape(key)}: ", lines[0]), lines[0]


def test_the_daemon_checks_the_scrape_settings_itself(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text(config_text(1, {}))
    config = unchecked_interval(load_config(cfg), 600.0)
    with pytest.raises(GrprofError, match=rf"^{re.escape(str(cfg))}: scrape\.interval: .*backoff_max"):
        Daemon(config, config_path=cfg)
    with pytest.raises(GrprofError, match=r"^scrape\.interval: .*backoff_max"):
        Daemon(config)


# -- reload --------------------------------------------------------------------------------


def test_a_refused_reload_keeps_the_old_scraper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text(config_text(1, {"a": "http://127.0.0.1:1"}))
    store = open_store(str(tmp_path / "g.db"))
    unchecked: list[Config] = []

    def load(path: Path) -> Config:
        return unchecked.pop() if unchecked else load_config(path)

    monkeypatch.setattr(serve_module, "load_config", load)

    async def run() -> None:
        d = Daemon(load_config(cfg), config_path=cfg)
        d.store = store
        d.scraper = Scraper(ScrapeSettings(interval=1.0, timeout=1.0), d.on_result)
        await d.scraper.start()
        await d.apply_targets()
        scraper = d.scraper
        assert [t.name for t in scraper.targets()] == ["a"]
        two = config_text(2, {"b": "http://127.0.0.1:2"})
        for text, config in [
            (two, unchecked_interval(parse_config(two), 600.0)),
            (config_text(2, {"b": "http://127.0.0.1:2"}, scrape="{interval: 2s}", auth=BOTH_AUTHS), None),
        ]:
            cfg.write_text(text)
            if config is not None:
                unchecked.append(config)
            assert not await d.reload("test")
            assert d.scraper is scraper and d.config.version == 1
            assert [t.name for t in scraper.targets()] == ["a"] and list(d.runtime.targets) == ["a"]
        await scraper.stop()

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_a_refused_reload_keeps_scraping(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    with fake_targets() as ft:
        cfg.write_text(config_text(1, {"ok": ft.url("healthy")}))
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            srv.wait_for(lambda: scrapes_of(ft) >= 2)
            # New scrape settings (a new scraper) and a target the scraper refuses.
            targets = {"ok": ft.url("healthy"), "bad": ft.url("healthy")}
            cfg.write_text(config_text(2, targets, scrape="{interval: 2s, timeout: 1s}", auth=BOTH_AUTHS))
            srv.process.send_signal(signal.SIGHUP)
            srv.wait_for(lambda: "reload (SIGHUP)" in srv.logs())
            time.sleep(0.5)  # anything else the reload logs
            logs = srv.logs()
            reloads = [line for line in logs.splitlines() if "reload (" in line or "not applied" in line]
            refusals = [line for line in reloads if ") refused, keeping version 1: " in line]
            # One line per attempt (the signal, and the file watcher seeing the change), no other.
            assert refusals and reloads == refusals, logs
            assert all(
                line.endswith("targets.1.auth: use a bearer token or basic auth, not both")
                for line in refusals
            )
            assert "Traceback" not in logs, logs
            before = scrapes_of(ft)
            srv.wait_for(lambda: scrapes_of(ft) >= before + 2, timeout=15)
            assert srv.process.poll() is None


# -- retention -----------------------------------------------------------------------------


class RecordingStore:
    """A real store that also records the retention policies it was asked to apply."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.policies: list[RetentionPolicy] = []

    def apply_retention(self, policy: RetentionPolicy, now: dt.datetime) -> dict[str, int]:
        self.policies.append(policy)
        return self.store.apply_retention(policy, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_reload_changes_the_retention_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_module, "RETENTION_EVERY", 0.01)
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text(config_text(1, {}, retention="{max_age: 1d}"))
    rec = RecordingStore(open_store(str(tmp_path / "g.db")))

    async def wait_for_policy(max_age: float) -> None:
        deadline = time.monotonic() + 10
        while not (rec.policies and rec.policies[-1].max_age == max_age):
            assert time.monotonic() < deadline, rec.policies[-1:]
            await asyncio.sleep(0.01)

    async def run() -> None:
        d = Daemon(load_config(cfg), config_path=cfg)
        d.store = rec  # type: ignore[assignment]
        task = asyncio.create_task(d._retention())
        try:
            await wait_for_policy(86400.0)
            cfg.write_text(config_text(2, {}, retention="{max_age: 2d, raw: 10m}"))
            assert await d.reload("test")
            await wait_for_policy(2 * 86400.0)
            assert rec.policies[-1].raw_for == 600.0
        finally:
            task.cancel()

    try:
        asyncio.run(run())
    finally:
        rec.store.close()
