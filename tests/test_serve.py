"""`grprof serve` for real: Go services scraped over HTTP by a real daemon process, findings
through the API, /metrics, config reload, kill -9 and restart, PostgreSQL shards."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gobuild import build_goapp, run_goapp
from pgserver import PgServer
from prometheus_client.parser import text_string_to_metric_families
from serveproc import Serve, free_port, run_serve, start_serve_process
from zoo import hit, start_zoo

LEAKY = "../../examples/leaky"


@contextlib.contextmanager
def leaky(rate: int = 20) -> Iterator[str]:
    """examples/leaky built with the goroutineleak profile: the runtime proves its leak."""
    binary = build_goapp(LEAKY, env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary, "-addr", "127.0.0.1:0", "-rate", str(rate)) as (_, base):
        yield base


@contextlib.contextmanager
def healthy() -> Iterator[str]:
    with run_goapp("healthy") as (_, base):
        yield base


def findings(srv: Any, **params: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    r = srv.get("/api/v1/findings" + (f"?{q}" if q else ""))
    assert r["schema"] == "grprof.findings/v1"
    return list(r["findings"])


def metrics(srv: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(srv.get("/metrics")):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def write_config(
    path: Path, version: int, targets: dict[str, str], scrape: tuple[str, ...] = (), **extra: Any
) -> None:
    """A serve config scraping every second; `scrape` adds `key: value` lines to its section."""
    lines = [f"version: {version}", "scrape:", "  interval: 1s", "  timeout: 1s", "  leak_profile_every: 2"]
    lines += [f"  {line}" for line in scrape]
    lines.append("targets:" if targets else "targets: []")
    for name, url in targets.items():
        lines += [f"  - name: {name}", f"    url: {url}", "    labels: {team: core}"]
    for k, v in extra.items():
        lines.append(f"{k}: {v}")
    path.write_text("\n".join(lines) + "\n")


# serve reads no source: these zoo leaks park in channel frames only, and only the blocking
# statement would tell their context or ticker apart (docs/rules.md).
STACK_ONLY = {
    "ctx-select-cancel-lost": "channel",
    "timer-ticker-loop": "channel",
    "timer-after-loop": "channel",
}


@pytest.mark.slow
def test_zoo_and_healthy_service(tmp_path: Path, postgres: PgServer) -> None:
    cfg = tmp_path / "grprof.yaml"
    with start_zoo(postgres.dsn) as zoo, healthy() as ok:
        write_config(cfg, 1, {"zoo": zoo.base, "healthy": ok})
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            truth = zoo.truth()
            kinds = [leak for leak in truth["leaks"] if leak["enabled"]]
            rounds = [0]

            def every_category_found() -> bool:
                # Keep leaking while waiting (at most 30 rounds: each database leak holds a
                # PostgreSQL connection): growth is what finds what the runtime cannot prove.
                if rounds[0] < 30:
                    rounds[0] += 1
                    for leak in kinds:
                        hit(zoo.base, leak["endpoint"], 2)
                missing = {STACK_ONLY.get(leak["kind"], leak["category"]) for leak in kinds} - {
                    f["category"] for f in findings(srv, target="zoo")
                }
                return not missing

            srv.wait_for(every_category_found, timeout=90, every=1.5)
            bad = findings(srv, target="healthy")
            assert bad == [], [(f["site"], f["counts"], [e["summary"] for e in f["evidence"]]) for f in bad]
            leaks = findings(srv, target="zoo", verdict="leak")
            assert leaks and all(f["lifecycle"] in ("new", "ongoing") for f in leaks)
            targets = {t["name"]: t for t in srv.get("/api/v1/targets")["targets"]}
            assert targets["zoo"]["up"] and targets["healthy"]["up"]
            assert targets["zoo"]["open_findings"] > 0 and targets["healthy"]["open_findings"] == 0
            m = metrics(srv)
            for name in (
                "grprof_target_up",
                "grprof_target_goroutines",
                "grprof_leak_suspects",
                "grprof_scrapes",
            ):
                assert name in m, sorted(m)
            ups = {s.labels["target"]: s.value for s in m["grprof_target_up"]}
            assert ups == {"zoo": 1.0, "healthy": 1.0}
            # every scrape written in the store's batches, none failed
            writes = {s.labels["result"]: s.value for s in m["grprof_store_writes"]}
            assert writes["ok"] >= 10 and writes["failed"] == 0, writes
            assert 0 < m["grprof_store_batches"][0].value <= writes["ok"]
            assert all(s.labels.get("team") == "core" for s in m["grprof_target_up"])
            # Two targets never wait for the concurrency limit: lag is the jitter at most.
            lags = {s.labels["target"]: s.value for s in m["grprof_scrape_lag_seconds"]}
            assert lags.keys() == {"zoo", "healthy"} and all(0 <= v < 1.0 for v in lags.values()), lags
            snaps = srv.get("/api/v1/targets/zoo/snapshots?limit=2")["snapshots"]
            diff = srv.get(f"/api/v1/snapshots/{snaps[1]['id']}/diff/{snaps[0]['id']}")
            assert "groups" in diff


@pytest.mark.slow
def test_config_reload(tmp_path: Path) -> None:
    cfg = tmp_path / "grprof.yaml"
    with leaky() as a, healthy() as b:
        write_config(cfg, 1, {"a": a})
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:

            def names() -> set[str]:
                return {t["name"] for t in srv.get("/api/v1/targets")["targets"] if not t.get("removed")}

            assert names() == {"a"}
            write_config(cfg, 2, {"a": a, "b": b})  # picked up on change
            srv.wait_for(lambda: names() == {"a", "b"})
            cfg.write_text("version: 3\nscrape: {interval: fast}\n")  # invalid: refused
            srv.wait_for(lambda: "refused" in srv.logs())
            write_config(cfg, 1, {"a": a})  # older: refused
            srv.wait_for(lambda: "older than the running version 2" in srv.logs())
            srv.process.send_signal(signal.SIGHUP)
            time.sleep(1.5)
            assert names() == {"a", "b"}
            write_config(cfg, 3, {"b": b})
            srv.process.send_signal(signal.SIGHUP)
            srv.wait_for(lambda: names() == {"b"})


def scraped(srv: Serve) -> bool:
    return any(t["last_success"] for t in srv.get("/api/v1/targets")["targets"])


@pytest.mark.slow
def test_kill_9_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    rng = random.Random(7)
    with leaky() as a, healthy() as b:
        args = ["--target", a, "--target", b, "--interval", "1s", "--db", str(db)]
        seen = 0
        for round_ in range(5):
            port = free_port()
            with open(tmp_path / f"log{round_}", "w+b") as log:
                proc = start_serve_process(args, port, log)
                srv = Serve(f"http://127.0.0.1:{port}", proc, log)
                # Kill at a random moment once it scrapes (startup time varies with the load).
                srv.wait_for(lambda s=srv: scraped(s), timeout=60)
                time.sleep(rng.random() * 3)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            con = sqlite3.connect(db)
            try:
                assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                n = con.execute("SELECT count(*) FROM snapshots").fetchone()[0]
            finally:
                con.close()
            assert n >= seen, "history lost after kill -9"
            seen = n
        assert seen > 5
        with run_serve(args) as srv:
            before = len(
                srv.get("/api/v1/targets/" + a.split("://")[1] + "/snapshots?limit=1000")["snapshots"]
            )
            srv.wait_for(
                lambda: (
                    len(
                        srv.get("/api/v1/targets/" + a.split("://")[1] + "/snapshots?limit=1000")["snapshots"]
                    )
                    > before
                )
            )
            leak_findings = [f for f in findings(srv) if f["verdict"] == "leak"]
            assert any(f["site"]["function"] == "main.leakyHandler.func1" for f in leak_findings)


@pytest.mark.slow
def test_debug0_scrapes_are_parsed_stored_and_judged(tmp_path: Path) -> None:
    """`scrape.format: debug=0`, the format a fleet scrapes: the gzipped profile.proto is
    read (not refused as binary), stored as a debug=0 snapshot, and the leak is found."""
    cfg = tmp_path / "grprof.yaml"
    with leaky() as a:
        write_config(cfg, 1, {"a": a}, scrape=("format: debug=0",))
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:

            def snaps() -> list[dict[str, Any]]:
                return list(srv.get("/api/v1/targets/a/snapshots?limit=1000")["snapshots"])

            srv.wait_for(lambda: any(m["format"] == "debug=0" for m in snaps()))
            first = next(m for m in snaps() if m["format"] == "debug=0")
            assert first["total"] > 0 and first["groups"] > 0, first
            srv.wait_for(lambda: any(f["verdict"] == "leak" for f in findings(srv)), timeout=90)
            (target,) = srv.get("/api/v1/targets")["targets"]
            assert not target.get("last_error"), target
            assert "parse_error" not in srv.logs()


@pytest.mark.slow
@pytest.mark.timing
def test_misbehaving_targets_do_not_delay_healthy_ones(tmp_path: Path) -> None:
    from misbehaving import fake_targets

    with fake_targets() as ft, healthy() as ok:
        bad = {b: ft.url(b) for b in ("never", "slow", "huge", "garbage", "loop", "gzip-bomb", "error500")}
        bad |= {"raw-garbage": ft.raw_garbage_url, "silent": ft.silent_url, "dead": ft.dead_url}
        targets = {"ok": ok, **{f"bad-{k}": url for k, url in bad.items()}}
        cfg = tmp_path / "grprof.yaml"
        write_config(cfg, 1, targets)
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            time.sleep(8)
            m = metrics(srv)
            ok_scrapes = sum(
                s.value
                for s in m["grprof_scrapes"]
                if s.name == "grprof_scrapes_total"
                and s.labels["target"] == "ok"
                and s.labels["kind"] != "goroutineleak"
            )
            assert ok_scrapes >= 6, ok_scrapes  # every second, whatever the others do
            up = {s.labels["target"]: s.value for s in m["grprof_target_up"]}
            assert up["ok"] == 1.0
            assert all(v == 0.0 for k, v in up.items() if k.startswith("bad-")), up
            assert srv.process.poll() is None


def _finding_keys(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(f["target"], f["category"], f["site"]["function"]) for f in rows if f["verdict"] == "leak"}


@pytest.mark.slow
def test_postgres_shards_match_sqlite(tmp_path: Path, postgres: PgServer) -> None:
    with contextlib.ExitStack() as stack:
        bases = [stack.enter_context(leaky(rate=10)) for _ in range(3)] + [stack.enter_context(healthy())]
        targets: list[str] = []
        for b in bases:
            targets += ["--target", b]
        common = [*targets, "--interval", "1s"]
        dsn = postgres.create_database("shards")
        lite = stack.enter_context(run_serve([*common, "--db", str(tmp_path / "one.db")]))
        s0 = stack.enter_context(run_serve([*common, "--db", dsn, "--shard", "0/2"]))
        s1 = stack.enter_context(run_serve([*common, "--db", dsn, "--shard", "1/2"]))
        want = lite.wait_for(
            lambda: (k := _finding_keys(findings(lite))) and len({t for t, _, _ in k}) == 3 and k
        )
        got = s0.wait_for(lambda: _finding_keys(findings(s0)) >= want and _finding_keys(findings(s0)))
        # Any replica answers for every target: both see all findings.
        assert _finding_keys(findings(s1)) == got
        assert {t for t, _, _ in want} == {b.split("://")[1] for b in bases[:3]}
        owned0 = {s.labels["target"] for s in metrics(s0)["grprof_target_up"]}
        owned1 = {s.labels["target"] for s in metrics(s1)["grprof_target_up"]}
        assert owned0.isdisjoint(owned1) and len(owned0 | owned1) == 4


def test_serve_collects_the_young_generation_less_often() -> None:
    import gc

    from grprof._gc import THRESHOLDS as GC_THRESHOLDS
    from grprof._gc import tune

    before = gc.get_threshold()
    try:
        # From CPython's defaults: an in-process `analyze` run earlier in this worker may
        # have tuned them already.
        gc.set_threshold(700, 10, 10)
        tune(freeze=True)
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > 700
        assert gc.get_freeze_count() > 0  # start-up objects are out of every collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
