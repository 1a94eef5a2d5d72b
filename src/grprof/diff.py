"""`grprof diff BEFORE AFTER`: what changed between two snapshots, group by group.

Groups are matched across the two snapshots (and across formats: a debug=0 profile against a
debug=2 dump) by the detector's *track key* (`grprof.detect.series.track_key`): the call sites
outside the Go runtime, innermost first. Several groups of one snapshot with one key are merged,
as the detector merges them (`snapshot_points`). Each row carries the verdict the detector gives
the pair, run on the two snapshots as a series exactly as `grprof analyze BEFORE AFTER` runs it.

Pure computation: no printing (text in `grprof.report.diff`, HTML in `grprof.report.diff_html`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from grprof import __version__, schema
from grprof.detect.model import VERDICTS, Verdict
from grprof.detect.series import Point, TrackKey, snapshot_points, track_id
from grprof.model import Frame, Group, Snapshot, site_of
from grprof.units import iso_utc

if TYPE_CHECKING:
    from grprof.detect.detector import Detection
    from grprof.detect.model import Finding

SCHEMA: Final = schema.DIFF_SCHEMA

Status = Literal["new", "vanished", "grown", "shrunk", "same"]
STATUSES: tuple[Status, ...] = ("new", "grown", "vanished", "shrunk", "same")
"""In the order rows with equal changes are listed."""


@dataclass(frozen=True, slots=True)
class Focus:
    """`--focus REGEX` keeps groups where a frame's function (or the created-by function)
    matches; `--ignore REGEX` drops them. The same test as `grprof analyze`'s group filter
    (`grprof.report.model.GroupFilter`), applied to every group of a row."""

    focus: re.Pattern[str] | None = None
    ignore: re.Pattern[str] | None = None

    @property
    def active(self) -> bool:
        return self.focus is not None or self.ignore is not None

    def keep_names(self, names: Iterable[str]) -> bool:
        names = list(names)
        if self.focus is not None and not any(self.focus.search(n) for n in names):
            return False
        return not (self.ignore is not None and any(self.ignore.search(n) for n in names))

    def keep_groups(self, groups: Iterable[Group]) -> bool:
        return self.keep_names(n for g in groups for n in _names(g.frames, g.created_by))

    def keep_finding(self, f: Finding) -> bool:
        """A finding is a group, or a unit of groups: dropped when `--ignore` matches its own
        group, kept by `--focus` when its group or one of its unit's member groups matches."""
        own = _names(f.frames, f.created_by)
        if self.ignore is not None and any(self.ignore.search(n) for n in own):
            return False
        if self.focus is None:
            return True
        names = [own, *(_names(m.frames, m.created_by) for m in f.members)]
        return any(self.focus.search(n) for ns in names for n in ns)

    def findings(self, findings: Sequence[Finding]) -> list[Finding]:
        return [f for f in findings if self.keep_finding(f)] if self.active else list(findings)


def _names(frames: Iterable[Frame], created_by: Frame | None) -> list[str]:
    return [f.function for f in frames] + ([created_by.function] if created_by is not None else [])


@dataclass(frozen=True, slots=True)
class Side:
    """One of the two snapshots."""

    source: str
    format: str
    profile: str
    total: int
    groups: int
    go_version: str | None
    time: str | None
    """ISO 8601, when the snapshot carries its time (debug=0 profiles)."""

    @classmethod
    def of(cls, s: Snapshot) -> Side:
        return cls(
            source=s.source,
            format=s.format,
            profile=s.profile,
            total=s.total,
            groups=len(snapshot_points(s)),
            go_version=s.go_version,
            time=iso_utc(s.time),
        )


@dataclass(frozen=True, slots=True)
class Verdicted:
    """What the detector said about a row's group."""

    verdict: Verdict
    confidence: float
    finding: str
    """The finding's id (a unit's lead id when the group is one of its members)."""
    category: str
    title: str


@dataclass(frozen=True, slots=True)
class GroupDiff:
    """One group (track) in the two snapshots."""

    id: str
    """The track id: the digest of the track key, the same id a finding on this group has."""
    status: Status
    before: int
    after: int
    state: str
    """The most common state of the group's representative (the after side's when present)."""
    state_inferred: bool
    site: Frame | None
    created_by: Frame | None
    frames: tuple[Frame, ...]
    wait_before: int | None
    """Longest wait in minutes in BEFORE; None when absent there or the format has no wait times."""
    wait_after: int | None
    leaked_before: int
    leaked_after: int
    verdict: Verdicted | None = None

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def wait_grown(self) -> bool:
        """The longest wait grew between the snapshots (both known)."""
        b, a = self.wait_before, self.wait_after
        return b is not None and a is not None and a > b

    def to_json(self) -> schema.GroupDiff:
        v = self.verdict
        return {
            "id": self.id,
            "status": self.status,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "state": self.state,
            "state_inferred": self.state_inferred,
            "site": schema.frame_or_none(self.site),
            "created_by": schema.frame_or_none(self.created_by),
            "wait_minutes": {"before": self.wait_before, "after": self.wait_after, "grown": self.wait_grown},
            "leaked": {"before": self.leaked_before, "after": self.leaked_after},
            "verdict": v.verdict if v else None,
            "confidence": round(v.confidence, 3) if v else None,
            "finding": v.finding if v else None,
            "category": v.category if v else None,
            "title": v.title if v else None,
            "frames": schema.frames(self.frames),
        }


@dataclass(frozen=True, slots=True)
class Diff:
    before: Side
    after: Side
    groups: tuple[GroupDiff, ...]
    """Biggest changes first (`sort_key`)."""
    findings: tuple[Finding, ...]
    """The detector's findings on the pair (after `--focus`/`--ignore`): what `--fail-on` reads."""
    hidden_groups: int = 0
    """Rows `--focus`/`--ignore` left out."""
    focus: str | None = None
    ignore: str | None = None
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[Status, int]:
        out: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        for g in self.groups:
            out[g.status] += 1
        return out

    def to_json(self) -> schema.DiffReport:
        """The `grprof.diff/v1` document (docs/diff.md), as `grprof.schema.DiffReport` types it."""
        return {
            "schema": SCHEMA,
            "generator": {"name": "grprof", "version": __version__},
            "before": _side_json(self.before),
            "after": _side_json(self.after),
            "filter": {"focus": self.focus, "ignore": self.ignore, "hidden_groups": self.hidden_groups},
            "summary": {
                "goroutines": {
                    "before": self.before.total,
                    "after": self.after.total,
                    "delta": self.after.total - self.before.total,
                },
                "groups": len(self.groups),
                "status": {str(k): n for k, n in self.counts().items()},
                "verdicts": {v: sum(f.verdict == v for f in self.findings) for v in VERDICTS},
            },
            "groups": [g.to_json() for g in self.groups],
            "findings": [f.to_json() for f in self.findings],
            "warnings": list(self.warnings),
        }

    def render_json(self, indent: int | None = 2) -> str:
        """`grprof diff --json`: the document checked against `schema.DiffReport`, as text."""
        return schema.dump_json(schema.DiffReport, self.to_json(), indent) + "\n"


def _side_json(s: Side) -> schema.DiffSide:
    return {
        "source": s.source,
        "format": s.format,
        "profile": s.profile,
        "total": s.total,
        "groups": s.groups,
        "go_version": s.go_version,
        "time": s.time,
    }


def status_of(before: int, after: int) -> Status:
    if before == 0:
        return "new"
    if after == 0:
        return "vanished"
    if after > before:
        return "grown"
    return "shrunk" if after < before else "same"


def sort_key(g: GroupDiff) -> tuple[int, int, int, str]:
    """Biggest change first; then new, grown, vanished, shrunk, same; then the larger group."""
    return _order(g.before, g.after, g.status, g.id)


def _order(before: int, after: int, status: Status, key: str) -> tuple[int, int, int, str]:
    return (-abs(after - before), STATUSES.index(status), -max(before, after), key)


def count_changes(before: Mapping[str, int], after: Mapping[str, int]) -> list[tuple[str, Status, int, int]]:
    """(key, status, before, after) of every key of either side, in `sort_key`'s order: the rows
    of `compute` for counts already matched by track id (the store's groups, the UI's diff page),
    so a stored diff and `grprof diff` name and order the same changes the same way."""
    keys = list(after) + [k for k in before if k not in after]
    rows = [
        (k, status_of(before.get(k, 0), after.get(k, 0)), before.get(k, 0), after.get(k, 0)) for k in keys
    ]
    rows.sort(key=lambda r: _order(r[2], r[3], r[1], r[0]))
    return rows


def _representative(points: Sequence[Point]) -> Group:
    """The after side's group, unless only the before side's has ids or a creator (debug=2)."""
    groups = [p.group for p in points]
    for g in groups:
        if g.created_by is not None or g.ids:
            return g
    return groups[0]


def _wait(s: Snapshot, p: Point | None) -> int | None:
    # Only per-goroutine dumps stamp wait times; the profiles' 0 means "not known".
    return p.max_wait if p is not None and s.format == "debug=2" else None


def verdicts(findings: Iterable[Finding]) -> dict[str, Verdicted]:
    """Track id -> the verdict on it: each finding's own group, and a unit's member groups
    (with the member's verdict and the unit's finding id)."""
    out: dict[str, Verdicted] = {}
    for f in findings:
        out[f.id] = Verdicted(f.verdict, f.confidence, f.id, f.category, f.title)
        for m in f.members:
            out.setdefault(m.id, Verdicted(m.verdict, f.confidence, f.id, m.category, f.title))
    return out


def compute(
    before: Snapshot,
    after: Snapshot,
    detection: Detection | None = None,
    focus: Focus | None = None,
    warnings: Sequence[str] = (),
) -> Diff:
    """The group-by-group difference of two snapshots, with the detection's verdicts attached."""
    focus = focus or Focus()
    pb, pa = snapshot_points(before), snapshot_points(after)
    findings = focus.findings(detection.findings if detection else [])
    judged = verdicts(findings)
    keys: list[TrackKey] = list(pa)
    keys.extend(k for k in pb if k not in pa)
    rows: list[GroupDiff] = []
    hidden = 0
    for key in keys:
        b, a = pb.get(key), pa.get(key)
        points = [p for p in (a, b) if p is not None]
        if focus.active and not focus.keep_groups(g for p in points for g in p.groups):
            hidden += 1
            continue
        rep = _representative(points)
        tid = track_id(key)
        nb, na = b.count if b else 0, a.count if a else 0
        rows.append(
            GroupDiff(
                id=tid,
                status=status_of(nb, na),
                before=nb,
                after=na,
                state=rep.state,
                state_inferred=rep.state_inferred,
                site=site_of(rep.frames),
                created_by=rep.created_by,
                frames=rep.frames,
                wait_before=_wait(before, b),
                wait_after=_wait(after, a),
                leaked_before=b.leaked if b else 0,
                leaked_after=a.leaked if a else 0,
                verdict=judged.get(tid),
            )
        )
    rows.sort(key=sort_key)
    return Diff(
        before=Side.of(before),
        after=Side.of(after),
        groups=tuple(rows),
        findings=tuple(findings),
        hidden_groups=hidden,
        focus=focus.focus.pattern if focus.focus else None,
        ignore=focus.ignore.pattern if focus.ignore else None,
        warnings=tuple(warnings),
    )
