"""The `range-never-closed` leak pattern (category `channel`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _ident,
    _in_main,
    _lives_with_process,
    _local_chan,
    _range_clause,
    _Site,
)


@pattern("range-never-closed", "channel", order=40)
def check(site: _Site) -> tuple[str, str] | None:
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
