"""The `ctx-background` leak pattern (category `context`): see `check`."""

from __future__ import annotations

from grprof.detect.source._registry import pattern
from grprof.detect.source._syntax import (
    _in_main,
    _lives_with_process,
    _plain_receive,
    _Site,
    _text,
    _unparen,
)
from grprof.detect.source._waits import _Ctx, _done_operand, _origin

_WITH_CANCEL = frozenset({"context.WithCancel", "context.WithCancelCause"})


@pattern("ctx-background", "context", order=50)
def check(site: _Site) -> tuple[str, str] | None:
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
