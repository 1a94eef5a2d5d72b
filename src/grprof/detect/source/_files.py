"""Path mapping and parsing for the source check: which file under the source dir holds a
frame's code (`resolve_file`), and that file parsed with tree-sitter-go, cached by path,
modification time and size."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grprof.frames import FuncName
from grprof.model import Frame

if TYPE_CHECKING:
    from tree_sitter import Language, Node

# Generated or vendored monsters are not worth parsing for a snippet.
MAX_FILE_SIZE = 8 << 20
# A source tree walked to map a path (only when no direct suffix matches) stops here.
MAX_WALK_FILES = 200_000
# Type arguments in Go source text (`Map[K, V]`); function names are parsed by `FuncName`.
_GENERIC_ARGS = re.compile(r"\[[^\]]*\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SKIP_DIRS = frozenset({"node_modules", "testdata"})
_CLEAR_SUFFIX = 2
"""Path components a candidate file must share with the frame's path (file and its directory)
to be taken without other evidence: `handler.go` alone names too many files."""


def resolve_file(source_dir: Path, frame: Frame) -> Path | None:
    """The file under `source_dir` that holds `frame`'s code, or None.

    The frame's path is the build machine's (`/build/app/internal/api/h.go`, `C:\\src\\...`,
    a module cache path, or a `-trimpath` import path): the longest path suffix that exists
    under `source_dir` wins, with go.mod's module path and a `vendor/` directory as hints, and
    a file that declares the frame's function preferred over one that does not.
    """
    # The standard library is not the service's code, even where a file of the same name is.
    if not frame.file.endswith(".go") or frame.is_stdlib:
        return None
    try:
        found = _resolve_cached(str(Path(source_dir).resolve()), frame.file, frame.function)
    except (OSError, ValueError, RuntimeError):
        return None
    return None if found is None else Path(found)


# ---------------------------------------------------------------------------------------------
# Path mapping


@functools.lru_cache(maxsize=4096)
def _resolve_cached(root: str, file: str, function: str) -> str | None:
    base = Path(root)
    parts = _path_parts(file)
    if not parts:
        return None
    frame = Frame(function, file, 0)
    candidates = _direct_candidates(base, parts, frame)
    best = _best(base, candidates, parts, frame, require_evidence=False)
    if best is None:
        # Source dir above or beside the module root: look for the file anywhere below it.
        walked = [base / rel for rel in _go_files(root).get(parts[-1], ())]
        best = _best(base, walked, parts, frame, require_evidence=True)
    return None if best is None else str(best)


def _path_parts(file: str) -> list[str]:
    """Path components of a frame's file; `..` is dropped so nothing maps outside the dir."""
    path = _DRIVE.sub("", file.replace("\\", "/"))
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    # Module cache: .../github.com/x/y@v1.2.3/z.go is github.com/x/y/z.go in vendor/.
    return [p.split("@", 1)[0] if "@" in p else p for p in parts]


def _direct_candidates(base: Path, parts: Sequence[str], frame: Frame) -> list[Path]:
    out = [base.joinpath(*parts[i:]) for i in range(len(parts))]
    pkg = frame.package
    module = _module_path(str(base))
    if module and (pkg == module or pkg.startswith(module + "/")):
        out.append(base.joinpath(*pkg[len(module) :].split("/"), parts[-1]))
    if "." in pkg.split("/", 1)[0]:
        out.append(base.joinpath("vendor", *pkg.split("/"), parts[-1]))
    return out


def _best(
    base: Path, candidates: Sequence[Path], parts: Sequence[str], frame: Frame, *, require_evidence: bool
) -> Path | None:
    """The candidate that matches the most trailing path components (declaring the function first).

    A match on the file name alone must not contradict the frame: the file declares the
    function, or (direct candidates, right under the source dir) its name cannot be checked.
    """
    name = frame.func_name
    scored: list[tuple[int, int, str]] = []
    for cand in dict.fromkeys(candidates):
        if not cand.is_file():
            continue
        try:
            rel = cand.relative_to(base).parts
        except ValueError:
            continue
        suffix = _common_suffix(rel, parts)
        declares = _declares(cand, name)
        if declares is False and suffix < _CLEAR_SUFFIX:
            continue
        if require_evidence and suffix < _CLEAR_SUFFIX and declares is not True:
            continue
        scored.append((1 if declares else 0, suffix, str(cand)))
    if not scored:
        return None
    scored.sort(reverse=True)
    return Path(scored[0][2])


def _common_suffix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


@functools.lru_cache(maxsize=64)
def _module_path(root: str) -> str | None:
    try:
        text = Path(root, "go.mod").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^\s*module\s+\"?([^\s\"]+)", text, re.M)
    return m.group(1) if m else None


@functools.lru_cache(maxsize=8)
def _go_files(root: str) -> dict[str, tuple[str, ...]]:
    """Go files under root by base name (relative paths), skipping hidden and test-data dirs."""
    found: dict[str, list[str]] = {}
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")) and d not in _SKIP_DIRS)
        for f in filenames:
            if f.endswith(".go"):
                found.setdefault(f, []).append(os.path.relpath(os.path.join(dirpath, f), root))
                count += 1
        if count >= MAX_WALK_FILES:
            break
    return {k: tuple(v) for k, v in found.items()}


def _declares(path: Path, name: FuncName) -> bool | None:
    """Whether the file declares the function; None when the name cannot be checked."""
    if name.name is None or not name.name.isidentifier():
        return None
    fn = re.escape(name.name).encode()
    if name.receiver:
        recv = re.escape(name.receiver).encode()
        pat = rb"^func\s*\([^)]*\b" + recv + rb"\b[^)]*\)\s*" + fn + rb"\s*[\[(]"
    else:
        pat = rb"^func\s+" + fn + rb"\s*[\[(]"
    src = _load(path)
    return None if src is None else re.search(pat, src.data, re.M) is not None


# ---------------------------------------------------------------------------------------------
# Reading and parsing (cached: a detector asks about many groups in the same files)


@dataclass(frozen=True, slots=True)
class _GoFile:
    path: Path
    rel: str
    """Relative to the source dir asked about (the cache holds files with rel empty)."""
    data: bytes
    lines: tuple[bytes, ...]
    root: Node


@functools.lru_cache(maxsize=1)
def _language() -> Language | None:
    try:
        import tree_sitter
        import tree_sitter_go
    except ImportError:
        return None
    return tree_sitter.Language(tree_sitter_go.language())


def _load(path: Path) -> _GoFile | None:
    """The parsed file, from the cache while its mtime and size are unchanged."""
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_size > MAX_FILE_SIZE:
        return None
    return _parse_file(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=128)
def _parse_file(path: str, mtime_ns: int, size: int) -> _GoFile | None:
    lang = _language()
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if lang is None:
        return None
    import tree_sitter

    # A parser per parse: parsers are not shareable across threads, and creating one is cheap.
    root = tree_sitter.Parser(lang).parse(data).root_node
    lines = tuple(ln.rstrip(b"\r") for ln in data.removesuffix(b"\n").split(b"\n"))
    return _GoFile(Path(path), "", data, lines, root)


def _open(root: Path, frame: Frame) -> _GoFile | None:
    path = resolve_file(root, frame)
    src = None if path is None else _load(path)
    if path is None or src is None:
        return None
    return dataclasses.replace(src, rel=_rel(root, path))


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except (OSError, ValueError, RuntimeError):
        return path.as_posix()


def _package_files(root: Path, frame: Frame) -> list[_GoFile]:
    """The Go files (tests excluded) of the package that holds `frame`: its file's directory."""
    path = resolve_file(root, frame)
    if path is None:
        return []
    out: list[_GoFile] = []
    for sibling in sorted(path.parent.glob("*.go")):
        src = None if sibling.name.endswith("_test.go") else _load(sibling)
        if src is not None:
            out.append(dataclasses.replace(src, rel=_rel(root, sibling)))
    return out
