"""The baseline: leak signatures a team has accepted (`grprof gate --update-baseline`).

A JSON file, sorted, one entry per signature, so that it diffs well in review:

    {"schema": "grprof.gate-baseline/v1",
     "signatures": [{"id": "3f2c...", "signature": "chan send | pkg.fetchResult <- ...",
                     "category": "channel", "rule": "chan-send-no-receiver",
                     "tests": ["TestLeaky"], "site": "pkg.fetchResult"}]}

Only `id` is read back; the rest is there for the reviewer.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from grprof import schema
from grprof.gate.collect import GateError
from grprof.gate.model import Leak

SCHEMA: Final = schema.GATE_BASELINE_SCHEMA


def read(path: Path) -> set[str]:
    """The accepted signature ids; an absent file is an empty baseline."""
    if not path.exists():
        return set()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise GateError(f"{path}: {e.strerror or e}") from e
    except ValueError as e:
        raise GateError(f"{path}: not a baseline file: invalid JSON ({e})") from e
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != SCHEMA
        or not isinstance(doc.get("signatures"), list)
    ):
        raise GateError(f'{path}: not a baseline file: want {{"schema": "{SCHEMA}", "signatures": [...]}}')
    ids: set[str] = set()
    for i, entry in enumerate(doc["signatures"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise GateError(f'{path}: signatures[{i}]: want an object with an "id" string')
        ids.add(entry["id"])
    return ids


def document(leaks: Sequence[Leak]) -> schema.GateBaseline:
    entries: dict[str, schema.GateSignature] = {}
    for x in leaks:
        e = entries.setdefault(
            x.signature.id,
            {
                "id": x.signature.id,
                "signature": x.signature.text,
                "category": x.category,
                "rule": x.rule,
                "tests": [],
                "site": x.site.function if x.site else None,
            },
        )
        if x.test and x.test not in e["tests"]:
            e["tests"].append(x.test)
    for e in entries.values():
        e["tests"].sort()
    return {"schema": SCHEMA, "signatures": [entries[k] for k in sorted(entries)]}


def write(path: Path, leaks: Sequence[Leak]) -> None:
    """Write the baseline atomically (a temporary file renamed into place)."""
    text = schema.dump_json(schema.GateBaseline, document(leaks)) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".baseline-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise GateError(f"{path}: cannot write the baseline: {e.strerror or e}") from e
