"""Signals combined into one verdict per group, with its cause and fix.

    detection = detect(snapshots, Options(interval=30.0))
    for f in detection.findings: print(f.verdict, f.confidence, f.category, f.site)

What one snapshot can tell: runtime proof (a goroutineleak profile, ` (leaked)` marks) makes
a leak; orphans that have also waited for minutes make a leak; orphans alone, or long waits
of request-started goroutines alone, make a suspect. A count alone says nothing: a pool of
500 idle workers and 500 leaked goroutines look the same once. Growth needs a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grprof.detect.model import Evidence, Explanation, Finding, SourceReport, Verdict
from grprof.detect.rules import RuleSet, load_rules
from grprof.detect.series import Series, Track, build_series
from grprof.detect.signals import (
    Growth,
    Settings,
    age,
    default_settings,
    growth,
    orphans,
    request_scoped,
    runtime_proof,
)
from grprof.detect.sla import SLA, SLAState, evaluate
from grprof.model import Group, Snapshot


@dataclass
class Options:
    interval: float | None = None
    """Seconds between text snapshots (overrides file times)."""
    settings: Settings | None = None
    sla: SLA | None = None
    rules: RuleSet | None = None
    source_dir: Path | None = None
    sla_state: SLAState | None = None
    """An already evaluated SLA (a daemon caches it rather than query Prometheus every run)."""


@dataclass
class Detection:
    findings: list[Finding]
    series: Series
    sla: SLAState
    ignored: dict[str, int] = field(default_factory=dict)
    """Ignore rule id -> groups it silenced."""


def detect(snapshots: Sequence[Snapshot], options: Options | None = None) -> Detection:
    opts = options or Options()
    sla_state = opts.sla_state or evaluate(opts.sla)
    st = (opts.settings or default_settings()).scaled(sla_state.alpha)
    rules = opts.rules or load_rules()
    series = build_series(snapshots, opts.interval)
    findings: list[Finding] = []
    ignored: dict[str, int] = {}
    detailed = [i for i, s in enumerate(series.snapshots) if s.format == "debug=2"]
    for track in series.tracks:
        rep = track.representative(detailed)
        why = rules.ignored(rep)
        if why is not None:
            ignored[why] = ignored.get(why, 0) + 1
            continue
        f = judge(track, rep, series, st, sla_state)
        if f is None:
            continue
        explain(f, rep, rules, opts.source_dir)
        findings.append(f)
    findings.sort(key=lambda f: (f.verdict != "leak", -f.confidence, -f.count, f.id))
    return Detection(findings, series, sla_state, ignored)


def _details(track: Track, series: Series) -> tuple[tuple[Snapshot, Group] | None, Group | None, float]:
    """The track in the latest per-goroutine (debug=2) snapshot, and in the one before it.

    Orphans and wait ages come from the latest debug=2 snapshot of the series only: a group
    that has drained since is not judged on what it was. Returns (latest, earlier group,
    minutes between them).
    """
    rows = [i for i, s in enumerate(series.snapshots) if s.format == "debug=2"]
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


def judge(track: Track, rep: Group, series: Series, st: Settings, sla: SLAState) -> Finding | None:
    proof = runtime_proof(track)
    grow = growth(track, series.times, st) if series.snapshots else Growth(None, None, None)
    detail, earlier, minutes = _details(track, series)
    old = orph = None
    if detail is not None:
        snap, g = detail
        old = age(g, request_scoped(snap, g, st), st)
        orph = orphans(g, st, earlier, minutes)
    verdict: Verdict | None = None
    confidence = 0.0
    if proof:
        verdict, confidence = "leak", 0.99
    elif grow.verdict == "leak":
        tau = grow.evidence.data["trend"] if grow.evidence else 0.6
        verdict, confidence = "leak", 0.75 + 0.15 * min(1.0, max(0.0, (tau - 0.6) / 0.4))
    elif (old and orph) or (grow.verdict == "suspect" and (old or (orph and earlier is not None))):
        # Two signals agree: request goroutines that stay stuck and keep coming.
        verdict, confidence = "leak", 0.8
    elif old or grow.verdict == "suspect":
        verdict, confidence = "suspect", 0.55 if old else 0.5
    elif orph and (orph.value or 0) >= st.orphans:
        verdict, confidence = "suspect", 0.45
    if verdict is None:
        return None
    if verdict == "leak" and not proof:
        confidence += 0.04 * ((old is not None) + (orph is not None) + (grow.verdict is not None))
    evidence = [e for e in (proof, grow.evidence, old, orph) if e is not None]
    if sla.ratio is not None and grow.evidence is not None:
        evidence.append(
            Evidence("sla", f"growth thresholds scaled by the SLA: {sla.summary()}", sla.alpha, None)
        )
    latest = track.latest
    g = latest.group if latest else rep
    return Finding(
        id=track.id,
        verdict=verdict,
        confidence=min(confidence, 0.99),
        category="unknown",
        title="",
        explanation="",
        fix="",
        site=rep.site,
        created_by=rep.created_by,
        state=rep.state,
        count=latest.count if latest else max(track.proof, default=0),
        counts=track.counts,
        growth_per_minute=grow.per_minute,
        max_wait_minutes=max((p.max_wait for p in track.points if p), default=0),
        orphans=latest.orphans if latest else 0,
        runtime_confirmed=proof is not None,
        source_confirmed=False,
        labels={k: dict(list(v.items())[:5]) for k, v in g.labels.items()},
        evidence=evidence,
        frames=rep.frames,
    )


_UNKNOWN = Explanation(
    "unknown",
    "Goroutines accumulate at {site_function}",
    "{count} goroutines are parked at {site} ({state}) and no rule recognises the pattern. "
    "Read the blocking line: what should wake these goroutines, and why doesn't it?",
    "Make sure every goroutine started here has a way to finish: a channel that is closed or "
    "buffered, a context that is cancelled, a resource that is closed.",
)


def explain(f: Finding, rep: Group, rules: RuleSet, source_dir: Path | None) -> None:
    """Fill in the cause and fix from the rules, and check the source when given."""
    ex = rules.classify(rep) or _fill(_UNKNOWN, rep)
    f.category, f.title, f.explanation, f.fix, f.rule = ex.category, ex.title, ex.explanation, ex.fix, ex.rule
    if ex.max_verdict == "suspect" and f.verdict == "leak" and not f.runtime_confirmed:
        f.verdict, f.confidence = "suspect", min(f.confidence, 0.6)
        f.evidence = [
            *f.evidence,
            Evidence("rule", f"rule {ex.rule} reports this pattern as a suspect at most", None, None),
        ]
    if source_dir is None:
        return
    from grprof.detect.source import confirm

    report: SourceReport | None = confirm(source_dir, rep)
    if report is None:
        return
    f.source = report
    f.source_confirmed = report.confirmed
    if report.confirmed:
        f.evidence = [
            *f.evidence,
            Evidence("source", f"the source shows the pattern {report.pattern}", None, None),
        ]
        if f.verdict == "leak" and not f.runtime_confirmed:
            f.confidence = min(0.97, f.confidence + 0.05)


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
