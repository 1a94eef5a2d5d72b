"""The Go code model the source check reads: statements, functions, where a name gets its
value, channels made locally, loops and their exits, and who starts a goroutine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grprof.detect.source._files import _GoFile, _package_files
from grprof.model import Frame, Group

if TYPE_CHECKING:
    from tree_sitter import Node


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


_MAKE_SIZED = 2
"""Arguments of `make(chan T, n)`; `make(chan T)` has one."""
_MAX_DEPTH = 4
"""Assignments followed back to find where a channel comes from."""


def _frame_statement(src: _GoFile, frame: Frame) -> tuple[Node | None, Node | None]:
    """The statement at `frame`'s line and the function around it.

    A closure written on one line (`time.AfterFunc(d, func() { <-never })`) shares its line
    with the statement that holds it: for a closure's frame, the statement inside the
    innermost func literal on that line is the one.
    """
    row = frame.line - 1
    stmt = _statement_at(src, row)
    func = _func_of(stmt if stmt is not None else _node_at(src, row))
    if stmt is None or not frame.func_name.is_closure:
        return stmt, func
    lits = [
        n
        for n in _walk(stmt)
        if n.type == "func_literal" and n.start_point.row == row and n.end_point.row == row
    ]
    if not lits:
        return stmt, func
    lit = min(lits, key=lambda n: n.end_byte - n.start_byte)
    inner = next((n for n in _walk(lit.child_by_field_name("body")) if n.type in _STATEMENTS), None)
    return (inner, lit) if inner is not None else (stmt, func)


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
    if len(args) < _MAKE_SIZED:
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
    if expr is None or depth > _MAX_DEPTH:
        return False
    fn = _call_name(expr)
    if fn is not None:
        return fn in ("time.After", "time.Tick") or fn.endswith(".Done")
    if expr.type == "selector_expression" and _text(expr.child_by_field_name("field")) == "C":
        operand = expr.child_by_field_name("operand")
        b = _last_binding(expr, _text(operand)) if _ident(operand) else None
        made = _call_name(_unparen(b.value)) if b is not None else None
        return (
            made in ("time.NewTimer", "time.NewTicker")
            or any(w in _text(operand).lower() for w in ("timer", "ticker", "timeout"))
            or not _field_types(_unparen(operand)).isdisjoint(_TIMER_TYPES.values())
        )
    name = _ident(expr)
    if name is not None:
        b = _last_binding(expr, name)
        return b is not None and _is_deadline(_unparen(b.value), depth + 1)
    return False


@dataclass(frozen=True, slots=True)
class _Site:
    root: Path
    """The source dir."""
    src: _GoFile
    stmt: Node
    func: Node
    group: Group


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
    if _MAIN_CODE.fullmatch(entry.func_name.outer or entry.function):
        return True  # main itself, main.main.func1, main.main.gowrap1 (not main.mainLoop)
    name = entry.func_name
    if name.name is None or name.receiver is not None or entry.function.count(".") != 1:
        return False
    spawns = [g for g in _package_go_statements(site.root, entry) if _go_target(g) == name.name]
    return bool(spawns) and all(_in_main(g) for g in spawns)


def _package_go_statements(root: Path, frame: Frame) -> list[Node]:
    """The `go` statements of the package that holds `frame` (its file's directory)."""
    return [n for src in _package_files(root, frame) for n in _walk(src.root) if n.type == "go_statement"]


def _go_target(go: Node) -> str | None:
    call = next((c for c in go.named_children if c.type == "call_expression"), None)
    return _call_name(call)


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
    return is_timer_channel(ch, "time.Tick", "time.NewTicker")


_TIMER_TYPES = {"time.NewTicker": "time.Ticker", "time.NewTimer": "time.Timer"}


def _field_types(sel: Node | None) -> set[str]:
    """When `sel` is `x.f` (or `x.y.f`): the types, pointers undone, that the structs of the
    file declare a field `f` with (`t *time.Ticker` -> `time.Ticker`): a ticker kept in a
    struct is the usual home of a loop's ticker (`case <-r.t.C:`). By name alone: the struct
    of `x` is not known."""
    if sel is None or sel.type != "selector_expression":
        return set()
    field = _text(sel.child_by_field_name("field"))
    root = sel
    while root.parent is not None:
        root = root.parent
    return {
        _text(n.child_by_field_name("type")).lstrip("*")
        for n in _walk(root)
        if n.type == "field_declaration" and any(_text(x) == field for x in n.children_by_field_name("name"))
    }


def is_timer_channel(ch: Node, channel_call: str, constructor: str) -> bool:
    """`ch` is a timer's channel: a call of `channel_call` (`time.After`, `time.Tick`) or a
    variable holding one, or the `C` of what `constructor` (`time.NewTimer`, `time.NewTicker`)
    returned, called in place, held in a variable or in a struct field of that type."""
    if _call_name(ch) == channel_call:
        return True
    name = _ident(ch)
    if name is not None:
        b = _last_binding(ch, name)
        return b is not None and _call_name(_unparen(b.value)) == channel_call
    if ch.type != "selector_expression" or _text(ch.child_by_field_name("field")) != "C":
        return False
    operand = _unparen(ch.child_by_field_name("operand"))
    if _call_name(operand) == constructor or _TIMER_TYPES[constructor] in _field_types(operand):
        return True
    oname = _ident(operand)
    b = None if operand is None or oname is None else _last_binding(operand, oname)
    return b is not None and _call_name(_unparen(b.value)) == constructor


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
# Numbers the code states: loop bounds, senders per call


def _at(src: _GoFile, node: Node) -> str:
    """`file.go:12`: where a node starts."""
    return f"{src.rel}:{node.start_point.row + 1}"


def _int(node: Node | None) -> int | None:
    if node is not None and node.type == "expression_list" and node.named_child_count == 1:
        node = node.named_children[0]
    node = _unparen(node)
    if node is None or node.type != "int_literal":
        return None
    try:
        return int(_text(node).replace("_", ""), 0)
    except ValueError:
        return None


def _literal_len(node: Node | None) -> int | None:
    """Elements of a composite literal (`[]string{"a", "b"}`), directly or through a variable."""
    node = _unparen(node)
    if node is not None and node.type == "identifier":
        b = _last_binding(node, _text(node))
        node = None if b is None else _unparen(b.value)
    if node is None or node.type != "composite_literal":
        return None
    body = node.child_by_field_name("body")
    return None if body is None else sum(1 for c in body.named_children if c.type != "comment")


def _loop_bound(loop: Node) -> int | None:
    """How many times a `for` loop runs when literals say so: `for i := 0; i < 3; i++`,
    `for i := 1; i <= 3; i++`, `for range 3` (Go 1.22), a range over a literal slice."""
    clause = _range_clause(loop)
    if clause is not None:
        right = clause.child_by_field_name("right")
        n = _int(right)
        return n if n is not None else _literal_len(right)
    clause = next((c for c in loop.named_children if c.type == "for_clause"), None)
    if clause is None:
        return None
    init, cond, update = (clause.child_by_field_name(f) for f in ("initializer", "condition", "update"))
    if init is None or cond is None or update is None or update.type != "inc_statement":
        return None
    if init.type != "short_var_declaration" or cond.type != "binary_expression":
        return None
    var = _text(init.child_by_field_name("left"))
    start = _int(init.child_by_field_name("right"))
    op = _text(cond.child_by_field_name("operator"))
    end = _int(cond.child_by_field_name("right"))
    if start is None or end is None or _text(cond.child_by_field_name("left")) != var:
        return None
    if _text(update).replace(" ", "") != f"{var}++":
        return None
    n = end - start + (1 if op == "<=" else 0) if op in ("<", "<=") else None
    return None if n is None or n < 0 else n


def _go_literal(go: Node) -> Node | None:
    """The func literal a `go func() { ... }()` statement runs."""
    call = next((c for c in go.named_children if c.type == "call_expression"), None)
    fn = None if call is None else _unparen(call.child_by_field_name("function"))
    return fn if fn is not None and fn.type == "func_literal" else None


def _senders(src: _GoFile, ch: _Chan) -> tuple[int, str] | None:
    """Goroutines that one call of `ch`'s owner starts to send on `ch`, with how the code
    says so: `(3, "the loop at f.go:12 starts 3")`. None when a count is not a literal."""
    total, parts = 0, []
    for go in _walk(ch.owner.child_by_field_name("body")):
        if go.type != "go_statement":
            continue
        lit = _go_literal(go)
        if lit is None or not any(_inside(s, lit) for s in ch.roles.get("send", [])):
            continue
        n, loops = 1, []
        p = go.parent
        while p is not None and p != ch.owner:
            if p.type == "for_statement":
                bound = _loop_bound(p)
                if bound is None:
                    return None
                n *= bound
                loops.append(p)
            elif p.type == "func_literal":
                return None  # a go statement inside another goroutine: no per-call count
            p = p.parent
        total += n
        parts.append(
            f"the loop at {_at(src, loops[-1])} starts {n}"
            if loops
            else f"the go statement at {_at(src, go)}"
        )
    if total == 0:
        return None
    how = parts[0] if len(parts) == 1 else f"{len(parts)} go statements ({'; '.join(parts)})"
    return total, how


def _param_index(func: Node, name: str) -> tuple[int, Node | None] | None:
    """The position of parameter `name` in `func`'s parameter list, with its type node."""
    params = func.child_by_field_name("parameters")
    if params is None:
        return None
    i = 0
    for decl in params.named_children:
        if decl.type not in ("parameter_declaration", "variadic_parameter_declaration"):
            continue
        names = decl.children_by_field_name("name")
        if not names:
            i += 1
        for n in names:
            if _text(n) == name:
                return i, decl.child_by_field_name("type")
            i += 1
    return None


def _callee(call: Node | None) -> str | None:
    """The called function's own name: `subscribe` for `subscribe(..)`, `s.run(..)`, `pkg.F(..)`."""
    name = _call_name(call)
    return None if name is None else name.rsplit(".", 1)[-1]
