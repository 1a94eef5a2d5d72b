"""One JSON schema layer (`grprof.schema`): the documents grprof writes fit their models, the
OpenAPI document shows a response schema for every route, and docs/report-schema.md documents
every field of the report model (and nothing else)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

import grprof
from grprof import schema
from grprof.detect.detector import detect
from grprof.diff import compute
from grprof.server.api import create_app
from grprof.server.runtime import Runtime
from grprof.store import open_store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ZOO = FIXTURES / "zoo"
GRPROF = [sys.executable, "-c", "import sys; from grprof.cli import main; sys.exit(main())"]


def keys(model: Any) -> list[str]:
    """A model's fields, in order (a TypedDict's annotations hold its bases' too)."""
    return list(model.__annotations__)


def analyze_json(*args: str | Path) -> dict[str, Any]:
    done = subprocess.run(
        [*GRPROF, "analyze", "--json", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr  # 1: findings (--fail-on), not an error
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


# -- the report and the diff -----------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs",
    [
        sorted(ZOO.glob("*.goroutine.debug2.txt")),
        sorted(ZOO.glob("*.goroutine.debug0.pb.gz")),
        [FIXTURES / "states" / "go1.26.8" / "goroutine.debug1.txt"],
        sorted((FIXTURES / "crash" / "go1.26.8").glob("panic*.txt"))[:1],
    ],
    ids=["zoo-debug2", "zoo-debug0", "states-debug1", "crash"],
)
def test_analyze_json_fits_the_exported_json_schema(inputs: list[Path]) -> None:
    assert inputs, "fixtures missing"
    doc = analyze_json(*inputs)
    jsonschema.Draft202012Validator(schema.json_schema(schema.Report)).validate(doc)
    schema.validate(schema.Report, doc)
    assert doc["schema"] == schema.REPORT_SCHEMA


def test_the_zoo_report_exercises_the_optional_parts() -> None:
    doc = analyze_json(*sorted(ZOO.glob("*.goroutine.debug2.txt")))
    assert doc["findings"] and doc["detection"] is not None
    assert any("data" in e for f in doc["findings"] for e in f["evidence"])
    assert any(f["members"] for f in doc["findings"])


def test_a_report_with_an_unknown_or_missing_key_is_refused() -> None:
    doc = analyze_json(ZOO / "0-warm-up.goroutine.debug2.txt")
    bad = json.loads(json.dumps(doc))
    bad["groups"][0]["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema.json_schema(schema.Report))
    bad = json.loads(json.dumps(doc))
    del bad["groups"][0]["site"]
    with pytest.raises(Exception, match="site"):
        schema.validate(schema.Report, bad)


def test_integers_stay_integers() -> None:
    # `int | float`: a count-like number is not turned into 110.0 on the way out.
    frame = {"function": "f", "file": "x.go", "line": 1}
    ev = {"signal": "growth", "summary": "s", "value": 4, "threshold": 0.5, "weight": 1}
    out = json.loads(schema.dump_json(schema.Evidence, ev))
    assert out == ev and isinstance(out["value"], int) and isinstance(out["weight"], int)
    assert schema.dump_json(schema.Frame, frame, None) == json.dumps(frame, separators=(",", ":"))


def test_diff_json_fits_the_diff_model() -> None:
    files = sorted(ZOO.glob("*.goroutine.debug2.txt"))
    a, b = grprof.load(files[0]), grprof.load(files[-2])
    d = compute(a, b, detect([a, b]))
    text = d.render_json()
    doc = json.loads(text)
    jsonschema.Draft202012Validator(schema.json_schema(schema.DiffReport)).validate(doc)
    assert text == json.dumps(d.to_json(), indent=2, ensure_ascii=False) + "\n"
    assert doc["schema"] == schema.DIFF_SCHEMA


# -- the API ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = open_store(str(tmp_path_factory.mktemp("schema") / "grprof.db"))
    try:
        with TestClient(create_app(store, Runtime.create(), capture=None)) as c:
            got: dict[str, Any] = c.get("/openapi.json").json()
    finally:
        store.close()
    return got


def test_every_api_route_has_a_response_schema(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    api = [p for p in paths if p.startswith("/api/v1/")]
    assert len(api) >= 7, sorted(paths)
    for path in [*api, "/healthz"]:
        for method, op in paths[path].items():
            ok = next((op["responses"][c] for c in ("200", "201") if c in op["responses"]), None)
            assert ok is not None, (method, path)
            content = ok.get("content", {})
            assert content, (method, path)
            for media, body in content.items():
                s = body.get("schema", {})
                assert s.get("$ref") or s.get("type") == "string", (method, path, media, s)
                if media == "application/json":
                    assert s.get("$ref"), (method, path)
            if path.startswith("/api/v1/"):
                for code in ("404", "422"):
                    err = op["responses"].get(code, {}).get("content", {}).get("application/json", {})
                    assert err.get("schema", {}).get("$ref", "").endswith("/ErrorResponse"), (path, code)


def test_the_response_schemas_name_their_fields(openapi: dict[str, Any]) -> None:
    comps = openapi["components"]["schemas"]
    assert set(comps["Target"]["properties"]) == set(keys(schema.Target))
    assert set(comps["StoredFinding"]["properties"]) >= {"id", "verdict", "lifecycle", "first_seen"}
    assert comps["SnapshotsResponse"]["properties"]["snapshots"]["items"]["$ref"].endswith("/SnapshotMeta")


# -- docs/report-schema.md -------------------------------------------------------------------

DOC = (ROOT / "docs" / "report-schema.md").read_text(encoding="utf-8")


def doc_table(heading: str) -> list[str]:
    """The field names (first column, back-quoted, `a`, `b` for several) of a section's table."""
    body = DOC.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in body.splitlines():
        if line.startswith("| `"):
            names.extend(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return names


def doc_object(field: str) -> list[str]:
    """The keys of an object a row describes inline: `{"a", "b", "c"?}`."""
    row = next(x for x in DOC.splitlines() if x.startswith(f"| `{field}` |") and '`{"' in x)
    inline = re.search(r'`\{("[^`]*)\}`', row)
    assert inline, row
    text = inline.group(1)
    return re.findall(r'"([a-z_0-9]+)":' if ":" in text else r'"([a-z_0-9]+)"', text)


@pytest.mark.parametrize(
    ("heading", "model"),
    [
        ("Top level", schema.Report),
        ("`snapshots[]`", schema.SnapshotInfo),
        ("`groups[]`", schema.Group),
        ("`detection`", schema.Detection),
        ("`findings[]`", schema.Finding),
    ],
)
def test_docs_document_every_field(heading: str, model: Any) -> None:
    assert sorted(doc_table(heading)) == sorted(keys(model))


@pytest.mark.parametrize(
    ("field", "model"),
    [
        ("sla", schema.SLA),
        ("evidence", schema.Evidence),
        ("members", schema.Member),
        ("source", schema.SourceReport),
        ("filter", schema.Filter),
        ("generator", schema.Generator),
        ("wait_minutes", schema.WaitCount),
    ],
)
def test_docs_document_every_nested_field(field: str, model: Any) -> None:
    assert sorted(doc_object(field)) == sorted(keys(model))


def test_docs_frame_is_the_frame_model() -> None:
    m = re.search(r'A frame is `\{("[^`]*)\}`', DOC)
    assert m and re.findall(r'"([a-z_0-9]+)":', m.group(1)) == keys(schema.Frame)


def test_a_finding_stored_by_an_older_grprof_still_serves() -> None:
    # Documents in the database were written by whichever grprof ran then: the fields added to
    # findings since (`score`, `wait_kind`, `members`) may be missing, and unknown keys stay.
    doc = analyze_json(*sorted(ZOO.glob("*.goroutine.debug2.txt")))["findings"][0]
    for late in ("score", "wait_kind", "members"):
        del doc[late]
    stored = {**doc, "target": "zoo", "lifecycle": "new", "first_seen": None, "last_seen": None}
    stored |= {"resolved_at": None, "from_the_future": 1}
    assert schema.validate(schema.StoredFinding, stored) == stored
    with pytest.raises(Exception, match="lifecycle"):
        schema.validate(schema.StoredFinding, {**stored, "lifecycle": "maybe"})


# -- grprof.canary/v1 ----------------------------------------------------------------------------


def test_a_canary_result_fits_the_openapi_schema(openapi: dict[str, Any], tmp_path: Path) -> None:
    """A real judgement (the leak zoo's store of tests/test_canary.py) from the full app, checked
    against what /openapi.json publishes for the canary routes: `CanaryReport`, closed."""
    from test_canary import _store_world

    paths = ("/api/v1/canary", "/api/v1/canary/flagger")
    ops = {(m, p): openapi["paths"][p][m] for p in paths for m in openapi["paths"][p]}
    assert set(ops) == {("post", paths[0]), ("get", paths[0]), ("post", paths[1])}
    for op in ops.values():
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"] == "#/components/schemas/CanaryReport", ok
    published = openapi["components"]["schemas"]["CanaryReport"]["properties"]
    assert set(published) == set(keys(schema.CanaryReport))
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/CanaryReport", "components": openapi["components"]}
    )
    store, runtime = _store_world(tmp_path)
    try:
        with TestClient(create_app(store, runtime)) as c:
            body = {"baseline": ["track=stable"], "canary": ["track=canary"], "config": {"min_samples": 3}}
            r = c.post("/api/v1/canary", json=body)
    finally:
        store.close()
    assert r.status_code == 200, r.text
    doc = r.json()
    validator.validate(doc)
    schema.validate(schema.CanaryReport, doc)
    # the parts that may be empty or null are not: a critical leak, a shift, a site
    assert doc["critical"] and doc["critical"][0]["site"]
    assert any(i["shift"] and i["site"] for i in doc["instances"])
    bad = json.loads(json.dumps(doc))
    bad["instances"][0]["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["thresholds"]["marginal_is"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


# A dataclass whose `to_json` writes a document of `grprof.schema` repeats that TypedDict's
# field list. Each pair is pinned here with the exact difference between the two: a field added
# to one and not to the other fails `test_dataclass_and_its_json_model_keep_the_same_fields`,
# and a new pair fails `test_every_to_json_pair_is_pinned` until it is listed.
# (dataclass, TypedDict): (fields the JSON leaves out, keys to_json computes or renames)
JSON_PAIRS: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {
    ("grprof.detect.model.Evidence", "Evidence"): (frozenset(), frozenset()),
    ("grprof.detect.model.SourceReport", "SourceReport"): (frozenset(), frozenset()),
    ("grprof.detect.model.OwnerBy", "OwnerBy"): (frozenset(), frozenset()),
    ("grprof.detect.model.Member", "Member"): (frozenset(), frozenset()),
    ("grprof.detect.model.Finding", "Finding"): (frozenset(), frozenset({"stack_bytes"})),
    ("grprof.detect.cost.StackCost", "StackCost"): (frozenset(), frozenset()),
    ("grprof.gate.model.Leak", "GateLeak"): (frozenset(), frozenset({"rule_id", "signature_text"})),
    ("grprof.store.model.StoredGroup", "StoredGroup"): (frozenset(), frozenset({"site", "state_inferred"})),
    ("grprof.canary.judge.Instance", "CanaryInstance"): (frozenset({"weight"}), frozenset({"passed"})),
    ("grprof.canary.judge.Critical", "CanaryCritical"): (
        frozenset(),
        _names(
            "category confidence count description growth_per_minute runtime_confirmed site title verdict"
        ),
    ),
    ("grprof.canary.judge.CanaryResult", "CanaryReport"): (
        frozenset({"config"}),
        frozenset({"confidence", "decided_by", "generator", "passed", "schema", "thresholds"}),
    ),
    ("grprof.diff.GroupDiff", "GroupDiff"): (
        frozenset({"leaked_after", "leaked_before", "wait_after", "wait_before"}),
        frozenset({"category", "confidence", "delta", "finding", "leaked", "title", "wait_minutes"}),
    ),
    ("grprof.diff.Diff", "DiffReport"): (
        frozenset({"focus", "hidden_groups", "ignore"}),
        frozenset({"filter", "generator", "schema", "summary"}),
    ),
    ("grprof.server.api.DiffRow", "DiffRow"): (
        frozenset({"a", "b"}),
        frozenset({"a", "b", "signature", "signatures", "state", "status", "delta", "site"}),
    ),
    ("grprof.store.model.StoredFinding", "StoredFinding"): (
        # `finding`: the stored Finding's JSON, its keys flattened into the document (its
        # `state` is the goroutines'); the lifecycle `state` is written as `lifecycle`; the API
        # adds `cluster`
        frozenset({"finding", "state"}),
        (frozenset(schema.Finding.__required_keys__) - {"id"}) | {"lifecycle", "cluster"},
    ),
    ("grprof.serving.federation.Member", "FederationMember"): (
        frozenset({"auth_failed", "data", "name"}),
        _names("age_seconds cluster findings last_success pull_seconds state targets up version"),
    ),
}


def _to_json_pairs() -> dict[tuple[str, str], type]:
    """Every dataclass of `src/grprof` with a `to_json` annotated with a `grprof.schema` model."""
    import ast
    import dataclasses
    import importlib

    src = ROOT / "src"
    out: dict[tuple[str, str], type] = {}
    for path in sorted((src / "grprof").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "def to_json" not in text:
            continue
        module = ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if not (isinstance(item, ast.FunctionDef) and item.name == "to_json" and item.returns):
                    continue
                ret = ast.unparse(item.returns).strip("'\"")
                if ret.startswith("schema."):
                    cls = getattr(importlib.import_module(module), node.name)
                    assert dataclasses.is_dataclass(cls), f"{module}.{node.name}"
                    out[(f"{module}.{node.name}", ret.removeprefix("schema."))] = cls
    return out


def test_every_to_json_pair_is_pinned() -> None:
    assert set(_to_json_pairs()) == set(JSON_PAIRS)


@pytest.mark.parametrize("pair", sorted(JSON_PAIRS), ids=lambda p: f"{p[0]}->{p[1]}")
def test_dataclass_and_its_json_model_keep_the_same_fields(pair: tuple[str, str]) -> None:
    import dataclasses

    cls = _to_json_pairs()[pair]
    model = getattr(schema, pair[1])
    left_out, computed = JSON_PAIRS[pair]
    fields = {f.name for f in dataclasses.fields(cls)}
    json_keys = set(model.__required_keys__) | set(model.__optional_keys__)
    assert left_out <= fields and computed <= json_keys, "the pin names a field that is gone"
    assert fields - left_out == json_keys - computed, (
        f"{pair[0]} and schema.{pair[1]} differ: a field added to one must be added to the other "
        "(or listed in JSON_PAIRS with the reason)"
    )
