"""Drive the leak kernels (tests/goapps/kernels) from tests and benchmarks.

The program runs 40-odd real-world leak kernels, each called a few times right after
start, beside as many healthy controls; its /truth lists both (an entry per goroutine
group: name, `leak` or `control`, the leak's category, the function that owns the
goroutines, how many). A *recording* is two runs of it side by side:

- `plain`: debug=2, debug=1 and debug=0 scraped at each of `steps` steps, `interval` real
  seconds apart, nothing else. The goroutineleak profile is never fetched, so no dump
  carries ` (leaked)` marks: the series shows only what the goroutine profile shows.
- `proof` (when the build has /debug/pprof/goroutineleak: Go 1.26 built with
  GOEXPERIMENT=goroutineleakprofile, Go 1.27): debug=2, then goroutineleak?debug=1, at
  each step. Once fetched, the leak profile marks goroutines ` (leaked)` in every later
  dump, which is why it runs in its own process.

    with start_kernels() as app:                 # builds once, waits for READY
        truth = get_truth(app.base_url)
    rec = record_live(steps=6, interval=5.0)     # both runs at once, about 30 s
    rec = load_recording(FIXTURES)               # or what record.sh saved
    for v in VARIANTS:
        outcomes = evaluate(rec, v)              # one Outcome per truth entry

Snapshots are stamped 30 s apart, as tests/test_zoo_detect.py does: the steps run seconds
apart, a poller would see them minutes apart.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import pathlib
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from gobuild import GOAPPS, RunningApp, build_goapp, go_version, run_goapp

import grprof
from grprof.detect.detector import Detection, Options, detect
from grprof.detect.model import Evidence, Finding, Member

Truth = dict[str, Any]
Entry = dict[str, Any]

KERNELS_DIR = GOAPPS / "kernels"
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "kernels"
FORMATS = ("debug=2", "debug=1", "debug=0")
LEAK_FORMAT = "goroutineleak?debug=1"
STEPS = 6
INTERVAL = 5.0
STAMP_SECONDS = 30
TIMEOUT = 60.0
FILE_NAMES = {
    "debug=0": "goroutine.debug0.pb.gz",
    "debug=1": "goroutine.debug1.txt",
    "debug=2": "goroutine.debug2.txt",
    LEAK_FORMAT: "goroutineleak.debug1.txt",
}


class KernelsError(RuntimeError):
    """The kernels program did not answer as expected."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of looking at a recording: which run, which format, with what."""

    name: str
    run: str
    """`plain` or `proof`."""
    fmt: str
    source: bool = False
    """Detect with Options(source_dir=KERNELS_DIR)."""
    leak_profile: bool = False
    """Add the run's goroutineleak profiles to the series."""


VARIANTS = (
    Variant("debug=2", "plain", "debug=2"),
    Variant("debug=2+source", "plain", "debug=2", source=True),
    Variant("debug=1", "plain", "debug=1"),
    Variant("debug=0", "plain", "debug=0"),
    Variant("+goroutineleak", "proof", "debug=2", leak_profile=True),
)


@dataclasses.dataclass
class Run:
    """What one process served: raw bodies per format in step order, and when."""

    times: list[float]
    """Unix time at the start of each step's scrape."""
    bodies: dict[str, list[bytes]]


@dataclasses.dataclass
class Recording:
    truth: Truth
    interval: float
    runs: dict[str, Run]

    @property
    def entries(self) -> list[Entry]:
        return list(self.truth["entries"])


# --- running the program --------------------------------------------------------------------------


def build_kernels(go: str = "go") -> pathlib.Path:
    """Build tests/goapps/kernels (with the goroutine leak profile on Go 1.26)."""
    env = {"GOEXPERIMENT": "goroutineleakprofile"} if go_version(go).startswith("go1.26") else {}
    return build_goapp("kernels", go, env=env)


@contextlib.contextmanager
def start_kernels(*, binary: pathlib.Path | None = None, go: str = "go") -> Iterator[RunningApp]:
    """Run the kernels program (built here, or `binary`) until the block ends."""
    with run_goapp(binary or build_kernels(go)) as app:
        yield app


def get(base: str, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        raise KernelsError(f"GET {base}{path}: {e}") from e


def get_truth(base: str) -> Truth:
    status, body = get(base, "/truth")
    if status != 200:
        raise KernelsError(f"/truth answered {status}")
    truth: Truth = json.loads(body)
    return truth


def scrape(base: str, fmt: str) -> bytes:
    """`debug=N` is the goroutine profile, else `PROFILE?debug=N`."""
    path = f"/debug/pprof/goroutine?{fmt}" if fmt.startswith("debug=") else f"/debug/pprof/{fmt}"
    status, body = get(base, path)
    if status != 200:
        raise KernelsError(f"{path} answered {status}: {body[:200]!r}")
    return body


def record_run(base: str, formats: Sequence[str], steps: int = STEPS, interval: float = INTERVAL) -> Run:
    """Scrape every format (in order) at each step, `interval` seconds apart."""
    run = Run([], {f: [] for f in formats})
    start = time.monotonic()
    for i in range(steps):
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        run.times.append(time.time())
        for f in formats:
            run.bodies[f].append(scrape(base, f))
    return run


def record_live(
    *,
    steps: int = STEPS,
    interval: float = INTERVAL,
    binary: pathlib.Path | None = None,
    go: str = "go",
    leak_profile: bool | None = None,
) -> Recording:
    """Run the program twice at once (plain and proof, see the module doc) and record both.

    `leak_profile` None records the proof run when the build has the goroutineleak profile.
    """
    binary = binary or build_kernels(go)

    def one(formats: Sequence[str]) -> tuple[Truth, Run]:
        with start_kernels(binary=binary) as app:
            truth = get_truth(app.base_url)
            if LEAK_FORMAT in formats and not truth["leak_profile"]:
                return truth, Run([], {})
            return truth, record_run(app.base_url, formats, steps, interval)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        plain = pool.submit(one, FORMATS)
        proof = pool.submit(one, ("debug=2", LEAK_FORMAT)) if leak_profile is not False else None
        truth, plain_run = plain.result()
        runs = {"plain": plain_run}
        if proof is not None:
            _, proof_run = proof.result()
            if proof_run.bodies:
                runs["proof"] = proof_run
    if leak_profile and "proof" not in runs:
        raise KernelsError(f"{truth['go_version']}: no goroutineleak profile in this build")
    return Recording(truth, interval, runs)


# --- fixtures (tests/goapps/kernels/record.sh) -------------------------------------------------------


def write_recording(rec: Recording, out: pathlib.Path) -> None:
    """Save as tests/fixtures/kernels/ holds it: RUN/N.<file> per scrape, truth.json, times.json."""
    out.mkdir(parents=True, exist_ok=True)
    for name, run in rec.runs.items():
        (out / name).mkdir(exist_ok=True)
        for fmt, bodies in run.bodies.items():
            for i, body in enumerate(bodies):
                (out / name / f"{i}.{FILE_NAMES[fmt]}").write_bytes(body)
    (out / "truth.json").write_text(json.dumps(rec.truth, indent=2) + "\n")
    times = {
        "go_version": rec.truth["go_version"],
        "interval": rec.interval,
        "runs": {name: {"times": run.times, "formats": list(run.bodies)} for name, run in rec.runs.items()},
    }
    (out / "times.json").write_text(json.dumps(times, indent=2) + "\n")


def load_recording(path: pathlib.Path = FIXTURES) -> Recording:
    truth: Truth = json.loads((path / "truth.json").read_text())
    times = json.loads((path / "times.json").read_text())
    runs = {}
    for name, meta in times["runs"].items():
        n = len(meta["times"])
        bodies = {
            f: [(path / name / f"{i}.{FILE_NAMES[f]}").read_bytes() for i in range(n)]
            for f in meta["formats"]
        }
        runs[name] = Run(list(meta["times"]), bodies)
    return Recording(truth, float(times["interval"]), runs)


# --- truth against dumps ----------------------------------------------------------------------------


def owner(functions: Iterable[str], truth_functions: Mapping[str, Entry] | set[str]) -> str | None:
    """The innermost of a stack's functions that is a truth entry's function."""
    return next((f for f in functions if f in truth_functions), None)


def _not_begun(state: str, functions: Sequence[str]) -> bool:
    """Just spawned by `go f(x)`, not yet in f: whatever f is, it hasn't begun. Its traceback is
    the compiler's wrapper, with `runtime.goexit` under it (a clean run caught one so)."""
    return (
        state == "runnable"
        and bool(functions)
        and ".gowrap" in functions[0]
        and all(f.startswith("runtime.") for f in functions[1:])
    )


def check_truth(truth: Truth, dump2: grprof.Snapshot) -> list[str]:
    """Every way a debug=2 dump disagrees with the truth: an entry's goroutine count outside
    its bounds, or goroutines in the program's own code that no entry owns."""
    by_function = {e["function"]: e for e in truth["entries"]}
    counts: Counter[str] = Counter()
    problems = []
    for g in dump2.goroutines:
        names = [f.function for f in g.frames]
        fn = owner(names, by_function)
        if fn is not None:
            counts[fn] += 1
        elif _not_begun(g.state, names):
            continue
        elif any(n.startswith("main.") and n != "main.main" for n in names):
            problems.append(f"goroutine {g.id} [{g.state}] at {g.site} is in no truth entry")
    for e in truth["entries"]:
        n = counts[e["function"]]
        if not e["min"] <= n <= e["max"]:
            problems.append(
                f"{e['kind']} {e['name']}: {n} goroutines at {e['function']}, expected {e['min']}..{e['max']}"
            )
    return problems


def check_recording(rec: Recording) -> list[str]:
    """check_truth on every debug=2 dump of every run (and no ` (leaked)` mark in the plain run)."""
    problems = []
    for name, run in rec.runs.items():
        for i, body in enumerate(run.bodies.get("debug=2", [])):
            snap = grprof.load(body, name=f"{name}#{i}")
            problems += [f"{name} step {i}: {p}" for p in check_truth(rec.truth, snap)]
            if name == "plain" and any(g.leaked for g in snap.goroutines):
                problems.append(f"plain step {i}: goroutines marked (leaked) without the leak profile")
    return problems


# --- detection --------------------------------------------------------------------------------------


def snapshots(run: Run, fmt: str) -> list[grprof.Snapshot]:
    """The run's snapshots of one format, stamped STAMP_SECONDS apart (protobuf profiles carry
    their own real time, which would otherwise win)."""
    snaps = [grprof.load(b, name=f"{fmt}#{i}") for i, b in enumerate(run.bodies[fmt])]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i, s in enumerate(snaps):
        s.time = t0 + dt.timedelta(seconds=STAMP_SECONDS * i)
    return snaps


@dataclasses.dataclass(frozen=True)
class Hit:
    """One group grprof reported: a finding, or a member of a unit finding (with the unit's
    evidence)."""

    verdict: str
    category: str
    confidence: float
    site: grprof.Frame | None
    state: str
    counts: Sequence[int]
    rule: str | None
    evidence: Sequence[Evidence]
    unit: Finding | None = None
    """The finding this group is a member of, None for the finding's own group."""

    @classmethod
    def of(cls, f: Finding) -> Hit:
        return cls(f.verdict, f.category, f.confidence, f.site, f.state, f.counts, f.rule, f.evidence)

    @classmethod
    def member(cls, f: Finding, m: Member) -> Hit:
        return cls(m.verdict, m.category, f.confidence, m.site, m.state, m.counts, None, f.evidence, f)


@dataclasses.dataclass
class Outcome:
    """What grprof said about one truth entry."""

    entry: Entry
    hits: list[Hit]

    @property
    def name(self) -> str:
        return str(self.entry["name"])

    @property
    def kind(self) -> str:
        return str(self.entry["kind"])

    @property
    def top(self) -> Hit | None:
        """The strongest: a leak, then a suspect, then anything else, then by confidence."""
        rank = {"leak": 0, "suspect": 1}
        ranked = sorted(self.hits, key=lambda h: (rank.get(h.verdict, 2), -h.confidence))
        return ranked[0] if ranked else None

    @property
    def verdict(self) -> str | None:
        return self.top.verdict if self.top else None

    @property
    def category(self) -> str | None:
        return self.top.category if self.top else None

    @property
    def categories(self) -> set[str]:
        return {h.category for h in self.hits}

    @property
    def found(self) -> bool:
        """A leak found as a leak, in its category (every group of it)."""
        return self.verdict == "leak" and self.categories == {self.entry["category"]}

    def cell(self) -> str:
        """`leak/channel`, `suspect/sync`, `-` (no finding)."""
        if self.top is None:
            return "-"
        return f"{self.top.verdict}/{'+'.join(sorted(self.categories))}"

    def describe(self) -> str:
        e = self.entry
        cause = e["category"] or "healthy"
        want = f"{e['kind']} {e['name']} ({cause}, {e['function']}, {e['count']} goroutines)"
        if not self.hits:
            return f"{want}: no finding"
        parts = []
        for h in self.hits:
            ev = "; ".join(f"{x.signal}: {x.summary}" for x in h.evidence) or "no evidence"
            unit = f" (member of the unit at {h.unit.site})" if h.unit else ""
            parts.append(
                f"{h.verdict} {h.confidence:.2f} {h.category} (rule {h.rule}) at {h.site}{unit}, "
                f"state {h.state}, counts {list(h.counts)}: {ev}"
            )
        return f"{want}:\n      " + "\n      ".join(parts)


def variant_snapshots(rec: Recording, v: Variant) -> list[grprof.Snapshot] | None:
    """The series a variant detects on, None when the recording lacks it."""
    run = rec.runs.get(v.run)
    if run is None or v.fmt not in run.bodies:
        return None
    snaps = snapshots(run, v.fmt)
    if v.leak_profile:
        snaps += [grprof.load(b, name=f"goroutineleak#{i}") for i, b in enumerate(run.bodies[LEAK_FORMAT])]
    return snaps


def detect_variant(rec: Recording, v: Variant) -> Detection | None:
    snaps = variant_snapshots(rec, v)
    if snaps is None:
        return None
    return detect(snaps, Options(source_dir=KERNELS_DIR if v.source else None))


def outcomes(truth: Truth, d: Detection) -> list[Outcome]:
    """Each truth entry with the groups it owns among the findings and their unit members: the
    innermost frame of a group's stack that is some entry's function is this entry's."""
    by_function = {e["function"]: e for e in truth["entries"]}
    matched: dict[str, list[Hit]] = {e["function"]: [] for e in truth["entries"]}
    for f in d.findings:
        groups = [(f.frames, Hit.of(f))] + [(m.frames, Hit.member(f, m)) for m in f.members]
        for frames, hit in groups:
            fn = owner((fr.function for fr in frames), by_function)
            if fn is not None:
                matched[fn].append(hit)
    return [Outcome(e, matched[e["function"]]) for e in truth["entries"]]


def evaluate(rec: Recording, v: Variant) -> list[Outcome] | None:
    d = detect_variant(rec, v)
    return None if d is None else outcomes(rec.truth, d)


def leak_misses(results: Sequence[Outcome]) -> list[Outcome]:
    """Leaks not found as a leak in their category."""
    return [o for o in results if o.kind == "leak" and not o.found]


def false_leaks(results: Sequence[Outcome]) -> list[Outcome]:
    """Controls called a leak."""
    return [o for o in results if o.kind == "control" and o.verdict == "leak"]


def leak_share(results: Sequence[Outcome]) -> tuple[int, int]:
    leaks = [o for o in results if o.kind == "leak"]
    return sum(o.found for o in leaks), len(leaks)


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Record a leak-kernels series (tests/goapps/kernels).")
    parser.add_argument("command", choices=["record"])
    parser.add_argument("--binary", type=pathlib.Path, help="a built program (default: build it)")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--interval", type=float, default=INTERVAL)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rec = record_live(steps=args.steps, interval=args.interval, binary=args.binary)
    problems = check_recording(rec)
    if problems:
        print("kernels.py: the recorded dumps disagree with /truth:\n  " + "\n  ".join(problems))
        return 1
    write_recording(rec, args.out)
    print(
        f"kernels.py: recorded {args.steps} steps of {', '.join(rec.runs)} ({rec.truth['go_version']}) "
        f"into {args.out} in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
