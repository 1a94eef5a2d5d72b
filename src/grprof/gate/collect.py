"""Read what to judge: a leakcheck directory (`go test` with GRPROF_LEAKCHECK_DIR), or
snapshots of a running service (files, or a URL polled over a load run)."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from grprof.detect.detector import Options, detect
from grprof.detect.model import VERDICTS, Finding
from grprof.detect.rules import RuleSet, RuleSource, combine, load_file, load_rules, parse_yaml
from grprof.errors import GrprofError
from grprof.gate.model import GateResult, Leak, TestCase
from grprof.gate.signature import signature
from grprof.loader import load
from grprof.model import Frame, Group, Snapshot, site_of
from grprof.sources import resolve_target

LABEL = "test"
"""leakcheck's label key (go/leakcheck: `Label`)."""
MAIN = "TestMain"
"""The name VerifyTestMain writes its profiles under."""
# leakcheck's file names: <safeName(test)><suffix>, in order of preference for grouping
# (debug=0 and debug=1 carry the `test` label with every Go version; debug=2 only with Go 1.27).
GOROUTINE_SUFFIXES = (".goroutine.pb.gz", ".goroutine.debug1.txt", ".goroutine.debug2.txt")
LEAK_SUFFIXES = (".goroutineleak.pb.gz", ".goroutineleak.debug1.txt")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class GateError(GrprofError):
    """Bad input for `grprof gate`: one line, exit status 2."""


def safe_name(name: str) -> str:
    """leakcheck's file name for a test (go/leakcheck: `safeName`)."""
    return _UNSAFE.sub("_", name)


def gate_rules(extra: Sequence[str | Path] = ()) -> RuleSet:
    """grprof's rules and ignore rules, plus data/gate.yaml's ignores, plus `--rules` files."""
    text = resources.files("grprof").joinpath("data/gate.yaml").read_text(encoding="utf-8")
    base = load_rules()
    shipped = parse_yaml(text, "grprof/data/gate.yaml")
    users = [load_file(p) for p in extra]
    # load_rules() is already merged; recombine with the gate's and the user's sources after it.
    merged = RuleSource("grprof", rules=base.rules, ignores=base.ignores, stack=base.stack)
    return combine([merged, shipped, *users])


def user_frame(frames: Sequence[Frame]) -> Frame | None:
    """The first frame in the user's code (neither runtime, standard library nor dependency)."""
    for f in frames:
        if f.is_user and not f.is_runtime:
            return f
    return site_of(frames)


def _leak_of(group: Group, count: int, rules: RuleSet, *, test: str | None, source: str) -> Leak:
    ex = rules.classify(group)
    return Leak(
        signature=signature(group.frames, group.state),
        count=count,
        state=group.state,
        frames=group.frames,
        site=user_frame(group.frames),
        category=ex.category if ex else "unknown",
        rule=ex.rule if ex else None,
        title=ex.title if ex else "Goroutine still running after the test",
        fix=ex.fix if ex else "",
        test=test,
        source=source,
        labels={k: dict(v) for k, v in group.labels.items()},
    )


def _load(path: Path) -> Snapshot:
    try:
        return load(str(path))
    except GrprofError as e:
        raise GateError(str(e)) from e


def _profiles(directory: Path) -> dict[str, Path]:
    """Test file stem -> its preferred goroutine profile."""
    out: dict[str, Path] = {}
    for suffix in reversed(GOROUTINE_SUFFIXES):  # the preferred suffix last: it wins
        for p in directory.glob("*" + suffix):
            out[p.name[: -len(suffix)]] = p
    return out


def from_leakcheck_dir(directory: Path, rules: RuleSet) -> GateResult:
    """The leaks in a leakcheck directory: in `<test>.goroutine.*`, the goroutines labelled
    `test=<test>` (other tests' goroutines, running in parallel, carry their own label); in
    `TestMain.*` (VerifyTestMain), every goroutine, blamed on its label when it has one."""
    if not directory.is_dir():
        raise GateError(
            f"{directory}: no such directory (leakcheck writes it only on a leak: mkdir -p it first)"
        )
    leaks: list[Leak] = []
    ignored: dict[str, int] = {}
    tests: list[TestCase] = []
    profiles = _profiles(directory)
    for stem in sorted(profiles):
        path = profiles[stem]
        snap = _load(path)
        proof = _proof(directory, stem)
        found: list[Leak] = []
        for g in snap.groups():
            values = g.labels.get(LABEL, {})
            if stem == MAIN:
                picks = [(v, n) for v, n in values.items()]
                unlabelled = g.count - sum(values.values())
                if unlabelled > 0:
                    picks.append((MAIN, unlabelled))
            else:
                picks = [(v, n) for v, n in values.items() if safe_name(v) == stem]
            if not picks:
                continue
            why = rules.ignored(g)
            if why is not None:
                ignored[why] = ignored.get(why, 0) + sum(n for _, n in picks)
                continue
            for test, n in picks:
                leak = _leak_of(g, n, rules, test=test, source=str(path))
                if leak.signature.id in proof:
                    leak = dataclasses.replace(leak, proven=True)
                found.append(leak)
        leaks.extend(found)
        names = sorted({x.test for x in found if x.test}) or [stem]
        tests.extend(TestCase(name=n, outcome="fail") for n in names)
    return GateResult(mode="leakcheck", inputs=[str(directory)], leaks=leaks, tests=tests, ignored=ignored)


def _proof(directory: Path, stem: str) -> set[str]:
    """Signatures of the goroutines a goroutineleak profile of the test lists."""
    for suffix in LEAK_SUFFIXES:
        p = directory / (stem + suffix)
        if p.is_file():
            snap = _load(p)
            return {signature(g.frames, g.state).id for g in snap.groups()}
    return set()


def merge_go_test_json(result: GateResult, path: Path) -> None:
    """Add every test `go test -json` ran (one JUnit testcase each), with its outcome and time;
    and a `<package> (package)` testcase for a package that failed with no failed test and
    no leakcheck report (a build failure, a panic, TestMain's exit status)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise GateError(f"{path}: {e.strerror or e}") from e
    by_name = {t.name: t for t in result.tests}
    outputs: dict[str, list[str]] = {}
    package_output: dict[str, list[str]] = {}
    failed_packages: dict[str, float] = {}
    seen = False
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # go test -json interleaves build output
        if not isinstance(ev, dict) or not (ev.get("Test") or ev.get("Package")):
            continue
        seen = True
        action = ev.get("Action")
        if not ev.get("Test"):
            pkg = str(ev["Package"])
            if action == "output":
                package_output.setdefault(pkg, []).append(str(ev.get("Output", "")))
            elif action == "fail":
                failed_packages[pkg] = float(ev.get("Elapsed") or 0.0)
            continue
        name = str(ev["Test"])
        if action == "output":
            outputs.setdefault(name, []).append(str(ev.get("Output", "")))
        if action in ("pass", "fail", "skip"):
            t = by_name.get(name)
            if t is None:
                t = by_name[name] = TestCase(name=name)
                result.tests.append(t)
            t.outcome = str(action)
            t.package = str(ev.get("Package", ""))
            t.seconds = float(ev.get("Elapsed") or 0.0)
    if not seen:
        raise GateError(f"{path}: not `go test -json` output (no test events)")
    for t in result.tests:
        t.output = "".join(outputs.get(t.name, []))
    for pkg, seconds in sorted(failed_packages.items()):
        text = "".join(package_output.get(pkg, []))
        if any(t.package == pkg and t.outcome == "fail" for t in result.tests) or "leakcheck:" in text:
            continue
        result.tests.append(
            TestCase(
                name=f"{pkg} (package)", package=pkg, seconds=seconds, outcome="fail", output=text, whole=True
            )
        )


# ---------------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True)
class Poll:
    url: str
    duration: float
    snapshots: int


def poll(p: Poll, sleep: Callable[[float], None] = time.sleep) -> list[Snapshot]:
    """`snapshots` goroutine profiles of a live service, evenly spread over `duration`
    (the first at once, the last at the end): debug=0, which carries labels and times."""
    target = resolve_target(p.url, default="debug=0")
    out: list[Snapshot] = []
    step = p.duration / max(p.snapshots - 1, 1)
    for i in range(p.snapshots):
        if i:
            sleep(step)
        try:
            out.append(load(target.url))
        except GrprofError as e:
            raise GateError(str(e)) from e
    return out


def failing(f: Finding, fail_on: str, min_growth: int) -> bool:
    """Whether a finding fails the gate: a verdict of `fail_on` or worse, or (the gate's own
    rule) a group that grew by `min_growth` or more goroutines in a *blocking* wait (a send
    nobody receives, `select {}`, a lock; detect.yaml `wait_kinds`), whatever the verdict.

    Why the second: between two snapshots around a load run the detector never says more
    than inconclusive (a load ramp grows too), but a goroutine parked in a blocking wait
    does not come back when the load stops; growth in an idle or waiting state (connection
    loops, timers, workers) does not fail the gate."""
    if f.verdict in VERDICTS[: VERDICTS.index(fail_on) + 1]:
        return True
    counts = list(f.counts)
    grew = len(counts) >= 2 and counts[-1] - counts[0] >= min_growth
    return f.wait_kind == "blocking" and grew


def from_service(
    snaps: Sequence[Snapshot],
    rules: RuleSet,
    *,
    fail_on: str,
    interval: float | None,
    inputs: Sequence[str],
    min_growth: int = 1,
) -> GateResult:
    """The detector's findings on the snapshots (a series, as `grprof analyze` runs it) that
    fail the gate (`failing`), each a leak to judge against the baseline."""
    if fail_on not in VERDICTS:
        raise GateError(f"--fail-on {fail_on}: want one of {', '.join(VERDICTS)}")
    detection = detect(list(snaps), Options(interval=interval, rules=rules))
    leaks = [_finding_leak(f, inputs[-1]) for f in detection.findings if failing(f, fail_on, min_growth)]
    notes = list(detection.warnings)
    if detection.thin:
        notes.append(detection.thin)
    return GateResult(
        mode="service", inputs=list(inputs), leaks=leaks, ignored=dict(detection.ignored), notes=notes
    )


def _finding_leak(f: Finding, source: str) -> Leak:
    frames = tuple(f.frames)
    return Leak(
        signature=signature(frames, f.state),
        count=f.count,
        state=f.state,
        frames=frames,
        site=user_frame(frames) or f.site,
        category=f.category,
        rule=f.rule,
        title=f.title,
        fix=f.fix,
        source=source,
        proven=f.runtime_confirmed,
        verdict=f.verdict,
        confidence=f.confidence,
        labels={k: dict(v) for k, v in f.labels.items()},
    )
