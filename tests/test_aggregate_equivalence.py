"""`aggregate.group` on integer columns gives exactly what the per-goroutine version gave.

The reference below is `aggregate.py`'s grouping as it was before issue 9's aggregation
change (commit 1f5d0a0), kept verbatim apart from names: a (group, header) `Counter` and a
`Group` updated per pair, every dict sorted, signatures from `str` texts. The new code must
give the same groups in the same order, with the same fields, dict orders and list orders,
for every similarity: on every recorded fixture, on slices of them (tables that share their
stacks with rows that use few of them), and on generated tables (repeated stacks, many
headers per stack, unsorted or repeated label pairs, profile counts, creators and orphans,
partial rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof import load_all
from grprof.aggregate import SIMILARITIES, Group, Similarity, group
from grprof.errors import ParseError, SourceError
from grprof.frames import Frame, FuncName
from grprof.table import GoroutineTable, Header, RowExtra, Stack

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".txt", ".gz"))
BENCH = ROOT.parent / "benchmarks" / ".work"

# -- the reference: aggregate.py's grouping before the change -------------------------------


def _frame_text(f: Frame, loose: bool) -> str:
    return FuncName.of(f.function).loose if loose else f"{f.function} {f.file}:{f.line}"


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


def _digest(text: str, similarity: Similarity, argkey: int) -> str:
    if similarity == "exact":
        text += f"\nargs {argkey:016x}"
    # Interned: a daemon holds the same signature in every snapshot of a service's window.
    return sys.intern(hashlib.blake2b(text.encode(), digest_size=8).hexdigest())


def _row_keys(table: GoroutineTable, similarity: Similarity) -> tuple[list[int], list[Stack]]:
    """Map every row to a group number; return the numbers and each group's stack."""
    if similarity == "default":
        return list(table.stack), list(table.stacks)
    if similarity == "loose":
        by_text: dict[str, int] = {}
        stack_group: list[int] = []
        reps: list[Stack] = []
        memo: dict[int, str] = {}
        for s in table.stacks:
            g = by_text.setdefault(_stack_text(s, True, memo), len(reps))
            if g == len(reps):
                reps.append(s)
            stack_group.append(g)
        return [stack_group[s] for s in table.stack], reps
    index: dict[tuple[int, int], int] = {}
    keys: list[int] = []
    reps = []
    for si, a in zip(table.stack, table.argkey, strict=True):
        g = index.setdefault((si, a), len(reps))
        if g == len(reps):
            reps.append(table.stacks[si])
        keys.append(g)
    return keys, reps


def reference_group(table: GoroutineTable, similarity: Similarity) -> list[Group]:
    keys, reps = _row_keys(table, similarity)
    headers = table.headers
    # (group, header) -> goroutines: every per-goroutine statistic derives from this.
    if table.counts is None:
        per_header: Counter[tuple[int, int]] = Counter(zip(keys, table.header, strict=True))
    else:
        per_header = Counter()
        for k, h, c in zip(keys, table.header, table.counts, strict=True):
            per_header[k, h] += c
    ids: dict[int, list[int]] = defaultdict(list)
    orphans: dict[int, list[int]] = defaultdict(list)
    creators: dict[int, dict[int, int]] = defaultdict(dict)
    partial: Counter[int] = Counter()
    if table.counts is None:
        present = set(table.ids)
        for k, gid, cr in zip(keys, table.ids, table.creator, strict=True):
            ids[k].append(gid)
            if cr >= 0:
                by = creators[k]
                by[cr] = by.get(cr, 0) + 1
                if cr not in present:
                    orphans[k].append(gid)
        for row, x in table.extras.items():
            if x.partial:
                partial[keys[row]] += 1
    first_row: dict[int, int] = {}
    if similarity == "exact":  # the argument key of each group's first row
        for row, k in enumerate(keys):
            first_row.setdefault(k, row)

    groups: dict[int, Group] = {}
    memo: dict[int, str] = {}
    loose = similarity == "loose"
    for (k, hi), n in per_header.items():
        g = groups.get(k)
        if g is None:
            st = reps[k]
            argkey = table.argkey[first_row[k]] if first_row else 0
            g = groups[k] = Group(
                signature=_digest(_stack_text(st, loose, memo), similarity, argkey),
                count=0,
                frames=st.frames,
                frames_elided=st.frames_elided,
                created_by=st.created_by,
                states={},
                wait_minutes={},
                labels={},
                ids=ids.get(k, []),
                orphans=orphans.get(k, []),
                leaked=0,
                locked_to_thread=0,
                partial=partial.get(k, 0),
                creators=creators.get(k, {}),
                state_inferred=table.counts is not None,
            )
        hd = headers[hi]
        g.count += n
        g.states[hd.state] = g.states.get(hd.state, 0) + n
        g.wait_minutes[hd.wait_minutes] = g.wait_minutes.get(hd.wait_minutes, 0) + n
        for lk, lv in hd.labels_key:
            vals = g.labels.setdefault(lk, {})
            vals[lv] = vals.get(lv, 0) + n
        if hd.leaked:
            g.leaked += n
        if hd.locked_to_thread:
            g.locked_to_thread += n
    out = list(groups.values())
    for g in out:  # one state, one wait and no labels is the common case: already in order
        if len(g.states) > 1:
            g.states = dict(sorted(g.states.items(), key=lambda kv: (-kv[1], kv[0])))
        if len(g.wait_minutes) > 1:
            g.wait_minutes = dict(sorted(g.wait_minutes.items()))
        if g.labels:
            g.labels = {
                k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
                for k, v in sorted(g.labels.items())
            }
    out.sort(key=lambda g: (-g.count, g.signature))
    return out


# -- comparison ---------------------------------------------------------------------------


def _fields(g: Group) -> tuple[Any, ...]:
    """Every field, dicts as item lists (their order is part of the JSON)."""
    return (
        g.signature,
        g.count,
        g.frames,
        g.frames_elided,
        g.created_by,
        list(g.states.items()),
        list(g.wait_minutes.items()),
        [(k, list(v.items())) for k, v in g.labels.items()],
        list(g.ids),  # an array('q') now, a list in the reference: the same ids in the same order
        list(g.orphans),
        g.leaked,
        g.locked_to_thread,
        g.partial,
        list(g.creators.items()),
        g.state_inferred,
    )


@contextlib.contextmanager
def _pure() -> Iterator[None]:
    """GRPROF_PURE=1 meanwhile: `group()`'s Python twins (members, signatures) run."""
    old = os.environ.get("GRPROF_PURE")
    os.environ["GRPROF_PURE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["GRPROF_PURE"]
        else:
            os.environ["GRPROF_PURE"] = old


def _check(table: GoroutineTable) -> None:
    for sim in SIMILARITIES:
        want = [_fields(g) for g in reference_group(table, sim)]
        got = [_fields(g) for g in group(table, sim)]
        assert got == want, sim
        with _pure():
            pure = [_fields(g) for g in group(table, sim)]
        assert pure == want, (sim, "pure Python")


def _tables(path: pathlib.Path) -> list[GoroutineTable]:
    try:
        return [s.table for s in load_all(path)]
    except (ParseError, SourceError):
        return []


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_groups_match_reference(path: pathlib.Path) -> None:
    for t in _tables(path):
        _check(t)
        n = len(t)
        if n > 2:  # slices share every stack, and use some of them
            _check(t.slice(1, n - 1))
            _check(t.slice(n // 2, n))


@pytest.mark.parametrize(
    "name", ["distinct-20000.debug0.pb.gz", "shapes-21000.debug0.pb.gz", "distinct-20000.debug2.txt"]
)
def test_benchmark_profiles_match_reference(name: str) -> None:
    """The all-distinct and few-shapes profiles `benchmarks/pprof.py` generates, when present."""
    path = BENCH / name
    if not path.exists():
        pytest.skip(f"{path} not generated (benchmarks/pprof.py makes it)")
    for t in _tables(path):
        _check(t)


_FRAMES = [Frame(f"main.f{i}.func{i % 3}", f"/src/f{i % 4}.go", 10 + i) for i in range(6)]
_FRAMES += [Frame("main.f0.func0", "/src/f0.go", 10)]  # equal to the first, another object
_LABELS = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), max_size=3)


@st.composite
def _table(draw: st.DrawFn) -> GoroutineTable:
    aggregated = draw(st.booleans())
    t = GoroutineTable(aggregated=aggregated)
    stacks = [
        Stack(
            tuple(draw(st.lists(st.sampled_from(_FRAMES), min_size=1, max_size=4))),
            draw(st.booleans()),
            draw(st.sampled_from([None, *_FRAMES[:2]])),
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    headers = []
    for _ in range(draw(st.integers(1, 5))):
        pairs = draw(_LABELS)
        made = Header.make(
            draw(st.sampled_from(["chan receive", "select", "IO wait"])),
            draw(st.sampled_from([0, 0, 3, 12])),
            draw(st.booleans()),
            draw(st.booleans()),
            dict(pairs),
        )
        if draw(st.booleans()):  # labels_key as a parser might build it: unsorted, repeated keys
            made = Header(
                made.state, made.wait_minutes, made.locked_to_thread, made.leaked, labels_key=tuple(pairs)
            )
        headers.append(made)
    for row in range(draw(st.integers(0, 30))):
        t.add(
            draw(st.sampled_from(headers)),
            draw(st.sampled_from(stacks)),
            id=-1 if aggregated else 100 + row,
            creator=draw(st.sampled_from([-1, 1, 100, 101, 7])),
            argkey=draw(st.sampled_from([0, 1, 2**63 + 5])),
            count=draw(st.integers(0, 4)),
            extra=draw(st.sampled_from([None, RowExtra(partial=True), RowExtra()]))
            if not aggregated
            else None,
        )
    return t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_table())
def test_generated_tables_match_reference(t: GoroutineTable) -> None:
    _check(t)


def test_counts_past_64_bits_are_summed_in_python() -> None:
    """A profile's sample counts are int64 each, their sum per group need not be: the native
    loop gives up (OverflowError) and the Python one sums it, with the same result."""
    t = GoroutineTable(aggregated=True)
    h = Header.make("chan receive", 0, False, False, {"k": "v"})
    other = Header.make("select", 0, locked_to_thread=False, leaked=True)
    st = Stack((_FRAMES[0], _FRAMES[1]), False, None)
    for header in (h, h, other):
        t.add(header, st, id=-1, creator=-1, argkey=0, count=2**62 + 1)
    (g,) = group(t)
    assert g.count == 3 * (2**62 + 1) and g.leaked == 2**62 + 1
    assert g.states == {"chan receive": 2 * (2**62 + 1), "select": 2**62 + 1}
    assert g.labels == {"k": {"v": 2 * (2**62 + 1)}}
    _check(t)


def test_groups_are_whole_instances_however_the_extension_makes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension writes a `Group`'s slots straight (no `__init__` frame a group); a class
    it cannot account for (a subclass with a `__dict__`) is called instead. Either way every
    group equals the one its constructor makes from the same fields, and reads, copies and
    compares as one."""
    import copy
    import dataclasses

    from grprof import aggregate

    tables = _tables(ROOT / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt")
    assert tables
    made = group(tables[0])
    assert len(made) > 3 and any(g.creators for g in made)
    for g in made:
        again = Group(*(getattr(g, f.name) for f in dataclasses.fields(Group)))
        assert g == again and copy.copy(g) == g and repr(g) == repr(again)
        assert type(g.creators) is not aggregate.CreatorCounts or g.creators.creator_of is not None

    inits: list[int] = []

    class Counted(Group):  # no __slots__: a __dict__, so no slot layout to write into
        def __init__(self, *args: Any) -> None:
            inits.append(1)
            super().__init__(*args)

    monkeypatch.setattr(aggregate, "Group", Counted)
    counted = group(tables[0])
    assert len(inits) == len(counted) == len(made)
    assert all(type(g) is Counted for g in counted)
    assert [_fields(g) for g in counted] == [_fields(g) for g in made]
