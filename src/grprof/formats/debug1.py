"""debug=1: the legacy text form of the goroutine and goroutineleak profiles.

    goroutine profile: total 28
    5 @ 0x48468e 0x488165 0x538334 0x48b821
    # labels: {"span_id":"abc123", "weird key":"v\\"q"}
    #	0x488164	time.Sleep+0x164	/usr/local/go/src/runtime/time.go:363
    #	0x538333	main.sleeper+0x33	/tmp/app/main.go:68
    (blank line)

Columns are padded by a tabwriter (runs of tabs); pasted text may have spaces instead.
Leading runtime frames are hidden, so wait states are inferred from what remains and, where
that says nothing, from the hidden frames' PCs the count line still lists (`states.py`).
Several profiles concatenated in one input give several snapshots.

The Rust extension has a twin of `_Reader` (`grprof._native.parse_debug1`, native/src/
debug1.rs): the same line grammar, the same errors at the same bytes. It returns distinct
frames and stacks, one row per block as packed int64 columns, the distinct label lines
(parsed here: Go's quoting rules live in `goquote`) and the hidden runtime PCs of each
block; `parse` uses it unless it is missing or GRPROF_PURE=1 is set
(tests/test_debug1_equivalence.py holds the two to the same snapshots and errors).

Each snapshot's `origin.code` keeps where a few functions start: a debug=1 profile has no
build id, but a frame line's PC less its `+0xOFFSET` is its function's entry, one address in
a build loaded at one address. Only a block's last frame counts: the function its goroutine
started in, never an inlined call (an inlined frame's offset counts from the function it
was inlined into). A start function that moved says the program was rebuilt or restarted at
another address (`grprof.model.moved_code`; the store's deploy markers).
"""

from __future__ import annotations

import heapq
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grprof import _rust
from grprof._gc import gc_paused
from grprof.errors import ParseError
from grprof.formats.goquote import LabelSyntaxError, parse_labels
from grprof.formats.goversion import infer_go_version, line_table, version_minor
from grprof.formats.pprof import _KNOWN, _stops_state
from grprof.formats.states import UNKNOWN, HiddenChains, hidden_chains, infer_state, load_rules
from grprof.model import Frame, Origin, Profile, Snapshot
from grprof.table import GoroutineTable, Header, Stack

_PREFIX = "debug=1 profile: "
# Numbers are bounded: int() refuses very long digit strings, and Go's are int64 anyway.
_HEADER = re.compile(rb"[ \t]*(goroutine|goroutineleak) profile: total (\d{1,19})[ \t]*")
_COUNT = re.compile(rb"[ \t]*(\d{1,20}) @((?:[ \t]+0x[0-9a-fA-F]+)*)[ \t]*")
# "#\t0xPC\tfunc+0xOFF\tfile:LINE", or "#\t0xPC" alone for a PC without symbol information.
_FRAME = re.compile(
    rb"[ \t]*#[ \t]+0x([0-9a-fA-F]+)(?:[ \t]+(\S+)\+0x[0-9a-fA-F]+[ \t]+(.*):(\d{1,19}))?[ \t]*"
)
_LABELS = re.compile(rb"[ \t]*# labels: ")
_MAX_COUNT = (1 << 63) - 1
CODE_POINTS = 8
"""How many start functions, the highest entries first, `Origin.code` keeps (debug1.rs's twin)."""

_EXPECT_HEADER = 'a "goroutine profile: total N" header'
_EXPECT_BLOCK = 'a "COUNT @ 0x..." line, a profile header or a blank line'
_EXPECT_FRAME = 'a "#<TAB>0xPC<TAB>function+0xOFFSET<TAB>file:line" frame line or a blank line'
_LABEL_CACHE: dict[bytes, dict[str, str]] = {}
_LABEL_CACHE_SIZE = 4096
_EXPECT_FIRST = 'a "# labels: {...}" line, a frame line or a blank line'


@dataclass(slots=True)
class _Block:
    count: int
    pcs: bytes = b""
    """The count line's PCs, as written (" 0x43b256 0x407e5b ...")."""
    labels: dict[str, str] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    first_line: bytes = b""
    """The first frame line, as written."""
    last_line: bytes = b""
    """The last frame line so far: the goroutine's start function once the block ends."""


def _hidden(pcs_text: bytes, first_line: bytes) -> tuple[int, ...] | None:
    """The PCs of the runtime frames hidden above the first frame shown, innermost first."""
    parts = first_line.split(None, 2)
    if len(parts) < 2 or parts[1][:2] not in (b"0x", b"0X"):
        return None
    pcs = [int(x, 16) for x in pcs_text.split()]
    first = int(parts[1], 16)
    # Frames show the return PC minus one (the call instruction); an inlined frame may
    # show its PC as is.
    for want in (first + 1, first):
        if want in pcs:
            return tuple(pcs[: pcs.index(want)])
    return None


@dataclass(slots=True)
class _Profile:
    profile: Profile
    total: int
    blocks: list[_Block] = field(default_factory=list)
    cut: bool = False
    """The input ended inside this profile's last line."""


def native_parser() -> Any | None:
    """The Rust parser, unless unavailable or disabled with GRPROF_PURE=1."""
    return _rust.native("parse_debug1")


def parse(data: bytes, source: str, *, native: bool | None = None, signatures: bool = True) -> list[Snapshot]:
    """Parse one or more concatenated debug=1 profiles, one snapshot each.

    `native`: None uses the Rust parser when available; False forces the Python one; True
    requires the Rust one (tests and benchmarks). `signatures`: as for `pprof.parse`."""
    fn = _rust.native("parse_debug1", native)
    if fn is not None:
        return _from_native(fn, data, source, signatures)
    profiles = _Reader(data, source).profiles()
    code = _code_points(b.last_line for p in profiles for b in p.blocks)
    return [_with_code(_snapshot(p, source), code) for p in profiles]


def _code_points(last_lines: Iterable[bytes]) -> tuple[tuple[str, int], ...]:
    """The start functions (blocks' last frame lines) at the `CODE_POINTS` highest entries
    (PC less offset), highest first; the first block naming a function gives its entry."""
    entries: dict[str, int] = {}
    for line in dict.fromkeys(last_lines):
        m = _FRAME.fullmatch(line)
        if m is None or m[2] is None:
            continue
        pc, off = int(m[1], 16), int(line[m.end(2) + 3 : m.start(3)].rstrip(b" \t"), 16)
        if pc < 1 << 64 and off < 1 << 64 and off <= pc:
            entries.setdefault(m[2].decode("utf-8", "replace"), pc - off)
    top = heapq.nlargest(CODE_POINTS, ((e, name) for name, e in entries.items()))
    return tuple((name, e) for e, name in top)


def _with_code(snap: Snapshot, code: tuple[tuple[str, int], ...]) -> Snapshot:
    if code:
        snap.origin = Origin(code=code)
    return snap


def _snapshot(p: _Profile, source: str) -> Snapshot:
    table = GoroutineTable(aggregated=True)
    leaked = p.profile == "goroutineleak"
    # Equal frame lines give one Frame object (the reader's cache): ids key the stacks.
    blocks_of: dict[tuple[int, ...], list[int]] = {}
    keys = []
    for i, b in enumerate(p.blocks):
        key = tuple(map(id, b.frames))
        keys.append(key)
        blocks_of.setdefault(key, []).append(i)
    stacks = {key: Stack(tuple(p.blocks[rows[0]].frames)) for key, rows in blocks_of.items()}
    version = infer_go_version(st.frames for st in stacks.values())
    minor = version_minor(version)
    states = {key: infer_state(st.frames, minor) for key, st in stacks.items()}
    # Where the frames shown say nothing, the hidden runtime frames may: solved over the
    # whole profile, whose stacks share the runtime's PCs.
    hidden: dict[int, tuple[int, ...]] = {}
    counts: dict[tuple[int, ...], int] = {}
    seen: dict[tuple[bytes, bytes], tuple[int, ...] | None] = {}
    for key, state in states.items():
        if state != UNKNOWN or not key:
            continue
        for i in blocks_of[key]:
            b = p.blocks[i]
            k = (b.pcs, b.first_line)
            h = seen[k] if k in seen else seen.setdefault(k, _hidden(*k))
            if h:
                hidden[i] = h
                counts[h] = counts.get(h, 0) + b.count
    solved = _solve(counts) if counts else {}
    for i, b in enumerate(p.blocks):
        key = keys[i]
        h = hidden.get(i)
        state = states[key] if h is None else solved.get(h, UNKNOWN)
        table.add(Header.make(state, leaked=leaked, labels=b.labels), stacks[key], count=b.count)
    # The header's total is the runtime's own count: fewer goroutines in the blocks means
    # the text was cut short. More is kept as is (a hand-edited file); the data wins.
    truncated = p.cut or table.total() < p.total
    return Snapshot(
        source=source,
        format="debug=1",
        profile=p.profile,
        table=table,
        truncated=truncated,
        go_version=version,
    )


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.frames: dict[bytes, Frame] = {}
        """Frames by their line's text: stacks repeat the same lines many times."""

    def error(self, pos: int, expected: str, line: bytes) -> ParseError:
        found = line[:60].decode("utf-8", "replace")
        return ParseError(self.source, f"{_PREFIX}expected {expected}, found {found!r}", pos)

    def profiles(self) -> list[_Profile]:
        out: list[_Profile] = []
        cur: _Profile | None = None
        block: _Block | None = None
        in_frames = False
        data = self.data
        lines = data.split(b"\n")
        last = len(lines) - 1
        pos = 0
        for n, raw in enumerate(lines):
            at, pos = pos, pos + len(raw) + 1
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line.strip():
                block, in_frames = None, False
                continue
            m = _HEADER.fullmatch(line)
            if m:
                cur = _Profile("goroutineleak" if m[1] == b"goroutineleak" else "goroutine", int(m[2]))
                out.append(cur)
                block, in_frames = None, False
                continue
            try:
                if cur is None:
                    raise self.error(at, _EXPECT_HEADER, line)
                if block is None:
                    block = self.count_line(line, at)
                    cur.blocks.append(block)
                    in_frames = False
                elif not in_frames and (lm := _LABELS.match(line)):
                    block.labels = self.labels(line, at, lm.end())
                    in_frames = True
                else:
                    if not block.frames:
                        block.first_line = line
                    block.frames.append(self.frame(line, at, in_frames))
                    block.last_line = line
                    in_frames = True
            except ParseError:
                # A last line without its newline was cut mid-way: keep what came before.
                if n == last and cur is not None:
                    cur.cut = True
                    break
                raise
        if not out:
            raise self.error(0, _EXPECT_HEADER, data.lstrip()[:60])
        return out

    def count_line(self, line: bytes, at: int) -> _Block:
        m = _COUNT.fullmatch(line)
        if m is None:
            raise self.error(at, _EXPECT_BLOCK, line)
        count = int(m[1])
        if count > _MAX_COUNT:
            raise ParseError(self.source, f"{_PREFIX}count {count} out of range", at)
        return _Block(count, m[2])

    def labels(self, line: bytes, at: int, start: int) -> dict[str, str]:
        # A service repeats the same label lines scrape after scrape (and block after block):
        # parse each distinct line once. Callers get their own copy.
        cached = _LABEL_CACHE.get(line)
        if cached is not None:
            return dict(cached)
        labels = self._parse_labels(line, at, start)
        if len(_LABEL_CACHE) >= _LABEL_CACHE_SIZE:
            _LABEL_CACHE.clear()
        _LABEL_CACHE[line] = labels
        return dict(labels)

    def _parse_labels(self, line: bytes, at: int, start: int) -> dict[str, str]:
        # Decoded so that character indexes are byte offsets: the "# labels: " prefix is
        # ASCII, and surrogateescape maps any other byte to one character.
        text = line.decode("utf-8", "surrogateescape")
        try:
            labels, end = parse_labels(text, start)
        except LabelSyntaxError as e:
            where = at + len(text[: e.pos].encode("utf-8", "surrogateescape"))
            raise ParseError(self.source, f"{_PREFIX}bad labels: {e.message}", where) from None
        if text[end:].strip():
            where = at + len(text[:end].encode("utf-8", "surrogateescape"))
            raise ParseError(self.source, f"{_PREFIX}unexpected text after the labels", where)
        return labels

    def frame(self, line: bytes, at: int, in_frames: bool) -> Frame:
        f = self.frames.get(line)
        if f is not None:
            return f
        m = _FRAME.fullmatch(line)
        if m is None:
            raise self.error(at, _EXPECT_FRAME if in_frames else _EXPECT_FIRST, line)
        if m[2] is None:
            f = Frame("0x" + m[1].decode("ascii").lower(), "", 0)
        else:
            f = Frame(m[2].decode("utf-8", "replace"), m[3].decode("utf-8", "replace"), int(m[4]))

        self.frames[line] = f
        return f


# -- the native parser's output -------------------------------------------------------------

_EXPECTED = {"header": _EXPECT_HEADER, "block": _EXPECT_BLOCK, "frame": _EXPECT_FRAME, "first": _EXPECT_FIRST}


def _from_native(parse_fn: Any, data: bytes, source: str, signatures: bool = True) -> list[Snapshot]:
    """`parse` through the Rust reader: the same snapshots, or the same ParseError at the same
    byte, as `_Reader` and `_snapshot` give (tests/test_debug1_equivalence.py)."""
    if type(data) is not bytes:  # the extension borrows bytes only
        data = bytes(data)
    rules = load_rules()
    d = parse_fn(data, Frame, _stops_state, Stack, rules, signatures)
    reader = _Reader(data, source)
    profiles = d["profiles"]
    # The label lines, first use first, are parsed here; the first bad one comes before the
    # native parser's own error (it records label lines only up to that), and on the last
    # line it cuts the profile as any bad last line does.
    labels: list[dict[str, str]] = []
    for line, at, brace, last in d["labels"]:
        try:
            labels.append(reader.labels(line, at, brace))
        except ParseError:
            if not last or not profiles:
                raise
            labels.append({})
            profiles[-1]["cut"] = True
    err = d["error"]
    if err is not None:
        what, at, found = err
        if what == "count":
            raise ParseError(source, f"{_PREFIX}count {found} out of range", at)
        raise reader.error(at, _EXPECTED[what], found)
    if not profiles:
        raise reader.error(0, _EXPECT_HEADER, data.lstrip()[:60])
    code = tuple(d["code"])
    # Tens of thousands of stacks and headers, no cycles: as the other parsers do.
    with gc_paused(sum(len(p["stacks"]) for p in profiles)):
        return [_with_code(_native_snapshot(p, labels, d["hidden"], source, rules), code) for p in profiles]


_SOLVED: dict[frozenset[tuple[tuple[int, ...], int]], dict[tuple[int, ...], str]] = {}
_SOLVED_BY: list[HiddenChains | None] = [None]


def _solve(totals: dict[tuple[int, ...], int]) -> Mapping[tuple[int, ...], str]:
    """`hidden_chains().solve(totals)`, kept for the same tuples and counts: a scraped
    service shows them again at the next scrape, and the search was most of a small
    profile's parse (0.2 of 0.35 ms). Read only: the answer is shared."""
    model = hidden_chains()
    if _SOLVED_BY[0] is not model:
        _SOLVED.clear()
        _SOLVED_BY[0] = model
    key = frozenset(totals.items())
    out = _SOLVED.get(key)
    if out is None:
        if len(_SOLVED) >= 1024:
            _SOLVED.clear()
        out = _SOLVED[key] = model.solve(totals)
    return out


def _ints(raw: bytes) -> array[int]:
    a = array("q")
    a.frombytes(raw)
    return a


def _native_snapshot(
    p: dict[str, Any],
    labels: list[dict[str, str]],
    hidden_pcs: list[tuple[int, ...]],
    source: str,
    rules: object,
) -> Snapshot:
    """`_snapshot` on the native parser's columns: the same states, headers and rows. The Go
    version and the states of the frames shown are cached as for debug=0 (`pprof._Known`)."""
    stacks: list[Stack] = p["stacks"]
    versions, states = _KNOWN.get(p["generation"], rules, line_table())
    # The profile's distinct frames as one sequence: what the version depends on (the set of
    # frames), without visiting every frame of every stack.
    frames_key = p["frames_key"]
    if frames_key in versions:
        version = versions[frames_key]
    else:
        version = versions[frames_key] = infer_go_version([p["frames"]])
    minor = version_minor(version)
    class_states = []
    for key, rep in zip(p["state_keys"], p["state_reps"], strict=True):
        ck = (key, minor)
        st = states.get(ck)
        if st is None:
            st = states[ck] = infer_state(stacks[rep].frames, minor)
        class_states.append(st)
    stack_state = [class_states[c] for c in _ints(p["state_class"])]
    row_stack = _ints(p["row_stack"])
    row_labels = _ints(p["row_labels"])
    counts = _ints(p["row_count"])
    row_state = [stack_state[s] for s in row_stack]
    # Where the frames shown say nothing, the hidden runtime frames may (see `_snapshot`).
    unknown = [r for r, st in enumerate(row_state) if st == UNKNOWN and stacks[row_stack[r]].frames]
    if unknown:
        row_hidden = _ints(p["row_hidden"])
        fallback = {row: _hidden(pcs, first) for row, pcs, first in p["fallback"]}
        hidden: dict[int, tuple[int, ...]] = {}
        totals: dict[tuple[int, ...], int] = {}
        for r in unknown:
            k = row_hidden[r]
            h = hidden_pcs[k] if k >= 0 else (fallback.get(r) if k == -2 else None)
            if h:
                hidden[r] = h
                totals[h] = totals.get(h, 0) + counts[r]
        solved = _solve(totals) if totals else {}
        for r, h in hidden.items():
            row_state[r] = solved.get(h, UNKNOWN)
    leaked = p["profile"] == "goroutineleak"
    # A header per distinct (state, label line), in order of first use; keys are ints
    # (state number * (label lines + 1) + label line + 1): no tuple per row.
    state_names = list(dict.fromkeys(row_state))
    state_number = {st: i for i, st in enumerate(state_names)}
    nsets = len(labels) + 1
    keys = [state_number[st] * nsets + li + 1 for st, li in zip(row_state, row_labels, strict=True)]
    pair_of = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    # Headers from the debug=0 parser's cache of recent pairs (frozen, so shared).
    headers, pair_header = _KNOWN.headers(
        state_names,
        leaked,
        array("q", [key // nsets for key in pair_of]),
        array("q", [key % nsets for key in pair_of]),
        [(), *(tuple(lab.items()) for lab in labels)],
    )
    table = GoroutineTable(aggregated=True)
    table.headers = list(headers)
    if pair_header is not None:
        pair_of = {key: pair_header[i] for key, i in pair_of.items()}
    n = len(row_stack)
    table.set_stacks(stacks, p.get("signatures"))
    table.header = array("l", map(pair_of.__getitem__, keys))
    table.stack = array("l", row_stack)
    table.counts = counts
    table.ids = array("q", [-1]) * n
    table.creator = array("q", [-1]) * n
    table.argkey = array("Q", [0]) * n
    truncated = p["cut"] or table.total() < p["total"]
    return Snapshot(
        source=source,
        format="debug=1",
        profile=p["profile"],
        table=table,
        truncated=truncated,
        go_version=version,
    )
