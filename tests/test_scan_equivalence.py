"""The Rust scanner (`grprof._native.Scanner`) gives exactly what the Python one gives.

`src/grprof/formats/_scan.py` is the reference; `native/src/scan.rs` is its fast twin. Both
are fed the same bytes in the same chunks and must return equal `ScanResult`s (through the
real `traceback._from_native` conversion), or raise the same exception at the same call:
on every recorded fixture, every chunking, truncations at many offsets, and generated
input (dump-like lines, mutated real dumps, random bytes).

The Rust scanner parses each distinct stack as it meets it and hands over no stack text:
the Python scanner's texts are parsed with the pure-Python parser
(`parse_stacks(native=False)`) and compared with its parsed stacks, frame identity
included. The snapshots built from either (`split_dumps` then `traceback.build`) are
compared too: tables, headers, stacks, frames, prologues, truncation, notes.
"""

from __future__ import annotations

import gc
import itertools
import pathlib
import re
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof.formats import _scan, split_dumps, traceback
from grprof.formats._scan import ParsedStacks, ScanResult
from grprof.formats.traceback import _from_native, parse_stacks
from grprof.model import Frame, Snapshot
from grprof.table import Stack

try:
    from grprof import _native
except ImportError:  # pragma: no cover - only when the extension failed to build
    _native = None  # type: ignore[assignment]

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted((ROOT / "fixtures").rglob("*.txt"))
CHUNK_SIZES = (1, 7, 4096, None)  # None: the whole input in one chunk

needs_native = pytest.mark.skipif(_native is None, reason="grprof._native is not built")

# ("ok", result fields) or ("raise", (index of the failing call, exception type))
Outcome = tuple[str, Any]


def _stacks_shape(parsed: ParsedStacks) -> tuple[Any, ...]:
    """The stacks, plus which frames are the same object (by first-use order of ids)."""
    order: dict[int, int] = {}

    def ref(f: Any) -> tuple[Any, int]:
        return f, order.setdefault(id(f), len(order))

    stacks = [
        ([ref(f) for f in s.frames], s.frames_elided, None if s.created_by is None else ref(s.created_by))
        for s in parsed.stacks
    ]
    return stacks, parsed.text_stack.tolist(), list(parsed.dangling)


def _fields(r: ScanResult) -> dict[str, Any]:
    """The result as plain data; the stacks parsed (the Python scanner's texts by the Python
    parser), so that both scanners' results compare."""
    parsed = r.parsed if r.parsed is not None else parse_stacks(r.stack_texts, native=False)
    r.parsed = None
    texts, r.stack_texts = r.stack_texts, []
    d = asdict(r)
    for k, v in d.items():
        if isinstance(v, array):
            d[k] = (v.typecode, v.tolist())
    d["dumper"] = bytes(r.dumper)
    d["parsed"] = _stacks_shape(parsed)
    # One entry per distinct stack, whoever parsed it.
    assert len(r.dumper) == len(parsed.text_stack) == len(parsed.dangling)
    assert not texts or len(texts) == len(r.dumper)
    return d


def _run(new: Callable[[], Any], finish: Callable[[Any], ScanResult], chunks: Sequence[bytes]) -> Outcome:
    sc = new()
    call = 0
    try:
        for call, c in enumerate(chunks):  # noqa: B007 - the index is reported on failure
            sc.feed(c)
        call = len(chunks)
        return "ok", _fields(finish(sc))
    except OverflowError:
        return "raise", (call, "OverflowError")


def scan_py(chunks: Sequence[bytes]) -> Outcome:
    return _run(_scan.Scanner, lambda sc: sc.finish(), chunks)


def scan_native(chunks: Sequence[bytes]) -> Outcome:
    assert _native is not None
    return _run(_native.Scanner, lambda sc: _from_native(sc.finish(Frame)), chunks)


def split(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def cut_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


def assert_same(chunks: Sequence[bytes]) -> Outcome:
    py = scan_py(chunks)
    nat = scan_native(chunks)
    if py[0] == "ok" and nat[0] == "ok":
        assert nat[1] == py[1]  # field by field, so a failure shows which one
    else:
        assert nat == py
    return py


def _snapshot(s: Snapshot) -> dict[str, Any]:
    """What a snapshot holds, row by row, with equal frames shown as one object or not."""
    t = s.table
    order: dict[int, int] = {}

    def ref(f: Frame | None) -> tuple[Frame | None, int]:
        return f, -1 if f is None else order.setdefault(id(f), len(order))

    stacks = [([ref(f) for f in st.frames], st.frames_elided, ref(st.created_by)) for st in t.stacks]
    return {
        "source": s.source,
        "format": s.format,
        "profile": s.profile,
        "truncated": s.truncated,
        "go_version": s.go_version,
        "prologue": s.prologue,
        "headers": [(h, dict(h.labels)) for h in t.headers],
        "stacks": stacks,
        "rows": list(zip(t.ids, t.header, t.stack, t.creator, t.argkey, strict=True)),
        "extras": t.extras,
        "counts": t.counts,
    }


def build_both(chunks: Sequence[bytes]) -> list[Any]:
    """Snapshots from either scanner, as `formats` builds them from debug=2 text."""
    out = []
    for r in (_scan_py_raw(chunks), _scan_native_raw(chunks)):
        notes = split_dumps(r, "in")
        out.append((notes, [_snapshot(s) for s in traceback.build(r, "in")]))
    return out


def _scan_py_raw(chunks: Sequence[bytes]) -> ScanResult:
    sc = _scan.Scanner()
    for c in chunks:
        sc.feed(c)
    return sc.finish()


def _scan_native_raw(chunks: Sequence[bytes]) -> ScanResult:
    """As `traceback.scan` runs it: the stacks made as `Stack` objects in Rust."""
    sc = _native.Scanner()
    for c in chunks:
        sc.feed(c)
    return _from_native(sc.finish(Frame, True, Stack))


def assert_same_snapshots(chunks: Sequence[bytes]) -> list[dict[str, Any]]:
    py, nat = build_both(chunks)
    assert nat[0] == py[0]  # split_dumps' notes
    assert len(nat[1]) == len(py[1])
    for a, b in zip(nat[1], py[1], strict=True):
        assert a == b
    return py[1]


def _id(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT / "fixtures"))


def test_native_extension_is_built() -> None:
    """`pip install -e .` builds the Rust scanner; without it grprof quietly falls back to Python."""
    assert _native is not None, "grprof._native did not build: is cargo installed?"
    assert hasattr(_native, "Scanner")


def test_fixtures_exist() -> None:
    assert FIXTURES, "no recorded fixtures under tests/fixtures"


# -- recorded dumps -------------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("path", FIXTURES, ids=_id)
@pytest.mark.parametrize("size", CHUNK_SIZES, ids=lambda s: f"chunk{s or 'all'}")
def test_fixture_every_chunking(path: pathlib.Path, size: int | None) -> None:
    data = path.read_bytes()
    kind, _ = assert_same(split(data, size))
    assert kind == "ok"


@needs_native
@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture_snapshots(path: pathlib.Path) -> None:
    """The snapshots built from either scanner's result are the same, row by row."""
    data = path.read_bytes()
    snaps = assert_same_snapshots([data])
    if re.search(rb"(?m)^goroutine \d+ \[", data):
        assert snaps and any(s["rows"] for s in snaps)


@needs_native
@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture_truncated(path: pathlib.Path) -> None:
    """Cut anywhere (mid-line, mid-block, right after a newline): a dump stopped by the 64 MiB cap."""
    data = path.read_bytes()
    n = len(data)
    offsets = set(range(0, n, max(1, n // 97)))
    for nl in [i for i, b in enumerate(data) if b == 10][:: max(1, data.count(b"\n") // 40)]:
        offsets |= {nl - 1, nl, nl + 1, nl + 2}
    for i, k in enumerate(sorted(o for o in offsets if 0 <= o <= n)):
        assert_same([data[:k]])
        if i % 8 == 0:  # small chunks too, on a sample: a cut inside the carried-over line
            assert_same(split(data[:k], 7))
        if i % 4 == 0:  # and what is built from them: `partial`, `truncated`
            assert_same_snapshots([data[:k]])


@needs_native
def test_all_fixtures_in_one_stream() -> None:
    """Many dumps one after another, in big chunks (the scanner releases the GIL for those)."""
    data = b"".join(p.read_bytes() for p in FIXTURES)
    for size in (1 << 16, 1 << 20, None):
        kind, r = assert_same(split(data, size))
        assert kind == "ok"
        assert r["dumps"]
        assert len(r["ids"][1]) > len(FIXTURES)  # the scanner did see the goroutines
    snaps = assert_same_snapshots(split(data, 1 << 20))
    assert len(snaps) > 1


# The native scanner parses stacks on a second thread from this many distinct stacks on
# (native/src/pipeline.rs `THREAD_AT`).
THREAD_AT = 1024


def _distinct_dump(n: int, seed: int) -> bytes:
    """A debug=2 dump with `n` distinct stacks: Unicode and generic names, elided frames,
    `created by` with and without a creator, every 20th goroutine repeating an earlier
    stack, two dumper calls, a last frame cut by the end of input (the n-th stack)."""
    import random

    rnd = random.Random(seed)
    names = ["main.work", "example.com/svc/h.(*H).Serve.func2.1", "ünïcode.fünc1", "pkg.Map[...].Get"]
    out: list[str] = []
    stacks: list[list[str]] = []
    gid = 0
    while len(stacks) < n - 1:
        gid += 1
        out.append(f"goroutine {gid} [{rnd.choice(['chan receive', 'select', 'IO wait, 3 minutes'])}]:")
        if gid % 20 == 0:
            out.extend(rnd.choice(stacks))
            continue
        body = []
        for depth in range(rnd.randint(1, 9)):
            fn = f"{rnd.choice(names)}.f{len(stacks)}_{depth}"  # distinct from every other stack
            body.append(f"{fn}(0x{rnd.getrandbits(32):x}, ...)")
            body.append(f"\t/src/{depth}/x.go:{rnd.randint(1, 999)} +0x1d")
        if len(stacks) in (7, n - 5):
            body[:0] = ["runtime.Stack(...)", "\t/go/src/runtime/mprof.go:1 +0x1"]
        if rnd.random() < 0.1:
            body.append("...additional frames elided...")
        if rnd.random() < 0.8:
            by = f"main.spawn{rnd.randint(0, 9)}"
            body.append(
                f"created by {by} in goroutine {rnd.randint(1, 99)}" if gid % 2 else f"created by {by}"
            )
            body.append("\t/src/main.go:12 +0x1d")
        body.append("")
        stacks.append(body)
        out.extend(body)
    out.append("goroutine 999999 [running]:\nmain.cut(...)")
    return "\n".join(out).encode()


@needs_native
@pytest.mark.parametrize("n", [THREAD_AT - 1, THREAD_AT, THREAD_AT + 1, 3 * THREAD_AT])
def test_many_distinct_stacks_parsed_on_a_second_thread(n: int) -> None:
    """Past `THREAD_AT` distinct stacks the scanner hands their texts, in batches, to a
    thread that parses them: the same stacks, frames and snapshots as the Python scanner's,
    whether the dump comes in small chunks (batches span many `feed` calls), big ones (the
    GIL released) or whole."""
    data = _distinct_dump(n, seed=n)
    for size in (4096, 1 << 20, None):
        kind, r = assert_same(split(data, size))
        assert kind == "ok"
        assert len(r["parsed"][0]) == n and sum(r["dumper"]) == 2
    assert_same_snapshots(split(data, 1 << 16))


@needs_native
def test_dumper_flag_marks_the_goroutine_that_wrote_the_dump() -> None:
    """The one stack-text fact the Rust scanner keeps: which stacks call runtime.Stack or
    writeGoroutineStacks (split_dumps looks for the goroutine that wrote a second dump)."""
    data = b"".join(p.read_bytes() for p in FIXTURES)
    py = _scan_py_raw([data])
    nat = _scan_native_raw([data])
    want = [any(d in t for d in _scan.DUMPER_CALLS) for t in py.stack_texts]
    assert sum(want) > 0 and not all(want)
    assert [bool(b) for b in nat.dumper] == want == [bool(b) for b in py.dumper]


@needs_native
def test_stack_objects_made_in_rust_are_the_rows_stacks() -> None:
    """`finish(Frame, s, Stack)` makes the `Stack` and `Frame` objects without their
    `__init__`: the same stacks, frames shared alike, as `stacks_of` over `finish(Frame)`'s rows."""
    data = b"".join(p.read_bytes() for p in FIXTURES)
    made = _scan_native_raw([data]).parsed
    rows = _scan_native_raw_rows([data]).parsed
    assert made is not None and rows is not None and len(made.stacks) > 100
    assert _stacks_shape(made) == _stacks_shape(rows)
    assert all(type(s) is Stack and type(s.frames_elided) is bool for s in made.stacks)
    frames = [f for s in made.stacks for f in (*s.frames, s.created_by) if f is not None]
    assert all(type(f) is Frame and type(f.line) is int for f in frames)
    assert made.stacks == rows.stacks and hash(made.stacks[0]) == hash(rows.stacks[0])
    # In no cycle: left out of the cyclic collector's lists, as their frames tuples are.
    assert not any(gc.is_tracked(s) or gc.is_tracked(s.frames) for s in made.stacks)
    assert not any(gc.is_tracked(f) for f in frames)


def _scan_native_raw_rows(chunks: Sequence[bytes]) -> ScanResult:
    sc = _native.Scanner()
    for c in chunks:
        sc.feed(c)
    return _from_native(sc.finish(Frame))


@needs_native
def test_argkey_is_xxh3_of_the_argument_lists() -> None:
    """Rows with the same arguments share an argkey: xxh3_64 of their `(...)` parts, newline-joined."""
    data = b"".join(p.read_bytes() for p in FIXTURES)
    sc = _native.Scanner()
    sc.feed(data)
    r = _from_native(sc.finish(Frame))
    texts = _scan_py_raw([data]).stack_texts  # the Rust scanner keeps none
    assert len(r.argkey) == len(r.ids) > 100
    # A stack's raw text is that of its first row: recompute that row's argkey from it.
    first_row: dict[int, int] = {}
    for row, s in enumerate(r.stack):
        first_row.setdefault(s, row)
    for s, row in first_row.items():
        lines = texts[s].split(b"\n")
        args = [ln[ln.rfind(b"(") :] for ln in lines if ln.endswith(b")") and ln[:1] not in (b" ", b"\t")]
        assert r.argkey[row] == xxhash.xxh3_64_intdigest(b"\n".join(args))


# -- edge cases worth naming ----------------------------------------------------------------

HEADER = b"goroutine 1 [running]:\nmain.main()\n\t/x/main.go:5 +0x1d\n"


@needs_native
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"goroutine 1 [running]:",
        HEADER,
        HEADER + b"\n" + HEADER,  # goroutine 1 twice: a second dump
        HEADER.replace(b"\n", b"\r\n"),
        HEADER.replace(b"\t", b"        "),  # tabs pasted as spaces
        b"goroutine 1 gp=0xc000002380 m=0 mp=0x5a3f40",  # gp= header without `[`
        b"goroutine 12 [select]:\nmain.f)\n",  # a `)` line without `(`
        b"goroutine 0 [idle]:\n\ngoroutine 0 [idle]:\n",  # id 0 never starts a new dump
        b"goroutine 1234567890123456789 [running]:\nmain.main()\n",  # 19 digits, fits
        b"goroutine 12345678901234567890 [running]:\n",  # 20 digits: not a header
        b"goroutine 2 [running]:\nmain.g()\ncreated by main.main in goroutine 1234567890123456789\n",
        # Between blocks, register lines are skipped and other text ends the dump (so the next
        # header starts a new one): the rule's edges.
        *(
            HEADER + b"\n" + reg + b"\n" + HEADER.replace(b"goroutine 1 ", b"goroutine 2 ")
            for reg in (b"abcdefg 0x1", b"abcdefgh 0x1", b"rax 0x", b"rax 0xA", b"rax  \t0x1", b"r_1 0x1")
        ),
        HEADER + b"\nruntime stack:\nruntime.throw()\n\ngoroutine 2 [running]:\n",
        HEADER + b"-----\n\nSIGQUIT: quit\nPC=0x1 m=0\n\ngoroutine 2 [running]:\n",
    ],
)
def test_edge_cases(data: bytes) -> None:
    for size in CHUNK_SIZES:
        assert_same(split(data, size))


@needs_native
@pytest.mark.parametrize(
    "data",
    [
        b"goroutine 9999999999999999999 [running]:\nmain.main()\n",
        b"goroutine 2 [running]:\nmain.g()\ncreated by main.main in goroutine 9223372036854775808\n\n",
    ],
)
def test_ids_past_int64_are_not_ids(data: bytes) -> None:
    """Go's goroutine ids are int64: larger numbers make neither a header nor a creator id."""
    for size in (1, None):
        kind, result = assert_same(split(data, size))
        assert kind != "raise", result


@needs_native
def test_native_scanner_refuses_use_after_finish() -> None:
    sc = _native.Scanner()
    sc.feed(HEADER)
    sc.finish(Frame)
    with pytest.raises(RuntimeError):
        sc.feed(HEADER)
    with pytest.raises(RuntimeError):
        sc.finish(Frame)


@needs_native
def test_bytearray_chunks_scan_like_bytes() -> None:
    def run(chunk: bytes | bytearray) -> dict[str, Any]:
        sc = _native.Scanner()
        sc.feed(chunk)  # type: ignore[arg-type]  # bytes-like is fine for the Rust one
        return _fields(_from_native(sc.finish(Frame)))

    assert run(bytearray(HEADER)) == run(HEADER)


# -- generated input ------------------------------------------------------------------------

_IDS = st.sampled_from(["0", "1", "2", "7", "18", "0018", "1234567890123456789", "99999999999999999999", ""])
_STATES = st.sampled_from(
    [
        "running",
        "chan receive",
        "select, 5 minutes",
        "semacquire, locked to thread",
        "sleep (leaked)",
        'select labels:{"k": "v"}',
        "idle",
    ]
)
_FUNCS = st.sampled_from(
    [
        "main.f",
        "main.(*T).m",
        "runtime.gopark",
        "main.main.func1",
        "net/http.(*conn).serve",
        "x",
        # The calls that mark the goroutine writing a dump (`ScanResult.dumper`).
        "runtime.Stack",
        "runtime/pprof.writeGoroutineStacks",
    ]
)
_ARGS = st.sampled_from(["()", "(...)", "(0x1, {0x2, 0x3})", "(0xc000012345?, 0x0)", ")", "(0x1"])
_NOISE = st.sampled_from(
    [
        "",
        "-----",
        "PC=0x46e2a1 m=0 sigcode=0",
        "SIGQUIT: quit",
        "signal arrived during cgo execution",
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x0]",
        "runtime: g 1: unexpected return pc",
        "rax    0x0",
        "r10    0xc000012345",
        "rip    0x46e2a1",
        "rflags 0x246",
        "runtime stack:",
        "panic: boom",
        "fatal error: all goroutines are asleep - deadlock!",
        "goroutine running on other thread; stack unavailable",
        "non-Go function",
        "...additional frames elided...",
        "...5 frames elided...",
        "\tstack unavailable",
        "exit status 2",
        "=== RUN   TestX",
    ]
)


@st.composite
def _dump_line(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        head = draw(st.sampled_from(["goroutine {} [{}]:", "goroutine {} gp=0xc000002380 m=0 [{}]:"]))
        return str(head.format(draw(_IDS), draw(_STATES)))
    if kind == 1:
        return f"goroutine {draw(_IDS)}" + draw(st.sampled_from(["", " [", " gp=", " x"]))
    if kind in (2, 3):
        return draw(_FUNCS) + draw(_ARGS)
    if kind in (4, 5):
        indent = draw(st.sampled_from(["\t", "        ", " \t"]))
        tail = draw(st.sampled_from(["", " +0x1d", " +0x1d fp=0xc000 sp=0xc001 pc=0x4"]))
        return f"{indent}/src/app/main.go:{draw(st.integers(0, 99))}{tail}"
    if kind == 6:
        where = draw(st.sampled_from(["", " in goroutine ", " in goroutine 12a", " in goroutine "]))
        return f"created by {draw(_FUNCS)}" + where + (draw(_IDS) if where == " in goroutine " else "")
    if kind == 7:
        return f"[originating from goroutine {draw(_IDS)}]:"
    if kind == 8:
        return draw(_NOISE)
    return draw(st.text(max_size=20))


# `rax    0x0`-like lines, valid or just not: register dumps sit between blocks in crash output.
_REGISTER = st.builds(
    "{}{}{}".format,
    st.one_of(
        st.sampled_from(["rax", "r10", "rflags", "fault", "abcdefg", "abcdefgh", "", "R10", "r_1"]),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789_R", max_size=9),
    ),
    st.sampled_from([" ", "    ", "", "\t"]),
    st.one_of(
        st.sampled_from(["0x0", "0x46e2a1", "0x", "0xg1", "0X1", "1", "0x1 "]),
        st.text("0123456789abcdefgAx", max_size=5),
    ),
)


_ANCESTOR_LINES = [
    "main.f(...)",
    "\t/a.go:1 +0x1",
    "...additional frames elided...",
    "created by main.main in goroutine 1",
    "non-Go function",
    "main.g",
]


@st.composite
def _block(draw: st.DrawFn) -> list[str]:
    """A goroutine block shaped like real output, with its parts picked at random."""
    ids = st.sampled_from(["1", "2", "7", "18", "1234567890123456789"])
    lines = [f"goroutine {draw(ids)} [{draw(_STATES)}]:"]
    for _ in range(draw(st.integers(0, 4))):
        lines.append(draw(_FUNCS) + draw(_ARGS))
        if draw(st.booleans()):
            lines.append(f"\t/src/app/main.go:{draw(st.integers(0, 99))} +0x1d")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["...additional frames elided...", "...5 frames elided..."])))
    if draw(st.booleans()):
        lines += [f"created by {draw(_FUNCS)} in goroutine {draw(ids)}", "\t/src/app/main.go:9 +0x2"]
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"[originating from goroutine {draw(ids)}]:")
        lines += draw(st.lists(st.sampled_from(_ANCESTOR_LINES), max_size=5))
    if draw(st.booleans()):
        lines.append("")
    return lines


@st.composite
def dump_text(draw: st.DrawFn) -> bytes:
    crash_section = st.lists(st.one_of(_REGISTER, _NOISE), max_size=6)
    pieces = st.one_of(_block(), crash_section, st.lists(_dump_line(), max_size=4))
    lines = [ln for piece in draw(st.lists(pieces, max_size=25)) for ln in piece]
    out = []
    for ln in lines:
        out.append(ln + draw(st.sampled_from(["", "", "", " ", "\t", "\r", " \r"])))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(out) + draw(st.sampled_from(["", ending]))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def chunked(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> list[bytes]:
    b = draw(data)
    cuts = draw(st.lists(st.integers(0, len(b)), max_size=12))
    return cut_at(b, cuts)


def _fixture_bytes() -> st.SearchStrategy[bytes]:
    return st.sampled_from(FIXTURES or [pathlib.Path(__file__)]).map(lambda p: p.read_bytes())


@st.composite
def mutated_dump(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_fixture_bytes()))
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 3))
        if op == 0:  # delete a span
            del data[i : i + draw(st.integers(1, 200))]
        elif op == 1:  # insert random bytes
            data[i:i] = draw(st.binary(max_size=8))
        elif op == 2:  # duplicate a span (repeated goroutines, a second dump)
            data[i:i] = data[i : i + draw(st.integers(1, 2000))]
        else:  # insert a dump-like line
            data[i:i] = draw(_dump_line()).encode("utf-8", "surrogatepass") + b"\n"
    return bytes(data)


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_native
@_SETTINGS
@given(chunked(dump_text()))
def test_generated_dumps(chunks: list[bytes]) -> None:
    assert_same(chunks)
    assert_same_snapshots(chunks)


@needs_native
@_SETTINGS
@given(chunked(mutated_dump()))
def test_mutated_fixtures(chunks: list[bytes]) -> None:
    assert_same(chunks)
    assert_same_snapshots(chunks)


@needs_native
@_SETTINGS
@given(chunked(st.binary(max_size=3000)))
def test_random_bytes(chunks: list[bytes]) -> None:
    assert_same(chunks)


_SOUP = [b"\n", b"\r", b" ", b"\t", b"(", b")", b"[", b"goroutine 1 [", b"created by ", b"..."]


@needs_native
@_SETTINGS
@given(chunked(st.lists(st.sampled_from(_SOUP), max_size=80).map(b"".join)))
def test_separator_soup(chunks: list[bytes]) -> None:
    assert_same(chunks)
