"""Split targets among `grprof serve` replicas: `--shard I/N`.

A replica owns a target when `shard_of(url, N) == I`, where

    shard_of(url, N) = uint64_big_endian(md5(url.encode("utf-8"))[8:16]) % N

This is exactly Prometheus' `hashmod` relabel action applied to the target's base
URL (Prometheus also takes the last 8 bytes of the MD5 sum, big-endian). It is the
same in every process, run and machine (never Python's salted `hash()`), so
replicas started with `0/N` … `N-1/N` and the same target list agree on who
scrapes what without talking to each other.
"""

from __future__ import annotations

import hashlib
import re

_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """`"0/2"` -> `(0, 2)`; ValueError saying what is wrong otherwise."""
    m = _SHARD_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"shard {text!r}: expected I/N, e.g. 0/2 (this replica's index / replica count)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1:
        raise ValueError(f"shard {text!r}: the replica count N must be at least 1")
    if index >= count:
        raise ValueError(f"shard {text!r}: the index must be in 0..{count - 1} (it counts from 0)")
    return index, count


def shard_of(url: str, count: int) -> int:
    """Which of `count` shards owns `url` (Prometheus `hashmod`)."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    digest = hashlib.md5(url.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:16], "big") % count


def owns(url: str, shard: tuple[int, int] | None) -> bool:
    """Whether this replica scrapes `url`; no shard means it owns everything."""
    if shard is None:
        return True
    index, count = shard
    return shard_of(url, count) == index
