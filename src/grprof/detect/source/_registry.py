"""The leak patterns' registry: each pattern is a module of `grprof.detect.source.patterns`
whose `check` is registered with `@pattern(name, category, order)`; `match` tries them by
`order`, first hit wins (the more specific before the more general).

A check reads the blocking statement (`_Site`) and returns `(name, fix)` when the code shows
the pattern clearly, else None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grprof.detect.source._syntax import _Site

Check = Callable[[_Site], tuple[str, str] | None]


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    category: str
    """The finding category the pattern belongs to (`channel`, `context`, `timer`)."""
    order: int
    """Where `match` tries it: lower first."""
    check: Check


REGISTRY: dict[str, Pattern] = {}
"""Every pattern by name, in `order`."""


def pattern(name: str, category: str, order: int) -> Callable[[Check], Check]:
    """Register a leak pattern's check (a module of `grprof.detect.source.patterns`)."""

    def register(check: Check) -> Check:
        if name in REGISTRY or any(p.order == order for p in REGISTRY.values()):
            raise ValueError(f"leak pattern {name!r}: its name or order {order} is taken")
        patterns = sorted([*REGISTRY.values(), Pattern(name, category, order, check)], key=lambda p: p.order)
        REGISTRY.clear()
        REGISTRY.update((p.name, p) for p in patterns)
        return check

    return register


def match(site: _Site) -> tuple[str, str] | None:
    """The first registered pattern the site shows, as `(name, fix)`; None when none."""
    for p in REGISTRY.values():
        found = p.check(site)
        if found is not None:
            return found
    return None


__all__ = ["REGISTRY", "Check", "Pattern", "match", "pattern"]
