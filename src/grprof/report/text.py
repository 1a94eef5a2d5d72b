"""The terminal report: summary, states, the top groups and their stacks (rich)."""

from __future__ import annotations

import os

from rich.console import Console, RenderableType
from rich.console import Group as RGroup
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grprof.detect.model import Finding
from grprof.formats.traceback import crashed_goroutine
from grprof.model import Frame, Group
from grprof.report.model import Report, SnapshotReport

INFERRED = " (inferred)"
"""After a state that grprof inferred from the stack (debug=0, debug=1) rather than read."""


def _short_path(path: str, keep: int = 2) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-keep:]) if len(parts) > keep else path


def frame_text(f: Frame | None, full_path: bool = False) -> str:
    if f is None:
        return "-"
    where = f.file if full_path else _short_path(f.file)
    return f"{f.function} {where}:{f.line}" if f.file else f.function


def _labels_text(g: Group, per_key: int = 2) -> str:
    out = []
    for k, vals in g.labels.items():
        top = list(vals.items())[:per_key]
        more = len(vals) - len(top)
        shown = ", ".join(f"{v} ({n})" for v, n in top)
        out.append(f"{k}={shown}" + (f" +{more}" if more > 0 else ""))
    return "; ".join(out)


def _minutes(m: int) -> str:
    return f"{m} min" if m else "-"


def state_text(g: Group) -> str:
    """The group's state, marked when inferred: `chan receive (inferred)`."""
    return g.state + (INFERRED if g.state_inferred else "")


def crash_first(sr: SnapshotReport) -> tuple[list[Group], Group | None]:
    """The groups in report order, the crashed goroutine's group (if shown) moved first."""
    gid = crashed_goroutine(sr.snapshot)
    crashed = None if gid is None else next((g for g in sr.groups if gid in g.ids), None)
    if crashed is None:
        return sr.groups, None
    return [crashed, *(g for g in sr.groups if g is not crashed)], crashed


def summary(sr: SnapshotReport) -> RenderableType:
    s = sr.snapshot
    kind = f"{s.format} {s.profile} {'profile' if s.format != 'debug=2' else 'dump'}"
    facts = [
        f"[bold]{s.total:,}[/] goroutines in [bold]{len(sr.groups) + sr.hidden_groups:,}[/] groups",
        kind,
    ]
    if s.go_version:
        facts.append(f"Go {escape(s.go_version)}")
    if s.time:
        facts.append(s.time.isoformat(timespec="seconds"))
    lines: list[RenderableType] = []
    gid = crashed_goroutine(s)
    if gid is not None:  # a crash: its message and the goroutine that failed come first
        lines += _crash_lines(sr, gid)
    lines.append(Text.from_markup(" · ".join(facts)))
    if s.truncated:
        lines.append(
            Text.from_markup(
                "[bold yellow]truncated:[/] the dump was cut; the last goroutine is partial and "
                "some goroutines are missing"
            )
        )
    if s.prologue and gid is None:  # SIGQUIT: what the runtime printed first
        lines.append(Text(_message(s.prologue), style="red"))
    states = " · ".join(f"{escape(k)} [bold]{v:,}[/]" for k, v in sr.states.items())
    if s.format != "debug=2":
        states += " [dim](inferred from the stacks: this format carries no states)[/]"
    lines.append(Text.from_markup(f"[dim]states:[/] {states}"))
    if sr.hidden_groups:
        lines.append(
            Text.from_markup(
                f"[dim]filtered out: {sr.hidden_groups:,} groups, {sr.hidden_goroutines:,} goroutines[/]"
            )
        )
    return Panel(RGroup(*lines), title=escape(s.source), title_align="left", expand=False)


def _message(prologue: str, limit: int = 600) -> str:
    return prologue if len(prologue) < limit else prologue[:limit] + " …"


def _crash_lines(sr: SnapshotReport, gid: int) -> list[RenderableType]:
    """A crash's message, then the goroutine that failed: where, and that it is listed first."""
    s = sr.snapshot
    t = s.table  # the crashed goroutine is the dump's first
    st, state = t.stacks[t.stack[0]], t.headers[t.header[0]].state
    where = next((f for f in st.frames if not f.is_runtime), st.frames[0] if st.frames else None)
    shown = any(gid in g.ids for g in sr.groups)
    return [
        Text(_message(s.prologue.strip("\n")), style="bold red"),
        Text.from_markup(
            f"[bold red]crashed:[/] goroutine {gid} {escape('[' + state + ']')}"
            + (f" at {escape(frame_text(where))}" if where else "")
            + (" [dim](its group is listed first)[/]" if shown else " [dim](its group is filtered out)[/]")
        ),
    ]


def crash_banner(report: Report) -> list[RenderableType]:
    """The first line of each crash's message, to print above the findings."""
    out: list[RenderableType] = []
    for sr in report.snapshots:
        gid = crashed_goroutine(sr.snapshot)
        if gid is None:
            continue
        first = sr.snapshot.prologue.strip().split("\n", 1)[0]
        source = f" [dim]in {escape(sr.snapshot.source)}[/]" if len(report.snapshots) > 1 else ""
        head = Text.from_markup(f"[bold red]crashed{source}:[/] ")
        head.append(_message(first, 200), style="bold red")
        head.append(f"  (goroutine {gid}; its stack is listed first below)", style="dim")
        out.append(head)
    return out


def groups_table(sr: SnapshotReport, top: int) -> Table:
    """The top groups, largest first; a crash's failing goroutine's group comes first."""
    t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for col, kw in (
        ("#", {"justify": "right", "style": "dim"}),
        ("count", {"justify": "right"}),
        ("state", {}),
        ("max wait", {"justify": "right"}),
        ("leaked", {"justify": "right"}),
        ("orphans", {"justify": "right"}),
        ("site", {"overflow": "fold"}),
        ("created by", {"overflow": "fold"}),
        ("labels", {"overflow": "fold"}),
    ):
        t.add_column(col, **kw)  # type: ignore[arg-type]
    groups, crashed = crash_first(sr)
    for i, g in enumerate(groups[:top], 1):
        state = state_text(g) + (f" +{len(g.states) - 1}" if len(g.states) > 1 else "")
        if g is crashed:
            state += " (crashed)"
        t.add_row(
            str(i),
            f"{g.count:,}",
            escape(state),
            _minutes(g.max_wait_minutes),
            str(g.leaked) if g.leaked else "-",
            str(len(g.orphans)) if g.orphans else "-",
            escape(frame_text(g.site)),
            escape(frame_text(g.created_by)),
            escape(_labels_text(g)),
        )
    return t


def stack_text(g: Group, index: int, max_frames: int, crashed: bool = False) -> Text:
    t = Text()
    t.append(f"#{index} ", style="dim")
    if crashed:
        t.append("crashed: ", style="bold red")
    t.append(f"{g.count:,} goroutines", style="bold")
    t.append(f" · {state_text(g)}")
    if g.max_wait_minutes:
        t.append(f" · up to {g.max_wait_minutes} min")
    t.append("\n")
    shown = g.frames[:max_frames]
    width = min(max((len(f.function) for f in shown), default=0), 60)
    for f in shown:
        style = "dim" if f.is_runtime else ""
        t.append(f"  {f.function:<{width}}  ", style=style or "cyan")
        t.append(f"{f.file}:{f.line}\n" if f.file else "\n", style="dim")
    hidden = len(g.frames) - len(shown)
    if hidden > 0 or g.frames_elided:
        more = f"{hidden} more frames" if hidden > 0 else ""
        elided = "frames elided by the runtime" if g.frames_elided else ""
        t.append("  … " + "; ".join(x for x in (more, elided) if x) + "\n", style="dim")
    if g.created_by is not None:
        t.append(f"  created by {g.created_by.function}  ", style="green")
        t.append(f"{g.created_by.file}:{g.created_by.line}\n", style="dim")
    return t


_VERDICT_STYLE = {"leak": "bold red", "suspect": "bold yellow", "inconclusive": "bold blue"}


def findings_table(report: Report) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False, title_justify="left")
    for col, kw in (
        ("verdict", {}),
        ("conf", {"justify": "right"}),
        ("category", {}),
        ("owner", {"overflow": "fold"}),
        ("count", {"justify": "right"}),
        ("growth", {"justify": "right"}),
        ("site", {"overflow": "fold"}),
        ("what", {"overflow": "fold"}),
    ):
        t.add_column(col, **kw)  # type: ignore[arg-type]
    for f in report.findings:
        t.add_row(
            Text(f.verdict, style=_VERDICT_STYLE[f.verdict]),
            f"{f.confidence:.2f}",
            escape(f.category),
            escape(f.owner),
            f"{f.count:,}",
            f"{f.growth_per_minute:+.3g}/min" if f.growth_per_minute else "-",
            escape(frame_text(f.site)),
            escape(f.title),
        )
    return t


def _own_caller(f: Finding) -> Frame | None:
    """The service's own frame nearest the wait, when the site is a dependency's (an errgroup's
    `Wait`, a client library's call): where in the service's code to look."""
    if f.site is None or f.site.is_user:
        return None
    return next((fr for fr in f.frames if fr.is_user), None)


def finding_detail(f: Finding, index: int) -> RenderableType:
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"{index}. ", style="dim")
    head.append(f"{f.verdict.upper()} ", style=_VERDICT_STYLE[f.verdict])
    head.append(f"({f.confidence:.0%}) ", style="dim")
    head.append(f.title, style="bold")
    head.append(f"  [{f.category}]", style="cyan")
    parts.append(head)
    where = f"  {f.count:,} goroutines · {f.state} · at {frame_text(f.site, full_path=True)}"
    caller = _own_caller(f)
    if caller is not None:
        where += f" · called from {frame_text(caller)}"
    if f.created_by:
        where += f" · created by {frame_text(f.created_by)}"
    parts.append(Text(where, style="dim"))
    parts.append(Text(f"  owner: {f.owner} ({f.owner_by or 'nothing names one'})", style="dim"))
    if f.stack is not None:
        parts.append(Text(f"  cost: {f.stack.summary()}", style="dim"))
    for m in f.members:
        parts.append(Text(f"  + {m.count:,} · {m.state} · at {frame_text(m.site)}  (same unit)", style="dim"))
    for e in f.evidence:
        parts.append(Text(f"  • {e.summary}"))
    parts.append(Text("  " + f.explanation.replace("\n", "\n  ")))
    if f.source is not None:
        src = f.source
        parts.append(Text(f"  source: {src.file}:{src.line} in {src.function}", style="dim"))
        parts.append(Text("    " + src.snippet.replace("\n", "\n    "), style="dim"))
        if src.go_statement:
            parts.append(Text("    spawned by: " + src.go_statement.strip(), style="dim"))
        if src.suggestion:
            parts.append(Text("  suggestion: " + src.suggestion.replace("\n", "\n    "), style="green"))
    if f.fix:
        parts.append(Text("  fix:", style="green"))
        parts.append(Text("    " + f.fix.rstrip().replace("\n", "\n    "), style="green"))
    return RGroup(*parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_findings(report: Report, console: Console, details: int) -> None:
    d = report.detection
    if d is None:
        return
    s = d.series
    span = f"{len(s.snapshots)} snapshot{'s' if len(s.snapshots) != 1 else ''}"
    if len(s.snapshots) > 1:
        span += f" over {s.span_minutes:.3g} min" + (
            " (times assumed: pass --interval)" if s.times_assumed else ""
        )
    if s.leak_profiles:
        span += f", {len(s.leak_profiles)} goroutineleak profile(s)"
    sla = escape(d.sla.summary())
    thin = (
        Text.from_markup(f"[bold blue]Not enough evidence for a verdict:[/] {escape(d.thin)}")
        if d.thin
        else None
    )
    if not report.findings:
        if thin is not None:
            console.print(thin)
        else:
            console.print(Text.from_markup(f"[bold green]No leak found[/] [dim]({span}; sla: {sla})[/]"))
        return
    leaks = sum(f.verdict == "leak" for f in report.findings)
    suspects = sum(f.verdict == "suspect" for f in report.findings)
    unsure = len(report.findings) - leaks - suspects
    more = f", [bold blue]{unsure} inconclusive[/]" if unsure else ""
    console.print(
        Text.from_markup(
            f"[bold]Findings:[/] [bold red]{_plural(leaks, 'leak')}[/], "
            f"[bold yellow]{_plural(suspects, 'suspect')}[/]{more} [dim]({span}; sla: {sla})[/]"
        )
    )
    if thin is not None and not leaks:
        console.print(thin)
    console.print(findings_table(report))
    for i, f in enumerate(report.findings[:details], 1):
        console.print(finding_detail(f, i))
    if len(report.findings) > details:
        console.print(f"[dim]… {len(report.findings) - details} more findings (--json for all)[/]")
    console.print()


def render(
    report: Report, console: Console, *, top: int = 10, stacks: int = 5, max_frames: int = 8, details: int = 5
) -> None:
    if report.detection is not None:  # findings come first: the crash goes above them
        for line in crash_banner(report):
            console.print(line)
    render_findings(report, console, details)
    for sr in report.snapshots:
        console.print(summary(sr))
        if not sr.groups:
            console.print("[dim]no groups to show[/]")
            continue
        console.print(groups_table(sr, top))
        if len(sr.groups) > top:
            console.print(f"[dim]… {len(sr.groups) - top:,} more groups (--top to show more)[/]")
        groups, crashed = crash_first(sr)
        for i, g in enumerate(groups[:stacks], 1):
            console.print(stack_text(g, i, max_frames, crashed=g is crashed))


def make_console() -> Console:
    # Not a terminal (pipes, CI logs): rich drops colour codes; a fixed width keeps tables unwrapped.
    width = None if os.isatty(1) else 160
    return Console(highlight=False, width=width)
