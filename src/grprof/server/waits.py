"""Wait-reason classes: `chan receive` -> `channel`, `IO wait` -> `io`, ... for `/metrics`
(`grprof_blocked_goroutines`) and the API's `blocked`. The classes are data:
`grprof/data/wait_classes.yaml`. A leaf of `grprof.server`: the runtime and the metrics use it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from grprof.formats.states import load_wait_classes

_DURABLE = " (durable)"


@dataclass(frozen=True, slots=True)
class WaitClasses:
    exact: Mapping[str, str]
    prefixes: tuple[tuple[str, str], ...]
    default: str
    names: tuple[str, ...]
    """Every class, in file order."""


@functools.cache
def wait_classes() -> WaitClasses:
    """data/wait_classes.yaml as lookups, read through its one validated model
    (`grprof.formats.states.load_wait_classes`)."""
    data = load_wait_classes()
    exact: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    for name, spec in data.classes.items():
        for state in spec.exact:
            exact.setdefault(state, name)
        prefixes.extend((p, name) for p in spec.prefix)
    return WaitClasses(exact, tuple(prefixes), data.default, tuple(data.classes))


@functools.lru_cache(maxsize=4096)
def classify_wait(state: str) -> str:
    """`chan receive` -> `channel`, `IO wait` -> `io`, ...; see data/wait_classes.yaml."""
    wc = wait_classes()
    state = state.removesuffix(_DURABLE)
    hit = wc.exact.get(state)
    if hit is not None:
        return hit
    return next((cls for p, cls in wc.prefixes if state.startswith(p)), wc.default)


class HasStates(Protocol):
    @property
    def states(self) -> Mapping[str, int]: ...


def blocked_by_class(groups: Iterable[HasStates]) -> dict[str, int]:
    """Goroutines per wait-reason class, over every state of every group."""
    out: dict[str, int] = {}
    for g in groups:
        for state, n in g.states.items():
            cls = classify_wait(state)
            out[cls] = out.get(cls, 0) + n
    return out


__all__ = ["HasStates", "WaitClasses", "blocked_by_class", "classify_wait", "wait_classes"]
