"""What a finding's goroutines cost in stack memory (docs/owners.md#cost).

Every goroutine owns a stack of at least the runtime's starting size, 2 KiB (`_StackMin`,
`runtime/stack.go`) since Go 1.4; a stack that grew is a larger power of two. A goroutine dump
carries no stack sizes. When the target's runtime reports its stack total
(`grprof.formats.memstats`: heap?debug=1's `# Stack =` line, or `go_memstats_stack_inuse_bytes`
over `go_goroutines` on /metrics), the figure per goroutine is that average (`source:
heap_profile` or `metrics`); otherwise it is the starting size, a **lower bound** (`source:
runtime_minimum`). An annotation: it never changes a verdict or a score. Heap memory the leaked
goroutines keep alive is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from grprof.formats.memstats import RuntimeStats

if TYPE_CHECKING:
    from grprof import schema

STACK_MIN = 2048
"""The runtime's starting goroutine stack size, in bytes."""
StackSource = Literal["runtime_minimum", "heap_profile", "metrics"]
LimitSource = Literal["configured", "gomemlimit"]
"""`configured`: `--memory-limit` / `memory_limit:`; `gomemlimit`: the target's GOMEMLIMIT."""


@dataclass(frozen=True, slots=True)
class StackBasis:
    """What every finding of one detection is costed with: bytes per goroutine and where that
    figure came from, the stack bytes the whole process holds now, and the memory limit."""

    per_goroutine: int = STACK_MIN
    source: StackSource = "runtime_minimum"
    held: int = 0
    """Stack bytes of every goroutine of the latest snapshot (the runtime's StackInuse when known)."""
    memory_limit: int | None = None
    limit_source: LimitSource | None = None

    @property
    def lower_bound(self) -> bool:
        return self.source == "runtime_minimum"


def stack_basis(
    goroutines: int, stats: RuntimeStats | None = None, memory_limit: int | None = None
) -> StackBasis:
    """The basis for a process with `goroutines` goroutines now: the runtime's average stack when
    `stats` has one (divided by its own goroutine count, else by `goroutines`: the caller takes
    the stats at about the time of the latest snapshot), else the 2 KiB lower bound. A
    configured `memory_limit` comes first, then the target's GOMEMLIMIT."""
    limit = memory_limit
    limit_source: LimitSource | None = "configured" if memory_limit is not None else None
    if limit is None and stats is not None and stats.memory_limit is not None:
        limit, limit_source = stats.memory_limit, "gomemlimit"
    n = stats.goroutines if stats is not None and stats.goroutines else goroutines
    if stats is None or n <= 0 or stats.stack_inuse <= 0:
        return StackBasis(STACK_MIN, "runtime_minimum", goroutines * STACK_MIN, limit, limit_source)
    per = max(round(stats.stack_inuse / n), 1)
    return StackBasis(per, stats.source, stats.stack_inuse, limit, limit_source)


@dataclass(frozen=True, slots=True)
class StackCost:
    """A finding's (or snapshot's) stack bytes, their growth, and the time to a memory limit."""

    bytes: int
    per_goroutine: int
    source: StackSource
    lower_bound: bool
    bytes_per_hour: float | None = None
    """The count's growth times `per_goroutine`; None without a growth figure."""
    hours_to_limit: float | None = None
    """At `bytes_per_hour`, hours until the memory limit's headroom is used up; None without a
    limit or without growth."""
    limit_source: LimitSource | None = None

    def to_json(self) -> schema.StackCost:
        return {
            "bytes": self.bytes,
            "per_goroutine": self.per_goroutine,
            "source": self.source,
            "lower_bound": self.lower_bound,
            "bytes_per_hour": None if self.bytes_per_hour is None else round(self.bytes_per_hour, 1),
            "hours_to_limit": None if self.hours_to_limit is None else round(self.hours_to_limit, 3),
            "limit_source": self.limit_source,
        }

    def summary(self) -> str:
        s = f"{'≥ ' if self.lower_bound else ''}{human_bytes(self.bytes)} of stacks"
        if self.bytes_per_hour:
            s += f", {human_bytes(self.bytes_per_hour)}/h"
        if self.hours_to_limit is not None:
            limit = "GOMEMLIMIT" if self.limit_source == "gomemlimit" else "memory limit"
            s += f", {limit} reached in ~{human_hours(self.hours_to_limit)} at this growth"
        return s + f" ({self.source.replace('_', ' ')}: {human_bytes(self.per_goroutine)} per goroutine)"


def stack_cost(count: int, growth_per_minute: float | None, basis: StackBasis | None = None) -> StackCost:
    """`count` goroutines at the basis' bytes each (the 2 KiB lower bound without one); the
    time to the limit is its headroom (limit minus `basis.held`) over this growth alone."""
    b = basis or StackBasis()
    rate = None if growth_per_minute is None else growth_per_minute * 60 * b.per_goroutine
    hours = None
    if b.memory_limit is not None and rate is not None and rate > 0:
        hours = max(b.memory_limit - b.held, 0) / rate
    return StackCost(
        count * b.per_goroutine,
        b.per_goroutine,
        b.source,
        b.lower_bound,
        rate,
        hours,
        b.limit_source if hours is not None else None,
    )


_KIB = 1024


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < _KIB or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= _KIB
    return f"{n:.1f} GiB"  # pragma: no cover


def human_hours(h: float) -> str:
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:  # noqa: PLR2004
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"
