"""debug=2 dumps of real Go programs, compared goroutine by goroutine with what the program knew."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import grprof
from grprof.model import Goroutine, Snapshot

FIXTURES = Path(__file__).parent / "fixtures"
STATES = sorted(d for d in (FIXTURES / "states").iterdir() if (d / "truth.json").exists())


@pytest.fixture(params=["native", "pure"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with the Rust scanner and with the pure-Python one."""
    if request.param == "pure":
        monkeypatch.setenv("GRPROF_PURE", "1")
    else:
        from grprof.formats.traceback import native_scanner

        if native_scanner() is None:
            pytest.skip("native scanner not built")
    return str(request.param)


def truth(d: Path) -> dict[str, Any]:
    return dict(json.loads((d / "truth.json").read_text()))


def innermost_main(g: Goroutine) -> str | None:
    return next((f.function for f in g.frames if f.function.startswith("main.")), None)


def check_against_truth(snap: Snapshot, t: dict[str, Any], *, leak_marks: bool) -> None:
    assert snap.format == "debug=2"
    assert not snap.truncated
    by_id = {g.id: g for g in snap.goroutines}
    assert len(by_id) == snap.total == len(snap.goroutines)
    # The scrape itself adds its own connection goroutines to the program's.
    assert len(t["goroutines"]) <= snap.total <= len(t["goroutines"]) + 3
    orphans = {i for grp in snap.groups() for i in grp.orphans}
    for want in t["goroutines"]:
        g = by_id[want["id"]]
        ctx = (want["kind"], want["id"])
        assert g.state == want["state"], ctx
        assert innermost_main(g) == want["function"], ctx
        assert g.locked_to_thread == want["locked"], ctx
        assert g.wait_minutes >= want["wait_minutes"], ctx
        assert dict(g.labels) == (want["labels"] if t["header_labels"] else {}), ctx
        assert g.leaked == (want["leak"] and leak_marks), ctx
        if t["go_minor"] >= 21 and want["id"] != 1:
            # `created by F in goroutine N` names the creator from Go 1.21 on.
            assert g.creator_id == want["creator"], ctx
            assert (g.id in orphans) == want["orphan"], ctx
        if want["kind"] == "deep" and t["go_minor"] >= 21:
            assert g.frames_elided and len(g.frames) == 100, ctx


@pytest.mark.parametrize("d", STATES, ids=lambda d: d.name)
def test_states_dump_matches_truth(d: Path, scanner: str) -> None:
    t = truth(d)
    check_against_truth(grprof.load(d / "goroutine.debug2.txt"), t, leak_marks=False)


@pytest.mark.parametrize(
    "d", [d for d in STATES if (d / "goroutineleak.debug2.txt").exists()], ids=lambda d: d.name
)
def test_leak_marks_match_truth(d: Path, scanner: str) -> None:
    t = truth(d)
    for name in ("goroutineleak.debug2.txt", "goroutine-after-leak.debug2.txt"):
        snap = grprof.load(d / name)
        check_against_truth(snap, t, leak_marks=True)
        assert sum(g.leaked for g in snap.groups()) == sum(w["leak"] for w in t["goroutines"])


def test_every_go_version_is_covered() -> None:
    versions = {truth(d)["go_minor"] for d in STATES}
    assert {19, 21, 26, 27} <= versions


def test_minutes_and_version_inference() -> None:
    snap = grprof.load(FIXTURES / "states" / "go1.26.8-wait" / "goroutine.debug2.txt")
    assert max(g.wait_minutes for g in snap.goroutines) >= 1
    assert grprof.load(FIXTURES / "states" / "go1.21.13" / "goroutine.debug2.txt").go_version == "1.21.13"
    assert grprof.load(FIXTURES / "states" / "go1.19.8" / "goroutine.debug2.txt").go_version == "1.19"


def test_groups_and_similarity_levels() -> None:
    snap = grprof.load(FIXTURES / "states" / "go1.22.12" / "goroutine.debug2.txt")
    default = snap.groups()
    exact = snap.groups("exact")
    loose = snap.groups("loose")
    assert (
        sum(g.count for g in default)
        == sum(g.count for g in exact)
        == sum(g.count for g in loose)
        == snap.total
    )
    # Exact splits goroutines whose argument values differ; loose merges closures.
    assert len(exact) >= len(default) >= len(loose)
    assert len(exact) > len(default)
    # Every member id lands in exactly one group.
    ids = [i for g in default for i in g.ids]
    assert sorted(ids) == sorted(g.id for g in snap.goroutines)
    # Signatures are stable: parsing again gives the same ones.
    again = grprof.load(FIXTURES / "states" / "go1.22.12" / "goroutine.debug2.txt").groups()
    assert [g.signature for g in again] == [g.signature for g in default]


def test_stack_tree_counts() -> None:
    snap = grprof.load(FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt")
    tree = snap.stack_tree()
    assert tree.count == snap.total
    for _, node in tree.walk():
        assert node.count == node.self_count + sum(c.count for c in node.children.values())
