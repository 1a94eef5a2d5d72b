"""What a goroutine waits on, read from its blocking statement: a context's Done(), a ticker, a
timer in a loop, a time.AfterFunc callback, or a plain channel.

A stack cannot tell `<-ctx.Done()` from `<-results`: both are `runtime.chanrecv1` under the
same function. The statement can, and so can where its operands come from: `ctx` followed
through assignments, closures, the call on the stack and the `go` statement that started the
goroutine, to `context.Background()` or to a `WithCancel` whose cancel is never called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from grprof.detect.source._files import (
    _GoFile,
    _language,
    _open,
    _package_files,
    resolve_file,
)
from grprof.detect.source._syntax import (
    _args,
    _at,
    _Binding,
    _bindings,
    _call_name,
    _callee,
    _enclosing_loop,
    _endless,
    _exits,
    _frame_statement,
    _func_of,
    _ident,
    _inside,
    _is_ticker,
    _last_binding,
    _local_chan,
    _node_at,
    _outer_decl,
    _param_index,
    _params,
    _range_clause,
    _received,
    _senders,
    _statement_at,
    _text,
    _unparen,
    _uses,
    _walk,
    is_timer_channel,
)
from grprof.model import Frame, Group

if TYPE_CHECKING:
    from tree_sitter import Node

WAIT_CATEGORIES: dict[str, str] = {
    "afterfunc-callback": "timer",
    "ctx-never-cancelled": "context",
    "ctx-cancel-not-called": "context",
    "ctx-done": "context",
    "ticker": "timer",
    "timer-loop": "timer",
    "chan-send": "channel",
    "chan-receive": "channel",
    "chan-range": "channel",
    "select": "channel",
}
"""Wait kinds (`SourceWait.kind`) and the finding category each one means."""

_CANCEL_FUNCS = frozenset(
    {
        "context.WithCancel",
        "context.WithCancelCause",
        "context.WithTimeout",
        "context.WithTimeoutCause",
        "context.WithDeadline",
        "context.WithDeadlineCause",
        "signal.NotifyContext",
    }
)
_NEVER_ENDS = frozenset({"context.Background", "context.TODO", "context.WithoutCancel"})
_VALUE_FUNCS = frozenset({"context.WithValue"})
_AFTERFUNC_ARGS = 2
"""`time.AfterFunc(d, f)`."""
_MAX_HOPS = 8


class _Made(Protocol):
    """`made` in `_wait`: a SourceWait at the blocking line."""

    def __call__(self, kind: str, detail: str = "", **facts: str) -> SourceWait: ...


@dataclass(frozen=True, slots=True)
class SourceWait:
    """What the blocking statement waits on, from the source."""

    kind: str
    """A key of WAIT_CATEGORIES."""
    category: str
    file: str
    line: int
    statement: str
    """The blocking line as written, trimmed."""
    detail: str = ""
    """What the code shows, in words: `ctx comes from context.WithCancel(context.Background())
    (at ctx.go:24), whose cancel function cancel is never called`."""
    facts: Mapping[str, str] = field(default_factory=dict)
    """Values for rule placeholders: ctx, ctx_origin, cancel, cancel_at, ticker, ticker_at,
    channel, channel_at, chan_type, senders, senders_seen (only those the code shows)."""

    @property
    def basis(self) -> str:
        """`ctx.go:16 <-ctx.Done(): ctx comes from ...`: the line and what it shows."""
        return f"{self.file}:{self.line} `{self.statement}`" + (f": {self.detail}" if self.detail else "")


def wait_at(source_dir: Path, group: Group) -> SourceWait | None:
    """What `group`'s goroutines wait on, read at their blocking statement under `source_dir`.

    None when the site is not in the source, or its statement is no wait grprof knows (a
    mutex, a read, a call into a library). Never raises.
    """
    site = group.site
    if site is None or site.line <= 0 or _language() is None:
        return None
    try:
        return _wait(Path(source_dir), group, site)
    except Exception:
        # Reading someone's source tree is best effort: whatever it holds, the analysis goes on.
        return None


@dataclass(frozen=True, slots=True)
class _Ctx:
    root: Path
    src: _GoFile
    group: Group


def _wait(root: Path, group: Group, site: Frame) -> SourceWait | None:
    src = _open(root, site)
    if src is None or site.line > len(src.lines):
        return None
    row = site.line - 1
    stmt, func = _frame_statement(src, site)
    if stmt is None or func is None or (_outer_decl(func) or func).has_error:
        return None
    ctx = _Ctx(root, src, group)
    line = src.lines[row].decode("utf-8", "replace").strip()

    def made(kind: str, detail: str = "", **facts: str) -> SourceWait:
        return SourceWait(kind, WAIT_CATEGORIES[kind], src.rel, site.line, line, detail, facts)

    callback = _afterfunc(ctx)
    if callback is not None:
        return made("afterfunc-callback", callback)
    ops = _ops(stmt)
    if ops is None:
        return None
    ctxs, tickers, timers, chans = _sort_ops(ops)
    if ctxs:
        return _ctx_wait(ctx, ctxs[0], made)
    if tickers:
        return _ticker_wait(ctx, tickers[0], stmt, func, made)
    loop = stmt if stmt.type == "for_statement" else _enclosing_loop(stmt, func)
    if timers and loop is not None:
        return made(
            "timer-loop",
            f"a loop that wakes on {_text(timers[0])} each time round"
            + (", with no way out" if _endless(loop) and not _exits(loop) else ""),
        )
    detail, facts = _chan_facts(ctx, chans)
    if stmt.type == "select_statement":
        return made("select", detail, **facts)
    if not chans:
        return None
    kind = {"send": "chan-send", "recv": "chan-receive", "range": "chan-range"}[chans[0][0]]
    return made(kind, detail, **facts)


def _sort_ops(
    ops: list[tuple[str, Node | None]],
) -> tuple[list[Node], list[Node], list[Node], list[tuple[str, Node]]]:
    """The operands waited on, by what wakes them: a context's Done, a ticker, a one-shot
    timer, or a plain channel (with its operation)."""
    ctxs: list[Node] = []
    tickers: list[Node] = []
    timers: list[Node] = []
    chans: list[tuple[str, Node]] = []
    for op, ch in ops:
        if ch is None:
            continue
        done = _done_operand(ch) if op in ("recv", "range") else None
        if done is not None:
            ctxs.append(done)
        elif op in ("recv", "range") and _is_ticker(ch):
            tickers.append(ch)
        elif op == "recv" and _is_one_shot_timer(ch):
            timers.append(ch)
        else:
            chans.append((op, ch))
    return ctxs, tickers, timers, chans


def _ops(stmt: Node) -> list[tuple[str, Node | None]] | None:
    """The channel operations a blocking statement waits in: (send|recv|range|default, channel)."""
    if stmt.type == "select_statement":
        out: list[tuple[str, Node | None]] = []
        for case in stmt.named_children:
            if case.type == "default_case":
                out.append(("default", None))
                continue
            comm = case.child_by_field_name("communication") if case.type == "communication_case" else None
            if comm is not None and comm.type == "send_statement":
                out.append(("send", _unparen(comm.child_by_field_name("channel"))))
            elif comm is not None and comm.type == "receive_statement":
                out.append(("recv", _unparen(_received(_unparen(comm.child_by_field_name("right"))))))
        return out
    clause = _range_clause(stmt)
    if clause is not None:
        return [("range", _unparen(clause.child_by_field_name("right")))]
    if stmt.type == "send_statement":
        return [("send", _unparen(stmt.child_by_field_name("channel")))]
    recv = [("recv", _unparen(_received(n))) for n in _own_nodes(stmt) if _received(n) is not None]
    return recv or None


def _own_nodes(stmt: Node) -> list[Node]:
    """The statement's own expressions: not the blocks it contains, nor func literals."""
    out, stack = [], [stmt]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(c for c in n.named_children if c.type not in ("block", "func_literal"))
    return out


# ---------------------------------------------------------------------------------------------
# Contexts


def _done_operand(ch: Node) -> Node | None:
    """`ctx` of `<-ctx.Done()`, when ctx is (or may be) a context.Context."""
    if ch.type != "call_expression" or _args(ch):
        return None
    fn = ch.child_by_field_name("function")
    if fn is None or fn.type != "selector_expression" or _text(fn.child_by_field_name("field")) != "Done":
        return None
    operand = _unparen(fn.child_by_field_name("operand"))
    if operand is None:
        return None
    name = _ident(operand)
    if name is not None:
        b = _last_binding(operand, name)
        value = None if b is None else _unparen(b.value)
        # A value of a type of the program's own (`&tomb{}`, `new(T)`, `T{}`) is no context.
        if value is not None and (
            value.type in ("composite_literal", "unary_expression") or _call_name(value) in ("new", "make")
        ):
            return None
    return operand


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a context comes from."""

    kind: str
    """never (nothing can cancel it), dropped (its cancel is discarded or never called),
    cancelled (its cancel is called or handed on somewhere), caller (a parameter or another
    context we cannot follow)."""
    text: str
    at: str = ""
    root: str = ""
    """never: the expression at the bottom of the chain, e.g. `context.Background()`."""
    cancel: str = ""
    cancel_at: str = ""
    how: str = ""
    """dropped: `is discarded (_)`, `is never called`; cancelled: `is called at x.go:3`."""
    made_by: str = ""
    """dropped, cancelled: the function that made it, `context.WithCancel`."""

    def describe(self) -> str:
        where = f" (at {self.at})" if self.at else ""
        below = f", derived from {self.root}" if self.root and self.root != self.text else ""
        return f"{self.text}{where}{below}"


def _ctx_wait(ctx: _Ctx, operand: Node, made: _Made) -> SourceWait:
    name = _text(operand)
    origin = _origin(ctx, ctx.src, operand, 0)
    facts = {"ctx": name, "ctx_origin": origin.describe()}
    if origin.kind == "never":
        return made(
            "ctx-never-cancelled",
            f"{name} comes from {origin.describe()}, which nothing can cancel",
            **facts,
        )
    if origin.kind == "dropped":
        facts |= {"cancel": origin.cancel, "cancel_at": origin.cancel_at}
        deadline = (
            ""
            if "Timeout" not in origin.text and "Deadline" not in origin.text
            else " (it ends only at its deadline)"
        )
        return made(
            "ctx-cancel-not-called",
            f"{name} comes from {origin.describe()}, whose cancel function {origin.how}{deadline}",
            **facts,
        )
    if origin.kind == "cancelled":
        facts |= {"cancel": origin.cancel, "cancel_at": origin.cancel_at}
        return made(
            "ctx-done",
            f"{name} comes from {origin.describe()}; its cancel function {origin.how}, and has not run",
            **facts,
        )
    return made("ctx-done", f"{name} comes from {origin.describe()}", **facts)


def _origin(ctx: _Ctx, src: _GoFile, expr: Node | None, hops: int) -> _Origin:
    """Where the context `expr` comes from, followed through assignments, closures, the call
    on the goroutine's stack and the `go` statement that started it."""
    expr = _unparen(expr)
    if expr is None:
        return _Origin("caller", "?")
    text = _text(expr)
    if hops > _MAX_HOPS:
        return _Origin("caller", text, _at(src, expr))
    if expr.type == "identifier":
        b = _last_binding(expr, text)
        if b is not None:
            return _from_binding(ctx, src, b, hops)
        func = _param_owner(expr, text)
        if func is None:
            return _Origin("caller", text, _at(src, expr))
        arg = _argument(ctx, src, func, text)
        if arg is None:
            return _Origin("caller", f"{text}, a parameter of {_func_label(func)}", _at(src, func))
        return _origin(ctx, arg[0], arg[1], hops + 1)
    fn = _call_name(expr)
    if fn in _NEVER_ENDS:
        return _Origin("never", text, _at(src, expr), root=text)
    if fn in _VALUE_FUNCS:
        args = _args(expr)
        parent = _origin(ctx, src, args[0], hops + 1) if args else _Origin("caller", "?")
        return replace(parent, text=text, at=_at(src, expr))
    return _Origin("caller", text, _at(src, expr))


def _from_binding(ctx: _Ctx, src: _GoFile, b: _Binding, hops: int) -> _Origin:
    value = _unparen(b.value)
    if value is None:
        return _Origin("caller", b.names[b.index], _at(src, b.statement))
    fn = _call_name(value) or ""
    at = _at(src, b.statement)
    if fn not in _CANCEL_FUNCS:
        o = _origin(ctx, src, value, hops + 1)
        return o if o.at else replace(o, at=at)
    text = _text(value)
    args = _args(value)
    parent = _origin(ctx, src, args[0], hops + 1) if args else _Origin("caller", "?")
    root = parent.root if parent.kind == "never" else ""
    if b.index != 0:
        return _Origin("caller", text, at)
    cancel = b.names[1] if len(b.names) > 1 else "_"
    if cancel == "_":
        return _Origin("dropped", text, at, root, "_", at, "is discarded (_)", fn)
    uses = _cancel_uses(b)
    if uses is None:
        return _Origin("caller", text, at, root)
    if not uses:
        return _Origin("dropped", text, at, root, cancel, at, f"{cancel} is never called", fn)
    u = uses[0]
    verb = "is deferred" if _in_defer(u) else "is called" if _is_called(u) else "is handed on"
    return _Origin("cancelled", text, at, root, cancel, at, f"{cancel} {verb} at {_at(src, u)}", fn)


def _cancel_uses(b: _Binding) -> list[Node] | None:
    """Uses of a cancel function that call it or hand it on; None when a closure shadows it.

    `_ = cancel` (what silences the compiler's "declared and not used") is no use.
    """
    scope = _func_of(b.statement)
    name = b.names[1]
    uses = None if scope is None else _uses(scope, name)
    if uses is None:
        return None
    left = b.statement.child_by_field_name("left")
    return [u for u in uses if not (left is not None and _inside(u, left)) and not _blank_assigned(u)]


def _blank_assigned(ident: Node) -> bool:
    rhs = ident.parent
    stmt = None if rhs is None else rhs.parent
    if rhs is None or stmt is None or stmt.type != "assignment_statement":
        return False
    return stmt.child_by_field_name("right") == rhs and _text(stmt.child_by_field_name("left")) == "_"


def _is_called(ident: Node) -> bool:
    p = ident.parent
    return p is not None and p.type == "call_expression" and p.child_by_field_name("function") == ident


def _in_defer(ident: Node) -> bool:
    n = ident.parent
    while n is not None and n.type not in ("block", "func_literal", "function_declaration"):
        if n.type == "defer_statement":
            return True
        n = n.parent
    return False


def _param_owner(use: Node, name: str) -> Node | None:
    """The function around `use` that has `name` as a parameter (and no local of that name)."""
    f = _func_of(use)
    while f is not None:
        if name in _params(f):
            return f
        if any(b.declares for b in _bindings(f, name)):
            return None
        f = _func_of(f)
    return None


def _func_label(func: Node) -> str:
    if func.type == "func_literal":
        outer = _outer_decl(func)
        return "a func literal" + (f" in {_text(outer.child_by_field_name('name'))}" if outer else "")
    return _text(func.child_by_field_name("name"))


def _argument(ctx: _Ctx, src: _GoFile, func: Node, name: str) -> tuple[_GoFile, Node] | None:
    """The argument the caller passed for parameter `name` of `func`."""
    pos = _param_index(func, name)
    if pos is None:
        return None
    if func.type == "func_literal":
        # `go func(ctx context.Context) { ... }(ctx)`, or `func(ctx ...) { ... }(ctx)`
        call = func.parent
        if call is None or call.type != "call_expression" or call.child_by_field_name("function") != func:
            return None
        args = _args(call)
        return (src, args[pos[0]]) if pos[0] < len(args) else None
    found = _call_site(ctx, src, func)
    if found is None:
        return None
    call_src, call = found
    args = _args(call)
    return (call_src, args[pos[0]]) if pos[0] < len(args) else None


def _call_site(ctx: _Ctx, src: _GoFile, decl: Node) -> tuple[_GoFile, Node] | None:
    """The call of a declared function: on the goroutine's stack (the frame outside it), or
    the `go` statement that started the goroutine when it is the goroutine's entry."""
    name = _text(decl.child_by_field_name("name"))
    frames = ctx.group.frames
    j = next(
        (
            i
            for i, f in enumerate(frames)
            if not f.is_stdlib and f.func_name.name == name and resolve_file(ctx.root, f) == src.path
        ),
        None,
    )
    if j is None:
        return None
    if j + 1 < len(frames):
        caller = frames[j + 1]
        if caller.is_stdlib:
            return None  # called by net/http or another library: not the program's call
        csrc = _open(ctx.root, caller)
        if csrc is None or not 0 < caller.line <= len(csrc.lines):
            return None
        stmt = _statement_at(csrc, caller.line - 1) or _node_at(csrc, caller.line - 1)
        call = next(
            (
                n
                for n in _walk(stmt, into_funcs=False)
                if n.type == "call_expression" and _callee(n) == name and n.start_point.row <= caller.line - 1
            ),
            None,
        )
        return None if call is None else (csrc, call)
    if ctx.group.frames_elided:
        return None
    return _go_call(ctx, frames[j], name)


def _go_call(ctx: _Ctx, entry: Frame, name: str) -> tuple[_GoFile, Node] | None:
    """The call of the `go` statement that started the goroutine: at `created by` (debug=2), or
    the package's only `go name(...)` (debug=0/1 do not record the creator)."""
    created = ctx.group.created_by
    if created is not None:
        csrc = None if created.is_stdlib else _open(ctx.root, created)
        if csrc is None or not 0 < created.line <= len(csrc.lines):
            return None
        row = created.line - 1
        stmt = _statement_at(csrc, row)
        gos = [n for n in _walk(stmt) if n.type == "go_statement" and n.start_point.row == row]
        calls = [_go_call_of(g) for g in gos]
        hits = [c for c in calls if c is not None and _callee(c) == name]
        return (csrc, hits[0]) if len(hits) == 1 else None
    found = [
        (s, c)
        for s in _package_files(ctx.root, entry)
        if name.encode() in s.data
        for g in _walk(s.root)
        if g.type == "go_statement"
        for c in [_go_call_of(g)]
        if c is not None and _callee(c) == name
    ]
    return found[0] if len(found) == 1 else None


def _go_call_of(go: Node) -> Node | None:
    return next((c for c in go.named_children if c.type == "call_expression"), None)


# ---------------------------------------------------------------------------------------------
# Timers


def _is_one_shot_timer(ch: Node) -> bool:
    """`time.After(d)`, a Timer's `C` (`time.NewTimer(d).C`, `t.C`), or a variable holding one."""
    return is_timer_channel(ch, "time.After", "time.NewTimer")


def _ticker_wait(ctx: _Ctx, tick: Node, stmt: Node, func: Node, made: _Made) -> SourceWait:
    loop = stmt if stmt.type == "for_statement" else _enclosing_loop(stmt, func)
    endless = loop is not None and _endless(loop) and not _exits(loop)
    way_out = ", in a loop with no way out" if endless else ""
    if _call_name(tick) == "time.Tick" or _ident(tick) is not None:
        return made("ticker", f"a time.Tick channel, which cannot be stopped{way_out}", ticker="t")
    operand = tick.child_by_field_name("operand")
    if operand is not None and operand.type == "selector_expression":  # a struct's ticker: r.t.C
        held = _text(operand)
        stops = any(_stops(n) for n in _walk(func) if n.type == "selector_expression" and _text(n) == held)
        state = "stopped where the loop returns" if stops else "never stopped"
        return made("ticker", f"ticker {held} (a time.Ticker field), {state}{way_out}", ticker=held)
    name = _ident(operand) or "t"
    b = None if operand is None else _last_binding(operand, name)
    at = "" if b is None else _at(ctx.src, b.statement)
    scope = None if b is None else _func_of(b.statement)
    uses = None if scope is None else _uses(scope, name)
    stopped = uses is not None and any(_stops(u) for u in uses)
    state = "stopped when the function returns" if stopped else "never stopped"
    return made(
        "ticker",
        f"ticker {name} (time.NewTicker at {at or '?'}), {state}{way_out}",
        ticker=name,
        **({"ticker_at": at} if at else {}),
    )


def _stops(ident: Node) -> bool:
    p = ident.parent
    return (
        p is not None and p.type == "selector_expression" and _text(p.child_by_field_name("field")) == "Stop"
    )


# ---------------------------------------------------------------------------------------------
# time.AfterFunc callbacks


def _afterfunc(ctx: _Ctx) -> str | None:
    """`the callback of time.AfterFunc at x.go:40` when the goroutine runs one, else None."""
    group = ctx.group
    created = group.created_by
    if created is not None and created.function != "time.goFunc":
        return None  # started by a go statement
    from_stack = "created by time.goFunc" if created is not None else None
    if not group.frames or group.frames_elided:
        return from_stack
    entry = group.frames[-1]
    src = _open(ctx.root, entry)
    if src is None or not 0 < entry.line <= len(src.lines):
        return from_stack
    func = _frame_statement(src, entry)[1]
    if func is None:
        return from_stack
    if func.type == "func_literal":
        args = func.parent
        call = None if args is None else args.parent
        if args is not None and args.type == "argument_list" and _call_name(call) == "time.AfterFunc":
            assert call is not None
            return f"the callback of time.AfterFunc at {_at(src, call)}"
        return from_stack
    name = entry.func_name.name
    if name is None:
        return from_stack
    # Only files that mention both are walked: a package can be big, and most have neither.
    files = [s for s in _package_files(ctx.root, entry) if name.encode() in s.data]
    timers = [
        (s, n)
        for s in files
        if b"AfterFunc" in s.data
        for n in _walk(s.root)
        if n.type == "call_expression"
        and _call_name(n) == "time.AfterFunc"
        and len(_args(n)) == _AFTERFUNC_ARGS
        and _text(_args(n)[1]).rsplit(".", 1)[-1] == name
    ]
    started = bool(timers) and any(
        g.type == "go_statement" and _callee(_go_call_of(g)) == name for s in files for g in _walk(s.root)
    )
    if timers and not started:
        s, n = timers[0]
        return f"{name} runs as the callback of time.AfterFunc at {_at(s, n)}"
    return from_stack


# ---------------------------------------------------------------------------------------------
# Plain channels


def _chan_facts(ctx: _Ctx, chans: list[tuple[str, Node]]) -> tuple[str, dict[str, str]]:
    """Detail and placeholder facts of a plain channel wait: the channel, where it is made,
    and for a send, how many goroutines per call send on it."""
    if not chans:
        return "", {}
    op, ch = chans[0]
    name = _ident(ch)
    facts = {"channel": name or _text(ch)}
    if name is None:
        return "", facts
    local = _local_chan(ch, name)
    if local is None:
        return "", facts
    facts["channel_at"] = _at(ctx.src, local.make)
    make_args = _args(local.make)
    if make_args:
        facts["chan_type"] = _text(make_args[0])
    detail = f"{name} is made at {facts['channel_at']}"
    if op == "send":
        senders = _senders(ctx.src, local)
        if senders is not None:
            facts |= {"senders": str(senders[0]), "senders_seen": senders[1]}
            n = senders[0]
            detail += f"; {n} goroutine{'s send' if n != 1 else ' sends'} on it per call ({senders[1]})"
    return detail, facts


__all__ = ["WAIT_CATEGORIES", "SourceWait", "wait_at"]
