"""The `grprof serve` daemon: scrape targets, store history, detect, serve the API and metrics.

One asyncio loop runs the scraper, the API server (uvicorn), discovery, config reloads and
retention. Parsing, detection and store calls run in worker threads, so a big dump never
stalls the scrapes of other targets.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import logging
import os
import signal
import socket
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grprof.collect.model import Auth, ScrapeResult, Target
from grprof.collect.scraper import Scraper, ScrapeSettings, check_target
from grprof.collect.shard import owns
from grprof.config import Config, ConfigError, load_config
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.rules import RuleSet, load_rules
from grprof.detect.signals import default_settings, theil_sen
from grprof.detect.sla import SLAState, evaluate
from grprof.errors import GrprofError, SettingError
from grprof.formats import parse_chunks
from grprof.model import Group, Snapshot
from grprof.server.runtime import Runtime, TargetRuntime, blocked_by_class
from grprof.store import RetentionPolicy, ScrapeRecord, Store, open_store
from grprof.table import Stack
from grprof.watch import base_url

log = logging.getLogger("grprof.serve")

KEPT_LEAK_PROFILES = 3
SLA_TTL = 60.0
RAW_KEPT_FOR = frozenset({"demand", "suspect"})
"""debug=2 captures whose raw bytes are stored (with leak profiles): asked for by a person, or
taken when a suspect appeared. The routine ones (`every`, `format`, `growth`) are stored as
groups only: at one per minute per target, their bytes would flood `retention.raw_budget`."""
RETENTION_EVERY = 300.0
RELOAD_POLL = 2.0
TOP_GROUPS = 10
SCRAPE_KEYS = {"leak_every": "leak_profile_every"}
"""`ScrapeSettings` fields named otherwise under the configuration's `scrape:`."""


class ListenError(GrprofError):
    """The API address cannot be used: bad host, port taken, no permission."""


def bind_listen(listen: str) -> socket.socket:
    """A listening socket on `listen` (HOST:PORT, `[::1]:PORT` for IPv6), or `ListenError`.

    Bound before anything else starts, so a taken port is reported (one line, exit 2) before
    the "serve on" line, and uvicorn serves on this socket instead of binding its own.
    """
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except ValueError:
        raise ListenError(f"listen {listen}: must be HOST:PORT, e.g. 127.0.0.1:8080") from None
    except (OSError, OverflowError) as e:
        raise ListenError(f"listen {listen}: cannot resolve {host!r}: {_reason(e)}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise ListenError(f"listen {listen}: cannot listen: {_reason(e)}") from None
    return sock


def _reason(e: BaseException) -> str:
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return text[:1].lower() + text[1:]


_STACKS: dict[Stack, Stack] = {}
_MAX_STACKS = 500_000


def _shared_stack(s: Stack) -> Stack:
    if len(_STACKS) >= _MAX_STACKS:  # sharing restarts; nothing is lost
        _STACKS.clear()
    return _STACKS.setdefault(s, s)


@dataclass
class Window:
    """A target's recent snapshots for the detector, sharing one set of parsed stacks."""

    snapshots: collections.deque[Snapshot]
    leak_profiles: collections.deque[Snapshot] = field(
        default_factory=lambda: collections.deque(maxlen=KEPT_LEAK_PROFILES)
    )
    sla: SLAState | None = None
    sla_at: float = 0.0

    def add(self, snap: Snapshot) -> None:
        # A service shows the same stacks scrape after scrape, and its replicas show the same
        # stacks too: keep one copy of each, for every window of the process.
        snap.share_stacks(_shared_stack)
        (self.leak_profiles if snap.profile == "goroutineleak" else self.snapshots).append(snap)

    def all(self) -> list[Snapshot]:
        return [*self.snapshots, *self.leak_profiles]


@dataclass
class Judgement:
    """What one detection pass over a target's window yields for the API and /metrics."""

    detection: Detection
    top_groups: list[Group]
    blocked: dict[str, int]
    growth_per_minute: float | None


def judge_window(snaps: Sequence[Snapshot], latest: Snapshot | None, opts: Options) -> Judgement:
    """Detection plus the latest snapshot's summaries, all off the event loop: aggregating a
    snapshot is CPU work that would stall every other target's scrape."""
    d = detect(snaps, opts)
    groups = latest.groups() if latest is not None else []
    times, counts = d.series.times, [s.total for s in d.series.snapshots]
    growth = theil_sen([t / 60 for t in times], counts) if len(counts) > 1 else None
    return Judgement(d, groups[:TOP_GROUPS], blocked_by_class(groups), growth)


def cli_targets(urls: Sequence[str]) -> list[Target]:
    """`--target URL`s: base URLs (any /debug/pprof/ URL is cut back), named host:port."""
    out = []
    for url in urls:
        base = base_url(url)
        out.append(Target(urlsplit(base).netloc or base, base, {}, source="cli"))
    return out


def parse_payload(result: ScrapeResult) -> Snapshot:
    snaps = parse_chunks([result.body], f"{result.target} {result.kind}")
    snap = snaps[0]
    snap.mtime = result.started
    return snap


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        extra_targets: Sequence[Target] = (),
        shard: tuple[int, int] | None = None,
        api_token: str | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.sock = sock
        """The API socket, when the caller bound it already (`bind_listen`)."""
        self.config_path = config_path
        self.extra_targets = list(extra_targets)
        self.shard = shard
        self.api_token = api_token
        self.store: Store | None = None
        self.runtime = Runtime.create(shard)
        self.windows: dict[str, Window] = {}
        self.scraper: Scraper | None = None
        self.settings = self.check(config)
        """The running scraper's settings (checked: a scraper runs with them)."""
        self.rules: RuleSet = load_rules(config.rules)
        self.discovered: dict[str, list[Target]] = {}
        self._config_mtime = self._mtime()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Future[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        if self.sock is None:
            self.sock = bind_listen(self.config.listen)  # first: a taken port fails before any work
        try:
            self.store = await asyncio.to_thread(open_store, self.config.db)
        except BaseException:
            self.sock.close()
            raise
        self.scraper = Scraper(self.settings, self.on_result)
        await self.scraper.start()
        await self.apply_targets()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("SIGHUP")))
        server = self._api_server()
        self._tasks = [
            asyncio.create_task(server.serve(sockets=[self.sock]), name="api"),
            asyncio.create_task(self._watch_config(), name="config"),
            asyncio.create_task(self._retention(), name="retention"),
            *self._discovery_tasks(),
        ]
        log.info("%s", self.banner())
        await self._stopping.wait()
        server.should_exit = True
        await self.scraper.stop()
        for t in self._tasks:
            if t.get_name() != "api":
                t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.store.close)

    def stop(self) -> None:
        self._stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    def banner(self) -> str:
        host, _, port = self.config.listen.rpartition(":")
        n = len(self.runtime.targets)
        if n == 0 and not self.config.file_sd and not self.config.http_sd:
            how = "no targets yet: add `targets:` to a config file (--config) or pass --target URL"
        else:
            how = f"{n} target{'' if n == 1 else 's'}"
            how += f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        return (
            f"grprof serve on http://{host}:{port} (API /api/v1, docs /docs, metrics /metrics), "
            f"db {self.config.db}; {how}"
        )

    def _api_server(self) -> Any:
        import uvicorn

        from grprof.server.api import create_app

        host, _, port = self.config.listen.rpartition(":")
        app = create_app(self.store_or_fail(), self.runtime, capture=self.capture, api_token=self.api_token)
        # Serves on `self.sock` (bound in `run`); host and port only name it in uvicorn's logs.
        cfg = uvicorn.Config(app, host=host.strip("[]"), port=int(port), log_level="warning", lifespan="off")
        server = uvicorn.Server(cfg)
        # The daemon owns SIGTERM/SIGINT/SIGHUP (on the loop); uvicorn must not take them over.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        return server

    def store_or_fail(self) -> Store:
        if self.store is None:
            raise RuntimeError("store not open")
        return self.store

    # -- targets -------------------------------------------------------------------------

    def wanted_targets(self) -> list[Target]:
        by_name: dict[str, Target] = {}
        for t in self._own_targets(self.config):
            by_name[t.name] = t
        for found in self.discovered.values():
            for t in found:
                by_name.setdefault(t.name, t)
        return [t for t in by_name.values() if self.shard is None or owns(t.url, self.shard)]

    async def apply_targets(self) -> None:
        targets = self.wanted_targets()
        names = {t.name for t in targets}
        for name in list(self.runtime.targets):
            if name not in names:
                self.runtime.remove_target(name)
                self.windows.pop(name, None)
        for t in targets:
            rt = self.runtime.targets.get(t.name)
            if rt is None or rt.target != t:
                self.runtime.targets[t.name] = TargetRuntime(t)
            if t.name not in self.windows:
                self.windows[t.name] = await self._restore_window(t.name)
        shard = f"{self.shard[0]}/{self.shard[1]}" if self.shard else None
        await asyncio.to_thread(self.store_or_fail().upsert_targets, targets, shard)
        if self.scraper is not None:
            try:
                self.scraper.set_targets(targets)
            except ValueError as e:  # e.g. two discovered targets with one name: keep the current ones
                log.error("targets not applied: %s", e)

    def _own_targets(self, config: Config) -> list[Target]:
        """The configuration's targets and the command line's (not the discovered ones)."""
        return [*config.static_targets(), *self.extra_targets]

    def check(self, config: Config) -> ScrapeSettings:
        """The scraper's settings for `config`, once the scraper accepted them and every target
        of the file and the command line; `ConfigError` (one line, naming the file and the key)
        for the first it refuses. Nothing is started or changed: a reload calls this first."""
        where = f"{self.config_path}: " if self.config_path else ""
        try:
            settings = scrape_settings(config)
        except SettingError as e:
            raise ConfigError(f"{where}scrape.{SCRAPE_KEYS.get(e.key, e.key)}: {e.message}") from None
        index = {t.name: i for i, t in enumerate(config.targets)}
        for t in self._own_targets(config):
            try:
                check_target(t)
            except SettingError as e:
                if t.source == "static":
                    raise ConfigError(f"{where}targets.{index[t.name]}.{e.key}: {e.message}") from None
                raise ConfigError(f"--target {t.url}: {e.message}") from None
        return settings

    async def _restore_window(self, name: str) -> Window:
        w = Window(collections.deque(maxlen=default_settings().window))
        try:
            for s in await asyncio.to_thread(
                self.store_or_fail().recent_snapshots, name, w.snapshots.maxlen or 40
            ):
                w.add(s)
        except Exception as e:  # a corrupt history must not stop scraping
            log.warning("target %s: cannot restore its history: %s", name, e)
        return w

    def _discovery_tasks(self) -> list[asyncio.Task[Any]]:
        from grprof.collect.discovery import FileSD, HttpSD

        tasks = []
        for i, f in enumerate(self.config.file_sd):
            tasks.append(asyncio.create_task(self._follow(f"file_sd{i}", FileSD(f.files, f.refresh))))
        for i, h in enumerate(self.config.http_sd):
            auth = h.auth.to_auth() if h.auth else Auth()
            sd = HttpSD(h.url, h.refresh, timeout=self.config.scrape.timeout, auth=auth)
            tasks.append(asyncio.create_task(self._follow(f"http_sd{i}", sd)))
        return tasks

    async def _follow(self, key: str, sd: Any) -> None:
        async for targets in sd.updates():
            self.discovered[key] = list(targets)
            await self.apply_targets()

    # -- scrapes -------------------------------------------------------------------------

    async def on_result(self, result: ScrapeResult) -> None:
        self.runtime.observe_scrape(result)
        rt = self.runtime.targets.get(result.target)
        if rt is None:
            return
        rt.last_scrape = result.started
        snap = None
        if result.status == "ok":
            try:
                snap = await asyncio.to_thread(parse_payload, result)
            except GrprofError as e:
                result = replace(result, status="parse_error", error=str(e))
        if result.kind == "goroutineleak" and result.status == "not_found":
            rt.leak_profile = False
        counted = result.kind != "goroutineleak"
        if counted:
            rt.up = snap is not None
            rt.last_error = result.error
        rec = ScrapeRecord(
            result.target,
            result.kind,
            result.started,
            result.duration,
            result.status,
            result.bytes,
            result.error,
        )
        store = self.store_or_fail()
        if snap is None:
            await asyncio.to_thread(store.record_scrape, rec)
            return
        if result.kind == "goroutineleak":
            rt.leak_profile = True
        else:
            rt.last_success = result.started
            rt.goroutines = snap.total
            if self.scraper is not None:
                self.scraper.note_goroutines(result.target, snap.total)
                rt.scrape_lag = self.scraper.lag(result.target)
        # Raw bytes for the rarer, richer profiles (leak profiles, debug=2 captures asked for or
        # taken for a new suspect): what a person wants to download later; retention keeps them
        # within `retention.raw_budget`.
        keep = result.kind == "goroutineleak" or (result.kind == "debug=2" and result.reason in RAW_KEPT_FOR)
        raw = result.body if keep else None
        window = self.windows.setdefault(
            result.target, Window(collections.deque(maxlen=default_settings().window))
        )
        # Into the window first: it swaps the snapshot's stacks for the copies earlier snapshots
        # share, before anything (the store) aggregates and memoizes groups on them.
        window.add(snap)
        await asyncio.to_thread(store.add_scrape, rec, snap, raw)  # one transaction
        await self.detect(result.target, rt, window)

    async def detect(self, name: str, rt: TargetRuntime, window: Window) -> None:
        opts = Options(rules=self.rules, sla_state=await self._sla(name, window), inconclusive=False)
        latest = window.snapshots[-1] if window.snapshots else None
        j = await asyncio.to_thread(judge_window, window.all(), latest, opts)
        d = j.detection
        now = dt.datetime.now(dt.UTC)
        sync = functools.partial(self.store_or_fail().sync_findings, report=False)
        await asyncio.to_thread(sync, name, d.findings, now)
        rt.findings = d.findings
        if latest is not None:
            rt.top_groups, rt.blocked = j.top_groups, j.blocked
        rt.growth_per_minute = j.growth_per_minute
        if self.scraper is not None:
            # A new suspect, or a verdict resting on growth, makes a coming scrape a debug=2
            # (grprof.collect.policy): ids tell a load ramp from a leak.
            self.scraper.note_findings(name, d.findings)

    async def _sla(self, name: str, window: Window) -> SLAState:
        loop = asyncio.get_running_loop()
        if window.sla is None or loop.time() - window.sla_at > SLA_TTL:
            window.sla = await asyncio.to_thread(evaluate, self.config.sla_for(name))
            window.sla_at = loop.time()
        return window.sla

    async def capture(self, name: str) -> dict[str, Any]:
        """On-demand debug=2 capture (from the API): scrape, store, detect."""
        if self.scraper is None or name not in self.runtime.targets:
            raise KeyError(name)
        result = await self.scraper.capture(name)
        if result.status != "ok":
            return {"status": result.status, "error": result.error}
        await self.on_result(result)
        metas = await asyncio.to_thread(self.store_or_fail().snapshots, name, limit=1)
        return {"status": "ok", "snapshot": metas[0].id if metas else None, "bytes": result.bytes}

    # -- config --------------------------------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.config_path).st_mtime if self.config_path else None
        except OSError:
            return None

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL)
            m = self._mtime()
            if m is not None and m != self._config_mtime:
                self._config_mtime = m
                await self.reload("file change")

    async def reload(self, why: str) -> bool:
        """Apply a changed config; refuse an invalid or older one and keep running the current."""
        if self.config_path is None:
            log.info("reload (%s): no config file to reload", why)
            return False
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
            rules = await asyncio.to_thread(load_rules, new.rules)
        except GrprofError as e:
            log.error("reload (%s) refused, keeping version %d: %s", why, self.config.version, e)
            return False
        if new.version < self.config.version:
            log.error(
                "reload (%s) refused: version %d is older than the running version %d",
                why,
                new.version,
                self.config.version,
            )
            return False
        restart = [k for k in ("listen", "db") if getattr(new, k) != getattr(self.config, k)]
        if restart:
            new = new.model_copy(update={k: getattr(self.config, k) for k in restart})
        # All or nothing: everything new is built and checked before anything old stops.
        try:
            settings = self.check(new)
        except GrprofError as e:
            log.error("reload (%s) refused, keeping version %d: %s", why, self.config.version, e)
            return False
        scraper = None
        if self.scraper is not None and settings != self.settings:
            scraper = Scraper(settings, self.on_result)
        if restart:
            log.warning("reload (%s): %s change only on restart", why, ", ".join(restart))
        old, self.config, self.rules, self.settings = self.config, new, rules, settings
        for w in self.windows.values():
            w.sla = None
        if scraper is not None and self.scraper is not None:
            await self.scraper.stop()
            self.scraper = scraper
            await scraper.start()
        await self.apply_targets()
        if new.file_sd != old.file_sd or new.http_sd != old.http_sd:
            log.warning("reload (%s): service discovery changes apply on restart", why)
        log.info(
            "reload (%s): now running config version %d, %d targets",
            why,
            new.version,
            len(self.runtime.targets),
        )
        return True

    async def _retention(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_EVERY)
            policy = retention_policy(self.config)  # the running configuration's, reloads included
            try:
                stats = await asyncio.to_thread(
                    self.store_or_fail().apply_retention, policy, dt.datetime.now(dt.UTC)
                )
                log.info("retention: %s", stats)
            except Exception as e:
                log.error("retention failed: %s", e)


def scrape_settings(c: Config) -> ScrapeSettings:
    """The scraper's settings for a configuration; `SettingError` if the scraper refuses one."""
    s = c.scrape
    return ScrapeSettings(
        interval=s.interval,
        timeout=s.timeout,
        concurrency=s.concurrency,
        jitter=s.jitter,
        max_response=s.max_response,
        format=s.format,
        leak_every=s.leak_profile_every,
        debug2_every=s.debug2_every,
        debug2_max_goroutines=s.debug2_max_goroutines,
        debug2_extra_gap=s.debug2_extra_gap,
        backoff_max=s.backoff_max,
    )


def retention_policy(c: Config) -> RetentionPolicy:
    r = c.retention
    return RetentionPolicy(r.raw, r.raw_budget, r.full, r.downsample, r.max_age)


def load_or_default(path: str | None) -> Config:
    if path is None:
        return Config()
    return load_config(path)


__all__ = ["ConfigError", "Daemon", "cli_targets", "load_or_default"]
