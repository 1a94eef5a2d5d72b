"""Sizes and durations as people write them: `512MiB`, `2G`, `15s`, `1m30s`, `200ms`; times as
every JSON output writes them (`iso_utc`)."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def human_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """`512MiB`, `1G`, `100k`, `65536` -> bytes."""
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(t[-1:], 1)
    num = t[:-1] if mult != 1 else t
    try:
        value = float(num) * mult
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 512MiB, 2GiB)") from None
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return int(value)


def parse_duration(text: str) -> float:
    """Go-style durations (`15s`, `1m30s`, `200ms`, `2h`) or plain seconds (`30`, `0.5`) -> seconds."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(t):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _SECONDS[m.group(2)]
            pos = m.end()
        if pos != len(t) or not t:
            raise ValueError(f"not a duration: {text!r} (use e.g. 15s, 1m30s, 200ms)") from None
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value


def human_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    if seconds < 7200:
        return f"{seconds / 60:.3g}m"
    return f"{seconds / 3600:.3g}h"


def iso_utc(t: dt.datetime | None, timespec: str = "auto") -> str | None:
    """`2026-12-04T17:26:23.5Z`: UTC with a `Z`, the one form of time in grprof's JSON.
    A naive datetime is taken as UTC (the parsers and the store make aware ones)."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
