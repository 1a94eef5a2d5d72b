"""Drive the leak zoo (tests/goapps/zoo) from tests.

    with start_zoo(postgres.dsn) as zoo:          # builds once, waits for READY
        hit(zoo.base, "/leak/chan-nil", 5)          # 5 concurrent requests
        series = record_series(zoo.base, DEFAULT_PHASES)
        series["debug=2"][-1]                       # raw body of the last debug=2 scrape

`record(...)` is the same with scrape times and the zoo's /truth after each
phase. `check_truth(truth, dump2, dump1=..., leak1=...)` lists every way a
real dump disagrees with the zoo's /truth (empty when they agree); the live
truth test and detector tests share it.

The zoo is built with GOEXPERIMENT=goroutineleakprofile on Go 1.26 (Go 1.27
always has the profile), so /debug/pprof/goroutineleak exists.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import pathlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from gobuild import RunningApp, build_goapp, go_version, run_goapp

import grprof

Truth = dict[str, Any]
GOROUTINE_FORMATS = ("debug=0", "debug=1", "debug=2")
LEAK_FORMAT = "goroutineleak?debug=1"
TIMEOUT = 30.0


class ZooError(RuntimeError):
    """The zoo did not answer as expected."""


@dataclasses.dataclass(frozen=True)
class Zoo:
    base: str
    app: RunningApp

    def truth(self) -> Truth:
        return get_truth(self.base)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One step of traffic, then one scrape of every format.

    `leaks` requests go to every enabled leak endpoint (or only `kinds`), the
    zoo gets `settle` seconds to park them, then the controls run (`bursts`
    requests of `burst_size` goroutines each, keep-alive and pool requests) and
    the scrape follows at once, so bursts still show in it.
    """

    name: str
    leaks: int = 0
    kinds: tuple[str, ...] | None = None
    bursts: int = 0
    burst_size: int = 40
    keepalive: int = 0
    pool: int = 0
    settle: float = 0.3


# Warm-up with controls only, four leaking phases with bursts, then traffic stops and bursts drain.
DEFAULT_PHASES: tuple[Phase, ...] = (
    Phase("warm-up", bursts=2, keepalive=2, pool=2),
    *(Phase(f"leak-{i}", leaks=2, bursts=2, keepalive=1, pool=1) for i in range(1, 5)),
    Phase("drained", settle=1.0),
)


@dataclasses.dataclass
class Series:
    """What `record` scraped: raw bodies per format in phase order, and when."""

    phases: list[str]
    times: list[float]
    """Unix time at the start of each phase's scrape."""
    bodies: dict[str, list[bytes]]
    truths: list[Truth]
    """/truth right after each phase's scrape (its request counts match that scrape)."""

    @property
    def truth(self) -> Truth:
        return self.truths[-1]


def build_zoo(go: str = "go") -> pathlib.Path:
    """Build tests/goapps/zoo (with the goroutine leak profile on Go 1.26)."""
    env = {"GOEXPERIMENT": "goroutineleakprofile"} if go_version(go).startswith("go1.26") else {}
    return build_goapp("zoo", go, env=env)


@contextlib.contextmanager
def start_zoo(
    pg_dsn: str | None,
    *,
    go: str = "go",
    env: Mapping[str, str] | None = None,
    binary: pathlib.Path | None = None,
) -> Iterator[Zoo]:
    """Run the zoo (against PostgreSQL at `pg_dsn`; None disables the database leaks).

    `binary` runs a zoo built elsewhere (record.sh builds it in a fixed directory).
    """
    args = ["-db", pg_dsn] if pg_dsn else []
    with run_goapp(binary or build_zoo(go), *args, env=env) as app:
        yield Zoo(app.base_url, app)


def get(base: str, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """GET base+path; (status, body), error statuses included."""
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        raise ZooError(f"GET {base}{path}: {e}") from e


def get_truth(base: str) -> Truth:
    status, body = get(base, "/truth")
    if status != 200:
        raise ZooError(f"/truth answered {status}")
    truth: Truth = json.loads(body)
    return truth


def hit(base: str, endpoint: str, n: int, *, concurrency: int = 8) -> list[int]:
    """Send n GET requests to endpoint concurrently; return their statuses.

    Leak endpoints answer 4xx/5xx on purpose sometimes (a leakyHandler times out with
    504); only a failed connection raises.
    """
    if n <= 0:
        return []
    with concurrent.futures.ThreadPoolExecutor(min(n, concurrency)) as pool:
        return [status for status, _ in pool.map(lambda _: get(base, endpoint), range(n))]


def leak_endpoints(truth: Truth, kinds: Sequence[str] | None = None) -> list[str]:
    return [
        leak["endpoint"]
        for leak in truth["leaks"]
        if leak["enabled"] and (kinds is None or leak["kind"] in kinds)
    ]


def run_phase(base: str, phase: Phase, truth: Truth) -> None:
    """Send one phase's traffic (leaks first, controls last)."""
    endpoints = leak_endpoints(truth, phase.kinds)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda ep: hit(base, ep, phase.leaks, concurrency=2), endpoints))
    time.sleep(phase.settle)
    hit(base, "/control/keepalive", phase.keepalive)
    hit(base, "/control/pool?n=50", phase.pool)
    hit(base, f"/control/burst?n={phase.burst_size}", phase.bursts)


def scrape(base: str, fmt: str) -> bytes:
    """One profile body: `debug=N` is the goroutine profile, else `PROFILE?debug=N`."""
    path = f"/debug/pprof/goroutine?{fmt}" if fmt.startswith("debug=") else f"/debug/pprof/{fmt}"
    status, body = get(base, path, timeout=120)
    if status != 200:
        raise ZooError(f"{path} answered {status}: {body[:200]!r}")
    return body


def record(
    base: str,
    phases: Sequence[Phase] = DEFAULT_PHASES,
    formats: Sequence[str] = GOROUTINE_FORMATS,
    *,
    leak: bool | None = None,
) -> Series:
    """Run the phases, scraping every format after each (the leak profile last,
    because it marks goroutines ` (leaked)` in later dumps); `leak` None means
    when the zoo has the goroutineleak profile."""
    truth = get_truth(base)
    fmts = list(formats)
    if leak or (leak is None and truth["leak_profile"]):
        fmts.append(LEAK_FORMAT)
    series = Series([], [], {f: [] for f in fmts}, [])
    for phase in phases:
        run_phase(base, phase, truth)
        series.phases.append(phase.name)
        series.times.append(time.time())
        for f in fmts:
            series.bodies[f].append(scrape(base, f))
        series.truths.append(get_truth(base))
    return series


def record_series(
    base: str, phases: Sequence[Phase] = DEFAULT_PHASES, formats: Sequence[str] = GOROUTINE_FORMATS
) -> dict[str, list[bytes]]:
    """Raw bodies per format, in time order (plus the leak profile when the zoo has it)."""
    return record(base, phases, formats).bodies


# --- checking a dump against /truth -------------------------------------------------------------


def expected(leak: Mapping[str, Any], stack: Mapping[str, Any]) -> int:
    """Goroutines a leak's stack should have accumulated after leak["requests"] requests."""
    return int(stack["per_request"]) * max(0, int(leak["requests"]) - int(leak["free_requests"]))


def innermost_main(frames: Sequence[grprof.Frame]) -> str:
    return next((f.function for f in frames if f.function.startswith("main.")), "")


def stack_matches(stack: Mapping[str, Any], frames: Sequence[grprof.Frame]) -> bool:
    """Function is the innermost main.* frame and the truth's frames occur in order."""
    if innermost_main(frames) != stack["function"]:
        return False
    names = iter(f.function for f in frames)
    return all(any(n == want for n in names) for want in stack["frames"])


def goroutine_matches(stack: Mapping[str, Any], g: grprof.Goroutine) -> bool:
    created_by = g.created_by.function if g.created_by else ""
    return g.state in stack["states"] and created_by == stack["created_by"] and stack_matches(stack, g.frames)


def shared_max(truth: Truth, kind: str, stack: Mapping[str, Any]) -> int:
    """Most control goroutines that have the same stack as this leak stack."""
    total = 0
    for control in truth["controls"]:
        for g in control["goroutines"]:
            same = (g["function"], g["created_by"], tuple(g["frames"])) == (
                stack["function"],
                stack["created_by"],
                tuple(stack["frames"]),
            )
            if kind in g["shares_stack_with"] and same:
                total += int(g["max"])
    return total


def check_truth(
    truth: Truth,
    dump2: grprof.Snapshot,
    *,
    dump1: grprof.Snapshot | None = None,
    leak1: grprof.Snapshot | None = None,
) -> list[str]:
    """Every way the dumps disagree with the truth.

    dump2 (debug=2): each leak stack has its expected count (exactly, beyond
    control goroutines that share its stack) and every control is within its
    bounds. dump1 (debug=1): labelled goroutines carry the truth's labels.
    leak1 (goroutineleak debug=1): exactly the leak_profile stacks are in it.
    """
    problems: list[str] = []
    gs = dump2.goroutines
    for leak in truth["leaks"]:
        for stack in leak["goroutines"]:
            want = expected(leak, stack)
            got = sum(goroutine_matches(stack, g) for g in gs)
            slack = shared_max(truth, leak["kind"], stack)
            if not want <= got <= want + slack:
                problems.append(f"{leak['kind']}: {_describe(stack)}: {got} goroutines, expected {want}")
            if dump1 is not None:
                problems += _check_labels(leak["kind"], stack, want, dump1)
            if leak1 is not None:
                problems += _check_leak_profile(leak["kind"], stack, want, leak1)
    for control in truth["controls"]:
        for stack in control["goroutines"]:
            got = sum(goroutine_matches(stack, g) for g in gs)
            extra = sum(
                expected(leak, s)
                for leak in truth["leaks"]
                if leak["kind"] in stack["shares_stack_with"]
                for s in leak["goroutines"]
                if (s["function"], s["created_by"], s["frames"])
                == (stack["function"], stack["created_by"], stack["frames"])
            )
            low, high = stack["min"] + extra, (stack["max"] + extra if stack["max"] >= 0 else None)
            if got < low or (high is not None and got > high):
                problems.append(
                    f"control {control['name']}: {_describe(stack)}: {got} goroutines, bounds {low}..{high}"
                )
    return problems


def _check_labels(kind: str, stack: Mapping[str, Any], want: int, dump1: grprof.Snapshot) -> list[str]:
    labels = stack["labels"]
    for key, value in labels.items():
        got = sum(
            g.labels.get(key, {}).get(value, 0) for g in dump1.groups() if stack_matches(stack, g.frames)
        )
        if got < want:
            return [f"{kind}: {_describe(stack)}: {got} goroutines labelled {key}={value}, expected {want}"]
    if not labels:
        matched = [g for g in dump1.groups() if stack_matches(stack, g.frames)]
        if any(v for g in matched for v in g.labels.get("handler", {}) if v.startswith("/leak/")):
            return [f"{kind}: {_describe(stack)}: carries a /leak/ handler label, truth says none"]
    return []


def _check_leak_profile(kind: str, stack: Mapping[str, Any], want: int, leak1: grprof.Snapshot) -> list[str]:
    got = sum(g.count for g in leak1.groups() if stack_matches(stack, g.frames))
    if stack["leak_profile"] and got < want:
        return [f"{kind}: {_describe(stack)}: {got} in the goroutineleak profile, expected {want}"]
    if not stack["leak_profile"] and got:
        return [f"{kind}: {_describe(stack)}: {got} in the goroutineleak profile, expected none"]
    return []


def _describe(stack: Mapping[str, Any]) -> str:
    return stack["function"] or (stack["frames"][0] if stack["frames"] else "?")


# --- recording the fixture (tests/goapps/zoo/record.sh) ------------------------------------------

FILE_NAMES = {
    "debug=0": "goroutine.debug0.pb.gz",
    "debug=1": "goroutine.debug1.txt",
    "debug=2": "goroutine.debug2.txt",
    LEAK_FORMAT: "goroutineleak.debug1.txt",
}


def write_series(series: Series, out: pathlib.Path) -> None:
    """Save a series as tests/fixtures/zoo/ holds it: N-PHASE.<file> per scrape,
    truth.json (the last phase's) and times.json (per phase: name, time, requests)."""
    out.mkdir(parents=True, exist_ok=True)
    for fmt, bodies in series.bodies.items():
        for i, body in enumerate(bodies):
            (out / f"{i}-{series.phases[i]}.{FILE_NAMES[fmt]}").write_bytes(body)
    (out / "truth.json").write_text(json.dumps(series.truth, indent=2) + "\n")
    phases = [
        {"name": name, "time": t, "requests": {leak["kind"]: leak["requests"] for leak in truth["leaks"]}}
        for name, t, truth in zip(series.phases, series.times, series.truths, strict=True)
    ]
    (out / "times.json").write_text(json.dumps({"phases": phases}, indent=2) + "\n")


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from pgserver import start_postgres

    parser = argparse.ArgumentParser(description="Record a leak zoo series against a throwaway PostgreSQL.")
    parser.add_argument("command", choices=["record"])
    parser.add_argument("--binary", type=pathlib.Path, help="a built zoo (default: build tests/goapps/zoo)")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with start_postgres() as pg, start_zoo(pg.dsn, binary=args.binary) as z:
        series = record(z.base)
    problems = [
        p
        for i in range(len(series.phases))
        for p in check_truth(
            series.truths[i],
            grprof.load(series.bodies["debug=2"][i]),
            dump1=grprof.load(series.bodies["debug=1"][i]),
            leak1=grprof.load(series.bodies[LEAK_FORMAT][i]) if LEAK_FORMAT in series.bodies else None,
        )
    ]
    if problems:
        print("zoo.py: the recorded dumps disagree with /truth:\n  " + "\n  ".join(problems))
        return 1
    write_series(series, args.out)
    print(
        f"zoo.py: recorded {len(series.phases)} phases into {args.out} in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
