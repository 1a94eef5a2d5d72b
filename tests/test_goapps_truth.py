"""The recorded states fixtures and their truth files agree with each other.

Parser tests compare grprof's output with `truth.json`; these tests make sure
that truth is itself right: every Go version is recorded, every truth goroutine
appears in the recorded debug=2 dumps with the state, function, flags and labels
the truth claims (read with a minimal header reader, independent of grprof),
and the leak profiles list exactly the goroutines the truth marks as leaks.
The slow tests run the Go programs live.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from gobuild import build_goapp, fetch, run_goapp

STATES = Path(__file__).parent / "fixtures" / "states"
FILE_RE = re.compile(r"(goroutine|goroutineleak)(-after-leak)?\.debug([012])\.(txt|pb\.gz)")
BASE_VERSIONS = ("go1.19.", "go1.21.", "go1.22.", "go1.26.", "go1.27.")
VARIANTS = ("go1.26.*-tracebacklabels", "go1.26.*-wait", "go1.27.*-gomod1.27")
HEADER_RE = re.compile(r"^goroutine (\d+) \[", re.M)
MAX_FILE = 300 * 1024
MAX_DIR = 5 * 1024 * 1024

Truth = dict[str, Any]


def fixture_dirs() -> list[Path]:
    return sorted(p for p in STATES.glob("go1.*") if p.is_dir())


def load_truth(d: Path) -> Truth:
    truth: Truth = json.loads((d / "truth.json").read_text())
    return truth


class Header:
    """What one debug=2 goroutine header and its first main.* frame say."""

    def __init__(self, text: str, start: int) -> None:
        end = text.find("\n\n", start)
        block = text[start : end if end >= 0 else len(text)]
        header, _, body = block.partition("\n")
        inside = header[header.index(" [") + 2 :]
        self.labels = " labels:{" in inside
        if self.labels:  # Go 1.26: labels inside the brackets, values may contain "]:"
            inside = inside[: inside.index(" labels:{")]
        else:
            close = inside.index("]")
            self.labels = inside[close:].startswith("] {")  # Go 1.27: after the brackets
            inside = inside[:close]
        parts = inside.split(", ")
        self.leaked = parts[0].endswith(" (leaked)")
        self.state = parts[0].removesuffix(" (leaked)")
        self.locked = "locked to thread" in parts
        minutes = [int(p.split()[0]) for p in parts if p.endswith(" minutes")]
        self.minutes = minutes[0] if minutes else 0
        funcs = [ln for ln in body.splitlines() if ln.startswith("main.")]
        self.function = funcs[0][: funcs[0].rindex("(")] if funcs else ""


def headers(path: Path) -> dict[int, Header]:
    text = path.read_text(encoding="utf-8")
    return {int(m.group(1)): Header(text, m.start()) for m in HEADER_RE.finditer(text)}


def check_dump(truth: Truth, dump: dict[int, Header], *, leak_marks: bool) -> None:
    """Every truth goroutine is in the dump as the truth says."""
    for g in truth["goroutines"]:
        h = dump.get(g["id"])
        assert h is not None, f"goroutine {g['id']} ({g['kind']}) missing"
        where = f"goroutine {g['id']} ({g['kind']})"
        assert (h.state, h.function, h.locked) == (g["state"], g["function"], g["locked"]), where
        assert h.minutes >= g["wait_minutes"], where
        assert h.leaked == (leak_marks and g["leak"]), where
        if g["labels"]:
            assert h.labels == truth["header_labels"], where


def test_every_version_and_variant_is_recorded() -> None:
    names = [d.name for d in fixture_dirs()]
    for prefix in BASE_VERSIONS:
        assert [n for n in names if n.startswith(prefix) and "-" not in n], f"no {prefix}x fixtures"
    for pattern in VARIANTS:
        assert list(STATES.glob(pattern)), f"no {pattern} fixtures"


@pytest.mark.parametrize("d", fixture_dirs(), ids=lambda d: d.name)
def test_truth_is_self_consistent(d: Path) -> None:
    truth = load_truth(d)
    # runtime.Version() names experiments: go1.26.8-X:goroutineleakprofile
    assert truth["go_version"].split("-X:")[0] == d.name.split("-")[0]
    states = collections.Counter(g["state"] for g in truth["goroutines"])
    assert dict(states) == truth["counts"]
    assert dict(collections.Counter(g["kind"] for g in truth["goroutines"])) == truth["kinds"]
    ids = {g["id"] for g in truth["goroutines"]}
    assert len(ids) == len(truth["goroutines"])
    for g in truth["goroutines"]:
        where = f"goroutine {g['id']} ({g['kind']})"
        if g["kind"] in {"orphan", "handler"}:  # their creators exited before READY
            assert g["orphan"] and g["creator"] not in ids, where
        elif g["kind"] == "main":
            assert (g["creator"], g["orphan"]) == (0, False), where
        else:
            assert g["creator"] in ids and not g["orphan"], where
    assert {g["kind"] for g in truth["goroutines"] if g["orphan"]} == {"orphan", "handler"}
    assert {g["kind"] for g in truth["goroutines"] if g["leak"]} == {
        "leak",
        "select_no_cases",
        "nil_chan_receive",
        "nil_chan_send",
    }


@pytest.mark.parametrize("d", fixture_dirs(), ids=lambda d: d.name)
def test_files_are_small_and_well_formed(d: Path) -> None:
    total = 0
    for f in d.iterdir():
        total += f.stat().st_size
        assert f.stat().st_size < MAX_FILE, f
        if f.name == "truth.json":
            continue
        m = FILE_RE.fullmatch(f.name)
        assert m, f"unexpected fixture name {f.name}"
        data = f.read_bytes()
        if m.group(3) == "0":
            assert gzip.decompress(data), f  # pprof protobuf, gzipped as served
        elif m.group(3) == "1":
            assert data.startswith(f"{m.group(1)} profile: total ".encode()), f
        else:
            assert data.startswith(b"goroutine "), f
    assert total < MAX_DIR


@pytest.mark.parametrize("d", fixture_dirs(), ids=lambda d: d.name)
def test_debug2_dumps_match_truth(d: Path) -> None:
    truth = load_truth(d)
    dumps = sorted(d.glob("*.debug2.txt"))
    assert dumps
    for path in dumps:
        # The leak profile marks leaked goroutines, and the mark stays in later dumps.
        check_dump(truth, headers(path), leak_marks=path.name != "goroutine.debug2.txt")


@pytest.mark.parametrize("d", fixture_dirs(), ids=lambda d: d.name)
def test_leak_profile_lists_exactly_the_leaks(d: Path) -> None:
    truth = load_truth(d)
    leak1 = d / "goroutineleak.debug1.txt"
    assert leak1.exists() == truth["leak_profile"]
    if not leak1.exists():
        pytest.skip(f"{truth['go_version']} build has no goroutineleak profile")
    leaks = [g for g in truth["goroutines"] if g["leak"]]
    first = leak1.read_text().splitlines()[0]
    assert first == f"goroutineleak profile: total {len(leaks)}"
    listed = set(re.findall(r"\t(main\.\w+)\+0x", leak1.read_text()))
    assert listed == {g["function"] for g in leaks}


@pytest.mark.parametrize("d", fixture_dirs(), ids=lambda d: d.name)
def test_state_strings_follow_the_go_version(d: Path) -> None:
    truth = load_truth(d)
    by_kind = {g["kind"]: g["state"] for g in truth["goroutines"]}
    minor = truth["go_minor"]
    mutex = "semacquire" if minor < 20 else "sync.Mutex.Lock"
    waitgroup = "semacquire" if minor < 24 else "sync.WaitGroup.Wait"
    assert (by_kind["mutex"], by_kind["waitgroup"]) == (mutex, waitgroup)
    assert by_kind["syscall"] == "syscall"
    assert by_kind["select_no_cases"] == "select (no cases)"


def test_wait_variant_shows_minutes() -> None:
    (d,) = STATES.glob("go1.26.*-wait")
    truth = load_truth(d)
    dump = headers(d / "goroutine.debug2.txt")
    waited = [g for g in truth["goroutines"] if g["wait_minutes"] >= 1]
    assert len(waited) == len(truth["goroutines"]) - 2  # all but main and the server
    assert all(dump[g["id"]].minutes >= 1 for g in waited)


@pytest.mark.slow
def test_states_live_matches_truth(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    dump_path = tmp_path / "dump.txt"
    with run_goapp("states", "-n", "1", "-truth", str(truth_path)) as app:
        truth: Truth = json.loads(truth_path.read_text())
        # `main` prints READY and then parks; on a loaded machine the first dump can catch it
        # still leaving the write (state `syscall`). The others are parked for good: a few
        # more dumps, a moment apart, let only that settle.
        for attempt in range(5):
            dump_path.write_bytes(fetch(app.base_url, "/debug/pprof/goroutine?debug=2"))
            try:
                check_dump(truth, headers(dump_path), leak_marks=False)
                break
            except AssertionError:
                if attempt == 4:
                    raise
                time.sleep(0.2)


@pytest.mark.slow
def test_many_hits_the_64mib_cap() -> None:
    with run_goapp(build_goapp("many")) as app:
        dump = fetch(app.base_url, "/debug/pprof/goroutine?debug=2", timeout=300)
    assert len(dump) == 64 << 20
    last = dump[dump.rindex(b"\ngoroutine ") :]
    assert not last.endswith(b"\n\n")  # cut inside the last goroutine, not between two
