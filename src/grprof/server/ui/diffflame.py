"""The differential flame graph of the diff page: one icicle of two snapshots, A (before) and B
(after), each frame coloured by how its goroutines changed from A to B.

Laid out by the report's icicle (`grprof.report.flame.layout`), so the report's zoom and search
script (`/ui/flame.js`) drives it unchanged. A frame's width is, summed over the stacks through
it, the larger of each stack's two counts: a stack that grew is as wide as in B, one that shrank
or is gone keeps its width from A, so what vanished stays visible and clickable, and a diff where
nothing shrank is exactly the icicle of B. Its class (and colour) is its change: `new` (not in
A), `gone` (not in B), `grown`, `shrunk` or `same`; its tooltip says A → B.

Only numbers and strings are computed here; `ui_diffflame.svg.j2` writes the SVG (autoescaped),
coloured by class and by `fill` presentation attributes, never `style`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from grprof.aggregate import StackNode
from grprof.model import Frame
from grprof.report import flame
from grprof.store.model import StoredGroup

CHANGES = ("new", "grown", "shrunk", "gone", "same")
"""Every class a frame can have, in the legend's order."""
FILLS = {"new": "#a3123a", "grown": "#e8695a", "shrunk": "#6cbf7f", "gone": "#8fa9cc", "same": "#d4d4d4"}
"""Fallback colours when the SVG is seen without the UI's stylesheet (which sets the same)."""
MERGED_FILL = "#e6e6e6"


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def change(before: int, after: int) -> str:
    """A frame's change from `before` to `after` goroutines (one of `CHANGES`)."""
    if before == 0:
        return "new" if after else "same"
    if after == 0:
        return "gone"
    return "grown" if after > before else "shrunk" if after < before else "same"


@dataclass(frozen=True, slots=True)
class DiffTree:
    root: StackNode
    """Counts are the layout's weights (see the module docstring)."""
    sides: dict[int, tuple[int, int]]
    """`id(node)` → (goroutines in A, goroutines in B) under the node."""


def _paths(groups: Sequence[StoredGroup]) -> dict[tuple[str, ...], tuple[int, list[Frame]]]:
    out: dict[tuple[str, ...], tuple[int, list[Frame]]] = {}
    for g in groups:
        frames = list(reversed(g.frames))  # outermost first
        key = tuple(f.function for f in frames)
        n, _ = out.get(key, (0, frames))
        out[key] = (n + g.count, frames)
    return out


def diff_tree(a: Sequence[StoredGroup], b: Sequence[StoredGroup]) -> DiffTree:
    """The union of the two snapshots' stack trees, weighted as the module docstring says."""
    pa, pb = _paths(a), _paths(b)
    root = StackNode("all")
    sides: dict[int, list[int]] = {id(root): [0, 0]}
    for key in [*pb, *(k for k in pa if k not in pb)]:
        na = pa[key][0] if key in pa else 0
        nb = pb[key][0] if key in pb else 0
        frames = (pb.get(key) or pa[key])[1]
        w = max(na, nb)
        node = root
        root.count += w
        sides[id(root)][0] += na
        sides[id(root)][1] += nb
        for f in frames:
            node = node.child(f)
            node.count += w
            s = sides.setdefault(id(node), [0, 0])
            s[0] += na
            s[1] += nb
        node.self_count += w
    return DiffTree(root, {k: (v[0], v[1]) for k, v in sides.items()})


@dataclass(frozen=True, slots=True)
class DiffFrame(flame.SvgFrame):
    """A frame of the differential icicle: the report's `SvgFrame` (no `verdict` or `finding`:
    a diff has none) with its change from A to B in words."""

    change_text: str = ""


def _delta(before: int, after: int) -> str:
    return f"{before:,} → {after:,} goroutines ({after - before:+,})"


def render_diff_svg(
    a: Sequence[StoredGroup],
    b: Sequence[StoredGroup],
    env: jinja2.Environment,
    *,
    width: int = 1200,
    svg_id: str = "diff0",
) -> str:
    """The differential icicle of A → B as one `<svg class="flame">` element."""
    tree = diff_tree(a, b)
    lay = flame.layout(tree.root, width)
    frames = []
    for p in lay.placed:
        n = p.node
        y = p.depth * flame.ROW_HEIGHT
        root = p.id == 0
        before, after = tree.sides.get(id(n), (0, 0))
        loc = f"{n.frame.file}:{n.frame.line}" if n.frame else ""
        if p.merged:
            cls, kind, function = "f other", "", ""
            text = n.name
            tip = f"{n.name}, too narrow to draw one by one"
            change_text, colour = "", MERGED_FILL
        else:
            kind = change(before, after)
            cls = "f " + kind + (" root" if root else "")
            function = "" if root else n.name
            text = f"all goroutines: {_delta(before, after)}" if root else n.name
            change_text = f"{kind}: {_delta(before, after)}"
            tip = f"{text if root else n.name}\n{change_text}" + (f"\n{loc}" if loc else "")
            colour = FILLS[kind]
        frames.append(
            DiffFrame(
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
                change_text=change_text,
                x=_fmt(p.x),
                y=y,
                width=_fmt(p.width),
                fill=colour,
                text_x=_fmt(p.x + flame.TEXT_PAD),
                text_y=y + flame.ROW_HEIGHT - 5,
                text=flame.label(text, p.width),
                verdict="",
                finding="",
            )
        )
    note_y = lay.depth * flame.ROW_HEIGHT + 14
    note = ""
    if not tree.root.count:
        note = "No goroutines in either snapshot."
    elif lay.hidden_nodes:
        note = f"{lay.hidden_nodes} frames too narrow to draw are not drawn (nor searched)."
    return env.get_template("ui_diffflame.svg.j2").render(
        svg_id=svg_id,
        width=width,
        height=note_y + (6 if note else -10),
        font_family=flame.FONT_FAMILY,
        font_size=flame.FONT_SIZE,
        char_width=flame.CHAR_WIDTH,
        total=tree.root.count,
        hidden_nodes=lay.hidden_nodes,
        frames=frames,
        rect_height=flame.ROW_HEIGHT - 1,
        note=note,
        note_y=note_y,
    )


__all__ = ["CHANGES", "DiffTree", "change", "diff_tree", "render_diff_svg"]
