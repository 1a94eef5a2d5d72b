"""One "site" per group (`grprof.model.site_of`): `analyze --json`, the stored groups the API
serves, its diffs and /metrics name the same frame for the same stack.

A stack that never leaves the standard library (net/http's connection goroutines parked in
`internal/poll.runtime_pollWait`) is where the two definitions parted: its site is the
innermost frame outside the runtime (`net.(*netFD).Read`), not its innermost frame.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from misbehaving import fake_targets
from serveproc import run_serve

import grprof
from grprof.cli import main
from grprof.server.api import create_app
from grprof.server.runtime import Runtime
from grprof.store import open_store

STATES = Path(__file__).parent / "fixtures" / "states"
INPUTS = sorted(STATES.glob("*/goroutine.debug[12].txt"))
STDLIB_ONLY = "net.(*netFD).Read"
"""A site only the stdlib-only rule names (the innermost frame is internal/poll's)."""


def analyze_sites(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Signature -> site, from `grprof analyze --json` (every group, not only the largest)."""
    thresholds = gc.get_threshold()
    try:
        assert main(["analyze", "--json", "--min-count", "1", str(path)]) in (0, 1)
    finally:
        gc.set_threshold(*thresholds)  # the command tunes the collector for its process
    report = json.loads(capsys.readouterr().out)
    return {g["signature"]: g["site"] for g in report["groups"]}


def test_stdlib_only_stacks_have_one_site() -> None:
    snap = grprof.load(STATES / "go1.26.8" / "goroutine.debug2.txt")
    g = next(
        g
        for g in snap.groups()
        if all(f.is_stdlib for f in g.frames) and g.frames[0].function == "internal/poll.runtime_pollWait"
    )
    assert g.site is not None and g.site.function == STDLIB_ONLY


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_api_and_analyze_json_name_the_same_site(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    want = analyze_sites(path, capsys)
    store = open_store(str(tmp_path / "g.db"))
    try:
        sid = store.add_snapshot("t", grprof.load(path), None)
        with TestClient(create_app(store, Runtime.create())) as c:
            groups = c.get(f"/api/v1/snapshots/{sid}").json()["groups"]
            other = store.add_snapshot("t", grprof.load(path), None)
            diff = c.get(f"/api/v1/snapshots/{sid}/diff/{other}").json()["groups"]
    finally:
        store.close()
    got = {g["signature"]: g["site"] for g in groups}
    assert got.keys() == want.keys()
    assert got == want
    assert {d["signature"]: d["site"] for d in diff} == {s: want[s] for s in (d["signature"] for d in diff)}
    if path.parent.name == "go1.26.8":  # the stack that told the two definitions apart is there
        assert STDLIB_ONLY in {s["function"] for s in want.values() if s}


def test_serve_names_the_site_analyze_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scraped by a real `grprof serve` from a fake target that serves the recorded fixture."""
    path = STATES / "go1.26.8" / "goroutine.debug1.txt"
    want = analyze_sites(path, capsys)
    cfg = tmp_path / "grprof.yaml"
    with fake_targets() as ft:
        cfg.write_text(
            "scrape: {interval: 1s, timeout: 1s, format: debug=1, debug2_every: 0}\n"
            f"targets: [{{name: t, url: '{ft.url('healthy')}'}}]\n"
        )
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
            snaps = srv.wait_for(lambda: srv.get("/api/v1/targets/t/snapshots")["snapshots"])
            first = next(s for s in snaps if s["format"] == "debug=1" and s["profile"] == "goroutine")
            groups = srv.get(f"/api/v1/snapshots/{first['id']}")["groups"]
    got = {g["signature"]: g["site"] for g in groups}
    assert got == want
    assert STDLIB_ONLY in {s["function"] for s in got.values() if s}
