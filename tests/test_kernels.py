"""Acceptance: real-world leak kernels beside healthy controls (tests/goapps/kernels).

Each leak kernel (GoBench/goker shapes from cockroach, etcd, grpc, kubernetes and moby, and
LeakProf's) is called a few times right after start and leaves 1-8 goroutines; nothing grows
afterwards, so growth cannot find them: the ids that stay, blocked, with their creator gone,
the wait states, the source and the runtime's proof must. The controls are the healthy shapes
that look the most like them. Some function names lie about the cause on purpose.

The program runs once per module (two processes side by side, see tests/kernels.py), six
snapshots 5 s apart, stamped 30 s apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from kernels import (
    FIXTURES,
    VARIANTS,
    Outcome,
    Recording,
    Variant,
    check_recording,
    evaluate,
    false_leaks,
    leak_share,
    load_recording,
    record_live,
)

STRICT = ("debug=2", "debug=2+source")
"""Variants where every leak must be a leak and no control called a leak. The category is
checked with the source: without it, a `<-ctx.Done()` or a ticker loop parks in the same channel
frames as any receive, and the stack can honestly say only "channel" (docs/rules.md)."""
WITH_CATEGORY = ("debug=2+source",)


@pytest.fixture(scope="module")
def recording() -> Recording:
    return record_live()


def _report(title: str, misses: Sequence[Outcome]) -> str:
    lines = [f"{title}: {len(misses)}"]
    lines += [f"  - {o.describe()}" for o in misses]
    return "\n".join(lines)


def _variant(name: str) -> Variant:
    return next(v for v in VARIANTS if v.name == name)


@pytest.mark.slow
def test_truth_matches_live_dumps(recording: Recording) -> None:
    problems = check_recording(recording)
    assert not problems, "\n".join(problems)


def test_truth_matches_fixture() -> None:
    if not (FIXTURES / "truth.json").is_file():
        pytest.skip("no recorded fixture (tests/goapps/kernels/record.sh)")
    rec = load_recording(FIXTURES)
    problems = check_recording(rec)
    assert not problems, "\n".join(problems)
    kinds = [e["kind"] for e in rec.entries]
    assert kinds.count("leak") >= 32 and kinds.count("control") >= 32


@pytest.mark.slow
@pytest.mark.parametrize("name", [v.name for v in VARIANTS])
def test_kernels_series(recording: Recording, name: str) -> None:
    """debug=2 (with and without the source): every leak is a leak in its category, no control
    is a leak. debug=1, debug=0, and debug=2 with the goroutineleak profile: no control is a
    leak; the share of leaks found is printed."""
    v = _variant(name)
    results = evaluate(recording, v)
    if results is None:
        pytest.skip(f"{name}: this Go build has no goroutineleak profile")
    found, total = leak_share(results)
    print(f"{name}: {found}/{total} leaks found ({100 * found / total:.0f}%)")
    failures = []
    if false_leaks(results):
        failures.append(_report(f"{name}: controls called a leak", false_leaks(results)))
    if v.name in STRICT:
        missed = [
            o
            for o in results
            if o.kind == "leak" and not (o.found if v.name in WITH_CATEGORY else o.verdict == "leak")
        ]
        if missed:
            failures.append(_report(f"{name}: leaks not found as a leak (in their category)", missed))
    assert not failures, "\n".join(failures)
