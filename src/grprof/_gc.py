"""The cyclic garbage collector around grprof's heaps of long-lived parsed stacks: its
thresholds (`tune`) and the sections that pause it (`gc_paused`).

With CPython's default thresholds (700, 10, 10) the cyclic collector rescans the heap every
few hundred allocations: it took a fifth of `serve`'s CPU at 1,000 targets, and 0.4-0.6 s of
`analyze` on a dump with 20,000 distinct stacks (docs/performance.md). Parsed frames, stacks,
groups and detection's tracks form no cycles worth collecting early.
"""

from __future__ import annotations

import atexit
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 100)


def tune(freeze: bool = False) -> None:
    """Collect the young generation less often, and skip the interpreter's last collection at
    exit (`atexit`: handlers run before it): with a big dump's stacks and groups still
    alive it walked them all once more, 50 ms of `grprof analyze` on 20,000 distinct stacks,
    to free nothing the process's end does not. `freeze`: also leave what exists now
    (modules, rules, config) out of every later collection (a daemon at start-up)."""
    gc.set_threshold(*THRESHOLDS)
    atexit.unregister(gc.freeze)  # once, however often tuned
    atexit.register(gc.freeze)
    # A command that runs once promotes what paused sections made (`gc_paused`); a daemon,
    # which froze its start-up objects, must not unfreeze them.
    _GCPause.promote = not freeze
    if freeze:
        gc.freeze()


# Sections that build many objects at once pause the cyclic collector (see `gc_paused`).
PAUSE_GC_AT = 2000


class _GCPause:
    lock = threading.Lock()
    depth = 0
    """Sections running now, in any thread."""
    was_enabled = False
    """Whether the collector ran when the first of them began."""
    promote = False
    """Whether what they made goes to the oldest generation when the last ends: set by `tune`
    for a command that runs once (`analyze`, `diff`), never for a library's caller (who may
    have frozen objects of their own) or a daemon (which froze its start-up objects)."""


@contextmanager
def gc_paused(objects: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while building about `objects` objects that form no
    cycles, when they are many (`PAUSE_GC_AT`).

    With the default thresholds, building the 100,000 nodes of a stack tree next to a large
    heap set off full collections that took twice as long as the building itself. Nothing is
    lost: garbage made meanwhile is collected after (by a later full collection where `tune`
    has what the sections made promoted to the oldest generation). Sections in several threads
    nest: the collector restarts when the last one ends, if it was running when the first
    began."""
    if objects < PAUSE_GC_AT:
        yield
        return
    p = _GCPause
    with p.lock:
        if p.depth == 0:
            p.was_enabled = gc.isenabled()
            gc.disable()
        p.depth += 1
    try:
        yield
    finally:
        with p.lock:
            p.depth -= 1
            if p.depth == 0 and p.was_enabled:
                if p.promote:
                    # What the section made (a snapshot's stacks and groups, a detection's
                    # tracks) goes straight to the oldest generation, as if it had survived
                    # the young collections: the first one after the pause would otherwise
                    # walk all of it at once (50 ms after detecting 20,000 groups) to find
                    # it alive. (Not `gc.get_freeze_count()` to see whether anything is
                    # frozen: it walks every frozen object, a millisecond in a daemon.)
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()
