"""debug=2 dumps, `runtime.Stack(all)` output and panic / fatal error / SIGQUIT tracebacks.

The scanner (`_scan.py`, or its Rust twin `grprof._native`) splits the text into dumps and
goroutine blocks and interns distinct headers and stacks; this module gives them meaning,
once per distinct text, and builds the snapshots. The Rust scanner parses each distinct
stack itself when it first meets it (native/src/stacks.rs, the twin of `_parse_stack`) and
hands over frames, never texts: a streamed dump with 100,000 distinct stacks would hold
some 140 MB of them. The Python scanner's texts are parsed here by `parse_stacks`
(tests/test_stack_equivalence.py and tests/test_scan_equivalence.py hold the two paths to
the same stacks and snapshots).
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from grprof import _rust
from grprof._gc import PAUSE_GC_AT, gc_paused
from grprof.formats import goquote
from grprof.formats._scan import ParsedStacks, Scanner, ScanResult, header_id
from grprof.formats.goversion import infer_go_version
from grprof.model import Ancestor, Frame, Snapshot
from grprof.table import GoroutineTable, Header, RowExtra, Stack, stacks_of

# /debug/pprof/goroutine?debug=2 stops writing at this size (runtime/pprof writeGoroutineStacks).
PPROF_DEBUG2_CAP = 64 << 20
_MODIFIERS = (" (leaked)", " (scan)", " (durable)", " (synctest)")
_PROLOGUE_START = ("panic: ", "fatal error: ", "SIG", "unexpected signal", "unexpected fault address")


def native_scanner() -> Any | None:
    """The Rust scanner, unless unavailable or disabled with GRPROF_PURE=1."""
    return _rust.native("Scanner")


def parse_stacks(texts: list[bytes], *, native: bool | None = None) -> ParsedStacks:
    """`parse_stack` of each distinct stack text of a dump (`ScanResult.stack_texts`).

    `native`: None uses the Rust parser when available; False forces the Python one; True
    requires the Rust one (tests and benchmarks)."""
    fn = _rust.native("parse_stacks", native)
    if fn is not None:
        found, raw_index, dangling = fn(texts, Frame)
        index = array("q")
        index.frombytes(raw_index)
        return ParsedStacks(stacks_of(found), index, dangling)
    cache = FrameCache()
    parsed = [parse_stack(t, cache) for t in texts]
    # Equal frames are one object here, so frame ids tell equal stacks apart without
    # hashing every frame of every stack.
    ids: dict[tuple[tuple[int, ...], bool, int], int] = {}
    stacks: list[Stack] = []
    out = array("q")
    for st, _ in parsed:
        i = ids.setdefault((tuple(map(id, st.frames)), st.frames_elided, id(st.created_by)), len(stacks))
        if i == len(stacks):
            stacks.append(st)
        out.append(i)
    return ParsedStacks(stacks, out, bytes(d for _, d in parsed))


def scan(chunks: Iterable[bytes], *, signatures: bool = True) -> ScanResult:
    """`signatures`: let the native scanner hash a big dump's stack signatures as it goes
    (`GoroutineTable.stack_signatures`); a caller that keeps its own says False."""
    cls = native_scanner()
    if cls is None:
        sc = Scanner()
        for c in chunks:
            sc.feed(c)
        return sc.finish()
    nsc = cls()
    for c in chunks:
        nsc.feed(c)
    # `finish` and `_from_native` make a `Frame` per call site and a `Stack` per distinct
    # stack (20,000 in a dump of distinct stacks), none in a cycle: the collector's young
    # passes over them cost a tenth of `load` there.
    with gc_paused(PAUSE_GC_AT):
        return _from_native(nsc.finish(Frame, signatures, Stack))


def _from_native(d: dict[str, Any]) -> ScanResult:
    """The Rust scanner's result (`Scanner.finish(Frame)`, or `finish(Frame, s, Stack)`
    whose stacks are `Stack` objects already) as a `ScanResult`: its stacks come parsed
    (`parsed`), with no `stack_texts`."""

    def arr(code: str, key: str) -> array[int]:
        a = array(code)
        a.frombytes(d.pop(key))  # the bytes go as soon as copied: 8 bytes a goroutine each
        return a

    stacks = d.pop("stacks")
    if stacks and isinstance(stacks[0], tuple):  # rows: `finish` was given no `Stack`
        stacks = stacks_of(stacks)
    parsed = ParsedStacks(stacks, arr("q", "text_stack"), d["dangling"], d.pop("signatures"))
    return ScanResult(
        ids=arr("q", "ids"),
        header=arr("l", "header"),
        stack=arr("l", "stack"),
        creator=arr("q", "creator"),
        argkey=arr("Q", "argkey"),
        header_texts=d["header_texts"],
        dumper=bytearray(d["dumper"]),
        parsed=parsed,
        ancestors=d["ancestors"],
        dumps=d["dumps"],
        size=d["size"],
        unterminated=d["unterminated"],
        eof_in_block=d["eof_in_block"],
        eof_in_dump=d["eof_in_dump"],
    )


def parse(chunks: Iterable[bytes], source: str) -> list[Snapshot]:
    """Every dump in the text, in order; [] when there is no goroutine header at all."""
    return build(scan(chunks), source)


def build(r: ScanResult, source: str) -> list[Snapshot]:
    """The snapshots of a scanned input. It consumes `r`: its stack texts (the Python
    scanner's) are dropped once parsed, and so are its parsed stacks (the Rust scanner's)
    once in the table."""
    if not r.dumps:
        return []
    with gc_paused(len(r.dumper)):
        return _build(r, source)


def _build(r: ScanResult, source: str) -> list[Snapshot]:
    table = GoroutineTable()
    hmap = [table.intern_header(parse_header(t)) for t in r.header_texts]
    parsed = r.parsed if r.parsed is not None else parse_stacks(r.stack_texts)
    r.stack_texts = []
    r.parsed = None
    smap = parsed.text_stack
    table.set_stacks(parsed.stacks, parsed.signatures)
    table.ids = r.ids
    table.header = _remap(r.header, hmap)
    # Stacks are numbered in order of first use over the texts, so as many stacks as texts
    # (every stack distinct, the common case of a big dump) is the identity: no 20,000-item
    # check in `_remap`.
    table.stack = r.stack if len(parsed.stacks) == len(smap) else _remap(r.stack, smap)
    table.creator = r.creator
    table.argkey = r.argkey
    for row, text in r.ancestors.items():
        table.extras[row] = RowExtra(ancestors=parse_ancestors(text))

    # The last goroutine is partial when the input stops inside its block: a cut line, a
    # function line without its file line, or the exact size at which pprof stops writing.
    # A cut between blocks (inside the next header) loses that goroutine but still truncates.
    capped = r.size == PPROF_DEBUG2_CAP
    partial = bool(
        r.eof_in_block
        and len(r.ids) > 0
        and (
            r.unterminated
            or capped
            or parsed.dangling[r.stack[-1]]
            or r.header_texts[r.header[-1]][-1:] != b":"
        )
    )
    cut = partial or capped or (r.unterminated and r.eof_in_dump)
    if partial:
        last = len(r.ids) - 1
        prev = table.extras.get(last, RowExtra())
        table.extras[last] = RowExtra(ancestors=prev.ancestors, partial=True)

    bounds = [start for start, _ in r.dumps] + [len(r.ids)]
    snaps = []
    for i, (start, prologue) in enumerate(r.dumps):
        t = table.slice(start, bounds[i + 1]) if len(r.dumps) > 1 else table
        is_last = i == len(r.dumps) - 1
        snaps.append(
            Snapshot(
                source=source if len(r.dumps) == 1 else f"{source}#{i + 1}",
                format="debug=2",
                # goroutineleak?debug=2 prints every goroutine like a plain dump (marking the
                # leaked ones, a mark later plain dumps keep too): the text cannot tell them apart.
                profile="goroutine",
                table=t,
                truncated=is_last and cut,
                # Inferred when first read: it walks every distinct frame of the dump.
                go_version_of=functools.partial(infer_go_version, t, header_texts=r.header_texts),
                prologue=_prologue(prologue),
            )
        )
    return snaps


def _remap(col: array[int], mapping: Sequence[int]) -> array[int]:
    if all(i == m for i, m in enumerate(mapping)):
        return col
    # From an iterator, not a list: a list of a million rows holds 36 MB of int objects.
    return array("l", map(mapping.__getitem__, col))


def _prologue(raw: bytes) -> str:
    """The crash message the dump follows: `panic: ...`, `fatal error: ...`, `SIGQUIT: quit`."""
    lines = raw.decode("utf-8", "replace").split("\n")
    if "runtime stack:" in lines:  # g0 frames of a fatal error: not part of the message
        lines = lines[: lines.index("runtime stack:")]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(_PROLOGUE_START):
            # Keep the whole message: the lines of the crash block it starts from
            # (`runtime: goroutine stack exceeds ...` before `fatal error: stack overflow`).
            j = i
            while j > 0 and lines[j - 1].startswith((*_PROLOGUE_START, "runtime: ", "\t", "[")):
                j -= 1
            return "\n".join(lines[j:]).strip()
    return ""


# -- headers --------------------------------------------------------------------------------


def parse_header(text: bytes) -> Header:
    """`[chan receive, 5 minutes, locked to thread]:` and friends, labels included."""
    s = text.decode("utf-8", "replace")
    labels: dict[str, str] = {}
    close = -1
    inner_end = -1
    lab = s.find(" labels:{")
    end_scan = 1
    if lab >= 0:
        try:
            labels, end_scan = goquote.parse_labels(s, lab + 8)
        except ValueError:
            lab = -1
            end_scan = 1
    close = s.find("]", end_scan)
    inner_end = lab if lab >= 0 else (close if close >= 0 else len(s))
    inner = s[1:inner_end]
    if close >= 0:
        after = s[close + 1 :].strip()
        if after.startswith("{"):
            try:
                more, _ = goquote.parse_labels(after, 0)
                labels.update(more)
            except ValueError:
                pass
    parts = inner.split(", ")
    state = parts[0]
    flags: list[str] = []
    leaked = False
    stripped = True
    while stripped:
        stripped = False
        for m in _MODIFIERS:
            if state.endswith(m) and len(state) > len(m):
                state = state[: -len(m)]
                flags.insert(0, m[2:-1])
                leaked = leaked or m == " (leaked)"
                stripped = True
    minutes = 0
    locked = False
    for p in parts[1:]:
        if p.endswith(" minutes") and p[:-8].isdigit():
            minutes = int(p[:-8])
        elif p == "locked to thread":
            locked = True
        elif p:
            flags.append(p)
    if close < 0:
        flags.append("header cut")
    return Header.make(state, minutes, locked, leaked, labels, tuple(flags))


# -- stacks ---------------------------------------------------------------------------------


def parse_file_line(s: str) -> tuple[str, int]:
    """`\\t/src/x.go:42 +0x1d fp=0x.. sp=0x.. pc=0x..` -> ("/src/x.go", 42); Windows paths too."""
    s = s.strip()
    for marker in (" fp=", " pc="):
        p = s.find(marker)
        if p >= 0:
            s = s[:p]
    p = s.rfind(" +0x")
    if p >= 0:
        s = s[:p]
    s = s.rstrip()
    c = s.rfind(":")
    tail = s[c + 1 :]
    # ASCII digits that fit an int64: `isdigit` alone takes `²`, which `int` refuses.
    if c > 0 and tail.isascii() and tail.isdigit() and len(tail) <= 19:
        return s[:c], int(tail)
    return s, 0


class FrameCache:
    """Frames parsed from one dump, by their text, so that each call site is parsed once."""

    __slots__ = ("calls", "created", "equal")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], Frame] = {}
        """(function line up to its arguments, file line) -> Frame."""
        self.created: dict[tuple[str, str], Frame] = {}
        """(`created by` function, file line) -> Frame."""
        self.equal: dict[Frame, Frame] = {}
        """Frame -> the first Frame equal to it: equal frames are one object."""


def parse_stack(text: bytes, cache: FrameCache | None = None) -> tuple[Stack, bool]:
    """A goroutine's stack lines -> (Stack, whether it ends in a frame missing its file line).

    With `cache` (one per dump), a frame seen in an earlier stack is not parsed again (a
    service's stacks are made of a few thousand call sites, however many stacks there are),
    and equal frames are one object."""
    if cache is None:
        return _parse_stack(text)
    fast = _parse_pairs(text, cache)
    if fast is not None:
        return fast, False
    st, dangling = _parse_stack(text)
    eq = cache.equal
    frames = tuple([eq.setdefault(f, f) for f in st.frames])
    created = None if st.created_by is None else eq.setdefault(st.created_by, st.created_by)
    return Stack(frames, st.frames_elided, created), dangling


def _parse_pairs(text: bytes, cache: FrameCache) -> Stack | None:
    """The common shape, from the cache: function and file line pairs, then maybe `created by`
    and its file line. None for anything else (elided or cgo frames, a missing file line, an
    indented note), which `_parse_stack` takes, as it takes everything."""
    lines = text.decode("utf-8", "replace").split("\n")
    n = len(lines)
    created = None
    if n >= 2 and lines[-2].startswith("created by "):
        name, loc = lines[-2][11:], lines[-1]
        p = name.find(" in goroutine ")
        ck = (name if p < 0 else name[:p], loc)
        created = cache.created.get(ck)
        if created is None:
            if loc[:1] not in (" ", "\t"):
                return None
            cf = Frame(ck[0], *parse_file_line(loc))
            created = cache.created[ck] = cache.equal.setdefault(cf, cf)
        n -= 2
    if n % 2:
        return None
    frames = []
    calls = cache.calls
    for i in range(0, n, 2):
        fn = lines[i]
        if fn[-1:] != ")":
            return None
        # The key holds all that decides the frame, and its name part starts as the line does:
        # a key seen before comes from a line that passed the checks below.
        key = (fn[: fn.rfind("(")], lines[i + 1])
        f = calls.get(key)
        if f is None:
            loc = key[1]
            if loc[:1] not in (" ", "\t") or fn[0] in " \t" or fn.startswith(_NOT_CALLS):
                return None
            f = Frame(key[0], *parse_file_line(loc))
            f = calls[key] = cache.equal.setdefault(f, f)
        frames.append(f)
    return Stack(tuple(frames), False, created)


_NOT_CALLS = ("created by ", "...", "non-Go function")


def _parse_stack(text: bytes) -> tuple[Stack, bool]:
    frames: list[Frame] = []
    elided = False
    created: Frame | None = None
    pending: str | None = None
    pending_created: str | None = None
    for raw in text.decode("utf-8", "replace").split("\n"):
        if not raw:
            continue
        if raw[0] in " \t":
            if pending is not None or pending_created is not None:
                file, line = parse_file_line(raw)
                if pending is not None:
                    frames.append(Frame(pending, file, line))
                    pending = None
                else:
                    created = Frame(pending_created or "", file, line)
                    pending_created = None
            continue
        if pending is not None:  # a function line without its file line
            frames.append(Frame(pending, "", 0))
            pending = None
        if raw.startswith("created by "):
            name = raw[11:]
            p = name.find(" in goroutine ")
            pending_created = name if p < 0 else name[:p]
        elif raw.startswith("..."):
            elided = True
        elif raw.startswith("non-Go function"):
            frames.append(Frame("non-Go function", "", 0))
        else:
            pending = raw[: raw.rfind("(")] if raw.endswith(")") else raw
    dangling = pending is not None or pending_created is not None
    if pending is not None:
        frames.append(Frame(pending, "", 0))
    if pending_created is not None:
        created = Frame(pending_created, "", 0)
    return Stack(tuple(frames), elided, created), dangling


def parse_ancestors(text: bytes) -> tuple[Ancestor, ...]:
    """`[originating from goroutine N]:` sections (GODEBUG=tracebackancestors=N)."""
    out: list[Ancestor] = []
    for section in text.split(b"[originating from goroutine ")[1:]:
        head, _, body = section.partition(b"\n")
        gid = head.rstrip(b"]:")
        stack, _ = parse_stack(body)
        creator = None
        for line in body.split(b"\n"):
            if line.startswith(b"created by ") and b" in goroutine " in line:
                tail = line.rsplit(b" ", 1)[-1]
                creator = int(tail) if tail.isdigit() else None
        out.append(
            Ancestor(
                id=int(gid) if gid.isdigit() else -1,
                frames=stack.frames,
                frames_elided=stack.frames_elided,
                created_by=stack.created_by,
                creator_id=creator,
            )
        )
    return tuple(out)


__all__ = ["build", "header_id", "parse", "parse_header", "parse_stack", "scan"]


# -- crashes --------------------------------------------------------------------------------

# Prologue lines that say a goroutine crashed: a panic, a fatal error (deadlock, concurrent
# map writes, stack overflow), a fatal signal. Not SIGQUIT: it dumps every goroutine and none
# of them failed.
_CRASH_STARTS = ("panic: ", "fatal error: ", "[signal ", "unexpected signal", "unexpected fault address")


def crashed_goroutine(snap: Snapshot) -> int | None:
    """The id of the goroutine that panicked or crashed, when the dump is a crash's traceback.

    Go prints that goroutine first (`goroutine 1 [running]:` after `panic: ...` or
    `fatal error: ...`), whatever GOTRACEBACK says; None for other dumps."""
    t = snap.table
    if snap.format != "debug=2" or t.counts is not None or not len(t):
        return None
    for line in snap.prologue.split("\n"):
        signal = line.startswith("SIG") and ": " in line and not line.startswith("SIGQUIT")
        if signal or line.startswith(_CRASH_STARTS):
            return int(t.ids[0])
    return None
