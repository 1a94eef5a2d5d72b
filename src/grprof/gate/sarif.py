"""SARIF 2.1.0: one result per leaking group, at the leaking source line (the first frame in
the user's code), so that GitHub code scanning shows it inline. ruleId is grprof's root-cause
rule (data/rules.yaml), else `category/<category>`. Valid against the OASIS SARIF 2.1.0 JSON
schema (tests/fixtures/gate/sarif-schema-2.1.0.json)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from grprof import __version__
from grprof.gate.model import GateResult, Leak
from grprof.model import Frame

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/grprof/grprof"
ROOT = "%SRCROOT%"
FINGERPRINT = "grprofSignature/v1"


def _location(f: Frame, root: Path | None) -> dict[str, Any] | None:
    if not f.file:
        return None
    artifact: dict[str, Any]
    path = PurePosixPath(f.file)
    if root is not None and path.is_absolute():
        try:
            rel = path.relative_to(PurePosixPath(root.resolve().as_posix()))
        except ValueError:
            artifact = {"uri": "file://" + quote(path.as_posix())}
        else:
            artifact = {"uri": quote(rel.as_posix()), "uriBaseId": ROOT}
    elif path.is_absolute():
        artifact = {"uri": "file://" + quote(path.as_posix())}
    else:  # -trimpath: module-relative already
        artifact = {"uri": quote(path.as_posix())}
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact}}
    if f.line >= 1:
        loc["physicalLocation"]["region"] = {"startLine": f.line}
    loc["logicalLocations"] = [{"fullyQualifiedName": f.function, "kind": "function"}]
    return loc


def _rule(x: Leak) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": x.rule_id,
        "name": x.rule_id.replace("/", "-"),
        "shortDescription": {"text": x.title},
        "fullDescription": {"text": f"Goroutine leak ({x.category}): {x.title}"},
        "defaultConfiguration": {"level": "error"},
        "properties": {"category": x.category, "tags": ["goroutine-leak", x.category]},
    }
    if x.fix:
        r["help"] = {"text": x.fix}
    return r


def _message(x: Leak) -> str:
    who = f" by {x.test}" if x.test else ""
    n = f"{x.count} goroutine{'s' if x.count != 1 else ''}"
    where = f" in {x.site.function}" if x.site else ""
    proof = " The runtime proved it (goroutineleak profile)." if x.proven else ""
    return f"{n} leaked{who}{where}, blocked in {x.state}: {x.title}.{proof} Signature {x.signature.id}."


def render(result: GateResult, source_root: Path | None = None) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for x in result.leaks:
        if x.rule_id not in index:
            index[x.rule_id] = len(rules)
            rules.append(_rule(x))
        res: dict[str, Any] = {
            "ruleId": x.rule_id,
            "ruleIndex": index[x.rule_id],
            "level": "note" if x.accepted else "error",
            "baselineState": "unchanged" if x.accepted else "new",
            "message": {"text": _message(x)},
            "partialFingerprints": {FINGERPRINT: x.signature.id},
            "properties": {
                "signature": x.signature.text,
                "count": x.count,
                "state": x.state,
                "category": x.category,
                "verdict": x.verdict,
                "proven": x.proven,
                **({"test": x.test} if x.test else {}),
            },
        }
        site = _location(x.site, source_root) if x.site else None
        if site is not None:
            res["locations"] = [site]
        frames = [loc for f in x.frames if (loc := _location(f, source_root)) is not None]
        if frames:
            res["stacks"] = [
                {
                    "message": {"text": f"leaked goroutine [{x.state}]"},
                    "frames": [{"location": loc} for loc in frames],
                }
            ]
        results.append(res)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "grprof",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFO_URI,
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"grprof-gate/{result.mode}/"},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if source_root is not None:
        run["originalUriBaseIds"] = {
            ROOT: {"uri": "file://" + quote(source_root.resolve().as_posix().rstrip("/") + "/")}
        }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
