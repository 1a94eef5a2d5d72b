"""The signals that make a finding, each computed from a track or a group alone."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from grprof.detect.model import Evidence
from grprof.detect.series import Track
from grprof.model import Group, Snapshot


@dataclass(frozen=True, slots=True)
class GrowthLevel:
    rate_per_minute: float
    above_baseline: float
    trend: float


@dataclass(frozen=True, slots=True)
class Settings:
    leak: GrowthLevel
    suspect: GrowthLevel
    min_snapshots: int
    min_span_minutes: float
    window: int
    recovered: float
    age_minutes: int
    orphans: int
    request_frames: tuple[re.Pattern[str], ...]
    busy_states: frozenset[str]

    def scaled(self, alpha: float) -> Settings:
        """Base thresholds times the SLA factor α: the growth rate and the count above baseline."""

        def s(level: GrowthLevel) -> GrowthLevel:
            return replace(
                level,
                rate_per_minute=level.rate_per_minute * alpha,
                above_baseline=level.above_baseline * alpha,
            )

        return replace(self, leak=s(self.leak), suspect=s(self.suspect))


def _level(d: dict[str, Any]) -> GrowthLevel:
    return GrowthLevel(float(d["rate_per_minute"]), float(d["above_baseline"]), float(d["trend"]))


@functools.cache
def default_settings() -> Settings:
    d = yaml.safe_load(resources.files("grprof").joinpath("data/detect.yaml").read_text())
    g = d["growth"]
    return Settings(
        leak=_level(g["leak"]),
        suspect=_level(g["suspect"]),
        min_snapshots=int(g["min_snapshots"]),
        min_span_minutes=float(g["min_span_minutes"]),
        window=int(g["window"]),
        recovered=float(g["recovered"]),
        age_minutes=int(d["age_minutes"]),
        orphans=int(d["orphans"]),
        request_frames=tuple(re.compile(p) for p in d["request_frames"]),
        busy_states=frozenset(d["busy_states"]),
    )


# -- statistics ----------------------------------------------------------------------------


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of pairwise slopes: one burst or one missed scrape does not bend it."""
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    )
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    return slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def kendall_tau(ys: Sequence[float]) -> float:
    """Rank correlation of the values with their order: 1 always rising, -1 always falling."""
    n = len(ys)
    pairs = n * (n - 1) // 2
    if pairs == 0:
        return 0.0
    score = sum((ys[j] > ys[i]) - (ys[j] < ys[i]) for i in range(n) for j in range(i + 1, n))
    return score / pairs


# -- growth --------------------------------------------------------------------------------

SHORT_WINDOW_TREND = 0.9


@dataclass(frozen=True, slots=True)
class Growth:
    verdict: str | None
    """"leak", "suspect" or None."""
    per_minute: float | None
    evidence: Evidence | None


_RANK = {None: 0, "suspect": 1, "leak": 2}


def growth(track: Track, times: Sequence[float], st: Settings) -> Growth:
    """Judge the window, and the part of it since the count was last at its minimum.

    A leak that starts after a long flat stretch shows in the tail long before the flat pairs
    stop outvoting it in the whole window's slope and trend.
    """
    counts = track.counts[-st.window :]
    ts = [t / 60 for t in times[-st.window :]]
    whole = _judge(counts, ts, st)
    if whole.verdict == "leak" or len(counts) < 2:
        return whole
    low = min(counts)
    start = max(i for i, c in enumerate(counts) if c == low)
    if start == 0:
        return whole
    tail = _judge(counts[start:], ts[start:], st)
    return tail if _RANK[tail.verdict] > _RANK[whole.verdict] else whole


def _judge(counts: Sequence[int], ts: Sequence[float], st: Settings) -> Growth:
    if len(counts) < 2:
        return Growth(None, None, None)
    # Judge the lower envelope (the minimum from each snapshot on): leaked goroutines stay, so
    # a leak's floor rises; bursts of short-lived goroutines keep falling back to it.
    baseline = min(counts)
    if counts[-1] == baseline == max(counts):
        return Growth(None, 0.0, None)  # flat: most groups of a healthy service, every scrape
    floor = list(itertools.accumulate(reversed(counts), min))[::-1]
    slope = theil_sen(ts, floor)
    above = counts[-1] - baseline
    peak = max(counts) - baseline
    span = ts[-1] - ts[0]
    if peak > 0 and above < st.recovered * peak:
        return Growth(None, slope, None)  # it came back down: a burst that drained
    if len(counts) < st.min_snapshots:
        return Growth(None, slope, None)  # two points make a line, not a trend
    short = span < st.min_span_minutes
    tau: float | None = None  # O(n²): only when slope and size could make a verdict
    for verdict, level in (("leak", st.leak), ("suspect", st.suspect)):
        # Too short a window to call a leak; a suspect then needs a floor that never stops rising
        # (a few seconds of bursty traffic can otherwise look like a trend).
        trend = max(level.trend, SHORT_WINDOW_TREND) if short else level.trend
        if slope < level.rate_per_minute or above < level.above_baseline:
            continue
        if tau is None:
            tau = kendall_tau(floor)
        if tau >= trend:
            if verdict == "leak" and short:
                continue
            data = {
                "per_minute": round(slope, 3),
                "trend": round(tau, 3),
                "baseline": baseline,
                "above_baseline": above,
                "snapshots": len(counts),
                "span_minutes": round(span, 2),
            }
            summary = (
                f"grew {slope:.3g}/min over {span:.3g} min ({len(counts)} snapshots, trend {tau:.2f}), "
                f"{above} above its baseline of {baseline}, not falling back"
            )
            ev = Evidence("growth", summary, round(slope, 3), round(level.rate_per_minute, 3), data)
            return Growth(verdict, slope, ev)
    return Growth(None, slope, None)


# -- age, orphans, request scope -----------------------------------------------------------


def request_scoped(snap: Snapshot, group: Group, st: Settings) -> int:
    """Members started by a goroutine that is serving a request (per the creator's stack)."""
    if not group.ids or snap.format != "debug=2":
        return 0
    t = snap.table
    row_of = {gid: row for row, gid in enumerate(t.ids)}
    serving: dict[int, bool] = {}
    n = 0
    members = set(group.ids)
    for row, gid in enumerate(t.ids):
        if gid not in members:
            continue
        creator = t.creator[row]
        crow = row_of.get(creator)
        if crow is None:
            continue
        si = t.stack[crow]
        if si not in serving:
            serving[si] = any(p.search(f.function) for f in t.stacks[si].frames for p in st.request_frames)
        n += serving[si]
    return n


def age(group: Group, scoped: int, st: Settings) -> Evidence | None:
    """Waiting far longer than any request takes, in a goroutine a request started."""
    m = group.max_wait_minutes
    if m < st.age_minutes or (scoped == 0 and not group.orphans):
        return None
    old = sum(n for mins, n in group.wait_minutes.items() if mins >= st.age_minutes)
    why = "whose creator is gone" if group.orphans else "started by a request-serving goroutine"
    return Evidence(
        "age",
        f"{old} goroutines {why} have waited {st.age_minutes}+ minutes (up to {m})",
        m,
        st.age_minutes,
        {"old": old},
    )


def orphans(
    group: Group, st: Settings, earlier: Group | None = None, earlier_minutes: float = 0.0
) -> Evidence | None:
    """Members that outlived the goroutine that started them, in the service's own code.

    Libraries often start goroutines from short-lived ones (net/http's dialer, gRPC's
    transports), so only goroutines started by the service's own code count. With an earlier
    per-goroutine snapshot, only orphans already there count: the same goroutines, still
    stuck, rather than short-lived work caught in flight.
    """
    if group.created_by is None or not group.created_by.is_user or group.state in st.busy_states:
        return None
    ids = group.orphans
    if earlier is not None:
        before = set(earlier.ids)
        ids = [i for i in ids if i in before]
    if not ids:
        return None
    still = (
        f", still there {earlier_minutes:.3g} min after an earlier snapshot" if earlier is not None else ""
    )
    return Evidence(
        "orphans",
        f"{len(ids)} of {group.count} goroutines outlived the goroutine that created them "
        f"(created by {group.created_by.function}, creator gone){still}",
        len(ids),
        None,
        {"ids": ids[:20], "persistent": earlier is not None},
    )


def runtime_proof(track: Track) -> Evidence | None:
    marked = max((p.leaked for p in track.points if p), default=0)
    listed = max(track.proof, default=0)
    if not marked and not listed:
        return None
    how = []
    if listed:
        how.append(f"the goroutineleak profile lists {listed}")
    if marked:
        how.append(f"{marked} marked (leaked) in the dump")
    return Evidence(
        "runtime_proof",
        "the Go runtime proved it leaked (blocked on an object no running code can reach): " + ", ".join(how),
        max(marked, listed),
        None,
    )
