"""The domain model: frames, goroutines, snapshots and groups.

A `Snapshot` keeps its goroutines in a columnar `GoroutineTable` (one row per
goroutine, or per sample for the aggregated formats) and materialises
`Goroutine` objects only when asked: a 1,000,000-goroutine dump aggregates
without building a million Python objects.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from grprof.aggregate import Similarity, StackNode
    from grprof.table import GoroutineTable

_T = TypeVar("_T")
Format = Literal["debug=0", "debug=1", "debug=2"]
Profile = Literal["goroutine", "goroutineleak"]

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


@dataclass(slots=True)
class Group:
    """Goroutines (or profile samples) that share a stack under a similarity level."""

    signature: str
    """Stable hex digest of the group's stack; equal stacks give equal signatures across runs."""
    count: int
    frames: tuple[Frame, ...]
    frames_elided: bool
    created_by: Frame | None
    states: dict[str, int]
    wait_minutes: dict[int, int]
    """Wait minutes -> goroutine count (0 = under a minute or not stamped)."""
    labels: dict[str, dict[str, int]]
    """Label key -> value -> goroutine count."""
    ids: list[int]
    """Member goroutine ids (empty for aggregated formats)."""
    orphans: list[int]
    """Members whose creator goroutine is no longer in the snapshot."""
    leaked: int
    locked_to_thread: int
    partial: int
    creators: dict[int, int] = field(default_factory=dict)
    """Creator goroutine id -> members it started (per-goroutine formats, Go 1.21+ headers)."""
    state_inferred: bool = False
    """The states were inferred from the stack (debug=0, debug=1), not printed by the runtime."""

    @property
    def site(self) -> Frame | None:
        return site_of(self.frames)

    @property
    def state(self) -> str:
        """The most common state."""
        return max(self.states.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.states else ""

    @property
    def max_wait_minutes(self) -> int:
        return max(self.wait_minutes, default=0)


class Snapshot:
    """One goroutine dump or profile, as read from one source."""

    __slots__ = (
        "source",
        "format",
        "profile",
        "time",
        "truncated",
        "go_version",
        "prologue",
        "mtime",
        "notes",
        "table",
        "_goroutines",
        "_memo",
    )

    def __init__(
        self,
        *,
        source: str,
        format: Format,
        profile: Profile,
        table: GoroutineTable,
        time: _dt.datetime | None = None,
        truncated: bool = False,
        go_version: str | None = None,
        prologue: str = "",
    ) -> None:
        self.source = source
        self.format: Format = format
        self.profile: Profile = profile
        self.table = table
        self.time = time
        self.truncated = truncated
        self.go_version = go_version
        self.prologue = prologue
        """Text before the first goroutine: `panic: ...`, `fatal error: ...`, `SIGQUIT: quit`."""
        self.mtime: _dt.datetime | None = None
        """Modification time of the file the snapshot came from, when it came from a file."""
        self.notes: tuple[str, ...] = ()
        """Warnings for the user about how the input was read, one line each, naming the input:
        a log prefix stripped, spaces fixed, where a file was split into dumps (on the first
        snapshot of an input; `grprof.formats._paste`, `grprof.formats.split_dumps`)."""
        self._goroutines: list[Goroutine] | None = None
        self._memo: dict[str, object] = {}

    def memo(self, key: str, compute: Callable[[], _T]) -> _T:
        """Data derived from the snapshot, computed once: a snapshot does not change once parsed
        (a daemon judges the same 40 snapshots again at every scrape)."""
        try:
            return self._memo[key]  # type: ignore[return-value]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def clear_memo(self) -> None:
        """Forget derived data (after the table's stacks were swapped for shared copies)."""
        self._memo.clear()

    @property
    def total(self) -> int:
        """Number of goroutines (sum of sample counts for aggregated formats)."""
        return self.table.total()

    @property
    def goroutines(self) -> list[Goroutine]:
        """Per-goroutine records; empty for the aggregated formats (debug=0, debug=1)."""
        if self._goroutines is None:
            self._goroutines = list(self.table.goroutines())
        return self._goroutines

    def __iter__(self) -> Iterator[Goroutine]:
        return iter(self.goroutines)

    def groups(self, similarity: Similarity = "default") -> list[Group]:
        """Goroutines grouped by stack, largest group first (computed once per similarity)."""
        from grprof.aggregate import group

        return list(self.memo(f"groups:{similarity}", lambda: group(self.table, similarity)))

    def stack_tree(self, similarity: Similarity = "default") -> StackNode:
        """Prefix tree of frames (outermost first) with goroutine counts, for flame graphs."""
        from grprof.aggregate import stack_tree

        return stack_tree(self.groups(similarity))

    def __repr__(self) -> str:
        return (
            f"Snapshot(source={self.source!r}, format={self.format!r}, profile={self.profile!r}, "
            f"total={self.total}, truncated={self.truncated})"
        )
