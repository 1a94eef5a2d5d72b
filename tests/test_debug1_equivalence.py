"""The Rust debug=1 parser (`grprof._native.parse_debug1`) gives exactly what the Python one gives.

`src/grprof/formats/debug1.py`'s `_Reader` and `_snapshot` are the reference;
`native/src/debug1.rs` is the fast twin. `debug1.parse(data, source, native=...)` runs one or
the other; both must return equal snapshots (every row's header, stack and count, every
header's state and labels in order, every stack's frames, truncation, go_version) or both
raise a ParseError with the same message at the same byte: on every recorded debug=1 fixture
under tests/fixtures, on the ways people paste them (spaces, CRLF, concatenated, cut), on
every truncation of a small one, on hand-made edge cases of the grammar, and on mutated and
random bytes. The native side must never crash the interpreter.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tablesummary import summary

from grprof.errors import ParseError
from grprof.formats import debug1, sniff

try:
    from grprof import _native
except ImportError:  # pragma: no cover - only when the extension failed to build
    _native = None  # type: ignore[assignment]

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted(
    p
    for p in (ROOT / "fixtures").rglob("*")
    if p.is_file() and sniff(p.read_bytes()[: 64 << 10]) == "debug=1"
)
SEEDS = [p.read_bytes() for p in FIXTURES]

pytestmark = pytest.mark.skipif(
    _native is None or not hasattr(_native, "parse_debug1"), reason="grprof._native is not built"
)


def _id(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT / "fixtures"))


def outcome(data: bytes, *, native: bool) -> tuple[str, Any]:
    try:
        snaps = debug1.parse(data, "in.txt", native=native)
    except ParseError as e:
        return "raise", (e.source, str(e), e.position)
    return "ok", [summary(s) for s in snaps]


def assert_same(data: bytes) -> tuple[str, Any]:
    py = outcome(data, native=False)
    nat = outcome(data, native=True)
    if py[0] == nat[0] == "ok":
        assert len(nat[1]) == len(py[1])
        for n, p in zip(nat[1], py[1], strict=True):
            for k in p:
                assert n[k] == p[k], k  # field by field, so a failure shows which one
    else:
        assert nat == py
    return py


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 30, FIXTURES
    assert sum(s.total for d in SEEDS for s in debug1.parse(d, "x", native=True)) > 1000
    assert any(b"# labels: " in d for d in SEEDS) and any(b"goroutineleak profile" in d for d in SEEDS)


def test_parse_uses_the_native_parser_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert debug1.native_parser() is not None
    monkeypatch.setenv("GRPROF_PURE", "1")
    assert debug1.native_parser() is None


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture(path: pathlib.Path) -> None:
    data = path.read_bytes()
    kind, snaps = assert_same(data)
    assert kind == "ok"
    assert snaps and all(s["format"] == "debug=1" for s in snaps)
    # the groups too (aggregation on top of the table)
    py = debug1.parse(data, "x", native=False)
    nat = debug1.parse(data, "x", native=True)
    for a, b in zip(py, nat, strict=True):
        assert [(g.signature, g.count, g.states, g.frames, g.labels) for g in b.groups()] == [
            (g.signature, g.count, g.states, g.frames, g.labels) for g in a.groups()
        ]


def test_hidden_runtime_frames_are_used() -> None:
    """Some fixture's states come from the hidden PCs (`_hidden`), so the equality above
    covers that path: with the hidden PCs blanked, some state changes."""
    changed = 0
    for data in SEEDS:
        blank = re.sub(rb"(?m)^(\d+ @).*$", rb"\1", data)
        a = debug1.parse(data, "x", native=True)
        b = debug1.parse(blank, "x", native=True)
        changed += [h.state for s in a for h in s.table.headers] != [
            h.state for s in b for h in s.table.headers
        ]
        assert_same(blank)
        # A PC past 64 bits on every count line: the native parser leaves the hidden PCs to
        # Python (`_hidden`), which must still find the same states.
        huge = re.sub(rb"(?m)^(\d+ @.*)$", rb"\1 0x1ffffffffffffffff", data)
        assert huge != data or b" @" not in data
        assert_same(huge)
        c = debug1.parse(huge, "x", native=True)
        assert [h.state for s in c for h in s.table.headers] == [h.state for s in a for h in s.table.headers]
    assert changed


# -- the same text, as people paste it ------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES[:: max(1, len(FIXTURES) // 8)], ids=_id)
def test_pasted_forms(path: pathlib.Path) -> None:
    data = path.read_bytes()
    for variant in (
        re.sub(rb"\t+", b"    ", data),
        re.sub(rb"\t", b" ", data),
        data.replace(b"\n", b"\r\n"),
        b"\n\n" + data.rstrip(b"\n"),
        data + data,
        data.replace(b"0x", b"0x000"),
        data.replace(b"# labels: ", b"  # labels: "),
        data.replace(b"\n#", b"\n \t#"),
    ):
        assert_same(variant)


def test_every_truncation_of_a_small_profile() -> None:
    data = min(SEEDS, key=len)
    for cut in range(len(data)):
        assert_same(data[:cut])


HEAD = b"goroutine profile: total 3\n"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n \t\x0b\x0c\r\n",
        b"hello\n",
        b"goroutine profile: total 1",
        b"goroutine profile: total 1234567890123456789\n",
        b"goroutine profile: total 12345678901234567890\n",
        b"goroutineleak profile: total 1 \t\n1 @\n",
        b"  goroutine profile: total 1\n1 @ 0x1\n",
        HEAD + b"1 @0x1\n",
        HEAD + b"1 @ 0x1x\n",
        HEAD + b"1 @ 0X1\n",
        HEAD + b"1  @ 0x1\n",
        HEAD + b"99999999999999999999 @ 0x1\n",
        HEAD + b"9223372036854775807 @ 0x1\n#\t0x1\n",
        HEAD + b"9223372036854775808 @ 0x1\n#\t0x1\n",
        HEAD + b"123456789012345678901 @ 0x1\n",
        HEAD + b"007 @ 0x1 0x2\n#\t0x1\tf+0x1\t/a.go:1\n",
        HEAD + b"1 @ 0x2 0x3 0x4\n#\t0x3\tf+0x1\t/a.go:1\n#\t0x4\tg+0x1\t/b.go:2\n\n",
        HEAD + b"1 @ 0x2 0x3 0x4\n#\t0x4\tf+0x1\t/a.go:1\n\n",
        HEAD + b"1 @ 0x2 0x3 0x4\n#\t0x9\tf+0x1\t/a.go:1\n\n",
        HEAD + b"1 @ 0x2 0x3 0x4\n#\t0x2\tf+0x1\t/a.go:1\n\n",
        # PCs past 64 bits: the Python side computes the hidden ones.
        HEAD + b"1 @ 0x1ffffffffffffffff 0x20000000000000000\n#\t0x1ffffffffffffffff\tf+0x1\t/a.go:1\n\n",
        HEAD + b"1 @ 0x7 0xffffffffffffffff\n#\t0xfffffffffffffffe\tf+0x1\t/a.go:1\n\n",
        HEAD + b"1 @ 0x7 0x0000000000000000000000008\n#\t0x7\tf+0x1\t/a.go:1\n\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1+0x2\t/a:b.go:12:34 \t\n\n",
        HEAD + b"1 @ 0x1\n#\t0x1\t+0x1\t/a.go:1\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x\t/a.go:1\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1g\t/a.go:1\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\x0b/a.go:1\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:12345678901234567890\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1234567890123456789\n\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t:5\n\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t  \t:5\n\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\r\r\n",
        HEAD + b"1 @ 0x1\n#\t0xABCdef\n#\t0xabcdef\n\n",
        HEAD + b"1 @ 0x1\n#0x1\n",
        HEAD + b"1 @ 0x1\n#\t0x\n",
        HEAD + b"1 @ 0x1\n#\t0x1 junk\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tm\xc3\xbc\xff+0x1\t/\xfe.go:3\n#\t0x2\tm\xc3\xbc\xfe+0x1\t/\xff.go:3\n\n",
        HEAD + b'1 @ 0x1\n# labels: {"a":"b"}\n#\t0x1\tf+0x1\t/a.go:1\n\n1 @ 0x1\n# labels: {"a": "b"}\n',
        HEAD + b'1 @ 0x1\n# labels: {"a":"b"}\n# labels: {"a":"b"}\n',
        HEAD + b'1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\n# labels: {"a":"b"}\n',
        HEAD + b"1 @ 0x1\n# labels: {k}\n",
        # A bad last line (no newline after it) cuts the profile, a bad label line too.
        b"goroutine profile: total 1\n1 @ 0x1\n# labels: {k}",
        b'goroutine profile: total 1\n1 @ 0x1\n# labels: {"a":"b"}\n#\t0x1\n\n1 @ 0x1\n# labels: {"a":"b"',
        b"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\n\n1 @ 0x1\n#\t0x1\tf+",
        b"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\n\n1 @ 0x1\n# label",
        b"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\n\n1 @ 0x",
        HEAD + b"1 @ 0x1\n# labels: {k}\n#\t0x1\n",
        HEAD + b"1 @ 0x1\n# labels: {k}\n\nhello\n",
        HEAD + b"1 @ 0x1\n# labels: {} x\n",
        HEAD + b"1 @ 0x1\n# labels: {\xff\xff\xff\n",
        HEAD + b"1 @ 0x1\nhello\n1 @ 0x1\n# labels: {k}\n",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\n\ngoroutineleak profile: total 1\n1 @ 0x1\n#\t0x1\n",
        HEAD
        + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\ngoroutine profile: total 1\n1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\nhello",
        HEAD + b"1 @ 0x1\n#\t0x1\tf+0x1\t/a.go:1\nhello\n",
        b"hello",
    ],
)
def test_edge_cases(data: bytes) -> None:
    assert_same(data)


# -- whatever the bytes: the same snapshots or the same ParseError --------------------------

ALPHABET = b'goroutine profile: total 0123456789@x#\t \n\r{}":,\\labelsf+.go'


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    assert_same(data)
    assert_same(HEAD + data)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list(ALPHABET)), max_size=200).map(bytes))
def test_random_profile_like_text(data: bytes) -> None:
    assert_same(HEAD + data)
    assert_same(HEAD + b"1 @ 0x1 0x2\n" + data)


LINES = [
    b"",
    b"1 @ 0x10 0x20 0x30",
    b"2 @ 0x20 0x30",
    b"#\t0x2f\tmain.f+0x1\t/a.go:3",
    b"#\t0x30\tmain.g+0x2\t/b.go:4",
    b"#\t0x1f\tmain.f+0x1\t/a.go:3",
    b"#\t0x30",
    b'# labels: {"k":"v"}',
    b'# labels: {"k":"v", "k2":"\\x41"}',
    b"# labels: {k}",
    b"goroutine profile: total 2",
    b"goroutineleak profile: total 9",
    b"junk",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=30), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_random_line_sequences(lines: list[bytes], eol: bytes, final: bool) -> None:
    assert_same(HEAD + eol.join(lines) + (eol if final else b""))


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


def test_frames_and_stacks_are_kept_across_profiles() -> None:
    """As for debug=0 (tests/test_pprof_equivalence.py): the same stack objects when a profile
    is read again after others, and an equal snapshot; debug=0 and debug=1 share them."""
    data = SEEDS[0]
    first = debug1.parse(data, "a", native=True)
    for other in SEEDS[1:]:
        debug1.parse(other, "b", native=True)
    again = debug1.parse(data, "a", native=True)
    for s1, s2 in zip(first, again, strict=True):
        assert all(a is b for a, b in zip(s1.table.stacks, s2.table.stacks, strict=True))
    want = [summary(s) for s in debug1.parse(data, "a", native=False)]
    assert [summary(s) for s in again] == [summary(s) for s in first] == want
