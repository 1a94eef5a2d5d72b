"""Leak patterns: code that shows a known leak clearly enough to confirm a finding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grprof.detect.source._files import _GoFile
from grprof.detect.source._syntax import (
    _args,
    _at,
    _buffer,
    _Chan,
    _enclosing_loop,
    _endless,
    _exits,
    _func_of,
    _gives_up,
    _ident,
    _in_main,
    _inside,
    _is_go_literal,
    _is_ticker,
    _last_binding,
    _lives_with_process,
    _local_chan,
    _owner,
    _plain_receive,
    _range_clause,
    _select_of_receive,
    _senders,
    _Site,
    _text,
    _ticker_channels,
    _ticker_use_ok,
    _unparen,
    _uses,
)
from grprof.detect.source._waits import _Ctx, _done_operand, _origin

if TYPE_CHECKING:
    from tree_sitter import Node

PATTERN_CATEGORIES: dict[str, str] = {
    "unbuffered-send-after-timeout": "channel",
    "fan-out-first-wins": "channel",
    "receive-without-sender": "channel",
    "range-never-closed": "channel",
    "ctx-background": "context",
    "ticker-never-stopped": "timer",
}
PATTERNS = tuple(PATTERN_CATEGORIES)


def _match(site: _Site) -> tuple[str, str] | None:
    checks = (
        _unbuffered_send,
        _fan_out,
        _receive_without_sender,
        _range_never_closed,
        _ctx_background,
        _ticker,
    )
    for check in checks:
        found = check(site)
        if found is not None:
            return found
    return None


def _unbuffered_send(site: _Site) -> tuple[str, str] | None:
    """A handler's worker (examples/leaky): the receiver's select gave up, the send waits forever."""
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
    senders = _senders(site.src, ch)
    n = 1 if senders is None else senders[0]
    why = f"Nobody receives from {ch.name} once the select has given up, so the send blocks forever. "
    if n > 1:
        assert senders is not None
        why += f"{n} goroutines send on it per call ({senders[1]}): give it one slot each"
    else:
        why += "Give the channel room for the late value"
    return "unbuffered-send-after-timeout", _buffer_suggestion(site.src, ch, stmt, n, why)


def _buffer_suggestion(src: _GoFile, ch: _Chan, send: Node, size: int, why: str) -> str:
    """`why`, the `make` line rewritten with a buffer of `size`, and a send with a way out."""
    make = ch.make
    row = make.start_point.row
    line_start = make.start_byte - make.start_point.column
    line_end = line_start + len(src.lines[row])
    chan_type = _text(_args(make)[0])
    fixed = f"make({chan_type}, {size})"
    if make.end_point.row == row:
        before = src.data[line_start : make.start_byte].decode("utf-8", "replace")
        line = (before + fixed + src.data[make.end_byte : line_end].decode("utf-8", "replace")).strip()
    else:
        line = f"{ch.name} := {fixed}"
    return (
        f"{why}:\n"
        f"    {src.rel}:{row + 1}: {line.rstrip()}\n"
        f"or send with a way out:\n"
        f"    select {{\n    case {_text(send)}:\n"
        f"    case <-ctx.Done(): // or default: to drop the value\n    }}"
    )


def _fan_out(site: _Site) -> tuple[str, str] | None:
    """Several goroutines per call send one value each on a channel with too small a buffer,
    and the caller receives fewer values than they send (the first answer wins): the rest
    block forever."""
    stmt, lit = site.stmt, site.func
    parent = stmt.parent
    if stmt.type != "send_statement" or (parent is not None and parent.type == "communication_case"):
        return None
    name = _ident(stmt.child_by_field_name("channel"))
    if name is None or not _is_go_literal(lit):
        return None
    ch = _local_chan(stmt, name)
    size = None if ch is None else _buffer(ch.make)
    if ch is None or size is None or ch.owner == lit or not _inside(lit, ch.owner):
        return None
    if ch.roles.keys() - {"send", "recv", "len"}:
        return None  # ranged over, closed, or handed on: someone else may still receive
    senders = _senders(site.src, ch)
    if senders is None or senders[0] < _SENDERS:
        return None
    sends = ch.roles.get("send", [])
    for go_lit in {_func_of(s) for s in sends}:
        own = [s for s in sends if _func_of(s) == go_lit]
        if go_lit is None or not _is_go_literal(go_lit) or len(own) != 1 or _enclosing_loop(own[0], go_lit):
            return None  # one value per goroutine, or the count means nothing
    receives = [r for r in ch.roles.get("recv", []) if not _inside(r, lit)]
    if any(_enclosing_loop(r, ch.owner) is not None for r in receives):
        return None  # a receive in a loop may take every value
    n = senders[0]
    if len(receives) + size >= n:
        return None
    r = len(receives)
    why = (
        f"{n} goroutines send on {ch.name} per call ({senders[1]}), but the caller takes {r} "
        f"value{'s' if r != 1 else ''} and the buffer holds {size}: {n - r - size} of them block "
        f"forever. Give it one slot per sender"
    )
    return "fan-out-first-wins", _buffer_suggestion(site.src, ch, stmt, n, why)


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


def _ctx_background(site: _Site) -> tuple[str, str] | None:
    """`<-ctx.Done()` on a context that can never be cancelled: from context.Background() or
    TODO() (through WithValue), or a WithCancel of one whose cancel is discarded or never
    called. `ctx` is followed like the wait check follows it (assignments, closures, the call
    on the stack, the `go` statement)."""
    recv = _unparen(_plain_receive(site.stmt))
    ctx = None if recv is None else _done_operand(recv)
    if ctx is None:
        return None
    origin = _origin(_Ctx(site.root, site.src, site.group), site.src, ctx, 0)
    forever = origin.kind == "never" or (
        origin.kind == "dropped" and bool(origin.root) and origin.made_by in _WITH_CANCEL
    )
    if not forever or _in_main(site.func) or _lives_with_process(site):
        return None
    name = _text(ctx)
    if origin.kind == "never":
        return "ctx-background", (
            f"{name} comes from {origin.describe()}: nothing can cancel it, so <-{name}.Done() "
            f"waits forever. Derive it from the caller's context (the request's r.Context()), or "
            f"make it cancellable and cancel it when the work ends:\n"
            f"    {name}, cancel := context.WithCancel(...)\n    defer cancel()"
        )
    cancel = origin.cancel if origin.cancel != "_" else "cancel"
    return "ctx-background", (
        f"{name} comes from {origin.describe()}, whose cancel function {origin.how}, and its "
        f"parent never ends, so <-{name}.Done() waits forever. Keep the cancel function and call "
        f"it when the work ends ({origin.cancel_at}):\n"
        f"    {name}, {cancel} := {origin.made_by}(...)\n    defer {cancel}()"
    )


_WITH_CANCEL = frozenset({"context.WithCancel", "context.WithCancelCause"})
_SENDERS = 2
"""Senders per call that make a fan-out: the first answer wins and the rest find no buffer."""


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
    made = ""
    if name is not None:
        b = _last_binding(tick, name)
        made = "" if b is None else f" ({t}, made at {_at(site.src, b.statement)})"
    return "ticker-never-stopped", (
        f"This loop waits on a ticker{made} forever: nothing stops the ticker and nothing leaves the loop, "
        f"so every goroutine started here runs until the process exits. Stop it and give it a way out:\n"
        f"    defer {t}.Stop()\n    for {{\n        select {{\n        case <-{t}.C:\n"
        f"            ...\n        case <-ctx.Done():\n            return\n        }}\n    }}"
    )
