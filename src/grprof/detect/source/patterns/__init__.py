"""The leak patterns the source check confirms, one module each, whose `check` is registered
by `@pattern(name, category, order)` (`grprof.detect.source._registry`): a new pattern is a
new module here and its name below (and its `tests/goapps/srcpatterns` case, docs/source.md).
"""

from grprof.detect.source.patterns import (
    ctx_background,
    fan_out,
    range_never_closed,
    receive_without_sender,
    ticker,
    unbuffered_send,
)

__all__ = [
    "ctx_background",
    "fan_out",
    "range_never_closed",
    "receive_without_sender",
    "ticker",
    "unbuffered_send",
]
