"""Goroutines that look blocked but are woken now and then (tests/fixtures/woken, recorded from
tests/goapps/woken over 5.5 minutes).

debug=2 shows `for range time.Tick(...)` and a consumer's `for v := range ch` as a plain
`chan receive`, the state a goroutine stuck forever shows too. Over minutes the wait age tells
them apart: the runtime clears it whenever a goroutine runs and stamps it at a GC mark (at least
every 2 minutes), so goroutines seen minutes earlier without an age have run since. Long-lived
sessions started by an opener that returned, ramping up and then holding, are load; the worker
stuck on a channel nobody closes (its age rising) and the poller started per request stay
leaks; a process that never collects (GOGC=off) shows no ages at all, and then nothing is read
from their absence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Finding
from grprof.detect.signals import default_settings

FIXTURES = Path(__file__).parent / "fixtures" / "woken"
EXT = {"debug2": "txt", "debug1": "txt", "debug0": "pb.gz"}


def series(run: str = "plain", fmt: str = "debug2", upto: int | None = None) -> list[grprof.Snapshot]:
    meta = json.loads((FIXTURES / run / "times.json").read_text())
    snaps = []
    for i, t in enumerate(meta["times"][:upto]):
        s = grprof.load(FIXTURES / run / f"{i}.goroutine.{fmt}.{EXT[fmt]}")
        s.time = dt.datetime.fromtimestamp(t, dt.UTC)  # recorded when fetched (text dumps carry no time)
        snaps.append(s)
    return snaps


def _at(d: Detection, function: str) -> Finding | None:
    for f in d.findings:
        sites = [f.site] + [m.site for m in f.members]
        if any(s is not None and s.function == function for s in sites):
            return f
    return None


def _signals(f: Finding) -> set[str]:
    return {e.signal for e in f.evidence}


@pytest.fixture(scope="module")
def plain() -> Detection:
    return detect(series())


def test_the_recording_spans_the_runtimes_forced_gc() -> None:
    snaps = series()
    assert len(snaps) == 12
    assert (snaps[-1].time - snaps[0].time) >= dt.timedelta(minutes=5)
    # The stuck workers started early show their age; the sessions ranging over a ticker none.
    last = {g.id: g for g in snaps[-1].goroutines}
    first_ids = {g.id for g in snaps[0].goroutines}
    sessions = [
        g for g in last.values() if g.site and g.site.function == "main.session" and g.id in first_ids
    ]
    stuck = [
        g for g in last.values() if g.site and g.site.function == "main.awaitReply" and g.id in first_ids
    ]
    assert sessions and all(g.wait_minutes == 0 for g in sessions)
    assert stuck and all(g.wait_minutes >= 4 for g in stuck)


def test_sessions_woken_by_their_ticker_are_no_finding(plain: Detection) -> None:
    assert _at(plain, "main.session") is None, _at(plain, "main.session")
    assert _at(plain, "main.pump") is None


def test_without_the_wait_age_the_sessions_read_as_stuck() -> None:
    # The same series judged as if ages said nothing (the span never reached): the ramp of
    # sessions, their creator gone, the same ids staying, is a finding. So the age is what
    # clears them above.
    st = dataclasses.replace(default_settings(), woken_span=1e9)
    f = _at(detect(series(), Options(settings=st)), "main.session")
    assert f is not None and "persistence" in _signals(f), f


def test_stuck_workers_and_per_request_pollers_stay_leaks(plain: Detection) -> None:
    stuck = _at(plain, "main.awaitReply")
    assert stuck is not None and stuck.verdict == "leak"
    assert "woken" not in _signals(stuck)  # its members' ages rise: nothing wakes them
    poller = _at(plain, "main.poll")
    assert poller is not None and poller.verdict == "leak", poller
    woke = next(e for e in poller.evidence if e.signal == "woken")
    assert woke.weight == 0 and "no wait age" in woke.summary
    assert poller.wait_kind == "idle"
    # Not "a receive nobody sends on": a loop something wakes, most often a ticker.
    assert (poller.rule, poller.category) == ("woken-loop", "timer"), poller.title
    assert stuck.rule == "chan-receive-no-sender"
    # Woken, but one per request: the same ids from many calls, each left running.
    assert any(e.signal == "persistence" and e.data["calls"] >= 2 for e in poller.evidence)


def test_a_series_shorter_than_the_forced_gc_says_nothing_of_ages() -> None:
    d = detect(series(upto=7))  # 3 minutes
    assert not any("woken" in _signals(f) for f in d.findings)


def test_a_process_that_never_collects_shows_no_ages_and_nothing_is_read_from_that() -> None:
    snaps = series("gcoff")
    assert not any(g.wait_minutes for s in snaps for g in s.goroutines)
    d = detect(snaps)
    assert not any("woken" in _signals(f) for f in d.findings)
    f = _at(d, "main.session")
    assert f is not None, [x.site for x in d.findings]


@pytest.mark.parametrize("fmt", ["debug1", "debug0"])
def test_formats_without_ages_are_unchanged(fmt: str) -> None:
    d = detect(series(fmt=fmt))
    assert not any("woken" in _signals(f) for f in d.findings)
    assert _at(d, "main.awaitReply") is not None
