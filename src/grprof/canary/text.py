"""The canary result as text: the verdict and score, the critical checks, the metrics, and the
instances that decided it."""

from __future__ import annotations

from grprof.canary.judge import CanaryResult, Instance

DECIDED_SHOWN = 10


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2g}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "") + _num(x)


def _unit(i: Instance) -> str:
    return "/min" if i.measure == "growth" else ""


def _subject(i: Instance) -> str:
    if i.scope == "target":
        return f"target {i.subject}"
    site = str(i.site) if i.site is not None else "(no site)"
    return f"group {i.subject} {site}"


def _significant(i: Instance) -> bool:
    """The interval lies wholly on the side the metric minds."""
    s = i.shift
    if s is None:
        return False
    worse = s.low > 0 if i.direction != "decrease" else s.high < 0
    return worse if i.direction != "either" else (s.low > 0 or s.high < 0)


def describe(i: Instance) -> str:
    s = i.shift
    u = _unit(i)
    if s is None:
        return f"{i.metric} {_subject(i)}: no data"
    p = s.p_greater if i.outcome != "low" else s.p_less
    return (
        f"{i.metric} {_subject(i)}: baseline median {_num(i.baseline_median)}{u}, canary "
        f"{_num(i.canary_median)}{u}; shift {_signed(s.estimate)}{u} [{_num(s.low)}, {_num(s.high)}] "
        f"({s.confidence:.0%}), tolerated {_num(i.tolerance)}{u}, p={p:.2g}"
    )


def render(r: CanaryResult) -> str:
    t = r.config.thresholds
    lines = [
        f"canary: {r.verdict.upper()}  score {r.score:.0f}/100 "
        f"(pass >= {t.pass_:g}, marginal >= {t.marginal:g}; marginal is a {r.config.marginal})",
    ]
    for side, targets in (("baseline", r.baseline), ("canary", r.canary)):
        parts = [f"{x.name} ({x.snapshots} snapshots over {x.span_seconds:.0f}s)" for x in targets]
        lines.append(f"{side}: {', '.join(parts)}")
    if r.critical:
        lines.append("critical (fails at once):")
        lines.extend(f"  {c.describe()}" for c in r.critical[:DECIDED_SHOWN])
        if len(r.critical) > DECIDED_SHOWN:
            lines.append(f"  ... and {len(r.critical) - DECIDED_SHOWN} more (--json lists them all)")
    lines.append("metrics:")
    width = max(len(m.metric.name) for m in r.metrics)
    for m in r.metrics:
        share = "no data" if m.share is None else f"{m.passed}/{m.judged} pass"
        lines.append(f"  {m.metric.name:<{width}}  weight {m.metric.weight:g}  {share}")
    decided = r.decided_by
    if decided:
        lines.append("decided by:")
        lines.extend(f"  FAIL {describe(i)}" for i in decided[:DECIDED_SHOWN])
        if len(decided) > DECIDED_SHOWN:
            lines.append(f"  ... and {len(decided) - DECIDED_SHOWN} more (--json lists them all)")
    elif not r.critical:
        lines.append("decided by: every metric with data passed")
    tolerated = [i for i in r.instances if i.passed and i.shift is not None and _significant(i)]
    if tolerated:
        lines.append("different but within tolerance (pass):")
        lines.extend(f"  {describe(i)}" for i in tolerated[:DECIDED_SHOWN])
    lines.extend(f"warning: {w}" for w in r.warnings)
    return "\n".join(lines) + "\n"
