"""The stack tree built in Rust (`stack_tree_of`) is the Python path's tree, node for node.

`aggregate._stack_tree` (the Python path, unchanged) is the reference: the same names,
counts, self counts, the same frame *objects* (a node keeps the frame of the first group
reaching it), the same `children` dict order (first reached first), hence the same
`to_json()` and flame graphs. Checked on every recorded fixture (every snapshot, every
similarity), on the 20,000-distinct-stack benchmark dump when generated, and on generated
groups (a function reached through different lines, equal frames as distinct objects,
empty stacks, zero counts), and past int64 counts (the Python path then runs).
"""

from __future__ import annotations

import gc
import json
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof import load_all
from grprof.aggregate import SIMILARITIES, Group, StackNode, _stack_tree, group, stack_tree
from grprof.errors import ParseError, SourceError
from grprof.frames import Frame
from grprof.table import GoroutineTable, Header, Stack

pytest.importorskip("grprof._native")

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".txt", ".gz"))
BENCH = ROOT.parent / "benchmarks" / ".work"
ZOO = ROOT / "fixtures" / "zoo" / "4-leak-4.goroutine.debug2.txt"


def _shape(node: StackNode) -> list[tuple[object, ...]]:
    """Every node in preorder, children in dict order: what makes two trees the same."""
    out: list[tuple[object, ...]] = []
    todo = [node]
    while todo:
        n = todo.pop()
        out.append((n.name, n.count, n.self_count, id(n.frame), type(n.children), list(n.children)))
        todo.extend(reversed(n.children.values()))
    return out


def _check(groups: list[Group]) -> None:
    want = _stack_tree(groups)
    got = stack_tree(groups, native=True)
    assert type(got) is StackNode
    assert _shape(got) == _shape(want)
    assert json.dumps(got.to_json()) == json.dumps(want.to_json())
    assert stack_tree(groups, native=False) == want


def _snapshots(path: pathlib.Path) -> list[GoroutineTable]:
    try:
        return [s.table for s in load_all(path)]
    except (ParseError, SourceError):
        return []


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_trees_match_python(path: pathlib.Path) -> None:
    for t in _snapshots(path):
        for sim in SIMILARITIES:
            _check(group(t, sim))


def test_benchmark_dump_tree_matches_python() -> None:
    path = BENCH / "distinct-20000.debug2.txt"
    if not path.exists():
        pytest.skip(f"{path} not generated (benchmarks/pprof.py makes it)")
    (t,) = _snapshots(path)
    groups = group(t)
    _check(groups)
    assert sum(1 for _ in stack_tree(groups).walk()) > 90_000


# A function reached from several lines (one node, the first group's frame), equal frames
# as distinct objects, closures: what can tell a name-keyed tree from a frame-keyed one.
_FRAMES = [
    Frame("main.a", "/a.go", 1),
    Frame("main.a", "/a.go", 2),
    Frame("main.b", "/b.go", 3),
    Frame("main.b.func1", "/b.go", 4),
    Frame("runtime.gopark", "/proc.go", 5),
    Frame("main.b", "/b.go", 3),
]


@st.composite
def _groups(draw: st.DrawFn) -> list[Group]:
    t = GoroutineTable(aggregated=True)
    stacks = [
        Stack(tuple(draw(st.lists(st.sampled_from(_FRAMES), max_size=5))))
        for _ in range(draw(st.integers(1, 8)))
    ]
    headers = [Header.make("select"), Header.make("chan receive")]
    for _ in range(draw(st.integers(0, 25))):
        t.add(draw(st.sampled_from(headers)), draw(st.sampled_from(stacks)), count=draw(st.integers(0, 5)))
    groups = group(t, draw(st.sampled_from(SIMILARITIES)))
    return draw(st.permutations(groups))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_groups())
def test_generated_trees_match_python(groups: list[Group]) -> None:
    _check(groups)


def test_native_nodes_leave_the_collector() -> None:
    """The Rust tree's nodes and dicts are untracked (no cycles: reference counting frees
    them), so the collector's next pass does not walk them; the Python path's are tracked."""
    (t,) = _snapshots(ZOO)
    groups = group(t)
    tree = stack_tree(groups, native=True)
    nodes = [n for _, n in tree.walk()][1:]
    assert len(nodes) > 50
    assert not any(gc.is_tracked(n) or gc.is_tracked(n.children) for n in nodes)
    assert all(gc.is_tracked(n) for _, n in _stack_tree(groups).walk())


def test_counts_past_int64_take_the_python_path() -> None:
    t = GoroutineTable(aggregated=True)
    t.add(Header.make("select"), Stack(tuple(_FRAMES[:3])), count=2**62)
    t.add(Header.make("select"), Stack(tuple(_FRAMES[2:5])), count=2**62)
    groups = group(t)
    tree = stack_tree(groups, native=True)
    assert tree.count == 2**63
    assert _shape(tree) == _shape(_stack_tree(groups))
