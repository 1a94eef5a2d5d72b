"""tests/goapps/liars: goroutines whose function names lie about what they wait on.

`record()` builds the program with the machine's Go (tests/gobuild.py), runs it, and returns
its real debug=0, debug=1 and debug=2 dumps, taken over HTTP once every goroutine is parked.
`TRUTH` says what each group waits on: the category from the stack alone (what the frames
and wait states can honestly show) and with the source (`--source tests/goapps/liars`).
"""

from __future__ import annotations

import dataclasses
import functools
import re

from gobuild import GOAPPS, build_goapp, run_goapp

import grprof
from grprof.model import Frame, Group, Snapshot

LIARS = GOAPPS / "liars"
FORMATS = ("debug=0", "debug=1", "debug=2")

# Site function -> (category from the stack alone, category and rule with the source). A
# category per format where the formats differ: debug=2 names a time.AfterFunc callback's
# creator (time.goFunc), debug=0/1 record no creator.
TRUTH: dict[str, tuple[dict[str, str], tuple[str, str]]] = {
    # context waits: `<-ctx.Done()` parks in the runtime's channel frames, like any receive
    "main.pumpChannel": ({"*": "channel"}, ("context", "context-cancel-not-called")),
    "main.sendBatch": ({"*": "channel"}, ("context", "context-cancel-not-called")),
    # Done() of a context.Background() value is nil: the nil-channel state says context
    "main.relayChannel.func1": ({"*": "context"}, ("context", "context-never-cancelled")),
    # plain channels, whatever the names say
    "main.waitCtx": ({"*": "channel"}, ("channel", "chan-receive-no-sender")),
    "main.tickLoop": ({"*": "channel"}, ("channel", "")),
    "main.fanOut.func1": ({"*": "channel"}, ("channel", "chan-send-no-receiver")),
    "main.firstOf.func1": ({"*": "channel"}, ("channel", "chan-send-no-receiver")),
    # a nil channel field: the state guesses context, the source shows a plain channel
    "main.awaitCancel": ({"*": "context"}, ("channel", "chan-receive-nil")),
    # timers: a ticker's and time.After's channels are channels to the runtime
    "main.handleRequest": ({"*": "channel"}, ("timer", "timer-ticker-loop")),
    "main.watchContext": ({"*": "channel"}, ("timer", "timer-after-loop")),
    # an AfterFunc callback: `created by time.goFunc` in debug=2 only
    "main.consume": (
        {"debug=2": "timer", "debug=0": "channel", "debug=1": "channel"},
        ("timer", "timer-afterfunc-blocked"),
    ),
}


@functools.cache
def record() -> dict[str, Snapshot]:
    """The program's dumps in every format (built and run once per test process)."""
    with run_goapp(build_goapp("liars")) as app:
        return {f: grprof.load(f"{app.base_url}/debug/pprof/goroutine?{f}") for f in FORMATS}


def group_at(snap: Snapshot, function: str) -> Group:
    found = [g for g in snap.groups() if g.site is not None and g.site.function == function]
    assert found, f"{snap.format}: no group at {function}"
    return max(found, key=lambda g: g.count)


def renamed(g: Group) -> Group:
    """The group with every function of the program renamed to a name that says nothing."""
    names: dict[str, str] = {}

    def rename(f: Frame | None) -> Frame | None:
        if f is None or not f.function.startswith("main."):
            return f
        head = re.match(r"main\.([A-Za-z_]\w*)", f.function)
        if head is None:
            return f
        new = names.setdefault(head.group(1), f"f{len(names)}")
        return dataclasses.replace(f, function=f"main.{new}{f.function[head.end() :]}")

    frames = tuple(rename(f) or f for f in g.frames)
    return dataclasses.replace(g, frames=frames, created_by=rename(g.created_by))
