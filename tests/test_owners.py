"""Owners (docs/owners.md): a pprof label, a package prefix or CODEOWNERS names who owns the code
a finding blocks in, walking past the standard library and unowned SDKs; `unknown` otherwise.

Real data: the zoo's recordings (tests/goapps/zoo, whose handlers run under the pprof label
`handler`) and a copy of the zoo's checkout with a CODEOWNERS file for `--source`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import grprof
from grprof._yamlvalid import YamlError
from grprof.collect.model import Target
from grprof.detect.detector import Options, detect
from grprof.detect.owners import CodeOwners, Owners, OwnersFile, default_unowned, load_owners_file
from grprof.model import Frame
from grprof.server.api import create_app
from grprof.server.runtime import Runtime, TargetRuntime
from grprof.store import open_store

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "tests" / "fixtures" / "zoo"
ZOO_SRC = ROOT / "tests" / "goapps" / "zoo"
PHASES = ("0-warm-up", "1-leak-1", "2-leak-2", "3-leak-3", "4-leak-4")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def grprof_json(*args: str | Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", "--json", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def zoo(kind: str) -> list[Path]:
    return [ZOO / f"{p}.goroutine.{kind}" for p in PHASES]


def zoo_snapshots() -> list[grprof.Snapshot]:
    snaps = [grprof.load(p) for p in zoo("debug2.txt")]
    for i, s in enumerate(snaps):
        s.time = T0 + dt.timedelta(seconds=30 * i)
    return snaps


# -- CODEOWNERS -----------------------------------------------------------------------------


def test_codeowners_last_match_wins_and_unowning() -> None:
    co = CodeOwners.parse(
        "# comment\n"
        "*            @org/platform\n"
        "/internal/   @org/payments @alice   # inline comment\n"
        "*.pb.go\n"
        "[Section]\n"
        "/cmd/**/main.go @org/cli\n"
    )
    assert co.owners_of("x.go") == (("@org/platform",), "* (CODEOWNERS:2)")
    assert co.owners_of("internal/pay/h.go") == (("@org/payments", "@alice"), "/internal/ (CODEOWNERS:3)")
    assert co.owners_of("a/internal/h.go") == (("@org/platform",), "* (CODEOWNERS:2)")  # anchored
    assert co.owners_of("internal/api.pb.go") == ((), "*.pb.go (CODEOWNERS:4)")  # unowned again
    assert co.owners_of("cmd/a/b/main.go") == (("@org/cli",), "/cmd/**/main.go (CODEOWNERS:6)")
    assert CodeOwners.parse("").owners_of("x.go") is None


# -- the walk ---------------------------------------------------------------------------------


def f(function: str, file: str = "/src/x.go") -> Frame:
    return Frame(function, file, 1)


def test_walk_skips_stdlib_and_unowned_prefixes() -> None:
    owners = Owners.load(
        OwnersFile(
            prefixes={"example.com/shop": "shop", "example.com/shop/pay": "payments"},
            unowned=("example.com/vendored",),
        )
    )
    stack = [
        f("runtime.gopark"),
        f("net/http.(*persistConn).roundTrip"),
        f("google.golang.org/grpc/internal/transport.(*Stream).wait"),  # data/owners.yaml
        f("example.com/vendored/sdk.(*Client).Do"),  # config `unowned`
        f("example.com/shop/pay/stripe.Charge"),
        f("example.com/shop/api.Handle"),
    ]
    got = owners.resolve(stack, {})
    assert got.owner == "payments"  # the longest prefix
    assert got.by is not None and got.by.source == "prefix" and got.by.rule == "example.com/shop/pay"
    assert got.by.frame == stack[4]
    # The first owned frame decides: an outer frame's prefix is no guess for it.
    assert owners.resolve([f("runtime.gopark"), f("example.com/other.F"), stack[5]], {}).owner == "unknown"
    assert owners.resolve([f("runtime.gopark"), f("sync.(*WaitGroup).Wait")], {}).by is None
    assert "google.golang.org/grpc" in default_unowned()


def test_label_first_and_only_when_it_is_one_value() -> None:
    owners = Owners.load(OwnersFile(label="team", prefixes={"main": "shop"}))
    stack = [f("runtime.gopark"), f("main.worker")]
    got = owners.resolve(stack, {"team": {"search": 5}})
    assert got.owner == "search" and got.by is not None and got.by.source == "label" and got.by.frame is None
    # Two teams' goroutines in one group: the label names no one; the prefix decides.
    mixed = owners.resolve(stack, {"team": {"search": 5, "ads": 1}})
    assert mixed.owner == "shop" and mixed.by is not None and mixed.by.source == "prefix"


def test_owners_file_errors_have_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "owners.yaml"
    p.write_text("label: team\nprefixes:\n  main: [a, b]\n")
    with pytest.raises(YamlError, match=r"owners.yaml:3: prefixes.main"):
        load_owners_file(p)
    p.write_text("label: team\nteams: {}\n")
    with pytest.raises(YamlError, match=r"owners.yaml:2"):
        load_owners_file(p)


# -- real data --------------------------------------------------------------------------------


def test_zoo_label_and_prefix_through_analyze_json(tmp_path: Path) -> None:
    conf = tmp_path / "owners.yaml"
    conf.write_text("label: handler\nprefixes:\n  main: zoo-team\n")
    plain = grprof_json(*zoo("debug0.pb.gz"))
    doc = grprof_json(*zoo("debug0.pb.gz"), "--owners", conf)
    assert all(x["owner"] == "unknown" and x["owner_by"] is None for x in plain["findings"])
    # An annotation: verdicts and scores are the same with owners as without.
    strip = lambda d: [(x["id"], x["verdict"], x["score"], x["confidence"]) for x in d["findings"]]  # noqa: E731
    assert strip(doc) == strip(plain)
    by = {x["id"]: x for x in doc["findings"]}
    labelled = [x for x in by.values() if x["owner_by"] and x["owner_by"]["source"] == "label"]
    assert labelled, "the zoo's handlers run under pprof.Labels(handler, pattern)"
    for x in labelled:
        assert list(x["labels"]["handler"]) == [x["owner"]]
        assert x["owner_by"] == {"source": "label", "rule": "handler", "frame": None}
    prefixed = [x for x in by.values() if x["owner_by"] and x["owner_by"]["source"] == "prefix"]
    assert prefixed and all(x["owner"] == "zoo-team" for x in prefixed)
    for x in prefixed:
        assert x["owner_by"]["frame"]["function"].startswith("main.")
    # Nothing names an owner: unknown, with nothing claimed as the reason.
    for x in by.values():
        if x["owner"] == "unknown":
            assert x["owner_by"] is None


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the zoo's checkout with a CODEOWNERS file (.github/, as GitHub reads it)."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ZOO_SRC, root / "zoo", ignore=shutil.ignore_patterns("*.txt", "*.gz"))
    (root / ".git").mkdir()
    (root / ".github").mkdir()
    (root / ".github" / "CODEOWNERS").write_text(
        "*                          @org/platform\n"
        "/zoo/leaks_channel.go      @org/channels\n"
        "/zoo/leaks_sync.go         @org/sync-team @bob\n"
    )
    return root


def test_codeowners_from_a_source_checkout(checkout: Path) -> None:
    doc = grprof_json(*zoo("debug2.txt"), "--interval", "30s", "--source", checkout / "zoo")
    findings = doc["findings"]
    assert findings
    seen = set()
    for x in findings:
        by = x["owner_by"]
        if by is None:
            assert x["owner"] == "unknown"
            continue
        assert by["source"] == "codeowners"
        frame = by["frame"]
        assert frame is not None and not frame["function"].startswith(("runtime.", "sync.", "net/"))
        name = Path(frame["file"]).name
        want = {"leaks_channel.go": "@org/channels", "leaks_sync.go": "@org/sync-team,@bob"}.get(
            name, "@org/platform"
        )
        assert x["owner"] == want, (x["site"], by)
        assert by["rule"].endswith(")") and "CODEOWNERS:" in by["rule"]
        seen.add(x["owner"])
    assert {"@org/channels", "@org/sync-team,@bob"} <= seen


def test_api_filter_and_metrics_label(tmp_path: Path) -> None:
    snaps = zoo_snapshots()
    owners = Owners.load(OwnersFile(prefixes={"main": "zoo-team"}))
    d = detect(snaps, Options(owners=owners))
    assert {x.owner for x in d.findings} == {"zoo-team", "unknown"}
    store = open_store(str(tmp_path / "grprof.db"))
    store.upsert_targets([Target("zoo", "http://127.0.0.1:6060")], "1/1")
    store.sync_findings("zoo", d.findings, T0)
    rt = Runtime.create((1, 1))
    rt.targets["zoo"] = TargetRuntime(Target("zoo", "http://127.0.0.1:6060"), up=True, findings=d.findings)
    try:
        with TestClient(create_app(store, rt)) as c:
            mine = c.get("/api/v1/findings", params={"owner": "zoo-team"}).json()["findings"]
            none = c.get("/api/v1/findings", params={"owner": "unknown"}).json()["findings"]
            assert mine and all(x["owner"] == "zoo-team" for x in mine)
            assert none and all(x["owner"] == "unknown" for x in none)
            assert len(mine) + len(none) == len(c.get("/api/v1/findings").json()["findings"])
            assert c.get("/api/v1/findings", params={"owner": "nobody"}).json()["findings"] == []
            text = c.get("/metrics").text
    finally:
        store.close()
    fams = {m.name: m for m in text_string_to_metric_families(text)}
    got: dict[str, float] = {}
    for s in fams["grprof_leaked_goroutines"].samples:
        got[s.labels["owner"]] = got.get(s.labels["owner"], 0) + s.value
    want: dict[str, float] = {}
    for x in d.findings:
        want[x.owner] = want.get(x.owner, 0) + x.count
    assert got == want
    stack: dict[str, float] = {}
    for s in fams["grprof_leaked_stack_bytes"].samples:
        stack[s.labels["owner"]] = stack.get(s.labels["owner"], 0) + s.value
    assert stack == {k: v * 2048 for k, v in want.items()}
