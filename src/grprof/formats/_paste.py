"""Pasted and logged dumps: undo what logs, chats and web pages do to a dump's lines.

`needed(head)` looks at the first bytes of a text input (cheap: a few regular expressions
on a sample) and says whether anything needs undoing; only then does `normalize(text)` run,
line by line:

1. a per-line prefix carried by most lines of the sample is stripped, in one of the styles
   `PREFIXES` lists (kubectl `--timestamps`, the CRI log format with `P` partial lines
   joined, kubectl `--prefix`, journald `short` / `short-iso`, docker `json-file` lines
   JSON-decoded, `> ` quoting); lines without it are kept as they are; the process the
   prefixes name (journald's host and pid, kubectl's pod and container) is kept
   (`normalize_full`, `Normalized.origins`: `Snapshot.origin`);
2. non-breaking and other unicode spaces become plain spaces, zero-width spaces and byte
   order marks go;
3. indentation common to every non-blank line is removed;
4. a file line that lost its indentation (`/path/x.go:12 +0x1d` at column 0 right after a
   function line or a `created by` line) is indented again with a tab;
5. where timestamps of consecutive lines are `GAP` seconds or more apart and the line after
   the gap opens a dump (a goroutine header, a crash message, a profile header), a marker
   line (`GAP_MARKER`) is put in between: evidence that a new dump starts there.

`normalize` returns the text and notes naming what it did, for the user.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from typing import NamedTuple

from grprof.model import Origin

GAP = 5.0
"""Seconds without output, between timestamped lines, that separate two dumps."""
GAP_MARKER = b"grprof: time gap in the log"
SAMPLE_LINES = 100
SAMPLE_BYTES = 16 << 10

_TS = rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
# Non-breaking (U+00A0, U+2007, U+202F), en/em and other widths (U+2000-U+200A), medium
# mathematical (U+205F), ideographic (U+3000), and the invisible ones: zero width space
# (U+200B), byte order mark (U+FEFF).
_SPACES = re.compile(rb"\xc2\xa0|\xe2\x80[\x80-\x8a\xaf]|\xe2\x81\x9f|\xe3\x80\x80")
_INVISIBLE = re.compile(rb"\xe2\x80\x8b|\xef\xbb\xbf")
_ODD_SPACE = re.compile(rb"\xc2\xa0|\xe2\x80[\x80-\x8b\xaf]|\xe2\x81\x9f|\xe3\x80\x80|\xef\xbb\xbf")
# A file line whose indentation was stripped, right after a function or `created by` line.
_STRIPPED = re.compile(rb"\)\r?\n(?:[A-Za-z]:)?[^\s:][^\n]*:\d+(?: \+0x[0-9a-fA-F]+)?\r?\n")
_FILE_LINE = re.compile(
    rb"(?:[A-Za-z]:)?[^\s:].*?:\d+(?: \+0x[0-9a-fA-F]+)?"
    rb"(?: fp=0x[0-9a-fA-F]+ sp=0x[0-9a-fA-F]+ pc=0x[0-9a-fA-F]+)?\r?"
)
_OPENS_DUMP = re.compile(
    rb"goroutine \d+ (?:\[|gp=)|(?:goroutine|goroutineleak) profile: total |panic: |fatal error: |SIG[A-Z]+: "
)
_MONTHS = {m: i for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


@dataclass(frozen=True)
class Prefix:
    name: str
    """For the notes: what the prefix is."""
    pattern: re.Pattern[bytes]
    """Matches the prefix; group `ts` is its time when it has one, `rest` the line."""


PREFIXES = (
    # {"log":"goroutine 1 [running]:\n","stream":"stderr","time":"2026-12-03T07:00:00.1Z"}
    Prefix("docker json-file", re.compile(rb'\{"log":"(?P<rest>.*)$')),
    # 2026-12-03T07:00:00.123456789Z stderr F goroutine 1 [running]:
    Prefix(
        "CRI log",
        re.compile(rb"(?P<ts>" + _TS + rb") (?:stdout|stderr) (?P<tag>[FP])(?:[:|][^ ]*)? ?(?P<rest>.*)$"),
    ),
    # [pod/api-7d9f/app] goroutine 1 [running]:   (kubectl logs --prefix, --timestamps too)
    Prefix(
        "kubectl --prefix",
        re.compile(
            rb"\[pod/(?P<pod>[^/\]\s]+)/(?P<container>[^\]\s]+)\] ?(?:(?P<ts>" + _TS + rb") )?(?P<rest>.*)$"
        ),
    ),
    # Dec 03 07:00:00 host app[123]: goroutine 1 [running]:   (journalctl -o short, short-precise,
    # short-iso, short-iso-precise)
    Prefix(
        "journald",
        re.compile(
            rb"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?"
            rb"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d{4})"
            rb" (?P<host>\S+) [^\s:\[]+(?:\[(?P<pid>\d+)\])?: ?(?P<rest>.*)$"
        ),
    ),
    # 2026-12-03T07:00:00.123456789Z goroutine 1 [running]:   (kubectl logs --timestamps)
    Prefix(
        "RFC 3339 timestamp (kubectl --timestamps)", re.compile(rb"(?P<ts>" + _TS + rb")(?: (?P<rest>.*))?$")
    ),
    # > goroutine 1 [running]:   (mail and Markdown quoting, nested too)
    Prefix("'> ' quoting", re.compile(rb"(?:> ?)+(?P<rest>.*)$")),
)


# How each of `PREFIXES` starts (tests/test_paste.py holds them to it).
_MAY_PREFIX = re.compile(rb'\{"log":"|\d{4}-\d\d-\d\d[T ]|\[pod/|[A-Z][a-z]{2} [ \d]\d \d\d:|>')


def _lines(head: bytes) -> list[bytes]:
    return [ln.rstrip(b"\r") for ln in head.split(b"\n", SAMPLE_LINES)[:SAMPLE_LINES]]


def _prefix_of(sample: list[bytes]) -> Prefix | None:
    lines = [ln for ln in sample if ln.strip()]
    if len(sample) == SAMPLE_LINES and len(lines) > 1:
        lines.pop()  # the last line of the sample may be cut
    if not lines:
        return None
    # A prefix on most lines is on some of the first ones: count only the styles seen there
    # (a dump as Go writes it has none: one look at those lines, not one per style).
    first = lines[:16]
    if not any(map(_MAY_PREFIX.match, first)):
        return None
    for p in [p for p in PREFIXES if any(p.pattern.match(ln) for ln in first)]:
        if sum(1 for ln in lines if p.pattern.match(ln)) * 2 > len(lines):
            return p
    return None


def needed(head: bytes) -> bool:
    """Whether `head`, the first bytes of a text input, shows something `normalize` undoes."""
    head = head[:SAMPLE_BYTES]
    # Odd spaces are multi-byte: an ASCII head (C-level check) has none.
    if (not head.isascii() and _ODD_SPACE.search(head)) or _STRIPPED.search(head):
        return True
    sample = _lines(head)
    if _prefix_of(sample) is not None:
        return True
    lines = [ln for ln in sample if ln.strip()]
    return bool(lines) and all(ln[:1] in (b" ", b"\t") for ln in lines)


class Normalized(NamedTuple):
    text: bytes
    notes: list[str]
    origins: list[Origin]
    """Every distinct process the stripped prefixes named (journald host and pid, kubectl
    pod and container), in order of first appearance; [] when they name none."""


def normalize(text: bytes) -> tuple[bytes, list[str]]:
    """Undo a pasted or logged dump's damage: (text the parsers read, notes on what changed)."""
    n = normalize_full(text)
    return n.text, n.notes


def normalize_full(text: bytes) -> Normalized:
    """`normalize`, and what the stripped line prefixes said about the process."""
    notes: list[str] = []
    origins: dict[Origin, None] = {}
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    prefix = _prefix_of(_lines(text[:SAMPLE_BYTES]))
    times: list[float | None] | None = None
    if prefix is not None:
        total = len(lines)
        lines, times, n = _strip_prefix(lines, prefix, origins)
        notes.append(f"stripped the {prefix.name} prefix from {n} of {total} lines")
        if len(origins) > 1:
            notes.append(
                f"its lines come from {len(origins)} processes: "
                + "; ".join(o.describe() for o in list(origins)[:5])
                + ("; ..." if len(origins) > 5 else "")
            )
    odd = sum(len(_ODD_SPACE.findall(ln)) for ln in lines)
    if odd:
        lines = [_INVISIBLE.sub(b"", _SPACES.sub(b" ", ln)) if _ODD_SPACE.search(ln) else ln for ln in lines]
        notes.append(f"replaced {odd} non-breaking or other unicode spaces")
    indent = _common_indent(lines)
    if indent:
        lines = [ln[len(indent) :] for ln in lines]
        notes.append(f"removed the indentation of every line ({indent.decode()!r})")
    lines, n = _reindent(lines)
    if n:
        notes.append(f"indented {n} file lines that had lost their indentation")
    if times is not None:
        lines, gaps = _mark_gaps(lines, times)
        notes.extend(f"a new dump starts after {g:.0f} s without output in the log" for g in gaps)
    return Normalized(b"\n".join(lines) + b"\n", notes, list(origins))


def _origin(m: re.Match[bytes]) -> Origin | None:
    d = m.groupdict()
    pid, pod, host = d.get("pid"), d.get("pod"), d.get("host")
    if pid is None and pod is None:
        return None
    container = d.get("container")
    return Origin(
        pid=int(pid) if pid is not None else None,
        pod=pod.decode("utf-8", "replace") if pod is not None else None,
        container=container.decode("utf-8", "replace") if container is not None else None,
        host=host.decode("utf-8", "replace") if host is not None else None,
    )


def _strip_prefix(
    lines: list[bytes], prefix: Prefix, origins: dict[Origin, None]
) -> tuple[list[bytes], list[float | None], int]:
    out: list[bytes] = []
    times: list[float | None] = []
    n = 0
    partial: bytes | None = None  # a CRI `P` line or a docker line without its newline, to join
    docker = prefix.name == "docker json-file"
    for raw in lines:
        ln = raw.rstrip(b"\r")
        m = prefix.pattern.match(ln)
        ts: bytes | None = None
        if m is None:
            body, joined = ln, True
        elif docker:
            decoded, ts, joined = _docker(ln)
            if decoded is None:
                body, joined = ln, True
            else:
                body = decoded
                n += 1
        else:
            n += 1
            body, ts = m.group("rest") or b"", m.groupdict().get("ts")
            if "pid" in prefix.pattern.groupindex or "pod" in prefix.pattern.groupindex:
                o = _origin(m)
                if o is not None and o not in origins:
                    origins[o] = None
            joined = m.groupdict().get("tag") != b"P"
        if partial is not None:
            body = partial + body
            partial = None
        if not joined:
            partial = body
            continue
        for part in body.split(b"\n") if docker else (body,):
            out.append(part)
            times.append(_seconds(ts))
    if partial is not None:
        out.append(partial)
        times.append(None)
    return out, times, n


def _docker(line: bytes) -> tuple[bytes | None, bytes | None, bool]:
    """A json-file line -> (its log text without the newline, its time, whether it is whole)."""
    try:
        d = json.loads(line)
    except (ValueError, RecursionError):
        return None, None, True
    if not isinstance(d, dict) or not isinstance(d.get("log"), str):
        return None, None, True
    log: str = d["log"]
    t = d.get("time")
    ts = t.encode() if isinstance(t, str) else None
    if log.endswith("\n"):
        return log[:-1].encode("utf-8", "replace"), ts, True
    return log.encode("utf-8", "replace"), ts, False  # docker splits lines over 16 KiB


@functools.lru_cache(maxsize=64)
def _day(date: bytes) -> float:
    """Seconds at the start of an ISO date (`2026-12-03`): a log spans few days."""
    return dt.date.fromisoformat(date.decode()).toordinal() * 86400.0


def _seconds(ts: bytes | None) -> float | None:
    """Seconds since an arbitrary origin, enough to measure gaps between lines of one log."""
    if not ts:
        return None
    try:
        if ts[:1].isdigit():
            day = _day(ts[:10])
            hms, frac = ts[11:19], ts[19:]
        else:  # journald short: "Dec 03 07:00:00", short-precise: "Dec 03 07:00:00.123456"
            day = (_MONTHS.get(ts[:3], 0) * 31 + int(ts[4:6])) * 86400.0
            hms, frac = ts[7:15], ts[15:]
        secs = day + int(hms[:2]) * 3600 + int(hms[3:5]) * 60 + int(hms[6:8])
        if frac[:1] in (b".", b","):
            digits = re.match(rb"[.,](\d+)", frac)
            if digits:
                secs += float(b"0." + digits.group(1)[:9])
        return secs
    except ValueError:
        return None


def _common_indent(lines: list[bytes]) -> bytes:
    indent: bytes | None = None
    for ln in lines:
        if not ln.strip():
            continue
        lead = ln[: len(ln) - len(ln.lstrip(b" \t"))]
        if indent is None or not lead.startswith(indent):
            i = 0
            ref = indent if indent is not None else lead
            while i < min(len(ref), len(lead)) and ref[i] == lead[i]:
                i += 1
            indent = ref[:i]
        if not indent:
            return b""
    return indent or b""


def _reindent(lines: list[bytes]) -> tuple[list[bytes], int]:
    n = 0
    prev = b""
    for i, ln in enumerate(lines):
        if (
            ln[:1] not in (b" ", b"\t", b"")
            and prev[:1] not in (b" ", b"\t", b"")
            and (prev.rstrip(b"\r").endswith(b")") or prev.startswith(b"created by "))
            and _FILE_LINE.fullmatch(ln)
        ):
            lines[i] = ln = b"\t" + ln
            n += 1
        prev = ln
    return lines, n


def _mark_gaps(lines: list[bytes], times: list[float | None]) -> tuple[list[bytes], list[float]]:
    out: list[bytes] = []
    gaps: list[float] = []
    last: float | None = None
    for ln, t in zip(lines, times, strict=True):
        if t is not None:
            if last is not None and t - last >= GAP and _OPENS_DUMP.match(ln):
                if out and out[-1].strip():
                    out.append(b"")
                out.append(GAP_MARKER + f" ({t - last:.0f} s)".encode())
                gaps.append(t - last)
            last = t
        out.append(ln)
    return out, gaps


__all__ = ["GAP", "GAP_MARKER", "PREFIXES", "Normalized", "needed", "normalize", "normalize_full"]
