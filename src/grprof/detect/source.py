"""Source confirmation (`--source DIR`): open the service's Go source at a group's blocking
statement, show it with the `go` statement that spawned the goroutine, and check it against
known leak patterns with tree-sitter-go.

Everything here is best effort. A file that cannot be found, read or parsed gives None, or a
report without a pattern; never an exception. A pattern is reported only when the code shows
it clearly: a missed pattern costs a line of explanation, a wrong one costs the user's trust.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grprof.detect.model import SourceReport
from grprof.model import Frame, Group

if TYPE_CHECKING:
    from tree_sitter import Language, Node

__all__ = ["PATTERNS", "PATTERN_CATEGORIES", "confirm", "resolve_file"]

PATTERN_CATEGORIES: dict[str, str] = {
    "unbuffered-send-after-timeout": "channel",
    "receive-without-sender": "channel",
    "range-never-closed": "channel",
    "ctx-background": "context",
    "ticker-never-stopped": "timer",
}
PATTERNS = tuple(PATTERN_CATEGORIES)

# Generated or vendored monsters are not worth parsing for a snippet.
MAX_FILE_SIZE = 8 << 20
# A source tree walked to map a path (only when no direct suffix matches) stops here.
MAX_WALK_FILES = 200_000
# At most this many lines of a long statement (a `for` loop) around the blocking line.
_STATEMENT_SPAN = 6

_FUNCS = frozenset({"function_declaration", "method_declaration", "func_literal"})
_STATEMENTS = frozenset(
    {
        "send_statement",
        "expression_statement",
        "short_var_declaration",
        "assignment_statement",
        "inc_statement",
        "dec_statement",
        "var_declaration",
        "const_declaration",
        "type_declaration",
        "return_statement",
        "go_statement",
        "defer_statement",
        "if_statement",
        "for_statement",
        "expression_switch_statement",
        "type_switch_statement",
        "select_statement",
        "labeled_statement",
        "fallthrough_statement",
        "break_statement",
        "continue_statement",
        "goto_statement",
    }
)
_BREAKABLE = frozenset(
    {"for_statement", "expression_switch_statement", "type_switch_statement", "select_statement"}
)
# Calls after which a loop does not go round again.
_NO_RETURN = frozenset(
    {
        "panic",
        "os.Exit",
        "runtime.Goexit",
        "log.Fatal",
        "log.Fatalf",
        "log.Fatalln",
        "log.Panic",
        "log.Panicf",
    }
)
_CLOSURE_PART = re.compile(r"(func\d+|gowrap\d+|\d+)")
_GENERIC_ARGS = re.compile(r"\[[^\]]*\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SKIP_DIRS = frozenset({"node_modules", "testdata"})


# ---------------------------------------------------------------------------------------------
# Public entry point


def confirm(source_dir: Path, group: Group, *, context_lines: int = 3) -> SourceReport | None:
    """Read `group.site`'s statement under `source_dir` and check it for a known leak pattern.

    None when the site's file is not under `source_dir` (or cannot be read, or is shorter
    than the frame's line); a report with `pattern=None` when the code shows no known pattern.
    """
    site = group.site
    if site is None or site.line <= 0 or _language() is None:
        return None
    try:
        return _report(Path(source_dir), group, site, context_lines)
    except Exception:
        # Reading someone's source tree is best effort: whatever it holds, the analysis goes on.
        return None


def _report(root: Path, group: Group, site: Frame, context_lines: int) -> SourceReport | None:
    src = _open(root, site)
    if src is None or site.line > len(src.lines):
        return None
    row = site.line - 1
    stmt = _statement_at(src, row)
    func = _func_of(stmt if stmt is not None else _node_at(src, row))
    pattern, suggestion = None, None
    # Patterns read the whole outer function: a syntax error anywhere in it voids them.
    if stmt is not None and func is not None and not (_outer_decl(func) or func).has_error:
        try:
            pattern, suggestion = _match(_Site(root, src, stmt, func, group)) or (None, None)
        except Exception:
            # A bug in one heuristic must not lose the snippet, nor stop a report of 100 groups.
            pattern, suggestion = None, None
    return SourceReport(
        file=src.rel,
        line=site.line,
        function=_function_name(func) if func is not None else "",
        snippet=_snippet(src, row, stmt, func, max(0, context_lines)),
        go_statement=_go_statement(root, group.created_by),
        pattern=pattern,
        confirmed=pattern is not None,
        suggestion=suggestion,
    )


def resolve_file(source_dir: Path, frame: Frame) -> Path | None:
    """The file under `source_dir` that holds `frame`'s code, or None.

    The frame's path is the build machine's (`/build/app/internal/api/h.go`, `C:\\src\\...`,
    a module cache path, or a `-trimpath` import path): the longest path suffix that exists
    under `source_dir` wins, with go.mod's module path and a `vendor/` directory as hints, and
    a file that declares the frame's function preferred over one that does not.
    """
    # The standard library is not the service's code, even where a file of the same name is.
    if not frame.file.endswith(".go") or frame.is_stdlib:
        return None
    try:
        found = _resolve_cached(str(Path(source_dir).resolve()), frame.file, frame.function)
    except (OSError, ValueError, RuntimeError):
        return None
    return None if found is None else Path(found)


# ---------------------------------------------------------------------------------------------
# Path mapping


@functools.lru_cache(maxsize=4096)
def _resolve_cached(root: str, file: str, function: str) -> str | None:
    base = Path(root)
    parts = _path_parts(file)
    if not parts:
        return None
    frame = Frame(function, file, 0)
    candidates = _direct_candidates(base, parts, frame)
    best = _best(base, candidates, parts, frame, require_evidence=False)
    if best is None:
        # Source dir above or beside the module root: look for the file anywhere below it.
        walked = [base / rel for rel in _go_files(root).get(parts[-1], ())]
        best = _best(base, walked, parts, frame, require_evidence=True)
    return None if best is None else str(best)


def _path_parts(file: str) -> list[str]:
    """Path components of a frame's file; `..` is dropped so nothing maps outside the dir."""
    path = _DRIVE.sub("", file.replace("\\", "/"))
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    # Module cache: .../github.com/x/y@v1.2.3/z.go is github.com/x/y/z.go in vendor/.
    return [p.split("@", 1)[0] if "@" in p else p for p in parts]


def _direct_candidates(base: Path, parts: Sequence[str], frame: Frame) -> list[Path]:
    out = [base.joinpath(*parts[i:]) for i in range(len(parts))]
    pkg = frame.package
    module = _module_path(str(base))
    if module and (pkg == module or pkg.startswith(module + "/")):
        out.append(base.joinpath(*pkg[len(module) :].split("/"), parts[-1]))
    if "." in pkg.split("/", 1)[0]:
        out.append(base.joinpath("vendor", *pkg.split("/"), parts[-1]))
    return out


def _best(
    base: Path, candidates: Sequence[Path], parts: Sequence[str], frame: Frame, *, require_evidence: bool
) -> Path | None:
    """The candidate that matches the most trailing path components (declaring the function first).

    A match on the file name alone must not contradict the frame: the file declares the
    function, or (direct candidates, right under the source dir) its name cannot be checked.
    """
    name = _split_function(frame)
    scored: list[tuple[int, int, str]] = []
    for cand in dict.fromkeys(candidates):
        if not cand.is_file():
            continue
        try:
            rel = cand.relative_to(base).parts
        except ValueError:
            continue
        suffix = _common_suffix(rel, parts)
        declares = _declares(cand, name)
        if declares is False and suffix < 2:
            continue
        if require_evidence and suffix < 2 and declares is not True:
            continue
        scored.append((1 if declares else 0, suffix, str(cand)))
    if not scored:
        return None
    scored.sort(reverse=True)
    return Path(scored[0][2])


def _common_suffix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


@functools.lru_cache(maxsize=64)
def _module_path(root: str) -> str | None:
    try:
        text = Path(root, "go.mod").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^\s*module\s+\"?([^\s\"]+)", text, re.M)
    return m.group(1) if m else None


@functools.lru_cache(maxsize=8)
def _go_files(root: str) -> dict[str, tuple[str, ...]]:
    """Go files under root by base name (relative paths), skipping hidden and test-data dirs."""
    found: dict[str, list[str]] = {}
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")) and d not in _SKIP_DIRS)
        for f in filenames:
            if f.endswith(".go"):
                found.setdefault(f, []).append(os.path.relpath(os.path.join(dirpath, f), root))
                count += 1
        if count >= MAX_WALK_FILES:
            break
    return {k: tuple(v) for k, v in found.items()}


@dataclass(frozen=True, slots=True)
class _FuncName:
    """The declared function a frame's code is in: `name`, with `receiver` for methods."""

    name: str | None
    receiver: str | None = None


def _split_function(frame: Frame) -> _FuncName:
    """`main.handler.func1` -> handler; `pkg.(*T).M.func2` -> M of T; `pkg.glob..func1` -> unknown."""
    rest = _GENERIC_ARGS.sub("", frame.function[len(frame.package) :].lstrip("."))
    parts = rest.split(".")
    if parts[0].startswith("("):
        return _FuncName(parts[1] if len(parts) > 1 and parts[1] else None, parts[0].strip("()*"))
    if not parts[0] or parts[0] == "glob":
        return _FuncName(None)
    if len(parts) > 1 and parts[1] and not _CLOSURE_PART.fullmatch(parts[1]):
        return _FuncName(parts[1], parts[0])
    return _FuncName(parts[0])


def _declares(path: Path, name: _FuncName) -> bool | None:
    """Whether the file declares the function; None when the name cannot be checked."""
    if name.name is None or not name.name.isidentifier():
        return None
    fn = re.escape(name.name).encode()
    if name.receiver:
        recv = re.escape(name.receiver).encode()
        pat = rb"^func\s*\([^)]*\b" + recv + rb"\b[^)]*\)\s*" + fn + rb"\s*[\[(]"
    else:
        pat = rb"^func\s+" + fn + rb"\s*[\[(]"
    src = _load(path)
    return None if src is None else re.search(pat, src.data, re.M) is not None


# ---------------------------------------------------------------------------------------------
# Reading and parsing (cached: a detector asks about many groups in the same files)


@dataclass(frozen=True, slots=True)
class _GoFile:
    path: Path
    rel: str
    """Relative to the source dir asked about (the cache holds files with rel empty)."""
    data: bytes
    lines: tuple[bytes, ...]
    root: Node


@functools.lru_cache(maxsize=1)
def _language() -> Language | None:
    try:
        import tree_sitter
        import tree_sitter_go
    except ImportError:
        return None
    return tree_sitter.Language(tree_sitter_go.language())


def _load(path: Path) -> _GoFile | None:
    """The parsed file, from the cache while its mtime and size are unchanged."""
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_size > MAX_FILE_SIZE:
        return None
    return _parse_file(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=128)
def _parse_file(path: str, mtime_ns: int, size: int) -> _GoFile | None:
    lang = _language()
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if lang is None:
        return None
    import tree_sitter

    # A parser per parse: parsers are not shareable across threads, and creating one is cheap.
    root = tree_sitter.Parser(lang).parse(data).root_node
    lines = tuple(ln.rstrip(b"\r") for ln in data.removesuffix(b"\n").split(b"\n"))
    return _GoFile(Path(path), "", data, lines, root)


def _open(root: Path, frame: Frame) -> _GoFile | None:
    path = resolve_file(root, frame)
    src = None if path is None else _load(path)
    if path is None or src is None:
        return None
    try:
        rel = path.relative_to(root.resolve()).as_posix()
    except (OSError, ValueError, RuntimeError):
        rel = path.as_posix()
    return dataclasses.replace(src, rel=rel)


# ---------------------------------------------------------------------------------------------
# Syntax helpers


def _text(node: Node | None) -> str:
    return "" if node is None or node.text is None else node.text.decode("utf-8", "replace")


def _walk(node: Node | None, *, into_funcs: bool = True) -> Iterator[Node]:
    """Named nodes below and including `node`, in source order; nested func literals optional."""
    stack = [] if node is None else [node]
    while stack:
        n = stack.pop()
        yield n
        kids = [c for c in n.named_children if into_funcs or c.type != "func_literal"]
        stack.extend(reversed(kids))


def _inside(node: Node, ancestor: Node) -> bool:
    return ancestor.start_byte <= node.start_byte and node.end_byte <= ancestor.end_byte


def _func_of(node: Node | None) -> Node | None:
    """The nearest function declaration, method or func literal around `node`."""
    n = None if node is None else node.parent
    while n is not None and n.type not in _FUNCS:
        n = n.parent
    return n


def _outer_decl(node: Node) -> Node | None:
    """The top-level function or method declaration around `node`."""
    found = None
    n: Node | None = node
    while n is not None:
        if n.type in ("function_declaration", "method_declaration"):
            found = n
        n = n.parent
    return found


def _call_name(node: Node | None) -> str | None:
    """`make`, `context.WithValue`, `t.Stop` for a call expression; None otherwise."""
    if node is None or node.type != "call_expression":
        return None
    return _text(node.child_by_field_name("function"))


def _args(call: Node) -> list[Node]:
    args = call.child_by_field_name("arguments")
    return [] if args is None else [a for a in args.named_children if a.type != "comment"]


def _received(node: Node | None) -> Node | None:
    """The channel expression of a receive `<-x`, else None."""
    if node is None or node.type != "unary_expression":
        return None
    if _text(node.child_by_field_name("operator")) != "<-":
        return None
    return node.child_by_field_name("operand")


def _unparen(node: Node | None) -> Node | None:
    while node is not None and node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[0]
    return node


def _ident(node: Node | None) -> str | None:
    node = _unparen(node)
    return _text(node) if node is not None and node.type == "identifier" else None


def _params(func: Node) -> set[str]:
    names: set[str] = set()
    for field in ("receiver", "parameters", "result"):
        lst = func.child_by_field_name(field)
        if lst is None or lst.type != "parameter_list":
            continue
        for decl in lst.named_children:
            names.update(_text(n) for n in decl.children_by_field_name("name"))
    return names


def _node_at(src: _GoFile, row: int) -> Node | None:
    line = src.lines[row]
    col = len(line) - len(line.lstrip())
    return src.root.named_descendant_for_point_range((row, col), (row, col))


def _statement_at(src: _GoFile, row: int) -> Node | None:
    """The innermost statement on line `row` (0-based): where its first token is, or around it."""
    if not src.lines[row].strip():
        return None
    n = _node_at(src, row)
    while n is not None and n.type not in _STATEMENTS:
        if n.type in _FUNCS or n.type == "source_file":
            return None
        n = n.parent
    if n is not None and n.type == "labeled_statement":
        inner = [c for c in n.named_children if c.type in _STATEMENTS]
        if inner and inner[0].start_point.row == row:
            return inner[0]
    return n


# ---------------------------------------------------------------------------------------------
# Variables: where a name gets its value


@dataclass(frozen=True, slots=True)
class _Binding:
    statement: Node
    target: Node
    """The identifier on the left."""
    value: Node | None
    """The expression on the right for this name (the one call, for `a, b := f()`)."""
    index: int
    names: tuple[str, ...]
    declares: bool


def _bindings(func: Node, name: str) -> list[_Binding]:
    """Declarations of and assignments to `name` in `func`'s own body (not nested literals)."""
    out: list[_Binding] = []
    for n in _walk(func.child_by_field_name("body"), into_funcs=False):
        if n.type in ("short_var_declaration", "assignment_statement", "receive_statement"):
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            targets = [] if left is None else left.named_children
            values = (
                []
                if right is None
                else (right.named_children if right.type == "expression_list" else [right])
            )
            declares = n.type == "short_var_declaration" or (
                n.type == "receive_statement" and b":=" in (n.text or b"")
            )
        elif n.type == "var_spec":
            targets = n.children_by_field_name("name")
            value = n.child_by_field_name("value")
            values = [] if value is None else value.named_children
            declares = True
        elif n.type == "range_clause":
            left = n.child_by_field_name("left")
            targets, values, declares = ([] if left is None else left.named_children), [], True
        else:
            continue
        names = tuple(_text(t) for t in targets)
        for i, t in enumerate(targets):
            if _text(t) != name:
                continue
            value = values[i] if len(values) == len(targets) else (values[0] if len(values) == 1 else None)
            out.append(_Binding(n, t, value, i, names, declares))
    return out


def _owner(use: Node, name: str) -> tuple[Node, list[_Binding]] | None:
    """The function that declares `name` as seen from `use`, with its bindings there.

    None for parameters (the value comes from a caller), package-level variables, and names
    assigned in a closure but declared outside it (too subtle to follow).
    """
    f = _func_of(use)
    while f is not None:
        if name in _params(f):
            return None
        found = _bindings(f, name)
        if found:
            return (f, found) if any(b.declares for b in found) else None
        f = _func_of(f)
    return None


def _last_binding(use: Node, name: str) -> _Binding | None:
    """The binding of `name` that last completed before `use`, in source order."""
    owned = _owner(use, name)
    if owned is None:
        return None
    before = [b for b in owned[1] if b.statement.end_byte <= use.start_byte]
    return before[-1] if before else None


def _uses(scope: Node, name: str) -> list[Node] | None:
    """Every identifier `name` in scope (closures included); None when a closure shadows it."""
    out: list[Node] = []
    for n in _walk(scope):
        if n.type == "func_literal" and n != scope and (name in _params(n) or _declares_local(n, name)):
            return None
        if n.type == "identifier" and _text(n) == name:
            out.append(n)
    return out


def _declares_local(func: Node, name: str) -> bool:
    return any(b.declares for b in _bindings(func, name))


def _role(ident: Node) -> str:
    """What an identifier does where it stands: assign, send, recv, range, close, len, other."""
    p = ident.parent
    if p is None:
        return "other"
    if p.type == "expression_list" and p.parent is not None and p.parent.child_by_field_name("left") == p:
        return "assign"
    if p.type == "var_spec" and ident in p.children_by_field_name("name"):
        return "assign"
    if p.type == "send_statement" and p.child_by_field_name("channel") == ident:
        return "send"
    if _received(p) == ident:
        return "recv"
    if p.type == "range_clause" and p.child_by_field_name("right") == ident:
        return "range"
    if p.type == "argument_list" and p.parent is not None:
        fn = _call_name(p.parent)
        if fn == "close":
            return "close"
        if fn in ("len", "cap"):
            return "len"
    return "other"


# ---------------------------------------------------------------------------------------------
# Channels


@dataclass(frozen=True, slots=True)
class _Chan:
    name: str
    owner: Node
    """The function that makes the channel."""
    make: Node
    binding: _Binding
    roles: dict[str, list[Node]]
    """Every use of the channel in `owner` (closures included), by role."""


def _local_chan(use: Node, name: str) -> _Chan | None:
    """The channel `name` when it is made once, with `make(chan ...)`, in a function around `use`."""
    owned = _owner(use, name)
    if owned is None or len(owned[1]) != 1:
        return None
    owner, (binding,) = owned
    make = _unparen(binding.value)
    if _call_name(make) != "make" or make is None:
        return None
    args = _args(make)
    if not args or args[0].type != "channel_type":
        return None
    uses = _uses(owner, name)
    if uses is None:
        return None
    roles: dict[str, list[Node]] = {}
    for u in uses:
        if u != binding.target:
            roles.setdefault(_role(u), []).append(u)
    return _Chan(name, owner, make, binding, roles)


def _buffer(make: Node) -> int | None:
    """The buffer size of `make(chan T, n)`: 0 when absent, None when not a literal."""
    args = _args(make)
    if len(args) < 2:
        return 0
    try:
        return int(_text(args[1]).replace("_", ""), 0) if args[1].type == "int_literal" else None
    except ValueError:
        return None


def _is_go_literal(func: Node) -> bool:
    """`go func() { ... }()`: the literal is the goroutine's whole body."""
    call = func.parent
    return (
        func.type == "func_literal"
        and call is not None
        and call.type == "call_expression"
        and call.child_by_field_name("function") == func
        and call.parent is not None
        and call.parent.type == "go_statement"
    )


def _select_of_receive(recv_ident: Node) -> Node | None:
    """The select statement when `recv_ident` is received in one of its cases."""
    unary = recv_ident.parent
    stmt = None if unary is None else unary.parent
    if stmt is None or stmt.type != "receive_statement" or stmt.child_by_field_name("right") != unary:
        return None
    case = stmt.parent
    if case is None or case.type != "communication_case" or case.parent is None:
        return None
    return case.parent if case.parent.type == "select_statement" else None


def _gives_up(case: Node) -> bool:
    """A select case through which a receiver stops waiting: a timeout, ctx.Done(), default."""
    if case.type == "default_case":
        return True
    comm = case.child_by_field_name("communication")
    if comm is None or comm.type != "receive_statement":
        return False
    return _is_deadline(_unparen(_received(comm.child_by_field_name("right"))), depth=0)


def _is_deadline(expr: Node | None, depth: int) -> bool:
    """A channel that fires on its own: time.After/Tick, X.Done(), a timer's or ticker's C."""
    if expr is None or depth > 4:
        return False
    fn = _call_name(expr)
    if fn is not None:
        return fn in ("time.After", "time.Tick") or fn.endswith(".Done")
    if expr.type == "selector_expression" and _text(expr.child_by_field_name("field")) == "C":
        operand = expr.child_by_field_name("operand")
        b = _last_binding(expr, _text(operand)) if _ident(operand) else None
        made = _call_name(_unparen(b.value)) if b is not None else None
        return made in ("time.NewTimer", "time.NewTicker") or any(
            w in _text(operand).lower() for w in ("timer", "ticker", "timeout")
        )
    name = _ident(expr)
    if name is not None:
        b = _last_binding(expr, name)
        return b is not None and _is_deadline(_unparen(b.value), depth + 1)
    return False


# ---------------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True, slots=True)
class _Site:
    root: Path
    """The source dir."""
    src: _GoFile
    stmt: Node
    func: Node
    group: Group


def _match(site: _Site) -> tuple[str, str] | None:
    for check in (_unbuffered_send, _receive_without_sender, _range_never_closed, _ctx_background, _ticker):
        found = check(site)
        if found is not None:
            return found
    return None


def _unbuffered_send(site: _Site) -> tuple[str, str] | None:
    """The design document's leakyHandler: the receiver's select gave up, the send waits forever."""
    stmt, lit = site.stmt, site.func
    parent = stmt.parent
    if stmt.type != "send_statement" or (parent is not None and parent.type == "communication_case"):
        return None
    name = _ident(stmt.child_by_field_name("channel"))
    if name is None or not _is_go_literal(lit):
        return None
    ch = _local_chan(stmt, name)
    if ch is None or ch.owner == lit or not _inside(lit, ch.owner) or _buffer(ch.make) != 0:
        return None
    if ch.roles.keys() - {"send", "recv", "len"}:
        return None  # ranged over, closed, or handed on: someone else may still receive
    receives = [r for r in ch.roles.get("recv", []) if not _inside(r, lit)]
    if not receives:
        return None
    for r in receives:
        sel = _select_of_receive(r)
        if sel is None or not any(_gives_up(c) for c in sel.named_children if not _inside(r, c)):
            return None  # a receiver that waits for the value: the send completes
    return "unbuffered-send-after-timeout", _buffer_suggestion(site.src, ch, stmt)


def _buffer_suggestion(src: _GoFile, ch: _Chan, send: Node) -> str:
    make = ch.make
    row = make.start_point.row
    line_start = make.start_byte - make.start_point.column
    line_end = line_start + len(src.lines[row])
    chan_type = _text(_args(make)[0])
    fixed = f"make({chan_type}, 1)"
    if make.end_point.row == row:
        before = src.data[line_start : make.start_byte].decode("utf-8", "replace")
        line = (before + fixed + src.data[make.end_byte : line_end].decode("utf-8", "replace")).strip()
    else:
        line = f"{ch.name} := {fixed}"
    return (
        f"Nobody receives from {ch.name} once the select has given up, so the send blocks forever. "
        f"Give the channel room for the late value:\n"
        f"    {src.rel}:{row + 1}: {line.rstrip()}\n"
        f"or send with a way out:\n"
        f"    select {{\n    case {_text(send)}:\n"
        f"    case <-ctx.Done(): // or default: to drop the value\n    }}"
    )


def _receive_without_sender(site: _Site) -> tuple[str, str] | None:
    """A receive on a channel made here that nothing sends on or closes."""
    recv = _plain_receive(site.stmt)
    name = _ident(recv)
    if recv is None or name is None:
        return None
    ch = _local_chan(recv, name)
    if ch is None or ch.roles.keys() - {"recv", "len"}:
        return None
    if _in_main(site.func) or _lives_with_process(site):
        return None  # main's `<-done` that blocks forever is an idiom, not a leak
    row = ch.make.start_point.row + 1
    return "receive-without-sender", (
        f"Nothing sends on or closes {name} (made at {site.src.rel}:{row}), so this receive waits "
        f"forever. Signal it on every path, early returns included: `defer close({name})` at the top "
        f"of the goroutine that does the work, or a send before each return."
    )


def _plain_receive(stmt: Node) -> Node | None:
    """The channel of `<-ch`, `v := <-ch`, `v = <-ch` or `return <-ch` (not in a select)."""
    if stmt.type in ("expression_statement", "return_statement"):
        exprs = stmt.named_children
        if stmt.type == "return_statement" and exprs and exprs[0].type == "expression_list":
            exprs = exprs[0].named_children
    elif stmt.type in ("short_var_declaration", "assignment_statement"):
        right = stmt.child_by_field_name("right")
        exprs = [] if right is None else right.named_children
    else:
        return None
    return _received(_unparen(exprs[0])) if len(exprs) == 1 else None


def _range_never_closed(site: _Site) -> tuple[str, str] | None:
    """`for v := range ch` over a channel made here that is never closed (nor handed on)."""
    clause = _range_clause(site.stmt)
    name = _ident(None if clause is None else clause.child_by_field_name("right"))
    if clause is None or name is None:
        return None
    ch = _local_chan(clause, name)
    if ch is None or ch.roles.keys() - {"send", "recv", "range", "len"}:
        return None  # closed, or handed to code that may close it
    if _in_main(ch.owner) or _lives_with_process(site):
        return None
    row = ch.make.start_point.row + 1
    return "range-never-closed", (
        f"Nothing closes {name} (made at {site.src.rel}:{row}), so this range loop never ends. "
        f"Close it when the last value is sent: `defer close({name})` in the sending function."
    )


def _range_clause(stmt: Node) -> Node | None:
    if stmt.type != "for_statement":
        return None
    return next((c for c in stmt.named_children if c.type == "range_clause"), None)


def _in_main(func: Node) -> bool:
    """Code of main() or init() (closures included) runs once per process."""
    decl = _outer_decl(func)
    name = _text(None if decl is None else decl.child_by_field_name("name"))
    return decl is not None and decl.type == "function_declaration" and name in ("main", "init")


_MAIN_CODE = re.compile(r"main\.(main|init(\.\d+)?)")


def _lives_with_process(site: _Site) -> bool:
    """Whether the goroutine was started by main() or init(): it lives as long as the process,
    by design (a worker pool, a periodic job), however it waits.

    `created by` tells (debug=2); otherwise the goroutine's entry frame does: a closure of main,
    or a named function that the package only ever starts with `go` from main or init.
    """
    created_by = site.group.created_by
    if created_by is not None:
        return _MAIN_CODE.fullmatch(created_by.function) is not None
    frames = site.group.frames
    if not frames or site.group.frames_elided:
        return False
    entry = frames[-1]
    if _MAIN_CODE.match(entry.function):
        return True  # main itself, main.main.func1, main.main.gowrap1
    name = _split_function(entry)
    if name.name is None or name.receiver is not None or entry.function.count(".") != 1:
        return False
    spawns = [g for g in _package_go_statements(site.root, entry) if _go_target(g) == name.name]
    return bool(spawns) and all(_in_main(g) for g in spawns)


def _package_go_statements(root: Path, frame: Frame) -> list[Node]:
    """The `go` statements of the package that holds `frame` (its file's directory)."""
    path = resolve_file(root, frame)
    if path is None:
        return []
    out: list[Node] = []
    for sibling in sorted(path.parent.glob("*.go")):
        src = None if sibling.name.endswith("_test.go") else _load(sibling)
        if src is not None:
            out.extend(n for n in _walk(src.root) if n.type == "go_statement")
    return out


def _go_target(go: Node) -> str | None:
    call = next((c for c in go.named_children if c.type == "call_expression"), None)
    return _call_name(call)


def _ctx_background(site: _Site) -> tuple[str, str] | None:
    """`<-ctx.Done()` on a context that can never be cancelled."""
    recv = _plain_receive(site.stmt)
    call = _unparen(recv)
    fn = call.child_by_field_name("function") if call is not None and call.type == "call_expression" else None
    if fn is None or fn.type != "selector_expression" or _text(fn.child_by_field_name("field")) != "Done":
        return None
    ctx = _unparen(fn.child_by_field_name("operand"))
    if ctx is None or ctx.type != "identifier" or not _never_cancelled(ctx, 0):
        return None
    if _in_main(site.func) or _lives_with_process(site):
        return None
    name = _text(ctx)
    return "ctx-background", (
        f"{name} derives from context.Background()/TODO() and nothing can cancel it, so "
        f"<-{name}.Done() waits forever. Derive it from the caller's context (the request's "
        f"r.Context()) or use context.WithCancel and call cancel (`defer cancel()`) when the work ends."
    )


_WITH_CANCEL = frozenset({"context.WithCancel", "context.WithCancelCause"})
_NEVER_ENDS = frozenset({"context.Background", "context.TODO", "context.WithoutCancel"})


def _never_cancelled(expr: Node, depth: int) -> bool:
    """A context expression that no one can cancel, followed through simple assignments."""
    expr_ = _unparen(expr)
    if expr_ is None or depth > 8:
        return False
    if expr_.type == "identifier":
        b = _last_binding(expr_, _text(expr_))
        value = None if b is None else _unparen(b.value)
        if b is None or value is None:
            return False
        if _call_name(value) in _WITH_CANCEL:
            if b.index != 0 or _cancel_used(b):
                return False
            args = _args(value)
            return bool(args) and _never_cancelled(args[0], depth + 1)
        return _never_cancelled(value, depth + 1)
    fn = _call_name(expr_)
    if fn in _NEVER_ENDS:
        return True
    if fn == "context.WithValue":
        args = _args(expr_)
        return bool(args) and _never_cancelled(args[0], depth + 1)
    return False


def _cancel_used(b: _Binding) -> bool:
    """Whether the cancel function of `ctx, cancel := context.WithCancel(...)` is used at all."""
    if len(b.names) < 2 or b.names[1] == "_":
        return False
    scope = _func_of(b.statement)
    uses = None if scope is None else _uses(scope, b.names[1])
    return uses is None or any(u != b.target for u in uses)


def _ticker(site: _Site) -> tuple[str, str] | None:
    """A loop that waits on a ticker nobody stops and that has no way out."""
    stmt = site.stmt
    tick = next((c for c in _ticker_channels(stmt) if _is_ticker(c)), None)
    if tick is None:
        return None
    loop = stmt if stmt.type == "for_statement" else _enclosing_loop(stmt, site.func)
    if loop is None or not _endless(loop) or _exits(loop):
        return None
    if _in_main(site.func) or _lives_with_process(site):
        return None
    operand = tick.child_by_field_name("operand") if tick.type == "selector_expression" else None
    name = _ident(operand)
    if name is not None:
        owned = _owner(tick, name)
        uses = None if owned is None else _uses(owned[0], name)
        if owned is None or uses is None:
            return None
        target = owned[1][0].target
        if len(owned[1]) != 1 or any(u != target and not _ticker_use_ok(u) for u in uses):
            return None
    t = name or "t"
    return "ticker-never-stopped", (
        f"This loop waits on a ticker forever: nothing stops the ticker and nothing leaves the loop, "
        f"so every goroutine started here runs until the process exits. Stop it and give it a way out:\n"
        f"    defer {t}.Stop()\n    for {{\n        select {{\n        case <-{t}.C:\n"
        f"            ...\n        case <-ctx.Done():\n            return\n        }}\n    }}"
    )


def _ticker_channels(stmt: Node) -> list[Node]:
    """The channels a blocking statement waits on: a receive, a select's cases, a range."""
    clause = _range_clause(stmt)
    if clause is not None:
        right = _unparen(clause.child_by_field_name("right"))
        return [] if right is None else [right]
    if stmt.type == "select_statement":
        out = []
        for case in stmt.named_children:
            comm = case.child_by_field_name("communication")
            if comm is not None and comm.type == "receive_statement":
                ch = _unparen(_received(comm.child_by_field_name("right")))
                if ch is not None:
                    out.append(ch)
        return out
    ch = _unparen(_plain_receive(stmt))
    return [] if ch is None else [ch]


def _is_ticker(ch: Node) -> bool:
    """`t.C` of a `time.NewTicker`, or `time.Tick(...)` (directly or through a variable)."""
    if _call_name(ch) == "time.Tick":
        return True
    name = _ident(ch)
    if name is not None:
        b = _last_binding(ch, name)
        return b is not None and _call_name(_unparen(b.value)) == "time.Tick"
    if ch.type != "selector_expression" or _text(ch.child_by_field_name("field")) != "C":
        return False
    operand = ch.child_by_field_name("operand")
    b = _last_binding(ch, _text(operand)) if _ident(operand) else None
    return b is not None and _call_name(_unparen(b.value)) == "time.NewTicker"


def _ticker_use_ok(ident: Node) -> bool:
    """Uses of a ticker variable that neither stop it nor hand it to code that might."""
    p = ident.parent
    if p is None or p.type != "selector_expression" or p.child_by_field_name("operand") != ident:
        return False
    return _text(p.child_by_field_name("field")) in ("C", "Reset")


def _enclosing_loop(node: Node, func: Node) -> Node | None:
    n = node.parent
    while n is not None and n != func:
        if n.type == "for_statement":
            return n
        n = n.parent
    return None


def _endless(loop: Node) -> bool:
    """`for { ... }`, or a range over a ticker's channel (never closed)."""
    kids = [c for c in loop.named_children if c != loop.child_by_field_name("body") and c.type != "comment"]
    if not kids:
        return True
    clause = _range_clause(loop)
    right = None if clause is None else _unparen(clause.child_by_field_name("right"))
    return right is not None and _is_ticker(right)


def _exits(loop: Node) -> bool:
    """Whether anything in the loop's body can leave it: return, break/goto out, panic, exit."""
    labels = _labels_of(loop)
    for n in _walk(loop.child_by_field_name("body"), into_funcs=False):
        if n.type in ("return_statement", "goto_statement"):
            return True
        if n.type == "call_expression" and _call_name(n) in _NO_RETURN:
            return True
        if n.type in ("break_statement", "continue_statement"):
            label = next((_text(c) for c in n.named_children if c.type == "label_name"), None)
            if label is not None:
                # `break L` of this loop or an outer one leaves it; `continue L` only an outer one.
                own = label in labels
                if (own and n.type == "break_statement") or (not own and not _label_inside(n, loop, label)):
                    return True
            elif n.type == "break_statement" and _breaks_out_of(n) == loop:
                return True
    return False


def _labels_of(loop: Node) -> set[str]:
    p = loop.parent
    if p is None or p.type != "labeled_statement":
        return set()
    return {_text(c) for c in p.named_children if c.type == "label_name"}


def _label_inside(node: Node, loop: Node, label: str) -> bool:
    n = node.parent
    while n is not None and n != loop:
        if n.type == "labeled_statement" and label in {
            _text(c) for c in n.named_children if c.type == "label_name"
        }:
            return True
        n = n.parent
    return False


def _breaks_out_of(brk: Node) -> Node | None:
    n = brk.parent
    while n is not None and n.type not in _BREAKABLE and n.type not in _FUNCS:
        n = n.parent
    return n


# ---------------------------------------------------------------------------------------------
# Presentation


def _function_name(func: Node) -> str:
    """`handler`, `(*Server).handle`, `func literal in handler` (as written in the source)."""
    if func.type == "func_literal":
        outer = _outer_decl(func)
        return "func literal" + (f" in {_function_name(outer)}" if outer is not None else "")
    name = _text(func.child_by_field_name("name"))
    if func.type == "method_declaration":
        recv = func.child_by_field_name("receiver")
        decl = recv.named_children[0] if recv is not None and recv.named_children else None
        rtype = _GENERIC_ARGS.sub("", _text(None if decl is None else decl.child_by_field_name("type")))
        return f"({rtype}).{name}" if rtype.startswith("*") else f"{rtype}.{name}"
    return name


def _snippet(src: _GoFile, row: int, stmt: Node | None, func: Node | None, context: int) -> str:
    """The statement and `context` lines around it (within its function), numbered, `>` on
    the blocking line."""
    first, last = row, row
    if stmt is not None:
        first = max(min(stmt.start_point.row, row), row - _STATEMENT_SPAN)
        last = min(max(stmt.end_point.row, row), row + _STATEMENT_SPAN)
    lo, hi = 0, len(src.lines) - 1
    decl = None if func is None else (_outer_decl(func) or func)
    if decl is not None:
        lo, hi = max(lo, decl.start_point.row), min(hi, decl.end_point.row)
    start, end = max(lo, min(first, row) - context), min(hi, max(last, row) + context)
    texts = [src.lines[i].decode("utf-8", "replace").expandtabs(4).rstrip() for i in range(start, end + 1)]
    indent = min((len(t) - len(t.lstrip()) for t in texts if t.strip()), default=0)
    width = len(str(end + 1))
    return "\n".join(
        f"{'>' if start + i == row else ' '} {start + i + 1:>{width}} | {t[indent:]}".rstrip()
        for i, t in enumerate(texts)
    )


def _go_statement(root: Path, created_by: Frame | None) -> str | None:
    """`file.go:26: go func() {`: the first line of the `go` statement at created_by's line."""
    if created_by is None or created_by.line <= 0:
        return None
    src = _open(root, created_by)
    if src is None or created_by.line > len(src.lines):
        return None
    row = created_by.line - 1
    stmt = _statement_at(src, row)
    if stmt is None:
        return None
    if stmt.type != "go_statement":
        stmt = next((n for n in _walk(stmt) if n.type == "go_statement" and n.start_point.row == row), None)
        if stmt is None:
            return None
    text = src.lines[stmt.start_point.row].decode("utf-8", "replace").strip()
    return f"{src.rel}:{stmt.start_point.row + 1}: {text}"
