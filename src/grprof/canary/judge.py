"""The canary judgement: baseline targets against canary targets, the Kayenta way.

    result = judge(baseline, canary, load_config())   # {target name: [Snapshot, ...]} per side
    result.verdict, result.score, result.to_json()

Each metric of data/canary.yaml is judged per *instance*: per canary target (its total
goroutines, or its growth, against the pooled baseline targets') or per group (the goroutines
in one group, matched across snapshots, targets and formats by the detector's track key as
`grprof diff` matches them, pooled per side). An instance compares the canary's samples with
the baseline's (`grprof.canary.stats.compare`: Mann-Whitney U, Hodges-Lehmann shift and its
confidence interval) and fails when the interval lies wholly on the metric's bad side and the
shift is larger than the metric tolerates (`max(min_shift, allowed_increase * |baseline
median|)`): statistically different *and* meaningfully worse. A difference on the good side
(fewer goroutines, less growth) passes.

The score (0-100) is Kayenta's: per metric, the share of its instances with data that pass;
the metrics' shares weighted by their weights. Critical checks fail the canary whatever the
score: a runtime-confirmed leak in the canary, or a group the detector calls a leak in the
canary that is no leak in the baseline.

Pure computation: no I/O (collecting snapshots is `grprof.canary.collect`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from grprof import __version__, schema
from grprof.canary.config import CanaryConfig, CanaryError, Direction, Measure, Metric, Scope
from grprof.canary.stats import Shift, compare
from grprof.detect.detector import Options, detect
from grprof.detect.model import Finding
from grprof.detect.series import TrackKey, snapshot_points, snapshot_times, track_id
from grprof.frames import Frame
from grprof.model import Snapshot

SCHEMA = schema.CANARY_SCHEMA
Verdict = Literal["pass", "marginal", "fail"]
Outcome = Literal["pass", "high", "low", "nodata"]
SideName = Literal["baseline", "canary"]


@dataclass(slots=True)
class TargetData:
    """One target's snapshots, as samples."""

    name: str
    side: SideName
    snapshots: int
    span_seconds: float
    times: list[float]
    """Seconds since the first counting snapshot."""
    totals: list[float]
    total_growth: list[float]
    groups: dict[TrackKey, list[float]]
    """Goroutines per group per counting snapshot (0 where absent)."""
    sites: dict[TrackKey, Frame | None]
    findings: list[Finding]
    leak_profiles: int


@dataclass(frozen=True, slots=True)
class Instance:
    """One metric judged on one subject (a canary target, or a group)."""

    metric: str
    scope: Scope
    measure: Measure
    subject: str
    """The canary target's name, or the group's track id."""
    site: Frame | None
    outcome: Outcome
    shift: Shift | None
    baseline_median: float | None
    canary_median: float | None
    tolerance: float
    weight: float
    direction: Direction = "increase"

    @property
    def passed(self) -> bool | None:
        if self.outcome == "nodata":
            return None
        return self.outcome == "pass"

    def to_json(self) -> schema.CanaryInstance:
        s = self.shift
        return {
            "metric": self.metric,
            "scope": self.scope,
            "measure": self.measure,
            "direction": self.direction,
            "subject": self.subject,
            "site": schema.frame_or_none(self.site),
            "outcome": self.outcome,
            "passed": self.passed,
            "baseline_median": _r(self.baseline_median),
            "canary_median": _r(self.canary_median),
            "shift": None
            if s is None
            else {
                "estimate": round(s.estimate, 3),
                "low": round(s.low, 3),
                "high": round(s.high, 3),
                "confidence": round(s.confidence, 3),
                "p_greater": _p(s.p_greater),
                "p_less": _p(s.p_less),
                "n_baseline": s.n_baseline,
                "n_canary": s.n_canary,
            },
            "tolerance": round(self.tolerance, 3),
        }


@dataclass(frozen=True, slots=True)
class Critical:
    """A check that fails the canary at once."""

    kind: Literal["runtime_confirmed_leak", "new_leak"]
    target: str
    finding: Finding

    def describe(self) -> str:
        f = self.finding
        why = (
            "the Go runtime proved it leaked"
            if self.kind == "runtime_confirmed_leak"
            else "a leak in the canary, none in the baseline"
        )
        growth = f", {f.growth_per_minute:+.0f}/min" if f.growth_per_minute is not None else ""
        return f"{self.target}: {f.site or f.title} ({f.count} goroutines{growth}): {why}"

    def to_json(self) -> schema.CanaryCritical:
        f = self.finding
        return {
            "kind": self.kind,
            "target": self.target,
            "finding": f.id,
            "verdict": f.verdict,
            "confidence": round(f.confidence, 3),
            "category": f.category,
            "title": f.title,
            "site": schema.frame_or_none(f.site),
            "count": f.count,
            "growth_per_minute": _r(f.growth_per_minute),
            "runtime_confirmed": f.runtime_confirmed,
            "description": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class MetricScore:
    metric: Metric
    judged: int
    passed: int

    @property
    def share(self) -> float | None:
        return self.passed / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class CanaryResult:
    verdict: Verdict
    score: float
    config: CanaryConfig
    metrics: tuple[MetricScore, ...]
    instances: tuple[Instance, ...]
    critical: tuple[Critical, ...]
    baseline: tuple[TargetData, ...]
    canary: tuple[TargetData, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def decided_by(self) -> list[Instance]:
        """The failing instances, heaviest metric and largest excess over tolerance first."""
        bad = [i for i in self.instances if i.passed is False]
        return sorted(bad, key=lambda i: (-i.weight, -_excess(i)))

    def passes(self) -> bool:
        """What the verdict means for a gate: marginal counts as the settings' `marginal` says."""
        return self.verdict == "pass" or (self.verdict == "marginal" and self.config.marginal == "pass")

    def to_json(self) -> schema.CanaryReport:
        """The `grprof.canary/v1` document (`grprof.schema.CanaryReport`)."""
        t = self.config.thresholds
        return {
            "schema": schema.CANARY_SCHEMA,
            "generator": {"name": "grprof", "version": __version__},
            "verdict": self.verdict,
            "passed": self.passes(),
            "score": round(self.score, 1),
            "thresholds": {"pass": t.pass_, "marginal": t.marginal, "marginal_is": self.config.marginal},
            "critical": [c.to_json() for c in self.critical],
            "decided_by": [i.to_json() for i in self.decided_by],
            "metrics": [
                {
                    "name": m.metric.name,
                    "scope": m.metric.scope,
                    "measure": m.metric.measure,
                    "direction": m.metric.direction,
                    "weight": m.metric.weight,
                    "judged": m.judged,
                    "passed": m.passed,
                    "share": _r(m.share),
                }
                for m in self.metrics
            ],
            "baseline": [_target_json(t) for t in self.baseline],
            "canary": [_target_json(t) for t in self.canary],
            "instances": [i.to_json() for i in self.instances],
            "confidence": self.config.confidence,
            "warnings": list(self.warnings),
        }


def _target_json(t: TargetData) -> schema.CanaryTarget:
    return {
        "name": t.name,
        "snapshots": t.snapshots,
        "span_seconds": round(t.span_seconds, 1),
        "leak_profiles": t.leak_profiles,
        "goroutines_median": _r(statistics.median(t.totals)) if t.totals else None,
        "leaks": [f.id for f in t.findings if f.verdict == "leak"],
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _p(x: float) -> float:
    return float(f"{x:.3g}")


def _excess(i: Instance) -> float:
    if i.shift is None:
        return 0.0
    return abs(i.shift.estimate) / max(i.tolerance, 1e-9)


# -- samples -------------------------------------------------------------------------------


def target_data(
    name: str, side: SideName, snaps: Sequence[Snapshot], interval: float | None = None
) -> TargetData:
    """A target's samples: totals and per-group counts per snapshot, growth per minute between
    consecutive snapshots, and the detector's findings on the series."""
    counting = [s for s in snaps if s.profile == "goroutine"]
    if not counting:
        raise CanaryError(f"{side} target {name}: no goroutine snapshot")
    times, _ = snapshot_times(counting, interval)
    points = [snapshot_points(s) for s in counting]
    keys: dict[TrackKey, Frame | None] = {}
    for pts in points:
        for key, p in pts.items():
            if key not in keys:
                keys[key] = p.group.site
    groups = {k: [float(pts[k].count) if k in pts else 0.0 for pts in points] for k in keys}
    totals = [float(s.total) for s in counting]
    findings = detect(snaps, Options(interval=interval, inconclusive=False)).findings
    return TargetData(
        name=name,
        side=side,
        snapshots=len(counting),
        span_seconds=times[-1] - times[0] if times else 0.0,
        times=times,
        totals=totals,
        total_growth=_growth(totals, times),
        groups=groups,
        sites=keys,
        findings=findings,
        leak_profiles=sum(1 for s in snaps if s.profile == "goroutineleak"),
    )


def _growth(counts: Sequence[float], times: Sequence[float]) -> list[float]:
    """Goroutines per minute between consecutive snapshots."""
    out = []
    for i in range(1, len(counts)):
        dt = times[i] - times[i - 1]
        if dt > 0:
            out.append((counts[i] - counts[i - 1]) * 60.0 / dt)
    return out


# -- the judgement ---------------------------------------------------------------------------


def judge(
    baseline: Mapping[str, Sequence[Snapshot]],
    canary: Mapping[str, Sequence[Snapshot]],
    config: CanaryConfig,
    *,
    interval: float | None = None,
) -> CanaryResult:
    """Judge the canary targets' snapshots against the baseline targets'. `interval`: seconds
    between text snapshots without times (as `grprof analyze --interval`)."""
    if not baseline:
        raise CanaryError("no baseline target")
    if not canary:
        raise CanaryError("no canary target")
    base = tuple(target_data(n, "baseline", s, interval) for n, s in baseline.items())
    cana = tuple(target_data(n, "canary", s, interval) for n, s in canary.items())
    return judge_data(base, cana, config)


def judge_data(base: Sequence[TargetData], cana: Sequence[TargetData], config: CanaryConfig) -> CanaryResult:
    instances: list[Instance] = []
    for m in config.metrics:
        if m.scope == "target":
            pooled = [x for t in base for x in _target_samples(t, m)]
            for t in cana:
                instances.append(_judge(m, t.name, None, pooled, _target_samples(t, m), config))
        else:
            for key, site in _groups(base, cana, config.min_group):
                b = [x for t in base for x in _group_samples(t, key, m)]
                c = [x for t in cana for x in _group_samples(t, key, m)]
                instances.append(_judge(m, track_id(key), site, b, c, config))
    scores = tuple(
        MetricScore(
            m,
            sum(1 for i in instances if i.metric == m.name and i.passed is not None),
            sum(1 for i in instances if i.metric == m.name and i.passed),
        )
        for m in config.metrics
    )
    weighted = [(s.metric.weight, s.share) for s in scores if s.share is not None]
    if not weighted:
        have = min(t.snapshots for t in (*base, *cana))
        raise CanaryError(
            f"not enough samples to judge: a target has {have} snapshots, every metric needs "
            f"{config.min_samples} per side (a longer --duration or a shorter --interval)"
        )
    score = 100.0 * sum(w * s for w, s in weighted) / sum(w for w, _ in weighted)
    critical = _critical(base, cana, config)
    th = config.thresholds
    verdict: Verdict
    if critical or score < th.marginal:
        verdict = "fail"
    elif score < th.pass_:
        verdict = "marginal"
    else:
        verdict = "pass"
    warnings = [
        f"{m.metric.name}: no instance had {config.min_samples} samples per side"
        for m in scores
        if m.judged == 0
    ]
    return CanaryResult(
        verdict,
        score,
        config,
        scores,
        tuple(instances),
        tuple(critical),
        tuple(base),
        tuple(cana),
        tuple(warnings),
    )


def _target_samples(t: TargetData, m: Metric) -> list[float]:
    return t.totals if m.measure == "count" else t.total_growth


def _group_samples(t: TargetData, key: TrackKey, m: Metric) -> list[float]:
    counts = t.groups.get(key) or [0.0] * len(t.totals)
    if m.measure == "count":
        return counts
    return _growth(counts, t.times)


def _groups(
    base: Sequence[TargetData], cana: Sequence[TargetData], min_group: int
) -> list[tuple[TrackKey, Frame | None]]:
    """Every group with at least `min_group` goroutines in some snapshot of either side,
    largest first."""
    peak: dict[TrackKey, float] = {}
    site: dict[TrackKey, Frame | None] = {}
    for t in (*cana, *base):
        for key, counts in t.groups.items():
            peak[key] = max(peak.get(key, 0.0), max(counts, default=0.0))
            site.setdefault(key, t.sites.get(key))
    keys = sorted((k for k, p in peak.items() if p >= min_group and p > 0), key=lambda k: -peak[k])
    return [(k, site[k]) for k in keys]


def _judge(
    m: Metric,
    subject: str,
    site: Frame | None,
    baseline: Sequence[float],
    canary: Sequence[float],
    config: CanaryConfig,
) -> Instance:
    if len(baseline) < config.min_samples or len(canary) < config.min_samples:
        bm = statistics.median(baseline) if baseline else None
        cm = statistics.median(canary) if canary else None
        return Instance(
            m.name, m.scope, m.measure, subject, site, "nodata", None, bm, cm, 0.0, m.weight, m.direction
        )
    shift = compare(canary, baseline, config.confidence)
    bm, cm = statistics.median(baseline), statistics.median(canary)
    tolerance = max(m.min_shift, m.allowed_increase * abs(bm))
    outcome: Outcome = "pass"
    if shift.low > 0 and shift.estimate > tolerance and m.direction in ("increase", "either"):
        outcome = "high"
    elif shift.high < 0 and -shift.estimate > tolerance and m.direction in ("decrease", "either"):
        outcome = "low"
    return Instance(
        m.name, m.scope, m.measure, subject, site, outcome, shift, bm, cm, tolerance, m.weight, m.direction
    )


def _critical(base: Sequence[TargetData], cana: Sequence[TargetData], config: CanaryConfig) -> list[Critical]:
    baseline_leaks = {f.id for t in base for f in t.findings if f.verdict == "leak"}
    out: list[Critical] = []
    for t in cana:
        for f in t.findings:
            if f.verdict != "leak":
                continue
            if config.critical.runtime_confirmed_leak and f.runtime_confirmed:
                out.append(Critical("runtime_confirmed_leak", t.name, f))
            elif config.critical.new_leak and f.id not in baseline_leaks:
                out.append(Critical("new_leak", t.name, f))
    return out
