"""Frames and goroutines: what every other module of the core is built of.

The bottom layer (docs/architecture.md): it imports nothing of grprof. A `Frame` is one call
site, a `Goroutine` one goroutine of a per-goroutine dump, and `site_of` the one definition of
a stack's "site" that the reports, the API, /metrics and detection share.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Frame:
    """One call site: `function` is fully qualified (`main.(*T).M`, `pkg.F[...]`)."""

    function: str
    file: str
    line: int

    @property
    def package(self) -> str:
        """Import path of the function's package (`net/http`, `example.com/x/v2`)."""
        name = self.function
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        return name if dot < 0 else name[:dot]

    @property
    def is_runtime(self) -> bool:
        """True for frames of the Go runtime and its internal packages."""
        return self.function.startswith(_RUNTIME_PREFIXES)

    @property
    def is_stdlib(self) -> bool:
        """True for frames of the Go standard library, the runtime included."""
        pkg = self.package
        return pkg.split("/", 1)[0] in _STDLIB and "." not in pkg.split("/", 1)[0]

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
