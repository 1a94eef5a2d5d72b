"""The root package is the public surface: loading and detection without reaching into modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ZOO = sorted(Path(__file__).parent.glob("fixtures/zoo/*goroutine.debug2.txt"))


def test_root_exports_detection_and_it_matches_analyze() -> None:
    # A fresh interpreter that first imports a detect submodule: `grprof.detect` must still be
    # the function, not the package the submodule import binds to the same name.
    code = (
        "import grprof.detect.signals, grprof, json, sys\n"
        "snaps = [grprof.load(p) for p in sys.argv[1:]]\n"
        "d = grprof.detect(snaps, grprof.Options(interval=30, rules=grprof.load_rules()))\n"
        "assert all(isinstance(f, grprof.Finding) for f in d.findings)\n"
        "print(json.dumps([[f.id, f.verdict, f.count] for f in d.findings]))\n"
    )
    argv = [sys.executable, "-c", code, *map(str, ZOO)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    api = json.loads(out.stdout)
    cli = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", *map(str, ZOO), "--interval", "30s", "--json"],
        capture_output=True,
        text=True,
    )
    report = json.loads(cli.stdout)
    assert api == [[f["id"], f["verdict"], f["count"]] for f in report["findings"]]
    assert any(v == "leak" for _, v, _ in api)


def test_findings_are_frozen() -> None:
    import dataclasses

    import grprof

    d = grprof.detect([grprof.load(p) for p in ZOO], grprof.Options(interval=30))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.findings[0].verdict = "suspect"  # type: ignore[misc]


def test_commands_import_their_heavy_libraries_when_they_run() -> None:
    """`grprof --version` or `grprof analyze` must not pay for what other commands need (scipy
    for canary, the web server for serve): every command starts slower otherwise."""
    heavy = ("scipy", "uvicorn", "grafana_foundation_sdk")
    code = f"import sys, grprof.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
