"""Cut dumps: the 64 MiB cap of /debug/pprof/goroutine?debug=2, and dumps cut anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from gobuild import fetch, run_goapp

import grprof
from grprof.formats import _scan

FIXTURES = Path(__file__).parent / "fixtures"
DUMP = FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt"


def test_complete_dump_is_not_truncated() -> None:
    snap = grprof.load(DUMP)
    assert not snap.truncated
    assert not any(g.partial for g in snap.goroutines)


@pytest.fixture(params=["native", "pure"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "pure":
        monkeypatch.setenv("GRPROF_PURE", "1")


@pytest.mark.parametrize("where", ["mid-function-line", "after-function-line", "mid-header", "mid-file-line"])
def test_dump_cut_inside_the_last_goroutine(where: str, scanner: None) -> None:
    data = DUMP.read_bytes()
    whole = grprof.load(data)
    # Cut inside the last goroutine's block at a point of the kind asked for.
    start = data.rindex(b"\ngoroutine ") + 1
    block = data[start:]
    first_nl = block.index(b"\n")
    func_end = block.index(b"\n", first_nl + 1)
    cut = {
        "mid-header": start + block.index(b"[") + 3,
        "mid-function-line": start + first_nl + 5,
        "after-function-line": start + func_end + 1,
        "mid-file-line": start + func_end + 8,
    }[where]
    snap = grprof.load(data[:cut])
    assert snap.truncated
    assert snap.total == whole.total
    last = snap.goroutines[-1]
    assert last.partial and last.id == whole.goroutines[-1].id
    assert [g.partial for g in snap.goroutines].count(True) == 1
    assert sum(g.partial for g in snap.groups()) == 1


def test_dump_cut_inside_a_header_id(scanner: None) -> None:
    data = DUMP.read_bytes()
    whole = grprof.load(data)
    cut = data.rindex(b"\ngoroutine ") + len(b"\ngoroutine ") + 1
    snap = grprof.load(data[:cut])
    # The goroutine whose header was cut is lost, but the snapshot says it is truncated.
    assert snap.truncated
    assert snap.total == whole.total - 1
    assert not any(g.partial for g in snap.goroutines)


def test_dump_cut_at_every_byte_of_the_last_blocks(scanner: None) -> None:
    """Wherever a dump stops, the goroutines before the cut are whole and the same as in the
    whole dump, and at most the last one is partial: the one whose header (`goroutine N [`)
    the cut left in the text. A live 64 MiB dump stops at a byte nobody chooses."""
    data = DUMP.read_bytes()
    whole = {g.id: g for g in grprof.load(data).goroutines}
    start = data.rindex(b"\ngoroutine ", 0, data.rindex(b"\ngoroutine ")) + 1
    for cut in range(start, len(data)):
        text = data[:cut]
        snap = grprof.load(text)
        got = snap.goroutines
        tail = text[text.rindex(b"\n\n") + 2 :]
        cut_header = _scan.header_id(tail.split(b"\n", 1)[0]) if tail else -1
        partial = [g.id for g in got if g.partial]
        assert partial in ([], [got[-1].id]), cut
        if cut_header >= 0:
            assert got[-1].id == cut_header, cut
        for g in got if cut_header < 0 else got[:-1]:
            w = whole[g.id]
            assert not g.partial and (g.frames, g.created_by) == (w.frames, w.created_by), cut


@pytest.mark.slow
def test_pprof_64mib_cap() -> None:
    with run_goapp("many", timeout=180) as (_, base):
        data = fetch(base, "/debug/pprof/goroutine?debug=2", timeout=180)
    assert len(data) == 64 << 20, "the program must produce a dump above the runtime's cap"
    snap = grprof.load(data)
    assert snap.truncated
    goroutines = snap.goroutines
    # Where the runtime stopped writing is chance. A cut after `goroutine N [` leaves that
    # goroutine partial; a cut before it (a blank line, a header's first bytes) loses it, and
    # the goroutine before is whole (test_dump_cut_inside_a_header_id on a fixed cut).
    tail = data[data.rindex(b"\n\n") + 2 :]
    cut_header = _scan.header_id(tail.split(b"\n", 1)[0]) if tail else -1
    if cut_header >= 0:
        assert goroutines[-1].partial and goroutines[-1].id == cut_header
        whole = goroutines[:-1]
    else:
        assert not goroutines[-1].partial, tail[:80]
        whole = goroutines
    assert not any(g.partial for g in whole)
    # Every goroutine before the cut is whole: its stack reaches the created-by line.
    assert all(g.created_by is not None for g in whole if g.state != "running" and g.id != 1)
    assert snap.total > 1000
