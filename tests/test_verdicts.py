"""Verdicts a team can act on: thin data is never an all-clear, and the README's CI recipe
(two debug=0 profiles, `--fail-on inconclusive`) fails on a service that really grows.

examples/leaky leaks one goroutine per /leaky request; at `-rate 10` its client sends five
a second: 300 leaked goroutines a minute. At `-rate 0` nothing happens: a quiet service.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from gobuild import fetch, run_goapp

SPACING = 15.0
"""Seconds between the two profiles: a CI job's before/after."""


def _two_profiles(tmp_path: Path, rate: int) -> list[str]:
    files = []
    with run_goapp("../../examples/leaky", "-addr", "127.0.0.1:0", "-rate", str(rate)) as (_, base):
        for name in ("before.pb.gz", "after.pb.gz"):
            if files:
                time.sleep(SPACING)
            f = tmp_path / name
            f.write_bytes(fetch(base, "/debug/pprof/goroutine?debug=0"))
            files.append(str(f))
    return files


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_readme_ci_recipe_fails_on_a_service_growing_300_per_minute(tmp_path: Path) -> None:
    before, after = _two_profiles(tmp_path, rate=10)
    p = _analyze(before, after, "--fail-on", "inconclusive")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "No leak found" not in p.stdout
    assert "inconclusive" in p.stdout
    # It says what was seen, why that is no verdict, and what would settle it.
    assert "grew" in p.stdout and "between 2 snapshots" in p.stdout, p.stdout
    assert "load ramp" in p.stdout and "goroutineleak profile" in p.stdout, p.stdout
    # Two snapshots cannot prove a leak: `--fail-on leak` lets this pass, by design.
    assert _analyze(before, after, "--fail-on", "leak").returncode == 0


@pytest.mark.slow
def test_two_snapshots_of_a_quiet_service_are_no_all_clear(tmp_path: Path) -> None:
    before, after = _two_profiles(tmp_path, rate=0)
    p = _analyze(before, after, "--fail-on", "inconclusive")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "No leak found" not in p.stdout
    assert "Not enough evidence for a verdict" in p.stdout, p.stdout
