"""The `fan-out-first-wins` leak pattern (category `channel`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _buffer,
    _enclosing_loop,
    _func_of,
    _ident,
    _inside,
    _is_go_literal,
    _local_chan,
    _senders,
    _Site,
)
from grprof.detect.source.patterns._fix import buffer_suggestion

_SENDERS = 2
"""Senders per call that make a fan-out: the first answer wins and the rest find no buffer."""


@pattern("fan-out-first-wins", "channel", order=20)
def check(site: _Site) -> tuple[str, str] | None:
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
    return "fan-out-first-wins", buffer_suggestion(site.src, ch, stmt, n, why)
