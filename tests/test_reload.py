"""`grprof serve` and values the configuration accepts but the scraper refuses, and reloads.

A reload is all-or-nothing: everything new is built and checked before anything old stops; a
refused reload is one log line and the old configuration keeps running (and scraping). The
retention policy follows the running configuration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
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


# -- rules and canary settings -----------------------------------------------------------------

RULE = """version: 1
rules:
  - id: {id}
    category: channel
    when: {{state: [chan receive]}}
    title: {title}
    explanation: x
    fix: x
"""
BAD_RULE = "version: 1\nrules:\n  - id: team-rule\n    category: channel\n    wen: {state: [chan receive]}\n"
"""A rule file with a misspelt key on line 5."""


def canary_of(srv: Any) -> dict[str, Any]:
    """The served canary judgement of `b` against `a` (the API's)."""
    body = json.dumps({"baseline": ["a"], "canary": ["b"], "window": "10m"}).encode()
    req = urllib.request.Request(
        srv.base + "/api/v1/canary", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def test_a_reload_applies_canary_settings_and_rules_all_or_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    good_rules, bad_rules = tmp_path / "rules.yaml", tmp_path / "bad-rules.yaml"
    good_rules.write_text(RULE.format(id="team-rule", title="t"))
    bad_rules.write_text(BAD_RULE)
    canary = "{min_samples: 2, thresholds: {pass: 80, marginal: 60}}"

    def write(version: int, canary: str, rules: Path) -> None:
        cfg.write_text(config_text(version, targets, canary=canary, rules=f"[{rules}]"))

    with fake_targets() as ft:
        targets = {"a": ft.url("healthy"), "b": ft.url("noleak")}
        write(1, canary, good_rules)
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            # Enough snapshots of both for a judgement with two samples per side.
            srv.wait_for(lambda: canary_of(srv)["metrics"][0]["judged"], timeout=30)
            assert canary_of(srv)["thresholds"] == {"pass": 80.0, "marginal": 60.0, "marginal_is": "fail"}

            def lines() -> list[str]:
                return srv.logs().splitlines()

            def refused(version: int, canary: str, rules: Path, error: str) -> None:
                mark = f"refused #{version}"
                write(version, canary, rules)
                srv.process.send_signal(signal.SIGHUP)
                line = f") refused, keeping version 1: {error}"
                srv.wait_for(lambda: any(x.endswith(line) for x in lines()))
                # The old settings stay in force, the new canary thresholds with the bad file too.
                assert canary_of(srv)["thresholds"]["pass"] == 80.0, mark

            # A good canary section with a bad rule file: refused whole.
            refused(2, "{min_samples: 2, thresholds: {pass: 95}}", bad_rules,
                    f"{bad_rules}:5: rules.0.wen: unknown key (did you mean \"when\"?)")  # fmt: skip
            # A bad canary section (marginal above the shipped pass, 75), good rules: refused.
            refused(3, "{min_samples: 2, thresholds: {marginal: 90}}", good_rules,
                    f"{cfg}:8: canary.thresholds.marginal: must not be above pass (75)")  # fmt: skip
            assert "Traceback" not in srv.logs()
            # A good reload: the next judgement has the new thresholds.
            write(4, "{min_samples: 2, thresholds: {pass: 90, marginal: 20}, marginal: pass}", good_rules)
            srv.process.send_signal(signal.SIGHUP)
            srv.wait_for(lambda: "now running config version 4" in srv.logs())
            doc = canary_of(srv)
            assert doc["thresholds"] == {"pass": 90.0, "marginal": 20.0, "marginal_is": "pass"}
            assert srv.process.poll() is None


def _toucher() -> Callable[[Path, str], None]:
    """`touch(path, text)`: write with a later modification time than any before (coarse
    clocks would give two quick writes one time)."""
    stamp = [time.time()]

    def touch(path: Path, text: str) -> None:
        path.write_text(text)
        stamp[0] += 2
        os.utime(path, (stamp[0], stamp[0]))

    return touch


def _watching(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    rules: list[Path],
    body: Callable[[Daemon, Callable[[Any], Awaitable[None]]], Awaitable[None]],
) -> None:
    """A daemon on `tmp_path/grprof.yaml` (version 1, the `rules` files) whose config watcher
    polls every 20 ms while `body(daemon, until)` runs; `until(check)` waits for `check()`."""
    monkeypatch.setattr(serve_module, "RELOAD_POLL", 0.02)
    cfg = tmp_path / "grprof.yaml"
    cfg.write_text(config_text(1, {}, rules="[" + ", ".join(map(str, rules)) + "]"))
    store = open_store(str(tmp_path / "g.db"))

    async def run() -> None:
        d = Daemon(load_config(cfg), config_path=cfg)
        d.store = store

        async def until(check: Any) -> None:
            deadline = time.monotonic() + 30  # a loaded CI machine polls late
            while not check():
                assert time.monotonic() < deadline, caplog.text
                await asyncio.sleep(0.02)

        task = asyncio.create_task(d._watch_config())
        try:
            await body(d, until)
        finally:
            task.cancel()

    try:
        with caplog.at_level("INFO", logger="grprof.serve"):
            asyncio.run(run())
    finally:
        store.close()


def _titles(d: Daemon) -> dict[str, str]:
    return {r.id: r.title for r in d.pipeline.rules.rules if r.id in ("team-rule", "more-rule")}


def test_a_rule_file_edited_during_a_reload_is_reloaded_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule file written while a reload awaits (the targets, the store) is not taken as
    seen: the stamp is the files' times before they were read, so the next poll reloads it.
    (CI once lost a bad rule file this way: the watcher stamped the times after the reload.)"""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(id="team-rule", title="first"))
    touch = _toucher()

    async def body(d: Daemon, until: Callable[[Any], Awaitable[None]]) -> None:
        apply_targets = d.apply_targets
        edits = [RULE.format(id="team-rule", title="third")]

        async def edit_meanwhile() -> None:
            if edits:  # the first reload only: the user saves again while it runs
                touch(rules, edits.pop())
            await apply_targets()

        monkeypatch.setattr(d, "apply_targets", edit_meanwhile)
        touch(rules, RULE.format(id="team-rule", title="second"))
        # Whether the first reload read the rules before or after the edit, a second one
        # must follow (before the fix, the edit was taken as seen and none did).
        await until(
            lambda: (
                caplog.text.count("now running config version 1") >= 2
                and _titles(d) == {"team-rule": "third"}
            )
        )
        assert caplog.text.count("now running config version 1") == 2, caplog.text

    _watching(tmp_path, monkeypatch, caplog, [rules], body)


def test_rule_files_reload_with_the_config_or_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The rules in force follow the config's `rules:` files: an edited rule file is seen
    without touching the config, a bad one is refused and the old rules kept."""
    cfg, rules, more = tmp_path / "grprof.yaml", tmp_path / "rules.yaml", tmp_path / "more.yaml"
    rules.write_text(RULE.format(id="team-rule", title="first"))
    more.write_text(RULE.format(id="more-rule", title="more"))
    touch = _toucher()

    async def body(d: Daemon, until: Callable[[Any], Awaitable[None]]) -> None:
        assert _titles(d) == {"team-rule": "first"}
        touch(rules, RULE.format(id="team-rule", title="second"))  # the rule file alone
        await until(lambda: _titles(d) == {"team-rule": "second"})
        touch(rules, BAD_RULE)
        await until(lambda: f"{rules}:5: rules.0.wen: unknown key" in caplog.text)
        assert _titles(d) == {"team-rule": "second"} and d.config.version == 1
        touch(rules, RULE.format(id="team-rule", title="third"))
        touch(cfg, config_text(2, {}, rules=f"[{rules}, {more}]"))  # a new rule file
        await until(lambda: _titles(d) == {"team-rule": "third", "more-rule": "more"})
        assert d.config.version == 2
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1, caplog.text  # the bad file once, not at every poll

    _watching(tmp_path, monkeypatch, caplog, [rules], body)
