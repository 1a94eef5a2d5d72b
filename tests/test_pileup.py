"""Leaks in idle waits that pile up, beside healthy ramps of connections that look the same
for a while (tests/fixtures/pileup, recorded from tests/goapps/pileup over 7 minutes).

Growth in an idle wait (a select, a read on a connection) is a load ramp as often as a leak,
so alone it makes a suspect. What tells a pile-up apart takes minutes of debug=2 snapshots
(`signals.accumulating`): none of its goroutines ever leaves, the count keeps rising, and the
oldest has waited all along, never woken. Requests without a timeout to a peer that never
answers and readers of a pipe nobody closes are that; sessions that ramp up and hold, sessions
that rise while some leave, and sessions that rise but are pinged every 2 s are not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Finding
from grprof.detect.signals import default_settings
from grprof.model import Frame, Group

FIXTURES = Path(__file__).parent / "fixtures" / "pileup"
LEAKS = ("main.sendWebhook", "main.consumeUpload")
HEALTHY = ("main.rampSession", "main.churnSession", "main.chattySession", "main.pinger")


def series(fmt: str = "debug2", upto: int | None = None, every: int = 1) -> list[grprof.Snapshot]:
    """The recording in `fmt`; with `every` > 1, debug=2 only at every `every`-th step and
    debug=1 between (as `grprof serve` mixes them)."""
    meta = json.loads((FIXTURES / "times.json").read_text())
    snaps = []
    for i, t in enumerate(meta["times"][:upto]):
        f = fmt if every == 1 or i % every == 0 else "debug1"
        s = grprof.load(FIXTURES / f"{i}.goroutine.{f}.txt")
        s.time = dt.datetime.fromtimestamp(t, dt.UTC)  # recorded when fetched (text dumps carry no time)
        snaps.append(s)
    return snaps


def _calls(frames: Sequence[Frame], function: str) -> bool:
    return any(fr.function == function for fr in frames)


def _at(d: Detection, function: str) -> Finding | None:
    """The finding whose stack, or a member's, calls `function` (the sessions' site is the
    `main.echo` they share: their callers tell them apart)."""
    for f in d.findings:
        if _calls(f.frames, function) or any(_calls(m.frames, function) for m in f.members):
            return f
    return None


def _signals(f: Finding | None) -> set[str]:
    return set() if f is None else {e.signal for e in f.evidence}


@pytest.fixture(scope="module")
def whole() -> Detection:
    return detect(series())


def test_the_recording_holds_what_the_tests_read() -> None:
    snaps = series()
    assert len(snaps) == 29
    assert snaps[-1].time - snaps[0].time >= dt.timedelta(minutes=6.5)
    groups = snaps[-1].groups()

    def group(function: str) -> Group:
        (g,) = [g for g in groups if _calls(g.frames, function)]
        return g

    # The first senders and readers have waited since the start, never woken.
    for site in LEAKS:
        assert group(site).count >= 35 and group(site).max_wait_minutes >= 4, site
    # Sessions pinged every 2 s show no wait age; the silent ones do.
    assert group("main.chattySession").max_wait_minutes == 0 and group("main.chattySession").count >= 35
    assert group("main.rampSession").count == 30 and group("main.rampSession").max_wait_minutes >= 4
    assert group("main.churnSession").count >= 25


@pytest.mark.parametrize("site", LEAKS)
def test_goroutines_that_pile_up_unwoken_are_leaks(whole: Detection, site: str) -> None:
    f = _at(whole, site)
    assert f is not None and f.verdict == "leak", f
    assert {"growth", "accumulating"} <= _signals(f)
    ev = next(e for e in f.evidence if e.signal == "accumulating")
    assert ev.data["span_minutes"] >= 5 and ev.data["to"] > ev.data["from"]
    assert "never woken" in ev.summary


@pytest.mark.parametrize("site", LEAKS)
def test_not_said_before_five_minutes(site: str) -> None:
    """Four minutes in, the same goroutines are a suspect: growth alone, a ramp's curve."""
    f = _at(detect(series(upto=17)), site)
    assert f is not None and f.verdict == "suspect" and "accumulating" not in _signals(f)


@pytest.mark.parametrize("upto", [17, 21, 25, 29])
def test_healthy_ramps_never_pile_up(upto: int) -> None:
    """A ramp that holds, a rise with sessions leaving, and sessions woken every 2 s: no
    pile-up at any length of the series, and the sessions never a leak. (The pingers, a
    `for range time.Tick` that debug=2 shows as a plain `chan receive`, are a leak by growth
    for the minute before any of them has been seen for 4 minutes, when `woken` can tell.)"""
    d = detect(series(upto=upto))
    for site in HEALTHY:
        f = _at(d, site)
        assert "accumulating" not in _signals(f), (site, f)
        if site != "main.pinger" or upto >= 21:
            assert f is None or f.verdict != "leak", (site, f)


def test_a_daemons_mixed_window_sees_the_pile_up() -> None:
    """`grprof serve` takes debug=2 at every fourth scrape: 8 of the 29 snapshots here, a
    minute apart, are enough; the sessions stay suspects."""
    d = detect(series(every=4))
    for site in LEAKS:
        f = _at(d, site)
        assert f is not None and f.verdict == "leak" and "accumulating" in _signals(f), (site, f)
    for site in HEALTHY:
        f = _at(d, site)
        assert f is None or (f.verdict != "leak" and "accumulating" not in _signals(f)), (site, f)


def test_without_ids_growth_in_an_idle_wait_stays_a_suspect() -> None:
    """debug=1 has no ids and no ages: nothing says the goroutines never leave."""
    d = detect(series("debug1"))
    for site in LEAKS:
        f = _at(d, site)
        assert f is not None and f.verdict == "suspect" and "accumulating" not in _signals(f), (site, f)


def test_the_span_is_a_setting() -> None:
    st = dataclasses.replace(default_settings(), accumulating_span=10.0)
    d = detect(series(), Options(settings=st))
    for site in LEAKS:
        f = _at(d, site)
        assert f is not None and f.verdict == "suspect" and "accumulating" not in _signals(f)
