"""The scrape engine: one asyncio task per target, one shared aiohttp session.

Low intrusion is the point (docs/collection.md): `debug=1` on a schedule that is
spread over the interval, `goroutineleak` (it forces a GC on the target) only every
`leak_every` scrapes and never again after a 404, `debug=2` (stop-the-world) in place
of every `debug2_every`-th scheduled scrape, when findings ask for one (rate-limited)
and on demand, never above a goroutine limit (`grprof.collect.policy`); never two
requests to one target at once; a failing target backs off exponentially. A slow,
dead or hostile target can only waste its own time: every request has a total deadline, a size cap enforced
while streaming (decompressed bytes included), and redirects may not leave it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import logging
import math
import os
import random
import re
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from grprof.collect.fetch import GZIP_MAGIC, Gunzip, gunzip_checked, too_large
from grprof.collect.fetch import FetchError as FetchError  # noqa: PLC0414 - re-exported for discovery
from grprof.collect.health import TargetHealth
from grprof.collect.model import Auth, GoroutineKind, ScrapeKind, ScrapeResult, ScrapeStatus, Target
from grprof.collect.policy import (
    FORMATS,
    LEAK_EVERY,
    CapturePolicy,
    CaptureReason,
    CaptureSettings,
    CaptureState,
    Decision,
    FindingLike,
    ScrapeFormat,
    leak_probe_due,
    offset_for,
)
from grprof.errors import SettingError

log = logging.getLogger("grprof.collect")

MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_TOTAL_RE = re.compile(rb"\A\s*goroutine profile: total (\d+)")
_DEBUG2_START = re.compile(rb"\A\s*goroutine \d+ \[")
_DEBUG2_HEADER = b"\n\ngoroutine "

OnResult = Callable[[ScrapeResult], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    interval: float = 15.0
    """Seconds between scheduled scrapes of one target."""
    timeout: float = 10.0
    """Seconds for one request, connect to last byte, redirects included."""
    concurrency: int = 32
    """Requests in flight at once over all targets."""
    jitter: float = 0.1
    """Random delay added to each scheduled scrape, as a fraction of the interval."""
    max_response: int = 64 << 20
    """Bytes; applies to what is received and to what it decompresses to."""
    format: ScrapeFormat = "debug=1"
    """The profile of a scheduled scrape (debug=2: every scheduled scrape is one)."""
    leak_every: int = LEAK_EVERY
    """Fetch goroutineleak on every N-th successful scrape of a target (the 1st, N+1-th, ...); 0: never."""
    debug2_every: int = 4
    """Every N-th scheduled scrape of a target is a debug=2 (grprof.collect.policy); 0: never."""
    memstats_every: int = 0
    """Fetch the runtime's stack figures (heap?debug=1) after every N-th successful scrape (the
    1st, N+1-th, ...); 0: never; never again after a 404. `serve` sets it from
    `scrape.memstats_every` (default 4)."""
    memstats_path: str = "/debug/pprof/heap?debug=1"
    """Where the runtime's stack figures are, under the target's base URL: the text heap
    profile, or a Prometheus /metrics page with client_golang's Go collector (which also
    carries GOMEMLIMIT) when the service serves it on the same address."""
    debug2_max_goroutines: int = 10_000
    debug2_extra_gap: float = 30.0
    """Seconds: an extra debug=2 asked for by findings comes at least this long after the last."""
    backoff_max: float = 300.0
    """Seconds: the longest wait after failures."""

    def __post_init__(self) -> None:
        """`SettingError` for the first value the scraper cannot run with."""
        checks = [
            ("interval", self.interval > 0, "must be positive"),
            ("timeout", self.timeout > 0, "must be positive"),
            ("concurrency", self.concurrency >= 1, "must be at least 1"),
            ("jitter", 0 <= self.jitter < 1, "must be a fraction of the interval in [0, 1)"),
            ("max_response", self.max_response >= 1, "must be positive"),
            ("format", self.format in FORMATS, "must be debug=1, debug=0 or debug=2"),
            ("leak_every", self.leak_every >= 0, "must be 0 (never) or positive"),
            ("debug2_every", self.debug2_every >= 0, "must be 0 (never) or positive"),
            ("memstats_every", self.memstats_every >= 0, "must be 0 (never) or positive"),
            ("memstats_path", self.memstats_path.startswith("/"), "must be a path starting with /"),
            ("debug2_max_goroutines", self.debug2_max_goroutines >= 0, "must not be negative"),
            ("debug2_extra_gap", self.debug2_extra_gap >= 0, "must not be negative"),
            (
                "interval",
                self.backoff_max >= self.interval,
                f"interval ({self.interval:g}s) must not exceed backoff_max ({self.backoff_max:g}s)",
            ),
        ]
        for key, ok, message in checks:
            if not ok:
                raise SettingError("scrape settings", key, message)

    def capture(self) -> CaptureSettings:
        return CaptureSettings(
            self.format, self.debug2_every, self.debug2_max_goroutines, self.debug2_extra_gap
        )


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """What the scraper knows about one target, for the API and metrics."""

    name: str
    url: str
    up: bool | None
    """None until the first scrape finished."""
    last_status: ScrapeStatus | None
    last_error: str
    last_scrape: dt.datetime | None
    last_success: dt.datetime | None
    failures: int
    """Consecutive failed scheduled scrapes (0 when up)."""
    goroutines: int | None
    leak_profile: bool | None
    """False once goroutineleak answered 404; None until asked."""
    lag: float
    scrapes: int
    debug2: Mapping[CaptureReason, int] = field(default_factory=dict)
    """Successful debug=2 requests by reason (grprof.collect.policy)."""


@dataclass(frozen=True, slots=True)
class ScraperStats:
    targets: int
    up: int
    down: int
    in_flight: int
    max_lag: float
    results: Mapping[tuple[ScrapeKind, ScrapeStatus], int]
    """Finished requests since start, by kind and status."""


@dataclass(slots=True)
class _State:
    target: Target
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    scrapes: int = 0
    ok_scrapes: int = 0
    failures: int = 0
    leak_missing: bool = False
    memstats_missing: bool = False
    leak_seen: bool = False
    goroutines: int | None = None
    lag: float = 0.0
    health: TargetHealth = field(default_factory=TargetHealth)
    """The scheduled scrapes' verdict, by the one health rule (`grprof.collect.health`)."""
    last: ScrapeResult | None = None
    capture: CaptureState = field(default_factory=CaptureState)

    @property
    def up(self) -> bool | None:
        """None until the first scheduled scrape finished."""
        return None if self.health.last_scrape is None else self.health.up


@dataclass(slots=True)
class _Progress:
    wire: int = 0


# A debug=0 profile of a typical service is a few KB compressed and gunzips in tens of
# microseconds: less than a hop to a worker thread and back, which at 1,000 targets also
# queued behind the pipeline's work (p99 of a debug=0 scrape 160 ms, of debug=1 20 ms).
# Bigger bodies still gunzip off the event loop.
INLINE_GUNZIP = 32 * 1024


class Scraper:
    """Scrapes targets on a schedule and hands every scheduled result (the goroutine
    profile and the goroutineleak profile, ok or not) to `on_result`."""

    def __init__(self, settings: ScrapeSettings, on_result: OnResult) -> None:
        self.settings = settings
        self._on_result = on_result
        self.policy = CapturePolicy(settings.capture())
        self._states: dict[str, _State] = {}
        self._dying: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._in_flight = 0
        self._results: Counter[tuple[ScrapeKind, ScrapeStatus]] = Counter()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is not None:
            return
        # force_close: an idle keep-alive connection is a parked goroutine in the target's
        # own dump (net/http.(*conn).serve); a fresh connection per scrape leaves none.
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # we gunzip ourselves, under the size cap
            timeout=aiohttp.ClientTimeout(total=None),  # the deadline is asyncio.timeout
            headers={"User-Agent": "grprof", "Accept-Encoding": "gzip"},
        )
        for state in self._states.values():
            self._launch(state)

    async def stop(self) -> None:
        tasks = [s.task for s in self._states.values() if s.task is not None]
        tasks += list(self._dying)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in self._states.values():
            state.task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- targets ---------------------------------------------------------------------------

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Make `targets` the scraped set: new names start, missing ones stop, a changed
        URL or auth restarts; label-only changes keep the schedule. Cheap when unchanged."""
        wanted: dict[str, Target] = {}
        for target in targets:
            check_target(target)
            if target.name in wanted:
                raise SettingError(f"target {target.name!r}", "name", "appears twice")
            wanted[target.name] = target
        for name in [n for n in self._states if n not in wanted]:
            self._retire(self._states.pop(name))
        for name, target in wanted.items():
            old = self._states.get(name)
            if old is not None and (old.target.url, old.target.auth) == (target.url, target.auth):
                old.target = target
                continue
            if old is not None:
                self._retire(old)
            state = _State(target, capture=CaptureState(offset=offset_for(name)))
            self._states[name] = state
            if self._session is not None:
                self._launch(state)

    def targets(self) -> list[Target]:
        return [s.target for s in self._states.values()]

    def note_goroutines(self, name: str, count: int) -> None:
        """The consumer's goroutine count for `name` (gates debug=2 captures)."""
        state = self._states.get(name)
        if state is not None:
            state.goroutines = state.capture.goroutines = count

    def note_findings(self, name: str, findings: Iterable[FindingLike]) -> CaptureReason:
        """The findings of the consumer's latest detection pass over `name`: a new suspect or a
        growth-based verdict makes a later scheduled scrape an extra debug=2 (rate-limited).
        Returns the extra asked for, if any."""
        state = self._states.get(name)
        return "" if state is None else self.policy.findings(state.capture, findings)

    # -- on demand -------------------------------------------------------------------------

    async def capture(self, name: str) -> ScrapeResult:
        """One debug=2 request (it stops the target's world while it runs).

        Refused (status "refused", nothing sent) while the target's goroutine count is
        unknown or above `debug2_max_goroutines`. The result is returned, not handed to
        `on_result`: the caller decides what to do with it (serve stores it through its
        own on_result). It is counted in `stats()` like every request, and as the target's
        latest debug=2 by the policy's rate limit."""
        state = self._states.get(name)
        if state is None:
            raise ValueError(f"unknown target {name!r}")
        why = self.policy.refusal(state.capture)
        if why is not None:
            return ScrapeResult(
                target=name,
                kind="debug=2",
                started=_now(),
                duration=0.0,
                status="refused",
                error=f"{name}: debug=2 capture refused: {why}",
                reason="demand",
            )
        decision = Decision("debug=2", "demand")
        asked = asyncio.get_running_loop().time()
        result = await self._request(state, decision, due=None)
        self.policy.observed(state.capture, decision, result.status == "ok", asked, scheduled=False)
        return result

    # -- monitoring ------------------------------------------------------------------------

    def lag(self, name: str) -> float:
        """Seconds between when the last scheduled scrape of `name` was due and when its
        request started (waits for the concurrency limit included)."""
        return self._state(name).lag

    def status(self, name: str) -> TargetStatus:
        s = self._state(name)
        last = s.last
        return TargetStatus(
            name=name,
            url=s.target.url,
            up=s.up,
            last_status=last.status if last else None,
            last_error=last.error if last else "",
            last_scrape=last.started if last else None,
            last_success=s.health.last_success,
            failures=s.failures,
            goroutines=s.goroutines,
            leak_profile=False if s.leak_missing else (True if s.leak_seen else None),
            lag=s.lag,
            scrapes=s.scrapes,
            debug2=dict(s.capture.taken),
        )

    def stats(self) -> ScraperStats:
        states = self._states.values()
        return ScraperStats(
            targets=len(self._states),
            up=sum(1 for s in states if s.up),
            down=sum(1 for s in states if s.up is False),
            in_flight=self._in_flight,
            max_lag=max((s.lag for s in states), default=0.0),
            results=dict(self._results),
        )

    # -- the per-target loop ---------------------------------------------------------------

    def _state(self, name: str) -> _State:
        state = self._states.get(name)
        if state is None:
            raise ValueError(f"unknown target {name!r}")
        return state

    def _launch(self, state: _State) -> None:
        state.task = asyncio.get_running_loop().create_task(
            self._loop(state), name=f"grprof-scrape:{state.target.name}"
        )

    def _retire(self, state: _State) -> None:
        if state.task is not None:
            state.task.cancel()
            self._dying.add(state.task)
            state.task.add_done_callback(self._dying.discard)
            state.task = None

    async def _loop(self, state: _State) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        # The target's grid: slots `grid0 + k*interval`, at a stable phase per name (same
        # in every run and replica), so that many targets spread over the interval.
        grid0 = loop.time() + (phase(state.target.name, s.interval) - time.time()) % s.interval
        slot = grid0
        due = jittered(slot, s.jitter * s.interval)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            decided = loop.time()
            decision = self.policy.next_scrape(state.capture, decided)
            result = await self._request(state, decision, due=due)
            ok = self._account(state, result)
            self.policy.observed(state.capture, decision, ok, decided, state.goroutines)
            await self._deliver(result)
            if ok and self._leak_due(state):
                await self._scrape_leak(state)
            if ok and leak_probe_due(state.ok_scrapes, s.memstats_every, missing=state.memstats_missing):
                await self._scrape_memstats(state)
            now = loop.time()
            if ok:
                # The next slot of the grid; missed slots are skipped, not caught up on.
                slot = _next_slot(grid0, s.interval, slot + s.interval, now)
                due = jittered(slot, s.jitter * s.interval)
            else:
                # Backoff from the end of the failed attempt; jitter shortens, so the cap holds.
                delay = min(s.interval * 2 ** (state.failures - 1), s.backoff_max)
                slot = due = now + delay * (1 - random.uniform(0, s.jitter))

    def _leak_due(self, state: _State) -> bool:
        return leak_probe_due(state.ok_scrapes, self.settings.leak_every, missing=state.leak_missing)

    async def _scrape_leak(self, state: _State) -> None:
        result = await self._request(state, Decision("goroutineleak", ""), due=None)
        if result.status == "not_found":
            state.leak_missing = True  # for this target's lifetime in this process
            log.info("%s: no goroutineleak profile (404); not asking again", state.target.name)
        elif result.status == "ok":
            state.leak_seen = True
        await self._deliver(result)

    async def _scrape_memstats(self, state: _State) -> None:
        """The runtime's stack figures for the cost of findings (docs/owners.md#cost): optional
        like goroutineleak, asked for at the same rhythm, never again after a 404."""
        result = await self._request(state, Decision("memstats", ""), due=None)
        if result.status == "not_found":
            state.memstats_missing = True
            log.info("%s: no /debug/pprof/heap (404); stack cost stays a lower bound", state.target.name)
        await self._deliver(result)

    def _account(self, state: _State, result: ScrapeResult) -> bool:
        """Update the target's health from a scheduled scrape; True when it succeeded."""
        name = state.target.name
        state.scrapes += 1
        state.last = result
        was_up = state.up
        state.health.observe(result.kind, result.status, result.started, result.error)
        ok = result.status == "ok"
        if ok:
            if was_up is False:
                log.info("%s: up again after %d failed scrapes", name, state.failures)
            state.ok_scrapes += 1
            state.failures = 0
            count = goroutine_count(result)
            if count is not None:
                state.goroutines = count
        else:
            if state.failures == 0:
                log.warning("%s", result.error)
            state.failures += 1
        return ok

    async def _deliver(self, result: ScrapeResult) -> None:
        try:
            await self._on_result(result)
        except Exception:
            log.exception("%s: on_result failed for a %s scrape", result.target, result.kind)

    # -- one request -----------------------------------------------------------------------

    async def _request(self, state: _State, decision: Decision, due: float | None) -> ScrapeResult:
        """One request under the target's lock (never two at once per target) and the
        global concurrency limit; `due` (loop time) is recorded as the lag when given."""
        kind = decision.kind
        async with state.lock, self._sem:
            if due is not None:
                state.lag = max(0.0, asyncio.get_running_loop().time() - due)
            self._in_flight += 1
            try:
                result = await self.fetch(state.target, kind)
            finally:
                self._in_flight -= 1
        self._results[kind, result.status] += 1
        result.reason = decision.reason
        return result

    async def fetch(self, target: Target, kind: ScrapeKind) -> ScrapeResult:
        """GET one profile of `target` now, with every cap; never raises for the target's
        misbehaviour (the result's status and error say what happened)."""
        if self._session is None:
            raise RuntimeError("the scraper is not started")
        url = (
            target.url.rstrip("/") + self.settings.memstats_path
            if kind == "memstats"
            else profile_url(target.url, kind, self.settings.format)
        )
        started, t0 = _now(), time.monotonic()
        progress = _Progress()
        status: ScrapeStatus = "ok"
        body, http_status, error = b"", None, ""
        plain: bytes | None = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                http_status, body = await self._get(self._session, target, url, progress)
            if body.startswith(GZIP_MAGIC):  # debug=0, or anything a parser would gunzip
                cap = self.settings.max_response
                if len(body) <= INLINE_GUNZIP:
                    plain = gunzip_checked(body, cap)
                else:
                    plain = await asyncio.to_thread(gunzip_checked, body, cap)
        except FetchError as stop:
            status, http_status, error = stop.status, stop.http_status or http_status, str(stop)
        except TimeoutError:
            got = f" ({progress.wire} bytes received)" if progress.wire else ""
            status, error = "timeout", f"timed out after {self.settings.timeout:g}s{got}"
        except aiohttp.ClientResponseError as exc:
            status, error = "http_error", f"bad HTTP response: {exc.message or exc}"
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            status, error = "unreachable", _describe(exc)
        except Exception as exc:  # whatever a hostile target provokes, the loop must go on
            log.exception("%s: unexpected error scraping %s", target.name, url)
            status, error = "unreachable", f"unexpected error: {_describe(exc)}"
        duration = time.monotonic() - t0
        return ScrapeResult(
            target=target.name,
            kind=kind,
            started=started,
            duration=duration,
            status=status,
            bytes=progress.wire,
            body=body if status == "ok" else b"",
            plain=plain if status == "ok" else None,
            http_status=http_status,
            error=_one_line(f"{target.name}: GET {url}: {error}") if error else "",
        )

    async def _get(
        self, session: aiohttp.ClientSession, target: Target, url: str, progress: _Progress
    ) -> tuple[int, bytes]:
        headers = auth_headers(target.auth)
        tls = ssl_options(target.auth)
        current = URL(url)
        origin = _origin(current)
        for hop in range(MAX_REDIRECTS + 1):
            async with session.get(current, headers=headers, ssl=tls, allow_redirects=False) as resp:
                if resp.status in _REDIRECT_CODES:
                    current = _redirect_target(resp, current, origin)
                    if hop == MAX_REDIRECTS:
                        raise FetchError("redirect", f"more than {MAX_REDIRECTS} redirects", resp.status)
                    continue
                if resp.status == 404:
                    raise FetchError("not_found", f"HTTP 404{await _snippet(resp)}", 404)
                if not 200 <= resp.status < 300:
                    raise FetchError("http_error", f"HTTP {resp.status}{await _snippet(resp)}", resp.status)
                return resp.status, await read_capped(resp, self.settings.max_response, progress)
        raise AssertionError("the redirect loop returns or raises")


# -- helpers (also used by discovery for http_sd) ----------------------------------------


def check_target(target: Target) -> None:
    """`SettingError` (a ValueError) unless the target can be scraped: http(s) base URL, one
    auth kind."""
    url = URL(target.url)
    subject = f"target {target.name!r}"
    if url.scheme not in ("http", "https") or not url.host:
        raise SettingError(subject, "url", f"{target.url!r} is not an http:// or https:// URL")
    if url.query_string or url.fragment:
        raise SettingError(subject, "url", f"{target.url!r} must not have a query or fragment")
    auth = target.auth
    if auth.bearer_token_file and auth.basic_username:
        raise SettingError(subject, "auth", "use a bearer token or basic auth, not both")
    if auth.basic_username and ":" in auth.basic_username:
        raise SettingError(subject, "auth", "a basic auth username cannot contain ':'")
    if auth.key_file and not auth.cert_file:
        raise SettingError(subject, "auth", "a TLS key file needs a cert file")


def profile_url(base: str, kind: GoroutineKind, fmt: str = "debug=1") -> str:
    """`base` + the pprof path of `kind`; goroutineleak uses the scrape format's level."""
    profile, level = {
        "debug=1": ("goroutine", 1),
        "debug=0": ("goroutine", 0),
        "debug=2": ("goroutine", 2),
        "goroutineleak": ("goroutineleak", 0 if fmt == "debug=0" else 1),
    }[kind]
    return f"{base.rstrip('/')}/debug/pprof/{profile}?debug={level}"


def goroutine_count(result: ScrapeResult) -> int | None:
    """The goroutine count a text profile states (debug=1) or shows (debug=2), cheaply; None
    for a failed request and for debug=0 (protobuf: the consumer parses it)."""
    if result.status != "ok":
        return None
    body = result.body
    if result.kind == "debug=1":
        total = _TOTAL_RE.match(body[:64])
        return int(total.group(1)) if total is not None else None
    if result.kind == "debug=2" and _DEBUG2_START.match(body[:64]):
        return body.count(_DEBUG2_HEADER) + 1
    return None


TICK = 0.25
"""Seconds: a scheduled scrape starts on a multiple of it on the event loop's clock when its
jitter window holds one (`jittered`), so the scrapes due within a quarter of a second start
together and the loop wakes once for them, not once each. Each wake-up of an otherwise idle
process costs more than the work it does (the interpreter's caches are cold again): at 1,000
targets every 15 s, the scraper alone took 0.08 to 0.10 of a core with every scrape started
on its own and 0.04 on ticks (benchmarks/scraper.py, docs/performance.md)."""


HEADROOM = TICK / 2
"""Seconds at the end of a jitter window whose ticks are not used (`jittered`): a scrape due
there would start later than its jitter allows whenever the loop runs late, as it does by a
few milliseconds when the ~17 requests of a tick start together at 1,000 targets (31 to 45 of
20,000 scrapes were late, by up to 0.22 s, with every tick of the window used; 2 to 4 with
this headroom: docs/performance.md)."""


def jittered(slot: float, spread: float) -> float:
    """When to scrape for a grid `slot`: at random in [slot, slot + spread] (the jitter), on a
    `TICK` of [slot, slot + spread - HEADROOM] when that holds one (a short jitter may not:
    then anywhere in the window)."""
    first = math.ceil(slot / TICK)
    last = math.floor((slot + spread - HEADROOM) / TICK)
    if first > last:
        return slot + random.uniform(0, spread)
    return max(slot, random.randint(first, last) * TICK)


def phase(name: str, interval: float) -> float:
    """A stable offset in [0, interval) for a target name (MD5: the same in every process)."""
    digest = hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval


def auth_headers(auth: Auth) -> dict[str, str]:
    """Authorization header from the secret files, read now (so rotated secrets apply)."""
    if auth.bearer_token_file:
        token = _read_secret(auth.bearer_token_file, "bearer token")
        return {"Authorization": f"Bearer {token.strip()}"}
    if auth.basic_username:
        password = ""
        if auth.basic_password_file:
            password = _read_secret(auth.basic_password_file, "basic auth password").rstrip("\r\n")
        pair = f"{auth.basic_username}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


def ssl_options(auth: Auth) -> ssl.SSLContext | bool:
    """`True` (default verification) or a context for a custom CA / client cert /
    insecure; contexts are cached until one of their files changes."""
    if not (auth.ca_file or auth.cert_file or auth.insecure_skip_verify):
        return True
    files = (auth.ca_file, auth.cert_file, auth.key_file)
    stamps = tuple(_mtime(f) for f in files)
    try:
        return _ssl_context(*files, auth.insecure_skip_verify, stamps)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise FetchError("unreachable", f"TLS settings: {_describe(exc)}") from exc


@functools.lru_cache(maxsize=256)
def _ssl_context(
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    insecure: bool,
    _stamps: tuple[int, ...],
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def read_capped(resp: aiohttp.ClientResponse, limit: int, progress: _Progress | None = None) -> bytes:
    """Read the body, gunzipping a gzip Content-Encoding (grprof.collect.fetch.Gunzip), and
    stop with `too_large` as soon as the received or the decompressed bytes pass `limit`."""
    progress = progress if progress is not None else _Progress()
    length = resp.content_length
    if length is not None and length > limit:
        raise too_large(f"Content-Length {length}", limit, resp.status)
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise FetchError("http_error", f"unsupported Content-Encoding {encoding!r}", resp.status)
    gunzip = (
        Gunzip(limit, members="one", what="decompressed response") if encoding in ("gzip", "x-gzip") else None
    )
    out = bytearray()
    try:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            progress.wire += len(chunk)
            if progress.wire > limit:
                raise too_large("response", limit, resp.status)
            if gunzip is None:
                out += chunk
            else:
                for piece in gunzip.feed(chunk):
                    out += piece
        if gunzip is not None:
            gunzip.close("Content-Encoding")
    except FetchError as e:
        resp.close()
        e.http_status = e.http_status or resp.status
        raise
    return bytes(out)


def _redirect_target(resp: aiohttp.ClientResponse, current: URL, origin: tuple[str, str, int]) -> URL:
    location = resp.headers.get("Location")
    if not location:
        raise FetchError("redirect", f"HTTP {resp.status} without a Location", resp.status)
    try:
        nxt = current.join(URL(location))
        same = _origin(nxt) == origin
    except ValueError as exc:
        raise FetchError(
            "redirect", f"HTTP {resp.status} to a bad Location {location!r}", resp.status
        ) from exc
    if not same:
        raise FetchError("redirect", f"redirected off the target to {nxt.origin()}", resp.status)
    return nxt


def _origin(url: URL) -> tuple[str, str, int]:
    return url.scheme, (url.host or "").lower(), url.port or 0


async def _snippet(resp: aiohttp.ClientResponse) -> str:
    """The start of an error body (e.g. Go's "Unknown profile"), for the message."""
    try:
        text = (await resp.content.read(200)).decode("utf-8", "replace").strip()
    except (aiohttp.ClientError, OSError):
        return ""
    return f": {text}" if text and text.isprintable() else ""


def _next_slot(grid0: float, interval: float, wanted: float, now: float) -> float:
    """The grid slot nearest to `wanted` (after a backoff `wanted` is off the grid), or
    the first one from `now` when that is past: missed slots are skipped."""
    slot = grid0 + round((wanted - grid0) / interval) * interval
    if slot >= now:
        return slot
    # Tolerance: float error must never skip a slot.
    return grid0 + math.ceil((now - grid0) / interval - 1e-6) * interval


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError("unreachable", f"cannot read the {what} file: {_describe(exc)}") from exc


def _mtime(path: str | None) -> int:
    if not path:
        return 0
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
