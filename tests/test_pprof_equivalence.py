"""The Rust debug=0 decoder (`grprof._native.decode_pprof`) gives exactly what the Python one gives.

`src/grprof/formats/pprof.py`'s `_Decoder` is the reference; `native/src/pprof.rs` is its fast
twin. `pprof.parse(data, source, native=...)` runs one or the other; both must return equal
snapshots (every row's header, stack and count, every header's state and labels in order,
every stack's frames, time, origin, go_version, the groups) or both raise a ParseError with
the same message at the same byte: on every recorded debug=0 fixture, on re-encodings of them
(unpacked, unknown fields, split runs, duplicate ids), on every truncation of a small one, and
on mutated and random bytes. The native side must never crash the interpreter.
"""

from __future__ import annotations

import gzip
import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tablesummary import summary

from grprof.errors import ParseError
from grprof.formats import pprof

try:
    from grprof import _native
except ImportError:  # pragma: no cover - only when the extension failed to build
    _native = None  # type: ignore[assignment]

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted((ROOT / "fixtures").rglob("*.pb.gz"))
SEEDS = [gzip.decompress(p.read_bytes()) for p in FIXTURES]

pytestmark = pytest.mark.skipif(
    _native is None or not hasattr(_native, "decode_pprof"), reason="grprof._native is not built"
)


def _id(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT / "fixtures"))


def outcome(data: bytes, *, native: bool) -> tuple[str, Any]:
    try:
        snap = pprof.parse(data, "in.pb", native=native)
    except ParseError as e:
        return "raise", (e.source, str(e), e.position)
    return "ok", summary(snap)


def assert_same(data: bytes) -> tuple[str, Any]:
    py = outcome(data, native=False)
    nat = outcome(data, native=True)
    if py[0] == nat[0] == "ok":
        for k in py[1]:
            assert nat[1][k] == py[1][k], k  # field by field, so a failure shows which one
    else:
        assert nat == py
    return py


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 20, FIXTURES


def test_parse_uses_the_native_decoder_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pprof.native_decoder() is not None
    monkeypatch.setenv("GRPROF_PURE", "1")
    assert pprof.native_decoder() is None


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture(path: pathlib.Path) -> None:
    data = gzip.decompress(path.read_bytes())
    kind, snap = assert_same(data)
    assert kind == "ok"
    assert snap["stacks"] and snap["total"] > 0
    # the groups too (aggregation on top of the table)
    py = pprof.parse(data, "x", native=False).groups()
    nat = pprof.parse(data, "x", native=True).groups()
    assert [(g.signature, g.count, g.states, g.frames, g.labels) for g in nat] == [
        (g.signature, g.count, g.states, g.frames, g.labels) for g in py
    ]


def test_origin_and_leak_profile_are_read() -> None:
    leak = [d for p, d in zip(FIXTURES, SEEDS, strict=True) if p.name.startswith("goroutineleak")]
    assert leak
    for data in leak:
        snap = pprof.parse(data, "x", native=True)
        assert snap.profile == "goroutineleak"
        assert all(h.leaked for h in snap.table.headers)
    origins = [pprof.parse(d, "x", native=True).origin for d in SEEDS]
    assert any(o is not None and o.binary and o.build_id for o in origins)


# -- re-encodings (the same data written differently) --------------------------------------

Field = tuple[int, int, Any]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7


def _enc(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pb_decode(data: bytes) -> list[Field]:
    out: list[Field] = []
    pos = 0
    while pos < len(data):
        tag, pos = _uvarint(data, pos)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, pos = _uvarint(data, pos)
            out.append((num, wt, v))
        elif wt == 2:
            n, pos = _uvarint(data, pos)
            out.append((num, wt, data[pos : pos + n]))
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wt}")
    return out


def pb_encode(fields: list[Field]) -> bytes:
    out = bytearray()
    for num, wt, v in fields:
        out += _enc((num << 3) | wt)
        if wt == 0:
            out += _enc(v)
        elif wt == 2:
            out += _enc(len(v)) + v
        elif wt == 1:
            out += v.to_bytes(8, "little")
        elif wt == 5:
            out += v.to_bytes(4, "little")
    return bytes(out)


def _packed(b: bytes) -> list[int]:
    vals, pos = [], 0
    while pos < len(b):
        v, pos = _uvarint(b, pos)
        vals.append(v)
    return vals


def _unpack(sample: bytes) -> bytes:
    out: list[Field] = []
    for n, w, v in pb_decode(sample):
        out += [(n, 0, x) for x in _packed(v)] if n in (1, 2) and w == 2 else [(n, w, v)]
    return pb_encode(out)


UNKNOWN: list[Field] = [(99, 0, 12345), (100, 2, b"\x08\x01junk"), (101, 1, 2**63), (102, 5, 7)]


def _variants(raw: bytes) -> list[bytes]:
    top = pb_decode(raw)
    strings = [v for n, _, v in top if n == 6]
    return [
        pb_encode([(n, w, _unpack(v) if n == 2 else v) for n, w, v in top]),
        pb_encode(
            UNKNOWN
            + [(n, w, pb_encode([*UNKNOWN, *pb_decode(v)]) if n in (2, 3, 4, 5) else v) for n, w, v in top]
        ),
        # Samples repeated, locations and functions redefined (the last one wins), reversed order.
        pb_encode(top + [f for f in top if f[0] in (2, 4, 5)]),
        pb_encode(list(reversed(top[: -len(strings)])) + top[-len(strings) :] if strings else top),
        # Numeric labels and extra values; a label key written twice in one sample.
        pb_encode(
            [
                (
                    n,
                    w,
                    v
                    + pb_encode(
                        [
                            (3, 2, pb_encode([(1, 0, 1), (3, 0, 7)])),
                            (3, 2, pb_encode([(1, 0, 1), (2, 0, 2)])),
                            (2, 0, 5),
                        ]
                    ),
                )
                if n == 2
                else (n, w, v)
                for n, w, v in top
            ]
        ),
        # A location without lines (an unsymbolized address); a duplicated string text.
        pb_encode(
            [
                *top,
                (4, 2, pb_encode([(1, 0, 1), (3, 0, 0x4242)])),
                (6, 2, strings[1] if len(strings) > 1 else b"x"),
            ]
        ),
        # No mapping, and a mapping with no strings.
        pb_encode([f for f in top if f[0] != 3]),
        pb_encode([(3, 2, pb_encode([(1, 0, 1)])), *top]),
    ]


@pytest.mark.parametrize("path", FIXTURES[:: max(1, len(FIXTURES) // 8)], ids=_id)
def test_reencodings(path: pathlib.Path) -> None:
    raw = gzip.decompress(path.read_bytes())
    for data in _variants(raw):
        assert_same(data)


def test_every_truncation_of_a_small_profile() -> None:
    data = min(SEEDS, key=len)
    for cut in range(len(data)):
        assert_same(data[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x1f\x8b\x08\x00",
        b"\x00",
        b"\x0a",
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
        b"\x0a\x02\x08\x00\x32\x00",
        b"\x0a\x02\x08\x01\x32\x00\x32\x09goroutine",
        b"\x0b",
        b"\x09\x01\x02",
        b"\x48\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x0a\x02\x08\x01\x32\x00\x32\x09goroutine",
        b"\x0a\x02\x08\x01\x32\x00\x32\x03\xff\xfe\xfd",
    ],
)
def test_edge_cases(data: bytes) -> None:
    assert_same(data)


# -- whatever the bytes: the same snapshot or the same ParseError ---------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    assert_same(data)
    assert_same(b"\x0a" + data)


@settings(
    max_examples=500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None
)
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(
        st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2)), min_size=1, max_size=8
    ),
)
def test_mutated_real_profiles(seed: int, edits: list[tuple[int, int, int]]) -> None:
    data = bytearray(SEEDS[seed])
    for where, byte, op in edits:
        i = where % (len(data) + 1)
        if op == 0 and i < len(data):
            data[i] = byte
        elif op == 1:
            data.insert(i, byte)
        elif i < len(data):
            del data[i]
    assert_same(bytes(data))


def test_frames_and_stacks_are_kept_across_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension keeps each frame and stack object, and pprof.py the Go version and wait
    states it inferred, across profiles: a profile read again gives the same objects and an
    equal snapshot, after other profiles too; other rules or another line table are not
    served from what was inferred under the old ones."""
    from grprof.formats import goversion, states

    data = SEEDS[0]
    first = pprof.parse(data, "a", native=True)
    for other in SEEDS[1:]:
        pprof.parse(other, "b", native=True)
    again = pprof.parse(data, "a", native=True)
    assert all(a is b for a, b in zip(first.table.stacks, again.table.stacks, strict=True))
    assert summary(again) == summary(first) == summary(pprof.parse(data, "a", native=False))
    # A stack's state comes from the rules in force, not from the cache.
    rules = states.load_rules()
    fake = states.Rules({}, (), (), "no rule", rules.hidden)
    monkeypatch.setattr(states, "load_rules", lambda: fake)
    monkeypatch.setattr(pprof, "load_rules", lambda: fake)
    changed = pprof.parse(data, "a", native=True)
    assert {h.state for h in changed.table.headers} <= {"unknown", "no rule"}
    assert summary(changed) == summary(pprof.parse(data, "a", native=False))
    monkeypatch.undo()
    assert summary(pprof.parse(data, "a", native=True)) == summary(first)
    # The Go version comes from the line table in force.
    table = goversion.line_table()
    monkeypatch.setattr(pprof, "line_table", lambda: goversion.LineTable({"minors": [1], "frames": {}}))
    monkeypatch.setattr(pprof, "infer_go_version", lambda frames: "1.1")
    assert pprof.parse(data, "a", native=True).go_version == "1.1"
    monkeypatch.undo()
    assert goversion.line_table() is table
    assert pprof.parse(data, "a", native=True).go_version == first.go_version


def test_threads_parsing_at_once_get_equal_snapshots() -> None:
    """The extension's cache is taken without waiting (a thread waiting for it while holding
    the GIL would deadlock): a thread that finds it busy parses with a cache of its own."""
    import threading

    want = [summary(pprof.parse(d, "a", native=False)) for d in SEEDS[:6]]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(5):
                for d, w in zip(SEEDS[:6], want, strict=True):
                    assert summary(pprof.parse(d, "a", native=True)) == w
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in threads)


def test_a_profile_read_again_gets_its_headers_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The headers of a repeated profile (a scraped service) come from `pprof._KNOWN`: the
    same objects, equal to the pure-Python parser's. A profile with more label sets than
    `pairs_labelsets` is answered alike and not kept (labels per request change at every
    scrape)."""
    data = gzip.decompress(
        (pathlib.Path(__file__).parent / "fixtures/zoo/2-leak-2.goroutine.debug0.pb.gz").read_bytes()
    )
    want = pprof.parse(data, "py", native=False).table.headers
    first = pprof.parse(data, "a", native=True).table
    again = pprof.parse(data, "b", native=True).table
    assert first.headers == want and again.headers == want
    assert all(x is y for x, y in zip(first.headers, again.headers, strict=True))
    assert first.header == again.header
    monkeypatch.setattr(pprof._KNOWN, "pairs", {})
    monkeypatch.setattr(pprof._KNOWN, "pairs_labelsets", 10)  # the profile has 24
    assert pprof.parse(data, "c", native=True).table.headers == want
    assert pprof._KNOWN.pairs == {}
