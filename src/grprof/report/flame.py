"""An SVG icicle of a stack tree: root on top, callees below, width proportional to goroutines.

The SVG is static and complete on its own (native `<title>` tooltips, data attributes on every
frame), rendered by the `report_flame.svg.j2` template (autoescaped); the HTML report adds a
small script that zooms and searches by rewriting the `x`/`width` of the rects this module
lays out. Frames of groups a leak finding is about are coloured by its verdict (`Flagged`).
Both sides truncate labels with the same rule (`label` here, `flameLabel` in the report's
script, `data/templates/report.js.j2`), reading the character width from `data-char-width`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grprof.aggregate import StackNode
from grprof.report._templates import environment

if TYPE_CHECKING:
    from jinja2 import Environment

ROW_HEIGHT = 18
FONT_SIZE = 11
CHAR_WIDTH = 6.7
"""Advance of one character of an 11px monospace font; labels are cut to fit."""
TEXT_PAD = 3
MIN_FRACTION = 0.001
"""Frames narrower than this share of the root are not drawn (0.1%: about a pixel at 1200px)."""
MAX_NODES = 5000
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_RUNTIME_FILL = "#c8c8c8"
_ROOT_FILL = "#a9b4c0"
_MERGED_FILL = "#e6e6e6"


@dataclass(frozen=True, slots=True)
class Placed:
    """A frame laid out in the icicle."""

    id: int
    parent: int
    """Id of the parent frame; -1 for the root."""
    depth: int
    x: float
    width: float
    node: StackNode
    merged: int = 0
    """For a bar standing in for frames too narrow to draw: how many sibling frames it merges."""


@dataclass(frozen=True, slots=True)
class Layout:
    placed: list[Placed]
    hidden_nodes: int
    """Frames left out because they were narrower than the threshold or over the node budget."""
    depth: int
    """Rows drawn (the root is row 0)."""
    over_budget: bool
    """Some wide-enough frames were dropped too, to stay within the node budget."""


def _preorder(root: StackNode) -> list[tuple[int, int, StackNode]]:
    """(parent index, depth, node) in pre-order, children largest first; iterative for deep trees."""
    out: list[tuple[int, int, StackNode]] = []
    todo: list[tuple[int, int, StackNode]] = [(-1, 0, root)]
    while todo:
        parent, depth, node = todo.pop()
        me = len(out)
        out.append((parent, depth, node))
        kids = sorted(node.children.values(), key=lambda n: (-n.count, n.name))
        todo.extend((me, depth + 1, c) for c in reversed(kids))
    return out


def layout(
    tree: StackNode, width: float, min_fraction: float = MIN_FRACTION, max_nodes: int = MAX_NODES
) -> Layout:
    """Place every frame wide enough to see; at most `max_nodes` frames, widest first."""
    order = _preorder(tree)
    total = tree.count
    # A child never has more goroutines than its parent, and pre-order lists a parent before its
    # children, so the first `max_nodes` by (count desc, pre-order) include every kept frame's parent.
    keep_min = total * min_fraction
    ranked = sorted(
        (i for i, (_, _, n) in enumerate(order) if i == 0 or n.count >= keep_min),
        key=lambda i: (-order[i][2].count, i),
    )
    kept = set(ranked[:max_nodes])
    new_id: dict[int, int] = {}
    next_x: dict[int, float] = {}
    placed: list[Placed] = []
    # Dropped children of a drawn frame: [goroutines, frames, x of the first]. Siblings are sorted
    # largest first, so the dropped ones are always the right-hand tail.
    tails: dict[int, list[float]] = {}
    for i, (parent, depth, node) in enumerate(order):
        w = node.count / total * width if total else float(width if i == 0 else 0)
        x = 0.0 if parent < 0 else next_x[parent]
        if parent >= 0:
            next_x[parent] = x + w
        next_x[i] = x
        if i in kept:
            new_id[i] = len(placed)
            placed.append(Placed(len(placed), new_id.get(parent, -1), depth, x, w, node))
        elif parent in kept:
            t = tails.setdefault(parent, [0, 0, x])
            t[0] += node.count
            t[1] += 1
    drawn = len(placed)
    placed += _merged_bars(placed, new_id, tails, total, width, max(keep_min, 1))
    depth = max((p.depth for p in placed), default=0) + 1
    return Layout(placed, len(order) - drawn, depth, len(ranked) > max_nodes)


def _merged_bars(
    placed: list[Placed],
    new_id: dict[int, int],
    tails: dict[int, list[float]],
    total: int,
    width: float,
    keep_min: float,
) -> list[Placed]:
    """One grey bar per drawn frame for its callees too narrow to draw, when together they are wide enough.

    Without it a long tail of tiny callees (one goroutine per request closure) leaves the parent
    looking empty, as if its goroutines sat in the parent itself.
    """
    out: list[Placed] = []
    for i, (count, frames, x) in tails.items():
        if count < keep_min:
            continue
        p = placed[new_id[i]]
        k = int(frames)
        name = f"{k} smaller callee" + ("s" if k > 1 else "")
        node = StackNode(name, count=int(count))
        out.append(Placed(len(placed) + len(out), p.id, p.depth + 1, x, count / total * width, node, k))
    return out


def label(name: str, width: float, char_width: float = CHAR_WIDTH) -> str:
    """The text that fits in a frame `width` pixels wide: the name, cut with an ellipsis, or nothing."""
    n = int((width - 2 * TEXT_PAD) // char_width)
    if n < 3:
        return ""
    return name if len(name) <= n else name[: n - 1] + "…"


def fill(node: StackNode, is_root: bool = False) -> str:
    """Colour by package (stable across runs and reports); standard library pale, runtime grey."""
    if is_root:
        return _ROOT_FILL
    if node.frame is None or node.frame.is_runtime:
        return _RUNTIME_FILL
    h = zlib.crc32(node.frame.package.encode())
    if node.frame.is_stdlib:  # pale, so the user's own code stands out
        return f"hsl({h % 360},{20 + (h >> 9) % 15}%,{76 + (h >> 17) % 8}%)"
    return f"hsl({h % 360},{55 + (h >> 9) % 25}%,{68 + (h >> 17) % 12}%)"


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _location(node: StackNode) -> str:
    return f"{node.frame.file}:{node.frame.line}" if node.frame else ""


# -- findings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flagged:
    """A group a leak finding is about, to colour its frames: its path, size and verdict."""

    functions: Sequence[str]
    """The group's frames' functions, innermost first (as `Group.frames`)."""
    count: int
    verdict: str
    """`leak` or `suspect` (other verdicts are not coloured)."""
    finding: str
    """What the tooltip says about it: the finding's title."""


@dataclass(slots=True)
class _Mark:
    leak: int = 0
    suspect: int = 0
    findings: dict[tuple[str, str], int] = field(default_factory=dict)


LEAK_FILL = "#d93a2b"
SUSPECT_FILL = "#f0a020"
VERDICT_FILLS = {"leak": LEAK_FILL, "suspect": SUSPECT_FILL}
MAX_TIP_FINDINGS = 3


def _marks(tree: StackNode, flagged: Sequence[Flagged]) -> dict[int, _Mark]:
    """Goroutines of leak and suspect groups under each frame, keyed by `id(node)`."""
    out: dict[int, _Mark] = {}
    for fl in flagged:
        if fl.verdict not in VERDICT_FILLS:
            continue
        node = tree
        for fn in reversed(fl.functions):
            nxt = node.children.get(fn)
            if nxt is None:  # not in this tree (filtered out): colour what matched so far
                break
            node = nxt
            m = out.setdefault(id(node), _Mark())
            if fl.verdict == "leak":
                m.leak += fl.count
            else:
                m.suspect += fl.count
            key = (fl.verdict, fl.finding)
            m.findings[key] = m.findings.get(key, 0) + fl.count
    return out


def verdict_of(node: StackNode, mark: _Mark | None) -> str:
    """`leak` or `suspect` when every goroutine under the frame is in a flagged group (`leak`
    as soon as one of them leaks), else "": a frame shared with healthy goroutines stays in its
    package colour and its tooltip says how many of its goroutines a finding is about."""
    if mark is None or mark.leak + mark.suspect < node.count or node.count == 0:
        return ""
    return "leak" if mark.leak else "suspect"


def _finding_tip(node: StackNode, mark: _Mark | None) -> str:
    if mark is None:
        return ""
    items = sorted(mark.findings.items(), key=lambda kv: (kv[0][0] != "leak", -kv[1], kv[0][1]))
    lines = []
    for (verdict, title), n in items[:MAX_TIP_FINDINGS]:
        share = "" if n >= node.count else f" ({n} of {node.count} goroutines)"
        lines.append(f"{verdict} finding: {title}{share}")
    if len(items) > MAX_TIP_FINDINGS:
        lines.append(f"+{len(items) - MAX_TIP_FINDINGS} more findings")
    return "\n".join(lines)


# -- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SvgFrame:
    """What the SVG template draws for one frame (strings are escaped by the template)."""

    cls: str
    id: str
    pid: int
    parent: int
    depth: int
    function: str
    count: int
    self_count: int
    loc: str
    label: str | None
    """`data-label`, for the root and merged bars only."""
    tip: str
    x: str
    y: int
    width: str
    fill: str
    text_x: str
    text_y: int
    text: str
    verdict: str
    finding: str


def _frame(p: Placed, total: int, top: int, svg_id: str, mark: _Mark | None) -> SvgFrame:
    n = p.node
    pct = n.count / total * 100 if total else 0.0
    loc = _location(n)
    tip = f"{n.name}\n{n.count} goroutines ({pct:.1f}%), self {n.self_count}" + (f"\n{loc}" if loc else "")
    y = top + p.depth * ROW_HEIGHT
    root = p.id == 0
    cls = "f" + (" rt" if n.frame is not None and n.frame.is_runtime else "") + (" root" if root else "")
    # The root and merged bars say what they are; the script relabels from data-label when zooming.
    text = f"all goroutines: {n.count}" if root else n.name
    function, colour = n.name, fill(n, root)
    verdict = finding = ""
    if p.merged:
        cls, function, colour = "f other", "", _MERGED_FILL
        tip = f"{n.name}, too narrow to draw one by one\n{n.count} goroutines ({pct:.1f}%)"
    elif not root:
        verdict, finding = verdict_of(n, mark), _finding_tip(n, mark)
        if verdict:
            cls += " " + verdict
            colour = VERDICT_FILLS[verdict]
        if finding:
            tip += "\n" + finding
    return SvgFrame(
        cls=cls,
        id=f"{svg_id}-n{p.id}",
        pid=p.id,
        parent=p.parent,
        depth=p.depth,
        function=function,
        count=n.count,
        self_count=n.self_count,
        loc=loc,
        label=text if root or p.merged else None,
        tip=tip,
        x=_fmt(p.x),
        y=y,
        width=_fmt(p.width),
        fill=colour,
        text_x=_fmt(p.x + TEXT_PAD),
        text_y=y + ROW_HEIGHT - 5,
        text=label(text, p.width),
        verdict=verdict,
        finding=finding,
    )


def render_svg(
    tree: StackNode,
    *,
    width: int = 1200,
    title: str = "",
    svg_id: str = "flame",
    min_fraction: float = MIN_FRACTION,
    max_nodes: int = MAX_NODES,
    flagged: Sequence[Flagged] = (),
    env: Environment | None = None,
) -> str:
    """The icicle of `tree` as one `<svg>` element (also valid as a standalone .svg file).

    `svg_id` prefixes element ids (`{svg_id}-n{N}`, N in document order, the root is 0) so several
    icicles can share one page. Frames narrower than `min_fraction` of the root are not drawn and a
    note at the bottom says how many were left out; under each drawn frame one light grey bar
    stands for its callees too narrow to draw, when together they are wide enough.

    `flagged`: the groups leak findings are about; a frame all of whose goroutines are in them
    is drawn in the verdict's colour (class `leak` / `suspect`, `data-verdict`), and every frame
    they pass through names the findings in its tooltip (`data-finding`).

    Rendered with the `report_flame.svg.j2` template of `env` (default: the package's).
    """
    if env is None:
        env = environment()
    lay = layout(tree, width, min_fraction, max_nodes)
    marks = _marks(tree, flagged) if flagged else {}
    top = ROW_HEIGHT + 4 if title else 0
    note_y = top + lay.depth * ROW_HEIGHT + 14
    height = note_y + (6 if lay.hidden_nodes or not tree.count else -10)
    frames = [_frame(p, tree.count, top, svg_id, marks.get(id(p.node))) for p in lay.placed]
    return env.get_template("report_flame.svg.j2").render(
        svg_id=svg_id,
        width=width,
        height=height,
        font_family=FONT_FAMILY,
        font_size=FONT_SIZE,
        char_width=CHAR_WIDTH,
        total=tree.count,
        hidden_nodes=lay.hidden_nodes,
        title=title,
        title_x=f"{width / 2:g}",
        title_y=ROW_HEIGHT - 4,
        frames=frames,
        rect_height=ROW_HEIGHT - 1,
        note=_note(tree, lay, min_fraction),
        note_y=note_y,
    )


def _note(tree: StackNode, lay: Layout, min_fraction: float) -> str:
    if not tree.count:
        return "No goroutines to draw."
    if not lay.hidden_nodes:
        return ""
    drawn = sum(1 for p in lay.placed if not p.merged)
    budget = f", or beyond the first {drawn} frames," if lay.over_budget else ""
    return (
        f"{lay.hidden_nodes} frames narrower than {min_fraction * 100:g}% of all goroutines{budget} "
        'are not drawn (nor searched); light grey "N smaller callees" bars stand for them.'
    )
