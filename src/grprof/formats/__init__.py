"""Format detection and dispatch: bytes in, snapshots out.

Parsers know nothing of detection, aggregation or reports; each turns one input into
`Snapshot`s backed by a `GoroutineTable`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from grprof.errors import ParseError
from grprof.model import Snapshot

SNIFF = 64 << 10
_DEBUG1 = re.compile(rb"\A\s*(goroutine|goroutineleak) profile: total \d+")
_HEADER = re.compile(rb"(?:^|\n)[ \t]*goroutine \d+ (?:\[|gp=)")


def sniff(head: bytes) -> str | None:
    """Guess the format from the first bytes: "debug=0", "debug=1", "debug=2" or None."""
    if _DEBUG1.match(head):
        return "debug=1"
    if _HEADER.search(head):
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


def parse_chunks(chunks: Iterable[bytes], source: str) -> list[Snapshot]:
    """Parse a decompressed byte stream into snapshots (several if it holds several dumps)."""
    it = iter(chunks)
    head = b""
    pending: list[bytes] = []
    for c in it:
        pending.append(c)
        head += c[: SNIFF - len(head)]
        if len(head) >= SNIFF:
            break
    kind = sniff(head)
    if kind == "debug=1":
        from grprof.formats import debug1

        return debug1.parse(b"".join(_chain(pending, it)), source)
    if kind == "debug=0":
        from grprof.formats import pprof

        return [pprof.parse(b"".join(_chain(pending, it)), source)]
    if not head:
        raise ParseError(source, "empty input: expected a goroutine dump or profile")
    # Text: a dump may start anywhere in a log, so scan all of it.
    from grprof.formats import traceback

    snaps = traceback.parse(_chain(pending, it), source)
    if not snaps:
        raise ParseError(
            source,
            'not a goroutine dump: no "goroutine N [" header or profile header found'
            + ("" if _looks_text(head) else " (binary data, and not a pprof profile)"),
        )
    return snaps


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest
