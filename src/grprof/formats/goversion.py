"""Which Go version wrote a dump: from GOROOT paths when they name it, else from features."""

from __future__ import annotations

import re

from grprof.table import GoroutineTable

# GOROOTs that carry the version: toolchain modules (golang.org/toolchain@v0.0.1-go1.22.12...),
# Debian (/usr/lib/go-1.19), goenv/gimme/sdk dirs (go1.21.3, sdk/go1.22.0), Homebrew (Cellar/go/1.22.0).
_GOROOT = re.compile(
    r"toolchain@v0\.0\.1-go(1\.\d+(?:\.\d+)?)|/go-(1\.\d+(?:\.\d+)?)/src/|"
    r"/go(1\.\d+(?:\.\d+)?)/src/|/Cellar/go/(1\.\d+(?:\.\d+)?)/"
)
_STDLIB_DIRS = ("/src/runtime/", "/src/net/", "/src/sync/", "/src/internal/", "/src/time/", "/src/os/")


def version_from_paths(files: list[str]) -> str | None:
    for f in files:
        if any(d in f for d in _STDLIB_DIRS):
            m = _GOROOT.search(f)
            if m:
                return next(g for g in m.groups() if g)
    return None


def infer_go_version(t: GoroutineTable, header_texts: list[bytes] | None = None) -> str | None:
    """`1.22.12` when a path names it, else a lower bound such as `>=1.21`, else None."""
    files = [f.file for s in t.stacks for f in s.frames]
    files += [s.created_by.file for s in t.stacks if s.created_by]
    v = version_from_paths(files)
    if v:
        return v
    hdr = b"\n".join(header_texts or [])
    floor = None
    if b"] {" in hdr:
        floor = "1.27"
    elif b"(leaked)" in hdr or b" labels:{" in hdr:
        floor = "1.26"
    elif b"synctest bubble" in hdr or b"(durable)" in hdr:
        floor = "1.25"
    elif b"synctest group" in hdr:
        floor = "1.24"
    if floor is None and any(c >= 0 for c in t.creator[:1000]):
        floor = "1.21"  # `created by F in goroutine N`
    return f">={floor}" if floor else None
