#!/usr/bin/env python3
"""Time-to-detect benchmark: how long `grprof watch` takes to call a 1 goroutine/s leak a leak.

    .venv/bin/python benchmarks/detect.py [--kinds K ...] [--interval 15] [--max-minutes 4]
                                          [--warmup 60 ...] [--replay] [--set window=20] [--json OUT]

For each leak kind it starts a fresh leak zoo (tests/goapps/zoo, without a database) on
loopback with a large idle worker pool, and runs the zoo's healthy controls the whole time:
bursts of short-lived goroutines, idle keep-alive connections, jobs on the pool (the zoo's
periodic background job runs by itself). A real `grprof.watch.Watcher` polls it every
`--interval` seconds. After `--warmup` seconds of controls only, the leak starts right after a
poll (the worst phase): one request per second (`--leak-every`) to the kind's endpoint, each
leaving one goroutine (two for http-body-unclosed). Polling goes on for `--max-minutes` after
the leak started, past the detection, so the controls stay under watch. Findings are matched
to the zoo's /truth: the leak's own stacks, or a control's stack (a control called a leak is
a false leak). Times run from the first leak request to the start of the poll whose result
first showed the verdict.

Real time is the default (about warm-up + max-minutes per kind). `--replay` runs the same on
synthetic time: one poll per `--replay-step` real seconds, snapshots stamped `--interval`
apart through the Watcher's clock, and each step's traffic (15 leak requests for 15 s
polling, and the controls) compressed into the step. Replays are for comparing thresholds
(`--set`), not a measurement of real time. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from grprof.detect.detector import Detection, Options
from grprof.detect.model import Finding
from grprof.detect.signals import GrowthLevel, Settings, default_settings
from grprof.errors import GrprofError
from grprof.watch import Event, Watcher, sleep_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TESTS = REPO / "tests"
# Growth-only kinds (the goroutineleak profile cannot prove them), then one it proves.
DEFAULT_KINDS = ("timer-ticker-loop", "http-body-unclosed", "sync-mutex-unreleased", "chan-send-timeout")
GOAL_SECONDS = 120.0

Truth = dict[str, Any]


def tests_module(name: str) -> ModuleType:
    """tests/zoo.py and tests/gobuild.py are plain modules next to the tests, not a package."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module(name)


zoo = tests_module("zoo")
gobuild = tests_module("gobuild")


# --- traffic ---------------------------------------------------------------------------------


@dataclass
class Task:
    path: str
    every: float
    next: float
    """Due time, seconds since the run started (real or synthetic)."""
    leak: bool = False


@dataclass
class Schedule:
    """Periodic requests; thread-safe because the real-time driver reads it from its own thread."""

    tasks: list[Task]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, task: Task) -> None:
        with self.lock:
            self.tasks.append(task)

    def due(self, until: float) -> list[tuple[float, Task]]:
        """Every occurrence due before `until`, in time order; each task moves past it."""
        out: list[tuple[float, Task]] = []
        with self.lock:
            for t in self.tasks:
                while t.next < until:
                    out.append((t.next, t))
                    t.next += t.every
        return sorted(out, key=lambda x: x[0])


def control_tasks(args: argparse.Namespace) -> list[Task]:
    """The zoo's healthy traffic, from the first second on (offsets keep them apart)."""
    return [
        Task(f"/control/burst?n={args.burst_size}", args.burst_every, 0.5),
        Task("/control/keepalive", args.keepalive_every, 0.25),
        Task(f"/control/pool?n={args.pool_jobs}", args.pool_every, 0.75),
    ]


@dataclass
class Sender:
    """Sends requests on a thread pool and keeps count; statuses >= 400 are expected from some leaks."""

    base: str
    pool: concurrent.futures.ThreadPoolExecutor
    leak_requests: int = 0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, task: Task) -> concurrent.futures.Future[None]:
        if task.leak:
            with self.lock:
                self.leak_requests += 1
        return self.pool.submit(self._get, task.path)

    def _get(self, path: str) -> None:
        try:
            zoo.get(self.base, path, 10.0)
        except zoo.ZooError as e:
            with self.lock:
                self.failed.append(str(e))


def drive(schedule: Schedule, sender: Sender, t0: float, stop: threading.Event) -> None:
    """Real time: send every request when it is due, until stopped."""
    while not stop.is_set():
        for _, task in schedule.due(time.monotonic() - t0):
            sender.send(task)
        stop.wait(0.02)


def replay_step(schedule: Schedule, sender: Sender, start: float, end: float, step: float) -> None:
    """Synthetic time: the requests due in [start, end) spread over `step` real seconds, in order."""
    real0 = time.monotonic()
    futures = []
    for t, task in schedule.due(end):
        sleep_until(real0 + (t - start) / (end - start) * step)
        futures.append(sender.send(task))
    concurrent.futures.wait(futures)
    sleep_until(real0 + step)


# --- matching findings to the zoo's truth ------------------------------------------------------


def label(stack: Mapping[str, Any]) -> str:
    return str(stack["function"] or stack["frames"][0])


def classify(truth: Truth, leak: Mapping[str, Any], frames: Sequence[Any]) -> tuple[str, str] | None:
    """("leak", stack) for the driven leak's stacks, ("control", name: stack) for a control's.

    Controls are tried first: a leak stack can be a prefix of a control's (the leak's
    `readLoop` parked in select, the keep-alive control's parked in `persistConn.Read`), and
    debug=1 has no states to tell them apart. A control stack the driven leak shares (the
    same `writeLoop`) holds the leak's goroutines, so it counts as the leak.
    """
    for c in truth["controls"]:
        for s in c["goroutines"]:
            if leak["kind"] not in s["shares_stack_with"] and zoo.stack_matches(s, frames):
                return "control", f"{c['name']}: {label(s)}"
    for s in leak["goroutines"]:
        if zoo.stack_matches(s, frames):
            return "leak", label(s)
    return None


# --- one run -----------------------------------------------------------------------------------


@dataclass
class WrongLeak:
    """A finding with verdict leak that is not the driven leak."""

    id: str
    what: str
    """`control: stack` for a control, else the finding's site function."""
    first_at: float
    """Seconds since the run started."""
    first_after: float | None
    """Seconds since the leak started (negative: during the warm-up); set when the run ends."""
    counts: list[int]
    evidence: list[str]


@dataclass
class Result:
    kind: str
    category: str
    mode: str
    interval: float
    warmup: float
    leak_every: float
    proven_by_leak_profile: bool
    """The truth says the goroutineleak profile lists this leak's goroutines."""
    service_has_leak_profile: bool
    settings: dict[str, str]
    suspect_after: float | None = None
    leak_after: float | None = None
    polls_to_suspect: int | None = None
    polls_to_leak: int | None = None
    leak_evidence: list[str] = field(default_factory=list)
    leak_after_by_stack: dict[str, float] = field(default_factory=dict)
    false_leaks: list[WrongLeak] = field(default_factory=list)
    other_leaks: list[WrongLeak] = field(default_factory=list)
    leak_requests: int = 0
    goroutines_expected: int = 0
    polls: int = 0
    failed_polls: int = 0
    failed_requests: int = 0
    max_poll_seconds: float = 0.0
    timeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    """The state of one kind's run while it polls."""

    result: Result
    leak: Truth
    truth: Truth
    leak_start: float | None = None
    leak_poll: int = 0
    wrong: dict[str, WrongLeak] = field(default_factory=dict)

    def since(self, t: float) -> float | None:
        return None if self.leak_start is None else round(t - self.leak_start, 1)


def observe(run: Run, t: float, poll: int, events: list[Event], d: Detection) -> None:
    r, after = run.result, run.since(t)
    polls = poll - run.leak_poll
    for e in events:
        f = e.finding
        what = classify(run.truth, run.leak, f.frames) if e.kind != "gone" else None
        if what is None or what[0] != "leak" or after is None:
            continue
        which = what[1]
        if r.suspect_after is None:
            r.suspect_after, r.polls_to_suspect = after, polls
        if f.verdict == "leak":
            r.leak_after_by_stack.setdefault(which, after)
            if r.leak_after is None:
                r.leak_after, r.polls_to_leak = after, polls
                r.leak_evidence = [f"{ev.signal}: {ev.summary}" for ev in f.evidence]
    for f in d.findings:
        what = classify(run.truth, run.leak, f.frames)
        if f.verdict == "leak" and (what is None or what[0] == "control"):
            note_wrong(run, f, t, what[1] if what else None)
    r.timeline.append(timeline_row(run, t, d))


def note_wrong(run: Run, f: Finding, t: float, control: str | None) -> None:
    w = run.wrong.get(f.id)
    if w is None:
        w = run.wrong[f.id] = WrongLeak(f.id, control or where(f), round(t, 1), None, [], [])
        (run.result.false_leaks if control else run.result.other_leaks).append(w)
    w.counts = list(f.counts)
    w.evidence = [f"{ev.signal}: {ev.summary}" for ev in f.evidence]


def where(f: Finding) -> str:
    frame = f.site or (f.frames[0] if f.frames else None)
    return frame.function if frame else f.id


def timeline_row(run: Run, t: float, d: Detection) -> dict[str, Any]:
    """The leak's stacks at this poll: goroutines and the worst verdict (`-`: not a finding)."""
    verdicts = {f.id: f.verdict for f in d.findings}
    rank = {"-": 0, "suspect": 1, "leak": 2}
    stacks: dict[str, dict[str, Any]] = {}
    for track in d.series.tracks:
        what = classify(run.truth, run.leak, track.representative().frames)
        if what is None or what[0] != "leak":
            continue
        row = stacks.setdefault(what[1], {"count": 0, "verdict": "-"})
        row["count"] += track.counts[-1]
        verdict = verdicts.get(track.id, "-")
        if rank[verdict] > rank[row["verdict"]]:
            row["verdict"] = verdict
    return {"t": round(t, 1), "after_leak_start": run.since(t), "stacks": stacks}


@dataclass
class SyntheticClock:
    """The Watcher's clock in a replay: snapshots are stamped `seconds` after the start."""

    seconds: float = 0.0
    start: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.seconds)


@contextlib.contextmanager
def running_zoo(pool: int, go: str) -> Iterator[str]:
    binary = Path(zoo.build_zoo(go))
    with gobuild.run_goapp(binary, "-pool", str(pool)) as app:
        yield str(app.base_url)


def run_kind(kind: str, warmup: float, args: argparse.Namespace, settings: Settings) -> Result:
    with (
        running_zoo(args.pool, args.go) as base,
        concurrent.futures.ThreadPoolExecutor(16) as pool,
    ):
        truth = zoo.get_truth(base)
        leak = next((x for x in truth["leaks"] if x["kind"] == kind), None)
        if leak is None or not leak["enabled"]:
            raise SystemExit(f"detect.py: no enabled leak kind {kind!r} in the zoo")
        result = Result(
            kind=kind,
            category=leak["category"],
            mode="replay" if args.replay else "real-time",
            interval=args.interval,
            warmup=warmup,
            leak_every=args.leak_every,
            proven_by_leak_profile=any(s["leak_profile"] for s in leak["goroutines"]),
            service_has_leak_profile=bool(truth["leak_profile"]),
            settings=dict(args.set or []),
        )
        run = Run(result, leak, truth)
        sender = Sender(base, pool)
        poll_loop(run, base, warmup, args, settings, sender)
        final = next(x for x in zoo.get_truth(base)["leaks"] if x["kind"] == kind)
        result.goroutines_expected = sum(zoo.expected(final, s) for s in final["goroutines"])
        result.leak_requests = sender.leak_requests
        result.failed_requests = len(sender.failed)
        return result


def poll_loop(
    run: Run, base: str, warmup: float, args: argparse.Namespace, settings: Settings, sender: Sender
) -> None:
    """Poll every interval; the leak starts right after the warm-up's last poll (the worst phase:
    a whole interval passes before a poll sees it)."""
    interval: float = args.interval
    warm_polls = round(warmup / interval)
    schedule = Schedule(control_tasks(args))
    clock = SyntheticClock()
    w = Watcher(base, Options(settings=settings), timeout=args.timeout)
    if args.replay:
        w.clock = clock
    t0 = time.monotonic()
    stop = threading.Event()
    driver = threading.Thread(target=drive, args=(schedule, sender, t0, stop), daemon=True)
    if not args.replay:
        driver.start()
    try:
        poll = 0
        while run.leak_start is None or poll * interval - run.leak_start <= args.max_minutes * 60:
            if args.replay:
                if poll:
                    replay_step(schedule, sender, (poll - 1) * interval, poll * interval, args.replay_step)
                clock.seconds = now = poll * interval
            else:
                sleep_until(t0 + poll * interval)
                now = time.monotonic() - t0
            one_poll(run, w, now, poll)
            if poll == warm_polls:
                run.leak_start = clock.seconds if args.replay else time.monotonic() - t0
                run.leak_poll = poll
                schedule.add(Task(run.leak["endpoint"], args.leak_every, run.leak_start, leak=True))
            poll += 1
    finally:
        stop.set()
        if driver.is_alive():
            driver.join()
    for wrong in run.wrong.values():
        wrong.first_after = round(wrong.first_at - (run.leak_start or 0.0), 1)


def one_poll(run: Run, w: Watcher, now: float, poll: int) -> None:
    started = time.monotonic()
    try:
        events = w.poll()
    except GrprofError as e:
        run.result.failed_polls += 1
        print(f"  poll {poll} failed: {e}", file=sys.stderr)
        return
    r = run.result
    r.polls += 1
    r.max_poll_seconds = max(r.max_poll_seconds, round(time.monotonic() - started, 3))
    assert w.detection is not None
    observe(run, now, poll, events, w.detection)
    row = r.timeline[-1]
    stacks = ", ".join(f"{k}={v['count']} {v['verdict']}" for k, v in row["stacks"].items())
    when = "warm-up" if row["after_leak_start"] is None else f"leak +{row['after_leak_start']:g}s"
    print(f"  {r.kind} poll {poll} ({when}): {stacks or 'no leak goroutines'}", file=sys.stderr)


# --- settings overrides ------------------------------------------------------------------------


def override(st: Settings, assignments: Sequence[tuple[str, str]]) -> Settings:
    """`window=20`, `leak.trend=0.5`, `suspect.above_baseline=5`: detect.yaml's growth keys."""
    for key, value in assignments:
        level, _, name = key.rpartition(".")
        change: dict[str, Any]
        if level in ("leak", "suspect") and name in ("rate_per_minute", "above_baseline", "trend"):
            lv: GrowthLevel = getattr(st, level)
            change = {level: dataclasses.replace(lv, **{name: float(value)})}
        elif name in ("min_snapshots", "window", "age_minutes", "orphans") and not level:
            change = {name: int(value)}
        elif name in ("min_span_minutes", "recovered") and not level:
            change = {name: float(value)}
        else:
            raise SystemExit(f"detect.py: unknown setting {key!r}")
        st = dataclasses.replace(st, **change)
    return st


def assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


# --- output ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    # The detector is what is measured: say when it differs from the commit.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True
    ).stdout.splitlines()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "go": go,
        "python": platform.python_version(),
        "grprof_commit": rev.stdout.strip() or "unknown",
        "src_changes": f"{len(dirty)} uncommitted files under src/" if dirty else "none",
        "loadavg_1m": f"{os.getloadavg()[0]:.2f}",
    }


def seconds(v: float | None) -> str:
    return "never" if v is None else f"{v:g}"


def wrong_text(ws: list[WrongLeak], shown: int = 3) -> str:
    """`2 (keepalive: net/http.(*persistConn).writeLoop at 45s; ...)`; the JSON has them all."""
    if not ws:
        return "0"
    names = [f"{w.what} at {w.first_after or 0:g}s" for w in ws[:shown]]
    more = f"; +{len(ws) - shown} more" if len(ws) > shown else ""
    return f"{len(ws)} ({'; '.join(names)}{more})"


def table(results: list[Result]) -> str:
    head = [
        "mode",
        "leak kind",
        "proof",
        "leak rate",
        "interval",
        "warm-up",
        "suspect after (s)",
        "leak after (s)",
        "polls",
        "false leaks",
        "other leaks",
    ]
    rows = [head]
    for r in results:
        proof = "profile" if r.proven_by_leak_profile and r.service_has_leak_profile else "growth"
        rows.append(
            [
                r.mode,
                r.kind,
                proof,
                f"{60 / r.leak_every:g}/min",
                f"{r.interval:g}s",
                f"{r.warmup:g}s",
                seconds(r.suspect_after),
                seconds(r.leak_after),
                "-" if r.polls_to_leak is None else str(r.polls_to_leak),
                wrong_text(r.false_leaks),
                wrong_text(r.other_leaks),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def verdict_text(results: list[Result]) -> str:
    late = [r for r in results if r.leak_after is None or r.leak_after > GOAL_SECONDS]
    false = [w for r in results for w in r.false_leaks]
    if not late and not false:
        return f"goal met: every leak called a leak within {GOAL_SECONDS:g} s, no false leaks"
    parts = []
    if late:
        parts.append("late: " + ", ".join(f"{r.kind} ({seconds(r.leak_after)})" for r in late))
    if false:
        parts.append(f"{len(false)} false leaks")
    return "goal NOT met: " + "; ".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), help="zoo leak kinds to run")
    ap.add_argument("--interval", type=float, default=15.0, help="seconds between polls (default 15)")
    ap.add_argument("--max-minutes", type=float, default=4.0, help="polling after the leak starts")
    ap.add_argument(
        "--warmup",
        type=float,
        nargs="+",
        default=[60.0],
        help="seconds of polling with controls only before the leak starts; several values run each",
    )
    ap.add_argument("--replay", action="store_true", help="synthetic time, one poll per --replay-step")
    ap.add_argument("--replay-step", type=float, default=1.0, help="real seconds per replayed poll")
    ap.add_argument(
        "--set",
        type=assignment,
        action="append",
        metavar="KEY=VALUE",
        help="override a growth setting of detect.yaml, e.g. window=20 or leak.trend=0.5",
    )
    ap.add_argument(
        "--leak-every", type=float, default=1.0, help="seconds between leak requests (default 1: 1 leak/s)"
    )
    ap.add_argument("--pool", type=int, default=1000, help="idle workers in the zoo's pool")
    ap.add_argument("--pool-jobs", type=int, default=100)
    ap.add_argument("--pool-every", type=float, default=2.0)
    ap.add_argument("--burst-size", type=int, default=50)
    ap.add_argument("--burst-every", type=float, default=5.0)
    ap.add_argument("--keepalive-every", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="per poll")
    ap.add_argument("--go", default="go", help="Go toolchain to build the zoo with")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write every number as JSON")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = override(default_settings(), args.set or [])
    info = machine()
    print(
        f"{info['cpu']} x{info['nproc']}, {info['go']}, Python {info['python']}, "
        f"grprof {info['grprof_commit']} (uncommitted under src/: {info['src_changes']}), "
        f"load average {info['loadavg_1m']}",
        file=sys.stderr,
    )
    results = []
    for warmup in args.warmup:
        for kind in args.kinds:
            print(
                f"{kind}: warm-up {warmup:g}s, then a leak request every {args.leak_every:g}s "
                f"for {args.max_minutes:g} min",
                file=sys.stderr,
            )
            results.append(run_kind(kind, warmup, args, settings))
    if args.replay:
        print(f"REPLAY: synthetic time, {args.replay_step:g} s of real time per poll\n")
    print(table(results))
    print(verdict_text(results))
    if args.json:
        doc = {"machine": info, "argv": sys.argv, "results": [dataclasses.asdict(r) for r in results]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
