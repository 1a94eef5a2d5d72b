"""debug=1: the text goroutine and goroutineleak profiles recorded from real Go.

Each recorded profile is compared with its program's truth (goroutines per function,
labels, the leaked flag, frames) and with the debug=0 profile of the same run. The same
text pasted with spaces, with CRLF, concatenated, or cut short must still read sensibly;
malformed text fails with a ParseError naming the line's byte; nothing else escapes.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof import ParseError
from grprof.formats import debug1, pprof
from grprof.model import Snapshot

STATES = Path(__file__).resolve().parent / "fixtures" / "states"
PROFILES = sorted(STATES.glob("go1.*/goroutine*.debug1.txt"))
PARAMS = [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in PROFILES]


def parse1(data: bytes, source: str = "in.txt") -> Snapshot:
    snaps = debug1.parse(data, source)
    assert len(snaps) == 1
    return snaps[0]


def rows(snap: Snapshot) -> list[tuple[Any, ...]]:
    t = snap.table
    assert t.counts is not None
    out = []
    for r in range(len(t)):
        h, s = t.headers[t.header[r]], t.stacks[t.stack[r]]
        out.append((h.state, h.leaked, h.labels_key, s.frames, t.counts[r]))
    return sorted(out, key=repr)


def test_profiles_of_every_version_are_recorded() -> None:
    versions = {p.parent.name.split("-")[0].rsplit(".", 1)[0] for p in PROFILES}
    assert {"go1.19", "go1.21", "go1.22", "go1.26", "go1.27"} <= versions, versions
    assert any(p.name.startswith("goroutineleak") for p in PROFILES)


@pytest.mark.parametrize("path", PARAMS)
def test_profile_matches_truth(path: Path) -> None:
    truth = json.loads((path.parent / "truth.json").read_text())
    data = path.read_bytes()
    snap = parse1(data, str(path))
    leak = path.name.startswith("goroutineleak")
    assert (snap.format, snap.profile) == ("debug=1", "goroutineleak" if leak else "goroutine")
    assert not snap.truncated
    header_total = int(re.match(rb"\w+ profile: total (\d+)", data)[1])  # type: ignore[index]
    assert snap.total == header_total

    considered = [g for g in truth["goroutines"] if not leak or g["leak"]]
    want = collections.Counter((g["function"], tuple(sorted(g["labels"].items()))) for g in considered)
    got: collections.Counter[tuple[str, Any]] = collections.Counter()
    outside = 0
    t = snap.table
    assert t.counts is not None
    for r in range(len(t)):
        h, frames, n = t.headers[t.header[r]], t.stacks[t.stack[r]].frames, t.counts[r]
        assert h.leaked == leak
        assert all(f.file.endswith(".go") and f.line > 0 for f in frames), frames
        main = next((f.function for f in frames if f.function.startswith("main.")), None)
        if main is None:
            outside += n
        else:
            got[(main, h.labels_key)] += n
    assert got == want
    assert outside <= (0 if leak else 2)


@pytest.mark.parametrize(
    "path", [p for p in PARAMS if (p.values[0].parent / "goroutine.debug0.pb.gz").exists()]
)
def test_frames_agree_with_debug0_of_the_same_run(path: Path) -> None:
    """debug=1 shows the debug=0 stack minus its leading runtime frames, same names and lines."""
    text = parse1(path.read_bytes())
    name = path.name.replace(".debug1.txt", ".debug0.pb.gz")
    proto = pprof.parse(gzip.decompress((path.parent / name).read_bytes()), name)

    def shapes(snap: Snapshot, strip: bool) -> collections.Counter[tuple[Any, ...]]:
        t = snap.table
        assert t.counts is not None
        out: collections.Counter[tuple[Any, ...]] = collections.Counter()
        for r in range(len(t)):
            frames = list(t.stacks[t.stack[r]].frames)
            if not any(f.function.startswith("main.") for f in frames):
                continue  # the scrape's own goroutines differ between the two requests
            while strip and frames and frames[0].function.startswith(("runtime.", "internal/runtime/")):
                frames.pop(0)
            out[(tuple(frames), t.headers[t.header[r]].labels_key)] += t.counts[r]
        return out

    assert shapes(text, strip=False) == shapes(proto, strip=True)


def test_labels_use_go_quoting() -> None:
    labeled = [
        h.labels
        for p in PROFILES
        if p.name.startswith("goroutine.")
        for h in parse1(p.read_bytes()).table.headers
        if "msg" in h.labels
    ]
    assert labeled
    assert all(lab["msg"] == 'say "hi"\tü 😀' and lab["tricky"] == "a]: b" for lab in labeled)
    assert all(lab["empty"] == "" for lab in labeled)


# -- the same text, as people paste it ----------------------------------------------------

GO119 = next((p for p in PROFILES if p.parent.name.startswith("go1.19")), PROFILES[0] if PROFILES else None)


def _sample() -> bytes:
    assert GO119 is not None, "no debug=1 fixtures recorded"
    return GO119.read_bytes()


def test_spaces_instead_of_tabs_and_crlf() -> None:
    data = _sample()
    want = rows(parse1(data))
    assert rows(parse1(re.sub(rb"\t+", b"    ", data))) == want
    assert rows(parse1(re.sub(rb"\t", b" ", data))) == want
    assert rows(parse1(data.replace(b"\n", b"\r\n"))) == want
    assert rows(parse1(b"\n\n" + data.rstrip(b"\n"))) == want  # no trailing blank line


def test_concatenated_profiles_give_one_snapshot_each() -> None:
    parts = [p.read_bytes() for p in PROFILES[:3]]
    snaps = debug1.parse(b"".join(parts), "cat.txt")
    assert [rows(s) for s in snaps] == [rows(parse1(p)) for p in parts]
    leak = next(p for p in PROFILES if p.name.startswith("goroutineleak")).read_bytes()
    mixed = debug1.parse(parts[0] + leak, "mixed.txt")
    assert [s.profile for s in mixed] == ["goroutine", "goroutineleak"]


def test_total_mismatch_keeps_the_data_and_flags_truncation() -> None:
    data = _sample()
    blocks = data.rstrip(b"\n").split(b"\n\n")
    first = int(blocks[1].split(b" @", 1)[0])
    short = b"\n\n".join([blocks[0], *blocks[2:]]) + b"\n\n"  # one block missing
    snap = parse1(short)
    assert snap.truncated
    assert snap.total == parse1(data).total - first
    # More goroutines than the header says: keep them all, nothing was cut.
    extra = data + b"\n".join(blocks[1].split(b"\n")) + b"\n\n"
    bigger = parse1(extra)
    assert bigger.total == parse1(data).total + first
    assert not bigger.truncated


def test_cut_inside_the_last_line_keeps_the_rest() -> None:
    data = _sample()
    lines = data.split(b"\n")
    last_frame = max(i for i, ln in enumerate(lines) if ln.startswith(b"#\t0x"))
    cut = b"\n".join(lines[:last_frame]) + b"\n" + lines[last_frame][:5]
    snap = parse1(cut)
    assert snap.truncated
    assert len(snap.table) == len(re.findall(rb"^\d+ @", cut, re.M))
    cut_mid_word = b"\n".join(lines[:last_frame]) + b"\n" + lines[last_frame][:-12]
    assert parse1(cut_mid_word).truncated


# -- errors --------------------------------------------------------------------------------


def test_garbage_line_is_named_with_its_byte() -> None:
    data = _sample()
    at = data.index(b"\n\n", 100) + 2  # the start of some block's count line
    bad = data[:at] + b"hello there\n" + data[at:]
    with pytest.raises(ParseError) as e:
        debug1.parse(bad, "bad.txt")
    assert e.value.position == at
    assert 'expected a "COUNT @ 0x..." line' in e.value.message and "'hello there'" in e.value.message
    frame_at = data.index(b"\n#\t0x", 100) + 1
    bad = data[:frame_at] + b"#\tnot a frame\n" + data[frame_at:]
    with pytest.raises(ParseError, match=r"expected a .* frame line") as e:
        debug1.parse(bad, "bad.txt")
    assert e.value.position == frame_at


HEAD = b"goroutine profile: total 1\n"  # 27 bytes


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        (b"", 'expected a "goroutine profile: total N" header', 0),
        (b"hello\n", 'expected a "goroutine profile: total N" header', 0),
        (b"\n1 @ 0x1\n", 'expected a "goroutine profile: total N" header', 1),
        (b"heap profile: 1: 2 [3: 4] @ heap/1048576\n", 'expected a "goroutine profile: total N" header', 0),
        (b"goroutine profile: total 1\n#\t0x1\tf+0x1\tf.go:1\n", 'expected a "COUNT @ 0x..." line', 27),
        (
            b"goroutine profile: total 1\n1 @ 0x1\n# labels: {k}\n",
            'bad labels: expected ":" after a label key',
            47,
        ),
        (b"goroutine profile: total 1\n1 @ 0x1\n# labels: {} x\n", "unexpected text after the labels", 47),
        (
            b'goroutine profile: total 1\n1 @ 0x1\n# labels: {"\xc3\xbc": "\\q"}\n',
            "bad labels: bad quoted",
            52,
        ),
        (
            b"goroutine profile: total 1\n99999999999999999999 @ 0x1\n",
            "count 99999999999999999999 out of range",
            27,
        ),
    ],
)
def test_malformed_text(text: bytes, message: str, position: int) -> None:
    with pytest.raises(ParseError) as e:
        debug1.parse(text, "in.txt")
    assert message in e.value.message
    assert e.value.message.startswith("debug=1 profile: ")
    assert e.value.position == position
    assert str(e.value).startswith("in.txt: debug=1 profile: ")


def test_bytes_that_are_not_utf8() -> None:
    """Go's %q never prints raw invalid UTF-8, but a damaged file may hold some."""
    line = b'# labels: {"\xc3\xbc\xff":"a\xffb", "k":"v\xe2\x82"}\n'
    snap = parse1(HEAD + b"1 @ 0x1\n" + line + b"#\t0x1\tmain.\xff+0x1\tm\xfe.go:3\n\n")
    assert dict(snap.table.headers[0].labels) == {"ü\ufffd": "a\ufffdb", "k": "v\ufffd"}
    assert snap.table.stacks[0].frames[0].function == "main.\ufffd"
    bad = HEAD + b"1 @ 0x1\n# labels: {\xff\xff\xff\xff\xff\xff\n"
    with pytest.raises(ParseError) as e:
        debug1.parse(bad, "in.txt")
    assert e.value.position == len(bad) - 1  # the end of the line, in bytes


def test_pc_without_symbol() -> None:
    snap = parse1(b"goroutine profile: total 2\n2 @ 0x4a 0x4b\n#\t0x4a\n#\t0x4b\tmain.f+0x1\t/a b/m.go:7\n\n")
    (stack,) = snap.table.stacks
    assert [(f.function, f.file, f.line) for f in stack.frames] == [
        ("0x4a", "", 0),
        ("main.f", "/a b/m.go", 7),
    ]
    assert snap.total == 2


# -- whatever the bytes: only ParseError, pointing inside the input -------------------------


def check(data: bytes) -> None:
    try:
        snaps = debug1.parse(data, "fuzz")
    except ParseError as e:
        assert e.source == "fuzz"
        assert e.position is not None and 0 <= e.position <= len(data), (e.position, len(data))
    else:
        assert snaps
        for s in snaps:
            assert s.format == "debug=1"
            assert len(s.table) == len(s.table.counts or ())
            for h in s.table.headers:  # printable and JSON-able: no lone surrogates
                "".join(k + v for k, v in h.labels.items()).encode("utf-8")


ALPHABET = b'goroutine profile: total 0123456789@x#\t \n{}":,\\labels'


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(b"goroutine profile: total 3\n" + data)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(ALPHABET)), max_size=200).map(bytes))
def test_random_profile_like_text(data: bytes) -> None:
    check(b"goroutine profile: total 3\n" + data)


EDIT = st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2))  # where, byte, op
SEEDS = [p.read_bytes() for p in PROFILES]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.sampled_from(range(len(SEEDS))) if SEEDS else st.nothing(),
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
    check(bytes(data))


def test_every_truncation_of_a_small_real_profile() -> None:
    small = min((p for p in PROFILES if p.name.startswith("goroutineleak")), key=lambda p: p.stat().st_size)
    data = small.read_bytes()
    full = parse1(data)
    header_end = data.index(b"\n")
    for cut in range(1, len(data)):
        check(data[:cut])
        if cut <= header_end:
            continue  # a cut header may read as a smaller total, or not at all
        snaps = debug1.parse(data[:cut], "cut")
        # A cut profile never claims more goroutines than the whole, and says when it is short.
        for s in snaps:
            assert s.total <= full.total
            assert s.truncated or s.total == full.total


def test_go_version_from_goroot_paths_or_runtime_lines() -> None:
    got = {
        p.parent.name: parse1(p.read_bytes(), str(p)).go_version
        for p in PROFILES
        if p.name == "goroutine.debug1.txt"
    }
    assert got["go1.19.8"] == "1.19"  # /usr/lib/go-1.19
    assert got["go1.21.13"] == "1.21.13" and got["go1.27.3"] == "1.27.3"  # toolchain modules
    assert got["go1.26.8"] == "1.26"  # /usr/local/go: the line numbers of its runtime frames


def test_hidden_runtime_frames_give_channel_and_select_states() -> None:
    data = (STATES / "go1.22.12" / "goroutine.debug1.txt").read_bytes()
    for text in (data, re.sub(rb"\t+", b"  ", data)):
        t = parse1(text).table
        states = {
            next(
                f.function for f in t.stacks[t.stack[r]].frames if f.function.startswith("main.")
            ): t.headers[t.header[r]].state
            for r in range(len(t))
            if any(f.function.startswith("main.") for f in t.stacks[t.stack[r]].frames)
        }
        assert states["main.blockChanReceive"] == "chan receive"
        assert states["main.blockChanSend"] == "chan send"
        assert states["main.blockNilChanReceive"] == "chan receive (nil chan)"
        assert states["main.blockSelect"] == "select"
        assert states["main.blockSelectNoCases"] == "select (no cases)"
