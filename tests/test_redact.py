"""Redaction (docs/owners.md#redaction): sensitive pprof label values never reach the JSON,
the HTML, the store, the API or /metrics. Real recordings of the zoo (tests/goapps/zoo, whose
handlers run under pprof labels), with hostile values added to their labels."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gobuild import build_goapp, run_goapp
from serveproc import run_serve

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


# -- a live service, end to end --------------------------------------------------------------


def _unpacked(blob: bytes) -> str:
    """A stored blob as text, zlib-inflated when it is compressed (the store's codec is)."""
    with contextlib.suppress(zlib.error):
        blob = zlib.decompress(blob)
    return blob.decode("utf-8", "replace")


def _sqlite_text(db: Path) -> str:
    """Everything in a SQLite store: the raw file and WAL bytes and every value, blobs inflated."""
    out = [p.read_bytes().decode("latin-1") for p in sorted(db.parent.glob(db.name + "*"))]
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in con.execute(f'SELECT * FROM "{t}"'):
                out += [_unpacked(v) if isinstance(v, bytes) else str(v) for v in row]
    finally:
        con.close()
    return "\n".join(out)


def _pg_dump_text(pg: Any, dsn: str) -> str:
    """`pg_dump` of the database, with every bytea value inflated and appended."""
    dump = subprocess.run(
        [str(pg.bindir / "pg_dump"), "--data-only", "--inserts", "-d", dsn],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "INSERT INTO" in dump, dump[:2000]
    blobs = [_unpacked(bytes.fromhex(h)) for h in re.findall(r"'\\\\x([0-9a-f]+)'", dump)]
    return dump + "\n".join(blobs)


LIVE_PAGES = (
    "/api/v1/targets",
    "/api/v1/findings",
    "/api/v1/search?key=handler&value=%2Fcheckout",
    "/metrics",
    "/",
    "/targets/pii",
)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_live_service_s_secrets_reach_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """tests/goapps/pii labels every leaked goroutine with an e-mail, a bearer token, a URL with
    a token, a database URL with a password, a UUID and a JWT. `grprof serve` with `redact:`
    scrapes it (debug=1, debug=2, goroutineleak) into SQLite or PostgreSQL and finds the leak;
    then neither the store (every value, blobs inflated; `pg_dump`), the API, /metrics, the UI,
    the serve log, nor `analyze --redact --json --html` of the live service holds a raw value."""
    if backend == "sqlite":
        db, pg = str(tmp_path / "g.db"), None
    else:
        pg = request.getfixturevalue("postgres")
        db = pg.create_database("redact_live")
    binary = build_goapp("pii", env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary) as (_, base):
        cfg = tmp_path / "grprof.yaml"
        cfg.write_text(
            "version: 1\n"
            "scrape: {interval: 1s, timeout: 1s, leak_profile_every: 2, debug2_every: 2}\n"
            f"targets:\n  - {{name: pii, url: '{base}'}}\n"
            "redact: {presets: [default]}\n"
        )
        with run_serve(["--config", str(cfg), "--db", db]) as srv:
            found = srv.wait_for(
                lambda: [
                    f for f in srv.get("/api/v1/findings?target=pii")["findings"] if f["verdict"] == "leak"
                ],
                timeout=90,
            )
            fid = found[0]["id"]
            bodies = {p: json.dumps(srv.get(p)) if p.startswith("/api") else srv.get(p) for p in LIVE_PAGES}
            bodies[f"/findings/{fid}"] = srv.get(f"/findings/{fid}?target=pii")
            snaps = srv.get("/api/v1/targets/pii/snapshots")["snapshots"]
            assert snaps
            sid = snaps[0]["id"]
            bodies["snapshot"] = json.dumps(srv.get(f"/api/v1/snapshots/{sid}"))
            # The labels are there, redacted: the finding shows the kind, never the value.
            assert "<redacted:email>" in json.dumps(found), found
            bodies["serve log"] = srv.logs()
        out = tmp_path / "report.html"
        labelled = base + "/debug/pprof/goroutine?debug=1"  # debug=2: no labels before Go 1.27
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "grprof.cli",
                "analyze",
                "--redact",
                "--json",
                "--html",
                str(out),
                labelled,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert p.returncode in (0, 1), p.stderr
        bodies["analyze --json"], bodies["analyze stderr"] = p.stdout, p.stderr
        bodies["analyze --html"] = out.read_text()
        assert "<redacted:" in p.stdout
    bodies["store"] = _sqlite_text(Path(db)) if pg is None else _pg_dump_text(pg, db)
    assert "/checkout" in bodies["store"], "the search must see the stored labels at all"
    for where, text in bodies.items():
        no_secrets(text, where)
