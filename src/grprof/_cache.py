"""The user's cache of validated shipped data files (start-up time, issue 9).

    rules = shipped("rules.yaml", RuleSource, _validate)

Reading a file of `grprof/data/` means YAML and pydantic: tens of milliseconds that every
`grprof analyze` would pay for the same files. `shipped` keeps the validated result as a
pickle in `$GRPROF_CACHE_DIR`, else `$XDG_CACHE_HOME/grprof`, else `~/.cache/grprof`; an
empty `GRPROF_CACHE_DIR=` turns it off. An entry is keyed by the Python version, the mtime
and size of the data file, and those of every module of grprof (a pickle names classes of
several modules, and a source checkout changes them without a new version: one stat per
module, about a millisecond, once per process). A cache that
is missing, unreadable, corrupt, of another type or unwritable is ignored: the file is
validated as without a cache, so the cache never changes a result. User files (`--rules`,
`--owners`, ...) never go through it: they are validated every time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PACKAGE = Path(__file__).resolve().parent
DATA = PACKAGE / "data"


def cache_dir() -> Path | None:
    """Where entries go, or None when `GRPROF_CACHE_DIR` is set empty (no cache)."""
    env = os.environ.get("GRPROF_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grprof"


def _stamp(path: str | Path) -> str:
    st = os.stat(path)
    return f"{st.st_mtime_ns}-{st.st_size}"


@functools.cache
def code_stamp() -> str:
    """A digest of the mtime and size of every module of grprof (an upgrade or an edit of any
    class a pickle names changes it)."""
    h = hashlib.blake2b(digest_size=8)
    for folder, dirs, files in sorted(os.walk(PACKAGE)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".py", ".so", ".pyd")):
                h.update(f"{folder}/{f}:{_stamp(os.path.join(folder, f))}\n".encode())
    return h.hexdigest()


def shipped(name: str, kind: type[T], build: Callable[[str], T]) -> T:
    """`build(text)` of `grprof/data/NAME`, from the cache when an entry is valid for it;
    `kind` is the type the entry must have."""
    path = DATA / name
    folder = cache_dir()
    entry: Path | None = None
    if folder is not None:
        try:
            v = sys.version_info
            key = f"py{v.major}{v.minor}-{code_stamp()}-{_stamp(path)}"
            entry = folder / f"{name}.{key}.pickle"
            with open(entry, "rb") as f:
                value = pickle.load(f)
            if isinstance(value, kind):
                return value
        except Exception:  # missing, unreadable or corrupt: validate as without a cache
            pass
    value = build(path.read_text(encoding="utf-8"))
    if entry is not None:
        _store(entry, value)
    return value


def _store(entry: Path, value: object) -> None:
    """Write `entry` atomically (a reader sees the old file, none, or the whole new one); drop
    the file's older entries. Failures are ignored: the next run validates again."""
    import tempfile

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
        stem = entry.name.split(".", 2)[:2]  # "rules.yaml"
        for old in entry.parent.glob(".".join(stem) + ".*.pickle"):
            if old != entry:
                old.unlink(missing_ok=True)
    except Exception:
        pass
