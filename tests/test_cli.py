"""`grprof analyze`: text, JSON and HTML output from files, stdin and live services."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gobuild import fetch, run_goapp

FIXTURES = Path(__file__).parent / "fixtures"
STATES = FIXTURES / "states" / "go1.26.8"
GRPROF = [sys.executable, "-m", "grprof.cli"]


def grprof(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    p = subprocess.run([*GRPROF, *args], input=stdin, capture_output=True, timeout=120)
    assert b"Traceback" not in p.stderr, p.stderr.decode()
    return p


def report(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    p = grprof("analyze", "--json", *args, stdin=stdin)
    assert p.returncode == 0, p.stderr.decode()
    return dict(json.loads(p.stdout))


def test_text_report_names_the_sites() -> None:
    p = grprof("analyze", str(STATES / "goroutine.debug2.txt"), "--top", "30")
    out = p.stdout.decode()
    assert p.returncode == 0
    assert "goroutines in" in out
    for fn in ("main.blockChanReceive", "main.blockMutex", "main.blockWaitGroup", "main.orphanChild"):
        assert fn in out
    assert "chan receive" in out


def test_text_report_of_a_panic_shows_the_panic() -> None:
    p = grprof("analyze", str(FIXTURES / "crash" / "go1.26.8" / "panic.all.txt"))
    assert p.returncode == 0
    assert "panic: boom" in p.stdout.decode()


def test_json_report_schema() -> None:
    r = report(str(STATES / "goroutine.debug2.txt"))
    assert r["schema"] == "grprof.report/v1"
    # One plain snapshot: its orphans are suspects, nothing more (see test_detect.py).
    assert {f["verdict"] for f in r["findings"]} == {"suspect"}
    (snap,) = r["snapshots"]
    assert {"source", "format", "profile", "time", "total", "truncated"} <= snap.keys()
    assert snap["format"] == "debug=2" and snap["profile"] == "goroutine" and not snap["truncated"]
    assert sum(g["count"] for g in r["groups"]) == snap["total"]
    for g in r["groups"]:
        assert g["snapshot"] == 0
        assert set(g["site"]) == {"function", "file", "line"}
        assert g["created_by"] is None or set(g["created_by"]) == {"function", "file", "line"}
        assert len(g["ids"]) == g["count"]
    orphans = {i for g in r["groups"] for i in g["orphan_ids"]}
    want = {w["id"] for w in json.loads((STATES / "truth.json").read_text())["goroutines"] if w["orphan"]}
    assert orphans == want


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("goroutine.debug0.pb.gz", "debug=0"),
        ("goroutine.debug1.txt", "debug=1"),
        ("goroutine.debug2.txt", "debug=2"),
    ],
)
def test_every_format_gives_the_same_total(name: str, fmt: str) -> None:
    r = report(str(STATES / name))
    (snap,) = r["snapshots"]
    assert snap["format"] == fmt
    truth = json.loads((STATES / "truth.json").read_text())
    assert len(truth["goroutines"]) <= snap["total"] <= len(truth["goroutines"]) + 3


def test_goroutineleak_profile_is_all_leaked() -> None:
    r = report(str(STATES / "goroutineleak.debug1.txt"))
    (snap,) = r["snapshots"]
    assert snap["profile"] == "goroutineleak"
    leaks = sum(w["leak"] for w in json.loads((STATES / "truth.json").read_text())["goroutines"])
    assert snap["total"] == leaks == sum(g["leaked"] for g in r["groups"])


def test_filter_exclude_min_count() -> None:
    path = str(STATES / "goroutine.debug2.txt")
    full = report(path)
    only = report(path, "--filter", r"blockMutex$")
    assert {g["site"]["function"] for g in only["groups"]} == {"main.blockMutex"}
    assert only["snapshots"][0]["hidden_groups"] == len(full["groups"]) - len(only["groups"])
    without = report(path, "--exclude", r"^main\.block")
    assert all(not f["function"].startswith("main.block") for g in without["groups"] for f in g["frames"])
    big = report(path, "--min-count", "4")
    assert big["groups"] and all(g["count"] >= 4 for g in big["groups"])


def test_similarity_levels() -> None:
    path = str(STATES / "goroutine.debug2.txt")
    counts = {s: len(report(path, "--similarity", s)["groups"]) for s in ("exact", "default", "loose")}
    assert counts["exact"] > counts["default"] >= counts["loose"]


def test_stdin_and_gzip(tmp_path: Path) -> None:
    raw = (STATES / "goroutine.debug2.txt").read_bytes()
    gz = tmp_path / "dump.txt.gz"
    gz.write_bytes(gzip.compress(raw))
    a = report("-", stdin=raw)
    b = report(str(gz))
    assert a["snapshots"][0]["source"] == "<stdin>"
    assert a["snapshots"][0]["total"] == b["snapshots"][0]["total"]
    assert [g["signature"] for g in a["groups"]] == [g["signature"] for g in b["groups"]]


def test_several_inputs_and_several_dumps_in_one_file() -> None:
    two = next(iter(sorted((FIXTURES / "crash").glob("*/two-dumps.txt"))))
    r = report(str(STATES / "goroutine.debug2.txt"), str(two))
    sources = [s["source"] for s in r["snapshots"]]
    assert sources[0].endswith("goroutine.debug2.txt")
    assert sources[1:] == [f"{two}#1", f"{two}#2"]
    assert {g["snapshot"] for g in r["groups"]} == {0, 1, 2}


def test_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    p = grprof("analyze", str(STATES / "goroutine.debug2.txt"), "--html", str(out))
    assert p.returncode == 0, p.stderr.decode()
    html = out.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "main.blockChanReceive" in html and "<svg" in html


@pytest.mark.slow
def test_live_service_every_format() -> None:
    with run_goapp("states", "-n", "3") as (_, base):
        totals = {}
        for debug in (0, 1, 2):
            r = report(f"{base}/debug/pprof/goroutine?debug={debug}")
            totals[debug] = r["snapshots"][0]["total"]
            assert r["snapshots"][0]["format"] == f"debug={debug}"
        sites = {g["site"]["function"] for g in report(f"{base}/debug/pprof/goroutine?debug=2")["groups"]}
        assert "main.blockMutex" in sites
        assert fetch(base, "/debug/pprof/goroutine?debug=1").startswith(b"goroutine profile: total")
    # Every scrape sees the same parked goroutines plus its own connection goroutines.
    assert max(totals.values()) - min(totals.values()) <= 3


def test_a_tuned_process_leaves_its_heap_out_of_the_last_collection() -> None:
    """`analyze` and `diff` tune the collector (`grprof._gc.tune`): at exit everything alive
    is frozen before the interpreter's final collection, which otherwise walked a big dump's
    stacks and groups once more (50 ms on 20,000 distinct stacks) to free nothing."""
    code = (
        "import atexit, gc\n"
        # atexit runs handlers last registered first: this one runs after tune's.
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from grprof import _gc\n"
        "_gc.tune()\n"
        "_gc.tune()\n"
        "print('frozen before exit:', gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["frozen before exit: False", "frozen at exit: True"]
