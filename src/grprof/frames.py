"""Frames and goroutines: what every other module of the core is built of.

The bottom layer (docs/architecture.md): it imports nothing of grprof. A `Frame` is one call
site, a `Goroutine` one goroutine of a per-goroutine dump, and `site_of` the one definition of
a stack's "site" that the reports, the API, /metrics and detection share. `FuncName` is the
one parser of a Go function name (package, receiver, function, closure suffixes, type
arguments): every other module asks it rather than running its own regex over names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Package path prefixes of the Go runtime itself.
_RUNTIME_PREFIXES = ("runtime.", "runtime/", "internal/", "sync.runtime_", "sync/atomic.")
# Top-level directories of the standard library (GOROOT/src): a blocked goroutine's stack ends
# in them (sync.(*Mutex).Lock, os.(*File).Read), but the line to read is the caller's.
_STDLIB = frozenset(
    (
        "archive bufio builtin bytes cmp compress container context crypto database debug embed "
        "encoding errors expvar flag fmt go hash html image index internal io iter log maps math "
        "mime net os path plugin reflect regexp runtime slices sort strconv strings structs sync "
        "syscall testing text time unicode unique unsafe vendor weak"
    ).split()
)


# Closure and wrapper numbering the compiler assigns in order of appearance
# (main.main.func15.1, runtime.gcenable.gowrap1, main.seq.1): it shifts when code moves.
_NUMBERING = re.compile(r"\.(func|gowrap)\d+|\.\d+(?=\.|$)")
# A closure or go-statement wrapper at the end of a name: `.func1`, `.func1.2`, `.gowrap3`.
_CLOSURE_SUFFIX = re.compile(r"\.(?:func\d+|gowrap\d+)(?:\.\d+)*$")
# One part of a closure suffix, and a type-argument list (`[...]`, `[go.shape.int]`).
_CLOSURE_PART = re.compile(r"func\d+|gowrap\d+|\d+")
_TYPE_ARGS = re.compile(r"\[[^\]]*\]")
FUNC_NAME_CACHE = 16384
"""Distinct function names parsed and kept (`FuncName.of`): a service's stacks name a few
thousand; the bound keeps a daemon scraping many services (or hostile input) from growing."""


class _RuntimeNames(dict[str, bool]):
    """Function name -> whether it is the Go runtime's or one of its internal packages'
    (`Frame.is_runtime`), computed on first lookup. Loops over every frame of every group
    subscript it directly: a C-level lookup where the property is a Python call."""

    __slots__ = ()

    def __missing__(self, name: str) -> bool:
        if len(self) >= FUNC_NAME_CACHE:
            self.clear()
        runtime = self[name] = name.startswith(_RUNTIME_PREFIXES)
        return runtime


RUNTIME_NAMES = _RuntimeNames()


@dataclass(frozen=True, slots=True)
class FuncName:
    """A Go function name as the runtime prints it, parsed once (`FuncName.of`).

    `main.(*Server).handle.func2.1` is package `main`, receiver `Server`, name `handle`,
    closures `("func2", "1")`; `pkg.Map[...].Get` has `generic` set; `pkg.glob..func1` (a
    package-level closure) has no name.
    """

    full: str
    package: str
    """Import path (`net/http`, `example.com/x/v2`): up to the first dot after the last slash."""
    receiver: str | None
    """The method's receiver type without `(*` `)` or type arguments (`Server`), or None."""
    name: str | None
    """The declared function or method the code is in (`handle`); None when the name has none
    (`pkg.glob..func1`, an empty name)."""
    closures: tuple[str, ...]
    """The closure or go-wrapper suffix's parts, outermost first (`("func2", "1")`), or ()."""
    generic: bool
    """The name has type arguments (`[...]`)."""
    loose: str
    """The name without closure numbering: `main.main.func15.1` -> `main.main.func.N`."""
    outer: str | None
    """For a closure or go-statement wrapper, the function that encloses it
    (`main.handler.func1` -> `main.handler`); None otherwise."""
    stdlib: bool
    """The package is in the Go standard library, the runtime included (`Frame.is_stdlib`,
    read for every frame a site search passes: kept here, computed once per name)."""

    @property
    def is_closure(self) -> bool:
        """A closure or go-statement wrapper (`.func1`, `.gowrap2`, `.func1.2`)."""
        return bool(self.closures)

    @staticmethod
    def of(name: str) -> FuncName:
        """The parsed name, from a bounded cache (stacks repeat the same names)."""
        return _parse_func_name(name)


@functools.lru_cache(maxsize=FUNC_NAME_CACHE)
def _parse_func_name(full: str) -> FuncName:
    slash = full.rfind("/")
    dot = full.find(".", slash + 1)
    package = full if dot < 0 else full[:dot]
    suffix = _CLOSURE_SUFFIX.search(full)
    closures = tuple(suffix.group()[1:].split(".")) if suffix else ()
    enclosing = _CLOSURE_SUFFIX.search(full, 1)
    outer = full[: enclosing.start()] if enclosing else None
    loose = _NUMBERING.sub(lambda m: f".{m.group(1)}" if m.group(1) else ".N", full)
    generic = "[" in full
    rest = (
        _TYPE_ARGS.sub("", full[len(package) :].lstrip(".")) if generic else full[len(package) :].lstrip(".")
    )
    parts = rest.split(".")
    receiver: str | None = None
    name: str | None
    if parts[0].startswith("("):
        name, receiver = (parts[1] if len(parts) > 1 and parts[1] else None), parts[0].strip("()*")
    elif not parts[0] or parts[0] == "glob":
        name = None
    elif len(parts) > 1 and parts[1] and not _CLOSURE_PART.fullmatch(parts[1]):
        name, receiver = parts[1], parts[0]
    else:
        name = parts[0]
    head = package.split("/", 1)[0]
    stdlib = head in _STDLIB and "." not in head
    return FuncName(full, package, receiver, name, closures, generic, loose, outer, stdlib)


@dataclass(frozen=True, slots=True)
class Frame:
    """One call site: `function` is fully qualified (`main.(*T).M`, `pkg.F[...]`)."""

    function: str
    file: str
    line: int

    @property
    def package(self) -> str:
        """Import path of the function's package (`net/http`, `example.com/x/v2`)."""
        return _parse_func_name(self.function).package

    @property
    def func_name(self) -> FuncName:
        """The function's name, parsed (`FuncName`)."""
        return _parse_func_name(self.function)

    @property
    def is_runtime(self) -> bool:
        """True for frames of the Go runtime and its internal packages."""
        return RUNTIME_NAMES[self.function]

    @property
    def is_stdlib(self) -> bool:
        """True for frames of the Go standard library, the runtime included."""
        return _parse_func_name(self.function).stdlib

    @property
    def is_dependency(self) -> bool:
        """True for code from another module: the module cache (`/pkg/mod/`, `x@v1.2.3/`) or `vendor/`."""
        f = self.file
        return "/pkg/mod/" in f or "/vendor/" in f or ("@v" in f and not self.is_stdlib)

    @property
    def is_user(self) -> bool:
        """True for the service's own code: neither the standard library nor a dependency."""
        return not self.is_stdlib and not self.is_dependency

    def to_json(self) -> dict[str, object]:
        return {"function": self.function, "file": self.file, "line": self.line}

    def __str__(self) -> str:
        return f"{self.function} {self.file}:{self.line}"


def site_of(frames: Sequence[Frame]) -> Frame | None:
    """A stack's "site": the innermost frame outside the Go runtime and standard library.

    Stacks that never leave the standard library (net/http's connection goroutines) get their
    innermost frame outside the runtime; a stack of runtime frames only, its innermost frame.
    """
    for f in frames:
        if not f.is_stdlib:
            return f
    for f in frames:
        if not f.is_runtime:
            return f
    return frames[0] if frames else None


@dataclass(frozen=True, slots=True)
class Ancestor:
    """A `[originating from goroutine N]:` section (GODEBUG=tracebackancestors=N)."""

    id: int
    frames: tuple[Frame, ...]
    frames_elided: bool = False
    created_by: Frame | None = None
    creator_id: int | None = None


@dataclass(frozen=True, slots=True)
class Goroutine:
    """One goroutine of a debug=2 dump or traceback."""

    id: int
    state: str
    """Status or wait reason without modifiers: `chan receive`, `running`, `select (no cases)`."""
    wait_minutes: int = 0
    locked_to_thread: bool = False
    leaked: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    frames: tuple[Frame, ...] = ()
    """Innermost first."""
    frames_elided: bool = False
    created_by: Frame | None = None
    creator_id: int | None = None
    ancestors: tuple[Ancestor, ...] = ()
    partial: bool = False
    """The dump was cut inside this goroutine's stack (only ever the last one)."""
    flags: tuple[str, ...] = ()
    """Other header modifiers, verbatim: `scan`, `durable`, `synctest bubble 1`."""

    @property
    def site(self) -> Frame | None:
        return site_of(self.frames)
