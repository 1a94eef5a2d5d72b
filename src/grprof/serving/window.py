"""A target's detection window: its recent snapshots and leak profiles, sharing parsed stacks.

The same for `grprof serve` (one per target, `grprof.serving.pipeline`) and `grprof watch`
(its one target): the last `window` goroutine snapshots of any format (40 by default,
`detect.yaml`) and the last 3 goroutineleak profiles, which is what the detector judges.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from grprof.detect.series import carry_over
from grprof.detect.signals import default_settings
from grprof.detect.sla import SLAState
from grprof.model import Snapshot
from grprof.table import SignatureCache, Stack

KEPT_LEAK_PROFILES = 3

_STACKS: dict[Stack, Stack] = {}
_MAX_STACKS = 500_000
# The shared stacks' signatures: a stack seen in an earlier scrape is not hashed again when
# the new snapshot is grouped. Bounded like `_STACKS`, whose stacks it mostly holds.
_SIGNATURES = SignatureCache(_MAX_STACKS)


_SHARED_BY_ID: dict[int, Stack] = {}
"""Id -> stack, for the shared stacks themselves: the parsers give each distinct stack of a
process one object (debug=0 and debug=1 through the native object cache), so most stacks of a
scrape are shared ones already, found by identity without hashing their frames (a dataclass
hash, Python code per frame). Each entry holds its stack, so the id is not reused while the
entry lives; both maps start over together."""


def _shared_stack(s: Stack) -> Stack:
    if _SHARED_BY_ID.get(id(s)) is s:
        return s
    if len(_STACKS) >= _MAX_STACKS:  # sharing restarts; nothing is lost
        _STACKS.clear()
        _SHARED_BY_ID.clear()
    shared = _STACKS.setdefault(s, s)
    if shared is s:
        _SHARED_BY_ID[id(s)] = s
    return shared


@dataclass
class Window:
    """A target's recent snapshots for the detector, sharing one set of parsed stacks."""

    snapshots: collections.deque[Snapshot]
    leak_profiles: collections.deque[Snapshot] = field(
        default_factory=lambda: collections.deque(maxlen=KEPT_LEAK_PROFILES)
    )
    sla: SLAState | None = None
    """`grprof serve`'s cache of the target's SLA state (`sla_at`: loop time it was evaluated)."""
    sla_at: float = 0.0

    @classmethod
    def empty(cls, size: int | None = None) -> Window:
        """A window of `size` goroutine snapshots (default: the detector's `window`)."""
        return cls(collections.deque(maxlen=default_settings().window if size is None else size))

    def add(self, snap: Snapshot) -> None:
        """A goroutine snapshot, or a goroutineleak profile (by the profile's own header)."""
        # A service shows the same stacks scrape after scrape, and its replicas show the same
        # stacks too: keep one copy of each, for every window of the process.
        snap.share_stacks(_shared_stack, _SIGNATURES)
        kept = self.leak_profiles if snap.profile == "goroutineleak" else self.snapshots
        # ... and its groups and their detection data equal the last scrape's of that format
        # mostly: keep one copy of those too (`carry_over`).
        earlier = next((s for s in reversed(kept) if s.format == snap.format), None)
        if earlier is not None:
            carry_over(earlier, snap)
        kept.append(snap)

    def all(self) -> list[Snapshot]:
        return [*self.snapshots, *self.leak_profiles]


__all__ = ["KEPT_LEAK_PROFILES", "Window"]
