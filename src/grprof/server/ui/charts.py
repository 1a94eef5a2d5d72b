"""Server-side SVG charts of the UI: a sparkline and a time-series line chart.

Only numbers and point lists are computed here; the SVG markup is in the templates
(`ui_macros.html.j2`), so every label goes through autoescape. No `style` attributes: the
stylesheet colours the classes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Point:
    time: dt.datetime
    value: float


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    label: str
    kind: str
    """CSS class: `leak`, `suspect`, `inconclusive`, `resolved` (a finding's, a link), `deploy`,
    `reload` (an event of `grprof.store.events`)."""
    href: str = ""
    """The finding's page; empty for an event (drawn as a square, not a link)."""


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(slots=True)
class Chart:
    width: int
    height: int
    points: str
    """`x,y x,y ...` of the polyline (empty when there is no data)."""
    area: str
    """The polygon under the line."""
    last: float | None
    low: float
    high: float
    xticks: list[Tick] = field(default_factory=list)
    yticks: list[Tick] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    dots: list[tuple[float, float, str]] = field(default_factory=list)
    """(x, y, title) of each sample, for a chart with few points."""
    pad_left: int = 0
    pad_bottom: int = 0

    @property
    def empty(self) -> bool:
        return not self.points


def _f(v: float) -> str:
    return f"{v:.1f}"


def sparkline(points: Sequence[Point], width: int = 120, height: int = 24) -> Chart:
    """A tiny line of `points` (oldest first), scaled to its own min..max."""
    return _chart(points, width, height, pad_left=0, pad_bottom=0, pad_top=2, axes=False)


def line_chart(
    points: Sequence[Point],
    *,
    start: dt.datetime,
    end: dt.datetime,
    width: int = 900,
    height: int = 220,
    marks: Sequence[tuple[dt.datetime, str, str, str]] = (),
) -> Chart:
    """Goroutines over [start, end] with axes; `marks`: (time, label, kind, href) vertical lines
    (findings with a link; deploys and config reloads with `href` empty)."""
    c = _chart(points, width, height, pad_left=56, pad_bottom=22, pad_top=8, axes=True, start=start, end=end)
    span = (end - start).total_seconds() or 1.0
    inner = width - c.pad_left - 24
    for t, label, kind, href in marks:
        frac = (t - start).total_seconds() / span
        x = c.pad_left + min(max(frac, 0.0), 1.0) * inner
        c.markers.append(Marker(round(x, 1), label, kind, href))
    return c


def _chart(
    points: Sequence[Point],
    width: int,
    height: int,
    *,
    pad_left: int,
    pad_bottom: int,
    pad_top: int,
    axes: bool,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> Chart:
    pts = sorted(points, key=lambda p: p.time)
    if not pts:
        return Chart(width, height, "", "", None, 0, 0, pad_left=pad_left, pad_bottom=pad_bottom)
    t0 = start or pts[0].time
    t1 = end or pts[-1].time
    span = (t1 - t0).total_seconds() or 1.0
    lo = 0.0 if axes else min(p.value for p in pts)
    hi = max(p.value for p in pts)
    if hi == lo:
        hi = lo + 1
    right = 24 if axes else 1
    inner_w = width - pad_left - right
    inner_h = height - pad_bottom - pad_top
    xy: list[tuple[float, float]] = []
    for p in pts:
        x = pad_left + ((p.time - t0).total_seconds() / span) * inner_w if len(pts) > 1 or axes else width / 2
        y = pad_top + (1 - (p.value - lo) / (hi - lo)) * inner_h
        xy.append((x, y))
    line = " ".join(f"{_f(x)},{_f(y)}" for x, y in xy)
    base = _f(pad_top + inner_h)
    area = f"{_f(xy[0][0])},{base} {line} {_f(xy[-1][0])},{base}"
    c = Chart(width, height, line, area, pts[-1].value, lo, hi, pad_left=pad_left, pad_bottom=pad_bottom)
    if axes:
        for i in range(5):
            v = lo + (hi - lo) * i / 4
            c.yticks.append(Tick(round(pad_top + (1 - i / 4) * inner_h, 1), f"{v:,.0f}"))
        fmt = "%H:%M:%S" if span <= 600 else "%H:%M" if span <= 86400 * 1.01 else "%m-%d %H:%M"
        for i in range(5):
            t = t0 + dt.timedelta(seconds=span * i / 4)
            c.xticks.append(Tick(round(pad_left + inner_w * i / 4, 1), t.strftime(fmt)))
        if len(pts) <= 120:
            c.dots = [(round(x, 1), round(y, 1), f"{p.value:,.0f} at {p.time:%Y-%m-%d %H:%M:%S}Z")
                      for (x, y), p in zip(xy, pts, strict=True)]  # fmt: skip
    return c


__all__ = ["Chart", "Marker", "Point", "Tick", "line_chart", "sparkline"]
