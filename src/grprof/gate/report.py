"""The gate's verdict as text (stdout) and as JSON (`grprof.gate/v1`)."""

from __future__ import annotations

from grprof import __version__, schema
from grprof.gate.model import GateResult


def text(result: GateResult) -> str:
    new, old = result.new, [x for x in result.leaks if x.accepted]
    lines: list[str] = []
    failed = result.failed_tests
    if failed:
        lines.append("FAIL: go test failed " + ", ".join(t.name for t in failed) + " (not a leak)")
    if new:
        n = sum(x.count for x in new)
        lines.append(f"FAIL: {len(new)} new leak signature{'s' if len(new) != 1 else ''} ({n} goroutines)")
    elif not failed:
        lines.append("PASS: no new leak" + (f" ({len(old)} accepted by the baseline)" if old else ""))
    for x in new:
        who = f"{x.test}: " if x.test else ""
        at = f" at {x.site.function} {x.site.file}:{x.site.line}" if x.site else ""
        lines.append(f"  {who}{x.count} x [{x.state}] {x.rule_id}: {x.title}{at}")
        lines.append(f"    signature {x.signature.id}: {x.signature.text}")
    for x in old:
        who = f"{x.test}: " if x.test else ""
        lines.append(f"  accepted {who}{x.signature.id}: {x.signature.text}")
    if result.ignored:
        lines.append("ignored: " + ", ".join(f"{k} ({v})" for k, v in sorted(result.ignored.items())))
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines) + "\n"


def to_json(result: GateResult) -> schema.GateReport:
    return {
        "schema": schema.GATE_SCHEMA,
        "generator": {"name": "grprof", "version": __version__},
        "mode": result.mode,
        "inputs": list(result.inputs),
        "baseline": result.baseline,
        "passed": result.passed,
        "new": len(result.new),
        "accepted": len(result.leaks) - len(result.new),
        "leaks": [x.to_json() for x in result.leaks],
        "tests": [
            {
                "name": t.name,
                "package": t.package,
                "outcome": t.outcome,
                "seconds": t.seconds,
                "failed_otherwise": t.failed_otherwise,
                "leaked": any(x.test == t.name and not x.accepted for x in result.leaks),
            }
            for t in result.tests
        ],
        "ignored": dict(result.ignored),
        "notes": list(result.notes),
    }
