"""The capture policy (grprof.collect.policy): which scrapes of serve and polls of watch fetch
debug=2, and debug=2 snapshots mixed into a window of debug=1 ones."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import grprof
from grprof.collect.model import ScrapeResult
from grprof.collect.policy import (
    CapturePolicy,
    CaptureSettings,
    CaptureState,
    Decision,
    offset_for,
    rests_on_growth,
)
from grprof.collect.scraper import ScrapeSettings, goroutine_count
from grprof.detect.series import build_series
from grprof.watch import url_format

ZOO = Path(__file__).parent / "fixtures" / "zoo"
STATES = Path(__file__).parent / "fixtures" / "states" / "go1.26.8"


@dataclass(frozen=True)
class Ev:
    signal: str


@dataclass
class F:
    """A finding as the policy reads it."""

    id: str
    verdict: str = "suspect"
    evidence: list[Ev] = field(default_factory=list)
    runtime_confirmed: bool = False


GROWTH = [Ev("growth")]


def run(
    policy: CapturePolicy,
    st: CaptureState,
    n: int,
    *,
    t0: float = 0.0,
    every: float = 15.0,
    goroutines: int = 100,
    ok: bool = True,
) -> list[Decision]:
    """n scheduled scrapes, `every` seconds apart, each observed as ok with `goroutines`."""
    out = []
    for i in range(n):
        now = t0 + i * every
        d = policy.next_scrape(st, now)
        policy.observed(st, d, ok, now, goroutines)
        out.append(d)
    return out


def kinds(ds: list[Decision]) -> str:
    return "".join("2" if d.kind == "debug=2" else d.kind[-1] for d in ds)


def test_defaults_match_the_config() -> None:
    from grprof.config import Config

    c, s = Config().scrape, CaptureSettings()
    assert (
        (c.format, c.debug2_every, c.debug2_max_goroutines, c.debug2_extra_gap)
        == (
            s.format,
            s.debug2_every,
            s.debug2_max_goroutines,
            s.extra_gap,
        )
        == ("debug=1", 4, 10_000, 30.0)
    )
    assert ScrapeSettings().capture() == s


def test_every_nth_scheduled_scrape_is_a_debug2() -> None:
    p, st = CapturePolicy(CaptureSettings()), CaptureState()
    ds = run(p, st, 12)
    # The first scrape learns the goroutine count (debug=1); then the 4th, 8th, 12th.
    assert kinds(ds) == "111211121112"
    assert [d.reason for d in ds if d.kind == "debug=2"] == ["every"] * 3
    assert st.taken == {"every": 3}


def test_the_offset_spreads_targets_over_the_rounds() -> None:
    p = CapturePolicy(CaptureSettings())
    rounds = []
    for i in range(400):
        st = CaptureState(offset=offset_for(f"svc-{i}"))
        ds = run(p, st, 5)
        rounds.append(next(j for j, d in enumerate(ds) if d.kind == "debug=2"))
        assert kinds(ds[1:]).count("2") == 1  # exactly one in any 4 consecutive scrapes
    assert offset_for("svc-1") == offset_for("svc-1")
    assert {r: rounds.count(r) for r in sorted(set(rounds))}.keys() == {1, 2, 3, 4}
    assert min(rounds.count(r) for r in (1, 2, 3, 4)) > 60  # about a quarter each


def test_never_before_the_count_is_known_nor_above_the_limit() -> None:
    p = CapturePolicy(CaptureSettings(debug2_max_goroutines=500))
    st = CaptureState()
    assert p.refusal(st) == "its goroutine count is not known yet (wait for a first scrape)"
    big = run(p, st, 12, goroutines=501)
    assert kinds(big) == "1" * 12
    assert p.refusal(st) == "it has 501 goroutines, above the debug=2 limit of 500"
    # Back under the limit: the schedule resumes at the next multiple.
    assert kinds(run(p, st, 4, goroutines=500)) == "1112"
    # 0 turns debug=2 off, extras and format included.
    off = CapturePolicy(CaptureSettings(format="debug=2", debug2_max_goroutines=0))
    st = CaptureState()
    p.findings(st, [F("a")])
    assert kinds(run(off, st, 8, goroutines=1)) == "1" * 8


def test_debug2_every_zero_means_no_scheduled_debug2() -> None:
    p, st = CapturePolicy(CaptureSettings(debug2_every=0)), CaptureState()
    assert kinds(run(p, st, 20)) == "1" * 20


def test_format_debug2_makes_every_scrape_a_debug2_after_the_first() -> None:
    p, st = CapturePolicy(CaptureSettings(format="debug=2")), CaptureState()
    ds = run(p, st, 5)
    assert kinds(ds) == "12222" and {d.reason for d in ds[1:]} == {"format"}
    # Above the limit (learnt from the first of these) it falls back to debug=1, the cheap profile.
    assert kinds(run(p, st, 3, goroutines=20_000)) == "211"
    assert CaptureSettings(format="debug=2").cheap == "debug=1"
    assert CaptureSettings(format="debug=0").cheap == "debug=0"
    # debug=0 stays the cheap format; the N-th is still a debug=2.
    assert kinds(run(CapturePolicy(CaptureSettings(format="debug=0")), CaptureState(), 4)) == "0002"


def test_a_new_suspect_asks_for_one_extra_debug2_rate_limited() -> None:
    p, st = CapturePolicy(CaptureSettings(debug2_every=0)), CaptureState()
    run(p, st, 1)  # t=0: the count is known
    assert p.findings(st, [F("a")]) == "suspect"
    d = p.next_scrape(st, 15.0)
    assert d == Decision("debug=2", "suspect")
    p.observed(st, d, True, 15.0, 100)
    # Taken: no more extras for "a", which is not new any more.
    assert p.findings(st, [F("a")]) == ""
    assert kinds(run(p, st, 4, t0=30.0)) == "1111"
    # A second new suspect 20 s after the last debug=2 waits for the 30 s gap.
    st2 = CaptureState()
    run(p, st2, 1)
    p.findings(st2, [F("a")])
    first = p.next_scrape(st2, 15.0)
    p.observed(st2, first, True, 15.0, 100)
    p.findings(st2, [F("a"), F("b")])
    waited = p.next_scrape(st2, 35.0)  # 20 s after
    p.observed(st2, waited, True, 35.0, 100)
    later = p.next_scrape(st2, 45.0)  # 30 s after: the pending request is served
    assert (first.kind, waited.kind, later) == ("debug=2", "debug=1", Decision("debug=2", "suspect"))
    p.observed(st2, later, True, 45.0, 100)
    assert st2.taken == {"suspect": 2} and st2.wanted == ""


def test_a_leak_that_is_new_asks_nothing_unless_growth_makes_it() -> None:
    p, st = CapturePolicy(CaptureSettings(debug2_every=0)), CaptureState()
    run(p, st, 1)
    proven = F("p", "leak", [Ev("runtime_proof"), Ev("growth")], runtime_confirmed=True)
    assert p.findings(st, [proven, F("q", "leak", [Ev("age"), Ev("orphans")])]) == ""
    assert p.findings(st, [proven, F("g", "leak", GROWTH)]) == "growth"


def test_growth_findings_ask_for_a_debug2_at_most_every_30s() -> None:
    p, st = CapturePolicy(CaptureSettings(debug2_every=0)), CaptureState()
    run(p, st, 1)
    taken = []
    for i in range(1, 13):  # 3 minutes of 15 s scrapes with a growth-based finding throughout
        now = 15.0 * i
        d = p.next_scrape(st, now)
        p.observed(st, d, True, now, 100)
        if d.kind == "debug=2":
            taken.append(now)
        p.findings(st, [F("g", "leak", GROWTH)])
    # Asked for after the first scrape's detection, then taken every other scrape.
    assert taken == [30.0, 60.0, 90.0, 120.0, 150.0, 180.0], taken
    assert all(b - a >= 30 for a, b in itertools.pairwise(taken))
    # The finding goes away: the growth request goes with it.
    p.findings(st, [])
    assert st.wanted == "" and p.next_scrape(st, 500.0).kind == "debug=1"


def test_extras_count_the_scheduled_debug2_in_the_rate_limit() -> None:
    p, st = CapturePolicy(CaptureSettings(debug2_every=4)), CaptureState()
    ds = run(p, st, 4)  # the 4th, at t=45, is a scheduled debug=2
    assert kinds(ds) == "1112"
    p.findings(st, [F("g", "leak", GROWTH)])
    assert p.next_scrape(st, 60.0).kind == "debug=1"  # 15 s after the scheduled one
    assert p.next_scrape(st, 75.0) == Decision("debug=2", "growth")


def test_after_a_failed_scrape_the_next_is_cheap_and_failed_debug2_pause() -> None:
    p, st = CapturePolicy(CaptureSettings(format="debug=2")), CaptureState()
    run(p, st, 1)
    d = p.next_scrape(st, 15.0)
    assert d.kind == "debug=2"
    p.observed(st, d, False, 15.0)  # a debug=2 that times out: paused for 4 × 2^0 scrapes
    assert st.failed
    assert kinds(run(p, st, 5, t0=30.0)) == "11112"
    assert st.debug2_failures == 0  # the last one worked
    # A target whose debug=2 always fails (too big to dump in time) and debug=1 works: the
    # pauses double, 4, 8, 16 scrapes.
    st, seen = CaptureState(), ""
    for i in range(40):
        d = p.next_scrape(st, 15.0 * i)
        p.observed(st, d, d.kind != "debug=2", 15.0 * i, 100)
        seen += kinds([d])
    assert seen == "12" + "1" * 4 + "2" + "1" * 8 + "2" + "1" * 16 + "2" + "1" * 7, seen
    pause = CapturePolicy(CaptureSettings())
    st = CaptureState()
    for _ in range(10):
        st.scrapes += 5
        pause.observed(st, Decision("debug=2", "every"), False, 0.0)
    assert st.paused_until - st.scrapes - 1 == 64  # capped


def test_rests_on_growth() -> None:
    assert rests_on_growth(F("a", "leak", GROWTH))
    assert rests_on_growth(F("a", "suspect", [Ev("age"), Ev("growth")]))
    assert not rests_on_growth(F("a", "leak", [Ev("growth")], runtime_confirmed=True))
    assert not rests_on_growth(F("a", "suspect", [Ev("age")]))


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="format"):
        CaptureSettings(format="debug=3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="debug2_every"):
        ScrapeSettings(debug2_every=-1)
    assert ScrapeSettings(format="debug=2").capture().format == "debug=2"


def test_goroutine_count_of_text_profiles() -> None:
    def result(kind: str, name: str) -> ScrapeResult:
        body = (STATES / name).read_bytes()
        return ScrapeResult("t", kind, None, 0.0, "ok", len(body), body)  # type: ignore[arg-type]

    d1, d2 = result("debug=1", "goroutine.debug1.txt"), result("debug=2", "goroutine.debug2.txt")
    assert goroutine_count(d1) == grprof.load(STATES / "goroutine.debug1.txt").total
    assert goroutine_count(d2) == grprof.load(STATES / "goroutine.debug2.txt").total
    assert goroutine_count(result("debug=0", "goroutine.debug0.pb.gz")) is None


def test_watch_takes_the_format_from_a_goroutine_url() -> None:
    assert url_format("http://h:6060/debug/pprof/goroutine?debug=2") == "debug=2"
    assert url_format("http://h:6060/app/debug/pprof/goroutine?debug=0") == "debug=0"
    assert url_format("http://h:6060/debug/pprof/goroutine?debug=1") == "debug=1"
    assert url_format("http://h:6060/debug/pprof/") is None
    assert url_format("http://h:6060") is None
    assert url_format("http://h:6060/debug/pprof/goroutineleak?debug=2") is None


# -- debug=2 snapshots in a window of debug=1 ones ----------------------------------------


PHASES = ["0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4", "5-drained"]


def zoo_series(pattern: str) -> list[grprof.Snapshot]:
    """The zoo's six phases, each in the format the pattern gives (1 or 2)."""
    out = []
    for phase, level in zip(PHASES, pattern, strict=True):
        s = grprof.load(ZOO / f"{phase}.goroutine.debug{level}.txt")
        out.append(s)
    return out


@pytest.mark.parametrize("pattern", ["121212", "111211", "222222"])
def test_mixed_formats_match_groups_by_track(pattern: str) -> None:
    plain = build_series(zoo_series("111111"), interval=30)
    mixed = build_series(zoo_series(pattern), interval=30)
    counts = {t.id: t.counts for t in plain.tracks}
    mixed_counts = {t.id: t.counts for t in mixed.tracks}
    # Every track of some size is one track in the mixed series, with the same counts give or
    # take the goroutines that moved between the two recordings of a phase (a few).
    for tid, c in counts.items():
        if max(c) < 3:
            continue
        assert tid in mixed_counts, tid
        m = mixed_counts[tid]
        assert all(abs(a - b) <= max(2, 0.05 * a) for a, b in zip(c, m, strict=True)), (tid, c, m)
    # and no track of the mixed series appears only in its debug=2 points beyond a goroutine or two
    rows2 = [i for i, ch in enumerate(pattern) if ch == "2"]
    for t in mixed.tracks:
        if t.id not in counts:
            assert max(t.counts[i] for i in rows2) <= 2, (t.id, t.counts)
    assert [s.format for s in mixed.snapshots] == [f"debug={c}" for c in pattern]
