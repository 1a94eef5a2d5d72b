"""The `grprof serve` supervisor: the live configuration, reloads, retention, the API server,
signals.

One asyncio loop runs the scraper, the API server (uvicorn), discovery, config reloads and
retention. The supervisor owns the running configuration and hands its parts down: each
scrape goes through the pipeline (`grprof.serving.pipeline`: parse → window → store →
detect, in worker threads, so a big dump never stalls the scrapes of other targets), and the
fleet (`grprof.serving.fleet`) reconciles the wanted targets with the scraped ones. A reload
builds and checks everything new before it stops anything old: a refused reload keeps the
running configuration, scraper and targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grprof.collect.model import ScrapeResult, Target
from grprof.collect.scraper import Scraper, ScrapeSettings
from grprof.config import Config, ConfigError, load_config
from grprof.detect.owners import Owners
from grprof.detect.rules import load_rules
from grprof.errors import GrprofError, SettingError
from grprof.redact import Redactor
from grprof.server.runtime import Runtime
from grprof.serving.federation import Federation
from grprof.serving.fleet import Fleet
from grprof.serving.judge import Judgement, judge_window
from grprof.serving.pipeline import Pipeline, parse_payload
from grprof.serving.window import Window
from grprof.store import RetentionPolicy, Store, open_store
from grprof.store.events import record_reload
from grprof.watch import base_url

log = logging.getLogger("grprof.serve")

RETENTION_EVERY = 300.0
RELOAD_POLL = 2.0
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


def cli_targets(urls: Sequence[str]) -> list[Target]:
    """`--target URL`s: base URLs (any /debug/pprof/ URL is cut back), named host:port."""
    out = []
    for url in urls:
        base = base_url(url)
        out.append(Target(urlsplit(base).netloc or base, base, {}, source="cli"))
    return out


class Daemon:
    """The supervisor: the running configuration and everything that follows it."""

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
        self.shard = shard
        self.api_token = api_token
        self.runtime = Runtime.create(shard)
        self.pipeline = Pipeline(
            self.runtime,
            load_rules(config.rules),
            config.sla_for,
            Owners.load(config.owners),
            config.memory_limit,
            _redactor(config),
        )
        self.fleet = Fleet(self.runtime, self.pipeline, extra_targets=extra_targets, shard=shard)
        self.federation = Federation(config.federate) if config.federate else None
        """The members this instance pulls and serves as one view (`federate:`), if any."""
        self._store: Store | None = None
        self._scraper: Scraper | None = None
        self.settings = self.check(config)
        """The running scraper's settings (checked: a scraper runs with them)."""
        self._config_mtime = self._mtime()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def store(self) -> Store | None:
        return self._store

    @store.setter
    def store(self, store: Store | None) -> None:
        self._store = self.pipeline.store = store
        self.runtime.metrics.store_writes = store.write_stats if store is not None else None

    @property
    def scraper(self) -> Scraper | None:
        """The running scraper; the pipeline and the fleet use the same."""
        return self._scraper

    @scraper.setter
    def scraper(self, scraper: Scraper | None) -> None:
        self._scraper = self.pipeline.scraper = self.fleet.scraper = scraper

    @property
    def windows(self) -> dict[str, Window]:
        return self.pipeline.windows

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        if self.sock is None:
            self.sock = bind_listen(self.config.listen)  # first: a taken port fails before any work
        try:
            self.store = await asyncio.to_thread(open_store, self.config.db)
        except BaseException:
            self.sock.close()
            raise
        self.scraper = scraper = Scraper(self.settings, self.on_result)
        await scraper.start()
        await self.apply_targets()
        if self.federation is not None:
            self.runtime.metrics.federation = self.federation
            await self.federation.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("SIGHUP")))
        server = self._api_server()
        self._tasks = [
            asyncio.create_task(server.serve(sockets=[self.sock]), name="api"),
            asyncio.create_task(self._watch_config(), name="config"),
            asyncio.create_task(self._retention(), name="retention"),
            *self.fleet.discovery_tasks(self.config, self.apply_targets),
        ]
        log.info("%s", self.banner())
        await self._stopping.wait()
        server.should_exit = True
        if self.scraper is not None:
            await self.scraper.stop()
        if self.federation is not None:
            await self.federation.stop()
        for t in self._tasks:
            if t.get_name() != "api":
                t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.store_or_fail().close)

    def stop(self) -> None:
        self._stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    def banner(self) -> str:
        host, _, port = self.config.listen.rpartition(":")
        n = len(self.runtime.targets)
        if n == 0 and not self.config.file_sd and not self.config.http_sd and self.federation is None:
            how = "no targets yet: add `targets:` to a config file (--config) or pass --target URL"
        else:
            how = f"{n} target{'' if n == 1 else 's'}"
            how += f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        if self.federation is not None:
            k = len(self.federation.members)
            how += f"; federating {k} member{'' if k == 1 else 's'} (/api/v1/federation)"
        return (
            f"grprof serve on http://{host}:{port} (API /api/v1, docs /docs, metrics /metrics), "
            f"db {self.config.db}; {how}"
        )

    def _api_server(self) -> Any:
        import uvicorn

        from grprof.server.api import create_app

        host, _, port = self.config.listen.rpartition(":")
        app = create_app(
            self.store_or_fail(),
            self.runtime,
            capture=self.capture,
            api_token=self.api_token,
            federation=self.federation,
            canary=lambda: self.config.canary,  # the running config's: a reload applies at once
            trace_url=lambda: self.config.ui.trace_url,
        )
        # Serves on `self.sock` (bound in `run`); host and port only name it in uvicorn's logs.
        cfg = uvicorn.Config(app, host=host.strip("[]"), port=int(port), log_level="warning", lifespan="off")
        server = uvicorn.Server(cfg)
        # The daemon owns SIGTERM/SIGINT/SIGHUP (on the loop); uvicorn must not take them over.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        return server

    def store_or_fail(self) -> Store:
        return self.pipeline.store_or_fail()

    # -- targets and scrapes (the fleet and the pipeline) --------------------------------

    def wanted_targets(self) -> list[Target]:
        return self.fleet.wanted(self.config)

    async def apply_targets(self) -> None:
        await self.fleet.apply(self.config)

    async def on_result(self, result: ScrapeResult) -> None:
        await self.pipeline.on_result(result)

    async def capture(self, name: str) -> dict[str, Any]:
        """On-demand debug=2 capture (from the API): scrape, store, detect."""
        return await self.pipeline.capture(name)

    def check(self, config: Config) -> ScrapeSettings:
        """The scraper's settings for `config`, once the scraper accepted them and every target
        of the file and the command line; `ConfigError` (one line, naming the file and the key)
        for the first it refuses. Nothing is started or changed: a reload calls this first."""
        where = f"{self.config_path}: " if self.config_path else ""
        try:
            settings = scrape_settings(config)
        except SettingError as e:
            raise ConfigError(f"{where}scrape.{SCRAPE_KEYS.get(e.key, e.key)}: {e.message}") from None
        self.fleet.check(config, where)
        return settings

    # -- config --------------------------------------------------------------------------

    def _mtime(self) -> tuple[float | None, ...] | None:
        """The config file's modification time and its rule files' (None for one that is
        missing): a rule file edited alone is a change too. None without a readable config."""
        try:
            if self.config_path is None:
                return None
            config = os.stat(self.config_path).st_mtime
        except OSError:
            return None
        return _stamp(config, self.config.rules)

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL)
            m = self._mtime()
            if m is not None and m != self._config_mtime:
                self._config_mtime = m
                await self.reload("file change")

    async def reload(self, why: str) -> bool:
        """Apply a changed config; refuse an invalid or older one and keep running the current.

        On success the watcher's stamp becomes the times the files had *before* they were
        read: a file edited while the reload was under way (it awaits the scraper, the
        targets, the store) differs from that stamp and is reloaded at the next poll.
        """
        if self.config_path is None:
            log.info("reload (%s): no config file to reload", why)
            return False
        config_mtime = _mtime_or_none(self.config_path)
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
            stamp = _stamp(config_mtime, new.rules)
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
        old, self.config, self.settings = self.config, new, settings
        self.pipeline.configure(rules, new.sla_for, Owners.load(new.owners), new.memory_limit, _redactor(new))
        if new.redact != old.redact:
            log.warning(
                "reload (%s): new redaction rules apply to new snapshots; stored data is unchanged", why
            )
        if scraper is not None and self.scraper is not None:
            await self.scraper.stop()
            self.scraper = scraper
            await scraper.start()
        await self.apply_targets()
        if new.file_sd != old.file_sd or new.http_sd != old.http_sd:
            log.warning("reload (%s): service discovery changes apply on restart", why)
        if new.federate != old.federate:
            if self.federation is not None and new.federate is not None:
                await self.federation.reconfigure(new.federate)
            else:  # the API and /metrics were built with (or without) it
                log.warning("reload (%s): adding or removing federate applies on restart", why)
        self._config_mtime = stamp
        await asyncio.to_thread(record_reload, self.store, why, old, new)  # the chart's marker
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


def _stamp(config: float | None, rules: Iterable[str]) -> tuple[float | None, ...]:
    """What the config watcher compares: the config file's modification time and its rule
    files' (None for one that is missing)."""
    return (config, *(_mtime_or_none(f) for f in rules))


def _mtime_or_none(path: str | os.PathLike[str]) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


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
        memstats_every=s.memstats_every,
        memstats_path=s.memstats_path,
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


__all__ = [
    "ConfigError",
    "Daemon",
    "Judgement",
    "Window",
    "cli_targets",
    "judge_window",
    "load_or_default",
    "parse_payload",
]


def _redactor(config: Config) -> Redactor | None:
    return Redactor.load(config.redact) if config.redact is not None else None
