"""`grprof diff BEFORE AFTER`, `--focus`/`--ignore` and the pager, through the real CLI on
recorded snapshots of real services (tests/fixtures)."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import grprof

FIXTURES = Path(__file__).parent / "fixtures"
ZOO = FIXTURES / "zoo"
BEFORE = ZOO / "0-warm-up.goroutine.debug2.txt"
AFTER = ZOO / "5-drained.goroutine.debug2.txt"
BEFORE_PB = ZOO / "0-warm-up.goroutine.debug0.pb.gz"
STATES = FIXTURES / "states"
GRPROF = [sys.executable, "-m", "grprof.cli"]
ENTRY_POINT = Path(sys.executable).parent / "grprof"
"""The installed `grprof` script, for the terminal tests: the real entry point."""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*GRPROF, *args], capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def diff_json(*args: str) -> dict[str, Any]:
    p = run("diff", "--json", *args)
    assert p.returncode == 0, p.stderr
    return dict(json.loads(p.stdout))


def counts_by_site(path: Path) -> Counter[str]:
    """Goroutines per site function, from the parsed snapshot (not from the diff's matching)."""
    (snap,) = grprof.load_all(str(path))
    out: Counter[str] = Counter()
    for g in snap.groups():
        if g.site is not None:
            out[g.site.function] += g.count
    return out


def rows_by_site(d: dict[str, Any]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for g in d["groups"]:
        if g["site"]:
            b, a = out.get(g["site"]["function"], (0, 0))
            out[g["site"]["function"]] = (b + g["before"], a + g["after"])
    return out


def truth_leak_functions() -> list[str]:
    truth = json.loads((ZOO / "truth.json").read_text())
    return sorted(
        {w["function"] for leak in truth["leaks"] if leak["enabled"] for w in leak["goroutines"]}
        & set(counts_by_site(AFTER))
    )


# -- the diff --------------------------------------------------------------------------------


def test_zoo_leaks_are_new_or_grown_with_the_right_counts() -> None:
    d = diff_json(str(BEFORE), str(AFTER))
    before, after = counts_by_site(BEFORE), counts_by_site(AFTER)
    rows = rows_by_site(d)
    leaking = [f for f in truth_leak_functions() if after[f] > before[f]]
    assert len(leaking) >= 10, leaking
    for fn in leaking:
        assert rows[fn] == (before[fn], after[fn]), fn
        statuses = {g["status"] for g in d["groups"] if g["site"] and g["site"]["function"] == fn}
        assert statuses <= {"new", "grown"}, (fn, statuses)
    # The classic leakyHandler leak: present only in AFTER, and the detector calls it a leak.
    (row,) = [g for g in d["groups"] if g["site"]["function"] == "main.leakyHandler.func1"]
    assert before["main.leakyHandler.func1"] == 0
    assert row["status"] == "new" and row["before"] == 0 and row["after"] == after["main.leakyHandler.func1"]
    assert row["delta"] == row["after"] and row["verdict"] == "leak" and row["finding"] == row["id"]
    # Every group only in AFTER is new; every group only in BEFORE has vanished.
    for fn in set(after) - set(before):
        assert {g["status"] for g in d["groups"] if g["site"]["function"] == fn} == {"new"}, fn
    for fn in set(before) - set(after):
        assert {g["status"] for g in d["groups"] if g["site"]["function"] == fn} == {"vanished"}, fn
    # The healthy pool did not move.
    (pool,) = [g for g in d["groups"] if g["site"]["function"] == "main.poolWorker"]
    assert (pool["status"], pool["before"], pool["after"], pool["verdict"]) == ("same", 200, 200, None)


def test_verdicts_are_those_of_analyze_on_the_pair() -> None:
    d = diff_json(str(BEFORE), str(AFTER))
    p = run("analyze", "--json", str(BEFORE), str(AFTER))
    analyzed = json.loads(p.stdout)["findings"]
    assert [f["id"] for f in d["findings"]] == [f["id"] for f in analyzed]
    by_id = {g["id"]: g for g in d["groups"]}
    for f in analyzed:
        assert by_id[f["id"]]["verdict"] == f["verdict"], f["id"]
        for m in f["members"]:
            assert by_id[m["id"]]["finding"] == f["id"]
    assert d["summary"]["verdicts"] == dict(Counter(f["verdict"] for f in analyzed)) | {
        v: 0 for v in ("leak", "suspect", "inconclusive") if v not in {f["verdict"] for f in analyzed}
    }


def test_json_shape() -> None:
    d = diff_json(str(BEFORE), str(AFTER))
    assert d["schema"] == "grprof.diff/v1"
    assert set(d) == {
        "schema",
        "generator",
        "before",
        "after",
        "filter",
        "summary",
        "groups",
        "findings",
        "warnings",
    }
    for side, path in (("before", BEFORE), ("after", AFTER)):
        assert d[side]["source"] == str(path) and d[side]["format"] == "debug=2"
        assert d[side]["total"] == grprof.load(str(path)).total
    s = d["summary"]
    assert s["goroutines"]["delta"] == d["after"]["total"] - d["before"]["total"]
    assert sum(s["status"].values()) == s["groups"] == len(d["groups"])
    assert sum(g["before"] for g in d["groups"]) == d["before"]["total"]
    assert sum(g["after"] for g in d["groups"]) == d["after"]["total"]
    keys = {
        "id",
        "status",
        "before",
        "after",
        "delta",
        "state",
        "state_inferred",
        "site",
        "created_by",
        "wait_minutes",
        "leaked",
        "verdict",
        "confidence",
        "finding",
        "category",
        "title",
        "frames",
    }
    for g in d["groups"]:
        assert set(g) == keys
        assert g["delta"] == g["after"] - g["before"]
        assert set(g["wait_minutes"]) == {"before", "after", "grown"}
    deltas = [abs(g["delta"]) for g in d["groups"]]
    assert deltas == sorted(deltas, reverse=True)  # biggest changes first


def test_mixed_formats_debug0_profile_against_debug2_dump() -> None:
    d = diff_json(str(BEFORE_PB), str(AFTER))
    assert (d["before"]["format"], d["after"]["format"]) == ("debug=0", "debug=2")
    before, after = counts_by_site(BEFORE_PB), counts_by_site(AFTER)
    rows = rows_by_site(d)
    for fn in truth_leak_functions():
        if fn.startswith("main."):
            assert rows[fn] == (before[fn], after[fn]), fn
    (row,) = [g for g in d["groups"] if g["site"]["function"] == "main.leakyHandler.func1"]
    assert row["status"] == "new" and row["verdict"] == "leak"
    # Groups seen in both formats match across them: the pool is one row, not two.
    (pool,) = [g for g in d["groups"] if g["site"]["function"] == "main.poolWorker"]
    assert (pool["before"], pool["after"]) == (200, 200)
    # debug=0 has no wait times: unknown, never "grown".
    assert all(g["wait_minutes"]["before"] is None and not g["wait_minutes"]["grown"] for g in d["groups"])


def test_grown_wait_ages_are_flagged() -> None:
    # The same program, the second run left parked 70 s: ", 1 minutes" on its waits.
    d = diff_json(
        str(STATES / "go1.26.8/goroutine.debug2.txt"), str(STATES / "go1.26.8-wait/goroutine.debug2.txt")
    )
    (mutex,) = [g for g in d["groups"] if g["site"]["function"] == "main.blockMutex"]
    assert mutex["status"] == "same" and mutex["wait_minutes"] == {"before": 0, "after": 1, "grown": True}
    p = run(
        "diff",
        str(STATES / "go1.26.8/goroutine.debug2.txt"),
        str(STATES / "go1.26.8-wait/goroutine.debug2.txt"),
    )
    line = next(ln for ln in p.stdout.splitlines() if "main.blockMutex" in ln)
    assert "1 min ▲" in line and line.split()[0] == "same"


def test_text_output_biggest_changes_first() -> None:
    p = run("diff", str(BEFORE), str(AFTER), "--top", "5")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "goroutines 310 → 459 (+149)" in out
    rows = [ln for ln in out.splitlines() if re.match(r"(new|grown|vanished|shrunk|same) ", ln)]
    assert len(rows) == 5
    assert rows[0].split()[:4] == ["vanished", "80", "0", "-80"]  # the drained bursts
    assert "more groups (--top to show more" in out


def test_html_is_self_contained_and_escapes_hostile_strings(tmp_path: Path) -> None:
    hostile = "</title><script>alert(1)</script>"
    before = tmp_path / "before.txt"
    before.write_text("goroutine 1 [running]:\nmain.main()\n\t/src/main.go:5 +0x1\n")
    after = tmp_path / 'after<marquee>&"x.txt'
    after.write_text(
        f"goroutine 1 [chan receive, 3 minutes]:\nmain.{hostile}(0x0?)\n"
        "\t/src/<img src=x onerror=alert(2)>.go:10 +0x3e5\nmain.main()\n\t/src/main.go:5 +0x1\n"
    )
    out = tmp_path / "diff.html"
    p = run("diff", str(before), str(after), "--html", str(out))
    assert p.returncode == 0, p.stderr
    assert "HTML diff written to" in p.stdout and hostile in p.stdout  # the text shows it as is
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<img" not in page and "<marquee" not in page
    assert "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "after&lt;marquee&gt;&amp;" in page
    assert not re.search(r"<[^>]+\son\w+=", page)  # no inline event handlers
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)  # nothing fetched
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # The one inline style is allowed by its hash; nothing else may run.
    css = page.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page and "script-src" not in page


def test_fail_on() -> None:
    assert run("diff", str(BEFORE), str(AFTER), "--fail-on", "leak").returncode == 1
    assert run("diff", str(BEFORE), str(AFTER), "--fail-on", "suspect", "--json").returncode == 1
    # A dump against itself: two suspects (orphans), no leak; the status is analyze's.
    same = str(STATES / "go1.26.8/goroutine.debug2.txt")
    for verdict, status in (("leak", 0), ("suspect", 1), ("inconclusive", 1)):
        assert run("diff", same, same, "--fail-on", verdict).returncode == status, verdict
        assert run("analyze", same, same, "--fail-on", verdict).returncode == status, verdict
    assert run("diff", same, same).returncode == 0
    # --fail-on reads the findings left after --focus/--ignore, as analyze does.
    p = run("diff", str(BEFORE), str(AFTER), "--fail-on", "suspect", "--focus", r"^main\.poolWorker$")
    assert p.returncode == 0, p.stdout
    p = run("analyze", str(BEFORE), str(AFTER), "--fail-on", "suspect", "--focus", r"^main\.poolWorker$")
    assert p.returncode == 0, p.stdout


def test_usage_errors_are_one_line() -> None:
    for args in (
        ("diff", str(BEFORE)),
        ("diff", str(BEFORE), str(AFTER), "--focus", "("),
        ("diff", "-", "-"),
        ("diff", str(BEFORE), str(ZOO / "missing.txt")),
        ("diff", str(BEFORE), str(AFTER), "--fail-on", "maybe"),
    ):
        p = run(*args)
        assert p.returncode == 2, args
        assert p.stderr.startswith("grprof: ") and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_broken_pipe_is_quiet() -> None:
    cmd = f"set -o pipefail; {sys.executable} -m grprof.cli diff {BEFORE} {AFTER} --top 100 | head -1"
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == "" and p.stdout.startswith("before:")


def test_stdin_as_one_side() -> None:
    p = subprocess.run(
        [*GRPROF, "diff", "--json", str(BEFORE), "-"],
        input=AFTER.read_bytes(),
        capture_output=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["after"]["source"] == "<stdin>" and d["after"]["total"] == grprof.load(str(AFTER)).total


# -- --focus / --ignore ----------------------------------------------------------------------


def _functions(g: dict[str, Any]) -> list[str]:
    return [f["function"] for f in g["frames"]] + ([g["created_by"]["function"]] if g["created_by"] else [])


def test_diff_focus_and_ignore() -> None:
    full = diff_json(str(BEFORE), str(AFTER))
    focus = r"^main\.(leakyHandler|consumeItems|poolWorker)"
    only = diff_json(str(BEFORE), str(AFTER), "--focus", focus)
    assert {g["site"]["function"] for g in only["groups"]} == {
        "main.leakyHandler.func1",
        "main.consumeItems",
        "main.poolWorker",
    }
    assert only["filter"] == {"focus": focus, "ignore": None, "hidden_groups": len(full["groups"]) - 3}
    assert {f["site"]["function"] for f in only["findings"]} == {
        "main.leakyHandler.func1",
        "main.consumeItems",
    }
    ignore = r"^(google\.golang\.org|net/http|net\.)"
    without = diff_json(str(BEFORE), str(AFTER), "--ignore", ignore)
    assert without["groups"] and all(
        not re.search(ignore, n) for g in without["groups"] for n in _functions(g)
    )
    assert all(not re.search(ignore, n) for f in without["findings"] for n in _functions(f))
    kept = {g["id"] for g in without["groups"]}
    dropped = [g for g in full["groups"] if g["id"] not in kept]
    assert dropped and all(any(re.search(ignore, n) for n in _functions(g)) for g in dropped)
    both = diff_json(str(BEFORE), str(AFTER), "--focus", r"^main\.", "--ignore", r"^main\.poolWorker$")
    assert both["groups"] and "main.poolWorker" not in {g["site"]["function"] for g in both["groups"]}


def test_analyze_focus_and_ignore_and_their_old_names() -> None:
    path = str(STATES / "go1.26.8/goroutine.debug2.txt")

    def groups(*args: str) -> list[str]:
        p = run("analyze", "--json", path, *args)
        assert p.returncode == 0, p.stderr
        return [g["signature"] for g in json.loads(p.stdout)["groups"]]

    assert groups("--focus", r"blockMutex$") == groups("--filter", r"blockMutex$") != []
    assert groups("--ignore", r"^main\.block") == groups("--exclude", r"^main\.block") != []
    assert len(groups("--ignore", r"^main\.block")) < len(groups())
    # The documented names are in the help; the old ones still work but are not shown.
    h = run("analyze", "--help").stdout
    assert "--focus" in h and "--ignore" in h and "--no-pager" in h
    assert "--filter" not in h and "--exclude" not in h
    # Findings on the groups left out go too.
    p = run("analyze", "--json", str(BEFORE), str(AFTER), "--ignore", r"^main\.leakyHandler")
    found = {f["site"]["function"] for f in json.loads(p.stdout)["findings"] if f["site"]}
    assert "main.leakyHandler.func1" not in found and "main.consumeItems" in found


def test_watch_takes_focus_and_ignore() -> None:
    h = run("watch", "--help").stdout
    assert "--focus" in h and "--ignore" in h
    p = run("watch", "127.0.0.1:1", "--focus", "(")
    assert p.returncode == 2 and "bad regular expression" in p.stderr


@pytest.mark.slow
def test_watch_focus_and_ignore_on_a_live_service() -> None:
    from gobuild import run_goapp

    with run_goapp("../../examples/leaky", "-addr", "127.0.0.1:0", "-rate", "40") as (_, base):
        args = ("watch", base, "--interval", "1s", "--duration", "5s", "--json")
        focused = run(*args, "--focus", r"leakyHandler")
        ignored = run(*args, "--ignore", r"leakyHandler")
    for p in (focused, ignored):
        assert p.returncode == 0, p.stderr
    f = json.loads(focused.stdout)["findings"]
    assert f and all(any("leakyHandler" in n for n in _functions(x)) for x in f)
    i = json.loads(ignored.stdout)["findings"]
    assert all(not any("leakyHandler" in n for n in _functions(x)) for x in i)


# -- the pager -------------------------------------------------------------------------------


def _pager(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A pager script that notes it ran (in a file) and passes its input through."""
    mark = tmp_path / f"{name}.ran"
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\necho ran >> "{mark}"\nexec cat\n')
    script.chmod(0o755)
    return script, mark


def in_terminal(
    args: list[str], env: dict[str, str], rows: int = 24, cols: int = 200, timeout: float = 120
) -> tuple[int, str, str]:
    """Run the real `grprof` entry point with its stdout on a pseudo-terminal of `rows` x `cols`."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    cmd = [str(ENTRY_POINT)] if ENTRY_POINT.exists() else GRPROF
    proc = subprocess.Popen(
        [*cmd, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last holder of the terminal closed it
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    return status, out.decode(errors="replace"), err


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PAGER", "GRPROF_PAGER", "LESS")}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def test_pager_runs_on_a_terminal_for_long_output(tmp_path: Path) -> None:
    pager, mark = _pager(tmp_path, "pager")
    status, out, err = in_terminal(["diff", str(BEFORE), str(AFTER)], _env(PAGER=str(pager)), rows=24)
    assert status == 0, err
    assert mark.read_text() == "ran\n"
    assert "main.consumeItems" in out  # what the pager passed through


def test_pager_analyze(tmp_path: Path) -> None:
    pager, mark = _pager(tmp_path, "pager")
    status, out, err = in_terminal(["analyze", str(AFTER)], _env(PAGER=str(pager)), rows=24)
    assert status == 0, err
    assert mark.exists() and "main.poolWorker" in out


def test_no_pager_when_the_output_fits_or_is_refused(tmp_path: Path) -> None:
    pager, mark = _pager(tmp_path, "pager")
    env = _env(PAGER=str(pager))
    diff = ["diff", str(BEFORE), str(AFTER)]
    for args, rows in (
        ([*diff, "--no-pager"], 24),  # refused
        ([*diff, "--json"], 24),  # never for JSON
        ([*diff, "--top", "5"], 200),  # fits on the screen
    ):
        status, out, err = in_terminal(args, env, rows=rows)
        assert status == 0, err
        assert not mark.exists(), args
        assert "main." in out
    # Not a terminal: never.
    p = run(*diff, env=env)
    assert p.returncode == 0 and "main.consumeItems" in p.stdout and not mark.exists()


def test_pager_choice_and_a_missing_pager(tmp_path: Path) -> None:
    ours, ours_mark = _pager(tmp_path, "grprof-pager")
    theirs, theirs_mark = _pager(tmp_path, "pager")
    args = ["diff", str(BEFORE), str(AFTER)]
    status, _, err = in_terminal(args, _env(GRPROF_PAGER=str(ours), PAGER=str(theirs)))
    assert status == 0, err
    assert ours_mark.exists() and not theirs_mark.exists()
    # A pager that is not installed: the report is printed as it is.
    status, out, err = in_terminal(args, _env(PAGER=str(tmp_path / "no-such-pager")))
    assert status == 0 and err == "" and "main.consumeItems" in out
    # An empty PAGER means no pager, as for git.
    status, out, _ = in_terminal(args, _env(PAGER="", GRPROF_PAGER=""))
    assert status == 0 and "main.consumeItems" in out and not theirs_mark.exists()
