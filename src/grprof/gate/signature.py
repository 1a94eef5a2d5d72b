"""Leak signatures that stay the same across runs, machines, Go versions and profile formats.

A signature is built from the function names of the stack outside the Go runtime (innermost
first, up to the detector's `KEY_FRAMES`; unlike its track key, the standard-library frames
inside the site are kept: baselines written by earlier versions keep matching)
with closure and go-wrapper numbering removed (`grprof.frames.FuncName.loose`: `.func1`
becomes `.func`, `.gowrap2` `.gowrap`), and the goroutine's wait state without its modifiers
(`chan receive (nil chan)` -> `chan receive`). No line numbers, file paths, goroutine ids,
wait times or `created by` (debug=0 and debug=1 profiles have none), so the debug=0 profile of
one run, the debug=2 dump of another and a service's live profile give one signature.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from grprof.detect.series import KEY_FRAMES
from grprof.frames import Frame, FuncName

_MODIFIERS = re.compile(r"\s*\(.*\)\s*$")
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Signature:
    id: str
    """16 hex digits: the digest of `text`."""
    text: str
    """`state | f1 <- f2 <- ...`: readable, and what `id` digests."""


def normal_state(state: str) -> str:
    """`chan receive (nil chan)` -> `chan receive`; lower case, single spaces."""
    return _WS.sub(" ", _MODIFIERS.sub("", state)).strip().lower() or "unknown"


def functions(frames: Sequence[Frame]) -> list[str]:
    """The loose function names of the key frames: outside the runtime, innermost first."""
    names = [f.function for f in frames if not f.is_runtime]
    if not names:  # a runtime-only stack: its own names
        names = [f.function for f in frames]
    return [FuncName.of(n).loose for n in names[:KEY_FRAMES]]


def signature(frames: Sequence[Frame], state: str) -> Signature:
    text = f"{normal_state(state)} | " + " <- ".join(functions(frames))
    return Signature(hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), text)
