"""Columnar storage of a snapshot's goroutines.

Every parser fills a `GoroutineTable`: one row per goroutine (debug=2, tracebacks) or per
profile sample (debug=0, debug=1, where a row stands for `count` goroutines). Distinct
headers (state, wait, labels) and distinct stacks are stored once and rows point at them,
so a dump of 30,000 goroutines in 50 shapes keeps 50 parsed stacks, not 30,000.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from types import MappingProxyType
from typing import Protocol

from grprof.frames import Ancestor, Frame, Goroutine

_EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


class PendingSignatures(Protocol):
    """Signatures being hashed (`grprof._native.PendingSignatures`)."""

    def result(self) -> list[str]:
        """The signatures once hashed: waits for them."""
        ...

    def __len__(self) -> int:
        """The number of stacks being hashed."""
        ...


@dataclass(frozen=True, slots=True)
class Header:
    """What a goroutine header says, apart from the id."""

    state: str
    wait_minutes: int = 0
    locked_to_thread: bool = False
    leaked: bool = False
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY_LABELS, compare=False, hash=False)
    flags: tuple[str, ...] = ()
    labels_key: tuple[tuple[str, str], ...] = ()
    """Sorted label pairs; what equality and hashing use in place of `labels`."""

    @staticmethod
    def make(
        state: str,
        wait_minutes: int = 0,
        locked_to_thread: bool = False,
        leaked: bool = False,
        labels: Mapping[str, str] | None = None,
        flags: tuple[str, ...] = (),
    ) -> Header:
        lab = MappingProxyType(dict(labels)) if labels else _EMPTY_LABELS
        return Header(state, wait_minutes, locked_to_thread, leaked, lab, flags, tuple(sorted(lab.items())))


@dataclass(frozen=True, slots=True)
class Stack:
    """A goroutine's frames (innermost first) and creator call site."""

    frames: tuple[Frame, ...]
    frames_elided: bool = False
    created_by: Frame | None = None


_new = object.__new__
_set_frames = Stack.__dict__["frames"].__set__
_set_elided = Stack.__dict__["frames_elided"].__set__
_set_created_by = Stack.__dict__["created_by"].__set__


def stacks_of(rows: Sequence[tuple[tuple[Frame, ...], bool, Frame | None]]) -> list[Stack]:
    """`[Stack(*row) for row in rows]`, each field set through its slot in C-level loops: a
    frozen dataclass's `__init__` sets each field with `object.__setattr__` from Python
    (20,000 stacks: 11 ms, here 4 ms)."""
    out: list[Stack] = list(map(_new, repeat(Stack, len(rows))))
    if rows:
        frames, elided, created = zip(*rows, strict=True)
        deque(map(_set_frames, out, frames), maxlen=0)
        deque(map(_set_elided, out, elided), maxlen=0)
        deque(map(_set_created_by, out, created), maxlen=0)
    return out


@dataclass(frozen=True, slots=True)
class SignatureCache:
    """Stack -> its default-similarity signature, for stacks shared across snapshots: a daemon
    scrapes a service every 15 s and sees mostly the stacks it saw last time (its window
    shares them as one object each, `grprof.serving.window`), so they are not hashed again.

    Keyed by identity (hashing a `Stack` walks its frames, which costs about as much as the
    signature in Rust); an entry keeps its stack, so the id cannot be reused by another
    object while the entry lives. Cleared at `limit` entries (nothing is lost but time)."""

    limit: int
    entries: dict[int, tuple[Stack, str]] = field(default_factory=dict)

    def get(self, stack: Stack) -> str | None:
        e = self.entries.get(id(stack))
        return e[1] if e is not None and e[0] is stack else None

    def put(self, stack: Stack, signature: str) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[id(stack)] = (stack, signature)


@dataclass(frozen=True, slots=True)
class RowExtra:
    """Per-goroutine data that few rows have."""

    ancestors: tuple[Ancestor, ...] = ()
    partial: bool = False


class GoroutineTable:
    """Rows of (id, header, stack, creator id, argument key, count)."""

    __slots__ = (
        "headers",
        "stacks",
        "ids",
        "header",
        "stack",
        "creator",
        "argkey",
        "counts",
        "extras",
        "signature_cache",
        "signatures",
        "_header_index",
        "_stack_index",
    )

    def __init__(self, *, aggregated: bool = False) -> None:
        self.headers: list[Header] = []
        self.stacks: list[Stack] = []
        self.ids = array("q")
        """Goroutine id per row; -1 for profile samples."""
        self.header = array("l")
        self.stack = array("l")
        self.creator = array("q")
        """Id of the creating goroutine (`created by F in goroutine N`), -1 when unknown."""
        self.argkey = array("Q")
        """Hash of the argument values of every frame; equal stacks with equal keys are 'exact' twins."""
        self.counts: array[int] | None = array("q") if aggregated else None
        """Goroutines per row for aggregated formats; None when every row is one goroutine."""
        self.extras: dict[int, RowExtra] = {}
        self.signature_cache: SignatureCache | None = None
        """Signatures of stacks shared with other tables (`share_stacks`), for `group`."""
        self.signatures: list[str] | PendingSignatures | None = None
        """Each stack's default-similarity signature, when the parser made them with the
        stacks (`set_stacks`), or is making them; read with `stack_signatures`."""
        self._header_index: dict[Header, int] = {}
        self._stack_index: dict[Stack, int] = {}

    # -- building -------------------------------------------------------------------------

    def intern_header(self, h: Header) -> int:
        if len(self._header_index) != len(self.headers):  # a parser set `headers` as a whole
            self._header_index = {hd: i for i, hd in enumerate(self.headers)}
        i = self._header_index.get(h)
        if i is None:
            i = self._header_index[h] = len(self.headers)
            self.headers.append(h)
        return i

    def intern_stack(self, s: Stack) -> int:
        if len(self._stack_index) != len(self.stacks):  # set_stacks or forget_index left it behind
            self._stack_index = {st: i for i, st in enumerate(self.stacks)}
        i = self._stack_index.get(s)
        if i is None:
            i = self._stack_index[s] = len(self.stacks)
            self.stacks.append(s)
        return i

    def set_stacks(
        self, stacks: list[Stack], signatures: list[str] | PendingSignatures | None = None
    ) -> None:
        """Take `stacks`, all distinct, as the table's stacks; `intern_stack` indexes them
        when first called (a parser that deduplicates on its own need not hash them).
        `signatures`: each stack's default-similarity signature, when the parser has them."""
        self.stacks = stacks
        self.signatures = signatures
        self._stack_index = {}

    def stack_signatures(self) -> list[str] | None:
        """Each stack's default-similarity signature as the parser made them (`set_stacks`),
        once made (the native scanner hashes a big dump's on other threads while the rest of
        the parse goes on); None when it made none, or when stacks were added since
        (`intern_stack`: `group` hashes them as usual)."""
        sigs = self.signatures
        if sigs is not None and not isinstance(sigs, list):
            sigs = self.signatures = sigs.result()
        return sigs if sigs is not None and len(sigs) == len(self.stacks) else None

    def pending_signatures(self) -> PendingSignatures | None:
        """The parser's signatures of the table's stacks while still being hashed, for a caller
        with other work to do before it needs them (`aggregate.group`); None once
        `stack_signatures` has them, or when there are none to wait for."""
        sigs = self.signatures
        if sigs is None or isinstance(sigs, list) or len(sigs) != len(self.stacks):
            return None
        return sigs

    def share_stacks(
        self, shared: Callable[[Stack], Stack], signatures: SignatureCache | None = None
    ) -> None:
        """Replace every stack by the equal one `shared` returns (rows keep their indexes), and
        `forget_index`: a table shares its stacks once it is finished. `signatures`: the cache
        of signatures that goes with the shared stacks."""
        self.stacks = [shared(s) for s in self.stacks]
        self.signature_cache = signatures
        self.forget_index()

    def forget_index(self) -> None:
        """Drop the lookup dicts used while building: a finished table kept for a long time
        (a daemon's detection window) does not need them, and they cost as much as the rows."""
        self._header_index = {}
        self._stack_index = {}

    def add(
        self,
        header: Header,
        stack: Stack,
        *,
        id: int = -1,
        creator: int = -1,
        argkey: int = 0,
        count: int = 1,
        extra: RowExtra | None = None,
    ) -> None:
        """Append one row (a goroutine, or a sample of `count` goroutines)."""
        if extra is not None:
            self.extras[len(self.ids)] = extra
        self.ids.append(id)
        self.header.append(self.intern_header(header))
        self.stack.append(self.intern_stack(stack))
        self.creator.append(creator)
        self.argkey.append(argkey)
        if self.counts is not None:
            self.counts.append(count)

    # -- reading --------------------------------------------------------------------------

    @property
    def aggregated(self) -> bool:
        return self.counts is not None

    def __len__(self) -> int:
        return len(self.ids)

    def total(self) -> int:
        return sum(self.counts) if self.counts is not None else len(self.ids)

    def goroutines(self) -> Iterator[Goroutine]:
        """Materialise per-goroutine records (none for aggregated tables)."""
        if self.counts is not None:
            return
        headers, stacks, extras = self.headers, self.stacks, self.extras
        for row, (gid, hi, si, cr) in enumerate(
            zip(self.ids, self.header, self.stack, self.creator, strict=True)
        ):
            h, s = headers[hi], stacks[si]
            x = extras.get(row)
            yield Goroutine(
                id=gid,
                state=h.state,
                wait_minutes=h.wait_minutes,
                locked_to_thread=h.locked_to_thread,
                leaked=h.leaked,
                labels=h.labels,
                frames=s.frames,
                frames_elided=s.frames_elided,
                created_by=s.created_by,
                creator_id=cr if cr >= 0 else None,
                ancestors=x.ancestors if x else (),
                partial=x.partial if x else False,
                flags=h.flags,
            )

    def same_rows(self, other: GoroutineTable) -> bool:
        """Whether `other` holds the same rows: every column, header and stack equal, in the
        same order. Then every aggregate of the two tables is equal too (a daemon's next scrape
        of a service that did not change: `Snapshot.share_groups` takes the earlier groups).

        Cheap when they are: after `share_stacks` equal stacks are one object, recent headers
        too (`grprof.formats.pprof`), and the list comparisons test identity before equality;
        the integer columns compare in C."""
        return (
            len(self.ids) == len(other.ids)
            and len(self.stacks) == len(other.stacks)
            and self.stack == other.stack
            and self.header == other.header
            and self.counts == other.counts
            and self.ids == other.ids
            and self.creator == other.creator
            and self.argkey == other.argkey
            and self.stacks == other.stacks
            and self.headers == other.headers
            and self.extras == other.extras
        )

    def slice(self, start: int, stop: int) -> GoroutineTable:
        """Rows [start, stop) as a new table sharing the interned headers and stacks."""
        t = GoroutineTable(aggregated=self.counts is not None)
        t.headers, t.stacks = self.headers, self.stacks
        t.signature_cache, t.signatures = self.signature_cache, self.signatures
        t._header_index, t._stack_index = self._header_index, self._stack_index
        t.ids = self.ids[start:stop]
        t.header = self.header[start:stop]
        t.stack = self.stack[start:stop]
        t.creator = self.creator[start:stop]
        t.argkey = self.argkey[start:stop]
        if self.counts is not None:
            t.counts = self.counts[start:stop]
        t.extras = {r - start: x for r, x in self.extras.items() if start <= r < stop}
        return t
