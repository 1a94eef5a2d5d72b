"""SLA-adaptive thresholds: scale leak thresholds by how close a service runs to its latency SLA.

Each base threshold of the detector (growth rate, count above baseline; for suspect and for
leak) is multiplied by `α`, from `ratio = p95 latency / SLA latency` (docs/sla.md).
The document's formula `0.3 + 1.2·(1 - 1/ratio)` does not reproduce its own table, so α
follows the table: piecewise-linear through its points, extrapolated along the end segments,
clamped to [0.3, 1.5]. A service far inside its SLA (low ratio) gets lower thresholds: leaks
are flagged sooner, while there is headroom to investigate them.

p95 comes from config (static) or from one PromQL instant query (grprof.collect.prometheus).
An SLA as written in config (durations as `200ms`) is validated by `grprof.detect.sla_yaml`
(pydantic, imported only there: detection without a config needs none of it).
When Prometheus cannot answer, detection keeps going with α = 1 (the base thresholds) and
says why.
"""

from __future__ import annotations

import itertools
import math
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Point = tuple[float, float]

DEFAULT_POINTS: tuple[Point, ...] = ((0.83, 0.58), (1.0, 0.90), (1.25, 1.12))
"""(ratio, α) from the table in docs/sla.md: SLA met at 120%, 100%, 80%."""

ALPHA_MIN = 0.3
ALPHA_MAX = 1.5
_PAIR = 2
"""A curve point is (ratio, alpha)."""
_MIN_POINTS = 2
"""Interpolation needs two points."""


def check_points(points: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """Validate (ratio, α) points and return them as a tuple of pairs; ValueError says what is wrong."""
    pts: list[Point] = []
    if isinstance(points, str | bytes):
        raise ValueError(f"want a list of (ratio, alpha) pairs, got {points!r}")
    for i, p in enumerate(points):
        try:
            if isinstance(p, str | bytes) or len(p) != _PAIR:
                raise TypeError
            r, a = float(p[0]), float(p[1])
        except (TypeError, ValueError):
            raise ValueError(f"point {i}: want a (ratio, alpha) pair of numbers, got {p!r}") from None
        if not (math.isfinite(r) and math.isfinite(a)) or r < 0 or a < 0:
            raise ValueError(f"point {i}: ratio and alpha must be finite and >= 0, got ({r:g}, {a:g})")
        pts.append((r, a))
    if len(pts) < _MIN_POINTS:
        raise ValueError(f"need at least 2 (ratio, alpha) points to interpolate, got {len(pts)}")
    for (r0, a0), (r1, a1) in itertools.pairwise(pts):
        if r1 <= r0:
            raise ValueError(f"must be sorted by strictly increasing ratio: {r0:g} then {r1:g}")
        if a1 < a0:
            # A decreasing α would make a service closer to its SLA *more* sensitive: not monotonic.
            raise ValueError(f"alpha must not decrease with ratio: {a0:g} at {r0:g} then {a1:g} at {r1:g}")
    return tuple(pts)


def alpha(
    ratio: float, points: Sequence[Point] = DEFAULT_POINTS, lo: float = ALPHA_MIN, hi: float = ALPHA_MAX
) -> float:
    """α for `ratio = p95 / SLA latency`: exact at the points, linear between, clamped to [lo, hi]."""
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError(f"ratio must be finite and >= 0, got {ratio!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo!r} hi={hi!r}")
    pts = check_points(points)
    return min(hi, max(lo, _interpolate(ratio, pts)))


def _interpolate(x: float, pts: Sequence[Point]) -> float:
    (x0, y0), (x1, y1) = pts[0], pts[1]
    if x <= x0:
        return y0 + (x - x0) * ((y1 - y0) / (x1 - x0))
    (xa, ya), (xb, yb) = pts[-2], pts[-1]
    if x >= xb:
        return yb + (x - xb) * ((yb - ya) / (xb - xa))
    for (xa, ya), (xb, yb) in itertools.pairwise(pts):
        if xa <= x < xb:
            y = ya + (yb - ya) * ((x - xa) / (xb - xa))
            # Rounding may step a hair past the segment's end; keep the curve monotonic.
            return min(yb, max(ya, y))
    raise AssertionError("unreachable: x lies within the points")


@dataclass(frozen=True)
class SLA:
    """A service's latency SLA and where its current p95 comes from (static, or a PromQL query)."""

    latency: float
    """The SLA target latency in seconds."""
    p95: float | None = None
    """Static p95 latency in seconds (instead of Prometheus)."""
    prometheus: str | None = None
    """Prometheus base URL, e.g. `http://127.0.0.1:9090`; `/api/v1/query` is appended."""
    query: str | None = None
    """PromQL returning one sample: the p95 in seconds."""
    points: tuple[Point, ...] = DEFAULT_POINTS
    timeout: float = 10.0
    """Seconds for the whole Prometheus request."""

    def __post_init__(self) -> None:
        _check_seconds("latency", self.latency, allow_zero=False)
        if self.p95 is not None:
            _check_seconds("p95", self.p95, allow_zero=True)
        _check_seconds("timeout", self.timeout, allow_zero=False)
        try:
            # Normalise to a tuple of float pairs so equal SLAs compare and hash equal.
            object.__setattr__(self, "points", check_points(self.points))
        except ValueError as err:
            raise ValueError(f"points: {err}") from None
        if self.p95 is not None and (self.prometheus is not None or self.query is not None):
            raise ValueError("give either p95 (static) or prometheus and query, not both")
        if self.p95 is None:
            if self.prometheus is None and self.query is None:
                raise ValueError("p95: missing; give p95 (static) or prometheus and query")
            if self.query is None:
                raise ValueError("query: missing; PromQL returning the p95 in seconds")
            if self.prometheus is None:
                raise ValueError("prometheus: missing; the Prometheus base URL to run query against")
            _check_url(self.prometheus)
            if not self.query.strip():
                raise ValueError("query: must not be empty")


def _check_seconds(key: str, value: float, *, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: want seconds as a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{key}: must be a finite positive number of seconds, got {value!r}")


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    try:
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number in 1..65535
        ok = False
    if not ok:
        raise ValueError(f"prometheus: want an http(s) URL like http://127.0.0.1:9090, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"prometheus: want a base URL without query or fragment, got {url!r}")


@dataclass(frozen=True)
class SLAState:
    """The α in force for one evaluation, and how it was reached."""

    alpha: float
    ratio: float | None
    p95: float | None
    latency: float
    """The SLA latency in seconds; 0.0 when no SLA is configured."""
    source: str
    """`static`, `prometheus`, `none` (no SLA) or `none: <why p95 is unknown>`."""

    def summary(self) -> str:
        """One line for evidence text: `p95 180ms / SLA 200ms = 0.90 → α 0.71 (Prometheus)`."""
        if self.ratio is None or self.p95 is None:
            why = self.source.removeprefix("none").removeprefix(": ")
            return f"α 1.00 (base thresholds: {why or 'no SLA configured'})"
        label = {"prometheus": "Prometheus", "static": "static p95"}.get(self.source, self.source)
        return (
            f"p95 {_human(self.p95)} / SLA {_human(self.latency)} = {self.ratio:.2f}"
            f" → α {self.alpha:.2f} ({label})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "ratio": self.ratio,
            "p95": self.p95,
            "latency": self.latency or None,
            "source": self.source,
        }


def _human(seconds: float) -> str:
    return f"{seconds * 1000:.3g}ms" if seconds < 1 else f"{seconds:.3g}s"


QueryFn = Callable[[str, str, float], float]
"""(base URL, PromQL, timeout) -> the one value; raises PrometheusError."""


def evaluate(sla: SLA | None, query: QueryFn | None = None) -> SLAState:
    """The α for a service now. Never raises for Prometheus trouble: α falls back to 1.0 with a reason.

    `query` runs the PromQL (`grprof.collect.prometheus.query_prometheus` unless given): the
    network I/O lives in grprof.collect, the arithmetic here.
    """
    if sla is None:
        return SLAState(alpha=1.0, ratio=None, p95=None, latency=0.0, source="none")
    if sla.p95 is not None:
        return _state(sla, sla.p95, "static")
    assert sla.prometheus is not None and sla.query is not None  # guaranteed by SLA validation
    from grprof.collect.prometheus import PrometheusError, query_prometheus

    try:
        p95 = (query or query_prometheus)(sla.prometheus, sla.query, sla.timeout)
    except PrometheusError as err:
        return SLAState(
            alpha=1.0, ratio=None, p95=None, latency=sla.latency, source=f"none: prometheus {err}"
        )
    return _state(sla, p95, "prometheus")


def _state(sla: SLA, p95: float, source: str) -> SLAState:
    ratio = p95 / sla.latency
    return SLAState(alpha(ratio, sla.points), ratio, p95, sla.latency, source)
