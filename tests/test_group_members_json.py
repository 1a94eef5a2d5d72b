"""Group members as compact columns (`Group.ids` and `.orphans` as `array('q')`, `.creators` a
`CreatorCounts`) change no output: every JSON document and page made from groups is byte for
byte what the list-and-dict groups gave.

The reference is `reference_group` of `test_aggregate_equivalence` (aggregation as it was,
lists of ids and dicts of creators); each output is made twice from the same recorded
fixtures, once with `Snapshot.groups` on the reference, and compared as bytes: the report
(`analyze --json`, its findings' evidence included, and `--html` with its flame graph), the
diff (`diff --json`), the store's group documents (what the API and the UI serve)."""

from __future__ import annotations

import pathlib
from array import array
from collections.abc import Callable

import pytest
from test_aggregate_equivalence import _fields, reference_group

import grprof
import grprof.model
from grprof import aggregate
from grprof.aggregate import SIMILARITIES, CreatorCounts, group
from grprof.cli import main
from grprof.frames import Frame
from grprof.store.codec import encode
from grprof.table import GoroutineTable, Header, Stack

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
ZOO = sorted(str(p) for p in (FIXTURES / "zoo").glob("*.goroutine.debug2.txt"))
CRASH = sorted(str(p) for p in (FIXTURES / "crash").rglob("*.txt"))[:12]
STATES = sorted(str(p) for p in (FIXTURES / "states").rglob("*debug2*"))[:6]
SETS = {
    "zoo-series": [*ZOO, "--interval", "30s"],
    "zoo-last": ZOO[-1:],
    "crash": CRASH[:1],
    "states": STATES[:1],
}


def _both(monkeypatch: pytest.MonkeyPatch, make: Callable[[], bytes]) -> tuple[bytes, bytes]:
    """`make()` with today's grouping, then with the reference's."""
    now = make()
    with monkeypatch.context() as m:
        m.setattr(grprof.model, "group", reference_group)
        before = make()
    return now, before


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> bytes:
    main(argv)
    return capsys.readouterr().out.encode()


def test_inputs_exist() -> None:
    assert len(ZOO) >= 4 and CRASH and STATES


@pytest.mark.parametrize("name", sorted(SETS))
def test_report_json_unchanged(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now, before = _both(monkeypatch, lambda: _cli(capsys, ["analyze", *SETS[name], "--json"]))
    assert b'"ids": [' in now  # the members are there, as JSON lists
    assert now == before


def test_report_json_shows_orphans() -> None:
    """The zoo's series has orphans: the check above compares non-empty `orphan_ids`."""
    snap = grprof.load(ZOO[-1])
    assert any(len(g.orphans) for g in snap.groups())
    assert any(len(g.creators) for g in snap.groups())


@pytest.mark.parametrize("name", ["zoo-series", "crash"])
def test_report_html_unchanged(
    name: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "r.html"

    def html() -> bytes:
        _cli(capsys, ["analyze", *SETS[name], "--html", str(out)])
        return out.read_bytes()

    now, before = _both(monkeypatch, html)
    assert now == before


def test_diff_json_unchanged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    now, before = _both(monkeypatch, lambda: _cli(capsys, ["diff", ZOO[0], ZOO[-1], "--json"]))
    assert now == before


def test_store_documents_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    def docs() -> bytes:
        out = b""
        for path in [*ZOO, *CRASH, *STATES]:
            for snap in grprof.load_all(path):
                out += encode(snap, snap.groups())
        return out

    now, before = _both(monkeypatch, docs)
    assert now == before


@pytest.mark.parametrize("base", [2**40, -50, 1000])
def test_sparse_or_negative_ids_match_reference(base: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids a bytearray cannot index (far apart, negative) take the set path, dense ones the
    bytearray (forced here on a small table), with the same orphans: creators 7 and
    `base` + 1 are members, 3 and 2**50 are not."""
    monkeypatch.setattr(aggregate, "_BYTEARRAY_AT", 0)
    t = GoroutineTable()
    stacks = [Stack((Frame("main.a", "/a.go", 1),)), Stack((Frame("main.b", "/b.go", 2),))]
    header = Header.make("chan receive")
    creators = [-1, 3, base + 1, 7, 2**50, 3, base + 1]
    for row, cr in enumerate(creators):
        t.add(header, stacks[row % 2], id=base + row, creator=cr)
    t.add(header, stacks[0], id=7, creator=-1)
    got = [_fields(g) for g in group(t)]
    assert got == [_fields(g) for g in reference_group(t, "default")]
    orphans = sorted(i for g in group(t) for i in g.orphans)
    assert orphans == sorted(base + r for r, cr in enumerate(creators) if cr in (3, 2**50))


@pytest.mark.parametrize("path", [*ZOO, *CRASH, *STATES], ids=lambda p: p.split("fixtures/")[1])
def test_bytearray_presence_matches_reference(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytearray of present ids (big dumps) finds the orphans the set (small ones) finds."""
    monkeypatch.setattr(aggregate, "_BYTEARRAY_AT", 0)
    for snap in grprof.load_all(path):
        t = snap.table
        assert isinstance(aggregate._presence(t.ids), bytearray) or min(t.ids) < 0
        for sim in SIMILARITIES:
            assert [_fields(g) for g in group(t, sim)] == [_fields(g) for g in reference_group(t, sim)]


@pytest.mark.parametrize("bytearray_at", [0, 1 << 17])
@pytest.mark.parametrize("base", [2**40, 1000])
def test_a_row_per_group_matches_reference(
    base: int, bytearray_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row its own group (no sorting: `_attach_single`), ids present and gone."""
    monkeypatch.setattr(aggregate, "_BYTEARRAY_AT", bytearray_at)
    t = GoroutineTable()
    header = Header.make("select")
    creators = [-1, 3, base + 1, 7, 2**50, base + 5, base]
    for row, cr in enumerate(creators):
        t.add(header, Stack((Frame(f"main.f{row}", "/f.go", row),)), id=base + row, creator=cr)
    assert [_fields(g) for g in group(t)] == [_fields(g) for g in reference_group(t, "default")]
    orphans = sorted(i for g in group(t) for i in g.orphans)
    assert orphans == sorted(base + r for r, cr in enumerate(creators) if cr in (3, 7, 2**50))


def test_creator_counts_is_the_dict_it_replaces() -> None:
    c = CreatorCounts(array("q", [5, -1, 9, 5, 5, -1]))
    assert dict(c) == {5: 3, 9: 1} and list(c.items()) == [(5, 3), (9, 1)]
    assert c == {5: 3, 9: 1} and len(c) == 2 and bool(c)
    assert 5 in c and -1 not in c and 4 not in c and c.get(4) is None
    with pytest.raises(KeyError):
        c[-1]
    assert not CreatorCounts(array("q", [-1]))
