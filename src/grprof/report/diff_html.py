"""The HTML page of `grprof diff --html FILE`: one self-contained page (inline CSS, no script,
nothing fetched), rendered by the `diff.html.j2` template with autoescape on."""

from __future__ import annotations

from markupsafe import Markup

from grprof import __version__
from grprof.detect.model import VERDICTS
from grprof.diff import Diff
from grprof.model import Frame
from grprof.report._templates import content_security_policy, environment

TEMPLATE = "diff.html.j2"
MAX_GROUPS = 2000
"""Rows listed; the rest are counted in a note (the JSON has them all)."""

CSS = """\
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0}h2{font-size:1.15em;margin:1.2em 0 .4em}
.meta,.dim{color:#777}code,pre{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:12px}
pre{margin:.3em 0;white-space:pre-wrap}
table{border-collapse:collapse}th,td{padding:.2em .6em;text-align:left;vertical-align:top}
thead th{border-bottom:1px solid #bbb}tbody tr:nth-child(even){background:#f6f6f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.st-new td:first-child,.st-new{color:#b00020;font-weight:bold}
.st-grown td:first-child,.st-grown{color:#c0392b}
.st-vanished td:first-child,.st-vanished,.st-shrunk td:first-child,.st-shrunk{color:#1e7e34}
.st-same td:first-child{color:#888}.grown{color:#b36b00;font-weight:bold}
.v-leak{color:#b00020;font-weight:bold}.v-suspect{color:#b36b00;font-weight:bold}
.v-inconclusive{color:#1f5fa8;font-weight:bold}.ok{color:#1e7e34}.warn{color:#b36b00}
summary{cursor:pointer}
"""


def _frame(f: Frame | None) -> str:
    if f is None:
        return "-"
    return f"{f.function} {f.file}:{f.line}" if f.file else f.function


def _minutes(m: int | None) -> str:
    return "-" if m is None else (f"{m} min" if m else "0")


def render(diff: Diff, *, max_groups: int = MAX_GROUPS) -> str:
    """The whole page; it loads nothing from anywhere, so it works from file://."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            diff=diff,
            groups=diff.groups[:max_groups],
            more=max(len(diff.groups) - max_groups, 0),
            counts=diff.counts(),
            verdicts=[(v, sum(f.verdict == v for f in diff.findings)) for v in VERDICTS],
            version=__version__,
            css=Markup(CSS),
            csp=Markup(content_security_policy(CSS)),
            frame=_frame,
            minutes=_minutes,
        )
    )
