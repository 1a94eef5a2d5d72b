"""A bounded atheris run over real fixtures as seeds (longer runs: see tests/fuzz/fuzz_load.py)."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FIXTURES = Path(__file__).parent / "fixtures"


def test_atheris_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = sorted(
        p for p in FIXTURES.rglob("*") if p.suffix in (".txt", ".gz") and p.stat().st_size < 20_000
    )
    assert len(seeds) > 20
    for i, p in enumerate(seeds):
        data = p.read_bytes()
        if p.suffix == ".gz" and i % 2:
            data = gzip.decompress(data)  # the raw protobuf too, not only its gzip
        (corpus / f"seed{i}").write_bytes(data)
    shutil.copy(FIXTURES / "states" / "go1.26.8" / "goroutine.debug1.txt", corpus / "debug1")
    p = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "fuzz" / "fuzz_load.py"),
            str(corpus),
            "-runs=4000",
            "-max_len=20000",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    # libFuzzer counts the seed corpus's runs too ("Done 4006 runs" with some seeds).
    done = re.search(r"Done (\d+) runs", p.stderr)
    assert done is not None and int(done.group(1)) >= 4000, p.stderr[-3000:]
