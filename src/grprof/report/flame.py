"""An SVG icicle of a stack tree: root on top, callees below, width proportional to goroutines.

The SVG is static and complete on its own (native `<title>` tooltips, data attributes on every
frame); the HTML report adds a small script that zooms and searches by rewriting the `x`/`width`
of the rects this module lays out. Both sides truncate labels with the same rule
(`label`, and `flameLabel` in html.py), reading the character width from `data-char-width`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from html import escape

from grprof.aggregate import StackNode

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


def _frame_svg(p: Placed, total: int, top: int, svg_id: str) -> str:
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
    if p.merged:
        cls, function, colour = "f other", "", _MERGED_FILL
        tip = f"{n.name}, too narrow to draw one by one\n{n.count} goroutines ({pct:.1f}%)"
    e = escape
    return (
        f'<g class="{cls}" id="{e(svg_id)}-n{p.id}" data-id="{p.id}" data-parent="{p.parent}" '
        f'data-depth="{p.depth}" data-function="{e(function)}" data-count="{n.count}" '
        f'data-self="{n.self_count}" data-loc="{e(loc)}"'
        + (f' data-label="{e(text)}"' if root or p.merged else "")
        + ">"
        f"<title>{e(tip)}</title>"
        f'<rect x="{_fmt(p.x)}" y="{y}" width="{_fmt(p.width)}" height="{ROW_HEIGHT - 1}" '
        f'fill="{colour}"/>'
        f'<text x="{_fmt(p.x + TEXT_PAD)}" y="{y + ROW_HEIGHT - 5}">{e(label(text, p.width))}</text></g>'
    )


def render_svg(
    tree: StackNode,
    *,
    width: int = 1200,
    title: str = "",
    svg_id: str = "flame",
    min_fraction: float = MIN_FRACTION,
    max_nodes: int = MAX_NODES,
) -> str:
    """The icicle of `tree` as one `<svg>` element (also valid as a standalone .svg file).

    `svg_id` prefixes element ids (`{svg_id}-n{N}`, N in document order, the root is 0) so several
    icicles can share one page. Frames narrower than `min_fraction` of the root are not drawn and a
    note at the bottom says how many were left out; under each drawn frame one light grey bar
    stands for its callees too narrow to draw, when together they are wide enough.
    """
    lay = layout(tree, width, min_fraction, max_nodes)
    top = ROW_HEIGHT + 4 if title else 0
    note_y = top + lay.depth * ROW_HEIGHT + 14
    height = note_y + (6 if lay.hidden_nodes or not tree.count else -10)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flame" id="{escape(svg_id)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT_FAMILY}" '
        f'font-size="{FONT_SIZE}" data-char-width="{CHAR_WIDTH}" data-total="{tree.count}" '
        f'data-hidden-nodes="{lay.hidden_nodes}">'
    ]
    if title:
        parts.append(
            f'<text class="title" x="{width / 2:g}" y="{ROW_HEIGHT - 4}" text-anchor="middle" '
            f'font-size="{FONT_SIZE + 3}">{escape(title)}</text>'
        )
    parts.extend(_frame_svg(p, tree.count, top, svg_id) for p in lay.placed)
    note = _note(tree, lay, min_fraction)
    if note:
        parts.append(f'<text class="note" x="0" y="{note_y}" fill="#555">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


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
