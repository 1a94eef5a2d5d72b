"""The scrape engine against fake misbehaving targets and a real Go service.

The fakes (tests/misbehaving.py) run in a thread of this process, so their request
timestamps share the scraper's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import logging
import math
import pathlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from gobuild import build_goapp, run_goapp
from misbehaving import FIXTURES, FakeTargets, Hit, TLSFiles, fake_targets, make_tls

from grprof.collect.model import Auth, ScrapeKind, ScrapeResult, Target
from grprof.collect.scraper import (
    HEADROOM,
    TICK,
    Scraper,
    ScraperStats,
    ScrapeSettings,
    TargetStatus,
    goroutine_count,
    jittered,
    phase,
)

# Every test here checks when scrapes happen: run them alone (see the Makefile).
pytestmark = pytest.mark.timing

MIB = 1 << 20
FIXTURE_DEBUG1 = (FIXTURES / "goroutine.debug1.txt").read_bytes()
FIXTURE_DEBUG2 = (FIXTURES / "goroutine.debug2.txt").read_bytes()


@dataclass
class Recorder:
    """on_result: every result with the target's lag when it arrived."""

    results: list[ScrapeResult] = field(default_factory=list)
    lags: dict[str, list[float]] = field(default_factory=dict)
    scraper: Scraper | None = None
    first: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, result: ScrapeResult) -> None:
        self.results.append(result)
        if self.scraper is not None and result.kind != "goroutineleak":
            self.lags.setdefault(result.target, []).append(self.scraper.lag(result.target))
        self.first.set()

    def of(self, target: str, kind: str = "debug=1") -> list[ScrapeResult]:
        return [r for r in self.results if r.target == target and r.kind == kind]

    def scheduled(self, target: str) -> list[ScrapeResult]:
        """The scheduled scrapes of `target`: the cheap profile, or a debug=2 in its place."""
        return [r for r in self.results if r.target == target and r.kind != "goroutineleak"]


async def scrape_for(
    settings: ScrapeSettings,
    targets: list[Target],
    seconds: float,
    during: Callable[[Scraper], Awaitable[None]] | None = None,
) -> tuple[Recorder, Scraper, float]:
    """Run a scraper for `seconds`; return what it delivered and the wall time it started."""
    rec = Recorder()
    scraper = Scraper(settings, rec)
    rec.scraper = scraper
    scraper.set_targets(targets)
    started = time.time()
    await scraper.start()
    try:
        if during is None:
            await asyncio.sleep(seconds)
        else:
            await asyncio.gather(asyncio.sleep(seconds), during(scraper))
    finally:
        await scraper.stop()
    return rec, scraper, started


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def main_hits(ft: FakeTargets, behaviour: str) -> list[Hit]:
    """The goroutine profile requests a target got (scheduled ones: debug=1, or debug=2 in place)."""
    return ft.hits_of(behaviour, "goroutine")


@contextlib.contextmanager
def rss_sampler() -> Iterator[list[int]]:
    """Sample this process' resident memory (bytes) every 10 ms while the block runs."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for line in pathlib.Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append(int(line.split()[1]) * 1024)
            stop.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def ft() -> Iterator[FakeTargets]:
    with fake_targets() as targets:
        yield targets


# -- one 10 s run: healthy targets among every kind of misbehaving one ---------------------

HEALTHY = ["healthy", "noleak", "gzip", "hop"]
EXPECTED_STATUS = {
    "never": "timeout",
    "slow": "timeout",
    "silent": "timeout",
    "huge": "too_large",
    "huge-cl": "too_large",
    "gzip-bomb": "too_large",
    "pb-bomb": "too_large",
    "loop": "redirect",
    "offsite": "redirect",
    "badloc": "redirect",
    "error500": "http_error",
    "raw": "http_error",
    "dead": "unreachable",
    "garbage": "ok",  # fetched fine: that it does not parse is the consumer's finding
}
MIXED = ScrapeSettings(interval=1.0, timeout=2.0, max_response=8 * MIB, leak_every=4)
RUN_SECONDS = 10.0


@dataclass
class MixedRun:
    rec: Recorder
    scraper: Scraper
    started: float
    ft: FakeTargets
    rss_before: int
    rss_samples: list[int]
    captures: list[ScrapeResult]


@pytest.fixture(scope="module")
def mixed(ft: FakeTargets) -> MixedRun:
    raw = {"raw": ft.raw_garbage_url, "silent": ft.silent_url, "dead": ft.dead_url}
    names = [*HEALTHY, "sluggish", *EXPECTED_STATUS]
    targets = [Target(n, raw.get(n) or ft.url(n)) for n in names]
    captures: list[ScrapeResult] = []

    async def capture_while_scraping(scraper: Scraper) -> None:
        # Three captures at once on a target answering in 0.3 s, amid its scheduled
        # scrapes: the target must still never see two requests at once.
        await asyncio.sleep(4.0)
        captures.extend(await asyncio.gather(*(scraper.capture("sluggish") for _ in range(3))))

    with rss_sampler() as samples:
        time.sleep(0.1)
        before = max(samples)
        rec, scraper, started = asyncio.run(scrape_for(MIXED, targets, RUN_SECONDS, capture_while_scraping))
    return MixedRun(rec, scraper, started, ft, before, samples, captures)


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_targets_keep_their_schedule_among_misbehaving_ones(mixed: MixedRun, name: str) -> None:
    results = mixed.rec.scheduled(name)
    assert results and all(r.status == "ok" for r in results), [r.error for r in results]
    # The capture policy at its defaults: one debug=2 in every 4 scheduled scrapes after the first.
    kinds = "".join(r.kind[-1] for r in results)
    assert kinds[0] == "1" and all(kinds[i : i + 4].count("2") == 1 for i in range(1, len(kinds) - 3)), kinds
    assert {r.reason for r in results if r.kind == "debug=2"} == {"every"}
    assert all(r.body == FIXTURE_DEBUG1 for r in results if r.kind == "debug=1")
    if name in ("healthy", "noleak"):  # (gzip and hop answer with the debug=1 fixture to anything)
        assert all(r.body == FIXTURE_DEBUG2 for r in results if r.kind == "debug=2")
    # Slots at the target's stable phase, one per interval, from the start of the run.
    first = (phase(name, MIXED.interval) - mixed.started) % MIXED.interval
    expected = math.ceil((RUN_SECONDS - first) / MIXED.interval)
    assert abs(len(results) - expected) <= 1, (len(results), expected)
    starts = [r.started.timestamp() for r in results]
    assert all(0.85 <= g <= 1.15 for g in gaps(starts)), gaps(starts)
    assert max(mixed.rec.lags[name]) < 0.3, mixed.rec.lags[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_misbehaving_targets_get_their_status(mixed: MixedRun, name: str) -> None:
    results = mixed.rec.scheduled(name)
    assert results, f"{name} was never scraped"
    assert {r.status for r in results} == {EXPECTED_STATUS[name]}, [r.error for r in results]
    failing = EXPECTED_STATUS[name] != "ok"
    if failing:
        assert all(r.error.startswith(f"{name}: GET ") and "\n" not in r.error for r in results)
        assert all(r.body == b"" for r in results)
        # Backoff: after failures at 0, ~1, ~3, ~7 s (each 2 s longer when it times out).
        assert len(results) <= 4, [r.started for r in results]
        assert mixed.scraper.status(name).up is False
        # Never a debug=2 of a target whose goroutine count was never learnt.
        assert {r.kind for r in results} == {"debug=1"}
    assert all(r.duration < MIXED.timeout + 0.3 for r in results)


def test_huge_responses_are_cut_at_the_cap_and_never_held(mixed: MixedRun) -> None:
    cap = MIXED.max_response
    for name in ("huge", "huge-cl", "gzip-bomb", "pb-bomb"):
        for r in mixed.rec.scheduled(name):
            assert r.bytes <= cap + 64 * 1024, (name, r.bytes)
            assert "cap" in r.error
    # The 200 MB target was cut off long before it could send 200 MB.
    attempts = len(mixed.rec.scheduled("huge"))
    assert mixed.ft.sent["huge"] < attempts * (cap + 16 * MIB)
    assert mixed.ft.sent["huge-cl"] < attempts * 16 * MIB  # refused on its Content-Length
    growth = max(mixed.rss_samples) - mixed.rss_before
    assert growth < 100 * MIB, f"resident memory grew by {growth / MIB:.0f} MiB"


def test_goroutineleak_every_nth_scrape_and_never_after_404(mixed: MixedRun) -> None:
    ft, every = mixed.ft, MIXED.leak_every
    main = [h.t for h in main_hits(ft, "healthy")]
    leaks = [h.t for h in ft.hits_of("healthy", "goroutineleak")]
    # Fetched right after the 1st, 5th, 9th... scrape, never in between.
    assert len(leaks) == math.ceil(len(main) / every)
    for i, t in enumerate(leaks):
        assert sum(1 for m in main if m < t) == i * every + 1
    delivered = mixed.rec.of("healthy", "goroutineleak")
    assert [r.status for r in delivered] == ["ok"] * len(leaks)
    assert delivered[0].body == (FIXTURES / "goroutineleak.debug1.txt").read_bytes()
    # 404 once, then never asked again.
    assert len(main_hits(ft, "noleak")) >= 8
    assert len(ft.hits_of("noleak", "goroutineleak")) == 1
    assert [r.status for r in mixed.rec.of("noleak", "goroutineleak")] == ["not_found"]
    assert mixed.scraper.status("noleak").leak_profile is False
    assert mixed.scraper.status("healthy").leak_profile is True
    # Failing targets are not asked for the leak profile.
    assert not ft.hits_of("error500", "goroutineleak")


def test_never_two_requests_to_one_target_at_once(mixed: MixedRun) -> None:
    assert [c.status for c in mixed.captures] == ["ok"] * 3
    assert all(c.body == FIXTURE_DEBUG2 for c in mixed.captures)
    assert len(mixed.ft.hits_of("sluggish")) >= 10
    for name in ("sluggish", *HEALTHY):
        assert mixed.ft.max_concurrency[name] == 1, name


def test_stats_report_what_happened(mixed: MixedRun) -> None:
    stats = mixed.scraper.stats()
    assert stats.targets == len(HEALTHY) + 1 + len(EXPECTED_STATUS)
    assert stats.up == len(HEALTHY) + 2  # + sluggish and garbage
    assert stats.results["debug=1", "timeout"] == sum(
        len(mixed.rec.of(n)) for n in ("never", "slow", "silent")
    )
    scheduled = sum(1 for r in mixed.rec.results if r.kind == "debug=2" and r.status == "ok")
    assert stats.results["debug=2", "ok"] == 3 + scheduled  # the captures, and the policy's
    status = mixed.scraper.status("healthy")
    assert status.up and status.failures == 0 and status.goroutines == 72
    assert status.debug2 == {"every": len(mixed.rec.of("healthy", "debug=2"))}
    assert mixed.scraper.status("sluggish").debug2["demand"] == 3
    assert status.last_success is not None and status.last_error == ""
    dead = mixed.scraper.status("dead")
    assert dead.failures == len(mixed.rec.of("dead")) and "Cannot connect" in dead.last_error


# -- backoff ------------------------------------------------------------------------------


def test_backoff_grows_on_failures_and_resets_on_recovery() -> None:
    settings = ScrapeSettings(interval=0.25, timeout=1.0, jitter=0.0, backoff_max=1.0, leak_every=0)
    with fake_targets() as ft:

        async def recover_later(scraper: Scraper) -> None:
            await asyncio.sleep(4.0)
            assert scraper.status("flaky").failures >= 5
            ft.failing = False

        rec, scraper, _ = asyncio.run(
            scrape_for(settings, [Target("flaky", ft.url("flaky"))], 6.5, recover_later)
        )
        times = [h.t for h in main_hits(ft, "flaky")]
    statuses = [r.status for r in rec.scheduled("flaky")]
    n_fail = statuses.index("ok")
    assert n_fail >= 5 and set(statuses[n_fail:]) == {"ok"}, statuses
    g = gaps(times)
    # 0.25 × 2^(failures-1), capped at 1 s...
    for got, want in zip(g[:n_fail], [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0], strict=False):
        assert want - 0.02 <= got <= want + 0.15, g
    # ...and back to the interval once it answers.
    after = g[n_fail:]
    # (the first one realigns the target to its phase: half to one and a half intervals)
    assert len(after) >= 4 and 0.12 <= after[0] <= 0.4 and all(0.2 <= x <= 0.3 for x in after[1:]), after
    assert scraper.status("flaky").failures == 0 and scraper.status("flaky").up


# -- ticks ----------------------------------------------------------------------------------


def test_jittered_starts_fall_in_the_jitter_window_on_ticks() -> None:
    for slot in (0.0, 0.01, 3.37, 1234.9, 98765.432):
        got = [jittered(slot, 1.5) for _ in range(400)]
        assert all(slot <= t <= slot + 1.5 for t in got), slot
        assert all(math.isclose(t / TICK, round(t / TICK), abs_tol=1e-6) for t in got), slot
        # Every tick of the window but those in its last HEADROOM is used: the jitter still
        # spreads the scrapes, and a loop running late does not push them past the window.
        ticks = {round(t / TICK) for t in got}
        usable = range(math.ceil(slot / TICK), math.floor((slot + 1.5 - HEADROOM) / TICK) + 1)
        assert ticks == set(usable) and len(usable) >= 5, slot
        assert all(t <= slot + 1.5 - HEADROOM for t in got), slot
    # A window without a tick (jitter shorter than one): anywhere in it, never outside.
    got = [jittered(10.05, 0.1) for _ in range(200)]
    assert all(10.05 <= t <= 10.15 for t in got) and len(set(got)) > 100
    assert jittered(7.3, 0.0) == 7.3


def test_scheduled_scrapes_of_many_targets_start_on_shared_ticks() -> None:
    """With a jitter window of a second, every scheduled request reaches the targets just after
    a tick of the loop's clock (the fakes stamp requests with it): the loop wakes once for the
    scrapes due in the same quarter second. Spread at random, most would land elsewhere."""
    settings = ScrapeSettings(interval=2.0, timeout=1.0, jitter=0.5, leak_every=0, debug2_every=0)
    with fake_targets() as ft:
        targets = [Target(f"svc{i}", ft.url("healthy")) for i in range(12)]
        rec, _, _ = asyncio.run(scrape_for(settings, targets, 5.0))
        times = [h.t for h in main_hits(ft, "healthy")]
    assert len(times) >= 24 and all(r.status == "ok" for r in rec.results)
    past_tick = sorted(t % TICK for t in times)
    assert past_tick[-1] < 0.1, past_tick


# -- on-demand debug=2 --------------------------------------------------------------------


def test_capture_is_refused_above_the_goroutine_limit(ft: FakeTargets) -> None:
    settings = ScrapeSettings(
        interval=0.5, timeout=2.0, debug2_max_goroutines=50, leak_every=0, debug2_every=0
    )

    async def main() -> tuple[list[ScrapeResult], Recorder]:
        rec = Recorder()
        scraper = Scraper(settings, rec)
        scraper.set_targets([Target("svc", ft.url("healthy"))])
        await scraper.start()
        try:
            unknown = await scraper.capture("svc")  # no scrape yet: count unknown
            await asyncio.wait_for(rec.first.wait(), 5)
            above = await scraper.capture("svc")  # the fixture has 72 goroutines
            scraper.note_goroutines("svc", 10)
            allowed = await scraper.capture("svc")
            with pytest.raises(ValueError, match="unknown target 'nope'"):
                await scraper.capture("nope")
        finally:
            await scraper.stop()
        return [unknown, above, allowed], rec

    before = len(ft.hits_of("healthy", "goroutine"))
    (unknown, above, allowed), rec = asyncio.run(main())
    assert unknown.status == "refused" and "not known yet" in unknown.error
    assert above.status == "refused" and "72 goroutines, above the debug=2 limit of 50" in above.error
    assert allowed.status == "ok" and allowed.body == FIXTURE_DEBUG2
    debug2 = [h for h in ft.hits_of("healthy", "goroutine")[before:] if h.debug == "2"]
    assert len(debug2) == 1, "a refused capture must not reach the target"
    assert [r.kind for r in rec.results if r.kind == "debug=2"] == [], "captures are the caller's"


def test_scraper_health_is_the_one_health_rule(ft: FakeTargets) -> None:
    """The scraper's own up/last_success is a `TargetHealth` fed by `observe`: unknown (None)
    until the first scheduled scrape, then what `health_change` says of each."""
    settings = ScrapeSettings(interval=0.5, timeout=2.0, leak_every=0, debug2_every=0)

    Seen = tuple[TargetStatus, TargetStatus, ScraperStats]

    async def main() -> tuple[Seen, Seen]:
        rec = Recorder()
        scraper = Scraper(settings, rec)
        scraper.set_targets([Target("ok", ft.url("healthy")), Target("down", ft.url("error500"))])
        before = (scraper.status("ok"), scraper.status("down"), scraper.stats())
        await scraper.start()
        try:
            for _ in range(100):
                if len({r.target for r in rec.results}) == 2:
                    break
                await asyncio.sleep(0.05)
            after = (scraper.status("ok"), scraper.status("down"), scraper.stats())
        finally:
            await scraper.stop()
        return before, after

    (ok0, down0, stats0), (ok1, down1, stats1) = asyncio.run(main())
    assert ok0.up is None and down0.up is None and ok0.last_success is None
    assert (stats0.up, stats0.down) == (0, 0)
    assert ok1.up is True and ok1.last_success == ok1.last_scrape
    assert down1.up is False and down1.last_success is None and down1.failures >= 1
    assert (stats1.up, stats1.down) == (1, 1)


@dataclass(frozen=True)
class _Ev:
    signal: str


@dataclass(frozen=True)
class _Finding:
    id: str
    verdict: str
    evidence: tuple[_Ev, ...] = ()
    runtime_confirmed: bool = False


def test_findings_ask_for_extra_debug2_scrapes_rate_limited(ft: FakeTargets) -> None:
    settings = ScrapeSettings(interval=0.3, timeout=2.0, leak_every=0, debug2_every=0, debug2_extra_gap=1.0)
    marks: dict[str, float] = {}

    async def consumer(scraper: Scraper) -> None:
        # What serve does after each detection pass: a new suspect once, then a finding whose
        # verdict rests on growth at every pass.
        loop = asyncio.get_running_loop()
        while not rec.results:
            await asyncio.sleep(0.01)
        assert scraper.note_findings("nope", [_Finding("a", "suspect")]) == ""
        marks["suspect"] = loop.time()
        assert scraper.note_findings("svc", [_Finding("a", "suspect")]) == "suspect"
        await asyncio.sleep(1.5)
        marks["growth"] = loop.time()
        growth = _Finding("g", "leak", (_Ev("growth"),))
        while loop.time() < marks["growth"] + 3.5:
            scraper.note_findings("svc", [_Finding("a", "suspect"), growth])
            await asyncio.sleep(0.05)
        marks["end"] = loop.time()
        scraper.note_findings("svc", [])

    rec = Recorder()
    scraper = Scraper(settings, rec)
    rec.scraper = scraper

    async def main() -> None:
        scraper.set_targets([Target("svc", ft.url("healthy"))])
        await scraper.start()
        try:
            await asyncio.gather(consumer(scraper), asyncio.sleep(6.0))
        finally:
            await scraper.stop()

    asyncio.run(main())
    results = rec.scheduled("svc")
    reasons = [r.reason for r in results if r.kind == "debug=2"]
    # One for the new suspect, then one growth debug=2 per second at most (3.5 s: 3 or 4).
    assert reasons[0] == "suspect" and set(reasons[1:]) == {"growth"} and 3 <= len(reasons[1:]) <= 4, reasons
    times = [r.started.timestamp() for r in results if r.kind == "debug=2"]
    assert all(g >= 1.0 - 0.02 for g in gaps(times)), gaps(times)
    assert all(r.body == FIXTURE_DEBUG2 and r.status == "ok" for r in results if r.kind == "debug=2")
    # None once the findings went away; the rest were debug=1.
    assert times[-1] < results[-1].started.timestamp() and results[-1].kind == "debug=1"
    assert scraper.status("svc").debug2 == {"suspect": 1, "growth": len(reasons) - 1}


def test_on_result_errors_are_logged_and_do_not_stop_scraping(
    ft: FakeTargets, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ScrapeResult] = []

    async def broken(result: ScrapeResult) -> None:
        calls.append(result)
        raise RuntimeError("consumer bug")

    async def main() -> None:
        scraper = Scraper(ScrapeSettings(interval=0.3, timeout=1.0, leak_every=0), broken)
        scraper.set_targets([Target("svc", ft.url("healthy"))])
        await scraper.start()
        await asyncio.sleep(1.5)
        await scraper.stop()

    with caplog.at_level(logging.ERROR, "grprof.collect"):
        asyncio.run(main())
    assert len(calls) >= 4 and all(c.status == "ok" for c in calls)
    assert "svc: on_result failed" in caplog.text and "consumer bug" in caplog.text


# -- target set changes -------------------------------------------------------------------


def test_set_targets_starts_stops_and_restarts_by_name(ft: FakeTargets) -> None:
    settings = ScrapeSettings(interval=0.5, timeout=1.0, leak_every=0)
    a = Target("a", ft.url("healthy"))
    b = Target("b", ft.url("error500"))
    a2 = Target("a", a.url, labels={"team": "x"})  # labels only: no restart
    c = Target("c", ft.url("noleak"))
    a3 = Target("a", ft.url("garbage"), labels={"team": "x"})  # new URL: restart
    marks: dict[str, float] = {}

    async def change(scraper: Scraper) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="appears twice"):
            scraper.set_targets([a, a])
        with pytest.raises(ValueError, match="not an http"):
            scraper.set_targets([Target("x", "ftp://127.0.0.1/")])
        await spam(scraper, [a, b], 2.2)
        marks["second"] = loop.time()
        await spam(scraper, [a2, c], 2.2)
        assert scraper.targets() == [a2, c]
        marks["third"] = loop.time()
        await spam(scraper, [a3, c], 2.2)

    async def spam(scraper: Scraper, targets: list[Target], seconds: float) -> None:
        # The same list every 20 ms must not disturb anything.
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            scraper.set_targets(targets)
            await asyncio.sleep(0.02)

    before = {n: len(ft.hits_of(n)) for n in ("healthy", "error500", "noleak", "garbage")}
    asyncio.run(scrape_for(settings, [], 6.7, change))
    hits = {n: ft.hits_of(n)[before[n] :] for n in before}
    second, third = marks["second"], marks["third"]
    a_times = [h.t for h in hits["healthy"]]
    # a kept its schedule through the label change and stopped when its URL changed.
    assert 7 <= len(a_times) <= 10 and all(0.4 <= g <= 0.6 for g in gaps(a_times)), a_times
    assert max(a_times) < third + 0.05
    assert [h.t for h in hits["garbage"]] and min(h.t for h in hits["garbage"]) > third
    # b was scraped (and failed) until removed; c started when added.
    assert hits["error500"] and max(h.t for h in hits["error500"]) < second + 0.05
    assert len(hits["noleak"]) >= 6 and min(h.t for h in hits["noleak"]) > second


# -- TLS and auth -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


def fetch_all(targets: list[Target], kind: ScrapeKind = "debug=1") -> dict[str, ScrapeResult]:
    """One request to each target now, without the schedule."""

    async def main() -> dict[str, ScrapeResult]:
        scraper = Scraper(ScrapeSettings(timeout=3.0), Recorder())
        await scraper.start()
        try:
            results = await asyncio.gather(*(scraper.fetch(t, kind) for t in targets))
        finally:
            await scraper.stop()
        return {r.target: r for r in results}

    return asyncio.run(main())


def test_https_with_a_private_ca_and_client_certs(tls: TLSFiles) -> None:
    with fake_targets(tls.server_context()) as ft, fake_targets(tls.server_context(True)) as mtls:
        client = Auth(ca_file=tls.ca_cert, cert_file=tls.client_cert, key_file=tls.client_key)
        r = fetch_all(
            [
                Target("ca", ft.url("healthy"), auth=Auth(ca_file=tls.ca_cert)),
                Target("no-ca", ft.url("healthy")),
                Target("insecure", ft.url("healthy"), auth=Auth(insecure_skip_verify=True)),
                Target("mtls", mtls.url("healthy"), auth=client),
                Target("mtls-no-cert", mtls.url("healthy"), auth=Auth(ca_file=tls.ca_cert)),
                Target("bad-ca-file", ft.url("healthy"), auth=Auth(ca_file="/nonexistent/ca.pem")),
            ]
        )
    assert ft.base.startswith("https://")
    assert r["ca"].status == "ok" and r["ca"].body == FIXTURE_DEBUG1
    assert r["no-ca"].status == "unreachable" and "certificate verify failed" in r["no-ca"].error
    assert r["insecure"].status == "ok"
    assert r["mtls"].status == "ok"
    assert r["mtls-no-cert"].status in ("unreachable", "http_error"), r["mtls-no-cert"]
    assert mtls.hits_of("healthy") and len(mtls.hits_of("healthy")) == 1  # only the one with a cert got in
    assert r["bad-ca-file"].status == "unreachable" and "TLS settings" in r["bad-ca-file"].error


def test_bearer_and_basic_auth_read_their_files_at_request_time(
    tls: TLSFiles, tmp_path: pathlib.Path
) -> None:
    token, password = tmp_path / "token", tmp_path / "password"
    token.write_text("s3cret\n")
    password.write_text("pa55 word\n")
    with fake_targets(tls.server_context()) as ft:
        bearer = Target(
            "bearer", ft.url("bearer"), auth=Auth(bearer_token_file=str(token), ca_file=tls.ca_cert)
        )
        basic = Auth(basic_username="grprof", basic_password_file=str(password), ca_file=tls.ca_cert)
        targets = [
            bearer,
            Target("basic", ft.url("basic"), auth=basic),
            Target("anonymous", ft.url("bearer"), auth=Auth(ca_file=tls.ca_cert)),
            Target("no-token", ft.url("bearer"), auth=Auth(bearer_token_file=str(tmp_path / "missing"))),
        ]
        first = fetch_all(targets)
        # Rotate the token: the next request must send the new one.
        ft.bearer_token = "rotated"
        token.write_text("rotated")
        second = fetch_all([bearer])
        seen = [h.authorization for h in ft.hits_of("bearer")]
    assert first["bearer"].status == "ok" and first["basic"].status == "ok"
    assert first["anonymous"].status == "http_error" and first["anonymous"].http_status == 401
    assert first["no-token"].status == "unreachable" and "bearer token file" in first["no-token"].error
    assert second["bearer"].status == "ok"
    assert "Bearer s3cret" in seen and seen[-1] == "Bearer rotated"


# -- a real Go service --------------------------------------------------------------------


@pytest.mark.slow
def test_scrapes_a_real_go_service() -> None:
    settings = ScrapeSettings(interval=1.0, timeout=5.0, leak_every=2)
    with run_goapp("states") as (_, base):

        async def capture(scraper: Scraper) -> None:
            await asyncio.sleep(2.5)
            captured.append(await scraper.capture("states"))

        captured: list[ScrapeResult] = []
        rec, scraper, _ = asyncio.run(scrape_for(settings, [Target("states", base)], 4.5, capture))
        as_debug0 = fetch_all([Target("states", base)], "debug=0")
    results = rec.of("states")
    assert len(results) >= 3 and {r.status for r in results} == {"ok"}
    assert all(r.body.startswith(b"goroutine profile: total ") for r in results)
    total = int(results[-1].body.split(b"\n", 1)[0].rsplit(b" ", 1)[1])
    assert abs(scraper.status("states").goroutines - total) <= 2  # (the last may be a debug=2)
    last = rec.scheduled("states")[-1]
    assert scraper.status("states").goroutines == goroutine_count(last)
    # Go 1.26 without GOEXPERIMENT=goroutineleakprofile: 404, asked once.
    assert [r.status for r in rec.of("states", "goroutineleak")] == ["not_found"]
    assert "Unknown profile" in rec.of("states", "goroutineleak")[0].error
    assert captured[0].status == "ok" and captured[0].body.startswith(b"goroutine ")
    assert b"\ngoroutine 1 [" in captured[0].body  # debug=2: every goroutine, main included
    assert as_debug0["states"].status == "ok" and as_debug0["states"].body.startswith(b"\x1f\x8b")
    # Gunzipped once, by the size check, for the parser; text bodies have nothing to hand on.
    assert as_debug0["states"].plain == gzip.decompress(as_debug0["states"].body)
    assert all(r.plain is None for r in results)


@pytest.mark.slow
def test_scrapes_a_real_goroutineleak_profile() -> None:
    binary = build_goapp("states", env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary) as (_, base):
        for fmt in ("debug=1", "debug=0"):

            async def main(fmt: str = fmt) -> ScrapeResult:
                scraper = Scraper(ScrapeSettings(timeout=10.0, format=fmt), Recorder())  # type: ignore[arg-type]
                await scraper.start()
                try:
                    return await scraper.fetch(Target("states", base), "goroutineleak")
                finally:
                    await scraper.stop()

            r = asyncio.run(main())
            assert r.status == "ok", r.error
            assert r.body.startswith(b"\x1f\x8b" if fmt == "debug=0" else b"goroutineleak profile: total ")


def test_scraper_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="jitter"):
        ScrapeSettings(jitter=1.5)
    with pytest.raises(ValueError, match="backoff_max"):
        ScrapeSettings(interval=60, backoff_max=30)
    with pytest.raises(ValueError, match="format"):
        ScrapeSettings(format="debug=3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="debug2_every"):
        ScrapeSettings(debug2_every=-1)
    assert ScrapeSettings(format="debug=2").format == "debug=2"


def test_phase_is_stable_and_spread() -> None:
    assert phase("svc", 15.0) == phase("svc", 15.0)
    assert 0 <= phase("svc", 15.0) < 15.0
    spread = sorted(phase(f"svc-{i}", 1.0) for i in range(1000))
    assert spread[100] < 0.15 and spread[900] > 0.85  # roughly uniform
