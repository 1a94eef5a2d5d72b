"""The signals that make a finding, each computed from a track or a group alone."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeGuard

from grprof.detect.model import Evidence, Verdict, WaitKind, load_detect
from grprof.detect.series import (
    Point,
    Series,
    Track,
    point_creators,
    point_has_ids,
    point_ids,
    present_ids,
    series_aged,
    series_leaked,
    snapshot_data,
    track_counts,
)
from grprof.frames import Frame
from grprof.model import Group, Snapshot


@dataclass(frozen=True, slots=True)
class GrowthLevel:
    """The growth that makes a verdict (detect.yaml `growth.leak`, `growth.suspect`)."""

    rate_per_minute: float
    above_baseline: float
    trend: float


@dataclass(frozen=True, slots=True)
class Scoring:
    """How evidence weighs (`scoring:` in detect.yaml): weights, verdict cut-offs, confidence."""

    weights: Mapping[str, float]
    leak: float
    suspect: float
    midpoint: float
    steepness: float
    max_confidence: float

    def weight(self, name: str) -> float:
        return self.weights.get(name, 0.0)

    def confidence(self, score: float) -> float:
        c = 1.0 / (1.0 + math.exp(-self.steepness * (score - self.midpoint)))
        return min(self.max_confidence, c)

    def verdict(self, score: float) -> Verdict | None:
        """`leak` or `suspect` by the cut-offs; None below them."""
        if score >= self.leak:
            return "leak"
        return "suspect" if score >= self.suspect else None


@dataclass(frozen=True, slots=True)
class Settings:
    """The detector's thresholds (data/detect.yaml), scaled by an SLA with `scaled`."""

    leak: GrowthLevel
    suspect: GrowthLevel
    min_snapshots: int
    min_span_minutes: float
    window: int
    recovered: float
    draining: float
    age_minutes: int
    age_states: frozenset[str]
    """Waits no healthy goroutine holds for `age_minutes`, whoever started it (`age`)."""
    orphans: int
    request_frames: tuple[re.Pattern[str], ...]
    busy_states: frozenset[str]
    wait_frames: Mapping[str, WaitKind]
    wait_states: Mapping[str, WaitKind]
    wait_source: Mapping[str, WaitKind]
    persistence_snapshots: int
    persistence_span: float
    steady: Mapping[str, tuple[int, float, str]]
    """State -> (snapshots, minutes, tier) a count must hold without ids to be `steady`; the
    tier names its weight (`steady_<tier>`)."""
    on_behalf_creators: frozenset[str]
    woken_span: float
    accumulating_span: float
    caller_spawners: frozenset[str]
    """Functions that start a goroutine for their caller (errgroup's `Go`): see `own_start`."""
    churn: float
    churn_min_count: int
    scoring: Scoring

    def scaled(self, alpha: float) -> Settings:
        """Base thresholds times the SLA factor α: the growth rate and the count above baseline."""
        if alpha == 1.0:  # no SLA, or one that is met: x * 1.0 == x exactly, and this is frozen
            return self

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
    d = asdict(load_detect())  # data/detect.yaml, validated
    g = d["growth"]
    return Settings(
        leak=_level(g["leak"]),
        suspect=_level(g["suspect"]),
        min_snapshots=int(g["min_snapshots"]),
        min_span_minutes=float(g["min_span_minutes"]),
        window=int(g["window"]),
        recovered=float(g["recovered"]),
        draining=float(g["draining"]),
        age_minutes=int(d["age_minutes"]),
        age_states=frozenset(d["age_states"]),
        orphans=int(d["orphans"]),
        request_frames=tuple(re.compile(p) for p in d["request_frames"]),
        busy_states=frozenset(d["busy_states"]),
        wait_frames=dict(d["wait_kinds"]["frames"]),
        wait_source=dict(d["wait_kinds"]["source"]),
        wait_states={st: kind for kind, sts in d["wait_kinds"]["states"].items() for st in sts},
        persistence_snapshots=int(d["persistence"]["min_snapshots"]),
        persistence_span=float(d["persistence"]["min_span_minutes"]),
        steady={
            state: (int(tier["min_snapshots"]), float(tier["min_span_minutes"]), name)
            for name, tier in d["steady"].items()
            for state in tier["states"]
        },
        on_behalf_creators=frozenset(d["persistence"]["on_behalf_creators"]),
        woken_span=float(d["persistence"]["woken_min_span_minutes"]),
        accumulating_span=float(d["persistence"]["accumulating_min_span_minutes"]),
        caller_spawners=frozenset(d["caller_spawners"]),
        churn=float(d["turnover"]["churn"]),
        churn_min_count=int(d["turnover"]["min_count"]),
        scoring=Scoring(
            weights={k: float(v) for k, v in d["scoring"]["weights"].items()},
            leak=float(d["scoring"]["verdicts"]["leak"]),
            suspect=float(d["scoring"]["verdicts"]["suspect"]),
            midpoint=float(d["scoring"]["confidence"]["midpoint"]),
            steepness=float(d["scoring"]["confidence"]["steepness"]),
            max_confidence=float(d["scoring"]["confidence"]["max"]),
        ),
    )


# -- statistics ----------------------------------------------------------------------------


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of pairwise slopes: one burst or one missed scrape does not bend it."""
    n = len(xs)
    if (
        n > _LINE
        and len(ys) == n
        and all(type(y) is int for y in ys)
        and all(b >= a for a, b in itertools.pairwise(ys))
        and all(b > a for a, b in itertools.pairwise(xs))
    ):
        return _theil_sen_rising(xs, ys)
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


def _theil_sen_rising(xs: Sequence[float], ys: Sequence[float]) -> float:
    """`theil_sen` of integer counts that never fall at strictly increasing times (a track's
    lower envelope), with the same result, computing only the slopes it needs.

    Why it is the same: every pair (i < j) has xs[j] - xs[i] > 0, so each slope is kept, and
    ys[j] - ys[i] is an int >= 0: a pair of equal counts has the slope 0 / dx == 0.0 exactly
    (never -0.0), every other pair a slope > 0.0. The sorted slopes are therefore `zeros`
    times 0.0 (the pairs within each run of equal counts) followed by the positive slopes,
    sorted; sorting equal multisets of floats gives equal lists, so the median element(s)
    read from that list are the ones the sort of all the slopes gives. When the median falls
    among the zeros, no positive slope is needed."""
    n = len(xs)
    total = n * (n - 1) // 2
    zeros = 0
    run = 1
    for a, b in itertools.pairwise(ys):
        if a == b:
            run += 1
        else:
            zeros += run * (run - 1) // 2
            run = 1
    zeros += run * (run - 1) // 2
    mid = total // 2
    if mid < zeros:  # the median element(s) (mid, and mid - 1 when even) are zeros
        return 0.0
    positive = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(n) for j in range(i + 1, n) if ys[j] != ys[i]
    )
    slopes = [0.0] * zeros + positive
    return slopes[mid] if total % 2 else (slopes[mid - 1] + slopes[mid]) / 2


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
    """What a track's counts say about growth: the verdict, the rate and the evidence."""

    verdict: str | None
    """"leak", "suspect", "inconclusive" (seen, in too few snapshots) or None."""
    per_minute: float | None
    evidence: Evidence | None


_RANK = {None: 0, "inconclusive": 1, "suspect": 2, "leak": 3}
_LINE = 2
"""A slope needs two points."""
_CALLS = 2
"""Goroutines started by this many calls (not one call's fan-out) were left behind by each call."""
_SHOWN_IDS = 5
"""Goroutine ids named in a summary."""
_GC_STAMP_MINUTES = 3
"""A wait age lags: stamped at the first GC mark (one at least every 2 minutes), shown in
whole minutes. A goroutine blocked for m minutes shows at least m - 3."""


def growth(
    track: Track, times: Sequence[float], st: Settings, minutes: Sequence[float] | None = None
) -> Growth:
    """Judge the window, and the part of it since the count was last at its minimum.

    A leak that starts after a long flat stretch shows in the tail long before the flat pairs
    stop outvoting it in the whole window's slope and trend. `minutes`: `times` already divided
    by 60 (`series_minutes`), when the caller has them.
    """
    counts = track_counts(track)[-st.window :]
    if len(counts) >= _LINE and min(counts) == max(counts):
        # Flat (most groups of a healthy service, every scrape): what the code below gives,
        # `_judge`'s flat answer for the whole window, its tail of one point adding nothing.
        return Growth(None, 0.0, None)
    ts = minutes[-st.window :] if minutes is not None else [t / 60 for t in times[-st.window :]]
    whole = _judge(counts, ts, st)
    if whole.verdict == "leak" or len(counts) < _LINE:
        return whole
    low = min(counts)
    start = len(counts) - 1 - counts[::-1].index(low)  # the last index at the minimum
    if start == 0:
        return whole
    tail = _judge(counts[start:], ts[start:], st)
    if tail.verdict == "inconclusive":
        return whole  # a young rise in a long series: judged again at the next snapshot
    return tail if _RANK[tail.verdict] > _RANK[whole.verdict] else whole


def _judge(counts: Sequence[int], ts: Sequence[float], st: Settings) -> Growth:
    if len(counts) < _LINE:
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
    if len(counts) > _LINE and counts[-1] < counts[-2] < counts[-3] and peak - above >= st.draining * peak:
        return Growth(None, slope, None)  # still coming down: a burst draining
    if len(counts) < st.min_snapshots:
        return _thin(counts, ts, slope, st)  # two points make a line, not a trend
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


def _thin(counts: Sequence[int], ts: Sequence[float], slope: float, st: Settings) -> Growth:
    """Growth seen in too few snapshots for a verdict: say what was seen and what would settle it."""
    above = counts[-1] - min(counts)
    if slope < st.suspect.rate_per_minute or above < st.suspect.above_baseline or counts[-1] <= counts[0]:
        return Growth(None, slope, None)
    span = ts[-1] - ts[0]
    summary = (
        f"grew {slope:.3g}/min between {len(counts)} snapshots {span:.2g} min apart "
        f"({counts[0]} → {counts[-1]}); {len(counts)} snapshots make a line, not a trend: a load ramp "
        f"looks the same. To settle it: {st.min_snapshots}+ snapshots over {st.min_span_minutes:g}+ min, "
        "debug=2 captures (the same ids staying, or being replaced) or a goroutineleak profile (Go 1.26+)"
    )
    data = {"per_minute": round(slope, 3), "snapshots": len(counts), "span_minutes": round(span, 2)}
    return Growth("inconclusive", slope, Evidence("thin", summary, round(slope, 3), None, data))


# -- age, orphans, request scope -----------------------------------------------------------


def serving_ids(snap: Snapshot, st: Settings) -> frozenset[int]:
    """Ids of the goroutines that are serving a request (their stack runs a request frame);
    computed once per snapshot (detection's settings don't change under a running daemon)."""
    d = snapshot_data(snap)
    if d.serving is None:
        hits: dict[str, bool] = {}

        def serving(name: str) -> bool:
            hit = hits.get(name)
            if hit is None:
                hit = hits[name] = any(p.search(name) for p in st.request_frames)
            return hit

        d.serving = frozenset(
            gid
            for g in snap.groups()
            if g.ids and any(serving(f.function) for f in g.frames)
            for gid in g.ids
        )
    return d.serving


def request_scoped(snap: Snapshot, group: Group, st: Settings) -> int:
    """Members started by a goroutine that is serving a request (per the creator's stack).

    Linear in the snapshot: the serving goroutines are found once per snapshot, and each group
    knows its members' creators."""
    if not group.creators or snap.format != "debug=2":
        return 0
    serving = serving_ids(snap, st)
    return sum(n for creator, n in group.creators.items() if creator in serving)


def age(group: Group, scoped: int, st: Settings, calls: int = 0) -> Evidence | None:
    """Waiting far longer than any request takes: in a goroutine a request started (its
    creator serving one, `scoped`), or whose creator is gone, or in a wait no healthy goroutine
    holds that long (`age_states`: a send, a lock) whoever started it.

    Goroutines whose creator is gone count when the service's own code started them
    (`own_start`) or when they came from 2+ calls (`calls`: distinct creators): a library's
    singleton (a gRPC server's keepalive) outlives the goroutine that started it by design."""
    m = group.max_wait_minutes
    if m < st.age_minutes:
        return None
    orphaned = bool(group.orphans) and (own_start(group.created_by, st) or calls >= _CALLS)
    held = base_state(group.state) in st.age_states
    if not (scoped or orphaned or held):
        return None
    old = sum(n for mins, n in group.wait_minutes.items() if mins >= st.age_minutes)
    if scoped:
        why = "started by a request-serving goroutine"
    elif orphaned:
        why = "whose creator is gone"
    else:
        why = f"in {group.state} (a wait nothing healthy holds that long)"
    return Evidence(
        "age",
        f"{old} goroutines {why} have waited {st.age_minutes}+ minutes (up to {m})",
        m,
        st.age_minutes,
        {"old": old},
    )


def creator_calls(snap: Snapshot, group: Group) -> int:
    """How many distinct goroutines, gone from the snapshot, started the group's members: the
    calls that left them behind (0 without orphans)."""
    if not group.orphans:
        return 0
    present = present_ids(snap)
    return sum(1 for c in group.creators if c not in present)


def own_start(created_by: Frame | None, st: Settings) -> TypeGuard[Frame]:
    """Whether the service's own code started a group's goroutines: a `go` statement in it,
    or a call to a function that starts one for its caller (`caller_spawners`: errgroup's
    `Go`, `WaitGroup.Go`), whose creator is then the goroutine that called it. Libraries
    start long-lived goroutines from short-lived ones by design; a service's code that does
    so through errgroup has leaked them as surely as through `go`."""
    return created_by is not None and (created_by.is_user or created_by.function in st.caller_spawners)


def orphans(
    group: Group, st: Settings, earlier: Group | None = None, earlier_minutes: float = 0.0
) -> Evidence | None:
    """Members that outlived the goroutine that started them, in the service's own code.

    Libraries often start goroutines from short-lived ones (net/http's dialer, gRPC's
    transports), so only goroutines started by the service's own code count. With an earlier
    per-goroutine snapshot, only orphans already there count: the same goroutines, still
    stuck, rather than short-lived work caught in flight.
    """
    if not group.orphans:  # first: the cheapest of the tests that make it None
        return None
    if not own_start(group.created_by, st) or group.state in st.busy_states:
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
        {"ids": list(ids[:20]), "persistent": earlier is not None},  # a slice of an array('q')
    )


def runtime_proof(track: Track, leaked: bool = True) -> Evidence | None:
    """`leaked`: False when no snapshot of the series marks a goroutine leaked
    (`series_leaked`), so that no point's `leaked` can be above 0."""
    marked = max((p.leaked for p in track.points if p), default=0) if leaked else 0
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


# -- the kind of wait, ids across snapshots, proof of absence ------------------------------


def base_state(state: str) -> str:
    """The wait reason without Go 1.25's ` (durable)` (synctest) suffix."""
    return state.removesuffix(" (durable)")


def wait_kind(group: Group, st: Settings, source: str | None = None) -> WaitKind:
    """blocking, waiting or idle (detect.yaml `wait_kinds`): how long such a wait may be healthy.

    `source`: what the blocking statement waits on, when the source was read (`SourceWait.kind`)."""
    if source is not None and source in st.wait_source:
        return st.wait_source[source]
    for f in group.frames[:4]:
        kind = st.wait_frames.get(f.function)
        if kind is not None:
            return kind
        if not f.is_runtime:
            break
    return st.wait_states.get(base_state(group.state), "waiting")


def _with_ids(track: Track, series: Series, last: int) -> list[int]:
    """The `last` latest per-goroutine snapshots (or fewer), in order, where the track has
    goroutines with ids: read from the latest back, as far as needed."""
    out: list[int] = []
    points = track.points
    for i in reversed(series.detailed):
        p = points[i]
        if p is not None and point_has_ids(p):
            out.append(i)
            if len(out) == last:
                break
    out.reverse()
    return out


def _minutes(series: Series, i: int, j: int) -> float:
    return (series.times[j] - series.times[i]) / 60


def persisting(track: Track, series: Series) -> tuple[frozenset[int], int, int]:
    """The track's goroutines present in every debug=2 snapshot from the latest back (without a
    gap): (their ids, the first of those snapshots, how many snapshots); once per track and
    series."""
    if not series.detailed:
        return frozenset(), 0, 0
    memo = track.memo_persisting
    if memo is not None and memo[0] is series.detailed:
        return memo[1]
    found = _persisting(track, series)
    track.memo_persisting = (series.detailed, found)
    return found


def _persisting(track: Track, series: Series) -> tuple[frozenset[int], int, int]:
    last = series.detailed[-1]
    p = track.points[last]
    if p is None:
        return frozenset(), last, 0  # drained since
    stuck = point_ids(p)
    start, n = last, 1
    for i in reversed(series.detailed[:-1]):
        q = track.points[i]
        if q is None:
            break
        both = stuck & point_ids(q)
        if not both:
            break
        stuck, start, n = both, i, n + 1
    return stuck, start, n


def blocked_ids(series: Series, st: Settings, kinds: Mapping[str, WaitKind]) -> frozenset[int]:
    """Goroutines that stayed in one blocking wait across `persistence.min_snapshots` debug=2
    snapshots, whoever started them (`kinds`: track id -> wait kind). A goroutine they started
    has lost its creator as surely as one whose creator returned: it waits for a goroutine that
    is stuck itself (an errgroup's Wait on a worker that waits on it)."""
    out: set[int] = set()
    for track in series.tracks:
        if kinds.get(track.id) != "blocking":
            continue
        ids, _, n = persisting(track, series)
        if n >= st.persistence_snapshots:
            out |= ids
    return frozenset(out)


def _may_persist(p: Point, creator: Frame, st: Settings, stuck_creators: frozenset[int]) -> bool:
    """A bound `persistence` checks before its costlier tests: False when its answer is None.

    Without `on_behalf` and without a creator among `stuck_creators`, the goroutines that
    count are the point's orphans (`orphans` there), so a point without orphans (`p.orphans`
    sums its groups' orphans) leaves `stuck_orphans` empty and the answer None. Every test it
    goes before returns None or goes on, with no side effect but caches: the result is the same."""
    if creator.function in st.on_behalf_creators or p.orphans:
        return True
    return bool(stuck_creators) and bool(point_creators(p) & stuck_creators)


def persistence(
    track: Track, series: Series, st: Settings, kind: WaitKind, stuck_creators: frozenset[int] = frozenset()
) -> Evidence | None:
    """The same goroutines, blocked, across `persistence.min_snapshots` debug=2 snapshots, their
    creator gone (or stuck itself, `stuck_creators`), the count never falling: stuck, not
    waiting for work (a small exact leak).

    Only goroutines started by the service's own code count (`own_start`: libraries start
    long-lived goroutines from short-lived ones by design), or by the standard library on the caller's
    behalf (`persistence.on_behalf_creators`: AfterFunc's callbacks, a context's or
    NotifyContext's watcher), and only from the latest debug=2 snapshot back through the ones
    the track was in without a gap."""
    if not series.detailed:
        return None
    last = series.detailed[-1]
    p = track.points[last]
    if p is None:
        return None  # drained since
    g = p.group
    if g.created_by is None or not _may_persist(p, g.created_by, st, stuck_creators):
        return None
    on_behalf = g.created_by.function in st.on_behalf_creators
    if g.state in st.busy_states:
        return None
    if not (on_behalf or own_start(g.created_by, st)):
        return None
    stuck, start, n = persisting(track, series)
    span = _minutes(series, start, last)
    if (
        n < st.persistence_snapshots
        or span < st.persistence_span
        or any(b < a for a, b in itertools.pairwise(track_counts(track)[start:]))  # it fell
    ):
        return None
    if on_behalf or point_creators(p) & stuck_creators:
        orphans = set(stuck)
    else:
        orphans = {gid for grp in p.groups for gid in grp.orphans}
    stuck_orphans = stuck & orphans
    if not stuck_orphans:
        return None
    present = present_ids(series.snapshots[last])
    calls = len({c for c in point_creators(p) if c not in present or c in stuck_creators})
    # Pollers, sessions or a pool one setup call started and left running are idle by design:
    # stuck per call (2+ calls, each leaving its own) is the leak an idle wait can show.
    if kind == "idle" and calls < _CALLS:
        return None
    w = st.scoring.weight(f"persistence_{kind}")
    if calls >= _CALLS:
        w += st.scoring.weight("persistence_calls")
    first = track.points[start]
    waited = ""
    if first is not None and p.max_wait > first.max_wait:
        waited = f", waiting {first.max_wait} → {p.max_wait} min"
    shown = ", ".join(str(i) for i in sorted(stuck_orphans)[:_SHOWN_IDS])
    shown += "…" if len(stuck_orphans) > _SHOWN_IDS else ""
    from_calls = (
        f", started by {calls} calls that have all returned or are stuck"
        if calls >= _CALLS
        else ", creator gone"
    )
    summary = (
        f"the same {len(stuck_orphans)} goroutine{'s' if len(stuck_orphans) != 1 else ''} (id {shown}) "
        f"stayed {'' if kind == 'idle' else 'blocked '}in {g.state or 'an unknown wait'} ({kind} wait) "
        f"across {n} debug=2 snapshots "
        f"over {span:.2g} min{waited}{from_calls}, count never fell"
    )
    data = {
        "ids": sorted(stuck_orphans)[:20],
        "snapshots": n,
        "span_minutes": round(span, 2),
        "wait_kind": kind,
        "calls": calls,
    }
    return Evidence("persistence", summary, len(stuck_orphans), st.persistence_snapshots, data, weight=w)


def woken(track: Track, series: Series, st: Settings) -> Evidence | None:
    """Goroutines still there `persistence.woken_min_span_minutes` or more after an earlier
    debug=2 snapshot that show no wait age in the latest one: each has run since, so something
    still wakes them (a stream's pump, a consumer fed now and then, a ticker loop). Such a wait
    is a wait for work (idle), whatever its state says: a `for range time.Tick(...)` shows as a
    plain `chan receive` in debug=2, which hides `runtime.chanrecv2`.

    The runtime clears a goroutine's wait age (`waitsince`) whenever it runs and stamps it at
    the first GC mark that finds it waiting; while GC is on, one comes at least every 2 minutes
    (`forcegcperiod`), so a goroutine blocked all along shows a minute or more within 3. Said
    only when no member of the group shows an age in the latest snapshot, and some debug=2
    snapshot of the stretch shows one (the process does collect)."""
    rows = series.detailed
    if not rows or _minutes(series, rows[0], rows[-1]) < st.woken_span:
        return None
    aged = series_aged(series)
    if not aged:
        return None
    last = rows[-1]
    p = track.points[last]
    if p is None or p.max_wait > 0 or p.group.state in st.busy_states or not point_has_ids(p):
        return None
    ids = point_ids(p)
    seen: frozenset[int] = frozenset()  # the latest members already there `woken_span` before
    start = last
    for i in rows:
        if _minutes(series, i, last) < st.woken_span:
            break
        q = track.points[i]
        if q is not None and point_has_ids(q) and (both := ids & point_ids(q)) - seen:
            seen |= both
            start = min(start, i)
    if not seen or aged[-1] < start:
        return None
    span = _minutes(series, start, last)
    n = len(seen)
    return Evidence(
        "woken",
        f"{n} of {p.count} goroutines seen {st.woken_span:.2g} to {span:.2g} min earlier show no wait age: "
        "each has run since (the age resets when a goroutine runs, and a GC stamps it at least "
        "every 2 minutes), so something still wakes them: a wait for work (judged idle)",
        n,
        st.woken_span,
        {"ids": sorted(seen)[:20], "span_minutes": round(span, 2)},
    )


def accumulating(track: Track, series: Series, st: Settings) -> Evidence | None:
    """Goroutines in an idle wait that pile up: across debug=2 snapshots spanning
    `persistence.accumulating_min_span_minutes` or more, no goroutine of the group ever left
    (each snapshot's ids are all in the next), the count rose in each third of that stretch,
    and the oldest waited all along: its wait age in the latest snapshot spans the stretch,
    less the 3 minutes a GC stamp and the whole minutes may lag (`_GC_STAMP_MINUTES`), so
    none of them was ever woken. Requests
    with no timeout to a peer that never answers, pipes nobody closes, streams nobody ends.

    Growth alone in an idle wait is a load ramp as often; a ramp of sessions ends within
    minutes (or a client leaves, or a session in use wakes), so each condition is one a ramp
    fails. Said only of growth already at the leak level (the caller checks), and only in a
    series whose snapshots show wait ages at all (the process collects)."""
    rows = series.detailed
    if not rows or not series_aged(series):
        return None
    last = rows[-1]
    p = track.points[last]
    if p is None or not point_has_ids(p):
        return None
    after = point_ids(p)
    start = last
    for i in reversed(rows[:-1]):
        q = track.points[i]
        if q is None or not point_has_ids(q):
            break
        ids = point_ids(q)
        if not ids <= after:  # one left
            break
        start, after = i, ids
    span = _minutes(series, start, last)
    if span < st.accumulating_span or p.max_wait < span - _GC_STAMP_MINUTES:
        return None
    counts = track_counts(track)
    stretch = [i for i in rows if start <= i <= last]
    t0 = series.times[start]
    thirds = [next(i for i in stretch if series.times[i] - t0 >= span * 60 * k / 3) for k in (1, 2)]
    marks = [start, *thirds, last]
    if any(counts[b] <= counts[a] for a, b in itertools.pairwise(marks)):
        return None
    summary = (
        f"none of its goroutines left across {len(stretch)} debug=2 snapshots over {span:.2g} min "
        f"({counts[start]} → {counts[last]}), rising in each third of that time, the oldest "
        f"waiting {p.max_wait} min: they pile up and are never woken (a ramp of sessions ends, "
        "or sees one leave, or wakes them)"
    )
    data = {
        "snapshots": len(stretch),
        "span_minutes": round(span, 2),
        "from": counts[start],
        "to": counts[last],
        "max_wait_minutes": p.max_wait,
    }
    return Evidence(
        "accumulating",
        summary,
        round(span, 2),
        st.accumulating_span,
        data,
        weight=st.scoring.weight("accumulating"),
    )


def turnover(track: Track, series: Series, st: Settings) -> Evidence | None:
    """The share of a group's goroutines in one debug=2 snapshot that are gone by the next one:
    requests that come and go. High turnover is churn, whatever the count does."""
    rows = _with_ids(track, series, _LINE)
    if len(rows) < _LINE:
        return None
    i, j = rows
    before_p, after_p = track.points[i], track.points[j]
    assert before_p is not None and after_p is not None
    before, after = point_ids(before_p), point_ids(after_p)
    if len(before) < st.churn_min_count:
        return None
    gone = len(before - after)
    share = gone / len(before)
    if share < st.churn:
        return None
    summary = (
        f"turnover: {gone} of the {len(before)} goroutines seen {_minutes(series, i, j):.2g} min earlier "
        f"are gone and {len(after - before)} of {len(after)} are new: they come and go (churn, load), "
        "which outweighs growth"
    )
    data = {"gone": gone, "before": len(before), "after": len(after), "new": len(after - before)}
    return Evidence(
        "turnover", summary, round(share, 3), st.churn, data, weight=st.scoring.weight("turnover")
    )


def steady(track: Track, series: Series, st: Settings, group: Group) -> Evidence | None:
    """Without ids (debug=0/1): a wait that never ends by itself (detect.yaml `steady`) whose
    count was there from the first snapshot and never fell, over enough snapshots."""
    need = st.steady.get(base_state(group.state))
    if need is None or _with_ids(track, series, 1):
        return None
    snapshots, minutes, tier = need
    counts = track_counts(track)[-st.window :]
    times = series.times[-st.window :]
    if len(counts) < snapshots or counts[0] <= 0:
        return None
    if any(b < a for a, b in itertools.pairwise(counts)):
        return None
    span = (times[-1] - times[0]) / 60
    if span < minutes:
        return None
    grew = f" (from {counts[0]})" if counts[-1] != counts[0] else ""
    summary = (
        f"{counts[-1]} goroutine{'s' if counts[-1] != 1 else ''}{grew} blocked in {group.state} "
        f"in all {len(counts)} snapshots over {span:.2g} min, the count never fell"
    )
    data = {"snapshots": len(counts), "span_minutes": round(span, 2), "tier": tier}
    return Evidence(
        "steady", summary, counts[-1], snapshots, data, weight=st.scoring.weight(f"steady_{tier}")
    )


_UNSEEN_BY_RUNTIME = {
    "IO wait": "goroutines in network I/O are never provable by the runtime",
    "sleep": "a sleeping goroutine will wake: never provable by the runtime",
    "syscall": "goroutines in system calls are never provable by the runtime",
}


def not_proven(track: Track, series: Series, st: Settings, kind: WaitKind, group: Group) -> Evidence | None:
    """A goroutineleak profile was taken and does not list the group: weaker, never vetoed.

    The runtime proves only goroutines blocked on an object nothing reachable can touch; one
    reachable from a global, or woken by a ticker, is not provable."""
    if not series.leak_profiles or any(track.proof) or track.latest is None:
        return None
    if series_leaked(series) and any(p.leaked for p in track.points if p):
        return None
    n = len(series.leak_profiles)
    profiles = (
        "the goroutineleak profile does not list it"
        if n == 1
        else f"none of the {n} goroutineleak profiles lists it"
    )
    state = base_state(group.state)
    unseen = _UNSEEN_BY_RUNTIME.get(state)
    if unseen is not None:
        summary = f"{profiles}; that says nothing here: {unseen}"
        return Evidence("not_proven", summary, 0, None, {"provable": False}, weight=0.0)
    if kind == "idle":
        # Growth in an idle wait already counts for little; the runtime can't prove a service
        # loop (a ticker or timer case can always wake it), so its silence adds nothing.
        why = "a goroutine in a select with a live case (a ticker, a timer) or a queue wait can be woken"
        summary = f"{profiles}: not provable by the runtime because {why}"
        return Evidence("not_proven", summary, 0, None, {"provable": False}, weight=0.0)
    why = (
        "the object it waits on is still reachable (from a global or a running goroutine), "
        "or it is not leaked"
    )
    summary = f"{profiles}: not provable by the runtime because {why}"
    return Evidence(
        "not_proven", summary, 0, None, {"provable": True}, weight=st.scoring.weight("not_proven")
    )


def waits_on_leaked(
    track: Track, series: Series, st: Settings, kind: WaitKind, leaked_creators: Mapping[int, str]
) -> Evidence | None:
    """A goroutine stuck in a blocking wait (a WaitGroup's Wait, a receive) for goroutines it
    started that are leaks themselves: it can only return once they do, so it leaks with them
    (an errgroup whose task blocks forever, and the request goroutine waiting in Wait).

    `leaked_creators`: creator goroutine id -> the site of the leak it started."""
    if kind != "blocking" or not leaked_creators:
        return None
    ids, start, n = persisting(track, series)
    if n < st.persistence_snapshots or _minutes(series, start, series.detailed[-1]) < st.persistence_span:
        return None
    parents = sorted(i for i in ids if i in leaked_creators)
    if not parents:
        return None
    sites = sorted({leaked_creators[i] for i in parents})
    summary = (
        f"{len(parents)} of these goroutines (id {', '.join(map(str, parents[:5]))}) stayed blocked "
        f"across {n} debug=2 snapshots waiting on goroutines they started that leak "
        f"({', '.join(sites[:3])}): they return only when those do"
    )
    return Evidence(
        "persistence",
        summary,
        len(parents),
        None,
        {"ids": parents[:20], "waits_on": sites[:5]},
        weight=st.scoring.weight("waits_on_leaked"),
    )
