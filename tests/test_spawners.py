"""Goroutines started through a helper or by one accept loop (tests/goapps/spawners), live.

Who started a group decides much of its verdict: only the service's own code counts for
orphans and for the same ids staying put, and one shared creator ties groups into one
finding. Two shapes real services have that those rules got wrong:

- work fanned out through errgroup's `Go` or `WaitGroup.Go`: the `created by` frame is the
  library's, yet the service's code started them; a few such leaks at start and nothing
  after must be found by their ids staying put (not by growth);
- two handler bugs on one net/http server, driven by the same traffic: their counts rise in
  lockstep and the one accept loop started both, yet they are two bugs with two fixes.

And what must stay quiet: a main-level errgroup (a server and a shutdown watcher) and an idle
worker pool.
"""

from __future__ import annotations

import time

import pytest
from gobuild import fetch, run_goapp

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Finding


@pytest.fixture(scope="module")
def snapshots() -> list[grprof.Snapshot]:
    snaps = []
    with run_goapp("spawners", "-rate", "8") as (_, base):
        for i in range(6):
            if i:
                time.sleep(3)
            # Traffic paused around each dump: one taken between a request's two `go`
            # statements would break the lockstep of the pairs it starts (a loaded machine
            # widens that window).
            fetch(base, "/drive?on=0")
            time.sleep(0.2)
            snaps.append(grprof.load(fetch(base, "/debug/pprof/goroutine?debug=2"), name=f"{i}.txt"))
            fetch(base, "/drive?on=1")
    return snaps


@pytest.fixture(scope="module")
def detection(snapshots: list[grprof.Snapshot]) -> Detection:
    return detect(snapshots, Options(interval=30.0))  # six snapshots, read as 30 s apart


def _at(d: Detection, function: str) -> tuple[Finding, str | None]:
    """The finding that holds the group at `function`, and the lead's site when it is a member."""
    for f in d.findings:
        if f.site is not None and f.site.function == function:
            return f, None
        for m in f.members:
            if m.site is not None and m.site.function == function:
                return f, f.site.function if f.site else f.id
    raise AssertionError(f"no finding at {function}: {[f.site for f in d.findings]}")


@pytest.mark.parametrize("function", ["main.fanoutFirst.func1", "main.fanoutWait.func1"])
def test_workers_started_through_a_helper_are_the_services_own(detection: Detection, function: str) -> None:
    f, lead = _at(detection, function)
    assert lead is None and f.verdict == "leak", f
    assert any(e.signal == "persistence" for e in f.evidence), [e.summary for e in f.evidence]


def test_the_caller_waiting_on_them_is_found_too(detection: Detection) -> None:
    f, lead = _at(detection, "main.fanoutWait")
    assert f.verdict == "leak" and lead is None


def test_two_handlers_of_one_server_are_two_findings(detection: Detection) -> None:
    report, lead_r = _at(detection, "main.reportHandler")
    upload, lead_u = _at(detection, "main.uploadHandler")
    assert (lead_r, lead_u) == (None, None), (report.members, upload.members)
    assert report.verdict == upload.verdict == "leak"
    assert report.category == "sync" and upload.category == "channel"
    # The handler's own goroutine sends: not a worker that a handler started and gave up on.
    assert upload.rule != "chan-send-after-timeout", upload.title


@pytest.mark.parametrize("function", ["main.pool", "main.main.func1", "main.main.func2", "main.poller"])
def test_long_lived_goroutines_are_not_findings(detection: Detection, function: str) -> None:
    with pytest.raises(AssertionError, match="no finding"):
        _at(detection, function)


def test_a_unit_is_named_after_the_lock_holder_not_its_waiters(detection: Detection) -> None:
    """The proposer sends while holding the lock; the status readers wait for it. Started in
    pairs by the same requests, they rise in lockstep: one unit, led by the proposer (the
    one to fix), whatever order the groups came in."""
    f, lead = _at(detection, "main.(*replica).status")
    assert lead == "main.(*replica).propose", (lead, [m.site for m in f.members])
    assert f.verdict == "leak"


def test_a_wait_inside_a_dependency_names_the_services_caller(detection: Detection) -> None:
    """fanoutGroupWait's goroutines are parked in errgroup's `Wait` (the site: a dependency's
    frame); the report says where in the service's code that call is."""
    from rich.console import Console

    from grprof.report.text import finding_detail

    f, lead = _at(detection, "golang.org/x/sync/errgroup.(*Group).Wait")
    assert lead is None and f.verdict == "leak"
    console = Console(width=300, record=True)
    console.print(finding_detail(f, 1))
    assert "called from main.fanoutGroupWait spawners/main.go:" in console.export_text()


def test_one_dump_of_pollers_a_setup_function_started_is_no_suspect(snapshots: list[grprof.Snapshot]) -> None:
    """Pollers sleeping in their loop, started by a function that returned: orphans by design.
    In one dump (a pasted crash) their creator's absence alone does not make a suspect; the
    fan-out workers blocked on their sends, orphans too, still are."""
    one = detect(snapshots[-1:])
    with pytest.raises(AssertionError, match="no finding"):
        _at(one, "main.poller")
    f, _ = _at(one, "main.fanoutFirst.func1")
    assert f.verdict == "suspect"
