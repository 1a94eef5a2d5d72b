"""A debug=2 snapshot's `go_version` is inferred when first read (`Snapshot(go_version_of=...)`):
the same value as inferring it while parsing, and a set value wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from grprof.formats import traceback
from grprof.formats.goversion import infer_go_version

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = sorted(p for p in FIXTURES.rglob("*.txt") if b"goroutine " in p.read_bytes()[: 1 << 20])


@pytest.mark.parametrize("path", DUMPS[:40], ids=lambda p: str(p.relative_to(FIXTURES)))
def test_lazy_go_version_matches_eager(path: Path) -> None:
    r = traceback.scan([path.read_bytes()])
    header_texts = list(r.header_texts)
    for snap in traceback.build(r, str(path)):
        assert snap._go_version_of is not None
        assert snap.go_version == infer_go_version(snap.table, header_texts=header_texts)
        assert snap._go_version_of is None


def test_set_go_version_wins() -> None:
    path = DUMPS[0]
    snap = traceback.build(traceback.scan([path.read_bytes()]), "x")[0]
    snap.go_version = "1.99"
    assert snap.go_version == "1.99"
