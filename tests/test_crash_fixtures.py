"""Consistency of the recorded crash fixtures (tests/fixtures/crash) with their truth files.

These tests check the recordings, not grprof: every dump must contain what the program that
printed it said it would (goroutine ids, states, innermost functions, creators, labels, prologue
lines), so parser tests can trust both. Regenerate with tests/goapps/crash/record.sh.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent / "fixtures" / "crash"
VERSIONS = ("go1.19.8", "go1.21.13", "go1.22.12", "go1.24.11", "go1.26.8", "go1.27.3")
HEADER = re.compile(r"^goroutine (\d+)(?: gp=0x[0-9a-f]+ m=(?:\d+ mp=0x[0-9a-f]+|nil))? \[(.*)\](.*):$")
CREATED = re.compile(r"^created by (\S+)(?: in goroutine (\d+))?$")


@dataclass
class Block:
    """One goroutine as printed: header pieces and the lines under it."""

    id: int
    status: str
    after: str
    frames: list[str] = field(default_factory=list)
    created_by: str | None = None
    creator: int | None = None
    ancestors: list[int] = field(default_factory=list)
    unavailable: bool = False
    """`goroutine running on other thread; stack unavailable` instead of frames."""


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    for line in text.split("\n"):
        m = HEADER.match(line)
        if m:
            out.append(Block(int(m[1]), m[2], m[3]))
            continue
        if not out or not line:
            continue
        b = out[-1]
        if line.strip() == "goroutine running on other thread; stack unavailable":
            b.unavailable = True
        if line[0].isspace():
            continue
        if line.startswith("[originating from goroutine "):
            b.ancestors.append(int(line.split()[3].rstrip("]:")))
        elif (c := CREATED.match(line)) and not b.ancestors:
            b.created_by, b.creator = c[1], int(c[2]) if c[2] else None
        elif line.endswith(")") and "(" in line and not b.ancestors:
            b.frames.append(line[: line.rindex("(")])
    return out


def fixtures() -> list[Path]:
    return sorted(p for p in ROOT.glob("*/*.truth.json"))


def load(truth_path: Path) -> tuple[dict[str, Any], str]:
    doc = json.loads(truth_path.read_text(encoding="utf-8"))
    text = truth_path.with_name(truth_path.name.removesuffix(".truth.json") + ".txt").read_text(
        encoding="utf-8"
    )
    return doc, text


def minor(doc: dict[str, Any]) -> int:
    """Minor version of the Go that ran ("go1.24.11 X:synctest" -> 24)."""
    return int(str(doc["go"]).split()[0].split(".")[1])


def test_every_version_recorded() -> None:
    for v in VERSIONS:
        d = ROOT / v
        assert (d / "panic.all.txt").is_file(), v
        assert (d / "sigquit.crash.txt").is_file(), v
        assert (d / "gotest-timeout.txt").is_file(), v


def test_files_pair_up_and_stay_small() -> None:
    for txt in ROOT.glob("*/*.txt"):
        if txt.name == "skipped.txt":
            continue
        assert txt.with_name(txt.name.removesuffix(".txt") + ".truth.json").is_file(), txt
        assert txt.stat().st_size < 100_000, txt
        assert txt.stat().st_size > 0, txt


@pytest.mark.parametrize("truth_path", fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_dump_matches_truth(truth_path: Path) -> None:
    doc, text = load(truth_path)
    if "parts" in doc:  # two-dumps: each part is checked in its own file; here only their order
        for part in doc["parts"]:
            check_prologue(part.get("prologue") or [], text)
        return
    check_part(doc, text, truth_path)


def check_part(doc: dict[str, Any], text: str, where: Path) -> None:
    if where.parent.name.startswith("go"):
        recorded = doc["recording"]["go"]
        assert recorded == where.parent.name, "recorded with another Go version than its directory"
        assert str(doc["go"]).split()[0] == recorded, "the program ran on another Go version"
    check_prologue(doc.get("prologue") or [], text)
    got = blocks(text)
    by_id: dict[int, list[Block]] = {}
    for b in got:
        by_id.setdefault(b.id, []).append(b)
    scope = doc["scope"]
    want = doc["goroutines"]
    if scope == "current":
        current = doc.get("current") or 0
        ids = [g["id"] for g in want] if current == 0 else [current]
        assert got and got[0].id in ids, f"first goroutine {got[0].id if got else None} not in {ids}"
        want = [g for g in want if g["id"] == got[0].id]
    elif scope == "truncated":
        assert len(text.encode()) == int(doc["extra"]["buffer"]), "runtime.Stack should fill the buffer"
        complete = {b.id for b in got[:-1]}  # the last goroutine is cut short
        want = [g for g in want if g["id"] in complete]
        assert want, "no known goroutine before the cut"
    for g in want:
        assert g["id"] in by_id, f"goroutine {g['id']} missing"
        check_goroutine(doc, g, by_id[g["id"]][-1])


def check_prologue(lines: list[str], text: str) -> None:
    all_lines = text.split("\n")
    pos = 0
    for want in lines:
        assert want in all_lines[pos:], f"prologue line {want!r} missing"
        pos = all_lines.index(want, pos) + 1
    if lines:
        rest = all_lines[pos:]
        assert any(HEADER.match(x) for x in rest), "no goroutine after the prologue"


def check_goroutine(doc: dict[str, Any], g: dict[str, Any], b: Block) -> None:
    assert not b.unavailable or b.status == "running", b.status
    if g.get("state"):
        assert b.status.startswith(g["state"]), f"{g['id']}: [{b.status}] is not {g['state']!r}"
    assert ("locked to thread" in b.status) == bool(g.get("locked_to_thread")), b.status
    if g.get("synctest"):
        kind = "group" if minor(doc) == 24 else "bubble"
        assert f", synctest {kind} " in b.status, b.status
    own = g["func"].rsplit(".", 1)[0].split(".")[0] + "."
    mine = [f for f in b.frames if f.startswith(own)]
    if not b.unavailable:
        assert mine and mine[0] == g["func"], f"{g['id']}: innermost {own}* frame {mine[:1]} != {g['func']}"
    if g.get("created_by"):
        assert b.created_by == g["created_by"], f"{g['id']}: created by {b.created_by}"
        if minor(doc) >= 21:
            assert b.creator == g["creator"], f"{g['id']}: creator {b.creator} != {g['creator']}"
    if g.get("ancestors"):
        assert b.ancestors == g["ancestors"], f"{g['id']}: ancestors {b.ancestors}"
    check_labels(doc, g, b)


def check_labels(doc: dict[str, Any], g: dict[str, Any], b: Block) -> None:
    godebug = str(doc.get("godebug", ""))
    shown = "tracebacklabels=1" in godebug or "go127" in str(doc["recording"].get("build", ""))
    labels = g.get("labels") or {}
    if not labels or not shown:
        assert "labels:{" not in b.status and not b.after.strip(), f"unexpected labels: {b.status}{b.after}"
        return
    where = b.status if minor(doc) == 26 else b.after
    for key in labels:
        assert key in where, f"{g['id']}: label {key!r} not in {where!r}"


def test_two_dumps_is_a_concatenation() -> None:
    for v in VERSIONS:
        d = ROOT / v
        both = (d / "panic.all.txt").read_bytes() + (d / "sigquit.all.txt").read_bytes()
        assert (d / "two-dumps.txt").read_bytes() == both


def test_version_differences_are_recorded() -> None:
    """The format differences parsers depend on really are in the files."""

    def read(version: str, name: str) -> str:
        return (ROOT / version / f"{name}.txt").read_text(encoding="utf-8")

    assert "in goroutine " not in read("go1.19.8", "panic.all")
    assert "created by main.startParked in goroutine 1" in read("go1.21.13", "panic.all")
    assert " gp=0x" not in read("go1.21.13", "sigquit.system")
    assert re.search(r"^goroutine \d+ gp=0x", read("go1.22.12", "sigquit.system"), re.M)
    assert "...additional frames elided..." in read("go1.19.8", "stackoverflow")
    assert re.search(r"^\.\.\.\d+ frames elided\.\.\.$", read("go1.21.13", "stackoverflow"), re.M)
    assert "panic: boom [recovered]\n\tpanic: boom\n" in read("go1.24.11", "repanic")
    assert "panic: boom [recovered, repanicked]\n" in read("go1.26.8", "repanic")
    assert "\n\tsecond line\n" in read("go1.24.11", "panic-multiline")
    assert "\nsecond line\n" in read("go1.22.12", "panic-multiline")
    assert "(synctest), synctest group " in read("go1.24.11", "synctest-stack")
    assert "(durable), synctest bubble " in read("go1.26.8", "synctest-stack")
    assert ' labels:{"request": "r/1"}]:' in read("go1.26.8", "labels-godebug.all")
    assert "[running] {request: r/1}:" in read("go1.27.3", "labels-gomod127.all")
    assert "\n-----\n" in read("go1.19.8", "sigquit.crash")
    assert "[originating from goroutine 1]:" in read("go1.19.8", "ancestors.all")
