"""`/metrics` (grprof.server.metrics) and wait-reason classes (grprof.server.runtime).

The runtime is filled as the daemon fills it, from recorded dumps of the leak zoo (real Go
output) and the detector's real findings; the exposition is read back with prometheus_client's
own parser, linted by `promtool check metrics`, and scraped by a real Prometheus server.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import platform
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from promserver import PROMTOOL, ensure_prometheus, instant, run_prometheus, wait_for_series

import grprof
from grprof.collect.model import ScrapeResult, Target
from grprof.detect.detector import detect
from grprof.server.api import create_app
from grprof.server.metrics import label_name, static_labels
from grprof.server.runtime import (
    Runtime,
    TargetRuntime,
    blocked_by_class,
    classify_wait,
    wait_classes,
)
from grprof.store import open_store

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4")
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
# Labels as file_sd or a config would give them: dots, a digit first, a clash with `target`
# and with a metric's own label, Prometheus-internal keys, two keys that sanitise alike.
ZOO_LABELS = {
    "team.name": "payments",
    "1st": "yes",
    "target": "spoofed",
    "class": "gold",
    "__meta_consul_dc": "eu",
    "a-b": "dash",
    "a.b": "dot",
    "env": "prod",
}
ZOO_STATIC = {
    "team_name": "payments",
    "_1st": "yes",
    "exported_target": "spoofed",
    "exported_class": "gold",
    "a_b": "dash",
    "a_b_2": "dot",
    "env": "prod",
}
# Per metric: the labels a series has besides the target's own.
OWN_LABELS = {
    "grprof_target_up": set(),
    "grprof_target_goroutines": set(),
    "grprof_goroutines_growth_rate": set(),
    "grprof_target_last_success_timestamp_seconds": set(),
    "grprof_target_leak_profile": set(),
    "grprof_scrape_lag_seconds": set(),
    "grprof_blocked_goroutines": {"class"},
    "grprof_leak_suspects": {"verdict", "category", "owner"},
    "grprof_leaked_goroutines": {"verdict", "category", "owner"},
    "grprof_leaked_stack_bytes": {"verdict", "category", "owner"},
    "grprof_group_goroutines": {"group", "site", "state"},
    "grprof_scrape_duration_seconds": {"kind", "le"},
    "grprof_scrapes": {"kind", "result"},
}
TYPES = {
    **dict.fromkeys(OWN_LABELS, "gauge"),
    "grprof_scrape_duration_seconds": "histogram",
    "grprof_scrapes": "counter",
    "grprof_build_info": "gauge",
}


def zoo_snapshots() -> list[grprof.Snapshot]:
    snaps = [grprof.load(ZOO / f"{p}.goroutine.debug2.txt") for p in PHASES]
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
    return snaps


def zoo_runtime(top_n: int = 10) -> tuple[Runtime, list[grprof.Snapshot], Any]:
    """A replica after scraping the zoo through its leak phases, plus a target that is down."""
    rt = Runtime.create((1, 1), top_n=top_n)
    snaps = zoo_snapshots()
    d = detect(snaps)
    groups = snaps[-1].groups()
    rt.targets["zoo"] = TargetRuntime(
        Target("zoo", "http://127.0.0.1:6060", ZOO_LABELS),
        up=True,
        last_scrape=T0 + dt.timedelta(minutes=2),
        last_success=T0 + dt.timedelta(minutes=2),
        goroutines=snaps[-1].total,
        growth_per_minute=61.25,
        blocked=blocked_by_class(groups),
        top_groups=groups,
        findings=d.findings,
        leak_profile=False,
        scrape_lag=0.25,
    )
    rt.targets["down"] = TargetRuntime(
        Target("down", "http://127.0.0.1:1", {"team": "edge"}), last_error="refused"
    )
    for kind, secs, status in (
        ("debug=1", 0.004, "ok"),
        ("debug=1", 0.2, "ok"),
        ("debug=1", 3.0, "ok"),
        ("goroutineleak", 0.01, "not_found"),
        ("debug=2", 0.7, "ok"),
    ):
        rt.observe_scrape(ScrapeResult("zoo", kind, T0, secs, status))  # type: ignore[arg-type]
    rt.observe_scrape(ScrapeResult("down", "debug=1", T0, 10.0, "timeout"))
    rt.observe_scrape(ScrapeResult("down", "debug=1", T0, 0.001, "unreachable"))
    return rt, snaps, d


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Runtime, list[grprof.Snapshot], Any, str]]:
    rt, snaps, d = zoo_runtime()
    store = open_store(str(tmp_path_factory.mktemp("metrics") / "grprof.db"))
    with TestClient(create_app(store, rt)) as c:
        r = c.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        yield rt, snaps, d, r.text
    store.close()


def parse(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, Any], name: str, **match: str) -> list[Sample]:
    return [s for s in fams[name].samples if all(s.labels.get(k) == v for k, v in match.items())]


def value(fams: dict[str, Any], name: str, **match: str) -> float:
    (s,) = samples(fams, name, **match)
    return float(s.value)


def test_names_and_types(scenario: Any) -> None:
    fams = parse(scenario[3])
    assert {n: f.type for n, f in fams.items()} == TYPES
    assert all(f.documentation for f in fams.values())


def test_target_gauges(scenario: Any) -> None:
    _, snaps, _, text = scenario
    fams = parse(text)
    assert value(fams, "grprof_target_up", target="zoo") == 1
    assert value(fams, "grprof_target_up", target="down") == 0
    assert value(fams, "grprof_target_goroutines", target="zoo") == snaps[-1].total
    assert value(fams, "grprof_goroutines_growth_rate", target="zoo") == 61.25
    assert value(fams, "grprof_target_leak_profile", target="zoo") == 0
    assert value(fams, "grprof_scrape_lag_seconds", target="zoo") == 0.25
    assert (
        value(fams, "grprof_target_last_success_timestamp_seconds", target="zoo")
        == (T0 + dt.timedelta(minutes=2)).timestamp()
    )
    # Never scraped successfully: no value rather than a made-up zero.
    for name in ("grprof_target_goroutines", "grprof_goroutines_growth_rate", "grprof_blocked_goroutines"):
        assert samples(fams, name, target="down") == [], name


def test_blocked_by_class(scenario: Any) -> None:
    _, snaps, _, text = scenario
    fams = parse(text)
    blocked = {s.labels["class"]: s.value for s in samples(fams, "grprof_blocked_goroutines", target="zoo")}
    assert set(blocked) == set(wait_classes().names)  # every class, zeros included
    assert sum(blocked.values()) == snaps[-1].total
    # What the zoo's leaks and pools park on, counted from its states.
    by_state: collections.Counter[str] = collections.Counter()
    for g in snaps[-1].groups():
        by_state.update(g.states)
    channel = sum(n for st, n in by_state.items() if st.startswith(("chan receive", "chan send")))
    assert blocked["channel"] == channel > 0
    assert blocked["io"] == by_state["IO wait"] > 0
    assert blocked["select"] > 0 and blocked["sync"] > 0


def test_findings_by_verdict_and_category(scenario: Any) -> None:
    _, _, d, text = scenario
    fams = parse(text)
    want: dict[tuple[str, str], list[int]] = {}
    for f in d.findings:
        n = want.setdefault((f.verdict, f.category), [0, 0])
        n[0] += 1
        n[1] += f.count
    got_n = {
        (s.labels["verdict"], s.labels["category"]): s.value for s in samples(fams, "grprof_leak_suspects")
    }
    got_g = {
        (s.labels["verdict"], s.labels["category"]): s.value
        for s in samples(fams, "grprof_leaked_goroutines")
    }
    assert got_n == {k: v[0] for k, v in want.items()}
    assert got_g == {k: v[1] for k, v in want.items()}
    assert got_n[("leak", "channel")] >= 1 and ("leak", "sync") in got_n


def test_top_groups_bounded(scenario: Any) -> None:
    _, snaps, _, text = scenario
    fams = parse(text)
    series = samples(fams, "grprof_group_goroutines", target="zoo")
    groups = snaps[-1].groups()
    assert len(groups) > 10 and len(series) == 10
    top = sorted(groups, key=lambda g: (-g.count, g.signature))[:10]
    assert [(s.labels["group"], s.value) for s in series] == [(g.signature, g.count) for g in top]
    first = series[0].labels
    assert first["site"] == "main.poolWorker" and first["state"] == "chan receive"


def test_top_n_is_configurable() -> None:
    rt, _, _ = zoo_runtime(top_n=3)
    fams = parse(prometheus_client.generate_latest(rt.metrics.registry).decode())
    assert len(samples(fams, "grprof_group_goroutines", target="zoo")) == 3


def test_scrape_histogram_and_counter(scenario: Any) -> None:
    fams = parse(scenario[3])
    h = fams["grprof_scrape_duration_seconds"]
    count = {(s.labels["target"], s.labels["kind"]): s.value for s in h.samples if s.name.endswith("_count")}
    assert count == {
        ("zoo", "debug=1"): 3,
        ("zoo", "goroutineleak"): 1,
        ("zoo", "debug=2"): 1,
        ("down", "debug=1"): 2,
    }
    zoo1 = samples(fams, "grprof_scrape_duration_seconds", target="zoo", kind="debug=1")
    buckets = {s.labels["le"]: s.value for s in zoo1 if s.name.endswith("_bucket")}
    assert (buckets["0.005"], buckets["0.25"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (
        1,
        2,
        2,
        3,
        3,
    )
    total = {
        (s.labels["target"], s.labels["kind"], s.labels["result"]): s.value
        for s in fams["grprof_scrapes"].samples
        if s.name == "grprof_scrapes_total"
    }
    assert total == {
        ("zoo", "debug=1", "ok"): 3,
        ("zoo", "goroutineleak", "not_found"): 1,
        ("zoo", "debug=2", "ok"): 1,
        ("down", "debug=1", "timeout"): 1,
        ("down", "debug=1", "unreachable"): 1,
    }
    assert not [s for f in fams.values() for s in f.samples if s.name.endswith("_created")]


def test_static_labels_on_every_series(scenario: Any) -> None:
    fams = parse(scenario[3])
    seen = set()
    for name, fam in fams.items():
        for s in fam.samples:
            if name == "grprof_build_info":
                assert s.labels == {"version": grprof.__version__, "python": platform.python_version()}
                continue
            target = s.labels["target"]
            static = {k: v for k, v in s.labels.items() if k not in OWN_LABELS[name] | {"target"}}
            # One label set per target, the same on all its series; `target` never overridden.
            assert static == (ZOO_STATIC if target == "zoo" else {"team": "edge"}), (name, s.labels)
            seen.add(name)
    assert seen == set(OWN_LABELS)


def test_label_sanitising() -> None:
    assert label_name("team.name") == "team_name"
    assert label_name("1st") == "_1st"
    assert label_name("--x") == "_x"
    assert label_name("") == "_"
    assert label_name("ünï") == "_n_"
    assert label_name("ü_x") == "_x"  # "__x" would be reserved for Prometheus
    assert static_labels(ZOO_LABELS) == ZOO_STATIC
    assert static_labels({"a.b": "1", "a_b": "2", "a-b": "3"}) == {"a_b": "3", "a_b_2": "1", "a_b_3": "2"}


def test_exposition_is_prometheus_clients_text() -> None:
    """`exposition` writes each label pair once per call; what it writes is byte for byte what
    prometheus_client's `generate_latest` writes of the same registry, escapes included."""
    from grprof.server.metrics import exposition

    rt, _, _ = zoo_runtime()
    odd = {"path": 'C:\\go\\"x"\nnext', "unicode": "héllo ✓", "empty": ""}
    rt.targets["odd"] = TargetRuntime(Target("odd", "http://127.0.0.1:3", odd), up=False, goroutines=3)
    rt.observe_scrape(ScrapeResult("odd", "debug=2", T0, 1e-7, "ok"))
    rt.observe_scrape(ScrapeResult("odd", "debug=2", T0, 12345678.9, "ok"))
    text = exposition(rt.metrics.registry)
    assert text == prometheus_client.generate_latest(rt.metrics.registry)
    assert b'path="C:\\\\go\\\\\\"x\\"\\nnext"' in text


def test_promtool_accepts_the_exposition(scenario: Any, tmp_path: Path) -> None:
    if ensure_prometheus() is None:
        pytest.skip("promtool not installed and not root: cannot apt-get install prometheus")
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=scenario[3], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == proc.stderr == "", proc.stdout + proc.stderr


def doc_blocks(lang: str) -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_no_global_registry() -> None:
    """Each Runtime has its own registry: many apps per process, nothing in the default one."""
    a, _, _ = zoo_runtime()
    b = Runtime.create()
    b.targets["other"] = TargetRuntime(Target("other", "http://127.0.0.1:2"), up=True, goroutines=7)
    fa = parse(prometheus_client.generate_latest(a.metrics.registry).decode())
    fb = parse(prometheus_client.generate_latest(b.metrics.registry).decode())
    assert {s.labels["target"] for s in fa["grprof_target_up"].samples} == {"zoo", "down"}
    assert {s.labels["target"] for s in fb["grprof_target_up"].samples} == {"other"}
    assert fb["grprof_scrape_duration_seconds"].samples == []
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "grprof_" not in default


def test_the_stores_batched_writes(tmp_path: Path) -> None:
    """What the daemon's store wrote and failed to write, and what waits: on a real store."""
    from grprof.server.metrics import exposition
    from grprof.store import ScrapeRecord, open_store

    rt = Runtime.create()
    assert "grprof_store_" not in exposition(rt.metrics.registry).decode()  # no store: no series
    store = open_store(str(tmp_path / "g.db"))
    rt.metrics.store_writes = store.write_stats
    for i in range(5):
        store.add_scrape(
            ScrapeRecord("t", "debug=1", T0 + dt.timedelta(seconds=i), 0.01, "ok", 10), wait=False
        )
    store.targets()  # a read: the queue is written first
    fams = parse(exposition(rt.metrics.registry).decode())
    assert value(fams, "grprof_store_writes", result="ok") == 5
    assert value(fams, "grprof_store_writes", result="failed") == 0
    assert value(fams, "grprof_store_queued_writes") == 0
    assert 1 <= value(fams, "grprof_store_batches") <= 5
    # A write the database refuses (SQLite stores a NaN as NULL: the NOT NULL duration) is
    # counted and logged, not raised.
    bad = ScrapeRecord("t", "debug=1", T0, float("nan"), "ok", 10)
    store.add_scrape(bad, wait=False)
    store.targets()
    fams = parse(exposition(rt.metrics.registry).decode())
    assert value(fams, "grprof_store_writes", result="failed") == 1
    store.close()


def test_removed_target_disappears() -> None:
    rt, _, _ = zoo_runtime()
    rt.remove_target("down")
    text = prometheus_client.generate_latest(rt.metrics.registry).decode()
    assert 'target="down"' not in text
    assert 'target="zoo"' in text
    # remove_target also frees the histogram's and counter's series (no slow memory leak):
    # asked with labels for both, only the kept target has any.
    both = {"zoo": {"target": "zoo"}, "down": {"target": "down"}}
    for metric in rt.metrics.scrape_families(both):
        assert {s.labels["target"] for s in metric.samples} == {"zoo"}
    # A target dropped from the dict alone is no longer exposed either.
    del rt.targets["zoo"]
    text = prometheus_client.generate_latest(rt.metrics.registry).decode()
    assert 'target="' not in text


# -- wait-reason classes -------------------------------------------------------------------

# Every status and wait reason Go 1.18-1.27 prints (docs: the format reference, section 2).
GO_STATES = {
    "chan receive": "channel",
    "chan send": "channel",
    "chan receive (nil chan)": "channel",
    "chan send (nil chan)": "channel",
    "chan receive (durable)": "channel",
    "select": "select",
    "select (no cases)": "select",
    "select (durable)": "select",
    "semacquire": "sync",
    "sync.Mutex.Lock": "sync",
    "sync.RWMutex.RLock": "sync",
    "sync.RWMutex.Lock": "sync",
    "sync.WaitGroup.Wait": "sync",
    "sync.WaitGroup.Wait (durable)": "sync",
    "sync.Cond.Wait": "sync",
    "IO wait": "io",
    "sleep": "sleep",
    "sleep (durable)": "sleep",
    "syscall": "syscall",
    "waiting for cgo callback": "syscall",
    "GC assist marking": "gc",
    "GC assist wait": "gc",
    "GC sweep wait": "gc",
    "GC scavenge wait": "gc",
    "GC worker (idle)": "gc",
    "GC worker (active)": "gc",
    "GC mark termination": "gc",
    "GC weak to strong wait": "gc",
    "garbage collection": "gc",
    "garbage collection scan": "gc",
    "finalizer wait": "gc",
    "cleanup wait": "gc",
    "force gc (idle)": "gc",
    "wait for GC cycle": "gc",
    "timer goroutine (idle)": "runtime",
    "GOMAXPROCS updater (idle)": "runtime",
    "trace reader (blocked)": "runtime",
    "dumping heap": "runtime",
    "panicwait": "runtime",
    "debug call": "runtime",
    "stopping the world": "runtime",
    "flushing proc caches": "runtime",
    "trace goroutine status": "runtime",
    "trace proc status": "runtime",
    "page trace flush": "runtime",
    "coroutine": "runtime",
    "preempted": "runtime",
    "copystack": "runtime",
    "idle": "runtime",
    "dead": "runtime",
    "running": "running",
    "runnable": "running",
    "unknown": "unknown",
    "???": "unknown",
    "waiting": "other",
    "leaked": "other",
    "synctest.Run": "other",
    "synctest.Wait": "other",
    "a reason from Go 1.30": "other",
}


@pytest.mark.parametrize(("state", "cls"), sorted(GO_STATES.items()))
def test_classify_wait(state: str, cls: str) -> None:
    assert classify_wait(state) == cls


def test_every_recorded_state_has_a_class() -> None:
    """Every state the recorded Go programs (1.19-1.27) were in falls in a named class."""
    states: set[str] = set()
    for truth in sorted((FIXTURES / "states").glob("*/truth.json")):
        states |= set(json.loads(truth.read_text())["counts"])
    for dump in sorted(FIXTURES.glob("**/*.debug2.txt")):
        states |= {st for g in grprof.load(dump).groups() for st in g.states}
    assert len(states) >= 15
    unclassified = {st for st in states if classify_wait(st) in ("other", "unknown")}
    assert unclassified == set()


def test_blocked_by_class_of_a_debug1_profile() -> None:
    """debug=1 hides runtime frames; channel and select waits are still inferred from the hidden
    PCs (docs/formats.md), so they land in their classes, not in "unknown"."""
    snap = grprof.load(FIXTURES / "states" / "go1.26.8" / "goroutine.debug1.txt")
    blocked = blocked_by_class(snap.groups())
    assert sum(blocked.values()) == snap.total
    assert blocked["channel"] > 0 and blocked["sync"] > 0 and blocked["io"] > 0
    assert "unknown" not in blocked


# -- a real Prometheus scraping a real server ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_prometheus_scrapes_it(tmp_path: Path) -> None:
    if ensure_prometheus() is None:
        pytest.skip("prometheus not installed and not root: cannot apt-get install prometheus")
    rt, snaps, d = zoo_runtime()
    store = open_store(str(tmp_path / "grprof.db"))
    try:
        with serve(create_app(store, rt, api_token="t")) as addr, run_prometheus({"grprof": [addr]}) as prom:
            assert httpx.get(f"http://{addr}/metrics").status_code == 200  # no token needed
            wait_for_series(prom.url, 'grprof_target_goroutines{job="grprof"}')
            (res,) = instant(prom.url, 'grprof_target_goroutines{target="zoo"}')["result"]
            assert float(res["value"][1]) == snaps[-1].total
            assert res["metric"]["team_name"] == "payments" and res["metric"]["exported_target"] == "spoofed"
            leaks = instant(prom.url, 'sum(grprof_leak_suspects{verdict="leak"})')["result"]
            assert float(leaks[0]["value"][1]) == sum(1 for f in d.findings if f.verdict == "leak")
            quant = instant(
                prom.url, "histogram_quantile(0.5, sum by (le) (grprof_scrape_duration_seconds_bucket))"
            )["result"]
            assert 0 < float(quant[0]["value"][1]) <= 1.0
            # Every query docs/metrics.md shows runs (a syntax error would raise HTTP 400).
            for query in doc_blocks("promql"):
                instant(prom.url, query)
            (leaking,) = instant(prom.url, doc_blocks("promql")[0])["result"]
            assert leaking["metric"] == {"target": "zoo"}
    finally:
        store.close()
