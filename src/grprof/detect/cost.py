"""What a finding's goroutines cost in stack memory (docs/owners.md#cost).

Every goroutine owns a stack of at least the runtime's starting size, 2 KiB (`_StackMin`,
`runtime/stack.go`) since Go 1.4; a stack that grew is a larger power of two. A goroutine dump
carries no stack sizes, so without the target's own figures the estimate is the starting size
per goroutine: a **lower bound** (`source: runtime_minimum`). An annotation: it never changes a
verdict or a score. Heap memory the leaked goroutines keep alive is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grprof import schema

STACK_MIN = 2048
"""The runtime's starting goroutine stack size, in bytes."""
StackSource = Literal["runtime_minimum"]


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
    """At `bytes_per_hour`, hours until the configured memory limit's headroom is used up; None
    without a limit or without growth."""

    def to_json(self) -> schema.StackCost:
        return {
            "bytes": self.bytes,
            "per_goroutine": self.per_goroutine,
            "source": self.source,
            "lower_bound": self.lower_bound,
            "bytes_per_hour": None if self.bytes_per_hour is None else round(self.bytes_per_hour, 1),
            "hours_to_limit": None if self.hours_to_limit is None else round(self.hours_to_limit, 3),
        }

    def summary(self) -> str:
        s = f"{'≥ ' if self.lower_bound else ''}{human_bytes(self.bytes)} of stacks"
        if self.bytes_per_hour:
            s += f", {human_bytes(self.bytes_per_hour)}/h"
        if self.hours_to_limit is not None:
            s += f", memory limit reached in ~{human_hours(self.hours_to_limit)} at this growth"
        return s + f" ({self.source.replace('_', ' ')}: {human_bytes(self.per_goroutine)} per goroutine)"


def stack_cost(
    count: int, growth_per_minute: float | None, memory_limit: int | None = None, held: int = 0
) -> StackCost:
    """`count` goroutines at the runtime minimum each; `held`: stack bytes the whole process
    already holds (the latest snapshot's goroutines), subtracted from `memory_limit`."""
    per = STACK_MIN
    rate = None if growth_per_minute is None else growth_per_minute * 60 * per
    hours = None
    if memory_limit is not None and rate is not None and rate > 0:
        hours = max(memory_limit - held, 0) / rate
    return StackCost(count * per, per, "runtime_minimum", True, rate, hours)


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
