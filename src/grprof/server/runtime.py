"""In-memory state of one `grprof serve` replica, shared by the daemon, the API and `/metrics`.

The daemon (one asyncio loop) writes it after each scrape and detection run; the API and the
metrics collector only read it. Nothing here is persisted: the store holds the history.

`/metrics` reads it (`grprof.server.metrics`, which owns the instruments); wait-reason classes
are in `grprof.server.waits` (re-exported here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from grprof.collect.health import TargetHealth
from grprof.collect.model import ScrapeResult, Target
from grprof.detect.model import Finding
from grprof.formats.memstats import RuntimeStats
from grprof.model import Group
from grprof.server.metrics import SCRAPE_BUCKETS, ServerMetrics
from grprof.server.waits import blocked_by_class, classify_wait, wait_classes
from grprof.store.model import StoredTarget


class CaptureError(Exception):
    """An on-demand capture did not produce a snapshot; `reason` is one line for people."""

    status = 502

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CaptureRefused(CaptureError):
    """Policy said no (above the goroutine limit, a capture already running): HTTP 409."""

    status = 409


class CaptureFailed(CaptureError):
    """The target failed (timeout, HTTP error, unparsable body): HTTP 502."""

    status = 502


class UnknownTarget(CaptureError):
    """Not a target this replica is configured to scrape: HTTP 404."""

    status = 404


@dataclass
class TargetRuntime(TargetHealth):
    """A target as this replica sees it: its health (`TargetHealth`: up, last scrape, last
    success, last error, changed by `observe` under the same rule as the store's row), and what
    its latest scrape and detection run found."""

    target: Target
    goroutines: int | None = None
    growth_per_minute: float | None = None
    """Of the target's total goroutine count, over the detection window."""
    blocked: dict[str, int] = field(default_factory=dict)
    """Wait-reason class -> goroutines, latest snapshot (`blocked_by_class`)."""
    top_groups: list[Group] = field(default_factory=list)
    """Largest groups of the latest snapshot."""
    findings: list[Finding] = field(default_factory=list)
    """The latest detection run's."""
    leak_profile: bool | None = None
    """The target serves /debug/pprof/goroutineleak; None until tried."""
    scrape_lag: float | None = None
    """Seconds the latest goroutine scrape started after it was due (`Scraper.lag`)."""
    runtime_stats: RuntimeStats | None = None
    """The target's latest stack figures (heap?debug=1), for the cost of its findings."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    targets: dict[str, TargetRuntime] = field(default_factory=dict)
    """This replica's targets, by name."""
    shard: tuple[int, int] | None = None
    """(I, N): this replica scrapes shard I of N; None when unsharded."""
    started: dt.datetime = field(default_factory=_now)
    top_n: int = 10
    """`grprof_group_goroutines` series per target at most."""
    metrics: ServerMetrics = field(init=False, repr=False)
    """This replica's instruments and the registry `/metrics` exposes (reading this runtime):
    they are the metrics', the runtime only hands them what a scrape observed."""

    def __post_init__(self) -> None:
        self.metrics = ServerMetrics(self, top_n=self.top_n)

    @classmethod
    def create(cls, shard: tuple[int, int] | None = None, *, top_n: int = 10) -> Runtime:
        """A fresh runtime with its own registry (never the process-wide default one)."""
        return cls(shard=shard, top_n=top_n)

    def observe_scrape(self, result: ScrapeResult) -> None:
        self.metrics.observe_scrape(result)

    def remove_target(self, name: str) -> None:
        """Forget a target dropped from the configuration, and its scrape series."""
        self.targets.pop(name, None)
        self.metrics.forget(name)

    @property
    def shard_label(self) -> str | None:
        return None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}"

    def with_local(self, stored: Iterable[StoredTarget]) -> dict[str, StoredTarget]:
        """Every target by name: the store's, plus this replica's that the store does not list
        yet (the daemon upserts a target on its first pass)."""
        out = {t.name: t for t in stored}
        for name, rt in dict(self.targets).items():
            if name not in out:
                out[name] = StoredTarget(
                    rt.target.name, rt.target.url, rt.target.labels, self.shard_label, rt.up,
                    rt.last_scrape, rt.last_success, rt.last_error, rt.goroutines, len(rt.findings),
                )  # fmt: skip
        return out


__all__ = [
    "SCRAPE_BUCKETS",
    "CaptureError",
    "CaptureFailed",
    "CaptureRefused",
    "Runtime",
    "TargetRuntime",
    "UnknownTarget",
    "blocked_by_class",
    "classify_wait",
    "wait_classes",
]
