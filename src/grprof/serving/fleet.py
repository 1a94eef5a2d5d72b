"""The fleet: the targets wanted (the configuration's, the command line's, the discovered ones,
this replica's shard of them) against the targets scraped now, and reconciling the two.

`apply` makes the runtime, the windows, the store's target rows and the scraper follow the
wanted targets; `check` refuses, before anything changes, a configuration with a target the
scraper would refuse (a reload is all or nothing: `grprof.serve`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from grprof.collect.discovery import FileSD, HttpSD
from grprof.collect.model import Auth, Target
from grprof.collect.scraper import Scraper, check_target
from grprof.collect.shard import owns
from grprof.config import Config, ConfigError
from grprof.errors import SettingError
from grprof.server.runtime import Runtime, TargetRuntime
from grprof.serving.pipeline import Pipeline

log = logging.getLogger("grprof.serve")


class Fleet:
    """Wanted targets (`wanted`) and the current ones (`runtime.targets`), and `apply`."""

    def __init__(
        self,
        runtime: Runtime,
        pipeline: Pipeline,
        *,
        extra_targets: Sequence[Target] = (),
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.runtime = runtime
        self.pipeline = pipeline
        self.extra_targets = list(extra_targets)
        """The command line's `--target`s."""
        self.shard = shard
        self.discovered: dict[str, list[Target]] = {}
        """Each discovery source's latest targets, by source (`file_sd0`, `http_sd1`)."""
        self.scraper: Scraper | None = None

    def own_targets(self, config: Config) -> list[Target]:
        """The configuration's targets and the command line's (not the discovered ones)."""
        return [*config.static_targets(), *self.extra_targets]

    def wanted(self, config: Config) -> list[Target]:
        by_name: dict[str, Target] = {}
        for t in self.own_targets(config):
            by_name[t.name] = t
        for found in self.discovered.values():
            for t in found:
                by_name.setdefault(t.name, t)
        return [t for t in by_name.values() if self.shard is None or owns(t.url, self.shard)]

    def check(self, config: Config, where: str) -> None:
        """`ConfigError` for the first target of the file or the command line the scraper
        refuses (`where`: the file's name and `: `, or empty); nothing changes."""
        index = {t.name: i for i, t in enumerate(config.targets)}
        for t in self.own_targets(config):
            try:
                check_target(t)
            except SettingError as e:
                if t.source == "static":
                    raise ConfigError(f"{where}targets.{index[t.name]}.{e.key}: {e.message}") from None
                raise ConfigError(f"--target {t.url}: {e.message}") from None

    async def apply(self, config: Config) -> None:
        """Reconcile: targets no longer wanted are forgotten, new or changed ones (re)start
        with their window restored from the store, and the scraper scrapes the wanted ones."""
        targets = self.wanted(config)
        names = {t.name for t in targets}
        for name in list(self.runtime.targets):
            if name not in names:
                self.runtime.remove_target(name)
                self.pipeline.close_window(name)
        for t in targets:
            rt = self.runtime.targets.get(t.name)
            if rt is None or rt.target != t:
                self.runtime.targets[t.name] = TargetRuntime(t)
            await self.pipeline.open_window(t.name)
        await asyncio.to_thread(
            self.pipeline.store_or_fail().upsert_targets, targets, self.runtime.shard_label
        )
        if self.scraper is not None:
            try:
                self.scraper.set_targets(targets)
            except ValueError as e:  # e.g. two discovered targets with one name: keep the current ones
                log.error("targets not applied: %s", e)

    def discovery_tasks(
        self, config: Config, apply: Callable[[], Awaitable[None]]
    ) -> list[asyncio.Task[Any]]:
        """One task per discovery source of `config`, calling `apply` after each change."""
        tasks = []
        for i, f in enumerate(config.file_sd):
            sd: FileSD | HttpSD = FileSD(f.files, f.refresh)
            tasks.append(asyncio.create_task(self._follow(f"file_sd{i}", sd, apply)))
        for i, h in enumerate(config.http_sd):
            auth = h.auth.to_auth() if h.auth else Auth()
            sd = HttpSD(h.url, h.refresh, timeout=config.scrape.timeout, auth=auth)
            tasks.append(asyncio.create_task(self._follow(f"http_sd{i}", sd, apply)))
        return tasks

    async def _follow(self, key: str, sd: FileSD | HttpSD, apply: Callable[[], Awaitable[None]]) -> None:
        async for targets in sd.updates():
            self.discovered[key] = list(targets)
            await apply()


__all__ = ["Fleet"]
