"""Findings that are one bug: groups that leak together become one finding with members.

A leaked gRPC stream is a handler, a receive buffer reader, a send loop and a keepalive; a
leaked connection is a reader and a writer. Each is its own group (its own stack), so a
detector that judges groups one by one files one bug as five findings. Two findings are one
unit when their counts **move in lockstep** (every step of one is a fixed multiple of the
other's) **and** something ties them beyond the numbers: one group's goroutines created the
other's, both were started by the same goroutines, or they carry the same pprof labels (labels
pass from a goroutine to the ones it starts). Lockstep alone is not enough: independent
leaks driven by the same traffic rise together too. Nor is one shared creator goroutine:
a long-lived loop (a ticker, a scheduler, an accept loop) starts every kind of work it is
given, even through one `go` statement (net/http's accept loop starts every handler of
every route), so two groups it started are two bugs, not one. Shared creators tie two groups
when there are several: each of several goroutines started both (a request that starts a
reader and a writer).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from grprof.detect.model import VERDICTS, Evidence, Finding, Member
from grprof.detect.series import Point, Track, point_ids
from grprof.model import Group

MAX_FINDINGS = 2_000
"""Pairs are compared only among this many findings (the strongest): units are for reading."""
TOLERANCE = 0.15
"""A step may differ from the multiple by this share of itself (at least 1 goroutine)."""

MIN_POINTS = 3
"""Two points make any two lines proportional: lockstep needs a third."""


@dataclass(frozen=True, slots=True)
class Judged:
    """A finding with what it was judged from."""

    finding: Finding
    track: Track
    group: Group
    detail: Point | None = None
    """The track in the latest per-goroutine snapshot (ids and creators), which need not be
    the latest snapshot: a daemon scrapes debug=1 between its debug=2 captures."""


_Shape = tuple[Sequence[int], int, int, int]
"""Counts, their minimum, last rise and span over the minimum: read once per finding, not once
per pair of findings."""


def _shape(counts: Sequence[int]) -> _Shape | None:
    """None for counts that cannot move in lockstep: too few points, or flat (flat groups
    would all move "together")."""
    if len(counts) < MIN_POINTS:
        return None
    base = min(counts)
    span = max(counts) - base
    return None if span == 0 else (counts, base, counts[-1] - base, span)


def _lockstep(sa: _Shape, sb: _Shape) -> bool:
    """Every change of the one's counts is r times the matching change of the other's, for one
    r; both changed (`_shape` is None for counts that did not)."""
    a, base_a, rise_a, span_a = sa
    b, base_b, rise_b, span_b = sb
    if len(a) != len(b):
        return False
    r = (rise_a / rise_b) if rise_b else span_a / span_b
    if r <= 0:
        return False
    for x, y in zip(a, b, strict=True):
        got, want = x - base_a, r * (y - base_b)
        if abs(got - want) > max(1.0, TOLERANCE * max(got, want)):
            return False
    return True


def _ids(j: Judged) -> frozenset[int]:
    return point_ids(j.detail) if j.detail is not None else frozenset()


def _creators(j: Judged) -> set[int]:
    p = j.detail
    return {c for g in p.groups for c in g.creators} if p is not None else set()


def _labels(j: Judged) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, vals in j.group.labels.items() for v in vals)


def tied(a: Judged, b: Judged) -> str | None:
    """What ties two groups beyond their counts, in words, or None."""
    ca, cb = _creators(a), _creators(b)
    if ca & _ids(b) or cb & _ids(a):
        return "one's goroutines started the other's"
    if len(ca) > 1 and ca == cb:
        return "started by the same goroutines"
    la, lb = _labels(a), _labels(b)
    if la and la == lb:
        return "same labels"
    return None


def merge_units(judged: Sequence[Judged]) -> list[Finding]:
    """The findings with each unit folded into its strongest finding (members keep the rest)."""
    order = sorted(judged, key=lambda j: (VERDICTS.index(j.finding.verdict), -j.finding.score))
    head = order[:MAX_FINDINGS]
    parent = list(range(len(head)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    moving = [(i, sh) for i, j in enumerate(head) if (sh := _shape(j.finding.counts)) is not None]
    for (i, si), (k, sk) in itertools.combinations(moving, 2):
        if root(i) == root(k) or not _lockstep(si, sk):
            continue
        if tied(head[i], head[k]) is not None:
            parent[root(k)] = root(i)
    units: dict[int, list[Judged]] = {}
    for i, j in enumerate(head):
        units.setdefault(root(i), []).append(j)
    out = [j.finding for j in order[MAX_FINDINGS:]]
    for js in units.values():
        lead = _leader(js)
        rest = [j.finding for j in js if j is not lead]
        if not rest:
            out.append(lead.finding)
            continue
        members = tuple(
            Member(f.id, f.verdict, f.site, f.state, f.count, f.counts, f.created_by, f.category, f.frames)
            for f in rest
        )
        total = lead.finding.count + sum(m.count for m in members)
        reasons = sorted({r for j in js if j is not lead and (r := tied(lead, j)) is not None})
        note = Evidence(
            "unit",
            f"one unit with {len(members)} other group{'s' if len(members) != 1 else ''} "
            f"({total} goroutines in all): their counts move in lockstep, "
            + (" and ".join(reasons) if reasons else "tied through one another"),
            len(members) + 1,
            None,
        )
        best = min((j.finding for j in js), key=lambda f: (VERDICTS.index(f.verdict), -f.score))
        lf = replace(lead.finding, members=members, evidence=(*lead.finding.evidence, note))
        if VERDICTS.index(best.verdict) < VERDICTS.index(lf.verdict):
            # The unit is as bad as its worst part; say which part and why.
            site = best.site.function if best.site else best.id
            because = "; ".join(e.summary for e in best.evidence if e.weight > 0)
            lf = replace(
                lf,
                verdict=best.verdict,
                confidence=best.confidence,
                score=best.score,
                runtime_confirmed=lf.runtime_confirmed or best.runtime_confirmed,
                evidence=(*lf.evidence, Evidence("unit", f"{best.verdict} by its member {site}: {because}")),
            )
        out.append(lf)
    return out


_LOCK_WAITS = frozenset({"sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock", "semacquire"})
"""States of goroutines waiting for a lock: in a unit, the symptom of a member that holds it."""


def _leader(js: Sequence[Judged]) -> Judged:
    """The group to name the unit by: the service's own code first, then a group that is not
    merely waiting for a lock (the one holding it blocks elsewhere, and its fix is the unit's:
    a send made under the lock, not `defer mu.Unlock()`), then the strongest, the largest,
    and the finding id, so that the same unit gets the same name at every run."""

    def key(j: Judged) -> tuple[int, int, int, float, int, str]:
        site = j.group.site
        own = 0 if site is not None and site.is_user else 1
        waiter = 1 if j.group.state in _LOCK_WAITS else 0
        f = j.finding
        return (own, waiter, VERDICTS.index(f.verdict), -f.score, -f.count, f.id)

    return min(js, key=key)
