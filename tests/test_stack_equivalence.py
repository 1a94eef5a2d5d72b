"""The Rust stack parser (`grprof._native.parse_stacks`) gives exactly what `_parse_stack` gives.

`traceback._parse_stack` (with its cached fast path, `parse_stack(text, FrameCache())`) is the
reference; `native/src/stacks.rs` is its twin for dumps whose goroutines have thousands of
distinct stacks. Both get the scanner's distinct stack texts and must return the same
distinct stacks in the same order, the same text -> stack index, the same `dangling` flags,
and equal frames as one object: on every recorded debug=2 fixture and on generated stack
text (Unicode whitespace, broken UTF-8, odd file lines).
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof.formats import _scan
from grprof.formats.traceback import ParsedStacks, parse_file_line, parse_stacks

try:
    from grprof import _native
except ImportError:  # pragma: no cover - only when the extension failed to build
    _native = None  # type: ignore[assignment]

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURES = sorted((ROOT / "fixtures").rglob("*.txt"))

pytestmark = pytest.mark.skipif(_native is None, reason="grprof._native is not built")


def _texts(data: bytes) -> list[bytes]:
    sc = _scan.Scanner()
    sc.feed(data)
    return sc.finish().stack_texts


def _shape(parsed: ParsedStacks) -> tuple[Any, ...]:
    """The stacks, plus which frames are the same object (by first-use order of ids)."""
    order: dict[int, int] = {}

    def ref(f: Any) -> int:
        return order.setdefault(id(f), len(order))

    stacks = []
    for st_ in parsed.stacks:
        frames = [(f, ref(f)) for f in st_.frames]
        created = None if st_.created_by is None else (st_.created_by, ref(st_.created_by))
        stacks.append((frames, st_.frames_elided, created))
    return stacks, parsed.text_stack.tolist(), list(parsed.dangling)


def assert_same(texts: list[bytes]) -> None:
    pure = _shape(parse_stacks(texts, native=False))
    native = _shape(parse_stacks(texts, native=True))
    assert native == pure


def test_fixtures_exist() -> None:
    assert sum(1 for p in FIXTURES if b"goroutine " in p.read_bytes()) > 20


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture(path: pathlib.Path) -> None:
    texts = _texts(path.read_bytes())
    assert_same(texts)


def test_a_dump_parses_to_the_same_snapshot_with_either(monkeypatch: pytest.MonkeyPatch) -> None:
    import grprof

    path = ROOT / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"
    native = grprof.load(path)
    monkeypatch.setenv("GRPROF_PURE", "1")
    pure = grprof.load(path)
    assert [g.frames for g in native.goroutines] == [g.frames for g in pure.goroutines]
    assert [g.created_by for g in native.goroutines] == [g.created_by for g in pure.goroutines]


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("\t/src/x.go:42 +0x1d", ("/src/x.go", 42)),
        ("\tC:/src/x.go:7 +0x1d fp=0x1 sp=0x2 pc=0x3", ("C:/src/x.go", 7)),
        ("\tx.go:\u00b2", ("x.go:\u00b2", 0)),  # a superscript digit: `isdigit`, not a number
        ("\tx.go:12345678901234567890", ("x.go:12345678901234567890", 0)),  # past int64
        ("\t\u001cx.go:1\u001f", ("x.go", 1)),  # Python's whitespace, not Rust's
    ],
)
def test_file_lines(line: str, want: tuple[str, int]) -> None:
    assert parse_file_line(line) == want
    st_, *_ = parse_stacks([b"main.f()\n" + line.encode()], native=True).stacks
    assert (st_.frames[0].file, st_.frames[0].line) == want


_FUNCS = st.sampled_from(
    [
        "main.main()",
        "main.(*T).m(0xc000010000, {0x1, 0x2})",
        "main.f(...)",
        "main.g",
        "main.h)",
        "pkg/\u00e9t\u00e9.Fn()",
        "runtime.gopark(0x0?)",
        "non-Go function",
        "...additional frames elided...",
        "created by main.main in goroutine 1",
        "created by main.main",
        "created by ",
        "x(y(z))",
        "\u0085main.f()",
    ]
)
_FILES = st.sampled_from(
    [
        "\t/src/main.go:12 +0x1d",
        "\t/src/main.go:12",
        "        /src/main.go:9 +0x2 fp=0xc0 sp=0xc1 pc=0x4",
        "\tC:/Go/src/x.go:3 +0x1",
        "\t/x.go:\u00b2",
        "\t/x.go:99999999999999999999",
        "\t:5",
        "\t\u00a0/x.go:5\u2028",
        "\t\u001d/x.go:6 +0x1\u001e",
        "\t?",
        " ",
        "\tpc=0x1",
    ]
)


@st.composite
def _stack(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.one_of(_FUNCS, _FILES, st.text(max_size=12)), max_size=12))
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # broken UTF-8 somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"])) + raw[at:]
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_stack(), min_size=1, max_size=6))
def test_generated_stacks(texts: list[bytes]) -> None:
    assert_same(texts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_stack(), min_size=1, max_size=4))
def test_texts_that_differ_in_arguments_and_offsets_share_a_stack(texts: list[bytes]) -> None:
    """What a stack leaves out (argument values, `+0x` offsets) does not make another stack."""
    again = [t.replace(b"0x1", b"0x7").replace(b"+0x2", b"+0x9") for t in texts]
    assert_same(texts + again)


def test_equal_stacks_from_other_texts_are_one() -> None:
    texts = [
        b"main.f(0x1)\n\t/src/main.go:3 +0x10\ncreated by main.main in goroutine 1\n\t/src/main.go:9 +0x20",
        b"main.f(0x2)\n\t/src/main.go:3 +0x11\ncreated by main.main in goroutine 7\n\t/src/main.go:9 +0x20",
        b"main.f(0x2)\n\t/src/main.go:4 +0x11",
    ]
    for native in (False, True):
        parsed = parse_stacks(texts, native=native)
        assert parsed.text_stack.tolist() == [0, 0, 1] and len(parsed.stacks) == 2
