"""grprof: find, explain and watch goroutine leaks in Go services."""

from __future__ import annotations

from grprof.aggregate import Similarity, StackNode
from grprof.errors import GrprofError, ParseError, SourceError
from grprof.loader import load, load_all
from grprof.model import Ancestor, Frame, Goroutine, Group, Snapshot
from grprof.sources import Source

__version__ = "0.1.0"

__all__ = [
    "Ancestor",
    "Frame",
    "Goroutine",
    "Group",
    "GrprofError",
    "ParseError",
    "Similarity",
    "Snapshot",
    "Source",
    "SourceError",
    "StackNode",
    "load",
    "load_all",
]
