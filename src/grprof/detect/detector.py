"""Signals combined into one verdict per group, with its cause and fix.

    detection = detect(snapshots, Options(interval=30.0))
    for f in detection.findings: print(f.verdict, f.confidence, f.category, f.site)

What one snapshot can tell: runtime proof (a goroutineleak profile, ` (leaked)` marks) makes
a leak; orphans that have also waited for minutes make a leak; orphans alone, or long waits
of request-started goroutines alone, make a suspect. A count alone says nothing: a pool of
500 idle workers and 500 leaked goroutines look the same once. Growth needs a series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grprof._gc import gc_paused
from grprof.detect.cost import STACK_MIN, StackBasis, stack_basis, stack_cost
from grprof.detect.model import VERDICTS, Evidence, Explanation, Finding, SourceReport, Verdict, WaitKind
from grprof.detect.rules import RuleSet, load_rules
from grprof.detect.series import (
    Point,
    Series,
    Track,
    build_series,
    series_leaked,
    series_minutes,
    series_warnings,
    track_counts,
)
from grprof.detect.signals import (
    Growth,
    Scoring,
    Settings,
    accumulating,
    age,
    blocked_ids,
    creator_calls,
    default_settings,
    growth,
    not_proven,
    orphans,
    persistence,
    request_scoped,
    runtime_proof,
    steady,
    turnover,
    wait_kind,
    waits_on_leaked,
    woken,
)
from grprof.detect.sla import SLA, SLAState, evaluate
from grprof.detect.units import Judged, merge_units

if TYPE_CHECKING:
    from grprof.detect.owners import Owners
    from grprof.detect.source import SourceWait
from grprof.formats.memstats import RuntimeStats
from grprof.model import Group, Snapshot

_PAIR = 2
"""Two snapshots: a line between them, never a trend; two debug=2 dumps: ids to compare."""


@dataclass
class Options:
    """How to detect: thresholds, rules, SLA, source, owners and the target's memory."""

    interval: float | None = None
    """Seconds between text snapshots (overrides file times)."""
    settings: Settings | None = None
    sla: SLA | None = None
    rules: RuleSet | None = None
    source_dir: Path | None = None
    sla_state: SLAState | None = None
    """An already evaluated SLA (a daemon caches it rather than query Prometheus every run)."""
    memory_limit: int | None = None
    """The target's memory limit in bytes: findings say when their stack growth reaches it."""
    runtime_stats: RuntimeStats | None = None
    """The target's own stack figures, taken about when the latest snapshot was
    (`grprof.formats.memstats`): the cost per goroutine, and GOMEMLIMIT when no limit is set."""
    owners: Owners | None = None
    """Who owns each finding (docs/owners.md); None: every finding's owner is `unknown`."""
    inconclusive: bool = True
    """Report `inconclusive` findings. A daemon doesn't: its window is thin only while it starts."""


@dataclass
class Detection:
    """A detection pass: its findings, the series they were read from, the SLA in force."""

    findings: list[Finding]
    series: Series
    sla: SLAState
    ignored: dict[str, int] = field(default_factory=dict)
    """Ignore rule id -> groups it silenced."""
    thin: str | None = None
    """Why the series is too thin to clear the service, when it is (never an all-clear then)."""
    warnings: list[str] = field(default_factory=list)
    """Why the snapshots may not be one process (`series_warnings`)."""
    stack: StackBasis = field(default_factory=StackBasis)
    """What the findings' stack cost rests on: bytes per goroutine, its source, the limit."""

    @property
    def memory_limit(self) -> int | None:
        return self.stack.memory_limit

    @property
    def stack_bytes(self) -> int:
        """Stack bytes the findings' goroutines hold (cost.py; a lower bound without runtime figures)."""
        return sum(f.stack.bytes if f.stack else f.count * STACK_MIN for f in self.findings)


def detect(snapshots: Sequence[Snapshot], options: Options | None = None) -> Detection:
    # Tracks, points and evidence for every group, next to the snapshots' frames and groups
    # (a million objects for 20,000 distinct stacks): with the collector running, the
    # allocations set off full collections that took a fifth of the pass (`gc_paused`).
    with gc_paused(sum(len(s.groups()) for s in snapshots)):
        return _detect(snapshots, options)


def _detect(snapshots: Sequence[Snapshot], options: Options | None) -> Detection:
    opts = options or Options()
    sla_state = opts.sla_state or evaluate(opts.sla)
    st = (opts.settings or default_settings()).scaled(sla_state.alpha)
    rules = opts.rules or load_rules()
    series = build_series(snapshots, opts.interval)
    ignored: dict[str, int] = {}
    reps: list[tuple[Track, Group, SourceWait | None]] = []
    last = series.snapshots[-1] if series.snapshots else None
    whole = last is not None and not last.truncated
    for track in series.tracks:
        if whole and gone(track):
            continue
        rep = track.representative(series.detailed)
        why = rules.ignored(rep)
        if why is not None:
            ignored[why] = ignored.get(why, 0) + 1
            continue
        reps.append((track, rep, _read_wait(opts.source_dir, rep)))
    kinds, woke = _kinds(rules, reps, series, st)
    blocked = frozenset[int]()
    if len(series.detailed) >= st.persistence_snapshots:
        blocked = blocked_ids(series, st, kinds)
    detail = (lambda t: t.points[series.detailed[-1]]) if series.detailed else (lambda t: None)
    found: dict[str, Weighed] = {}
    for track, rep, _ in reps:
        w = judge(track, rep, series, st, sla_state, blocked, kinds[track.id], woke.get(track.id))
        if w is not None:
            found[track.id] = w
    # Goroutines blocked on leaks they started leak with them: a second look at the blocked
    # ones, once the first pass knows which groups leak.
    by_id = {t.id: (t, rep) for t, rep, _ in reps}
    parents = _leak_creators((by_id[k][1], w, detail(by_id[k][0])) for k, w in found.items())
    if parents and len(series.detailed) >= st.persistence_snapshots:
        for track, rep, _ in reps:
            w = found.get(track.id)
            if w is not None and w.verdict == "leak":
                continue
            extra = waits_on_leaked(track, series, st, kinds[track.id], parents)
            if extra is not None:
                note = woke.get(track.id)
                w = judge(track, rep, series, st, sla_state, blocked, kinds[track.id], note, extra)
                if w is not None:
                    found[track.id] = w
    waits = {t.id: w for t, _, w in reps}
    basis = stack_basis(last.total if last is not None else 0, opts.runtime_stats, opts.memory_limit)
    judged = [
        Judged(
            finding(t, rep, w, rules, opts.source_dir, st.scoring, waits[k], opts.owners, basis, k in woke),
            t,
            rep,
            detail(t),
        )
        for k, w in found.items()
        for t, rep in (by_id[k],)
    ]
    if not opts.inconclusive:
        judged = [j for j in judged if j.finding.verdict != "inconclusive"]
    findings = merge_units(judged)
    findings.sort(key=lambda f: (VERDICTS.index(f.verdict), -f.confidence, -f.count, f.id))
    return Detection(
        findings,
        series,
        sla_state,
        ignored,
        thin_series(series, st),
        series_warnings(series),
        basis,
    )


def gone(track: Track) -> bool:
    """Every goroutine of the group has exited by the latest snapshot (it was seen before).

    Leaked goroutines never exit: whatever the group was, it isn't leaking now (the fix was
    deployed, the process restarted, the load went away), and an old proof or an old rise in
    the window must not keep a finding open. A truncated latest dump may have missed it."""
    return track.latest is None and any(p is not None for p in track.points)


def _leak_creators(judged: Iterable[tuple[Group, Weighed, Point | None]]) -> dict[int, str]:
    """Creator goroutine id -> site function, for the leaks' creators (latest debug=2)."""
    out: dict[int, str] = {}
    for rep, w, detail in judged:
        if w.verdict != "leak" or detail is None:
            continue
        site = rep.site.function if rep.site else "?"
        for g in detail.groups:
            for c in g.creators:
                out.setdefault(c, site)
    return out


def thin_series(series: Series, st: Settings) -> str | None:
    """What a series too short to clear a service is missing, or None when it is long enough.

    Growth needs `min_snapshots` over `min_span_minutes`; ids need two debug=2 snapshots. A
    shorter series can still show proof, orphans or wait ages, but its silence proves nothing."""
    n = len(series.snapshots)
    if n >= st.min_snapshots and series.span_minutes >= st.min_span_minutes:
        return None
    seen = f"{n} snapshot{'s' if n != 1 else ''}"
    if n > 1:
        seen += (
            f" {series.span_minutes:.2g} min apart" if n == _PAIR else f" over {series.span_minutes:.2g} min"
        )
    ids = len(series.detailed)
    have = "" if ids >= _PAIR else " and no two debug=2 snapshots (goroutine ids)"
    proof = "" if series.leak_profiles else ", a goroutineleak profile (Go 1.26+) for proof"
    return (
        f"{seen}{have}: too few to tell a leak from a healthy service (a load ramp grows too). "
        f"To settle it: {st.min_snapshots}+ snapshots over {st.min_span_minutes:g}+ min, "
        f"debug=2 dumps (whether the same goroutines stay or are replaced){proof}"
    )


def _details(track: Track, series: Series) -> tuple[tuple[Snapshot, Group] | None, Group | None, float]:
    """The track in the latest per-goroutine (debug=2) snapshot, and in the one before it.

    Orphans and wait ages come from the latest debug=2 snapshot of the series only: a group
    that has drained since is not judged on what it was. Returns (latest, earlier group,
    minutes between them).
    """
    rows = series.detailed
    if not rows:
        return None, None, 0.0
    last = rows[-1]
    p = track.points[last]
    if p is None:
        return None, None, 0.0
    for i in reversed(rows[:-1]):
        q = track.points[i]
        if q is not None:
            return (series.snapshots[last], p.group), q.group, (series.times[last] - series.times[i]) / 60
    return (series.snapshots[last], p.group), None, 0.0


def _weighted(e: Evidence | None, weight: float) -> Evidence | None:
    # Not `dataclasses.replace` (a Python-level copy, several times the cost): a finding's
    # worth of evidence for each of 20,000 groups.
    return None if e is None else Evidence(e.signal, e.summary, e.value, e.threshold, e.data, weight)


def weigh(
    track: Track,
    rep: Group,
    series: Series,
    st: Settings,
    blocked: frozenset[int] = frozenset(),
    kind: WaitKind | None = None,
    note: Evidence | None = None,
    extra: Evidence | None = None,
) -> tuple[list[Evidence], Growth, WaitKind]:
    """Every piece of evidence about a track, for and against, each with its weight.

    `blocked`: goroutines stuck in a blocking wait across the series (`blocked_ids`); `kind`:
    the wait kind when already known (from the source, or `woken`: `note` then says why)."""
    w = st.scoring.weight
    kind = kind or wait_kind(rep, st)
    proof = runtime_proof(track, series_leaked(series))
    if series.snapshots:
        grow = growth(track, series.times, st, series_minutes(series))
    else:
        grow = Growth(None, None, None)
    detail, earlier, minutes = _details(track, series)
    stuck = persistence(track, series, st, kind, blocked)
    old = orph = None
    if detail is not None:
        snap, g = detail
        # `age` is None below `age_minutes` whatever the request scope: not counted then. Nor
        # with `persistence`, which already counts the same goroutines staying blocked.
        if stuck is None and g.max_wait_minutes >= st.age_minutes:
            old = age(g, request_scoped(snap, g, st), st, creator_calls(snap, g))
        orph = orphans(g, st, earlier, minutes)
    # Goroutines that stay put are stuck whatever else comes and goes at the same site.
    churn = turnover(track, series, st) if stuck is None else None
    flat = steady(track, series, st, rep)
    unproven = not_proven(track, series, st, kind, rep) if proof is None else None
    grow_w = 0.0
    if grow.verdict in ("leak", "suspect"):
        grow_w = w(f"growth_{grow.verdict}{'_idle' if kind == 'idle' else ''}")
    # Growth in an idle wait makes a suspect at most, unless the goroutines pile up unwoken
    # (`note` is the `woken` one: shown woken, they do not).
    piled = None
    if grow.verdict == "leak" and kind == "idle" and stuck is None and note is None:
        piled = accumulating(track, series, st)
    orph_w = 0.0
    if orph is not None and stuck is not None:
        orph = None  # the same goroutines persistence already counts
    if orph is not None:
        if orph.data.get("persistent"):
            which = "orphans_persistent"
        else:
            which = "orphans_many" if (orph.value or 0) >= st.orphans else "orphans_few"
        orph_w = w(f"{which}_idle" if kind == "idle" else which)
    evidence = [
        _weighted(proof, w("runtime_proof")),
        stuck,
        flat,
        _weighted(grow.evidence, grow_w),
        piled,
        _weighted(old, w("age")),
        _weighted(orph, orph_w),
        churn,
        unproven,
        note,
        extra,
    ]
    return [e for e in evidence if e is not None], grow, kind


@dataclass(frozen=True, slots=True)
class Weighed:
    """A track's evidence, weighed: the verdict before the rules and the source have spoken."""

    verdict: Verdict
    score: float
    evidence: tuple[Evidence, ...]
    growth: Growth
    kind: WaitKind


def judge(
    track: Track,
    rep: Group,
    series: Series,
    st: Settings,
    sla: SLAState,
    blocked: frozenset[int] = frozenset(),
    kind: WaitKind | None = None,
    note: Evidence | None = None,
    extra: Evidence | None = None,
) -> Weighed | None:
    evidence, grow, kind = weigh(track, rep, series, st, blocked, kind, note, extra)
    sc = st.scoring
    score = sum(e.weight for e in evidence)
    verdict: Verdict | None = sc.verdict(score)
    if verdict is None and grow.verdict == "inconclusive" and not any(e.weight < 0 for e in evidence):
        verdict = "inconclusive"
    if verdict is None:
        return None
    if sla.ratio is not None and grow.evidence is not None:
        evidence.append(
            Evidence("sla", f"growth thresholds scaled by the SLA: {sla.summary()}", sla.alpha, None)
        )
    return Weighed(verdict, score, tuple(evidence), grow, kind)


def finding(
    track: Track,
    rep: Group,
    w: Weighed,
    rules: RuleSet,
    source_dir: Path | None,
    scoring: Scoring | None = None,
    wait: SourceWait | None = None,
    owners: Owners | None = None,
    basis: StackBasis | None = None,
    woken: bool = False,
) -> Finding:
    """The finding for a weighed track: its cause and fix from the rules, checked against the
    source when given, which may add evidence and change the verdict.

    `wait`: what the source showed at the blocking statement (`_read_wait`, read once per
    track by `detect`); with it the statement decides the category where the stack can't
    (`<-ctx.Done()` and `<-results` park in the same runtime frames). `woken`: the series
    showed the goroutines woken now and then (`signals.woken`), which rules may read."""
    sc = scoring or default_settings().scoring
    ex = rules.classify(rep, wait=wait, woken=woken) or _fill(_UNKNOWN, rep)
    evidence = list(w.evidence)
    verdict, score = w.verdict, w.score
    confirmed = any(e.signal == "runtime_proof" for e in evidence)
    capped = ex.max_verdict == "suspect" and not confirmed
    confidence = sc.confidence(score)
    limit = capped and verdict == "leak"
    if limit:
        verdict = "suspect"
        evidence.append(
            Evidence("rule", f"rule {ex.rule} reports this pattern as a suspect at most", None, None)
        )
    report: SourceReport | None = None
    if source_dir is not None:
        from grprof.detect.source import confirm

        report = confirm(source_dir, rep)
    if report is not None and report.confirmed:
        ev = Evidence("source", f"the source shows the pattern {report.pattern}", sc.weight("source"), None)
        evidence.append(ev)
        score += ev.weight
        confidence = sc.confidence(score)
        limit = capped
        better = sc.verdict(score)
        if better == "leak" and not capped:
            verdict = "leak"
        elif better is not None and verdict != "leak":
            verdict = "suspect"
    if limit:
        confidence = min(confidence, 0.6)
    latest = track.latest
    g = latest.group if latest else rep
    labels = {k: dict(list(v.items())[:5]) for k, v in g.labels.items()}
    count = latest.count if latest else max(track.proof, default=0)
    # An annotation: who owns the code that blocks never changes the verdict or the score.
    owner = owners.resolve(rep.frames, g.labels) if owners is not None else None
    return Finding(
        id=track.id,
        verdict=verdict,
        confidence=confidence,
        category=ex.category,
        title=ex.title,
        explanation=ex.explanation,
        fix=ex.fix,
        rule=ex.rule,
        site=rep.site,
        created_by=rep.created_by,
        state=rep.state,
        count=count,
        counts=track.counts,
        growth_per_minute=w.growth.per_minute,
        max_wait_minutes=max((p.max_wait for p in track.points if p), default=0),
        orphans=latest.orphans if latest else 0,
        runtime_confirmed=confirmed,
        source_confirmed=report is not None and report.confirmed,
        labels=labels,
        evidence=tuple(evidence),
        frames=rep.frames,
        source=report,
        score=score,
        wait_kind=w.kind,
        owner=owner.owner if owner else "unknown",
        owner_by=owner.by if owner else None,
        stack=stack_cost(count, w.growth.per_minute, basis),
    )


_UNKNOWN = Explanation(
    "unknown",
    "Goroutines accumulate at {site_function}",
    "{count} goroutines are parked at {site} ({state}) and no rule recognises the pattern. "
    "Read the blocking line: what should wake these goroutines, and why doesn't it?",
    "Make sure every goroutine started here has a way to finish: a channel that is closed or "
    "buffered, a context that is cancelled, a resource that is closed.",
)


def _kind(rules: RuleSet, track: Track, rep: Group, st: Settings, wait: SourceWait | None) -> WaitKind:
    """The wait kind: the matching rule's when it says (it knows the library), else the
    source's, else the stack's (detect.yaml `wait_kinds`).

    Rules are asked only about groups whose count moved: the kind weighs growth, and a flat
    group of library goroutines has no persistence to weigh (matching every rule against
    every group of a dump with 20,000 distinct stacks would cost seconds)."""
    counts = track_counts(track)
    if counts and min(counts) != max(counts):
        rule = rules.match(rep, wait)
        if rule is not None and rule.wait_kind is not None:
            return rule.wait_kind
    return wait_kind(rep, st, wait.kind if wait else None)


def _kinds(
    rules: RuleSet, reps: Iterable[tuple[Track, Group, SourceWait | None]], series: Series, st: Settings
) -> tuple[dict[str, WaitKind], dict[str, Evidence]]:
    """Each track's wait kind (`_kind`), and the `woken` note of each track whose goroutines
    were shown to be woken: their wait is idle, whatever the stack and the rules say."""
    kinds: dict[str, WaitKind] = {}
    woke: dict[str, Evidence] = {}
    for t, rep, w in reps:
        kind = _kind(rules, t, rep, st, w)
        e = woken(t, series, st)
        if e is not None:
            kind, woke[t.id] = "idle", e
        kinds[t.id] = kind
    return kinds, woke


def _read_wait(source_dir: Path | None, rep: Group) -> SourceWait | None:
    if source_dir is None:
        return None
    from grprof.detect.source import wait_at

    return wait_at(source_dir, rep)


def _fill(ex: Explanation, g: Group) -> Explanation:
    site = g.site
    values = {
        "site": f"{site.function} ({site.file}:{site.line})" if site else "?",
        "site_function": site.function if site else "?",
        "state": g.state,
        "count": g.count,
        "created_by": g.created_by.function if g.created_by else "?",
    }
    return Explanation(
        ex.category,
        ex.title.format(**values),
        ex.explanation.format(**values),
        ex.fix.format(**values),
        ex.rule,
    )
