"""The `ticker-never-stopped` leak pattern (category `timer`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _at,
    _enclosing_loop,
    _endless,
    _exits,
    _ident,
    _in_main,
    _is_ticker,
    _last_binding,
    _lives_with_process,
    _owner,
    _Site,
    _ticker_channels,
    _ticker_use_ok,
    _uses,
)


@pattern("ticker-never-stopped", "timer", order=60)
def check(site: _Site) -> tuple[str, str] | None:
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
