"""Grouping goroutines by stack (`Group`), and the stack tree behind flame graphs.

Grouping hashes each row's key once (O(n) expected); it never compares stacks pairwise.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter, deque
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from itertools import pairwise, repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Literal

from grprof import _rust
from grprof._gc import PAUSE_GC_AT, gc_paused
from grprof.frames import Frame, FuncName, site_of
from grprof.table import GoroutineTable, PendingSignatures, SignatureCache, Stack

Similarity = Literal["exact", "default", "loose"]
SIMILARITIES: tuple[Similarity, ...] = ("exact", "default", "loose")


@dataclass(slots=True)
class Group:
    """Goroutines (or profile samples) that share a stack under a similarity level."""

    signature: str
    """Stable hex digest of the group's stack; equal stacks give equal signatures across runs."""
    count: int
    frames: tuple[Frame, ...]
    frames_elided: bool
    created_by: Frame | None
    states: dict[str, int]
    wait_minutes: dict[int, int]
    """Wait minutes -> goroutine count (0 = under a minute or not stamped)."""
    labels: dict[str, dict[str, int]]
    """Label key -> value -> goroutine count."""
    ids: Sequence[int]
    """Member goroutine ids, in the dump's order: an `array('q')` for per-goroutine formats (8
    bytes a member, not a Python int each), an empty tuple for aggregated formats. A sequence:
    `len`, `in`, iteration and indexing as a list; `list(g.ids)` where a list is needed (JSON)."""
    orphans: Sequence[int]
    """Members whose creator goroutine is no longer in the snapshot, in the dump's order: an
    `array('q')` (an empty tuple when none), an empty tuple for aggregated formats."""
    leaked: int
    locked_to_thread: int
    partial: int
    creators: Mapping[int, int] = field(default_factory=dict)
    """Creator goroutine id -> members it started (per-goroutine formats, Go 1.21+ headers), in
    order of first member: a `CreatorCounts` read from the members' creator ids, or an empty
    dict when no member names its creator."""
    state_inferred: bool = False
    """The states were inferred from the stack (debug=0, debug=1), not printed by the runtime."""

    @property
    def site(self) -> Frame | None:
        return site_of(self.frames)

    @property
    def state(self) -> str:
        """The most common state."""
        states = self.states
        if len(states) == 1:  # most groups: no ranking needed
            for state in states:
                return state
        return max(states.items(), key=lambda kv: (kv[1], kv[0]))[0] if states else ""

    @property
    def max_wait_minutes(self) -> int:
        w = self.wait_minutes
        return max(w) if w else 0  # no keyword: `default=` makes `max` parse its arguments slowly


class CreatorCounts(Mapping[int, int]):
    """Creator goroutine id -> members it started, counted from the members' creator ids
    when read (a dict per group held a Python int per creator: about 60 bytes a member, 60 MB
    on a 1,000,000-goroutine dump; the column slice holds 8).

    `creator_of` is the members' creator ids in member order, -1 where the header does not say;
    iteration gives creators in order of their first member, as the dict it replaces did. Each
    read counts again (C-level, O(members)); callers read it once or twice per detection pass."""

    __slots__ = ("creator_of",)

    def __init__(self, creator_of: array[int]) -> None:
        self.creator_of = creator_of

    def _counts(self) -> dict[int, int]:
        return Counter(filter((-1).__lt__, self.creator_of))

    def __getitem__(self, creator: int) -> int:
        n = self._counts().get(creator)
        if n is None:
            raise KeyError(creator)
        return n

    def __contains__(self, creator: object) -> bool:
        return isinstance(creator, int) and creator >= 0 and creator in self.creator_of

    def __iter__(self) -> Iterator[int]:
        return iter(self._counts())

    def __len__(self) -> int:
        return len(self._counts())

    def keys(self) -> KeysView[int]:
        return self._counts().keys()

    def values(self) -> ValuesView[int]:
        return self._counts().values()

    def items(self) -> ItemsView[int, int]:
        return self._counts().items()

    def __repr__(self) -> str:
        return f"CreatorCounts({self._counts()!r})"


# An aggregated format's groups have no members: one shared empty sequence and one read-only
# empty mapping for all of them (three objects a group fewer on a profile of distinct stacks).
# Also the placeholders until `_attach_members` sets a per-goroutine group's members.
_NO_IDS: Sequence[int] = ()
_NO_CREATORS: Mapping[int, int] = MappingProxyType({})


def loose_function(name: str) -> str:
    """`main.main.func15.1` -> `main.main.func.N`: the name without closure numbering
    (the compiler numbers closures and wrappers in order of appearance: it shifts when code
    moves). `FuncName.loose`, from the parsed-names cache."""
    return FuncName.of(name).loose


def _frame_text(f: Frame, loose: bool) -> str:
    return loose_function(f.function) if loose else f"{f.function} {f.file}:{f.line}"


def _stack_text(stack: Stack, loose: bool, memo: dict[int, str] | None = None) -> str:
    """The text a signature digests: a line per frame, `...`, `created by` and its frame.

    `memo` (frame id -> text, for one call's frames, all alive meanwhile) formats each frame
    once: the stacks of one dump share most of their frames, often as the same objects."""
    if memo is None:
        parts = [_frame_text(f, loose) for f in stack.frames]
    else:
        parts = [memo.get(id(f)) or _remember(memo, f, loose) for f in stack.frames]
    if stack.frames_elided:
        parts.append("...")
    cb = stack.created_by
    if cb is not None:
        parts.append(
            "created by "
            + (_frame_text(cb, loose) if memo is None else memo.get(id(cb)) or _remember(memo, cb, loose))
        )
    return "\n".join(parts)


def _remember(memo: dict[int, str], f: Frame, loose: bool) -> str:
    t = memo[id(f)] = _frame_text(f, loose)
    return t


def signature(stack: Stack, similarity: Similarity = "default", argkey: int = 0) -> str:
    """A stable digest of a stack under a similarity level (16 hex digits)."""
    return _digest(_stack_text(stack, similarity == "loose"), similarity, argkey)


def _digest(text: str, similarity: Similarity, argkey: int) -> str:
    if similarity == "exact":
        text += f"\nargs {argkey:016x}"
    # Not interned: a daemon shares one string per stack through its `SignatureCache`.
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _frame_bytes(f: Frame, loose: bool) -> bytes:
    return _frame_text(f, loose).encode()


def _stack_bytes(stack: Stack, loose: bool, memo: dict[int, bytes]) -> bytes:
    """`_stack_text(stack, loose)`, UTF-8 encoded, from `memo` (frame id -> encoded text, for
    one call's frames, all alive meanwhile): each distinct frame is formatted and encoded once
    per `group()` call, and a stack's text is one C-level join of the frames' bytes."""
    frames = stack.frames
    try:
        parts = list(map(memo.__getitem__, map(id, frames)))
    except KeyError:
        parts = [memo.get(id(f)) or _remember_bytes(memo, f, loose) for f in frames]
    if stack.frames_elided:
        parts.append(b"...")
    cb = stack.created_by
    if cb is not None:
        parts.append(b"created by " + (memo.get(id(cb)) or _remember_bytes(memo, cb, loose)))
    return b"\n".join(parts)


def _remember_bytes(memo: dict[int, bytes], f: Frame, loose: bool) -> bytes:
    b = memo[id(f)] = _frame_bytes(f, loose)
    return b


def _digest_bytes(text: bytes, similarity: Similarity, argkey: int) -> str:
    """`_digest` of text already encoded (the same digest of the same UTF-8 bytes)."""
    if similarity == "exact":
        text += b"\nargs %016x" % argkey
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def signatures(
    stacks: Sequence[Stack],
    similarity: Similarity = "default",
    argkeys: Sequence[int] | None = None,
    *,
    native: bool | None = None,
) -> list[str]:
    """The signature of each stack (`signature(stacks[i], similarity, argkeys[i])`; the
    argument keys count for exact similarity only, and default to 0).

    Stacks may repeat (exact similarity: a stack's groups differ in their arguments). With
    the extension (`native`: see `grprof._rust.native`) the texts are built and hashed in
    Rust from each distinct frame object's text, without the GIL: byte for byte the same
    digests as the Python path, which formats and encodes each distinct frame once per call
    and hashes one joined text per stack."""
    exact = similarity == "exact"
    loose = similarity == "loose"
    keys = [0] * len(stacks) if argkeys is None or not exact else argkeys
    fn = _rust.native("signatures_of", native)
    if fn is not None:
        sigs: list[str] = fn(stacks, list(keys) if exact else None, loose_function if loose else None)
        return sigs
    memo: dict[int, bytes] = {}
    if not exact:
        return [_digest_bytes(_stack_bytes(st, loose, memo), similarity, 0) for st in stacks]
    texts: dict[int, bytes] = {}  # stack id -> text: exact similarity repeats stacks
    out = []
    for st, key in zip(stacks, keys, strict=True):
        text = texts.get(id(st))
        if text is None:
            text = texts[id(st)] = _stack_bytes(st, False, memo)
        out.append(_digest_bytes(text, similarity, key))
    return out


def _loose_groups(stacks: Sequence[Stack], native: bool | None) -> tuple[list[int], list[int], list[str]]:
    """Stacks grouped by their loose text: each stack's group (numbered by first appearance),
    each group's first stack (an index into `stacks`) and each group's signature."""
    fn = _rust.native("loose_groups_of", native)
    if fn is not None:
        found: tuple[list[int], list[int], list[str]] = fn(stacks, loose_function)
        return found
    by_text: dict[bytes, int] = {}
    stack_group: list[int] = []
    reps: list[int] = []
    sigs: list[str] = []
    memo: dict[int, bytes] = {}
    for i, s in enumerate(stacks):
        t = _stack_bytes(s, True, memo)
        g = by_text.setdefault(t, len(reps))
        if g == len(reps):
            reps.append(i)
            sigs.append(_digest_bytes(t, "loose", 0))
        stack_group.append(g)
    return stack_group, reps, sigs


def _row_keys(
    table: GoroutineTable, similarity: Similarity
) -> tuple[Sequence[int], list[Stack], list[str] | None]:
    """Map every row to a group number; return the numbers (the table's own stack column at
    default similarity, not a copy), each group's stack and, for loose similarity (which
    finds its groups by their text), each group's signature."""
    if similarity == "default":
        return table.stack, table.stacks, None
    if similarity == "loose":
        stack_group, first, sigs = _loose_groups(table.stacks, None)
        stacks = table.stacks
        # A list of the group numbers `stack_group` holds (8 bytes a row, no int made per row,
        # as an array would be), built faster than an array from an iterator.
        return list(map(stack_group.__getitem__, table.stack)), [stacks[i] for i in first], sigs
    index: dict[tuple[int, int], int] = {}
    keys: list[int] = []  # as for loose: each row refers to its group's number in `index`
    reps: list[Stack] = []
    stacks = table.stacks
    for pair in zip(table.stack, table.argkey, strict=True):
        g = index.setdefault(pair, len(reps))
        if g == len(reps):
            reps.append(stacks[pair[0]])
        keys.append(g)
    return keys, reps, None


def _group_signatures(
    groups: Iterable[int],
    reps: Sequence[Stack],
    similarity: Similarity,
    first_argkey: dict[int, int],
    cache: SignatureCache | None,
) -> dict[int, str]:
    """Group number -> signature, for the groups that have rows (a table slice shares all its
    parent's stacks, and most have no row in it). `cache` (default similarity only: a stack's
    signature then depends on the stack alone) serves the stacks seen in earlier snapshots of
    a daemon's window, and keeps the ones hashed now."""
    present = list(groups)
    if cache is not None and similarity == "default":
        out: dict[int, str] = {}
        missing: list[int] = []
        for k in present:
            sig = cache.get(reps[k])
            if sig is None:
                missing.append(k)
            else:
                out[k] = sig
        if missing:
            stacks = [reps[k] for k in missing]
            for k, st, sig in zip(missing, stacks, signatures(stacks, similarity), strict=True):
                out[k] = sig
                cache.put(st, sig)
        return out
    argkeys = [first_argkey[k] for k in present] if similarity == "exact" else None
    return dict(
        zip(present, signatures(list(map(reps.__getitem__, present)), similarity, argkeys), strict=True)
    )


def group(table: GoroutineTable, similarity: Similarity = "default") -> list[Group]:
    """Group a table's rows by stack; largest groups first, ties by signature."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, not {similarity!r}")
    with gc_paused(len(table.stacks)):
        return _group(table, similarity)


def _per_header(keys: Sequence[int], table: GoroutineTable) -> dict[tuple[int, int], int]:
    """(group, header) -> goroutines, in order of first row: every per-goroutine statistic
    derives from this. Counted in C (`Counter` over the zipped integer columns); an
    aggregated table whose (group, header) pairs are all distinct (a profile's samples
    usually are) takes its counts as they are."""
    counts = table.counts
    if counts is None:
        return Counter(zip(keys, table.header, strict=True))
    pairs = list(zip(keys, table.header, strict=True))
    per: dict[tuple[int, int], int] = dict(zip(pairs, counts, strict=True))
    if len(per) == len(pairs):
        return per
    per = {}
    for pair, c in zip(pairs, counts, strict=True):
        per[pair] = per.get(pair, 0) + c
    return per


def _group(table: GoroutineTable, similarity: Similarity) -> list[Group]:
    # Works on the table's integer columns: each group's signature (frame texts once per
    # distinct frame), then one `Group` per group from its (group, header) counts
    # (`_build_groups`). No per-goroutine Python object is kept: members are slices of the id
    # and creator columns (`_attach_members`).
    keys, reps, loose_sigs = _row_keys(table, similarity)
    partial: Counter[int] = Counter()
    if table.counts is None:
        for row, x in table.extras.items():
            if x.partial:
                partial[keys[row]] += 1
    first_argkey: dict[int, int] = {}
    if similarity == "exact":  # the argument key of each group's first row
        argkey = table.argkey
        for row, k in enumerate(keys):
            if k not in first_argkey:
                first_argkey[k] = argkey[row]

    sigs: Sequence[str] | dict[int, str] | PendingSignatures | None = loose_sigs
    if sigs is None and similarity == "default":
        # The parser's, when it made them; still being hashed, `_build_groups` waits for them
        # once it has made everything else.
        sigs = table.pending_signatures()
        if sigs is None:
            sigs = table.stack_signatures()
    if sigs is None:
        sigs = _group_signatures(
            dict.fromkeys(keys),  # the groups in order of first row
            reps,
            similarity,
            first_argkey,
            table.signature_cache,
        )
    return _build_groups(keys, table, reps, sigs, partial)


def _build_groups(
    keys: Sequence[int],
    table: GoroutineTable,
    reps: Sequence[Stack],
    sigs: Sequence[str] | dict[int, str] | PendingSignatures,
    partial: Mapping[int, int],
) -> list[Group]:
    """One `Group` per group from its (group, header) counts (`_per_header`), largest first,
    ties by signature; row r is in group `keys[r]`, group k's signature `sigs[k]` (or the k-th
    of pending signatures of every stack). A per-goroutine table's groups get their members
    (`_attach_members`); an aggregated table's (its states were inferred) get empty member
    lists.

    With the extension (`build_groups`, native/src/groups.rs) the pairs are counted and
    summed on the integer columns, each dict is made once in its final order and each group
    with its members (some 1.5 µs a group in Python, most of `groups()` on a dump of
    distinct stacks); a count past 64 bits is summed here."""
    inferred = table.counts is not None
    fn = _rust.native("build_groups")
    if fn is not None:
        cols = None if inferred else (table.ids, table.creator, array, CreatorCounts)
        try:
            out: list[Group] = fn(
                keys,
                table.header,
                table.counts,
                table.headers,
                reps,
                sigs,
                partial,
                Group,
                cols,
                PAUSE_GC_AT,
                _NO_CREATORS,
            )
            return out
        except OverflowError:
            pass
    if not isinstance(sigs, (Sequence, dict)):
        sigs = sigs.result()
    per_header = _per_header(keys, table)
    headers = table.headers
    # Each header's facts once (a group of one pair has one state, one wait and, when its
    # header's labels are in order, its labels in order: no sorting).
    facts = [
        (h.state, h.wait_minutes, h.labels_key, h.leaked, h.locked_to_thread, _ordered(h.labels_key))
        for h in headers
    ]
    groups: dict[int, Group] = {}
    merged: dict[int, Group] = {}  # groups whose dicts may be out of order
    for (k, hi), n in per_header.items():
        state, wait, labels_key, leaked, locked, ordered = facts[hi]
        g = groups.get(k)
        if g is None:
            st = reps[k]
            groups[k] = Group(
                sigs[k],
                n,
                st.frames,
                st.frames_elided,
                st.created_by,
                {state: n},
                {wait: n},
                ({lk: {lv: n} for lk, lv in labels_key} if ordered else _count_labels(labels_key, n))
                if labels_key
                else {},
                _NO_IDS,
                _NO_IDS,
                n if leaked else 0,
                n if locked else 0,
                partial.get(k, 0),
                _NO_CREATORS,
                inferred,
            )
            if not ordered:
                merged[k] = groups[k]
            continue
        merged[k] = g
        g.count += n
        g.states[state] = g.states.get(state, 0) + n
        g.wait_minutes[wait] = g.wait_minutes.get(wait, 0) + n
        for lk, lv in labels_key:
            vals = g.labels.setdefault(lk, {})
            vals[lv] = vals.get(lv, 0) + n
        if leaked:
            g.leaked += n
        if locked:
            g.locked_to_thread += n
    for g in merged.values():  # a group of one pair has one state, one wait and its labels in order
        if len(g.states) > 1:
            g.states = dict(sorted(g.states.items(), key=lambda kv: (-kv[1], kv[0])))
        if len(g.wait_minutes) > 1:
            g.wait_minutes = dict(sorted(g.wait_minutes.items()))
        if g.labels:
            g.labels = {
                k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
                for k, v in sorted(g.labels.items())
            }
    del per_header  # transient: freed before the members are made
    many = len(groups) >= PAUSE_GC_AT
    if not inferred:
        _attach_members(table, keys, groups, untrack=many)
    out = list(groups.values())
    # Largest first, ties by signature: two stable sorts with C-level keys, the same order as
    # one by (-count, signature) without a Python call and a tuple per group.
    out.sort(key=attrgetter("signature"))
    out.sort(key=attrgetter("count"), reverse=True)
    if many and inferred:  # per-goroutine groups were untracked with their members
        _untrack(out)
    return out


def _untrack(groups: list[Group]) -> None:
    """Take many new groups, and the arrays and `CreatorCounts` they alone hold, out of the
    cyclic collector's lists (with the extension: `untrack_groups`, native/src/tree.rs): none
    is in a cycle, so reference counting frees them, and the collector's first pass over them
    once `gc_paused` ends cost more than building them (some 100,000 objects for 20,000
    groups). Nothing else changes: the pure-Python path leaves them tracked."""
    fn = _rust.native("untrack_groups")
    if fn is not None:
        fn(groups, array, CreatorCounts)


def _attach_members(
    table: GoroutineTable, keys: Sequence[int], groups: dict[int, Group], *, untrack: bool = False
) -> None:
    """Set each group's `ids`, `orphans` and `creators` (a per-goroutine table: one row per
    goroutine) from slices of the id and creator columns with rows sorted by group.

    The rows are put in group order by a counting sort into two `array('q')` columns (each
    group's count is its number of rows, and `groups` is in order of first row, so rows keep
    their order within a group), then each group takes its slice: 8 bytes a member and a
    few arrays a group, where lists and dicts of Python ints took about 90 bytes a member.
    Orphans are appended to an array per group as found (an empty tuple when none).
    Whether a creator is still in the snapshot is read from a bytearray over the goroutine
    ids on big tables (one byte an id: 1 MB for a million goroutines, where a set of them
    took 66 MB; `_presence`).

    With the extension (`attach_members`, native/src/members.rs) both loops run in Rust, the
    same arrays and `CreatorCounts` made once each; with `untrack`, the groups and what is
    made for them also leave the cyclic collector's lists (see `_untrack`)."""
    fn = _rust.native("attach_members")
    if fn is not None:
        fn(groups, keys, table.ids, table.creator, array, CreatorCounts, untrack)
        return
    n = len(table.ids)
    if len(groups) == n:  # a row per group (exact similarity of a shapes dump): no sorting
        _attach_single(table, groups)
        return
    # Each group's next position, indexed by group number: a list when the numbers are few
    # next to the rows (a table slice may number 100,000 stacks for 10 rows: then a dict).
    last = max(groups, default=0)
    at: dict[int, int] | list[int] = {} if last > 2 * n else [0] * (last + 1)
    pos = 0
    for k, g in groups.items():
        at[k] = pos
        pos += g.count
    ids = array("q", bytes(8 * n))
    creator_of = array("q", bytes(8 * n))
    orphans: dict[int, array[int]] = {}  # few rows: appended as found, in row order
    seen = _presence(table.ids)
    if isinstance(seen, bytearray):
        top = len(seen)
        for k, gid, cr in zip(keys, table.ids, table.creator, strict=True):
            p = at[k]
            at[k] = p + 1
            ids[p] = gid
            creator_of[p] = cr
            if cr >= 0 and (cr >= top or not seen[cr]):
                _append(orphans, k, gid)
    else:
        for k, gid, cr in zip(keys, table.ids, table.creator, strict=True):
            p = at[k]
            at[k] = p + 1
            ids[p] = gid
            creator_of[p] = cr
            if cr >= 0 and cr not in seen:
                _append(orphans, k, gid)
    del at, seen
    a = 0
    for k, g in groups.items():
        b = a + g.count
        g.ids = ids[a:b]
        g.orphans = orphans.get(k, ())
        of = creator_of[a:b]
        g.creators = CreatorCounts(of) if max(of) >= 0 else {}
        a = b


def _attach_single(table: GoroutineTable, groups: dict[int, Group]) -> None:
    """`_attach_members` when each group has one row: `groups` is then in row order, so the
    columns are already in group order and each group takes row i."""
    ids, creator = table.ids, table.creator
    seen = _presence(ids)
    for i, g in enumerate(groups.values()):
        g.ids = ids[i : i + 1]
        cr = creator[i]
        if cr < 0:
            g.creators = {}
            continue
        g.creators = CreatorCounts(creator[i : i + 1])
        gone = (cr >= len(seen) or not seen[cr]) if isinstance(seen, bytearray) else cr not in seen
        if gone:
            g.orphans = ids[i : i + 1]


def _append(lists: dict[int, array[int]], k: int, x: int) -> None:
    """`lists.setdefault(k, array("q")).append(x)` without an array made per call."""
    a = lists.get(k)
    if a is None:
        a = lists[k] = array("q")
    a.append(x)


# From this many rows up the present ids are a bytearray rather than a set: below, the set is
# faster to build and small (some 2 MB at 2**17 ids); above, its ints cost 66 MB a million.
_BYTEARRAY_AT = 1 << 17


def _presence(ids: array[int]) -> bytearray | set[int]:
    """The goroutine ids present, for orphan checks: from `_BYTEARRAY_AT` rows, a bytearray
    indexed by id (1 = present) when the ids are non-negative and dense enough (goroutine ids
    count up from 1, so a dump's ids are below a few times its size); else a set."""
    if len(ids) < _BYTEARRAY_AT:
        return set(ids)
    lo, hi = min(ids), max(ids)
    if lo < 0 or hi > 16 * len(ids) + (1 << 20):
        return set(ids)
    seen = bytearray(hi + 1)
    deque(map(seen.__setitem__, ids, repeat(1)), maxlen=0)  # seen[gid] = 1 for each, in C
    return seen


def _count_labels(labels_key: tuple[tuple[str, str], ...], n: int) -> dict[str, dict[str, int]]:
    labels: dict[str, dict[str, int]] = {}
    for lk, lv in labels_key:
        vals = labels.setdefault(lk, {})
        vals[lv] = vals.get(lv, 0) + n
    return labels


def _ordered(labels_key: tuple[tuple[str, str], ...]) -> bool:
    """Whether label pairs are in the order `group` gives a group's labels (keys increasing,
    each once): `Header.make` sorts them; a header built otherwise gets its group sorted."""
    return all(a[0] < b[0] for a, b in pairwise(labels_key))


# -- stack tree ----------------------------------------------------------------------------


@dataclass(slots=True)
class StackNode:
    """A node of the stack tree: a function reached through its ancestors' call path.

    The root (`name == "all"`) holds every goroutine; children are callees, keyed by function.
    `self_count` counts goroutines whose innermost frame is this node.
    """

    name: str
    count: int = 0
    self_count: int = 0
    frame: Frame | None = None
    children: dict[str, StackNode] = field(default_factory=dict)

    def child(self, frame: Frame) -> StackNode:
        node = self.children.get(frame.function)
        if node is None:
            node = self.children[frame.function] = StackNode(frame.function, frame=frame)
        return node

    def walk(self, depth: int = 0) -> Iterable[tuple[int, StackNode]]:
        """Depth-first, children largest first."""
        yield depth, self
        for c in sorted(self.children.values(), key=lambda n: (-n.count, n.name)):
            yield from c.walk(depth + 1)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "count": self.count,
            "self": self.self_count,
            "frame": self.frame.to_json() if self.frame else None,
            "children": [
                c.to_json() for c in sorted(self.children.values(), key=lambda n: (-n.count, n.name))
            ],
        }


def stack_tree(groups: Sequence[Group], *, native: bool | None = None) -> StackNode:
    """Merge groups into a prefix tree of frames, outermost first.

    With the extension (`native`: see `grprof._rust.native`) the tree is built in Rust on
    integers (each distinct frame object read once, its function name an id; a node a
    (parent, function id) pair), then its `StackNode`s made once each: the same tree, names,
    frames, counts and `children` order as the Python path, several times faster (a dump of
    20,000 distinct stacks: 99,207 nodes from 171,012 frames)."""
    with gc_paused(len(groups)):
        fn = _rust.native("stack_tree_of", native)
        if fn is not None:
            try:
                root: StackNode = fn(groups, StackNode)
                return root
            except OverflowError:  # counts past int64: Python's ints hold them
                pass
        return _stack_tree(groups)


def _stack_tree(groups: Sequence[Group]) -> StackNode:
    root = StackNode("all")
    for g in groups:
        n = g.count
        root.count += n
        node = root
        for f in reversed(g.frames):  # StackNode.child, inlined: this runs once per frame
            children = node.children
            nxt = children.get(f.function)
            if nxt is None:
                nxt = children[f.function] = StackNode(f.function, 0, 0, f, {})
            nxt.count += n
            node = nxt
        node.self_count += n
    return root
