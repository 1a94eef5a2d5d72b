"""The `receive-without-sender` leak pattern (category `channel`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _ident,
    _in_main,
    _lives_with_process,
    _local_chan,
    _plain_receive,
    _Site,
)


@pattern("receive-without-sender", "channel", order=30)
def check(site: _Site) -> tuple[str, str] | None:
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
