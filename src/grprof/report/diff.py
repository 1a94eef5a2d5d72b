"""The terminal rendering of `grprof diff` (rich): a summary line and one row per group,
biggest changes first."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from grprof.diff import Diff, GroupDiff, Status
from grprof.report.text import INFERRED, frame_text

_STATUS_STYLE: dict[Status, str] = {
    "new": "bold red",
    "grown": "red",
    "vanished": "green",
    "shrunk": "green",
    "same": "dim",
}
_VERDICT_STYLE = {"leak": "bold red", "suspect": "bold yellow", "inconclusive": "bold blue"}


def _wait(m: int | None) -> str:
    return "?" if m is None else (f"{m} min" if m else "-")


def wait_text(g: GroupDiff) -> Text:
    """`3 min → 9 min ▲` (grown waits flagged), `- → 5 min`; `?` where the format has no waits."""
    if not g.wait_before and not g.wait_after:  # unknown or under a minute on both sides
        return Text("-", style="dim")
    before = "" if g.status == "new" else _wait(g.wait_before)
    after = "" if g.status == "vanished" else _wait(g.wait_after)
    t = Text(" → ".join(x for x in (before, after) if x))
    if g.wait_grown:
        t.stylize("bold yellow")
        t.append(" ▲", style="bold yellow")
    return t


def delta_text(g: GroupDiff) -> Text:
    d = g.delta
    return Text(f"{d:+,}" if d else "0", style="red" if d > 0 else "green" if d < 0 else "dim")


def verdict_text(g: GroupDiff) -> Text:
    v = g.verdict
    if v is None:
        return Text("-", style="dim")
    return Text(f"{v.verdict} {v.confidence:.2f}", style=_VERDICT_STYLE[v.verdict])


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 or word == 'inconclusive' else 's'}"


def summary(diff: Diff) -> Text:
    b, a = diff.before, diff.after
    d = a.total - b.total
    t = Text()
    t.append("before: ", style="bold")
    t.append(f"{b.source} ({b.format}, {_plural(b.total, 'goroutine')})\n")
    t.append("after:  ", style="bold")
    t.append(f"{a.source} ({a.format}, {_plural(a.total, 'goroutine')})\n")
    t.append(f"goroutines {b.total:,} → {a.total:,} ({d:+,}) · groups: ")
    counts = diff.counts()
    t.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none")
    if diff.hidden_groups:
        t.append(f" · {diff.hidden_groups:,} groups filtered out (--focus/--ignore)", style="dim")
    verdicts = [(v, sum(f.verdict == v for f in diff.findings)) for v in ("leak", "suspect", "inconclusive")]
    t.append("\nverdicts on the pair: ")
    if diff.findings:
        for i, (v, n) in enumerate((v, n) for v, n in verdicts if n):
            t.append(", " if i else "")
            t.append(_plural(n, v), style=_VERDICT_STYLE[v])
    else:
        t.append("no finding", style="green")
    return t


def table(diff: Diff, top: int) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for col, kw in (
        ("status", {}),
        ("before", {"justify": "right"}),
        ("after", {"justify": "right"}),
        ("delta", {"justify": "right"}),
        ("state", {}),
        ("wait", {}),
        ("verdict", {}),
        ("site", {"overflow": "fold"}),
    ):
        t.add_column(col, **kw)  # type: ignore[arg-type]
    for g in diff.groups[:top]:
        t.add_row(
            Text(g.status, style=_STATUS_STYLE[g.status]),
            f"{g.before:,}",
            f"{g.after:,}",
            delta_text(g),
            escape(g.state + (INFERRED if g.state_inferred else "")),
            wait_text(g),
            verdict_text(g),
            escape(frame_text(g.site)),
        )
    return t


def render(diff: Diff, console: Console, *, top: int = 20) -> None:
    console.print(summary(diff))
    console.print()
    if not diff.groups:
        console.print("[dim]no groups to show[/]")
        return
    console.print(table(diff, top))
    if len(diff.groups) > top:
        console.print(
            f"[dim]… {len(diff.groups) - top:,} more groups (--top to show more, --json for all)[/]"
        )
