"""The report every output renders: snapshots, their groups after filtering, stack trees.

Text, JSON and HTML all render a `Report`, so they always agree.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grprof.aggregate import Similarity, StackNode, stack_tree
from grprof.model import Group, Snapshot

if TYPE_CHECKING:
    from grprof.detect.detector import Detection
    from grprof.detect.model import Finding


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """Which groups a report shows: `include`/`exclude` match any frame's function."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    min_count: int = 1

    def keep(self, g: Group) -> bool:
        if g.count < self.min_count:
            return False
        names = [f.function for f in g.frames]
        if g.created_by is not None:
            names.append(g.created_by.function)
        if self.include is not None and not any(self.include.search(n) for n in names):
            return False
        return not (self.exclude is not None and any(self.exclude.search(n) for n in names))


@dataclass(slots=True)
class SnapshotReport:
    snapshot: Snapshot
    groups: list[Group]
    """Groups that passed the filter, largest first."""
    states: dict[str, int]
    """Goroutines by state over the whole snapshot (before filtering)."""
    hidden_groups: int = 0
    hidden_goroutines: int = 0
    _tree: StackNode | None = field(default=None, repr=False, compare=False)

    @property
    def tree(self) -> StackNode:
        """Stack tree of the shown groups, built when first read: only the flame graph (the
        HTML report) reads it, and on 20,000 distinct stacks it takes some 60 ms."""
        if self._tree is None:
            self._tree = stack_tree(self.groups)
        return self._tree


@dataclass(slots=True)
class Report:
    snapshots: list[SnapshotReport]
    similarity: Similarity = "default"
    filter: GroupFilter = field(default_factory=GroupFilter)
    detection: Detection | None = None

    @property
    def findings(self) -> list[Finding]:
        """Leak findings, most certain and largest first (empty when detection did not run)."""
        return self.detection.findings if self.detection else []


def build_report(
    snapshots: list[Snapshot],
    similarity: Similarity = "default",
    flt: GroupFilter | None = None,
    detection: Detection | None = None,
) -> Report:
    flt = flt or GroupFilter()
    out = []
    for s in snapshots:
        groups = s.groups(similarity)
        states: Counter[str] = Counter()
        for g in groups:
            states.update(g.states)
        shown = [g for g in groups if flt.keep(g)]
        out.append(
            SnapshotReport(
                snapshot=s,
                groups=shown,
                states=dict(sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))),
                hidden_groups=len(groups) - len(shown),
                hidden_goroutines=sum(g.count for g in groups) - sum(g.count for g in shown),
            )
        )
    return Report(out, similarity, flt, detection)
