"""Which Go version wrote a dump: from GOROOT paths when they name it, else from the line
numbers of its runtime frames (`grprof/data/go_lines.yaml`), else from format features."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from grprof import _cache
from grprof.model import Frame
from grprof.table import GoroutineTable

# GOROOTs that carry the version: toolchain modules (golang.org/toolchain@v0.0.1-go1.22.12...),
# Debian (/usr/lib/go-1.19), goenv/gimme/sdk dirs (go1.21.3, sdk/go1.22.0), Homebrew (Cellar/go/1.22.0).
_GOROOT = re.compile(
    r"toolchain@v0\.0\.1-go(1\.\d+(?:\.\d+)?)|/go-(1\.\d+(?:\.\d+)?)/src/|"
    r"/go(1\.\d+(?:\.\d+)?)/src/|/Cellar/go/(1\.\d+(?:\.\d+)?)/"
)
_STDLIB_DIRS = ("/src/runtime/", "/src/net/", "/src/sync/", "/src/internal/", "/src/time/", "/src/os/")
_MINOR = re.compile(r"(?:>=)?1\.(\d+)(?:\.\d+)?")
# Header features: (text, the first Go minor that prints it).
_FEATURES = (
    (b"] {", 27),  # labels after the brackets
    (b"(leaked)", 26),
    (b" labels:{", 26),
    (b"synctest bubble", 25),
    (b"(durable)", 25),
    (b"synctest group", 24),
    (b"[sync.Mutex.Lock", 20),  # wait reasons of Go 1.20; 1.19 printed "semacquire"
    (b"[sync.RWMutex.", 20),
)


def version_from_paths(files: Iterable[str]) -> str | None:
    for f in set(files):
        v = _path_version(f)
        if v:
            return v
    return None


@functools.lru_cache(maxsize=16384)
def _path_version(f: str) -> str | None:
    """The Go version a standard library file's GOROOT names, if it does. Cached: a daemon
    reads the same few hundred paths in every profile of every service it scrapes."""
    if "/src/" in f and any(d in f for d in _STDLIB_DIRS):
        m = _GOROOT.search(f)
        if m:
            return next(g for g in m.groups() if g)
    return None


class LineTable:
    """Where functions lie in the source of each Go minor version (go_lines.yaml)."""

    def __init__(self, doc: Any) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("frames"), dict):
            raise ValueError("go_lines.yaml: expected a mapping with a 'frames' mapping")
        minors = doc.get("minors")
        if not isinstance(minors, list) or not minors or not all(isinstance(m, int) for m in minors):
            raise ValueError("go_lines.yaml: 'minors' must list the Go minor versions the table covers")
        self.minors = frozenset(minors)
        self.newest = max(minors)
        self.spans: dict[tuple[str, str], tuple[tuple[int, int, int], ...]] = {}
        for key, per in doc["frames"].items():
            function, _, file = str(key).rpartition(" ")
            if not function or not isinstance(per, dict):
                raise ValueError(
                    f"go_lines.yaml: {key!r}: expected 'FUNCTION FILE': {{MINOR: [FIRST, LAST]}}"
                )
            spans = []
            for minor, span in per.items():
                if (
                    minor not in self.minors
                    or not isinstance(span, list)
                    or len(span) != 2
                    or not all(isinstance(x, int) for x in span)
                ):
                    raise ValueError(
                        f"go_lines.yaml: {key!r}: {minor!r}: expected a covered minor: [FIRST, LAST]"
                    )
                spans.append((minor, span[0], span[1]))
            self.spans[function, file] = tuple(spans)

    def candidates(self, frames: Iterable[Frame]) -> frozenset[int] | None:
        """The minors whose source holds every frame the table knows; None if it knows none.

        A frame the table knows whose line lies in no known version's body (a release the
        table has not seen) says nothing.
        """
        out: frozenset[int] | None = None
        for f in frames:
            src = f.file.rfind("/src/")
            if src < 0:
                continue
            spans = self.spans.get((f.function, f.file[src + 5 :]))
            if spans is None:
                continue
            ms = frozenset(m for m, first, last in spans if first <= f.line <= last)
            if ms:
                out = ms if out is None else out & ms
        return out


@functools.cache
def line_table() -> LineTable:
    """data/go_lines.yaml, read once and then from the user's cache (grprof._cache)."""
    return _cache.shipped("go_lines.yaml", LineTable, _parse_shipped)


def _parse_shipped(text: str) -> LineTable:
    import yaml

    return LineTable(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def _floor(hdr: bytes, has_creator: bool) -> int | None:
    for text, minor in _FEATURES:
        if text in hdr:
            return minor
    return 21 if has_creator else None  # `created by F in goroutine N`


def infer_go_version(
    source: GoroutineTable | Iterable[Sequence[Frame]], header_texts: list[bytes] | None = None
) -> str | None:
    """`1.22.12` when a path names it, `1.19` when the runtime's line numbers do, else a lower
    bound such as `>=1.21`, else None.

    `source` is a dump's table, or the distinct stacks of a profile (debug=0, debug=1).
    """
    ceiling = None
    if isinstance(source, GoroutineTable):
        # The stacks its rows use: the dumps of one file share one list of stacks.
        used = [source.stacks[i] for i in set(source.stack)]
        stacks: list[Sequence[Frame]] = [s.frames for s in used]
        created = [(s.created_by,) for s in used if s.created_by]
        stacks += created
        has_creator = max(source.creator, default=-1) >= 0
        if created and not has_creator:
            ceiling = 20  # `created by F` without ` in goroutine N`: before Go 1.21
    else:
        stacks = list(source)
        has_creator = False
    # Parsers share equal frames as one object: by identity, without hashing each frame (and
    # in C loops: 20,000 distinct stacks hold some 170,000 frames).
    every = list(itertools.chain.from_iterable(stacks))
    frames = list(dict(zip(map(id, every), every, strict=True)).values())
    v = version_from_paths(f.file for f in frames)
    if v:
        return v
    floor = _floor(b"\n".join(header_texts or []), has_creator)
    table = line_table()
    cands = table.candidates(frames)
    if cands is not None:
        cands = frozenset(
            m for m in cands if (floor is None or m >= floor) and (ceiling is None or m <= ceiling)
        )
    if cands:
        # The newest minor the table knows may stand for later ones with the same lines.
        if len(cands) == 1 and table.newest not in cands:
            return f"1.{min(cands)}"
        floor = max(floor or 0, min(cands))
    return f">=1.{floor}" if floor else None


def version_minor(version: str | None) -> int | None:
    """The minor version when `version` names one exactly ("1.19.8", "1.19" -> 19), else None."""
    if not version or version.startswith(">="):
        return None
    m = _MINOR.fullmatch(version)
    return int(m[1]) if m else None
