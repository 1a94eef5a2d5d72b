"""Grouping goroutines by stack (`Group`), and the stack tree behind flame graphs.

Grouping hashes each row's key once (O(n) expected); it never compares stacks pairwise.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from grprof.frames import Frame, FuncName, site_of
from grprof.table import GoroutineTable, Stack, gc_paused

Similarity = Literal["exact", "default", "loose"]
SIMILARITIES: tuple[Similarity, ...] = ("exact", "default", "loose")


@dataclass(slots=True)
class Group:
    """Goroutines (or profile samples) that share a stack under a similarity level."""

    signature: str
    """Stable hex digest of the group's stack; equal stacks give equal signatures across runs."""
    count: int
    frames: tuple[Frame, ...]
    frames_elided: bool
    created_by: Frame | None
    states: dict[str, int]
    wait_minutes: dict[int, int]
    """Wait minutes -> goroutine count (0 = under a minute or not stamped)."""
    labels: dict[str, dict[str, int]]
    """Label key -> value -> goroutine count."""
    ids: list[int]
    """Member goroutine ids (empty for aggregated formats)."""
    orphans: list[int]
    """Members whose creator goroutine is no longer in the snapshot."""
    leaked: int
    locked_to_thread: int
    partial: int
    creators: dict[int, int] = field(default_factory=dict)
    """Creator goroutine id -> members it started (per-goroutine formats, Go 1.21+ headers)."""
    state_inferred: bool = False
    """The states were inferred from the stack (debug=0, debug=1), not printed by the runtime."""

    @property
    def site(self) -> Frame | None:
        return site_of(self.frames)

    @property
    def state(self) -> str:
        """The most common state."""
        return max(self.states.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.states else ""

    @property
    def max_wait_minutes(self) -> int:
        return max(self.wait_minutes, default=0)


def loose_function(name: str) -> str:
    """`main.main.func15.1` -> `main.main.func.N`: the name without closure numbering
    (the compiler numbers closures and wrappers in order of appearance: it shifts when code
    moves). `FuncName.loose`, from the parsed-names cache."""
    return FuncName.of(name).loose


def _frame_text(f: Frame, loose: bool) -> str:
    return loose_function(f.function) if loose else f"{f.function} {f.file}:{f.line}"


def _stack_text(stack: Stack, loose: bool, memo: dict[int, str] | None = None) -> str:
    """The text a signature digests: a line per frame, `...`, `created by` and its frame.

    `memo` (frame id -> text, for one call's frames, all alive meanwhile) formats each frame
    once: the stacks of one dump share most of their frames, often as the same objects."""
    if memo is None:
        parts = [_frame_text(f, loose) for f in stack.frames]
    else:
        parts = [memo.get(id(f)) or _remember(memo, f, loose) for f in stack.frames]
    if stack.frames_elided:
        parts.append("...")
    cb = stack.created_by
    if cb is not None:
        parts.append(
            "created by "
            + (_frame_text(cb, loose) if memo is None else memo.get(id(cb)) or _remember(memo, cb, loose))
        )
    return "\n".join(parts)


def _remember(memo: dict[int, str], f: Frame, loose: bool) -> str:
    t = memo[id(f)] = _frame_text(f, loose)
    return t


def signature(stack: Stack, similarity: Similarity = "default", argkey: int = 0) -> str:
    """A stable digest of a stack under a similarity level (16 hex digits)."""
    return _digest(_stack_text(stack, similarity == "loose"), similarity, argkey)


def _digest(text: str, similarity: Similarity, argkey: int) -> str:
    if similarity == "exact":
        text += f"\nargs {argkey:016x}"
    # Interned: a daemon holds the same signature in every snapshot of a service's window.
    return sys.intern(hashlib.blake2b(text.encode(), digest_size=8).hexdigest())


def _row_keys(table: GoroutineTable, similarity: Similarity) -> tuple[list[int], list[Stack]]:
    """Map every row to a group number; return the numbers and each group's stack."""
    if similarity == "default":
        return list(table.stack), list(table.stacks)
    if similarity == "loose":
        by_text: dict[str, int] = {}
        stack_group: list[int] = []
        reps: list[Stack] = []
        memo: dict[int, str] = {}
        for s in table.stacks:
            g = by_text.setdefault(_stack_text(s, True, memo), len(reps))
            if g == len(reps):
                reps.append(s)
            stack_group.append(g)
        return [stack_group[s] for s in table.stack], reps
    index: dict[tuple[int, int], int] = {}
    keys: list[int] = []
    reps = []
    for si, a in zip(table.stack, table.argkey, strict=True):
        g = index.setdefault((si, a), len(reps))
        if g == len(reps):
            reps.append(table.stacks[si])
        keys.append(g)
    return keys, reps


def group(table: GoroutineTable, similarity: Similarity = "default") -> list[Group]:
    """Group a table's rows by stack; largest groups first, ties by signature."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, not {similarity!r}")
    with gc_paused(len(table.stacks)):
        return _group(table, similarity)


def _group(table: GoroutineTable, similarity: Similarity) -> list[Group]:
    keys, reps = _row_keys(table, similarity)
    headers = table.headers
    # (group, header) -> goroutines: every per-goroutine statistic derives from this.
    if table.counts is None:
        per_header: Counter[tuple[int, int]] = Counter(zip(keys, table.header, strict=True))
    else:
        per_header = Counter()
        for k, h, c in zip(keys, table.header, table.counts, strict=True):
            per_header[k, h] += c
    ids: dict[int, list[int]] = defaultdict(list)
    orphans: dict[int, list[int]] = defaultdict(list)
    creators: dict[int, dict[int, int]] = defaultdict(dict)
    partial: Counter[int] = Counter()
    if table.counts is None:
        present = set(table.ids)
        for k, gid, cr in zip(keys, table.ids, table.creator, strict=True):
            ids[k].append(gid)
            if cr >= 0:
                by = creators[k]
                by[cr] = by.get(cr, 0) + 1
                if cr not in present:
                    orphans[k].append(gid)
        for row, x in table.extras.items():
            if x.partial:
                partial[keys[row]] += 1
    first_row: dict[int, int] = {}
    if similarity == "exact":  # the argument key of each group's first row
        for row, k in enumerate(keys):
            first_row.setdefault(k, row)

    groups: dict[int, Group] = {}
    memo: dict[int, str] = {}
    loose = similarity == "loose"
    for (k, hi), n in per_header.items():
        g = groups.get(k)
        if g is None:
            st = reps[k]
            argkey = table.argkey[first_row[k]] if first_row else 0
            g = groups[k] = Group(
                signature=_digest(_stack_text(st, loose, memo), similarity, argkey),
                count=0,
                frames=st.frames,
                frames_elided=st.frames_elided,
                created_by=st.created_by,
                states={},
                wait_minutes={},
                labels={},
                ids=ids.get(k, []),
                orphans=orphans.get(k, []),
                leaked=0,
                locked_to_thread=0,
                partial=partial.get(k, 0),
                creators=creators.get(k, {}),
                state_inferred=table.counts is not None,
            )
        hd = headers[hi]
        g.count += n
        g.states[hd.state] = g.states.get(hd.state, 0) + n
        g.wait_minutes[hd.wait_minutes] = g.wait_minutes.get(hd.wait_minutes, 0) + n
        for lk, lv in hd.labels_key:
            vals = g.labels.setdefault(lk, {})
            vals[lv] = vals.get(lv, 0) + n
        if hd.leaked:
            g.leaked += n
        if hd.locked_to_thread:
            g.locked_to_thread += n
    out = list(groups.values())
    for g in out:  # one state, one wait and no labels is the common case: already in order
        if len(g.states) > 1:
            g.states = dict(sorted(g.states.items(), key=lambda kv: (-kv[1], kv[0])))
        if len(g.wait_minutes) > 1:
            g.wait_minutes = dict(sorted(g.wait_minutes.items()))
        if g.labels:
            g.labels = {
                k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
                for k, v in sorted(g.labels.items())
            }
    out.sort(key=lambda g: (-g.count, g.signature))
    return out


# -- stack tree ----------------------------------------------------------------------------


@dataclass(slots=True)
class StackNode:
    """A node of the stack tree: a function reached through its ancestors' call path.

    The root (`name == "all"`) holds every goroutine; children are callees, keyed by function.
    `self_count` counts goroutines whose innermost frame is this node.
    """

    name: str
    count: int = 0
    self_count: int = 0
    frame: Frame | None = None
    children: dict[str, StackNode] = field(default_factory=dict)

    def child(self, frame: Frame) -> StackNode:
        node = self.children.get(frame.function)
        if node is None:
            node = self.children[frame.function] = StackNode(frame.function, frame=frame)
        return node

    def walk(self, depth: int = 0) -> Iterable[tuple[int, StackNode]]:
        """Depth-first, children largest first."""
        yield depth, self
        for c in sorted(self.children.values(), key=lambda n: (-n.count, n.name)):
            yield from c.walk(depth + 1)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "count": self.count,
            "self": self.self_count,
            "frame": self.frame.to_json() if self.frame else None,
            "children": [
                c.to_json() for c in sorted(self.children.values(), key=lambda n: (-n.count, n.name))
            ],
        }


def stack_tree(groups: Sequence[Group]) -> StackNode:
    """Merge groups into a prefix tree of frames, outermost first."""
    with gc_paused(len(groups)):
        return _stack_tree(groups)


def _stack_tree(groups: Sequence[Group]) -> StackNode:
    root = StackNode("all")
    for g in groups:
        n = g.count
        root.count += n
        node = root
        for f in reversed(g.frames):  # StackNode.child, inlined: this runs once per frame
            children = node.children
            nxt = children.get(f.function)
            if nxt is None:
                nxt = children[f.function] = StackNode(f.function, 0, 0, f, {})
            nxt.count += n
            node = nxt
        node.self_count += n
    return root
