"""grprof: find, explain and watch goroutine leaks in Go services.

    import grprof
    snaps = [grprof.load(p) for p in paths]
    for f in grprof.detect(snaps, grprof.Options(interval=30)).findings:
        print(f.verdict, f.confidence, f.category, f.site)

`grprof.detect` is the function; the package of the same name stays reachable by its
submodules (`from grprof.detect.signals import ...`).
"""

from __future__ import annotations

__version__ = "0.1.0"

from grprof.aggregate import Similarity, StackNode
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Evidence, Finding
from grprof.detect.rules import RuleSet, load_rules
from grprof.errors import GrprofError, ParseError, SourceError
from grprof.loader import load, load_all
from grprof.model import Ancestor, Frame, Goroutine, Group, Snapshot
from grprof.sources import Source

__all__ = [
    "Ancestor",
    "Detection",
    "Evidence",
    "Finding",
    "Frame",
    "Goroutine",
    "Group",
    "GrprofError",
    "Options",
    "ParseError",
    "RuleSet",
    "Similarity",
    "Snapshot",
    "Source",
    "SourceError",
    "StackNode",
    "detect",
    "load",
    "load_all",
    "load_rules",
]
