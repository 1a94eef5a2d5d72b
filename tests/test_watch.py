"""`grprof watch` against a live service: findings as they appear, plain lines off a terminal."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gobuild import build_goapp, run_goapp

import grprof
from grprof.collect.policy import CaptureSettings
from grprof.detect.detector import Options
from grprof.watch import Watcher, base_url

LEAKY = "../../examples/leaky"


def watch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grprof.cli", "watch", *args], capture_output=True, text=True, timeout=timeout
    )


def test_base_url() -> None:
    assert base_url("http://h:6060/debug/pprof/goroutine?debug=2") == "http://h:6060"
    assert base_url("http://h:6060/") == "http://h:6060"
    assert base_url("https://h/app/debug/pprof/") == "https://h/app"


@pytest.mark.slow
def test_watch_reports_the_proven_leak_and_fails() -> None:
    # Built with the goroutineleak profile: the runtime proves the leaky handler's goroutines.
    binary = build_goapp(LEAKY, env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary, "-addr", "127.0.0.1:0", "-rate", "40") as (_, base):
        p = watch(base, "--interval", "1s", "--duration", "6s", "--leak-every", "2", "--fail-on", "leak")
    assert p.returncode == 1, p.stderr
    assert "goroutineleak profile: yes" in p.stderr
    lines = [ln for ln in p.stdout.splitlines() if "main.leakyHandler.func1" in ln]
    became_leak = [ln for ln in lines if (" NEW " in ln or " WORSE " in ln) and " leak " in ln]
    assert became_leak, p.stdout
    assert "Findings:" in p.stdout and "the Go runtime proved it leaked" in p.stdout
    assert "workerPool" not in "".join(ln for ln in p.stdout.splitlines() if " NEW " in ln and " leak " in ln)


@pytest.mark.slow
def test_watch_without_leak_profile_sees_growth() -> None:
    with run_goapp(LEAKY, "-addr", "127.0.0.1:0", "-rate", "40") as (_, base):
        p = watch(base + "/debug/pprof/", "--interval", "1s", "--duration", "8s", "--json")
    assert p.returncode == 0, p.stderr
    assert "goroutineleak profile: no" in p.stderr
    import json

    r = json.loads(p.stdout)
    assert r["detection"]["snapshots"] >= 4
    growing = [f for f in r["findings"] if f["site"] and f["site"]["function"] == "main.leakyHandler.func1"]
    # Seconds of data: growth is clear, but too short a window to call it a leak yet.
    assert growing and growing[0]["verdict"] == "suspect" and growing[0]["growth_per_minute"] > 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_watch_unreachable_first_poll_is_an_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    p = watch(url, "--interval", "1s", "--duration", "2s")
    assert p.returncode == 2
    assert p.stderr.startswith("grprof: ") and "unreachable" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_watcher_keeps_its_data_when_the_service_goes_away() -> None:
    with run_goapp(LEAKY, "-addr", "127.0.0.1:0", "-rate", "40") as (proc, base):
        w = Watcher(base, Options(), timeout=5)
        for _ in range(3):
            w.poll()
            time.sleep(0.5)
        proc.kill()
        proc.wait()
    with pytest.raises(Exception, match="unreachable"):
        w.poll()
    assert len(w.snapshots) == 3
    assert w.detection is not None and w.detection.findings


def test_watcher_follows_the_capture_policy() -> None:
    from misbehaving import fake_targets

    with fake_targets() as ft:
        w = Watcher(ft.url("healthy"), Options(), timeout=5, capture=CaptureSettings(debug2_every=2))
        for _ in range(5):
            w.poll()
        every2 = [h.debug for h in ft.hits_of("healthy", "goroutine")]
        # `?debug=2` in the URL: every poll after the first (which learns the count) is a debug=2.
        url = ft.url("noleak") + "/debug/pprof/goroutine?debug=2"
        p = watch(url, "--interval", "0.3s", "--duration", "1s", "--json")
        all2 = [h.debug for h in ft.hits_of("noleak", "goroutine")]
    assert every2 == ["1", "2", "1", "2", "1"]
    assert [s.format for s in w.snapshots] == ["debug=1", "debug=2", "debug=1", "debug=2", "debug=1"]
    assert w.capture_state.taken == {"every": 2} and w.debug2_taken == 2
    assert p.returncode == 0, p.stderr
    assert "(debug=2)" in p.stderr
    assert all2[0] == "1" and set(all2[1:]) == {"2"} and len(all2) >= 3, all2


def test_a_format_named_is_the_only_one_fetched() -> None:
    """`--format debug=1` (or `?debug=0` in the URL): every poll that profile, no debug=2
    mixed in, every 4th or on findings (the user may be keeping its cost off the service)."""
    from misbehaving import fake_targets

    with fake_targets() as ft:
        named = watch(ft.url("healthy"), "--format", "debug=1", "--interval", "0.2s", "--duration", "1.5s")
        by_url = watch(
            ft.url("noleak") + "/debug/pprof/goroutine?debug=0", "--interval", "0.2s", "--duration", "1.5s"
        )
        mixed = watch(ft.url("landing"), "--interval", "0.2s", "--duration", "2s")
        hits = {t: [h.debug for h in ft.hits_of(t, "goroutine")] for t in ("healthy", "noleak", "landing")}
    for p in (named, by_url, mixed):
        assert p.returncode in (0, 1), p.stderr
    assert len(hits["healthy"]) >= 4 and set(hits["healthy"]) == {"1"}, hits
    assert len(hits["noleak"]) >= 4 and set(hits["noleak"]) == {"0"}, hits
    assert "2" in hits["landing"], hits  # no format named: debug=1 with debug=2 mixed in
    assert "(debug=1)" in named.stderr, named.stderr


def test_watcher_asks_for_goroutineleak_as_the_scraper_does() -> None:
    """One cadence (`leak_probe_due`) for serve's scraper and watch: after the 1st, N+1-th,
    2N+1-th... successful poll; a target with no leak profile is never asked again."""
    from misbehaving import fake_targets

    from grprof.collect.policy import leak_probe_due

    with fake_targets() as ft:
        w = Watcher(ft.url("healthy"), Options(), timeout=5, leak_every=3)
        for _ in range(7):
            w.poll()
        asked = len(ft.hits_of("healthy", "goroutineleak"))
        n = Watcher(ft.url("noleak"), Options(), timeout=5, leak_every=1)
        for _ in range(3):
            n.poll()
        asked_noleak = len(ft.hits_of("noleak", "goroutineleak"))
    assert asked == sum(leak_probe_due(k, 3) for k in range(1, 8)) == 3  # polls 1, 4, 7
    assert w.leak_profile is True and len(w.leak_profiles) == 3 and w.ok_polls == 7
    assert n.leak_profile is False and asked_noleak == 1


def test_watch_and_serve_judge_a_window_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """One way to judge a window (grprof.serving.judge): each poll goes through the function
    serve's pipeline calls after each scrape, with the watcher's window; and neither module
    calls the detector itself."""
    import ast
    from pathlib import Path

    from misbehaving import fake_targets

    import grprof.serving.pipeline as pipeline
    import grprof.watch as watch_mod
    from grprof.serving.judge import judge_window

    assert pipeline.judge_window is judge_window and watch_mod.judge_window is judge_window
    for mod in (pipeline, watch_mod):
        tree = ast.parse(Path(str(mod.__file__)).read_text(encoding="utf-8"))
        calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
        called = {f.id for f in calls if isinstance(f, ast.Name)}
        assert "detect" not in called, mod.__name__
    seen: list[tuple[int, bool]] = []

    def spy(snaps, latest, opts):  # type: ignore[no-untyped-def]
        seen.append((len(snaps), latest is snaps[len(w.window.snapshots) - 1]))
        return judge_window(snaps, latest, opts)

    monkeypatch.setattr(watch_mod, "judge_window", spy)
    with fake_targets() as ft:
        w = Watcher(ft.url("healthy"), Options(), timeout=5, leak_every=100)
        for _ in range(3):
            w.poll()
    assert [n for n, _ in seen] == [2, 3, 4]  # the window: its snapshots and the leak profile
    assert all(latest for _, latest in seen)
    assert w.detection is not None and all(f.verdict != "inconclusive" for f in w.detection.findings)


def test_a_group_folded_into_a_unit_is_not_gone() -> None:
    """A group that joins a unit is shown as a member of another finding: no GONE for it, and
    no NEW when it stands alone again; only a group seen nowhere is gone."""
    import dataclasses

    from grprof.detect.detector import detect

    zoo = sorted((Path(__file__).parent / "fixtures" / "zoo").glob("*.goroutine.debug2.txt"))
    found = detect([grprof.load(p) for p in zoo], Options(interval=30.0)).findings
    unit = next(f for f in found if f.members)
    lead = dataclasses.replace(unit, members=())
    alone = [dataclasses.replace(unit, id=m.id, members=(), verdict=m.verdict) for m in unit.members]
    w = Watcher("http://127.0.0.1:1", Options())
    assert [e.kind for e in w._events([lead, *alone])] == ["new"] * (1 + len(alone))
    assert w._events([unit]) == []  # folded: still there
    assert w._events([lead, *alone]) == []  # out again: not new
    gone = w._events([lead])
    assert sorted((e.kind, e.finding.id) for e in gone) == sorted(("gone", m.id) for m in unit.members)
