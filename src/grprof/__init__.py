"""grprof: find, explain and watch goroutine leaks in Go services.

    import grprof
    snaps = [grprof.load(p) for p in paths]
    for f in grprof.detect(snaps, grprof.Options(interval=30)).findings:
        print(f.verdict, f.confidence, f.category, f.site)

`grprof.detect` is the function; the package of the same name stays reachable by its
submodules (`from grprof.detect.signals import ...`).

The names below are loaded on first use (PEP 562): `import grprof` (which every
`grprof.x` import runs first, the command line's included) imports none of detection,
pydantic or YAML until a name that needs them is used.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from grprof.aggregate import Similarity, StackNode
    from grprof.detect.detector import Detection, Options, detect
    from grprof.detect.model import Evidence, Finding
    from grprof.detect.rules import RuleSet, load_rules
    from grprof.errors import GrprofError, ParseError, SourceError
    from grprof.loader import load, load_all
    from grprof.model import Ancestor, Frame, Goroutine, Group, Snapshot
    from grprof.sources import Source

# Each public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "Similarity": "grprof.aggregate",
    "StackNode": "grprof.aggregate",
    "Detection": "grprof.detect.detector",
    "Options": "grprof.detect.detector",
    "detect": "grprof.detect.detector",
    "Evidence": "grprof.detect.model",
    "Finding": "grprof.detect.model",
    "RuleSet": "grprof.detect.rules",
    "load_rules": "grprof.detect.rules",
    "GrprofError": "grprof.errors",
    "ParseError": "grprof.errors",
    "SourceError": "grprof.errors",
    "load": "grprof.loader",
    "load_all": "grprof.loader",
    "Ancestor": "grprof.model",
    "Frame": "grprof.model",
    "Goroutine": "grprof.model",
    "Group": "grprof.model",
    "Snapshot": "grprof.model",
    "Source": "grprof.sources",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:  # a submodule (`from grprof import schema`) is imported by the caller
        raise AttributeError(f"module 'grprof' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Root(types.ModuleType):
    """The root package's module type: importing the subpackage `grprof.detect` does not
    rebind `grprof.detect`, which stays the function (loaded by `__getattr__` on first use)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "detect" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Root

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
