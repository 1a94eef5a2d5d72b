"""Bytes given to `load` reach the debug=0 and debug=1 parsers as given (`sources.Whole`),
not joined from chunks: the same snapshots as from the file, the same size cap."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from tablesummary import summary

import grprof
from grprof.errors import SourceError
from grprof.formats import debug1, pprof
from grprof.sources import Whole, open_source

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEBUG1 = sorted(FIXTURES.rglob("*.debug1.txt"))[0]
DEBUG0 = sorted(FIXTURES.rglob("*.pb.gz"))[0]


def test_bytes_come_whole_and_parse_as_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    data = DEBUG1.read_bytes()
    chunks = open_source(data).chunks()
    assert isinstance(chunks, Whole) and chunks.data is data
    assert b"".join(chunks) == data
    seen: list[bytes] = []
    parse = debug1.parse
    monkeypatch.setattr(debug1, "parse", lambda d, s, **kw: seen.append(d) or parse(d, s, **kw))
    assert summary(grprof.load(data, name="x")) == summary(grprof.load(DEBUG1, name="x"))
    assert seen[0] is data
    # gunzipped debug=0 is not the input: its chunks are joined as before
    raw = gzip.decompress(DEBUG0.read_bytes())
    assert isinstance(open_source(raw).chunks(), Whole)
    assert not isinstance(open_source(DEBUG0.read_bytes()).chunks(), Whole)
    want = summary(pprof.parse(raw, "x"))
    assert summary(grprof.load(raw, name="x")) == summary(grprof.load(DEBUG0, name="x")) == want


def test_the_size_cap_still_holds() -> None:
    data = DEBUG1.read_bytes()
    with pytest.raises(SourceError, match=r"too large|exceeds|larger"):
        grprof.load(data, max_size=len(data) - 1)
    assert grprof.load(data, max_size=len(data)).total > 0
    assert grprof.load(bytearray(data)).total == grprof.load(memoryview(data)).total > 0
