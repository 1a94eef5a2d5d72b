"""`grprof watch`: poll a live service's goroutine profile and report findings as they appear.

Each poll fetches `/debug/pprof/goroutine?debug=1` (cheap: aggregated, no stop-the-world
traceback), or a per-goroutine debug=2 dump when the capture policy says so, and after the
1st, N+1-th, 2N+1-th... successful poll it also fetches `/debug/pprof/goroutineleak?debug=1`
while the service has it (Go 1.26 with the experiment, 1.27; it forces a GC on the target,
hence the lower rate). Both decisions are `grprof serve`'s scraper's, from the same functions
(`grprof.collect.policy`: `CapturePolicy.next_scrape`, `leak_probe_due`): watch is a
one-target pipeline of serve's parts (that policy, the fetch path, `serving.window.Window`,
and `serving.judge.judge_window`, the one way both judge a window). The one difference: the
first goroutineleak request failing in any way (not only a 404) means "no leak profile" here,
as a person watching wants to know at once. A failed poll is reported and skipped; the data
gathered so far is kept.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

from grprof.collect.policy import (
    LEAK_EVERY,
    CapturePolicy,
    CaptureSettings,
    CaptureState,
    ScrapeFormat,
    leak_probe_due,
)
from grprof.detect.detector import Detection, Options
from grprof.detect.model import Finding
from grprof.detect.signals import default_settings
from grprof.diff import Focus
from grprof.errors import GrprofError
from grprof.loader import load_all
from grprof.model import Snapshot
from grprof.serving.judge import judge_window
from grprof.serving.window import Window
from grprof.sources import ResolvedTarget, TargetError, resolve_target
from grprof.units import iso_utc


def watch_target(url: str, fmt: str | None = None) -> ResolvedTarget:
    """The service a `grprof watch URL` means (grprof.sources.resolve_target, as `analyze`
    and `serve`): any form from `host:port` to a profile URL; `fmt` (`--format`), else the
    URL's `?debug=N`, else debug=1 is the scheduled polls' format. Raises TargetError."""
    return resolve_target(url, fmt, default="debug=1")


def base_url(url: str) -> str:
    """`http://h:6060/debug/pprof/goroutine?debug=2`, `h:6060` or `http://h:6060/` ->
    `http://h:6060` (see `watch_target`). Raises TargetError."""
    return watch_target(url).base


def url_format(url: str) -> ScrapeFormat | None:
    """The format a `/debug/pprof/goroutine?debug=N` URL names (N = 0, 1 or 2), else None."""
    try:
        target = watch_target(url)
    except TargetError:
        return None
    if target.profile != "goroutine" or "debug" not in parse_qs(urlsplit(url).query):
        return None
    return target.format


@dataclass
class Event:
    """A finding that appeared, changed verdict, or went away."""

    at: dt.datetime
    kind: str
    """`new`, `leak` (a suspect became a leak), `suspect` (a leak fell back), `gone`."""
    finding: Finding


@dataclass
class Watcher:
    url: str
    options: Options
    timeout: float = 10.0
    leak_every: int = LEAK_EVERY
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    """Which polls fetch debug=2 (grprof.collect.policy)."""
    capture_state: CaptureState = field(default_factory=CaptureState)
    leak_profile: bool | None = None
    """None until probed; False when the service has no goroutineleak profile."""
    leak_profile_note: str = ""
    polls: int = 0
    ok_polls: int = 0
    """Successful polls: the count `leak_probe_due` reads, as the scraper's `ok_scrapes`."""
    errors: int = 0
    last_error: str = ""
    detection: Detection | None = None
    """The latest detection, its findings after `focus`."""
    focus: Focus = field(default_factory=Focus)
    """`--focus`/`--ignore`: the findings on the groups it leaves out are not reported."""
    _known: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    monotonic: Callable[[], float] = time.monotonic
    window: Window = field(init=False)
    """The target's detection window, as `grprof serve` keeps one per target."""

    def __post_init__(self) -> None:
        self.window = Window.empty((self.options.settings or default_settings()).window)

    @property
    def snapshots(self) -> list[Snapshot]:
        """The goroutine snapshots in the window, oldest first."""
        return list(self.window.snapshots)

    @property
    def leak_profiles(self) -> list[Snapshot]:
        """The goroutineleak profiles in the window, oldest first."""
        return list(self.window.leak_profiles)

    @property
    def base(self) -> str:
        return base_url(self.url)

    def _fetch(self, path: str) -> list[Snapshot]:
        query = watch_target(self.url).query  # the URL's parameters other than debug, kept
        snaps = load_all(self.base + path + (f"&{query}" if query else ""), timeout=self.timeout)
        now = self.clock()
        for s in snaps:
            s.mtime = now
        return snaps

    def probe_leak_profile(self) -> None:
        try:
            self._add(self._fetch("/debug/pprof/goroutineleak?debug=1")[:1])
            self.leak_profile = True
        except GrprofError as e:
            self.leak_profile = False
            self.leak_profile_note = str(e)

    def _leak_request(self) -> None:
        """The goroutineleak request after a poll: the first one probes (`probe_leak_profile`)."""
        if self.leak_profile is None:
            self.probe_leak_profile()
            return
        try:
            self._add(self._fetch("/debug/pprof/goroutineleak?debug=1")[:1])
        except GrprofError as e:
            self.last_error = str(e)

    @property
    def debug2_taken(self) -> int:
        return sum(self.capture_state.taken.values())

    def poll(self) -> list[Event]:
        """One poll: fetch, detect, and return what changed. Raises GrprofError on a failed fetch."""
        self.polls += 1
        policy = CapturePolicy(self.capture)
        decided = self.monotonic()
        decision = policy.next_scrape(self.capture_state, decided)
        level = decision.kind.removeprefix("debug=")
        try:
            snaps = self._fetch(f"/debug/pprof/goroutine?debug={level}")
        except GrprofError:
            policy.observed(self.capture_state, decision, False, decided)
            raise
        policy.observed(self.capture_state, decision, True, decided, snaps[0].total)
        self.ok_polls += 1
        self._add(snaps[:1])
        if leak_probe_due(self.ok_polls, self.leak_every, missing=self.leak_profile is False):
            self._leak_request()
        # Judged as serve judges a target's window (serving.judge): no `inconclusive` findings.
        latest = self.window.snapshots[-1] if self.window.snapshots else None
        detection = judge_window(self.window.all(), latest, self.options).detection
        policy.findings(self.capture_state, detection.findings)  # capture for every finding
        if self.focus.active:
            detection = replace(detection, findings=self.focus.findings(detection.findings))
        self.detection = detection
        return self._events(self.detection.findings)

    def _add(self, snaps: list[Snapshot]) -> None:
        for snap in snaps:
            self.window.add(snap)

    def _events(self, findings: list[Finding]) -> list[Event]:
        """What changed since the last poll. A group folded into a unit is still there (a
        member of another finding), not gone; one that comes out of a unit again is not new."""
        now = self.clock()
        events = []
        seen: dict[str, str] = {m.id: m.verdict for f in findings for m in f.members}
        seen.update((f.id, f.verdict) for f in findings)
        for f in findings:
            before = self._known.get(f.id)
            if before is None:
                events.append(Event(now, "new", f))
            elif before != f.verdict:
                events.append(Event(now, f.verdict, f))
        for fid, verdict in list(self._known.items()):
            if fid not in seen:
                events.append(Event(now, "gone", _gone(fid, verdict)))
        self._known = seen
        return events


def _gone(fid: str, verdict: str) -> Finding:
    return Finding(
        id=fid,
        verdict="leak" if verdict == "leak" else "suspect",
        confidence=0.0,
        category="",
        title="no longer seen",
        explanation="",
        fix="",
        site=None,
        created_by=None,
        state="",
        count=0,
        counts=(),
        growth_per_minute=None,
        max_wait_minutes=0,
        orphans=0,
        runtime_confirmed=False,
        source_confirmed=False,
        labels={},
        evidence=(),
    )


def event_line(e: Event) -> str:
    """One plain line per event, for logs and pipes."""
    f = e.finding
    stamp = iso_utc(e.at, "seconds")
    if e.kind == "gone":
        return f"{stamp}  GONE     {f.id}  (was {f.verdict})"
    site = f"{f.site.function} ({f.site.file.rsplit('/', 1)[-1]}:{f.site.line})" if f.site else "?"
    growth = f"  {f.growth_per_minute:+.3g}/min" if f.growth_per_minute else ""
    kind = {"new": "NEW", "leak": "WORSE", "suspect": "BETTER"}[e.kind]
    return (
        f"{stamp}  {kind:<7}  {f.verdict:<7}  {f.confidence:.2f}  {f.category:<16}  {site}  "
        f"count={f.count}{growth}  {f.title}  [{f.id}]"
    )


def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
