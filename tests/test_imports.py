"""The import graph of `src/grprof` has no cycle (docs/architecture.md).

The graph is read from the AST, not from `sys.modules`: every `import` and `from ... import`
anywhere in a module counts, inside functions too, because a function-local import that goes
back up the layers is a cycle that only waits for the first call. Imports under
`if TYPE_CHECKING:` count as well: they are never executed, but they are a dependency all the
same (the annotations name the other module), and a layer that needs a higher one even for its
types is not a layer. Edges to parent packages that Python executes implicitly (`grprof`,
`grprof.detect` for `grprof.detect.rules`) do not count, or every package `__init__` that
re-exports would close a cycle. Imports that close a cycle today and are being removed are
listed in `KNOWN_BACK_EDGES`; any other cycle fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "grprof"

# Imports that close a cycle today, outside the core, each to be removed; the test ignores
# exactly these edges (importer, imported) and fails on any other cycle. An entry whose cycle
# is gone fails `test_known_back_edges_still_close_a_cycle`: strike it then.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}


def modules(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path | None]:
    """Module name -> file, for every `.py` file of the package (a package is its `__init__`);
    compiled extension modules (`_native.abi3.so`, or its `_native.pyi` stub when it is not
    built) are modules too, with no file to read."""
    out: dict[str, Path | None] = {}
    for path in sorted((src / package).rglob("*")):
        if path.suffix not in (".py", ".pyi", ".so", ".pyd"):
            continue
        parts = list(path.relative_to(src).parts)
        parts[-1] = parts[-1].split(".", 1)[0]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        out[name] = path if path.suffix == ".py" else out.get(name)
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: dict[str, Path | None]) -> set[str]:
    """The package's modules that `module` imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # `from grprof.detect import rules`: the submodule
                    out.add(sub)
                elif target in known:  # `from grprof.model import Frame`: the module
                    out.add(target)
    out.discard(module)
    return out


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    known = modules(src, package)
    return {m: imports_of(m, p, known) if p is not None else set() for m, p in known.items()}


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    i = cycle.index(min(cycle))
    return tuple(cycle[i:] + cycle[:i])


def find_cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """For every import that lies on a cycle, the shortest cycle through it (rotated to start
    at its smallest module): enough to name every import that has to go."""
    out: set[tuple[str, ...]] = set()
    for scc in _sccs(graph):
        if len(scc) == 1:
            continue
        for a in sorted(scc):
            for b in sorted(graph[a] & scc):
                path = _shortest_path(graph, b, a, scc)
                if path is not None:
                    out.add(_canonical([a, *path[:-1]]))
    return out


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str, within: set[str]) -> list[str] | None:
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:
        if node == goal:
            path = [node]
            while (p := prev[path[-1]]) is not None:
                path.append(p)
            return path[::-1]
        for nxt in sorted(graph[node] & within):
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return None


def _sccs(graph: dict[str, set[str]]) -> Iterator[set[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc: set[str] = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    scc.add(m)
                    if m == node:
                        break
                yield scc


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    return _shortest_path(graph, start, goal, set(graph)) is not None


def test_the_import_graph_has_no_new_cycle() -> None:
    graph = import_graph()
    for a, b in KNOWN_BACK_EDGES:
        graph.get(a, set()).discard(b)
    cycles = sorted(find_cycles(graph))
    assert not cycles, "import cycles (each: a module, what it imports, ..., back to it):\n" + "\n".join(
        " -> ".join([*c, c[0]]) for c in cycles
    )


def test_known_back_edges_still_close_a_cycle() -> None:
    graph = import_graph()
    gone = [
        f"{a} -> {b}"
        for a, b in KNOWN_BACK_EDGES
        if b not in graph.get(a, set()) or not _reaches(graph, b, a)
    ]
    assert not gone, "no longer part of a cycle, remove from KNOWN_BACK_EDGES: " + ", ".join(gone)


def test_the_core_is_layered() -> None:
    """frames -> table -> aggregate -> model: each imports only modules before it."""
    graph = import_graph()
    layers = ["grprof.frames", "grprof.table", "grprof.aggregate", "grprof.model"]
    for i, m in enumerate(layers):
        above = set(layers[i + 1 :])
        assert not graph[m] & above, f"{m} imports {sorted(graph[m] & above)}"
    assert graph["grprof.frames"] == set()


def test_detection_reads_groups_not_table_columns() -> None:
    """Groups carry what detection needs (issue 8): no module of `grprof.detect` imports the
    table or reads a snapshot's `.table`."""
    graph = import_graph()
    detect = {m for m in graph if m == "grprof.detect" or m.startswith("grprof.detect.")}
    assert {m for m in detect if "grprof.table" in graph[m]} == set()
    known = modules()
    for m in sorted(detect):
        path = known[m]
        assert path is not None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "table"]
        assert not reads, f"{m} reads .table at lines {reads}"


def test_the_graph_sees_function_local_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from p.b import x\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import c\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, "p")
    assert graph["p.a"] == {"p.b"} and graph["p.b"] == {"p.c"} and graph["p.c"] == {"p.a"}
    assert find_cycles(graph) == {("p.a", "p.b", "p.c")}
