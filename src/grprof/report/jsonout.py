"""The versioned JSON report (`grprof analyze --json`), documented in docs/report-schema.md.

The document is gathered as plain dicts typed by the `grprof.schema.Report` model (mypy checks
every key) and written through it (`schema.dump_json`: validated, then serialized, in Rust).
"""

from __future__ import annotations

from typing import Final

from grprof import __version__, schema
from grprof.formats.traceback import crashed_goroutine
from grprof.model import Group
from grprof.report.model import Report, SnapshotReport
from grprof.units import iso_utc

SCHEMA: Final = schema.REPORT_SCHEMA
_frame = schema.frame_or_none


def group_json(g: Group, snapshot: int, crashed: int | None = None) -> schema.Group:
    """A group; `crashed` is the id of the goroutine a crash dump says failed, if any."""
    return {
        "snapshot": snapshot,
        "signature": g.signature,
        "count": g.count,
        "state": g.state,
        "states": g.states,
        "state_inferred": g.state_inferred,
        "crashed": crashed is not None and crashed in g.ids,
        "max_wait_minutes": g.max_wait_minutes,
        "wait_minutes": [{"minutes": m, "count": n} for m, n in g.wait_minutes.items()],
        "leaked": g.leaked,
        "locked_to_thread": g.locked_to_thread,
        "partial": g.partial,
        "orphans": len(g.orphans),
        "orphan_ids": list(g.orphans),  # an array('q') in the group
        "ids": list(g.ids),
        "labels": g.labels,
        "site": _frame(g.site),
        "created_by": _frame(g.created_by),
        "frames": schema.frames(g.frames),
        "frames_elided": g.frames_elided,
    }


def snapshot_json(i: int, sr: SnapshotReport) -> schema.SnapshotInfo:
    s = sr.snapshot
    return {
        "index": i,
        "source": s.source,
        "format": s.format,
        "profile": s.profile,
        "time": iso_utc(s.time),
        "total": s.total,
        "truncated": s.truncated,
        "go_version": s.go_version,
        "prologue": s.prologue or None,
        "crashed_goroutine": crashed_goroutine(s),
        "states": sr.states,
        "groups": len(sr.groups),
        "hidden_groups": sr.hidden_groups,
        "hidden_goroutines": sr.hidden_goroutines,
    }


def _groups_json(i: int, sr: SnapshotReport) -> list[schema.Group]:
    crashed = crashed_goroutine(sr.snapshot)
    return [group_json(g, i, crashed) for g in sr.groups]


def report_json(report: Report) -> schema.Report:
    flt = report.filter
    return {
        "schema": SCHEMA,
        "generator": {"name": "grprof", "version": __version__},
        "similarity": report.similarity,
        "filter": {
            "include": flt.include.pattern if flt.include else None,
            "exclude": flt.exclude.pattern if flt.exclude else None,
            "min_count": flt.min_count,
        },
        "snapshots": [snapshot_json(i, sr) for i, sr in enumerate(report.snapshots)],
        "groups": [g for i, sr in enumerate(report.snapshots) for g in _groups_json(i, sr)],
        "detection": detection_json(report),
        "findings": [f.to_json() for f in report.findings],
    }


def detection_json(report: Report) -> schema.Detection | None:
    d = report.detection
    if d is None:
        return None
    s = d.series
    return {
        "snapshots": len(s.snapshots),
        "leak_profiles": len(s.leak_profiles),
        "times": [round(t, 3) for t in s.times],
        "times_assumed": s.times_assumed,
        "span_minutes": round(s.span_minutes, 3),
        "sla": {
            "alpha": round(d.sla.alpha, 4),
            "ratio": d.sla.ratio,
            "p95_seconds": d.sla.p95,
            "latency_seconds": d.sla.latency,
            "source": d.sla.source,
        },
        "ignored": d.ignored,
        "thin": d.thin,
        "stack_bytes": d.stack_bytes,
        "stack_per_goroutine": d.stack.per_goroutine,
        "stack_source": d.stack.source,
        "memory_limit": d.memory_limit,
        "memory_limit_source": d.stack.limit_source,
        "warnings": d.warnings,
    }


def render(report: Report, indent: int | None = 2) -> str:
    """The `grprof.report/v1` document, checked against `schema.Report`."""
    return schema.dump_json(schema.Report, report_json(report), indent) + "\n"
