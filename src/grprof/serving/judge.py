"""One detection pass over a target's window: the one way `grprof serve` (after each scrape,
`grprof.serving.pipeline`) and `grprof watch` (after each poll) judge a window.

A live target's series is thin only while it starts, so a window never reports `inconclusive`
findings; besides the detection, a pass yields what the API and `/metrics` show of the latest
snapshot (its largest groups, its goroutines by wait class) and the target's growth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from grprof.detect.detector import Detection, Options, detect
from grprof.detect.signals import theil_sen
from grprof.model import Group, Snapshot
from grprof.server.waits import blocked_by_class

TOP_GROUPS = 10


@dataclass
class Judgement:
    """What one detection pass over a target's window yields for the API and /metrics."""

    detection: Detection
    top_groups: list[Group]
    blocked: dict[str, int]
    growth_per_minute: float | None


def judge_window(snaps: Sequence[Snapshot], latest: Snapshot | None, opts: Options) -> Judgement:
    """Detection over `snaps` (a window's `all()`: no `inconclusive` findings, whatever `opts`
    says) plus `latest`'s summaries. CPU work: `serve` runs it off the event loop, where
    aggregating a snapshot would stall every other target's scrape."""
    d = detect(snaps, replace(opts, inconclusive=False) if opts.inconclusive else opts)
    groups = latest.groups() if latest is not None else []
    times, counts = d.series.times, [s.total for s in d.series.snapshots]
    growth = theil_sen([t / 60 for t in times], counts) if len(counts) > 1 else None
    return Judgement(d, groups[:TOP_GROUPS], blocked_by_class(groups), growth)


__all__ = ["TOP_GROUPS", "Judgement", "judge_window"]
