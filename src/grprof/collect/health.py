"""A target's health, and the one rule by which a scrape changes it.

`grprof serve` keeps a target's health in two places, the replica's memory
(`grprof.server.runtime.TargetRuntime`, read by `/metrics` and the API) and the store's
`targets` row (read by every replica's API); both apply `health_change` to each scrape, so they
never disagree on what a scrape says:

- every scrape moves `last_scrape`;
- a goroutine profile scrape (debug=0, 1 or 2, scheduled or captured) decides `up`,
  `last_success` and `last_error`: up when it was fetched and parsed (`ok`), down with its
  error otherwise (`parse_error` included);
- two say nothing about health: a `goroutineleak` scrape (an optional, rarer profile: a 404 is
  a Go without it, and the goroutine profile already says whether the service answers), and a
  capture our own policy `refused`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from grprof.collect.model import ScrapeKind, ScrapeStatus


@dataclass(frozen=True, slots=True)
class HealthChange:
    """What one scrape says about its target's health."""

    up: bool
    last_error: str
    """Empty when up."""


def health_change(kind: ScrapeKind, status: ScrapeStatus, error: str = "") -> HealthChange | None:
    """What a scrape of `kind` that ended with `status` (and `error`) says about its target's
    health; None when it says nothing (see the module)."""
    if status == "refused" or kind in ("goroutineleak", "memstats"):
        return None
    ok = status == "ok"
    return HealthChange(ok, "" if ok else error or status)


@dataclass(kw_only=True)
class TargetHealth:
    """A target's health, as the scrapes so far say (`observe`)."""

    up: bool = False
    last_scrape: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_error: str = ""

    def observe(self, kind: ScrapeKind, status: ScrapeStatus, started: dt.datetime, error: str = "") -> None:
        """Apply one scrape (`status` after parsing: `parse_error` for a body that did not parse)."""
        self.last_scrape = started
        change = health_change(kind, status, error)
        if change is None:
            return
        self.up, self.last_error = change.up, change.last_error
        if change.up:
            self.last_success = started


__all__ = ["HealthChange", "TargetHealth", "health_change"]
