"""Each target's scrapes, one after the other: parse → window → store → detect.

For every result the scraper delivers: the body is parsed (in a worker thread), the snapshot
joins the target's detection window, the scrape and its snapshot are stored in one
transaction, the detector runs over the window and the findings are synced to the store; the
target's health (`grprof.collect.health`) and what detection found go to the replica's
runtime, which the API and `/metrics` read. Nothing here knows the configuration: the
supervisor (`grprof.serve`) hands in the rules and the SLAs, and the store and scraper.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from grprof.collect.fetch import GZIP_MAGIC, FetchError, gunzip
from grprof.collect.model import ScrapeResult
from grprof.collect.scraper import Scraper
from grprof.detect.detector import Options
from grprof.detect.owners import Owners
from grprof.detect.rules import RuleSet
from grprof.detect.sla import SLA, SLAState, evaluate
from grprof.errors import GrprofError, ParseError
from grprof.formats import parse_chunks
from grprof.formats.memstats import parse_runtime_stats
from grprof.model import Snapshot
from grprof.redact import Redactor
from grprof.server.runtime import Runtime, TargetRuntime
from grprof.serving.judge import Judgement, judge_window
from grprof.serving.window import Window
from grprof.sources import DEFAULT_MAX_SIZE
from grprof.store import ScrapeRecord, Store

log = logging.getLogger("grprof.serve")

SLA_TTL = 60.0
RAW_KEPT_FOR = frozenset({"demand", "suspect"})
"""debug=2 captures whose raw bytes are stored (with leak profiles): asked for by a person, or
taken when a suspect appeared. The routine ones (`every`, `format`, `growth`) are stored as
groups only: at one per minute per target, their bytes would flood `retention.raw_budget`."""


def parse_payload(result: ScrapeResult) -> Snapshot:
    """The scrape's snapshot. A debug=0 body is gzip (the profile.proto as net/http/pprof
    sends it): the scraper's size check gunzipped it (`plain`); gunzipped here otherwise (a
    result made without the scraper) under `load()`'s cap, and cut or corrupt gzip is a
    `ParseError` that says so."""
    source = f"{result.target} {result.kind}"
    body = result.plain if result.plain is not None else result.body
    if body.startswith(GZIP_MAGIC):
        try:
            body = gunzip(body, DEFAULT_MAX_SIZE)
        except FetchError as e:
            raise ParseError(source, str(e)) from None
    # The window's `SignatureCache` has most stacks' signatures: the scanner need not hash them.
    snaps = parse_chunks([body], source, signatures=False)
    snap = snaps[0]
    snap.mtime = result.started
    return snap


def scrape_record(result: ScrapeResult) -> ScrapeRecord:
    return ScrapeRecord(
        result.target,
        result.kind,
        result.started,
        result.duration,
        result.status,
        result.bytes,
        result.error,
    )


@dataclass(frozen=True, slots=True)
class _Done:
    """What `Pipeline._process` hands back to the event loop."""

    result: ScrapeResult
    """The scrape, a `parse_error` when its body did not parse."""
    snap: Snapshot | None = None
    judged: Judgement | None = None
    sid: int | None = None


class Pipeline:
    """Every target's window, and what each scrape of a target goes through (`on_result`)."""

    def __init__(
        self,
        runtime: Runtime,
        rules: RuleSet,
        sla_for: Callable[[str], SLA | None],
        owners: Owners | None = None,
        memory_limit: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.runtime = runtime
        self.windows: dict[str, Window] = {}
        self.store: Store | None = None
        self.scraper: Scraper | None = None
        self.configure(rules, sla_for, owners, memory_limit, redactor)

    def configure(
        self,
        rules: RuleSet,
        sla_for: Callable[[str], SLA | None],
        owners: Owners | None = None,
        memory_limit: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        """A configuration's rules, SLAs (a target's, by name), owners (docs/owners.md), memory
        limit and label redaction; every target's SLA is evaluated again."""
        self.rules, self.sla_for, self.owners = rules, sla_for, owners
        self.memory_limit = memory_limit
        # Redaction applies to every snapshot before it is stored or judged; new rules to new
        # snapshots only: what is stored stays as it was stored.
        self.redactor = redactor
        for w in self.windows.values():
            w.sla = None

    def store_or_fail(self) -> Store:
        if self.store is None:
            raise RuntimeError("store not open")
        return self.store

    # -- windows ---------------------------------------------------------------------------

    async def open_window(self, name: str) -> None:
        """A target's window, rebuilt from its stored snapshots (a restart continues where the
        last process stopped); nothing when it has one."""
        if name in self.windows:
            return
        w = Window.empty()
        try:
            for s in await asyncio.to_thread(
                self.store_or_fail().recent_snapshots, name, w.snapshots.maxlen or 40
            ):
                w.add(s)
        except Exception as e:  # a corrupt history must not stop scraping
            log.warning("target %s: cannot restore its history: %s", name, e)
        self.windows[name] = w

    def close_window(self, name: str) -> None:
        self.windows.pop(name, None)

    # -- one scrape ------------------------------------------------------------------------

    async def on_result(self, result: ScrapeResult, *, wait: bool = False) -> int | None:
        """Parse, store and judge one scrape. With `wait`, return once it is stored, with the
        stored snapshot's id (None when the scrape gave none); without, the write is queued
        for the store's next batch (`grprof.store.commits`) and None returned."""
        self.runtime.observe_scrape(result)
        rt = self.runtime.targets.get(result.target)
        if rt is None:
            return None
        if result.kind == "memstats":
            self.observe_stats(rt, result)
            return None
        window = self.windows.setdefault(result.target, Window.empty())
        opts = await self._options(result.target, rt, window) if result.status == "ok" else None
        # Parse, window, detection and store in one worker-thread hop: each hop back to the
        # event loop is a wake-up through its self-pipe, and at 1,000 targets the scrape's
        # four hops were some 8 % of the daemon's busy samples.
        done = await asyncio.to_thread(self._process, result, window, opts, wait)
        result = done.result
        rt.observe(result.kind, result.status, result.started, result.error)
        if result.kind == "goroutineleak" and result.status in ("ok", "not_found"):
            rt.leak_profile = result.status == "ok"
        if done.snap is None or done.judged is None:
            return None
        if result.kind != "goroutineleak":
            rt.goroutines = done.snap.total
            if self.scraper is not None:
                self.scraper.note_goroutines(result.target, done.snap.total)
                rt.scrape_lag = self.scraper.lag(result.target)
        self._judged(result.target, rt, window, done.judged)
        return done.sid

    def _process(self, result: ScrapeResult, window: Window, opts: Options | None, wait: bool) -> _Done:
        """A scrape's work off the event loop: parse (a body that does not parse is a
        `parse_error` scrape), redact, add to the window, judge, and store the scrape, its
        snapshot and the findings in one transaction. A target's scrapes come one after the
        other, so nothing else touches its window meanwhile."""
        store = self.store_or_fail()
        snap = None
        if result.status == "ok":
            try:
                snap = parse_payload(result)
                if self.redactor is not None:
                    self.redactor.apply(snap)
            except GrprofError as e:
                result = replace(result, status="parse_error", error=str(e))
        rec = scrape_record(result)
        if snap is None or opts is None:
            store.record_scrape(rec, wait=wait)
            return _Done(result)
        # Raw bytes for the rarer, richer profiles (leak profiles, debug=2 captures asked for or
        # taken for a new suspect): what a person wants to download later; retention keeps them
        # within `retention.raw_budget`.
        keep = result.kind == "goroutineleak" or (result.kind == "debug=2" and result.reason in RAW_KEPT_FOR)
        if self.redactor is not None and result.kind != "debug=2":
            keep = False  # a leak profile's text carries the raw labels; debug=2 text has none
        # Into the window first: it swaps the snapshot's stacks for the copies earlier snapshots
        # share, before anything (the store) aggregates and memoizes groups on them.
        window.add(snap)
        latest = window.snapshots[-1] if window.snapshots else None
        # serving.judge: the one way to judge a window (`watch` too); no `inconclusive` findings.
        j = judge_window(window.all(), latest, opts)
        raw = result.body if keep else None
        sid = store.add_scrape(rec, snap, raw, j.detection.findings, wait=wait)
        return _Done(result, snap, j, sid)

    def observe_stats(self, rt: TargetRuntime, result: ScrapeResult) -> None:
        """A memstats scrape: the stack figures the next detection runs cost findings with. It
        stores nothing and says nothing about health; unreadable figures keep the last ones."""
        if result.status != "ok":
            return
        try:
            stats = parse_runtime_stats(result.body, f"{result.target}: runtime figures")
            if stats.goroutines is None and rt.goroutines:
                # A heap profile has no goroutine count: pair it with the goroutine scrape it
                # follows (milliseconds apart), not with whatever later snapshot is judged, or
                # a growing target's average would shrink by the growth of one interval.
                stats = replace(stats, goroutines=rt.goroutines)
            rt.runtime_stats = stats
        except GrprofError as e:
            log.warning("target %s: %s", result.target, e)

    async def _options(self, name: str, rt: TargetRuntime, window: Window) -> Options:
        return Options(
            rules=self.rules,
            sla_state=await self._sla(name, window),
            owners=self.owners,
            memory_limit=self.memory_limit,
            runtime_stats=rt.runtime_stats,
        )

    def _judged(self, name: str, rt: TargetRuntime, window: Window, j: Judgement) -> None:
        """What the API and /metrics show of a target after its window was judged."""
        d = j.detection
        rt.findings = d.findings
        if window.snapshots:  # else a leak profile alone: the latest snapshot's figures stay
            rt.top_groups, rt.blocked = j.top_groups, j.blocked
        rt.growth_per_minute = j.growth_per_minute
        if self.scraper is not None:
            # A new suspect, or a verdict resting on growth, makes a coming scrape a debug=2
            # (grprof.collect.policy): ids tell a load ramp from a leak.
            self.scraper.note_findings(name, d.findings)

    async def _sla(self, name: str, window: Window) -> SLAState:
        loop = asyncio.get_running_loop()
        if window.sla is None or loop.time() - window.sla_at > SLA_TTL:
            window.sla = await asyncio.to_thread(evaluate, self.sla_for(name))
            window.sla_at = loop.time()
        return window.sla

    async def capture(self, name: str) -> dict[str, Any]:
        """On-demand debug=2 capture (from the API): scrape, store, detect."""
        if self.scraper is None or name not in self.runtime.targets:
            raise KeyError(name)
        result = await self.scraper.capture(name)
        if result.status != "ok":
            return {"status": result.status, "error": result.error}
        # Its own id, not the target's newest: a scheduled scrape may store one meanwhile.
        sid = await self.on_result(result, wait=True)
        return {"status": "ok", "snapshot": sid, "bytes": result.bytes}


__all__ = ["Pipeline", "parse_payload"]
