"""The capture policy: which scrapes fetch a per-goroutine (debug=2) dump instead of the cheap profile.

Turnover (ids that were not there one debug=2 earlier) and persistence (the same ids blocked
across snapshots) need goroutine ids, which only debug=2 carries; debug=2 stops the target's
world while it writes, so it is taken regularly but not at every scrape:

- a scheduled scrape fetches the configured `format` (debug=1 by default), except every
  `debug2_every`-th one (counted per target from a stable offset, so that a fleet's debug=2
  scrapes spread over the rounds), which fetches debug=2; `format: debug=2` makes every
  scheduled scrape a debug=2;
- a new suspect finding, or a finding whose verdict rests on growth, asks for an extra
  debug=2: the next scheduled scrape fetches it, once at least `extra_gap` seconds have
  passed since the target's last debug=2 (the rate limit);
- never while the target's goroutine count is unknown (before its first scrape) or above
  `debug2_max_goroutines` (0 turns debug=2 off), nor right after a failed scrape; a failed
  debug=2 pauses debug=2 for `debug2_every × 2^(failures−1)` scrapes (at most 64).

The goroutineleak profile (it forces a GC on the target) is asked for after the 1st, N+1-th,
2N+1-th... successful scheduled scrape (`leak_probe_due`), never once the target showed it has
none.

Pure and clock-free (callers pass a monotonic `now`): `grprof serve`'s scraper and
`grprof watch` both ask it whether a scrape is a debug=2 (`CapturePolicy.next_scrape`) and
whether a goroutineleak request follows it (`leak_probe_due`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from grprof.collect.model import ScrapeKind

ScrapeFormat = Literal["debug=1", "debug=0", "debug=2"]
CaptureReason = Literal["", "format", "every", "suspect", "growth", "demand"]
"""Why a debug=2 was taken: `format` (every scrape is one), `every` (the N-th scrape), an extra
for a new `suspect` or a `growth`-based finding, or `demand` (asked for, e.g. by the API).
Empty for the cheap profile."""

FORMATS: tuple[ScrapeFormat, ...] = ("debug=1", "debug=0", "debug=2")
MAX_PAUSE = 64
"""Scrapes: the longest pause of debug=2 after failed ones."""
LEAK_EVERY = 4
"""The default N of `leak_probe_due`: goroutineleak after every 4th successful scrape."""


def leak_probe_due(ok_scrapes: int, every: int, *, missing: bool = False) -> bool:
    """Whether the `ok_scrapes`-th successful scheduled scrape of a target is followed by a
    goroutineleak request: the 1st, N+1-th, 2N+1-th... (`every` = N; 0: never), and never
    once the target showed it has no such profile (`missing`)."""
    return every > 0 and not missing and ok_scrapes > 0 and (ok_scrapes - 1) % every == 0


class _Evidence(Protocol):
    @property
    def signal(self) -> str: ...


class FindingLike(Protocol):
    """What the policy reads of a finding (grprof.detect.model.Finding has it)."""

    @property
    def id(self) -> str: ...
    @property
    def verdict(self) -> str: ...
    @property
    def runtime_confirmed(self) -> bool: ...
    @property
    def evidence(self) -> Sequence[_Evidence]: ...


def rests_on_growth(f: FindingLike) -> bool:
    """A verdict that growth is part of, without the runtime's proof: a load ramp looks the
    same until ids (turnover, persistence) tell them apart."""
    return not f.runtime_confirmed and any(e.signal == "growth" for e in f.evidence)


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    format: ScrapeFormat = "debug=1"
    """The profile of a scheduled scrape; debug=2 makes every scheduled scrape a debug=2."""
    debug2_every: int = 4
    """Every N-th scheduled scrape is a debug=2; 0: never (extras still happen)."""
    debug2_max_goroutines: int = 10_000
    """No debug=2 of a target with more goroutines (or an unknown count); 0: no debug=2 at all."""
    extra_gap: float = 30.0
    """Seconds: an extra debug=2 only this long after the target's last debug=2."""

    def __post_init__(self) -> None:
        checks = [
            (self.format in FORMATS, "format must be debug=1, debug=0 or debug=2"),
            (self.debug2_every >= 0, "debug2_every must be 0 (never) or positive"),
            (self.debug2_max_goroutines >= 0, "debug2_max_goroutines must not be negative"),
            (self.extra_gap >= 0, "the extra debug=2 gap must not be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"capture settings: {message}")

    @property
    def cheap(self) -> ScrapeKind:
        """The profile a scheduled scrape falls back to when debug=2 is not allowed."""
        return "debug=1" if self.format == "debug=2" else self.format


@dataclass(slots=True)
class CaptureState:
    """One target's part of the policy."""

    offset: int = 0
    """Where the target's every-N-th count starts (`offset_for(name)`): spreads a fleet."""
    scrapes: int = 0
    """Scheduled scrapes decided so far."""
    goroutines: int | None = None
    failed: bool = False
    """The last scheduled scrape failed."""
    last_debug2: float | None = None
    """`now` (when it was decided or asked for) of the last successful debug=2, any reason."""
    debug2_failures: int = 0
    """Consecutive failed debug=2 requests."""
    paused_until: int = 0
    """No scheduled or extra debug=2 before this scrape number (after failed ones)."""
    wanted: CaptureReason = ""
    """An extra debug=2 asked for by findings and not taken yet."""
    known: dict[str, str] = field(default_factory=dict)
    """Finding id -> verdict at the previous detection pass."""
    taken: dict[CaptureReason, int] = field(default_factory=dict)
    """Successful debug=2 per reason."""


def offset_for(name: str) -> int:
    """A stable per-target offset (MD5 of the name: the same in every process)."""
    return int.from_bytes(hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest()[:4], "big")


@dataclass(frozen=True, slots=True)
class Decision:
    kind: ScrapeKind
    reason: CaptureReason


class CapturePolicy:
    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings

    def refusal(self, st: CaptureState) -> str | None:
        """Why no debug=2 of this target may be taken now (any reason), or None."""
        limit = self.settings.debug2_max_goroutines
        if st.goroutines is None:
            return "its goroutine count is not known yet (wait for a first scrape)"
        if st.goroutines > limit:
            return f"it has {st.goroutines} goroutines, above the debug=2 limit of {limit}"
        return None

    def next_scrape(self, st: CaptureState, now: float) -> Decision:
        """The profile of the target's next scheduled scrape (counts it)."""
        s = self.settings
        st.scrapes += 1
        cheap = Decision(s.cheap, "")
        if st.failed or st.scrapes < st.paused_until or self.refusal(st) is not None:
            return cheap
        if s.format == "debug=2":
            return Decision("debug=2", "format")
        if s.debug2_every and (st.scrapes + st.offset) % s.debug2_every == 0:
            return Decision("debug=2", "every")
        if st.wanted and (st.last_debug2 is None or now - st.last_debug2 >= s.extra_gap):
            return Decision("debug=2", st.wanted)
        return cheap

    def observed(
        self,
        st: CaptureState,
        decision: Decision,
        ok: bool,
        now: float,
        goroutines: int | None = None,
        *,
        scheduled: bool = True,
    ) -> None:
        """After a request: its outcome, and the goroutine count it showed when known; `now` is
        when the request was decided (`next_scrape`'s) or asked for."""
        if scheduled:
            st.failed = not ok
        if goroutines is not None:
            st.goroutines = goroutines
        if decision.kind != "debug=2":
            return
        if ok:
            st.last_debug2 = now
            st.debug2_failures = 0
            st.wanted = ""
            st.taken[decision.reason] = st.taken.get(decision.reason, 0) + 1
        elif scheduled:
            st.debug2_failures += 1
            pause = max(1, self.settings.debug2_every) * 2 ** (st.debug2_failures - 1)
            st.paused_until = st.scrapes + 1 + min(pause, MAX_PAUSE)

    def findings(self, st: CaptureState, findings: Iterable[FindingLike]) -> CaptureReason:
        """After a detection pass: ask for an extra debug=2 when a suspect is new (sticky until
        taken) or while a finding's verdict rests on growth. Returns what is wanted now."""
        known = st.known
        current = list(findings)
        new_suspect = any(f.verdict == "suspect" and f.id not in known for f in current)
        growth = any(rests_on_growth(f) for f in current)
        st.known = {f.id: f.verdict for f in current}
        if new_suspect:
            st.wanted = "suspect"
        elif st.wanted != "suspect":
            st.wanted = "growth" if growth else ""
        return st.wanted


__all__ = [
    "LEAK_EVERY",
    "CapturePolicy",
    "CaptureReason",
    "CaptureSettings",
    "CaptureState",
    "Decision",
    "FindingLike",
    "ScrapeFormat",
    "leak_probe_due",
    "offset_for",
    "rests_on_growth",
]
