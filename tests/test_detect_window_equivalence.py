"""Detection over a daemon's sliding windows gives the same findings with its per-snapshot
caches reused from scrape to scrape, with them cleared before every pass, and as the detector
gave before those caches and fast paths existed (digests recorded at e3f4210,
in tests/golden; `GRPROF_RECORD_WINDOWS=1` records them again).

Realistic windows: the recorded fixtures played as a scraped target would show them, one
snapshot every 15 s into a `Window` of 40 (as `grprof serve` adds them): the leak zoo's phases
(leaks growing, then drained) in debug=0, debug=1 and debug=2 with goroutineleak profiles;
a states program with its ` (leaked)` marks and leak profiles; and a target whose build changes
(series warnings) and comes back;
a zoo ramped up in a few scrapes (inconclusive findings) and a states program in debug=1
only (steady waits).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import grprof
from grprof.detect import series as series_mod
from grprof.detect.detector import Options, detect
from grprof.detect.rules import load_rules
from grprof.detect.signals import theil_sen
from grprof.serving.judge import judge_window
from grprof.serving.window import Window

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden" / "detect_windows.sha256.json"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def zoo(i: int) -> list[Path]:
    phase = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4", "5-drained")
    name = phase[min(i // 8, 4) if i < 56 else 5]
    fmt = ("debug0.pb.gz", "debug2.txt", "debug0.pb.gz", "debug1.txt")[i % 4]
    out = [FIXTURES / "zoo" / f"{name}.goroutine.{fmt}"]
    if i % 4 == 2:
        out.append(FIXTURES / "zoo" / f"{name}.goroutineleak.debug1.txt")
    return out


def states(i: int) -> list[Path]:
    d = FIXTURES / "states" / "go1.26.8"
    fmt = ("goroutine.debug1.txt", "goroutine.debug2.txt", "goroutine.debug0.pb.gz", "goroutine.debug1.txt")
    out = [d / ("goroutine-after-leak.debug2.txt" if i % 8 == 5 else fmt[i % 4])]
    if i % 6 == 3:
        out.append(d / "goroutineleak.debug1.txt")
    return out


def rebuilt(i: int) -> list[Path]:
    version = "go1.21.13" if 20 <= i < 26 else "go1.19.8"
    return [
        FIXTURES / "states" / version / ("goroutine.debug2.txt" if i % 4 == 1 else "goroutine.debug1.txt")
    ]


def ramp(i: int) -> list[Path]:
    phase = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4", "5-drained")
    return [FIXTURES / "zoo" / f"{phase[min(i, 4) if i < 12 else 5]}.goroutine.debug1.txt"]


def steady(i: int) -> list[Path]:
    d = FIXTURES / "states" / "go1.26.8-wait"
    return [d / ("goroutine.debug2.txt" if i >= 44 and i % 2 else "goroutine.debug1.txt")]


TARGETS = {
    "zoo": (zoo, 70),
    "states": (states, 48),
    "rebuilt": (rebuilt, 46),
    "ramp": (ramp, 16),
    "steady": (steady, 50),
}


def outcome(w: Window, opts: Options) -> dict[str, Any]:
    j = judge_window(w.all(), w.snapshots[-1], opts)
    d = detect(w.all(), opts)  # the CLI's pass: inconclusive findings too
    return {
        "judge": [f.to_json() for f in j.detection.findings],
        "growth": j.growth_per_minute,
        "top": [(g.count, g.state, len(g.frames)) for g in j.top_groups],
        "blocked": j.blocked,
        "detect": [f.to_json() for f in d.findings],
        "ignored": d.ignored,
        "thin": d.thin,
        "warnings": d.warnings,
    }


def play(target: str, *, clear: bool) -> list[str]:
    """Each pass's outcome, as canonical JSON, while the target is scraped `n` times."""
    paths, n = TARGETS[target]
    opts = Options(rules=load_rules())
    w = Window.empty(40)
    out = []
    for i in range(n):
        for p in paths(i):
            snap = grprof.load(p.read_bytes(), name=f"{target}#{i}")
            snap.time = T0 + dt.timedelta(seconds=15 * i)
            w.add(snap)
        if clear:
            series_mod._DATA.clear()  # nothing derived from an earlier pass
        out.append(json.dumps(outcome(w, opts), sort_keys=True))
        if not clear and i:  # the series was built from the last one's columns, slid by one
            assert series_mod.snapshot_data(w.snapshots[-2]).columns is None
            assert series_mod.snapshot_data(w.snapshots[-1]).columns is not None
    return out


def digests(texts: list[str]) -> list[str]:
    return [hashlib.sha256(t.encode()).hexdigest()[:16] for t in texts]


def test_cached_passes_equal_fresh_passes_and_the_recorded_ones() -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    record = os.environ.get("GRPROF_RECORD_WINDOWS") == "1"
    seen: dict[str, list[str]] = {}
    findings = 0
    for target in TARGETS:
        cached = play(target, clear=False)
        fresh = play(target, clear=True)
        for i, (a, b) in enumerate(zip(cached, fresh, strict=True)):
            assert a == b, f"{target} scrape {i}: cached and fresh passes differ"
        seen[target] = digests(cached)
        findings += sum(len(json.loads(t)["judge"]) for t in cached)
        if not record:
            assert seen[target] == golden[target], f"{target}: findings differ from the recorded ones"
    assert findings > 100  # the windows do make findings
    if record:
        GOLDEN.write_text(json.dumps(seen, indent=1) + "\n")


def _theil_sen_reference(xs: list[float], ys: list[int]) -> float:
    """`theil_sen` as it was before its fast path for counts that never fall."""
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    )
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    return slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def test_theil_sen_equals_the_reference() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        n = rng.randint(0, 41)
        xs = sorted(rng.sample(range(100_000), n))
        ts = [(x + rng.random()) / 60 for x in xs]
        steps = rng.choice((0.0, 0.1, 0.5, 0.9))
        ys = list(itertools.accumulate(rng.randint(1, 9) if rng.random() < steps else 0 for _ in range(n)))
        if rng.random() < 0.2 and n:  # counts that fall too (the general path)
            ys[rng.randrange(n)] -= 3
        assert theil_sen(ts, ys) == _theil_sen_reference(ts, ys)
        assert str(theil_sen(ts, ys)) == str(_theil_sen_reference(ts, ys))  # 0.0, never -0.0


def test_a_dropped_window_leaves_no_detection_data_behind_without_the_collector() -> None:
    """The columns a series keeps for the next scrape's form no reference cycle: a window's
    detection data goes with its snapshots at once, not at the next collection."""
    gc.collect()
    gc.disable()
    try:
        play("rebuilt", clear=False)  # its window, and every snapshot it held, dropped on return
        left = [o for o in gc.get_objects() if isinstance(o, series_mod.SnapshotData)]
    finally:
        gc.enable()
    assert left == []
