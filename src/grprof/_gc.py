"""Garbage-collector thresholds for grprof's heaps of long-lived parsed stacks.

With CPython's default thresholds (700, 10, 10) the cyclic collector rescans the heap every
few hundred allocations: it took a fifth of `serve`'s CPU at 1,000 targets, and 0.4-0.6 s of
`analyze` on a dump with 20,000 distinct stacks (docs/performance.md). Parsed frames, stacks
and groups form no cycles worth collecting early.
"""

from __future__ import annotations

import atexit
import gc

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
    if freeze:
        gc.freeze()
