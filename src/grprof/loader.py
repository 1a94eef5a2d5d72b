"""`load` and `load_all`: any source in, snapshots out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from grprof.formats import parse_chunks
from grprof.model import Snapshot
from grprof.sources import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, Input, Source, open_source


def read_input(inp: Input, chunks: Iterable[bytes] | None = None) -> list[Snapshot]:
    """Parse an opened input (optionally through a wrapper of its chunks, e.g. a progress bar)."""
    snaps = parse_chunks(inp.chunks() if chunks is None else chunks, inp.name)
    if inp.mtime is not None:
        mtime = dt.datetime.fromtimestamp(inp.mtime, dt.UTC)
        for s in snaps:
            s.mtime = mtime
    return snaps


def load_all(
    source: Source,
    *,
    name: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Snapshot]:
    """Read every dump in `source`, in order (a log can hold several).

    `source` is a path, `-` for stdin, an http(s) URL, bytes, or a binary file object;
    gzip is undone transparently, up to `max_size` decompressed bytes.
    """
    return read_input(open_source(source, name=name, max_size=max_size, timeout=timeout))


def load(
    source: Source,
    *,
    name: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> Snapshot:
    """Read one goroutine dump or profile; when `source` holds several dumps, the first."""
    return load_all(source, name=name, max_size=max_size, timeout=timeout)[0]
