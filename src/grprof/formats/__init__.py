"""Format detection and dispatch: bytes in, snapshots out.

Parsers know nothing of detection, aggregation or reports; each turns one input into
`Snapshot`s backed by a `GoroutineTable`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from grprof.errors import ParseError
from grprof.formats._scan import ScanResult
from grprof.model import Origin, Snapshot

SNIFF = 64 << 10


_DEBUG1 = re.compile(rb"\A\s*(goroutine|goroutineleak) profile: total \d+")
_HEADER = re.compile(rb"(?:^|\n)[ \t]*goroutine \d+ (?:\[|gp=)")


def sniff(head: bytes) -> str | None:
    """Guess the format from the first bytes: "debug=0", "debug=1", "debug=2" or None."""
    if _DEBUG1.match(head):
        return "debug=1"
    # The literal first: the regular expression tries every offset (70 us on a 7 KB profile).
    if b"goroutine " in head and _HEADER.search(head):
        return "debug=2"
    if _looks_like_profile_proto(head):
        return "debug=0"
    return None


# profile.proto field number -> wire type (0 varint, 2 length-delimited); see the reference §4.
_PROFILE_FIELDS = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 0, 8: 0, 9: 0, 10: 0, 11: 2, 12: 0, 13: 0, 14: 0}


def _looks_like_profile_proto(head: bytes) -> bool:
    """Walk the first few fields: valid profile.proto tags with lengths that fit."""
    pos, fields = 0, 0
    while pos < len(head) and fields < 4:
        tag, pos = _varint(head, pos)
        if tag is None or _PROFILE_FIELDS.get(tag >> 3) not in (tag & 7, 2 if tag >> 3 == 13 else -1):
            return False
        value, pos = _varint(head, pos)
        if value is None:
            return False
        if tag & 7 == 2:
            pos += value
        fields += 1
    return fields > 0 and (pos <= len(head) or len(head) >= SNIFF)


def _varint(b: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(b) and shift < 64:
        c = b[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        if c < 0x80:
            return value, pos
        shift += 7
    return None, pos


def _looks_text(head: bytes) -> bool:
    sample = head[:4096]
    binary = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return binary * 20 < len(sample)


def parse_chunks(chunks: Iterable[bytes], source: str, *, signatures: bool = True) -> list[Snapshot]:
    """Parse a decompressed byte stream into snapshots (several if it holds several dumps).

    When `chunks` is a `sources.Whole` (bytes given to `load`), debug=0 and debug=1 take its
    `data` rather than joining the chunks: 32 ms less for a 24 MB debug=1 text.
    `signatures=False`: the caller keeps the stacks' signatures itself (a daemon's
    `SignatureCache`), so the parsers need not hash a big dump's (`traceback.scan`,
    `pprof.parse`, `debug1.parse`)."""
    whole: bytes | None = getattr(chunks, "data", None)
    it = iter(chunks)
    head = b""
    pending: list[bytes] = []
    for c in it:
        pending.append(c)
        head += c[: SNIFF - len(head)]
        if len(head) >= SNIFF:
            break
    kind = sniff(head)
    notes: list[str] = []
    origin: Origin | None = None
    if kind != "debug=0" and head:
        from grprof.formats import _paste

        if _paste.needed(head) and _looks_text(head):
            # Pasted or logged: undo the damage first (rare; the whole input is in memory then).
            text, notes, origins = _paste.normalize_full(b"".join(_chain(pending, it)))
            notes = [f"{source}: {n}" for n in notes]
            # The process the log's prefixes name, when they name one.
            origin = origins[0] if len(origins) == 1 else None
            pending, it, head, whole = [text], iter(()), text[:SNIFF], None
            kind = sniff(head)
    if kind is None and head and _looks_text(head):
        from grprof.formats import goleak

        if goleak.detect(head):
            # `go test` output with go.uber.org/goleak's report: the goroutines it lists.
            return _goleak(b"".join(_chain(pending, it)), source, notes, origin)
        # A report further into a long `go test -v` log: keep the text from the first chunk
        # that may hold it, in case the traceback scan below finds no dump.
        watch = _Watch(_chain(pending, it), goleak.MARKER)
        pending, it = [], iter(watch)
    else:
        watch = None
    if kind == "debug=1":
        from grprof.formats import debug1

        data = whole if whole is not None else b"".join(_chain(pending, it))
        return _noted(debug1.parse(data, source, signatures=signatures), notes, origin)
    if kind == "debug=0":
        from grprof.formats import pprof

        data = whole if whole is not None else b"".join(_chain(pending, it))
        return [pprof.parse(data, source, signatures=signatures)]
    if not head:
        raise ParseError(source, "empty input: expected a goroutine dump or profile")
    # Text: a dump may start anywhere in a log, so scan all of it.
    from grprof.formats import traceback

    scanned = traceback.scan(_chain(pending, it), signatures=signatures)
    notes += split_dumps(scanned, source)
    snaps = traceback.build(scanned, source)
    if not snaps and watch is not None and watch.kept:
        from grprof.formats import goleak

        kept = b"".join(watch.kept)
        if goleak.detect(kept):
            return _goleak(kept, source, notes, origin)
    if not snaps:
        raise ParseError(
            source,
            'not a goroutine dump: no "goroutine N [" header or profile header found'
            + ("" if _looks_text(head) else " (binary data, and not a pprof profile)"),
        )
    return _noted(snaps, notes, origin)


# Text before a goroutine header that is clear evidence of a new dump (besides a goroutine id
# seen again): a crash message, a profile header, the time-gap marker of `_paste`.
_NEW_DUMP = (b"panic: ", b"fatal error: ", b"SIG", b"unexpected signal", b"unexpected fault address")
_NEW_DUMP_RE = re.compile(rb"(?:goroutine|goroutineleak) profile: total \d+|grprof: time gap")


def split_dumps(r: ScanResult, source: str) -> list[str]:
    """Keep the scanner's dump boundaries that clear evidence supports; merge the others.

    The scanner starts a new dump at a goroutine header that follows other text, at a
    goroutine id seen again, at a signal header that is not a crash section. A boundary is
    kept only when the new dump repeats a goroutine id of the one before (`cat a.txt b.txt`),
    or when the text before it holds a crash message (`panic: `, `fatal error: `, `SIGQUIT: `,
    `unexpected signal`...), a `goroutine profile: total N` header or a time-gap marker
    (`grprof.formats._paste`); text between goroutines without any of these (a log line
    written in the middle of a dump) does not split it. Returns one note per boundary."""
    if len(r.dumps) < 2:
        return []
    notes: list[str] = []
    kept = [r.dumps[0]]
    bounds = [start for start, _ in r.dumps] + [len(r.ids)]
    prev_ids = set(r.ids[bounds[0] : bounds[1]])
    for i in range(1, len(r.dumps)):
        start, prologue = r.dumps[i]
        if not prologue and start - 1 > bounds[i - 1] and _dumper(r, start - 1):
            # `cat a.txt b.txt`: the scanner saw the repeated id one goroutine late, after the
            # goroutine that wrote the second dump (printed first, with an id new to the first).
            start = start - 1
            r.dumps[i] = (start, prologue)
            bounds[i] = start
            prev_ids.discard(r.ids[start])
        ids = set(r.ids[start : bounds[i + 1]])
        why = _evidence(prologue, prev_ids & ids - {0})
        if why is None:
            prev_ids |= ids
            notes.append(
                f"{source}: text before goroutine {r.ids[start]} is not a new dump's start "
                "(no crash message, profile header, time gap or repeated goroutine id): kept in one dump"
            )
            continue
        prev_ids = ids
        kept.append(r.dumps[i])
        notes.append(f"{source}: split: dump #{len(kept)} starts at goroutine {r.ids[start]} ({why})")
    r.dumps = kept
    return notes


def _dumper(r: ScanResult, row: int) -> bool:
    """Whether the goroutine at `row` is the one printing a dump (Go prints it first): its
    stack calls one of `_scan.DUMPER_CALLS`, which the scanner notes per stack."""
    return r.header_texts[r.header[row]].startswith(b"[running") and bool(r.dumper[r.stack[row]])


def _evidence(prologue: bytes, repeated: set[int]) -> str | None:
    for line in reversed(prologue.split(b"\n")):
        if line.startswith(_NEW_DUMP) or _NEW_DUMP_RE.match(line):
            return "after " + repr(line[:60].decode("utf-8", "replace"))
    if repeated:
        return f"goroutine {min(repeated)} appears again"
    return None


class _Watch:
    """Passes chunks through; keeps them from the first holding `marker` on (with up to 4 KiB
    before it: the line naming the test), however the chunks cut the marker."""

    def __init__(self, chunks: Iterator[bytes], marker: bytes) -> None:
        self.chunks = chunks
        self.marker = marker
        self.kept: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        tail = b""
        n = len(self.marker) - 1
        for c in self.chunks:
            if self.kept:
                self.kept.append(c)
            elif self.marker in c or self.marker in tail[-n:] + c[:n]:
                self.kept = [tail, c]
            else:
                tail = c[-4096:] if len(c) >= 4096 else (tail + c)[-4096:]
            yield c


def _goleak(data: bytes, source: str, notes: list[str], origin: Origin | None) -> list[Snapshot]:
    from grprof.formats import goleak, traceback

    text, found = goleak.convert(data)
    scanned = traceback.scan([text])
    # Every report of the input is one snapshot of the leaked goroutines, even when the test
    # binaries of `go test ./...` gave two of them the same id (the scanner's new dump there).
    scanned.dumps = scanned.dumps[:1]
    snaps = traceback.build(scanned, source)
    if not snaps:
        raise ParseError(source, "a goleak report without any goroutine it could read")
    return _noted(snaps, notes + [f"{source}: {n}" for n in found], origin)


def _noted(snaps: list[Snapshot], notes: list[str], origin: Origin | None = None) -> list[Snapshot]:
    if notes and snaps:
        snaps[0].notes = tuple(notes)
    if origin is not None:
        for s in snaps:
            s.origin = origin
    return snaps


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest
