"""The HTML report: one self-contained page (inline CSS, SVG and script; nothing fetched).

It renders the same `Report` as the text and JSON outputs: a crash banner for a panic's
traceback, the leak findings, a summary and state counts per snapshot, the groups table with
collapsible stacks, and an interactive icicle of the stack tree, with the frames of leak and
suspect groups coloured.

The page is rendered by Jinja2 templates (`grprof/data/templates/report*.j2`) with autoescape
on: every string from a dump (Go names carry `<`, `>`, `&`, quotes and brackets; label values
and panic messages are arbitrary) is escaped by the template engine, never by hand. Only the
stylesheet, the script and the Content-Security-Policy, which are ours, are marked safe.

The page's Content-Security-Policy allows nothing but its one `<style>` and one `<script>`,
by the sha256 hashes of their exact text, computed here at render time.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

import grprof
from grprof.detect.model import Finding
from grprof.formats.traceback import crashed_goroutine
from grprof.model import Group
from grprof.report._templates import content_security_policy, environment
from grprof.report.flame import Flagged, render_svg
from grprof.report.model import Report, SnapshotReport

MAX_GROUPS = 1000
"""Groups listed per snapshot; the rest are counted in a note (the flame graph still has them)."""
TOP_LABEL_VALUES = 3
FLAME_WIDTH = 1200
MAX_PANIC_CHARS = 4000
"""Of a crash's message shown in the banner at the top (the summary shows all of it)."""

PAGE_TEMPLATE = "report.html.j2"


def render(
    report: Report,
    *,
    max_groups: int = MAX_GROUPS,
    flame_width: int = FLAME_WIDTH,
    templates: str | Path | None = None,
) -> str:
    """The whole page as a string; it loads nothing from anywhere, so it works from file://.

    `templates`: a directory of templates that override the package's by name (see
    docs/html-report.md).
    """
    env = environment(None if templates is None else str(templates))
    css = env.get_template("report.css.j2").render()
    script = env.get_template("report.js.j2").render()
    for text, tag in ((css, "</style"), (script, "</script")):
        if tag in text.lower():
            raise ValueError(f"an inline asset contains {tag}>")
    verdicts = _group_verdicts(report.findings)
    snapshots = [
        _snapshot_view(i, sr, max_groups, flame_width, verdicts, env) for i, sr in enumerate(report.snapshots)
    ]
    return (
        env.get_template(PAGE_TEMPLATE).render(
            title="grprof: " + ", ".join(s.snapshot.source for s in report.snapshots),
            version=grprof.__version__,
            report=report,
            filter=report.filter,
            detection=report.detection,
            findings=[_finding_view(f) for f in report.findings],
            snapshots=snapshots,
            crashes=[s for s in snapshots if s.crash is not None],
            css=Markup(css),
            script=Markup(script),
            csp=Markup(html.escape(content_security_policy(css, script), quote=False)),
            top_label_values=TOP_LABEL_VALUES,
        )
        + "\n"
    )


# -- what the templates show -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """A leak finding a group is part of: its verdict, the finding's anchor and title."""

    verdict: str
    finding_id: str
    title: str


def _group_verdicts(findings: Sequence[Finding]) -> dict[str, Verdict]:
    """Track id (`grprof.detect.series.track_id`) -> the finding about that group."""
    out: dict[str, Verdict] = {}
    for f in findings:
        out.setdefault(f.id, Verdict(f.verdict, f.id, f.title))
        for m in f.members:  # the other groups of a unit finding
            out.setdefault(m.id, Verdict(m.verdict, f.id, f.title))
    return out


def _verdict_of(g: Group, verdicts: Mapping[str, Verdict]) -> Verdict | None:
    if not verdicts:
        return None
    from grprof.detect.series import track_id, track_key

    return verdicts.get(track_id(track_key(g)))


@dataclass(frozen=True, slots=True)
class FindingView:
    finding: Finding
    growth: str
    confidence: str


def _finding_view(f: Finding) -> FindingView:
    growth = f"{f.growth_per_minute:+.3g}/min" if f.growth_per_minute else "-"
    return FindingView(f, growth, f"{f.confidence:.0%}")


@dataclass(frozen=True, slots=True)
class GroupView:
    n: int
    group: Group
    verdict: Verdict | None
    crashed: bool
    states: list[tuple[str, int]]
    labels: list[tuple[str, list[str]]]


@dataclass(frozen=True, slots=True)
class Crash:
    """The goroutine a panic or fatal error traceback says failed, and the message."""

    goroutine: int
    message: str
    group: Group | None
    """Its group, when the filter shows it (listed first)."""


@dataclass(frozen=True, slots=True)
class SnapshotView:
    index: int
    report: SnapshotReport
    crash: Crash | None
    groups: list[GroupView]
    more_groups: int
    more_goroutines: int
    states: list[tuple[str, int, str]]
    """(state, goroutines, bar width in percent)."""
    flame: Markup
    aggregated: bool


def _label_values(v: Mapping[str, int]) -> list[str]:
    out = [f"{value} ({c})" for value, c in list(v.items())[:TOP_LABEL_VALUES]]
    if len(v) > TOP_LABEL_VALUES:
        out.append(f"+{len(v) - TOP_LABEL_VALUES} more")
    return out


def _snapshot_view(
    i: int,
    sr: SnapshotReport,
    max_groups: int,
    flame_width: int,
    verdicts: Mapping[str, Verdict],
    env: jinja2.Environment,
) -> SnapshotView:
    s = sr.snapshot
    # A crash's failing goroutine first, then largest first.
    gid = crashed_goroutine(s)
    crashed = None if gid is None else next((g for g in sr.groups if gid in g.ids), None)
    ordered = sr.groups if crashed is None else [crashed, *(g for g in sr.groups if g is not crashed)]
    crash = None
    if gid is not None:
        message = s.prologue.strip("\n")
        if len(message) > MAX_PANIC_CHARS:
            message = message[:MAX_PANIC_CHARS] + " …"
        crash = Crash(gid, message, crashed)
    group_verdicts = {id(g): _verdict_of(g, verdicts) for g in sr.groups}
    shown = ordered[:max_groups]
    rest = ordered[max_groups:]
    views = [
        GroupView(
            n,
            g,
            group_verdicts[id(g)],
            g is crashed,
            list(g.states.items()),
            [(k, _label_values(v)) for k, v in g.labels.items()],
        )
        for n, g in enumerate(shown, 1)
    ]
    flagged = [
        Flagged([f.function for f in g.frames], g.count, v.verdict, v.title)
        for g in sr.groups
        if (v := group_verdicts[id(g)]) is not None
    ]
    total = sum(sr.states.values()) or 1
    states = [(state, n, f"{n / total * 100:.1f}") for state, n in sr.states.items()]
    svg = render_svg(sr.tree, width=flame_width, svg_id=f"flame{i}", flagged=flagged, env=env)
    return SnapshotView(
        index=i,
        report=sr,
        crash=crash,
        groups=views,
        more_groups=len(rest),
        more_goroutines=sum(g.count for g in rest),
        states=states,
        # render_svg's template escaped every value; the SVG is markup.
        flame=Markup(svg),
        aggregated=s.table.aggregated,
    )
