"""Redaction (docs/owners.md#redaction): sensitive pprof label values never reach the JSON,
the HTML, the store, the API or /metrics. Real recordings of the zoo (tests/goapps/zoo, whose
handlers run under pprof labels), with hostile values added to their labels."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import grprof
from grprof._yamlvalid import YamlError
from grprof.collect.model import Target
from grprof.detect.detector import detect
from grprof.redact import RedactConfig, Redactor, load_redact_file
from grprof.server.api import create_app
from grprof.server.runtime import Runtime, TargetRuntime
from grprof.store import open_store

ZOO = Path(__file__).resolve().parent / "fixtures" / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SECRETS = (
    "alice.smith@example.com",
    "sk_live_51HxQ2eZvKYlo2C0aBcD",
    "s3cr3t-t0ken-value",
    "hunter2pw",
    "550e8400-e29b-41d4-a716-446655440000",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
)
HOSTILE = (
    '{"user":"alice.smith@example.com",'
    '"auth":"Bearer sk_live_51HxQ2eZvKYlo2C0aBcD",'
    '"callback":"https://api.example.com/cb?token=s3cr3t-t0ken-value",'
    '"db":"postgres://app:hunter2pw@db.internal/app",'
    '"request":"550e8400-e29b-41d4-a716-446655440000",'
    '"session":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",'
    '"handler":"'
)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("hostile")
    out = []
    for p in PHASES:
        text = (ZOO / f"{p}.goroutine.debug1.txt").read_text()
        assert '# labels: {"handler":"' in text
        f = d / f"{p}.goroutine.debug1.txt"
        f.write_text(text.replace('# labels: {"handler":"', "# labels: " + HOSTILE))
        out.append(f)
    return out


def no_secrets(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s} in {where}"


def test_presets() -> None:
    r = Redactor.load()
    assert r.value("k", "mail alice@example.com now") == "mail <redacted:email> now"
    assert r.value("k", "Bearer abc.def") == "<redacted:bearer>"
    assert r.value("k", "/leak/sync-waitgroup-never-zero") == "/leak/sync-waitgroup-never-zero"
    assert r.value("k", "tenant-acme") == "tenant-acme"
    h = Redactor.load(RedactConfig(replace="hash"))
    a, b = h.value("k", "a@example.com"), h.value("k", "b@example.com")
    assert a != b and a == h.value("k", "a@example.com") and re.fullmatch(r"<redacted:email:[0-9a-f]{8}>", a)
    kd = Redactor.load(RedactConfig(keep=["user"], drop=["session"]))
    assert kd.labels({"user": "a@example.com", "session": "x", "o": "b@example.com"}) == {
        "user": "a@example.com",
        "o": "<redacted:email>",
    }


def test_config_errors_have_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "redact.yaml"
    p.write_text("presets: [default, nope]\n")
    with pytest.raises(YamlError, match=r"redact.yaml:1: presets.1: unknown preset 'nope'"):
        load_redact_file(p)
    p.write_text("rules:\n  - kind: x\n    pattern: '(['\n")
    with pytest.raises(YamlError, match=r"redact.yaml:3: rules.0.pattern: .*bad regex"):
        load_redact_file(p)


def test_analyze_redact_json_and_html(dumps: list[Path], tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    cmd = [sys.executable, "-m", "grprof.cli", "analyze", "--json", "--html", str(html), *map(str, dumps)]
    raw = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert any(s in raw.stdout for s in SECRETS), "without --redact the values are there"
    out = subprocess.run([*cmd, "--redact"], capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), out.stderr
    no_secrets(out.stdout, "analyze --json")
    no_secrets(out.stderr, "stderr")
    no_secrets(html.read_text(), "HTML")
    doc = json.loads(out.stdout)
    labels = doc["groups"][0]["labels"] if doc["groups"][0].get("labels") else {}
    seen = json.dumps(doc)
    assert "<redacted:email>" in seen and "<redacted:url-credentials>" in seen and "<redacted:jwt>" in seen
    assert labels is not None


def test_store_api_and_metrics(dumps: list[Path], tmp_path: Path) -> None:
    snaps = [grprof.load(p) for p in dumps]
    r = Redactor.load()
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
        assert r.apply(s) > 0
    d = detect(snaps)
    db = tmp_path / "grprof.db"
    store = open_store(str(db))
    store.upsert_targets([Target("zoo", "http://127.0.0.1:6060")], "1/1")
    ids = [store.add_snapshot("zoo", s, None) for s in snaps]
    store.sync_findings("zoo", d.findings, T0)
    rt = Runtime.create((1, 1))
    rt.targets["zoo"] = TargetRuntime(
        Target("zoo", "http://127.0.0.1:6060"), up=True, findings=d.findings, top_groups=snaps[-1].groups()
    )
    try:
        with TestClient(create_app(store, rt)) as c:
            paths = [
                "/api/v1/findings",
                f"/api/v1/snapshots/{ids[-1]}",
                "/api/v1/search?label=user:<redacted:email>",
                "/api/v1/search?label=handler:/leak/chan-nil",
                "/metrics",
            ]
            responses = [c.get(p) for p in paths]
            assert [x.status_code for x in responses] == [200] * len(paths), [x.text for x in responses]
            bodies = [x.text for x in responses]
    finally:
        store.close()
    for b in bodies:
        no_secrets(b, "API")
    assert "<redacted:" in bodies[0] + bodies[1]
    assert '"<redacted:email>"' in bodies[2]  # the redacted value is what is searchable
    files = sorted(tmp_path.glob("grprof.db*"))  # the database and its WAL, if any
    for f in files:
        data = f.read_bytes()
        for s in SECRETS:
            assert s.encode() not in data, f"{s} in {f.name}"


def test_serve_pipeline_redacts_before_the_store(dumps: list[Path], tmp_path: Path) -> None:
    """The serve config's `redact:` and `owners:`: scrapes of hostile labels go through the
    daemon's pipeline (debug=1 and a goroutineleak profile, whose raw text is not kept)."""
    import asyncio

    from grprof.collect.model import ScrapeResult
    from grprof.config import parse_config
    from grprof.serve import Daemon

    config = parse_config(
        "version: 1\n"
        "db: " + str(tmp_path / "serve.db") + "\n"
        "targets:\n  - name: zoo\n    url: http://127.0.0.1:6060\n"
        "redact:\n  presets: [default]\n  drop: [request]\n"
        "owners:\n  label: handler\n  prefixes:\n    main: zoo-team\n"
        "memory_limit: 256MiB\n",
        "grprof.yaml",
    )
    store = open_store(str(tmp_path / "serve.db"))

    async def run() -> list[str]:
        d = Daemon(config)
        d.store = store
        await d.apply_targets()
        for i, p in enumerate(dumps):
            t = T0 + dt.timedelta(seconds=30 * i)
            body = p.read_bytes()
            await d.on_result(ScrapeResult("zoo", "debug=1", t, 0.01, "ok", len(body), body))
        leak = dumps[-1].read_bytes()
        await d.on_result(ScrapeResult("zoo", "goroutineleak", T0, 0.01, "ok", len(leak), leak))
        rt = d.runtime.targets["zoo"]
        assert rt.findings and {f.owner for f in rt.findings} - {"unknown"}
        with TestClient(create_app(store, d.runtime)) as c:
            return [c.get("/api/v1/findings").text, c.get("/metrics").text]

    try:
        bodies = asyncio.run(run())
    finally:
        store.close()
    for b in bodies:
        no_secrets(b, "serve API")
    assert "grprof_leaked_stack_bytes" in bodies[1]
    for f in sorted(tmp_path.glob("serve.db*")):
        data = f.read_bytes()
        for s in SECRETS:
            assert s.encode() not in data, f"{s} in {f.name}"
