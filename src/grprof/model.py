"""The domain model: a `Snapshot` (one goroutine dump or profile) and, re-exported from the
layers below it, frames and goroutines (`grprof.frames`) and groups (`grprof.aggregate`).

A `Snapshot` keeps its goroutines in a columnar `GoroutineTable` (one row per
goroutine, or per sample for the aggregated formats) and materialises
`Goroutine` objects only when asked: a 1,000,000-goroutine dump aggregates
without building a million Python objects.

The core is layered, each module importing only those before it: frames -> table ->
aggregate -> model (docs/architecture.md).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from grprof.aggregate import Group, Similarity, StackNode, group, stack_tree
from grprof.frames import Ancestor, Frame, Goroutine, site_of
from grprof.table import GoroutineTable, SignatureCache, Stack

Format = Literal["debug=0", "debug=1", "debug=2"]
Profile = Literal["goroutine", "goroutineleak"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Which build and process a snapshot came from, as far as its input says (`Snapshot.origin`).

    A debug=0 profile names the program's binary and build id (its main `Mapping`); a
    log's line prefix names the process (journald `app[PID]:`) or the pod and container
    (`kubectl logs --prefix`: `[pod/NAME/CONTAINER]`). None where the input does not say."""

    binary: str | None = None
    """Path of the program's executable when the profile was written."""
    build_id: str | None = None
    """The executable's build id (the ELF GNU build id runtime/pprof reads)."""
    pid: int | None = None
    pod: str | None = None
    container: str | None = None
    host: str | None = None
    """The journald host name."""
    code: tuple[tuple[str, int], ...] = ()
    """A few functions goroutines started in, with the address each starts at (a debug=1
    profile's frame lines: PC less offset): one build at one load address gives each one
    address (`moved_code`)."""

    def describe(self) -> str:
        """`binary /x/app, build id 5ec5..., pid 42`: what is known, for messages."""
        parts = []
        if self.binary:
            parts.append(f"binary {self.binary}")
        if self.build_id:
            parts.append(f"build id {self.build_id}")
        if self.host:
            parts.append(f"host {self.host}")
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.pod:
            parts.append(f"pod {self.pod}" + (f" container {self.container}" if self.container else ""))
        return ", ".join(parts)


def moved_code(a: Mapping[str, int], b: Mapping[str, int]) -> tuple[str, int, int] | None:
    """(function, its entry in `a`, in `b`) for the first function both place at different
    addresses (`Origin.code`), else None. Within one build loaded at one address a function
    has one entry, so a move means another build, or the same one restarted at another
    address (a PIE binary). None says nothing: the functions may not overlap (other
    goroutines), or the change left them in place (it only changed data, or code after them)."""
    for function, entry in b.items():
        was = a.get(function)
        if was is not None and was != entry:
            return function, was, entry
    return None


class Snapshot:
    """One goroutine dump or profile, as read from one source."""

    __slots__ = (
        "source",
        "format",
        "profile",
        "time",
        "truncated",
        "_go_version",
        "_go_version_of",
        "prologue",
        "mtime",
        "notes",
        "origin",
        "table",
        "_goroutines",
        "_total",
        "_groups",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        source: str,
        format: Format,
        profile: Profile,
        table: GoroutineTable,
        time: _dt.datetime | None = None,
        truncated: bool = False,
        go_version: str | None = None,
        prologue: str = "",
        go_version_of: Callable[[], str | None] | None = None,
    ) -> None:
        """`go_version_of`, in place of `go_version`: computes it when first read (the
        debug=2 parser's inference reads every distinct frame of the dump, some 20 ms for
        20,000 distinct stacks, which `load(...).groups()` does not need)."""
        self.source = source
        self.format: Format = format
        self.profile: Profile = profile
        self.table = table
        self.time = time
        self.truncated = truncated
        self._go_version = go_version
        self._go_version_of = go_version_of
        self.prologue = prologue
        """Text before the first goroutine: `panic: ...`, `fatal error: ...`, `SIGQUIT: quit`."""
        self.mtime: _dt.datetime | None = None
        """Modification time of the file the snapshot came from, when it came from a file."""
        self.notes: tuple[str, ...] = ()
        """Warnings for the user about how the input was read, one line each, naming the input:
        a log prefix stripped, spaces fixed, where a file was split into dumps (on the first
        snapshot of an input; `grprof.formats._paste`, `grprof.formats.split_dumps`)."""
        self.origin: Origin | None = None
        """Which process and build the input says it came from, when it says (a profile's main
        mapping, a log prefix's pid or pod)."""
        self._goroutines: list[Goroutine] | None = None
        self._total: int | None = None
        self._groups: dict[Similarity, list[Group]] = {}
        """Groups per similarity, computed once: a snapshot does not change once parsed (a
        daemon judges the same 40 snapshots again at every scrape)."""

    def share_stacks(
        self, shared: Callable[[Stack], Stack], signatures: SignatureCache | None = None
    ) -> None:
        """Swap the table's stacks for the equal ones `shared` returns (a daemon keeps one copy
        of each stack for every window of the process), drop the table's build-time indexes,
        and forget the groups computed on the old stacks (they would keep them alive). Call it
        before anything derives data from the snapshot (the store, detection). `signatures`
        caches the shared stacks' signatures for `groups`."""
        self.table.share_stacks(shared, signatures)
        self._groups.clear()

    def share_groups(self, earlier: Snapshot, similarity: Similarity = "default") -> bool:
        """Swap this snapshot's groups for `earlier`'s equal ones (same signature and every
        field equal: counts, states, waits, labels, members). A daemon keeps a service's last
        40 scrapes, most of whose groups equal the scrape's before: it then holds one object
        for each, not 40. Groups do not change once made, so nothing else changes. True when
        every group was swapped (the two snapshots group alike)."""
        earlier.groups(similarity)
        theirs = earlier._groups[similarity]
        if not theirs:
            return False
        mine = self._groups.get(similarity)
        if mine is None:
            if self.table.same_rows(earlier.table):
                # The same rows group alike: `group` would make an equal twin of each group.
                self._groups[similarity] = list(theirs)
                return True
            mine = self._groups[similarity] = group(self.table, similarity)
        by_sig = {g.signature: g for g in theirs}
        swapped = 0
        for i, g in enumerate(mine):
            e = by_sig.get(g.signature)
            if e is not None and (e is g or e == g):
                mine[i] = e
                swapped += 1
        return swapped == len(mine) == len(theirs)

    @property
    def go_version(self) -> str | None:
        """`1.22.12` when paths name it, `>=1.21` from format features, None when unknown."""
        fn = self._go_version_of
        if fn is not None:
            self._go_version = fn()
            self._go_version_of = None
        return self._go_version

    @go_version.setter
    def go_version(self, version: str | None) -> None:
        self._go_version = version
        self._go_version_of = None

    @property
    def total(self) -> int:
        """Number of goroutines (sum of sample counts for aggregated formats), counted once as
        the groups are: a daemon reads the totals of a window's 40 snapshots at every scrape."""
        n = self._total
        if n is None:
            n = self._total = self.table.total()
        return n

    @property
    def goroutines(self) -> list[Goroutine]:
        """Per-goroutine records; empty for the aggregated formats (debug=0, debug=1)."""
        if self._goroutines is None:
            self._goroutines = list(self.table.goroutines())
        return self._goroutines

    def __iter__(self) -> Iterator[Goroutine]:
        return iter(self.goroutines)

    def groups(self, similarity: Similarity = "default") -> list[Group]:
        """Goroutines grouped by stack, largest group first (computed once per similarity)."""
        groups = self._groups.get(similarity)
        if groups is None:
            groups = self._groups[similarity] = group(self.table, similarity)
        return list(groups)

    def stack_tree(self, similarity: Similarity = "default") -> StackNode:
        """Prefix tree of frames (outermost first) with goroutine counts, for flame graphs."""
        return stack_tree(self.groups(similarity))

    def __repr__(self) -> str:
        return (
            f"Snapshot(source={self.source!r}, format={self.format!r}, profile={self.profile!r}, "
            f"total={self.total}, truncated={self.truncated})"
        )


__all__ = [
    "Ancestor",
    "Format",
    "Frame",
    "Goroutine",
    "Group",
    "Origin",
    "Profile",
    "Snapshot",
    "moved_code",
    "site_of",
]
