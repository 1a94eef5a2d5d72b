"""The leak zoo's /truth agrees with real dumps of the zoo.

Offline: every phase of the recorded series in tests/fixtures/zoo/ agrees with
its truth.json (request counts per phase from times.json), and the checker
notices a wrong claim. Live (slow): a real PostgreSQL and the zoo, one phase of
traffic, then every truth stack is in the debug=2 dump with its count per
request, labels in debug=1, the goroutineleak profile lists exactly the stacks
the truth says, and every control is within its bounds.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from pgserver import PgServer
from zoo import (
    LEAK_FORMAT,
    Phase,
    check_truth,
    get,
    goroutine_matches,
    run_phase,
    scrape,
    start_zoo,
)

import grprof

FIXTURE = Path(__file__).parent / "fixtures" / "zoo"
CATEGORIES = {"channel", "context", "sdk/net/http", "sdk/database/sql", "sdk/grpc", "sync", "timer", "io"}
CONTROLS = {"worker-pool", "bursts", "keepalive", "periodic-job"}
PHASE_FILE = re.compile(r"(\d+)-([\w-]+)\.(goroutine\.debug[012]|goroutineleak\.debug1)\.(txt|pb\.gz)")

Truth = dict[str, Any]


def phase_truth(truth: Truth, requests: dict[str, int]) -> Truth:
    t = copy.deepcopy(truth)
    for leak in t["leaks"]:
        leak["requests"] = requests[leak["kind"]]
    return t


def fixture_phases() -> list[tuple[str, Truth]]:
    truth = json.loads((FIXTURE / "truth.json").read_text())
    phases = json.loads((FIXTURE / "times.json").read_text())["phases"]
    return [(f"{i}-{p['name']}", phase_truth(truth, p["requests"])) for i, p in enumerate(phases)]


def load(name: str) -> grprof.Snapshot:
    return grprof.load(FIXTURE / name)


def test_fixture_is_complete_and_small() -> None:
    truth = json.loads((FIXTURE / "truth.json").read_text())
    assert {leak["category"] for leak in truth["leaks"]} == CATEGORIES
    assert {c["name"] for c in truth["controls"]} >= CONTROLS
    assert truth["leak_profile"] and truth["database"]
    names = sorted(p.name for p in FIXTURE.iterdir() if PHASE_FILE.fullmatch(p.name))
    assert len(names) == 4 * len(fixture_phases())
    assert sum(p.stat().st_size for p in FIXTURE.iterdir()) < 2 * 1024 * 1024


@pytest.mark.parametrize("phase", [name for name, _ in fixture_phases()])
def test_fixture_phase_matches_truth(phase: str) -> None:
    truth = dict(fixture_phases())[phase]
    problems = check_truth(
        truth,
        load(f"{phase}.goroutine.debug2.txt"),
        dump1=load(f"{phase}.goroutine.debug1.txt"),
        leak1=load(f"{phase}.goroutineleak.debug1.txt"),
    )
    assert problems == []


def test_fixture_series_grows_then_drains() -> None:
    """Leaks only grow across the leak phases; the drained phase has no bursts left."""
    phases = fixture_phases()
    dumps = [load(f"{name}.goroutine.debug2.txt") for name, _ in phases]
    truth = phases[-1][1]
    for leak in truth["leaks"]:
        stack = leak["goroutines"][0]
        counts = [sum(goroutine_matches(stack, g) for g in d.goroutines) for d in dumps]
        assert counts == sorted(counts), (leak["kind"], counts)
        assert counts[-1] > counts[0], (leak["kind"], counts)
    burst = next(c for c in truth["controls"] if c["name"] == "bursts")["goroutines"][0]
    bursts = [sum(goroutine_matches(burst, g) for g in d.goroutines) for d in dumps]
    assert max(bursts[1:-1]) > 0 and bursts[-1] == 0, bursts


def test_checker_notices_wrong_claims() -> None:
    name, truth = fixture_phases()[-1]
    dump2, leak1 = load(f"{name}.goroutine.debug2.txt"), load(f"{name}.goroutineleak.debug1.txt")
    assert check_truth(truth, dump2, leak1=leak1) == []
    wrong_count = copy.deepcopy(truth)
    wrong_count["leaks"][0]["goroutines"][0]["per_request"] += 1
    assert check_truth(wrong_count, dump2)
    wrong_function = copy.deepcopy(truth)
    wrong_function["leaks"][0]["goroutines"][0]["function"] = "main.elsewhere"
    assert check_truth(wrong_function, dump2)
    wrong_proof = copy.deepcopy(truth)
    for leak in wrong_proof["leaks"]:
        for stack in leak["goroutines"]:
            stack["leak_profile"] = not stack["leak_profile"]
    assert len(check_truth(wrong_proof, dump2, leak1=leak1)) >= len(truth["leaks"])


@pytest.mark.slow
def test_live_zoo_matches_truth(postgres: PgServer) -> None:
    with start_zoo(postgres.dsn) as zoo:
        truth = zoo.truth()
        assert truth["database"] and truth["leak_profile"], truth["go_version"]
        assert check_truth(truth, grprof.load(scrape(zoo.base, "debug=2"))) == []

        run_phase(zoo.base, Phase("leak", leaks=3, bursts=2, keepalive=1, pool=1), truth)
        dump2 = grprof.load(scrape(zoo.base, "debug=2"))
        dump1 = grprof.load(scrape(zoo.base, "debug=1"))
        leak1 = grprof.load(scrape(zoo.base, LEAK_FORMAT))
        truth = zoo.truth()

        assert {leak["category"] for leak in truth["leaks"]} == CATEGORIES
        for leak in truth["leaks"]:
            assert leak["enabled"] and leak["requests"] == 3, leak["kind"]
            assert leak["per_request"] == sum(s["per_request"] for s in leak["goroutines"]) > 0
        assert check_truth(truth, dump2, dump1=dump1, leak1=leak1) == []

        controls = {c["name"]: c["goroutines"] for c in truth["controls"]}
        assert set(controls) >= CONTROLS
        for name in ("bursts", "keepalive"):  # traffic just ran: present, not only within bounds
            stack = controls[name][0]
            assert any(goroutine_matches(stack, g) for g in dump2.goroutines), name

        status, metrics = get(zoo.base, "/metrics")
        assert status == 200
        assert (
            b'http_request_duration_seconds_bucket{handler="/leak/chan-send-timeout",le="+Inf"} 3' in metrics
        )

        time.sleep(0.3)  # bursts last at most 100 ms
        drained = grprof.load(scrape(zoo.base, "debug=2"))
        assert not any(goroutine_matches(controls["bursts"][0], g) for g in drained.goroutines)
        assert check_truth(zoo.truth(), drained) == []
