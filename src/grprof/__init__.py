"""grprof: find, explain and watch goroutine leaks in Go services."""

from __future__ import annotations

from grprof.aggregate import Similarity, StackNode
from grprof.errors import GrprofError, ParseError, SourceError
from grprof.model import Ancestor, Frame, Goroutine, Group, Snapshot
from grprof.sources import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, Source, open_source

__version__ = "0.1.0"

__all__ = [
    "Ancestor",
    "Frame",
    "Goroutine",
    "GrprofError",
    "Group",
    "ParseError",
    "Similarity",
    "Snapshot",
    "SourceError",
    "StackNode",
    "load",
    "load_all",
]


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
    from grprof.formats import parse_chunks

    inp = open_source(source, name=name, max_size=max_size, timeout=timeout)
    snaps = parse_chunks(inp.chunks(), inp.name)
    if inp.mtime is not None:
        import datetime as dt

        for s in snaps:
            s.mtime = dt.datetime.fromtimestamp(inp.mtime, dt.timezone.utc)
    return snaps


def load(
    source: Source,
    *,
    name: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> Snapshot:
    """Read one goroutine dump or profile; when `source` holds several dumps, the first."""
    return load_all(source, name=name, max_size=max_size, timeout=timeout)[0]
