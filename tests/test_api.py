"""The HTTP API of `grprof serve` (grprof.server.api), on a store filled from recorded dumps.

The store holds what a replica would have written after scraping the leak zoo through its
phases (tests/fixtures/zoo, real Go output) and the states program (labels, every wait
state), with the detector's real findings synced after each phase. Requests go through
FastAPI's TestClient, and once through a real uvicorn server on a loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

import grprof
from grprof.collect.model import Target
from grprof.detect.detector import detect
from grprof.server.api import create_app, parse_label
from grprof.server.runtime import CaptureRefused, Runtime, TargetRuntime, blocked_by_class
from grprof.store.model import ScrapeRecord, Store

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
STATES = FIXTURES / "states" / "go1.26.8"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4", "5-drained")
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = "s3cret-token"
ZOO_URL = "http://scraper:hunter2@127.0.0.1:6060"
SD_NAME = "payments/10.0.0.7:6060"


def open_test_store(path: Path) -> Store:
    from grprof.store import open_store

    return open_store(str(path))


@dataclass
class World:
    store: Store
    runtime: Runtime
    zoo_ids: list[int]
    states_ids: dict[str, int]
    zoo_totals: list[int]
    findings: list[Any]


def _zoo_snapshots() -> list[grprof.Snapshot]:
    snaps = [grprof.load(ZOO / f"{p}.goroutine.debug2.txt") for p in PHASES]
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
    return snaps


def build_world(tmp: Path) -> World:
    store = open_test_store(tmp / "grprof.db")
    zoo = Target("zoo", ZOO_URL, {"team": "payments", "env": "prod"})
    states = Target("states", "http://127.0.0.1:6061", {"team": "core"})
    remote = Target("remote", "http://10.0.0.9:6060", {"team": "edge"})
    store.upsert_targets([remote], "2/2")  # another replica's target
    store.upsert_targets([zoo, states, Target("old", "http://127.0.0.1:6062")], "1/2")
    runtime = Runtime.create((1, 2))
    snaps = _zoo_snapshots()
    zoo_ids = []
    findings: list[Any] = []
    for i, snap in enumerate(snaps):
        store.record_scrape(ScrapeRecord("zoo", "debug=2", snap.time or T0, 0.02, "ok", 1000))
        zoo_ids.append(store.add_snapshot("zoo", snap, None))
        findings = detect(snaps[: i + 1]).findings
        if i == len(snaps) - 1:
            # As if the drained phase no longer showed one finding of the leak phases: resolved.
            findings = findings[:-1]
        store.sync_findings("zoo", findings, snap.time or T0)
    rt = TargetRuntime(zoo, up=True, goroutines=snaps[-1].total, findings=findings)
    rt.blocked = blocked_by_class(snaps[-1].groups())
    runtime.targets["zoo"] = rt
    states_ids = {}
    for j, fmt in enumerate(("debug1", "debug2")):
        snap = grprof.load(STATES / f"goroutine.{fmt}.txt")
        snap.time = T0 + dt.timedelta(minutes=10, seconds=j)
        raw = (STATES / f"goroutine.{fmt}.txt").read_bytes()
        store.record_scrape(ScrapeRecord("states", "debug=1", snap.time, 0.01, "ok", len(raw)))
        states_ids[fmt] = store.add_snapshot("states", snap, raw if fmt == "debug2" else None)
    runtime.targets["states"] = TargetRuntime(states, up=True)
    # file_sd names targets `job/host:port`: a name with a slash and a colon.
    sd = Target(SD_NAME, "http://10.0.0.7:6060", {"job": "payments"}, source="file_sd:/etc/grprof/sd.json")
    store.upsert_targets([zoo, states, sd], "1/2")
    store.add_snapshot(SD_NAME, snaps[0], None)
    runtime.targets[SD_NAME] = TargetRuntime(sd)
    return World(store, runtime, zoo_ids, states_ids, [s.total for s in snaps], findings)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("api"))
    yield w
    w.store.close()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.store, world.runtime, max_page=50)) as c:
        yield c


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["version"] == grprof.__version__
    assert body["shard"] == "1/2"
    assert body["targets"] == 3
    assert body["started"].endswith("Z")


def test_targets_is_the_federated_view(client: TestClient, world: World) -> None:
    body = client.get("/api/v1/targets").json()
    by_name = {t["name"]: t for t in body["targets"]}
    assert list(by_name) == ["old", SD_NAME, "remote", "states", "zoo"]
    zoo, remote = by_name["zoo"], by_name["remote"]
    assert zoo["local"] is True and remote["local"] is False
    assert zoo["shard"] == "1/2" and remote["shard"] == "2/2"
    assert zoo["labels"] == {"team": "payments", "env": "prod"}
    # Basic-auth credentials in a target URL never leave the server.
    assert zoo["url"] == "http://127.0.0.1:6060"
    assert "hunter2" not in client.get("/api/v1/targets").text
    assert zoo["up"] is True and zoo["last_error"] == ""
    assert zoo["goroutines"] == world.zoo_totals[-1]
    assert zoo["last_success"] == "2026-03-01T12:02:30Z"
    open_findings = [f for f in world.store.findings(target="zoo") if f.state != "resolved"]
    assert zoo["open_findings"] == len(open_findings) > 0
    assert sum(zoo["blocked"].values()) == world.zoo_totals[-1]
    assert remote["up"] is False and remote["goroutines"] is None and remote["blocked"] is None
    # Dropped from this replica's configuration: kept, with its history, marked removed.
    assert by_name["old"]["removed"] is True and zoo["removed"] is False


def test_snapshots_newest_first_and_paged(client: TestClient, world: World) -> None:
    body = client.get("/api/v1/targets/zoo/snapshots").json()
    assert body["target"] == "zoo"
    ids = [s["id"] for s in body["snapshots"]]
    assert ids == list(reversed(world.zoo_ids))
    assert [s["total"] for s in body["snapshots"]] == list(reversed(world.zoo_totals))
    first = body["snapshots"][0]
    assert first["time"] == "2026-03-01T12:02:30Z"
    assert first["format"] == "debug=2" and first["profile"] == "goroutine"
    assert body["next_before"] is None

    page = client.get("/api/v1/targets/zoo/snapshots", params={"limit": 2}).json()
    assert [s["id"] for s in page["snapshots"]] == ids[:2]
    assert page["next_before"] == page["snapshots"][-1]["time"]
    rest = client.get("/api/v1/targets/zoo/snapshots", params={"limit": 2, "before": page["next_before"]})
    assert [s["id"] for s in rest.json()["snapshots"]] == ids[2:4]


def test_target_name_with_slash(client: TestClient, world: World) -> None:
    for path in (SD_NAME, SD_NAME.replace("/", "%2F")):
        body = client.get(f"/api/v1/targets/{path}/snapshots").json()
        assert body["target"] == SD_NAME
        assert [s["total"] for s in body["snapshots"]] == [world.zoo_totals[0]]


def test_snapshots_errors(client: TestClient) -> None:
    r = client.get("/api/v1/targets/nope/snapshots")
    assert r.status_code == 404
    assert r.json() == {"error": "unknown target 'nope'", "detail": None}
    for bad in ("0", "51", "x"):
        r = client.get("/api/v1/targets/zoo/snapshots", params={"limit": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"].startswith("query parameter 'limit':"), r.json()
    r = client.get("/api/v1/targets/zoo/snapshots", params={"before": "yesterday"})
    assert r.status_code == 422 and "'before'" in r.json()["error"]


def test_snapshot_groups(client: TestClient, world: World) -> None:
    sid = world.zoo_ids[4]
    body = client.get(f"/api/v1/snapshots/{sid}").json()
    assert body["snapshot"]["id"] == sid and body["snapshot"]["target"] == "zoo"
    groups = body["groups"]
    assert sum(g["count"] for g in groups) == body["snapshot"]["total"] == world.zoo_totals[4]
    assert len(groups) == body["snapshot"]["groups"]
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert sum(body["blocked"].values()) == world.zoo_totals[4]
    assert body["blocked"]["channel"] > 0 and body["blocked"]["io"] > 0
    g = groups[0]
    assert set(g) >= {"signature", "track", "count", "state", "states", "site", "frames", "labels"}
    assert g["site"]["function"] and g["frames"][0]["line"] > 0

    r = client.get("/api/v1/snapshots/999999")
    assert r.status_code == 404 and r.json()["error"] == "no snapshot 999999"
    assert client.get("/api/v1/snapshots/abc").status_code == 422
    r = client.get(f"/api/v1/snapshots/{2**64}")
    assert r.status_code == 422 and r.json()["error"].startswith("path parameter 'snapshot_id':")


def test_raw_profile(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/snapshots/{world.states_ids['debug2']}/raw")
    assert r.status_code == 200
    assert r.content == (STATES / "goroutine.debug2.txt").read_bytes()
    r = client.get(f"/api/v1/snapshots/{world.states_ids['debug1']}/raw")
    assert r.status_code == 404 and "no raw profile" in r.json()["error"]


def test_diff_shows_the_leaks_growing(client: TestClient, world: World) -> None:
    a, b = world.zoo_ids[0], world.zoo_ids[4]
    body = client.get(f"/api/v1/snapshots/{a}/diff/{b}").json()
    assert body["same_target"] is True and body["warning"] is None
    t = body["totals"]
    assert (t["a"], t["b"]) == (world.zoo_totals[0], world.zoo_totals[4])
    assert t["delta"] == t["b"] - t["a"] > 0
    assert t["minutes"] == 2.0
    rows = body["groups"]
    assert [abs(r["delta"]) for r in rows] == sorted((abs(r["delta"]) for r in rows), reverse=True)
    assert sum(r["delta"] for r in rows) == t["delta"]
    assert all(r["delta"] == r["b"] - r["a"] for r in rows)
    # Every leak the detector found grew between the two phases, and shows here with its track.
    leak_ids = {f.id for f in world.findings if f.verdict == "leak"}
    grown = {r["track"] for r in rows if r["delta"] > 0}
    assert leak_ids and leak_ids <= grown
    assert {r["status"] for r in rows} <= {"new", "gone", "changed", "same"}
    assert t["new_groups"] == sum(1 for r in rows if r["status"] == "new")


def test_diff_across_formats_matches_by_track(client: TestClient, world: World) -> None:
    """debug=1 and debug=2 of one process have different signatures but the same tracks."""
    a, b = world.states_ids["debug1"], world.states_ids["debug2"]
    body = client.get(f"/api/v1/snapshots/{a}/diff/{b}").json()
    rows = body["groups"]
    assert body["totals"]["a"] == body["totals"]["b"] == 72
    assert {r["status"] for r in rows} == {"same"}
    assert sum(r["a"] for r in rows) == 72
    # Each track pairs the debug=1 group with its debug=2 group: two signatures, one row.
    assert all(len(r["signatures"]) == 2 for r in rows)


def test_diff_of_different_targets_says_so(client: TestClient, world: World) -> None:
    body = client.get(f"/api/v1/snapshots/{world.zoo_ids[0]}/diff/{world.states_ids['debug2']}").json()
    assert body["same_target"] is False
    assert body["warning"] == "snapshots of different targets ('zoo', 'states')"
    r = client.get(f"/api/v1/snapshots/{world.zoo_ids[0]}/diff/424242")
    assert r.status_code == 404 and r.json()["error"] == "no snapshot 424242"


def test_findings_schema_and_lifecycle(client: TestClient, world: World) -> None:
    body = client.get("/api/v1/findings").json()
    assert body["schema"] == "grprof.findings/v1"
    items = body["findings"]
    assert items and {f["target"] for f in items} == {"zoo"}
    latest = {f.id: f.to_json() for f in world.findings}
    for item in items:
        assert item["lifecycle"] in ("new", "ongoing", "resolved")
        assert item["first_seen"].endswith("Z") and item["last_seen"].endswith("Z")
        # The same schema and content as `grprof analyze --json`, plus target and lifecycle.
        if item["id"] in latest:
            want = latest[item["id"]]
            assert {k: item[k] for k in want} == want
    ongoing = [f for f in items if f["lifecycle"] == "ongoing"]
    assert ongoing, "leaks seen in several phases are ongoing"
    assert all(f["first_seen"] < f["last_seen"] for f in ongoing)


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"verdict": "leak"}, lambda f: f["verdict"] == "leak"),
        ({"verdict": "suspect"}, lambda f: f["verdict"] == "suspect"),
        ({"category": "channel"}, lambda f: f["category"] == "channel"),
        ({"state": "ongoing"}, lambda f: f["lifecycle"] == "ongoing"),
        # the finding the drained phase no longer shows
        ({"state": "resolved"}, lambda f: f["lifecycle"] == "resolved" and f["resolved_at"].endswith("Z")),
        ({"target": "zoo", "verdict": "leak", "category": "sync"}, lambda f: f["category"] == "sync"),
    ],
)
def test_findings_filters(client: TestClient, params: dict[str, str], check: Any) -> None:
    items = client.get("/api/v1/findings", params=params).json()["findings"]
    assert items and all(check(f) for f in items)
    everything = client.get("/api/v1/findings").json()["findings"]
    field = {"state": "lifecycle"}  # the `state` filter is on the lifecycle
    assert len(items) == sum(1 for f in everything if all(f[field.get(k, k)] == v for k, v in params.items()))


def test_findings_filter_no_match_and_validation(client: TestClient) -> None:
    assert client.get("/api/v1/findings", params={"target": "states"}).json()["findings"] == []
    r = client.get("/api/v1/findings", params={"verdict": "maybe"})
    assert r.status_code == 422
    assert (
        r.json()["error"] == "query parameter 'verdict': Input should be 'leak', 'suspect' or 'inconclusive'"
    )
    r = client.get("/api/v1/findings", params={"state": "open"})
    assert r.status_code == 422
    assert r.json()["error"] == "query parameter 'state': Input should be 'new', 'ongoing' or 'resolved'"


@pytest.mark.parametrize(
    ("params", "key", "value", "goroutines"),
    [
        ({"label": "http.route:/spawn"}, "http.route", "/spawn", 4),
        ({"label": "http.route=/spawn"}, "http.route", "/spawn", 4),
        # split at the first separator: the value keeps its own ':' and ']'
        ({"label": "tricky:a]: b"}, "tricky", "a]: b", 2),
        ({"label": "span id:s-1"}, "span id", "s-1", 1),
        ({"key": "msg", "value": 'say "hi"\tü 😀'}, "msg", 'say "hi"\tü 😀', 2),
    ],
)
def test_search_labels(
    client: TestClient, params: dict[str, str], key: str, value: str, goroutines: int
) -> None:
    body = client.get("/api/v1/search", params=params).json()
    assert (body["key"], body["value"]) == (key, value)
    results = body["results"]
    assert results and {r["target"] for r in results} == {"states"}
    for r in results:
        assert r["goroutines"] == goroutines
        assert r["group"]["labels"][key][value] == goroutines
        assert r["snapshot"]["target"] == "states"
    # Newest snapshot first.
    times = [r["snapshot"]["time"] for r in results]
    assert times == sorted(times, reverse=True)


def test_search_errors(client: TestClient) -> None:
    assert client.get("/api/v1/search", params={"label": "trace_id:none"}).json()["results"] == []
    for params in ({"label": "no-separator"}, {"label": ":value"}, {}, {"key": "k"}):
        r = client.get("/api/v1/search", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]


def test_parse_label() -> None:
    assert parse_label("trace_id:abc") == ("trace_id", "abc")
    assert parse_label("k=v:w") == ("k", "v:w")
    assert parse_label("k:v=w") == ("k", "v=w")
    assert parse_label("empty:") == ("empty", "")


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found", "detail": None}
    r = client.delete("/api/v1/targets")
    assert r.status_code == 405 and r.json()["error"] == "Method Not Allowed"


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/healthz",
        "/api/v1/targets",
        "/api/v1/targets/{name}/snapshots",
        "/api/v1/snapshots/{snapshot_id}",
        "/api/v1/snapshots/{a}/diff/{b}",
        "/api/v1/findings",
        "/api/v1/search",
        "/api/v1/targets/{name}/capture",
    ):
        assert p in paths, p


# -- capture -------------------------------------------------------------------------------


class Daemon:
    """Stands in for the daemon's `capture(name)`: it stores a recorded debug=2 dump."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[str] = []
        self.reply: dict[str, Any] | Exception | None = None
        self.gate: asyncio.Event | None = None

    async def capture(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.reply, Exception):
            raise self.reply
        if self.reply is not None:
            return self.reply
        snap = grprof.load(ZOO / "4-leak-4.goroutine.debug2.txt")
        snap.time = T0 + dt.timedelta(minutes=5)
        sid = await asyncio.to_thread(self.world.store.add_snapshot, name, snap, None)
        return {"status": "ok", "snapshot": sid}


@pytest.fixture
def daemon(world: World) -> Iterator[tuple[Daemon, TestClient]]:
    d = Daemon(world)
    with TestClient(create_app(world.store, world.runtime, capture=d.capture)) as c:
        yield d, c


def test_capture_stores_a_snapshot(daemon: tuple[Daemon, TestClient]) -> None:
    d, c = daemon
    r = c.post("/api/v1/targets/zoo/capture")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["target"] == "zoo" and body["status"] == "ok"
    snap = c.get(f"/api/v1/snapshots/{body['snapshot']}").json()["snapshot"]
    assert snap["target"] == "zoo" and snap["format"] == "debug=2"
    assert d.calls == ["zoo"]
    assert c.post(f"/api/v1/targets/{SD_NAME}/capture").status_code == 201
    assert d.calls == ["zoo", SD_NAME]


def test_capture_only_names_configured_targets(daemon: tuple[Daemon, TestClient]) -> None:
    d, c = daemon
    r = c.post("/api/v1/targets/unknown/capture")
    assert r.status_code == 404 and r.json()["error"] == "unknown target 'unknown'"
    r = c.post("/api/v1/targets/remote/capture")  # in the store, scraped by the other replica
    assert r.status_code == 404
    assert r.json() == {"error": "target 'remote' is scraped by another replica", "detail": {"shard": "2/2"}}
    # A URL where a name goes: no route takes it, or it is an unknown name; nothing is fetched.
    for evil in ("http:%2F%2F127.0.0.1:1%2F", "..%2F..%2Fetc", "zoo%2F..%2Fx"):
        assert c.post(f"/api/v1/targets/{evil}/capture").status_code == 404
    assert c.get("/api/v1/targets/zoo/capture").status_code == 405
    assert d.calls == []


@pytest.mark.parametrize(
    ("reply", "code", "error"),
    [
        (
            {"status": "refused", "error": "12000 goroutines, above the debug=2 limit of 10000"},
            409,
            "12000 goroutines, above the debug=2 limit of 10000",
        ),
        (CaptureRefused("debug=2 disabled for this target"), 409, "debug=2 disabled for this target"),
        ({"status": "timeout", "error": "no answer within 10s"}, 502, "no answer within 10s"),
        ({"status": "http_error", "error": ""}, 502, "http_error"),
        (KeyError("zoo"), 404, "unknown target 'zoo'"),
    ],
)
def test_capture_failures(daemon: tuple[Daemon, TestClient], reply: Any, code: int, error: str) -> None:
    d, c = daemon
    d.reply = reply
    r = c.post("/api/v1/targets/zoo/capture")
    assert r.status_code == code, r.text
    assert r.json()["error"] == error
    assert d.calls == ["zoo"]


def test_capture_one_at_a_time(world: World) -> None:
    """A second capture of a target while one runs is refused (debug=2 stops the world)."""
    d = Daemon(world)
    app = create_app(world.store, world.runtime, capture=d.capture)

    async def run() -> tuple[int, int]:
        d.gate = asyncio.Event()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.post("/api/v1/targets/zoo/capture"))
            while not d.calls:
                await asyncio.sleep(0.01)
            second = await c.post("/api/v1/targets/zoo/capture")
            d.gate.set()
            return (await first).status_code, second.status_code

    assert asyncio.run(run()) == (201, 409)
    assert d.calls == ["zoo"]


def test_capture_disabled(client: TestClient) -> None:
    r = client.post("/api/v1/targets/zoo/capture")
    assert r.status_code == 501 and "not enabled" in r.json()["error"]


# -- auth ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authed(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.store, world.runtime, api_token=TOKEN)) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/targets"),
        ("GET", "/api/v1/targets/zoo/snapshots"),
        ("GET", "/api/v1/snapshots/1"),
        ("GET", "/api/v1/snapshots/1/diff/2"),
        ("GET", "/api/v1/findings"),
        ("GET", "/api/v1/search?label=a:b"),
        ("POST", "/api/v1/targets/zoo/capture"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/no/such/route"),
    ],
)
def test_token_required(authed: TestClient, method: str, path: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        r = authed.request(method, path, headers=headers)
        assert r.status_code == 401, (path, headers)
        assert r.headers["www-authenticate"] == 'Bearer realm="grprof"'
        assert r.json()["error"] == "unauthorized"


def test_token_accepted(authed: TestClient) -> None:
    for scheme in ("Bearer", "bearer"):
        r = authed.get("/api/v1/targets", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert r.status_code == 200
    r = authed.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    schema = r.json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/healthz"]["get"]["security"] == []
    r = authed.get("/no/such/route", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404


def test_healthz_and_metrics_never_need_the_token(authed: TestClient) -> None:
    assert authed.get("/healthz").status_code == 200
    r = authed.get("/metrics")
    assert r.status_code == 200 and "grprof_target_up" in r.text


def test_no_token_means_open(client: TestClient) -> None:
    assert client.get("/api/v1/targets").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


# -- a real server ---------------------------------------------------------------------------


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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_over_real_http(world: World) -> None:
    with serve(create_app(world.store, world.runtime, api_token=TOKEN)) as base:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{base}/api/v1/targets").status_code == 401
        targets = httpx.get(f"{base}/api/v1/targets", headers=auth).json()["targets"]
        assert [t["name"] for t in targets] == ["old", SD_NAME, "remote", "states", "zoo"]
        leaks = httpx.get(f"{base}/api/v1/findings?verdict=leak", headers=auth).json()["findings"]
        # No source here: the zoo's ticker loops park in channel frames only (docs/rules.md).
        assert {f["category"] for f in leaks} >= {"channel", "sync", "io", "context"}
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'grprof_target_up{env="prod",target="zoo",team="payments"} 1.0' in metrics.text
