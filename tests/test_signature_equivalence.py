"""The Rust signatures (`grprof._native.signatures_of`, `loose_groups_of`) are the Python ones.

A group's signature is stored (reports, baselines, rules, the store) and compared across
versions, so the Rust twin must give the same 16 hex digits for the same stack, byte for
byte: for every similarity (default, exact with its argument key, loose with its grouping by
text), on the stacks of every recorded fixture in every format, and on generated stacks
(Unicode and other scripts' digits in names, names with newlines, big line numbers, long
stacks that release the GIL, elided frames, `created by`, repeated and shared frame
objects). Ancestors (`[originating from goroutine N]`) are not part of a stack's text, so
they do not enter a signature and are not generated here.

Three paths are compared: the Rust one, the Python one that `group()` falls back to
(`signatures(..., native=False)`), and `signature()`, which builds each text as a `str`
on its own (the code every earlier version hashed).
"""

from __future__ import annotations

import gzip
import pathlib
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof import _rust, load_all
from grprof.aggregate import SIMILARITIES, _loose_groups, group, signature, signatures
from grprof.errors import ParseError, SourceError
from grprof.frames import Frame
from grprof.model import Snapshot
from grprof.serving import window as window_mod
from grprof.serving.window import Window
from grprof.table import GoroutineTable, Header, SignatureCache, Stack

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".txt", ".gz"))
BENCH = ROOT.parent / "benchmarks" / ".work"

native_only = pytest.mark.skipif(
    _rust.native("signatures_of") is None, reason="grprof._native is not built (or GRPROF_PURE is set)"
)


def _argkeys(stacks: list[Stack], seed: int) -> list[int]:
    rnd = random.Random(seed)
    return [rnd.choice([0, 1, 2**63 + 5, 2**64 - 1, rnd.getrandbits(64)]) for _ in stacks]


def assert_same(stacks: list[Stack], seed: int = 0) -> int:
    """Rust, Python and the per-stack reference agree for every similarity; returns how many
    stack signatures were compared."""
    keys = _argkeys(stacks, seed)
    for sim in SIMILARITIES:
        want = [signature(s, sim, k if sim == "exact" else 0) for s, k in zip(stacks, keys, strict=True)]
        assert signatures(stacks, sim, keys, native=False) == want, sim
        got = signatures(stacks, sim, keys, native=True)
        assert got == want, sim
        assert all(type(g) is str and len(g) == 16 for g in got)
    # Loose grouping: the same groups, numbered alike, with the same first stack each.
    assert _loose_groups(stacks, True) == _loose_groups(stacks, False)
    return len(stacks)


def _snapshots(path: pathlib.Path) -> list[Snapshot]:
    try:
        return load_all(path)
    except (ParseError, SourceError):
        return []


@native_only
def test_every_fixture() -> None:
    compared = 0
    formats: set[str] = set()
    for path in FIXTURES:
        for snap in _snapshots(path):
            stacks = snap.table.stacks
            compared += assert_same(stacks, seed=len(stacks))
            if stacks:
                formats.add(snap.format)
            # Exact similarity repeats stacks, with the keys of the table's rows.
            rows = list(zip(snap.table.stack, snap.table.argkey, strict=True))
            reps = [stacks[i] for i, _ in rows]
            keys = [k for _, k in rows]
            assert signatures(reps, "exact", keys, native=True) == signatures(
                reps, "exact", keys, native=False
            )
    # Guards against a fixture tree that moved, or a loader that stopped reading them.
    assert compared >= 1000, compared
    assert len(formats) >= 3, formats


@native_only
@pytest.mark.parametrize("name", ["distinct-20000.debug0.pb.gz", "distinct-20000.debug1.txt"])
def test_benchmark_dumps(name: str) -> None:
    """The 20,000-distinct-stack dump `benchmarks/pprof.py` generates, when present."""
    path = BENCH / name
    if not path.exists():
        pytest.skip(f"{path} not generated (benchmarks/pprof.py makes it)")
    assert sum(assert_same(s.table.stacks) for s in _snapshots(path)) >= 20_000


@native_only
@pytest.mark.parametrize("pure", ["1", ""])
def test_group_uses_the_same_signatures(pure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`group()` with and without GRPROF_PURE: the same signatures in the same order."""
    seen = 0
    for path in FIXTURES[::3]:
        for snap in _snapshots(path):
            for sim in SIMILARITIES:
                monkeypatch.setenv("GRPROF_PURE", "1")
                want = [(g.signature, g.count, g.frames) for g in group(snap.table, sim)]
                monkeypatch.setenv("GRPROF_PURE", pure)
                got = [(g.signature, g.count, g.frames) for g in group(snap.table, sim)]
                assert got == want
                seen += len(got)
    assert seen >= 300, seen


# -- signatures the debug=2 scanner makes with the stacks -----------------------------------


def _many_stacks_dump(n: int, seed: int) -> str:
    """A debug=2 dump of `n` goroutines with (nearly) all distinct stacks, for the scanner's
    own signatures (made from 2,000 stacks up): arguments and offsets the text leaves out of
    a stack, Unicode and generic names, line numbers past 32 bits, elided frames, `created
    by` with and without a creator id, a frame whose file line is cut."""
    rnd = random.Random(seed)
    names = ["main.work", "example.com/svc/h.(*H).Serve.func2.1", "ünïcode.fünc1", "pkg.Map[...].Get"]
    out = []
    for gid in range(1, n + 1):
        out.append(f"goroutine {gid} [chan receive]:")
        for depth in range(rnd.randint(1, 12)):
            fn = f"{rnd.choice(names)}.f{rnd.randint(0, 300)}"
            out.append(f"{fn}(0x{rnd.getrandbits(32):x}, ...)")
            out.append(f"\t/src/{depth}/x.go:{rnd.choice([rnd.randint(1, 999), 2**40 + depth])} +0x1d")
        if rnd.random() < 0.1:
            out.append("...additional frames elided...")
        if rnd.random() < 0.8:
            by = f"main.spawn{rnd.randint(0, 9)}"
            out.append(
                f"created by {by} in goroutine {rnd.randint(1, n)}"
                if rnd.random() < 0.5
                else f"created by {by}"
            )
            out.append("\t/src/main.go:12 +0x1d")
        out.append("")
    out.append("goroutine 999999 [running]:\nmain.cut(...)")  # ends without its file line
    return "\n".join(out)


@native_only
def test_scanner_signatures_are_the_stacks_signatures(tmp_path: pathlib.Path) -> None:
    """From 2,000 distinct stacks the native scanner hashes each stack's signature from its
    parsed strings (`GoroutineTable.signatures`) beside making the Python objects: the same
    digests as the Python path's from those objects, and `group()` uses them."""
    path = tmp_path / "many.txt"
    path.write_text(_many_stacks_dump(3000, 7))
    snap = load_all(path)[0]
    table = snap.table
    assert len(table.stacks) >= 2900
    assert table.signatures is not None
    assert table.stack_signatures() == signatures(table.stacks, native=False)
    got = [(g.signature, g.count, g.frames) for g in snap.groups()]
    table.signatures = None  # what `group` computes without them
    assert got == [(g.signature, g.count, g.frames) for g in group(table)]


@native_only
def test_groups_made_while_the_signatures_are_hashed(tmp_path: pathlib.Path) -> None:
    """`group()` makes the groups while the scanner's signatures are still being hashed and
    writes them in once hashed: the same groups, in the same order, as from the hashed list
    and as the Python path makes them; for table slices (which share the pending signatures)
    too."""
    path = tmp_path / "many.txt"
    path.write_text(_many_stacks_dump(3000, 11))
    table = load_all(path)[0].table
    assert table.pending_signatures() is not None
    sliced = table.slice(5, len(table) - 5)
    got = [_group_fields(g) for g in group(table)]
    got_slice = [_group_fields(g) for g in group(sliced)]
    assert table.pending_signatures() is not None  # group() does not keep the list
    assert table.stack_signatures() is not None and table.pending_signatures() is None
    assert got == [_group_fields(g) for g in group(table)]
    assert got_slice == [_group_fields(g) for g in group(sliced)]
    table.signatures = None
    assert got == [_group_fields(g) for g in group(table)]


def _group_fields(g: Any) -> tuple[Any, ...]:
    return (g.signature, g.count, g.frames, g.states, list(g.ids), list(g.orphans), dict(g.creators))


@native_only
def test_scanner_signatures_wait_in_any_thread_and_can_be_left_out(tmp_path: pathlib.Path) -> None:
    """The pending signatures are asked for from several threads at once (a slice of the
    table shares them): each gets them all. A caller with its own cache of signatures (the
    daemon's pipeline) has the scanner leave them out."""
    import threading

    from grprof.formats import parse_chunks

    data = _many_stacks_dump(2500, 9).encode()
    table = parse_chunks([data], "many")[0].table
    pending = table.signatures
    assert pending is not None and not isinstance(pending, list)
    got: list[list[str]] = []
    threads = [threading.Thread(target=lambda: got.append(pending.result())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(got) == 4 and all(g == got[0] for g in got)
    assert got[0] == signatures(table.stacks, native=False)
    assert parse_chunks([data], "many", signatures=False)[0].table.signatures is None


def _many_stacks_profile(n: int, seed: int) -> bytes:
    """A recorded debug=0 profile (tests/fixtures/kernels) with its samples replaced by `n`
    of random sequences of its own locations: (nearly) all distinct stacks."""
    from test_pprof_equivalence import _enc, pb_decode, pb_encode

    raw = gzip.decompress((ROOT / "fixtures/kernels/plain/1.goroutine.debug0.pb.gz").read_bytes())
    fields = pb_decode(raw)
    locations = [next(v for num, _, v in pb_decode(loc) if num == 1) for num, _, loc in fields if num == 4]
    rnd = random.Random(seed)
    samples = [
        pb_encode(
            [
                (1, 2, b"".join(_enc(rnd.choice(locations)) for _ in range(rnd.randint(1, 15)))),
                (2, 2, _enc(rnd.randint(1, 3))),
            ]
        )
        for _ in range(n)
    ]
    return pb_encode([f for f in fields if f[0] != 2] + [(2, 2, smp) for smp in samples])


@native_only
def test_decoder_signatures_are_the_stacks_signatures() -> None:
    """From 2,000 distinct stacks the native debug=0 decoder hashes their signatures while
    the stacks become Python objects: the Python path's digests, used by `group()`; not
    with `signatures=False` (a daemon's pipeline)."""
    from grprof.formats import pprof

    data = _many_stacks_profile(3000, 4)
    snap = pprof.parse(data, "many")
    table = snap.table
    assert len(table.stacks) >= 2500
    assert table.signatures is not None
    assert table.stack_signatures() == signatures(table.stacks, native=False)
    got = [(g.signature, g.count, g.frames) for g in snap.groups()]
    table.signatures = None
    assert got == [(g.signature, g.count, g.frames) for g in group(table)]
    assert pprof.parse(data, "many", signatures=False).table.signatures is None


def test_decoder_signatures_of_smaller_profiles_come_from_its_cache() -> None:
    """Below 2,000 stacks the decoder hashes each stack not hashed before and keeps the
    signature with the stack it caches across profiles: a profile read again (a scraped
    service) or sharing some stacks with an earlier one gets every signature, the Python
    path's digest of each of its stacks, in its stacks' order."""
    from grprof.formats import pprof

    first = pprof.parse(_many_stacks_profile(500, 4), "few").table
    assert first.signatures == signatures(first.stacks, native=False)
    again = pprof.parse(_many_stacks_profile(500, 4), "again").table
    assert again.stacks == first.stacks and again.signatures == first.signatures
    # The same draws go on: the first 500 samples are the ones above, 300 more are new.
    more = pprof.parse(_many_stacks_profile(800, 4), "more").table
    assert more.stacks[: len(first.stacks)] == first.stacks and len(more.stacks) > len(first.stacks)
    assert more.signatures == signatures(more.stacks, native=False)
    assert pprof.parse(_many_stacks_profile(500, 4), "none", signatures=False).table.signatures is None


def _many_stacks_debug1(n: int, seed: int) -> bytes:
    """A debug=1 profile of `n` blocks, each a random sequence of the frame lines of a
    recorded one (tests/fixtures/kernels): (nearly) all distinct stacks."""
    text = (ROOT / "fixtures/kernels/plain/1.goroutine.debug1.txt").read_text()
    lines = sorted({ln for ln in text.splitlines() if ln.startswith("#\t0x")})
    rnd = random.Random(seed)
    out = [f"goroutine profile: total {n}"]
    for _ in range(n):
        chosen = [rnd.choice(lines) for _ in range(rnd.randint(1, 12))]
        pcs = " ".join(hex(int(ln.split("\t")[1], 16) + 1) for ln in chosen)
        out += [f"1 @ {pcs}", *chosen, ""]
    return "\n".join(out).encode()


@native_only
def test_debug1_signatures_are_the_stacks_signatures() -> None:
    """The native debug=1 parser hashes a big profile's signatures as the debug=0 decoder
    does: the Python path's digests."""
    from grprof.formats import debug1

    data = _many_stacks_debug1(3000, 5)
    table = debug1.parse(data, "many")[0].table
    assert len(table.stacks) >= 2500
    assert table.stack_signatures() == signatures(table.stacks, native=False)
    assert debug1.parse(data, "many", signatures=False)[0].table.signatures is None


@native_only
def test_debug1_signatures_of_smaller_profiles_come_from_the_cache() -> None:
    """As the debug=0 decoder's: below 2,000 stacks each stack is hashed once while cached,
    and every profile read gets all its stacks' signatures, the Python path's digests."""
    from grprof.formats import debug1

    first = debug1.parse(_many_stacks_debug1(400, 6), "few")[0].table
    assert first.signatures == signatures(first.stacks, native=False)
    more = debug1.parse(_many_stacks_debug1(700, 6), "more")[0].table  # the same 400 first
    assert more.stacks[: len(first.stacks)] == first.stacks and len(more.stacks) > len(first.stacks)
    assert more.signatures == signatures(more.stacks, native=False)
    assert debug1.parse(_many_stacks_debug1(400, 6), "none", signatures=False)[0].table.signatures is None


@native_only
def test_few_stacks_are_left_to_group(tmp_path: pathlib.Path) -> None:
    """Below 2,000 stacks the scanner leaves the signatures to `group()`, which a daemon's
    cache of stacks it has seen serves (`SignatureCache`)."""
    path = tmp_path / "few.txt"
    path.write_text(_many_stacks_dump(300, 8))
    assert load_all(path)[0].table.signatures is None


@native_only
def test_many_stacks_hashed_on_several_threads() -> None:
    """From 2,048 stacks `signatures_of` hashes parts of them on several threads: the digests
    come back in order, for every similarity."""
    rnd = random.Random(11)
    frames = [Frame(f"example.com/svc/h{i}.Handler.func{i % 7}", f"/src/h{i}.go", i) for i in range(500)]
    stacks = [
        Stack(tuple(rnd.choice(frames) for _ in range(rnd.randint(1, 30))), rnd.random() < 0.1, None)
        for _ in range(5000)
    ]
    assert assert_same(stacks, seed=3) == 5000


# -- generated stacks ----------------------------------------------------------------------

_NAMES = st.one_of(
    st.sampled_from(
        [
            "main.main",
            "main.main.func15.1",
            "runtime.gcenable.gowrap1",
            "main.seq.1",
            "main.(*Server).handle.func2.1",
            "pkg.Map[...].Get.func3",
            "a.1.2.3",
            "a.12\n",  # `$` matches before a final newline
            "a.12\n\n",
            "a.func7x",
            "a.func",
            "x.\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to Python's \d
            "x.func\u0663.1",
            "ünïcode.fünc1.2",
            "漢字.func1",
            "",
            "...",
            "created by main.main",
        ]
    ),
    st.text(alphabet=st.sampled_from(list("ab.01239func\u0663\u00e9\n ")), max_size=20),
    st.text(max_size=12).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
)
_LINES = st.one_of(st.integers(0, 5000), st.sampled_from([2**63 - 1, 2**63, 2**64 + 7, -1]))


@st.composite
def _stacks(draw: st.DrawFn) -> list[Stack]:
    frames = [
        Frame(draw(_NAMES), draw(st.sampled_from(["/src/a.go", "/ü/b.go", "", "c.go:1"])), draw(_LINES))
        for _ in range(draw(st.integers(1, 8)))
    ]
    # Equal frames as other objects: texts come from the object, whichever it is.
    frames += [Frame(f.function, f.file, f.line) for f in frames[:2]]
    stacks = [
        Stack(
            tuple(draw(st.lists(st.sampled_from(frames), max_size=6))),
            draw(st.booleans()),
            draw(st.sampled_from([None, *frames])),
        )
        for _ in range(draw(st.integers(1, 8)))
    ]
    # Repeated stack objects (exact similarity gives a stack once per argument key).
    return stacks + draw(st.lists(st.sampled_from(stacks), max_size=3))


@native_only
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stacks(), st.integers(0, 2**32))
def test_generated_stacks(stacks: list[Stack], seed: int) -> None:
    assert_same(stacks, seed)


@native_only
def test_long_stacks_hashed_without_the_gil() -> None:
    """Over 4,096 frames in all the Rust side releases the GIL; the result is the same."""
    rnd = random.Random(9)
    frames = [
        Frame(f"example.com/svc/h{i}.Handler.func{i % 7}.{i % 3}", f"/src/h{i}.go", i) for i in range(300)
    ]
    stacks = [
        Stack(
            tuple(rnd.choice(frames) for _ in range(rnd.randint(3, 100))),
            rnd.random() < 0.2,
            rnd.choice([None, frames[0]]),
        )
        for _ in range(400)
    ]
    assert sum(len(s.frames) for s in stacks) > 4096
    assert assert_same(stacks) == 400
    # Loose grouping merges stacks here: closures differ only in their numbers.
    groups, reps, sigs = _loose_groups(stacks, True)
    assert len(set(groups)) == len(reps) == len(sigs)


# -- serve: signatures across a window -----------------------------------------------------


def _snapshot(stacks: list[Stack]) -> Snapshot:
    t = GoroutineTable()
    for i, s in enumerate(stacks):
        t.add(Header.make("chan receive"), s, id=i + 1)
    return Snapshot(source="t", format="debug=2", profile="goroutine", table=t)


def test_a_window_hashes_a_stack_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second scrape's stacks, equal to the first's, are served from the cache; only the
    new one is hashed; the signatures are the uncached ones."""
    monkeypatch.setattr(window_mod, "_STACKS", {})
    monkeypatch.setattr(window_mod, "_SHARED_BY_ID", {})
    monkeypatch.setattr(window_mod, "_SIGNATURES", SignatureCache(1000))
    hashed: list[int] = []
    real = signatures

    def counting(stacks: list[Stack], *args: object, **kw: object) -> list[str]:
        hashed.append(len(stacks))
        return real(stacks, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("grprof.aggregate.signatures", counting)

    def make(n: int) -> list[Stack]:  # new objects each scrape, as a parser makes them
        return [Stack((Frame(f"main.f{i}", "/m.go", i), Frame("main.main", "/m.go", 1))) for i in range(n)]

    w = Window.empty(4)
    first, second = _snapshot(make(5)), _snapshot(make(6))
    w.add(first)
    a = first.groups()
    w.add(second)
    b = second.groups()
    assert hashed == [5, 1]
    assert [g.signature for g in b] == [signature(Stack(g.frames)) for g in b]
    assert {g.signature for g in a} < {g.signature for g in b}
    # Other similarities do not use the cache (their signatures are not the stack's alone).
    second.groups("exact")
    assert hashed[-1] == 6


def test_signature_cache_is_bounded_and_keyed_by_identity() -> None:
    c = SignatureCache(2)
    s1, s2, s3 = (Stack((Frame(f"f{i}", "x.go", 1),)) for i in range(3))
    c.put(s1, "a")
    c.put(s2, "b")
    assert c.get(s1) == "a" and c.get(Stack(s1.frames)) is None  # equal is not enough
    c.put(s3, "c")  # full: cleared, then kept
    assert len(c.entries) == 1 and c.get(s3) == "c" and c.get(s1) is None
