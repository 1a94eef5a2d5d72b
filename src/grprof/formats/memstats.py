"""The target's own stack figures: what a goroutine dump cannot say about stack memory.

A dump lists goroutines but not their stack sizes; the runtime knows the total. Two places a
Go service exposes it, read here (docs/owners.md#cost):

- `/debug/pprof/heap?debug=1`: the text heap profile ends with `runtime.MemStats`, among it
  `# Stack = StackInuse / StackSys`. It has no goroutine count: the caller divides by the
  goroutines of a snapshot taken at about the same time.
- a Prometheus `/metrics` page with client_golang's Go collector: `go_memstats_stack_inuse_bytes`
  and `go_goroutines`, and `go_gc_gomemlimit_bytes` (GOMEMLIMIT; math.MaxInt64 when unset)
  where the collector exports it.

`StackInuse` counts every goroutine stack in use, the runtime's own (a few, 8–32 KiB each)
included: divided by tens of goroutines it is an overestimate, by thousands it is the average.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from grprof.errors import GrprofError

StatsSource = Literal["heap_profile", "metrics"]
"""`heap_profile`: the `# Stack =` line of heap?debug=1; `metrics`: the Prometheus Go collector."""

_STACK_LINE = re.compile(rb"^# Stack = (\d+) / (\d+)\s*$", re.M)
_NO_LIMIT = 2**63 - 1
"""GOMEMLIMIT's value when no limit is set (math.MaxInt64)."""


class StatsError(GrprofError):
    """Runtime figures that cannot be read: names the input and what is wrong. Exit status 2."""


@dataclass(frozen=True, slots=True)
class RuntimeStats:
    """Stack memory as the target's runtime reports it."""

    stack_inuse: int
    """Bytes of goroutine stacks in use (`runtime.MemStats.StackInuse`)."""
    goroutines: int | None
    """Goroutines at the same moment (`go_goroutines`); None from a heap profile."""
    memory_limit: int | None
    """GOMEMLIMIT in bytes when the target has one set and reports it; else None."""
    source: StatsSource
    name: str
    """The input it came from (a file name or a URL without credentials), for the reports."""


def parse_runtime_stats(data: bytes, name: str) -> RuntimeStats:
    """The stack figures of a heap?debug=1 profile or a Prometheus metrics page; `StatsError`
    when `data` is neither or lacks the figures."""
    m = _STACK_LINE.search(data)
    if m is not None:
        return RuntimeStats(int(m.group(1)), None, None, "heap_profile", name)
    if data[:2] == b"\x1f\x8b" or b"\x00" in data[:4096]:
        raise StatsError(
            f"{name}: binary data, not runtime figures: want /debug/pprof/heap?debug=1 (text) "
            "or a Prometheus /metrics page"
        )
    return _from_metrics(data, name)


def _from_metrics(data: bytes, name: str) -> RuntimeStats:
    # Imported here: detection imports this module, and only --memstats with /metrics needs it.
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    wanted = {"go_memstats_stack_inuse_bytes", "go_goroutines", "go_gc_gomemlimit_bytes"}
    try:
        for family in text_string_to_metric_families(data.decode("utf-8", "replace")):
            for sample in family.samples:
                if sample.name in wanted and not sample.labels:
                    values[sample.name] = sample.value
    except ValueError as e:
        raise StatsError(
            f"{name}: neither a heap profile with a '# Stack =' line (/debug/pprof/heap?debug=1) "
            f"nor a Prometheus metrics page: {e}"
        ) from None
    inuse, count = values.get("go_memstats_stack_inuse_bytes"), values.get("go_goroutines")
    if inuse is None or count is None:
        missing = [k for k in ("go_memstats_stack_inuse_bytes", "go_goroutines") if k not in values]
        raise StatsError(
            f"{name}: no {' and no '.join(missing)}: want /debug/pprof/heap?debug=1 or the metrics "
            "of client_golang's Go collector"
        )
    if not (math.isfinite(inuse) and math.isfinite(count)) or inuse < 0 or count < 0:
        raise StatsError(f"{name}: go_memstats_stack_inuse_bytes or go_goroutines is not a count")
    limit = values.get("go_gc_gomemlimit_bytes")
    has_limit = limit is not None and math.isfinite(limit) and 0 < limit < _NO_LIMIT * 0.99
    return RuntimeStats(int(inuse), int(count), int(limit) if has_limit and limit else None, "metrics", name)
