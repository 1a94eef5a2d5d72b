"""In-memory state of one `grprof serve` replica, shared by the daemon, the API and `/metrics`.

The daemon (one asyncio loop) writes it after each scrape and detection run; the API and the
metrics collector only read it. Nothing here is persisted: the store holds the history.

Wait-reason classes (`classify_wait`) are data: `grprof/data/wait_classes.yaml`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram

from grprof.collect.model import ScrapeResult, Target
from grprof.detect.model import Finding
from grprof.model import Group

# Seconds: a loopback debug=1 scrape takes milliseconds, a 40,000-goroutine debug=2 seconds.
SCRAPE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DURABLE = " (durable)"


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
class TargetRuntime:
    target: Target
    up: bool = False
    last_scrape: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_error: str = ""
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


def _histogram() -> Histogram:
    # Not registered anywhere: `RuntimeCollector` re-exposes its samples with each target's
    # static labels added, which a fixed-label Histogram cannot carry.
    return Histogram(
        "grprof_scrape_duration_seconds",
        "Duration of scrapes of a target's pprof endpoint, request start to last byte.",
        ["target", "kind"],
        buckets=SCRAPE_BUCKETS,
        registry=None,
    )


def _counter() -> Counter:
    return Counter(
        "grprof_scrapes",
        "Scrapes of a target's pprof endpoint, by kind and result.",
        ["target", "kind", "result"],
        registry=None,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    targets: dict[str, TargetRuntime] = field(default_factory=dict)
    """This replica's targets, by name."""
    shard: tuple[int, int] | None = None
    """(I, N): this replica scrapes shard I of N; None when unsharded."""
    started: dt.datetime = field(default_factory=_now)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    """Everything `/metrics` exposes: `RuntimeCollector(self)` is registered in it."""
    scrape_duration: Histogram = field(default_factory=_histogram)
    scrapes_total: Counter = field(default_factory=_counter)
    top_n: int = 10
    """`grprof_group_goroutines` series per target at most."""
    _series: set[tuple[str, str, str]] = field(default_factory=set, init=False, repr=False)
    """(target, kind, result) label values seen, to remove a target's series."""

    def __post_init__(self) -> None:
        from grprof.server.metrics import RuntimeCollector

        self.registry.register(RuntimeCollector(self, top_n=self.top_n))

    @classmethod
    def create(cls, shard: tuple[int, int] | None = None, *, top_n: int = 10) -> Runtime:
        """A fresh runtime with its own registry (never the process-wide default one)."""
        return cls(shard=shard, top_n=top_n)

    def observe_scrape(self, result: ScrapeResult) -> None:
        self.scrape_duration.labels(result.target, result.kind).observe(max(result.duration, 0.0))
        self.scrapes_total.labels(result.target, result.kind, result.status).inc()
        self._series.add((result.target, result.kind, result.status))

    def remove_target(self, name: str) -> None:
        """Forget a target dropped from the configuration, and its scrape series."""
        self.targets.pop(name, None)
        for series in [s for s in self._series if s[0] == name]:
            self._series.discard(series)
            target, kind, status = series
            self.scrapes_total.remove(target, kind, status)
            if not any(s[:2] == (target, kind) for s in self._series):
                self.scrape_duration.remove(target, kind)

    @property
    def shard_label(self) -> str | None:
        return None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}"


# -- wait-reason classes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitClasses:
    exact: Mapping[str, str]
    prefixes: tuple[tuple[str, str], ...]
    default: str
    names: tuple[str, ...]
    """Every class, in file order."""


@functools.cache
def wait_classes() -> WaitClasses:
    text = (resources.files("grprof") / "data" / "wait_classes.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    exact: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    for name, spec in data["classes"].items():
        for state in spec.get("exact") or ():
            exact.setdefault(str(state), name)
        prefixes.extend((str(p), name) for p in spec.get("prefix") or ())
    names = tuple(data["classes"])
    return WaitClasses(exact, tuple(prefixes), str(data["default"]), names)


@functools.lru_cache(maxsize=4096)
def classify_wait(state: str) -> str:
    """`chan receive` -> `channel`, `IO wait` -> `io`, ...; see data/wait_classes.yaml."""
    wc = wait_classes()
    state = state.removesuffix(_DURABLE)
    hit = wc.exact.get(state)
    if hit is not None:
        return hit
    return next((cls for p, cls in wc.prefixes if state.startswith(p)), wc.default)


class HasStates(Protocol):
    @property
    def states(self) -> Mapping[str, int]: ...


def blocked_by_class(groups: Iterable[HasStates]) -> dict[str, int]:
    """Goroutines per wait-reason class, over every state of every group."""
    out: dict[str, int] = {}
    for g in groups:
        for state, n in g.states.items():
            cls = classify_wait(state)
            out[cls] = out.get(cls, 0) + n
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
