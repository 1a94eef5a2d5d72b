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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grprof.errors import ParseError
from grprof.formats.goquote import LabelSyntaxError, parse_labels
from grprof.formats.goversion import infer_go_version, version_minor
from grprof.formats.states import UNKNOWN, hidden_chains, infer_state
from grprof.model import Frame, Profile, Snapshot
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


def parse(data: bytes, source: str) -> list[Snapshot]:
    """Parse one or more concatenated debug=1 profiles, one snapshot each."""
    return [_snapshot(p, source) for p in _Reader(data, source).profiles()]


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
    solved = hidden_chains().solve(counts) if counts else {}
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
