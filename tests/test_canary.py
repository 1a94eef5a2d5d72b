"""grprof canary (docs/canary.md): the statistics against their standard definitions, the
settings' validation, the command on files and on a store, the API routes (Argo Rollouts web
metric, Flagger webhook) on a real store, and, slow, real Go: two builds of examples/leaky
under the same load (v1 = -fixed, v2 = the leak) fail; v1 against v1 passes; v1 with twice the
traffic against v1 passes (load, not a leak).

`python -m grprof.canary` runs the real command (until `grprof canary` is wired).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import itertools
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import grprof
from grprof import schema
from grprof.canary.api import canary_routes
from grprof.canary.config import CanaryConfig, CanaryError, ServedCanary, load_config
from grprof.canary.judge import judge
from grprof.canary.stats import compare, hodges_lehmann, u_null_cdf, u_quantile
from grprof.collect.model import Target
from grprof.config import Config, ConfigError, parse_config
from grprof.config import load_config as load_serve_config
from grprof.server.runtime import Runtime, TargetRuntime
from grprof.store.model import Store

sys.path.insert(0, str(Path(__file__).parent))
from gobuild import build_goapp, run_goapp

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4", "5-drained")
LEAKY = "../../examples/leaky"


def _canary(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grprof.cli", "canary", *args], capture_output=True, text=True, timeout=timeout
    )


# -- statistics ------------------------------------------------------------------------------


def _brute_u_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) by enumerating every arrangement of m + n distinct values."""
    counts: Counter[int] = Counter()
    for pos in itertools.combinations(range(m + n), m):
        counts[sum(pos) - m * (m - 1) // 2] += 1
    total = sum(counts.values())
    return np.cumsum([counts[u] for u in range(m * n + 1)]) / total


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (4, 5), (5, 4), (6, 6), (3, 8)])
def test_u_null_distribution_is_exact(m: int, n: int) -> None:
    assert np.allclose(u_null_cdf(m, n), _brute_u_cdf(m, n))


def test_u_quantile_matches_the_tables() -> None:
    # The two-sided 5% critical value of U for m = n = 10 is 23 (P(U <= 23) = 0.0216): the
    # 2.5% quantile is 24, R's qwilcox(0.025, 10, 10).
    cdf = u_null_cdf(10, 10)
    assert cdf[23] < 0.025 <= cdf[24]
    assert u_quantile(10, 10, 0.025) == 24
    # large samples: the normal approximation, close to the exact quantile
    assert abs(u_quantile(300, 300, 0.025) - (45000 - 1.96 * (300 * 300 * 601 / 12) ** 0.5)) < 3


def test_hodges_lehmann_as_r_wilcox_test() -> None:
    # R: wilcox.test(1:10, 11:20, conf.int = TRUE): difference in location -10, 95% CI -13 -7
    est, low, high, conf = hodges_lehmann(list(range(1, 11)), list(range(11, 21)))
    assert (est, low, high) == (-10.0, -13.0, -7.0)
    assert 0.95 <= conf < 0.96
    # the estimate is the median of the pairwise differences
    x, y = [3.0, 9.0, 4.0], [1.0, 2.0]
    assert hodges_lehmann(x, y)[0] == float(np.median([a - b for a in x for b in y]))


def test_interval_coverage_at_least_the_level() -> None:
    rng = np.random.default_rng(7)
    inside = 0
    for _ in range(300):
        a = rng.normal(0, 1, 12)
        b = rng.normal(0, 1, 12) + 2.0
        _, low, high, _ = hodges_lehmann(b.tolist(), a.tolist(), 0.9)
        inside += low <= 2.0 <= high
    assert inside / 300 >= 0.85  # nominal 0.9 (at least; U is discrete), with sampling slack


def test_compare_directions() -> None:
    up = compare([10.0, 11, 12, 13, 14, 15, 16, 17], [1.0, 2, 3, 4, 5, 6, 7, 8])
    assert up.estimate == 9 and up.low > 0 and up.p_greater < 0.001 and up.p_less > 0.99
    flat = compare([5.0] * 8, [5.0] * 8)
    assert (flat.estimate, flat.low, flat.high, flat.p_greater) == (0, 0, 0, 1.0)


# -- settings --------------------------------------------------------------------------------


def test_shipped_settings_validate() -> None:
    cfg = load_config()
    assert {m.name for m in cfg.metrics} == {
        "target-goroutines",
        "target-growth",
        "group-goroutines",
        "group-growth",
    }
    assert cfg.thresholds.pass_ == 75 and cfg.thresholds.marginal == 50 and cfg.marginal == "fail"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "thresholds:\n  pass: 40\n  marginal: 60\n",
            "c.yaml:3: thresholds.marginal: must not be above pass (40)",
        ),
        ("confidance: 0.9\n", 'c.yaml:1: confidance: unknown key (did you mean "confidence"?)'),
        ("marginal: maybe\n", "c.yaml:1: marginal: Input should be 'pass' or 'fail'"),
        (
            "metrics:\n  - {name: a, scope: target, measure: count}\n"
            "  - {name: a, scope: group, measure: count}\n",
            "c.yaml:3: metrics.1.name: 'a' named twice",
        ),
        (
            "metrics:\n  - {name: a, scope: pod, measure: count}\n",
            "c.yaml:2: metrics.0.scope: Input should be",
        ),
    ],
)
def test_bad_settings_are_one_line_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(CanaryError) as e:
        load_config(str(f))
    assert str(e.value).startswith(message.replace("c.yaml", str(f)))


# -- files, store, API -------------------------------------------------------------------------


def _zoo(phases: tuple[str, ...] = PHASES) -> list[grprof.Snapshot]:
    return [grprof.load(ZOO / f"{p}.goroutine.debug2.txt") for p in phases]


@pytest.fixture
def zoo_dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A baseline that stays at the zoo's warm-up, a canary that leaks (the zoo's phases), and
    settings needing 3 samples per side (the fixtures have 6 snapshots)."""
    base, can = tmp_path / "base", tmp_path / "can"
    base.mkdir()
    can.mkdir()
    warm = (ZOO / "0-warm-up.goroutine.debug2.txt").read_bytes()
    for i, p in enumerate(PHASES):
        (base / f"{i}.txt").write_bytes(warm)
        (can / f"{i}.txt").write_bytes((ZOO / f"{p}.goroutine.debug2.txt").read_bytes())
    cfg = tmp_path / "canary.yaml"
    cfg.write_text("min_samples: 3\n")
    return base, can, cfg


def test_judge_leaking_zoo_fails_critically() -> None:
    cfg = load_config(overrides={"min_samples": 3})
    warm = _zoo(("0-warm-up",))[0]
    base = {"stable": [grprof.load(ZOO / "0-warm-up.goroutine.debug2.txt") for _ in range(6)]}
    r = judge(base, {"canary": _zoo()}, cfg, interval=30)
    assert r.verdict == "fail" and not r.passes()
    kinds = Counter(c.kind for c in r.critical)
    assert kinds["runtime_confirmed_leak"] >= 10  # the zoo's debug=2 dumps mark `(leaked)` goroutines
    sites = {c.finding.site.function for c in r.critical if c.finding.site}
    assert "main.leakyHandler.func1" in sites
    # the same snapshots on both sides: nothing to blame
    same = judge({"a": [warm] * 6}, {"b": [warm] * 6}, cfg, interval=30)
    assert (same.verdict, same.score, same.critical) == ("pass", 100.0, ())


def test_command_on_files_json_and_webhook(zoo_dirs: tuple[Path, Path, Path]) -> None:
    base, can, cfg = zoo_dirs
    got: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with _serve(Hook) as url:
        p = _canary(
            "--baseline", str(base), "--canary", str(can), "--interval", "30s", "--config", str(cfg),
            "--json", "--webhook", url,
        )  # fmt: skip
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "grprof.canary/v1"
    jsonschema.Draft202012Validator(schema.json_schema(schema.CanaryReport)).validate(doc)
    assert (doc["verdict"], doc["passed"]) == ("fail", False)
    assert any(c["site"]["function"] == "main.leakyHandler.func1" for c in doc["critical"])
    assert got == [doc]
    # baseline against itself: pass, exit 0, text output
    p = _canary("--baseline", str(base), "--canary", str(base), "--interval", "30s", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("canary: PASS  score 100/100")


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "/nonexistent/x", "--canary", "/nonexistent/y"], "grprof: /nonexistent/x: no such"),
        (["--baseline", "a", "--canary", "b", "--marginal", "maybe"], "invalid choice"),
        (["--baseline", "127.0.0.1:1", "--canary", "127.0.0.1:1", "--duration", "1s", "--interval", "2s"],
         "must be at least --interval"),
    ],
)  # fmt: skip
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    p = _canary(*args)
    assert p.returncode == 2
    assert message in p.stderr and p.stderr.count("\n") == 1


def _store_world(tmp_path: Path) -> tuple[Store, Runtime]:
    from grprof.store import open_store

    store = open_store(str(tmp_path / "grprof.db"))
    targets = [
        Target("stable-1", "http://10.0.0.1:6060", {"track": "stable", "app": "zoo"}),
        Target("canary-1", "http://10.0.0.2:6060", {"track": "canary", "app": "zoo"}),
        Target("stable-2", "http://10.0.0.3:6060", {"track": "stable2", "app": "zoo"}),
    ]
    store.upsert_targets(targets, None)
    now = dt.datetime.now(dt.UTC)
    for i, snap in enumerate(_zoo()):
        t = now - dt.timedelta(seconds=30 * (6 - i))
        snap.time = t
        store.add_snapshot("canary-1", snap)
        for name in ("stable-1", "stable-2"):
            warm = grprof.load(ZOO / "0-warm-up.goroutine.debug2.txt")
            warm.time = t
            store.add_snapshot(name, warm)
    runtime = Runtime.create()
    for t_ in targets:
        runtime.targets[t_.name] = TargetRuntime(t_)
    return store, runtime


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    store, runtime = _store_world(tmp_path)
    app = FastAPI()
    app.include_router(canary_routes(store, runtime))
    with TestClient(app) as c:
        yield c, tmp_path / "grprof.db"
    store.close()


def test_api_canary_argo_web_metric(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    body = {
        "baseline": ["track=stable"],
        "canary": ["track=canary"],
        "window": "10m",
        "config": {"min_samples": 3},
    }
    r = client.post("/api/v1/canary", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["schema"] == "grprof.canary/v1" and doc["verdict"] == "fail" and doc["passed"] is False
    assert [t["name"] for t in doc["baseline"]] == ["stable-1"] and [t["name"] for t in doc["canary"]] == [
        "canary-1"
    ]
    assert doc["critical"]
    same = client.post("/api/v1/canary", json={**body, "canary": ["stable-2"]}).json()
    assert (same["verdict"], same["score"], same["passed"]) == ("pass", 100.0, True)
    # GET: the same judgement from query parameters (the shipped min_samples: 6 snapshots each
    # are enough for counts; growth has 5 samples per side and no data)
    g = client.get("/api/v1/canary", params={"baseline": "stable-1", "canary": "stable-2", "window": "10m"})
    assert g.status_code == 200 and g.json()["verdict"] == "pass"
    assert any("target-growth" in w for w in g.json()["warnings"])
    # errors
    assert client.post("/api/v1/canary", json={**body, "canary": ["nope"]}).status_code == 404
    assert client.post("/api/v1/canary", json={**body, "canary": ["track=none"]}).status_code == 404
    assert client.post("/api/v1/canary", json={**body, "window": "soon"}).status_code == 422
    assert client.post("/api/v1/canary", json={**body, "window": "1s"}).status_code == 422
    assert (
        client.post("/api/v1/canary", json={**body, "config": {"thresholds": {"pass": 200}}}).status_code
        == 422
    )
    assert client.post("/api/v1/canary", json={"baseline": [], "canary": ["x"]}).status_code == 422
    schema = client.get("/openapi.json").json()
    assert "CanaryRequest" in schema["components"]["schemas"]
    assert "CanaryReport" in schema["components"]["schemas"]


def test_api_flagger_webhook(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    payload: dict[str, Any] = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc",
        "metadata": {"baseline": "stable-1", "canary": "canary-1", "window": "10m"},
    }
    r = client.post("/api/v1/canary/flagger", json=payload)
    assert r.status_code == 412 and r.json()["verdict"] == "fail"
    payload["metadata"] = {"baseline": "stable-1", "canary": "stable-2,app=nothing", "window": "10m"}
    assert client.post("/api/v1/canary/flagger", json=payload).status_code == 404
    payload["metadata"] = {"baseline": "stable-1", "canary": "stable-2"}
    assert client.post("/api/v1/canary/flagger", json=payload).status_code == 200
    payload["metadata"] = {"canary": "stable-2"}
    r = client.post("/api/v1/canary/flagger", json=payload)
    assert r.status_code == 422 and "baseline missing" in r.json()["error"]


def test_command_on_a_store(api: tuple[TestClient, Path], tmp_path: Path) -> None:
    _, db = api
    cfg = tmp_path / "c.yaml"
    cfg.write_text("min_samples: 3\n")
    args = ["--db", str(db), "--baseline", "track=stable", "--duration", "10m", "--config", str(cfg)]
    p = _canary(*args, "--canary", "track=canary")
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("canary: FAIL")
    p = _canary(*args, "--canary", "stable-2", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verdict"] == "pass"
    p = _canary(*args, "--canary", "stable-1")
    assert p.returncode == 2 and "on both sides" in p.stderr


# -- `canary:` in grprof serve's configuration, and the API judging with it -------------------

SERVE = "version: 1\ntargets: []\ncanary:\n"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  confidance: 0.9\n", 'FILE:4: canary.confidance: unknown key (did you mean "confidence"?)'),
        # the shipped pass (75) is merged in before the check across keys
        ("  thresholds:\n    marginal: 90\n",
         "FILE:5: canary.thresholds.marginal: must not be above pass (75)"),
        ("  metrics:\n    - {name: a, scope: pod, measure: count}\n",
         "FILE:5: canary.metrics.0.scope: Input should be 'target' or 'group'"),
        ("  metrics:\n    - {name: a, scope: target, measure: count}\n"
         "    - {name: a, scope: group, measure: count}\n", "FILE:6: canary.metrics.1.name: 'a' named twice"),
        ("  min_samples: one\n", "FILE:4: canary.min_samples: Input should be a valid integer"),
    ],
)  # fmt: skip
def test_a_bad_canary_section_is_one_line_with_the_line(tmp_path: Path, section: str, message: str) -> None:
    f = tmp_path / "grprof.yaml"
    f.write_text(SERVE + section)
    with pytest.raises(ConfigError) as e:
        load_serve_config(f)
    assert str(e.value).startswith(message.replace("FILE", str(f))), str(e.value)


def test_serve_refuses_to_start_with_a_bad_canary_section(tmp_path: Path) -> None:
    f = tmp_path / "grprof.yaml"
    f.write_text(SERVE + "  marginal: maybe\n")
    p = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "serve", "--config", str(f), "--db", str(tmp_path / "g.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"grprof: {f}:4: canary.marginal: Input should be 'pass' or 'fail'"), p.stderr
    assert p.stderr.count("\n") == 1, p.stderr


def test_the_section_replaces_the_shipped_settings_key_by_key() -> None:
    shipped = load_config()
    assert parse_config("version: 1\n").canary == ServedCanary.shipped()
    assert parse_config("canary:\n").canary.model_dump() == shipped.model_dump()
    got = parse_config("canary:\n  min_samples: 3\n  thresholds: {pass: 90}\n").canary
    assert (got.min_samples, got.thresholds.pass_, got.thresholds.marginal) == (3, 90, 50)
    assert (got.metrics, got.critical) == (shipped.metrics, shipped.critical)
    # the configuration dumped validates again (grprof serve re-validates it with its flags)
    cfg = parse_config("canary: {thresholds: {pass: 90}}\n")
    assert Config.model_validate(cfg.model_dump()) == cfg


def test_the_api_judges_with_the_served_settings(tmp_path: Path) -> None:
    store, runtime = _store_world(tmp_path)
    served: list[CanaryConfig] = [parse_config("canary: {min_samples: 3, thresholds: {pass: 90}}\n").canary]
    app = FastAPI()
    app.include_router(canary_routes(store, runtime, settings=lambda: served[0]))
    body: dict[str, Any] = {"baseline": ["stable-1"], "canary": ["stable-2"], "window": "10m"}
    try:
        with TestClient(app) as c:
            doc = c.post("/api/v1/canary", json=body).json()
            # min_samples 3: growth (5 samples a side) is judged too, as with the shipped 6 it is not
            assert doc["thresholds"] == {"pass": 90, "marginal": 50, "marginal_is": "fail"}
            assert all(m["judged"] for m in doc["metrics"]) and not doc["warnings"], doc
            # a request's keys over the served ones (min_samples stays 3)
            over = c.post("/api/v1/canary", json={**body, "config": {"thresholds": {"pass": 60}}}).json()
            assert over["thresholds"]["pass"] == 60 and all(m["judged"] for m in over["metrics"])
            # read at each request: the settings a reload put in force apply to the next one
            served[0] = parse_config("canary: {marginal: pass}\n").canary
            doc = c.post("/api/v1/canary", json=body).json()
            assert doc["thresholds"] == {"pass": 75, "marginal": 50, "marginal_is": "pass"}
            assert any("target-growth" in w for w in doc["warnings"])
            flagger = {"metadata": {"baseline": "stable-1", "canary": "canary-1"}}
            r = c.post("/api/v1/canary/flagger", json=flagger)
            assert r.status_code == 412 and r.json()["thresholds"]["marginal_is"] == "pass"
    finally:
        store.close()


DOC = (Path(__file__).parent.parent / "docs" / "canary.md").read_text(encoding="utf-8")


def test_the_documented_serve_config_is_valid(tmp_path: Path) -> None:
    section = DOC.split("\n## In `grprof serve`: the `canary:` section\n", 1)[1]
    text = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "grprof.yaml"
    f.write_text(text)
    got = load_serve_config(f).canary
    assert got != ServedCanary.shipped()
    assert (got.thresholds.pass_, got.thresholds.marginal, got.min_samples) == (80, 60, 4)


# -- real Go: two builds of examples/leaky under load ------------------------------------------

DURATION, INTERVAL = "30s", "2s"


@pytest.fixture(scope="module")
def leaky() -> Iterator[dict[str, str]]:
    """v1 (-fixed) twice, v1 with twice the traffic, v2 (the leak), all at -rate 40 but the one."""
    binary = build_goapp(LEAKY, env={"GOEXPERIMENT": "goroutineleakprofile"})
    with (
        run_goapp(binary, "-addr", "127.0.0.1:0", "-fixed", "-rate", "40") as (_, v1),
        run_goapp(binary, "-addr", "127.0.0.1:0", "-fixed", "-rate", "40") as (_, v1b),
        run_goapp(binary, "-addr", "127.0.0.1:0", "-fixed", "-rate", "80") as (_, v1x2),
        run_goapp(binary, "-addr", "127.0.0.1:0", "-rate", "40") as (_, v2),
    ):
        yield {"v1": v1, "v1b": v1b, "v1x2": v1x2, "v2": v2}


def _live(baseline: str, canary: str) -> tuple[int, dict[str, Any]]:
    p = _canary(
        "--baseline", baseline, "--canary", canary, "--duration", DURATION, "--interval", INTERVAL, "--json"
    )
    assert p.returncode in (0, 1) and p.stdout, p.stderr
    doc = json.loads(p.stdout)
    print(f"\n{baseline} vs {canary}: {doc['verdict']} score {doc['score']} exit {p.returncode}")
    return p.returncode, doc


@pytest.mark.slow
def test_live_v1_fixed_vs_v2_leaky_fails(leaky: dict[str, str]) -> None:
    rc, doc = _live(leaky["v1"], leaky["v2"])
    assert (rc, doc["verdict"]) == (1, "fail")
    assert doc["score"] < 50
    leaks = [c for c in doc["critical"] if c["site"]["function"] == "main.leakyHandler.func1"]
    assert leaks and leaks[0]["runtime_confirmed"]
    decided = {(i["metric"], (i["site"] or {}).get("function")) for i in doc["decided_by"]}
    assert ("group-goroutines", "main.leakyHandler.func1") in decided
    assert ("group-growth", "main.leakyHandler.func1") in decided
    assert {"target-goroutines", "target-growth"} <= {i["metric"] for i in doc["decided_by"]}
    assert all(t["snapshots"] >= 14 for t in doc["baseline"] + doc["canary"])


@pytest.mark.slow
def test_live_v1_vs_v1_passes(leaky: dict[str, str]) -> None:
    rc, doc = _live(leaky["v1"], leaky["v1b"])
    assert (rc, doc["verdict"], doc["critical"]) == (0, "pass", [])
    assert doc["score"] >= 75


@pytest.mark.slow
def test_live_twice_the_traffic_is_load_not_a_leak(leaky: dict[str, str]) -> None:
    rc, doc = _live(leaky["v1"], leaky["v1x2"])
    assert (rc, doc["verdict"], doc["critical"]) == (0, "pass", [])
    assert doc["score"] >= 75
