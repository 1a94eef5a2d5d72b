"""The `unbuffered-send-after-timeout` leak pattern (category `channel`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _buffer,
    _gives_up,
    _ident,
    _inside,
    _is_go_literal,
    _local_chan,
    _select_of_receive,
    _senders,
    _Site,
)
from grprof.detect.source.patterns._fix import buffer_suggestion


@pattern("unbuffered-send-after-timeout", "channel", order=10)
def check(site: _Site) -> tuple[str, str] | None:
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
    return "unbuffered-send-after-timeout", buffer_suggestion(site.src, ch, stmt, n, why)
