"""Line scanner for debug=2 text: finds dumps and goroutine blocks, interns their parts.

This is the pure-Python implementation of the scanner contract that `native/src/lib.rs`
implements in Rust (`grprof._native.Scanner`); both must produce identical `ScanResult`s
(tests/test_scan_equivalence.py checks). The scanner only splits and interns; what a header
or a stack *means* is `traceback.py`'s business, done once per distinct text.

Per goroutine it records the id, the header text from `[` to the end of the line, the
stack (normalised: argument values, `in goroutine N`, `fp= sp= pc=` dropped) and, apart,
the creator id and an xxh3 hash of the argument values (for "exact" grouping).

One difference of form between the two: this scanner hands over each distinct stack's text
(`stack_texts`, parsed later by `traceback.parse_stacks`), the Rust one parses each text
when it first meets it and hands over the parsed stacks (`parsed`) without any text, so a
streamed dump with 100,000 distinct stacks never holds their 140 MB of text.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import xxhash

if TYPE_CHECKING:
    from grprof.table import PendingSignatures, Stack

PROLOGUE_LINES = 64
_WS = b" \t"
# Lines between goroutine blocks that do not end the dump: runtime complaints, and the
# separator of the per-M sections GOTRACEBACK=crash prints after the goroutines.
_NOISE = (b"-----", b"[signal ", b"runtime: ", b"non-Go function", b"goroutine running on other thread")
# Signal headers open each per-M section of a crash dump; anywhere else they open a new dump.
_CRASH_SECTION = (b"SIG", b"PC=", b"signal arrived")
_HEX = frozenset(b"0123456789abcdef")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")
# Calls that print a dump: a stack text holding one is the goroutine that wrote the dump
# (`ScanResult.dumper`, for `formats.split_dumps`). native/src/scan.rs has the same list.
DUMPER_CALLS = (b"runtime/pprof.writeGoroutineStacks(", b"runtime.Stack(")


class ParsedStacks(NamedTuple):
    """The distinct stack texts of a dump, parsed."""

    stacks: list[Stack]
    """Distinct stacks, first use first: texts that differ only in what a stack leaves out
    (argument values, offsets, notes) give one. Equal frames are one object."""
    text_stack: array[int]
    """Each text's stack (an index into `stacks`)."""
    dangling: bytes
    """Per text, 1 when it ends in a function line without its file line (a cut dump)."""
    signatures: PendingSignatures | None = None
    """Each stack's default-similarity signature, when the parser hashes them (the native
    scanner, from the parsed strings of a dump of many stacks); None for `aggregate.group`."""


@dataclass
class ScanResult:
    ids: array[int] = field(default_factory=lambda: array("q"))
    header: array[int] = field(default_factory=lambda: array("l"))
    stack: array[int] = field(default_factory=lambda: array("l"))
    creator: array[int] = field(default_factory=lambda: array("q"))
    argkey: array[int] = field(default_factory=lambda: array("Q"))
    header_texts: list[bytes] = field(default_factory=list)
    """Distinct header texts, from `[` to the end of the line."""
    stack_texts: list[bytes] = field(default_factory=list)
    """Distinct stacks: the first occurrence's raw lines, newline-joined (this scanner; the
    Rust one gives `parsed` instead and leaves this empty)."""
    dumper: bytearray = field(default_factory=bytearray)
    """Per distinct stack, 1 when its text holds one of `DUMPER_CALLS`."""
    parsed: ParsedStacks | None = None
    """The distinct stacks parsed, when the scanner parsed them (the Rust one): what
    `traceback.parse_stacks(stack_texts)` gives."""
    ancestors: dict[int, bytes] = field(default_factory=dict)
    """Row -> raw text of its `[originating from goroutine N]:` sections."""
    dumps: list[tuple[int, bytes]] = field(default_factory=list)
    """(first row, text seen before the dump's first goroutine) per dump, in order."""
    size: int = 0
    unterminated: bool = False
    """The input did not end with a newline."""
    eof_in_block: bool = False
    """The input ended inside a goroutine block (no blank line or other text after it)."""
    eof_in_dump: bool = False
    """The input ended inside a dump (in a block, or between blocks)."""


def is_register_line(s: bytes) -> bool:
    """`rax    0x0`, `r10    0xc000012345`, `rip    0x46e2a1`: register dumps in crash output."""
    sp = s.find(b" ")
    if not 1 <= sp <= 7 or not all(c in _ALNUM for c in s[:sp]):
        return False
    v = s[sp:].lstrip(b" ")
    return v.startswith(b"0x") and len(v) > 2 and all(c in _HEX for c in v[2:])


def header_id(s: bytes) -> int:
    """The goroutine id if `s` is a goroutine header line (`goroutine 12 [` / `goroutine 12 gp=`), else -1."""
    if not s.startswith(b"goroutine "):
        return -1
    i = 10
    n = len(s)
    while i < n and 48 <= s[i] <= 57:
        i += 1
    if i == 10 or i > 29 or not (s.startswith(b" [", i) or s.startswith(b" gp=", i)):
        return -1
    gid = int(s[10:i])
    return gid if gid < 1 << 63 else -1  # Go's ids are int64


class Scanner:
    """Feed chunks of any size, then `finish()`."""

    def __init__(self) -> None:
        self.r = ScanResult()
        self._carry = b""
        self._header_ix: dict[bytes, int] = {}
        self._stack_ix: dict[bytes, int] = {}
        self._prologue: list[bytes] = []
        self._seen: set[int] = set()
        # state: 0 outside any dump, 1 in a dump between blocks, 2 in a block, 3 skipping a
        # block up to the next blank line (`runtime stack:`, a goroutine repeated in a crash section)
        self._state = 0
        self._gid = -1
        self._htext = b""
        self._raw: list[bytes] = []
        self._key: list[bytes] = []
        self._args: list[bytes] = []
        self._creator = -1
        self._anc: list[bytes] | None = None
        self._maybe: bytes | None = None
        self._crash = False
        """A `-----` separator was seen: the dump continues with per-M crash sections."""
        self._after_sep = False
        """The last text between blocks was `-----`, or a signal header right after it."""

    def feed(self, chunk: bytes) -> None:
        self.r.size += len(chunk)
        data = self._carry + chunk if self._carry else chunk
        lines = data.split(b"\n")
        self._carry = lines.pop()
        for line in lines:
            self._line(line)

    def finish(self) -> ScanResult:
        carry, self._carry = self._carry, b""
        line = carry.rstrip(b"\r \t")
        self._resolve_maybe(line if carry else None)
        self.r.eof_in_dump = self._state != 0
        if carry:
            self.r.unterminated = True
            if self._state == 2 and line and header_id(line) < 0:
                # A line cut by the end of input belongs to the block it interrupts, whatever
                # it looks like: it is the partial goroutine's last line.
                self._raw.append(line)
                self._key.append(line.lstrip(_WS))
            else:
                self._line(line)
        self.r.eof_in_block = self._state == 2
        if self._state == 2:
            self._end_block()
        return self.r

    # -- per line -----------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        line = line.rstrip(b"\r \t")
        if self._maybe is not None:
            self._resolve_maybe(line)
        if self._state == 2:
            if not line:
                self._end_block()
                self._state = 1
                return
            if self._body_line(line):
                return
            if self._anc is None and header_id(line) < 0:
                # Text that is not a frame ends the dump, unless an indented location follows
                # it: a C frame named by a cgo symbolizer (`clock_nanosleep` / `\tpc=0x...`).
                self._maybe = line
                return
            self._end_block()
            self._state = 1
        self._between(line)

    def _resolve_maybe(self, nxt: bytes | None) -> None:
        maybe, self._maybe = self._maybe, None
        if maybe is None:
            return
        if nxt and nxt[0] in _WS:
            self._raw.append(maybe)
            self._key.append(maybe)
            return
        self._end_block()
        self._state = 1
        self._between(maybe)

    def _body_line(self, line: bytes) -> bool:
        """Take a line of the current goroutine's stack; False if it is not one."""
        anc = self._anc
        if line[0] in _WS:  # file line, or an indented note such as "stack unavailable"
            if anc is not None:
                anc.append(line)
                return True
            self._raw.append(line)
            s = line.lstrip(_WS)
            fp = s.find(b" fp=")
            self._key.append(s if fp < 0 else s[:fp])
            return True
        if line.startswith(b"[originating from goroutine "):
            if anc is None:
                self._anc = anc = []
            anc.append(line)
            return True
        if anc is not None:
            if line[-1:] == b")" or line.startswith((b"created by ", b"...")):
                anc.append(line)
                return True
            return False
        if line[-1:] == b")":
            self._raw.append(line)
            p = line.rfind(b"(")
            self._key.append(line[:p])
            self._args.append(line[p:])
            return True
        if line.startswith(b"created by "):
            self._raw.append(line)
            p = line.find(b" in goroutine ")
            if p < 0:
                self._key.append(line)
            else:
                self._key.append(line[:p])
                tail = line[p + 14 :]
                if tail.isdigit() and len(tail) < 20 and int(tail) < 1 << 63:
                    self._creator = int(tail)
            return True
        if line.startswith((b"...", b"non-Go function")):  # elided frames; a cgo frame
            self._raw.append(line)
            self._key.append(line)
            return True
        return False

    def _between(self, line: bytes) -> None:
        """A line outside any goroutine block: a header, crash noise, or other text."""
        state = self._state
        if not line:
            if state == 3:
                self._state = 1
            return
        if state == 3:
            return
        gid = header_id(line)
        if gid >= 0:
            repeated = gid != 0 and gid in self._seen
            if state == 0 or (repeated and not self._crash):
                self._start_dump()
            elif repeated:
                # Per-M sections of GOTRACEBACK=crash repeat goroutines running on that M.
                self._state = 3
                return
            self._seen.add(gid)
            self._after_sep = False
            self._prologue.clear()  # what a later dump's prologue holds starts after this block
            self._gid = gid
            self._htext = line[line.find(b"[") :]
            self._state = 2
            return
        if state == 1:
            if line == b"runtime stack:":
                self._state = 3
                return
            section = self._after_sep and line.startswith(_CRASH_SECTION)
            if line[0] in _WS or line.startswith(_NOISE) or is_register_line(line) or section:
                # Crash noise stays in the dump; a signal header not right after `-----` opens
                # the next dump (the `SIGQUIT: quit` of the next crash in the same log).
                sep = line.startswith(b"-----")
                self._crash = self._crash or sep
                self._after_sep = sep or section
            else:
                self._state = 0
        self._prologue.append(line)
        if len(self._prologue) > PROLOGUE_LINES:
            del self._prologue[0]

    def _start_dump(self) -> None:
        self.r.dumps.append((len(self.r.ids), b"\n".join(self._prologue)))
        self._prologue = []
        self._seen = set()
        self._crash = False
        self._after_sep = False

    def _end_block(self) -> None:
        r = self.r
        row = len(r.ids)
        r.ids.append(self._gid)
        hi = self._header_ix.get(self._htext)
        if hi is None:
            hi = self._header_ix[self._htext] = len(r.header_texts)
            r.header_texts.append(self._htext)
        r.header.append(hi)
        key = b"\n".join(self._key)
        si = self._stack_ix.get(key)
        if si is None:
            si = self._stack_ix[key] = len(r.stack_texts)
            raw = b"\n".join(self._raw)
            r.stack_texts.append(raw)
            r.dumper.append(any(d in raw for d in DUMPER_CALLS))
        r.stack.append(si)
        r.creator.append(self._creator)
        r.argkey.append(xxhash.xxh3_64_intdigest(b"\n".join(self._args)))
        if self._anc is not None:
            r.ancestors[row] = b"\n".join(self._anc)
        self._raw = []
        self._key = []
        self._args = []
        self._creator = -1
        self._anc = None
