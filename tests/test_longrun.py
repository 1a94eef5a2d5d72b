"""Verdicts that need minutes of snapshots (tests/fixtures/longrun, recorded from
tests/goapps/longrun over 11 minutes).

Goroutines that look blocked but are woken now and then:

debug=2 shows `for range time.Tick(...)` and a consumer's `for v := range ch` as a plain
`chan receive`, the state a goroutine stuck forever shows too. Over minutes the wait age tells
them apart: the runtime clears it whenever a goroutine runs and stamps it at a GC mark (at least
every 2 minutes), so goroutines seen minutes earlier without an age have run since. Long-lived
sessions started by an opener that returned, ramping up and then holding, are load; the worker
stuck on a channel nobody closes (its age rising) and the poller started per request stay
leaks; a process that never collects (GOGC=off) shows no ages at all, and then nothing is read
from their absence.

And what only a long run shows: a singleton that waits as long as the process (a SIGHUP
reloader its setup goroutine left) is no leak once it has waited 10 minutes, though a wait that
long outlives any request; producers stuck on a send nobody takes are, their creator (main)
alive; producers held back by a slow consumer keep one count without ids, which is a suspect
at most; and a burst that drains slowly is no leak while it drains.
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

FIXTURES = Path(__file__).parent / "fixtures" / "longrun"
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
    assert len(snaps) == 23
    assert (snaps[-1].time - snaps[0].time) >= dt.timedelta(minutes=10)
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


def test_a_singleton_waiting_as_long_as_the_process_is_no_leak(plain: Detection) -> None:
    # Its wait age passes age_minutes during the run; the same fact as its id staying put
    # (persistence) is not counted twice, and one call's goroutine is no leak by it.
    last = series()[-1]
    hook = next(g for g in last.goroutines if g.site and g.site.function == "main.reloadOnHUP")
    assert hook.wait_minutes >= 10
    f = _at(plain, "main.reloadOnHUP")
    assert f is None or f.verdict != "leak", [e.summary for e in f.evidence]


def test_a_send_nobody_takes_is_found_though_its_creator_lives(plain: Detection) -> None:
    f = _at(plain, "main.produceBatch")
    assert f is not None, [x.site for x in plain.findings]
    old = next(e for e in f.evidence if e.signal == "age")
    assert "chan send" in old.summary and old.weight > 0


@pytest.mark.parametrize("fmt", ["debug1", "debug0"])
def test_producers_held_back_by_a_slow_consumer_are_a_suspect_at_most(fmt: str) -> None:
    # Without ids their count alone is all there is: 3 senders in every snapshot for 11
    # minutes, exactly what 3 stuck ones show (produceBatch's, the same verdict).
    d = detect(series(fmt=fmt))
    shippers = _at(d, "main.shipLines")
    stuck = _at(d, "main.produceBatch")
    assert shippers is not None and stuck is not None
    assert shippers.verdict == stuck.verdict == "suspect"
    assert any(e.signal == "steady" and e.data["tier"] == "backpressure" for e in shippers.evidence)


def test_producers_held_back_are_woken_in_debug2(plain: Detection) -> None:
    assert _at(plain, "main.shipLines") is None


def _bursts(snaps: list[grprof.Snapshot]) -> list[int]:
    return [sum(1 for g in s.goroutines if g.site and g.site.function == "main.publishEvent") for s in snaps]


@pytest.mark.parametrize("fmt", ["debug2", "debug1", "debug0"])
def test_a_burst_draining_slowly_is_no_leak(fmt: str) -> None:
    counts = _bursts(series())
    top = counts.index(max(counts))
    # A window from just before the burst to two snapshots into its drain: the count rose
    # from nothing and has fallen at each snapshot since (the subscriber takes one every
    # 2.5 s), still above half its peak (so not yet "fallen back": `growth.recovered`).
    assert counts[top] >= 60 and counts[top - 1] == 0
    assert counts[top] > counts[top + 1] > counts[top + 2] > counts[top] / 2
    window = series(fmt=fmt)[max(0, top - 3) : top + 3]
    f = _at(detect(window), "main.publishEvent")
    assert f is None or f.verdict != "leak", [e.summary for e in f.evidence]
    assert f is None or not any(e.signal == "growth" for e in f.evidence)
