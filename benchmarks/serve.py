#!/usr/bin/env python3
"""`grprof serve` benchmark: what watching 1,000 Go services costs, and what it costs them.

    .venv/bin/python benchmarks/serve.py [--targets 1000] [--warmup 1] [--minutes 5]
                                         [--rounds 6] [--round-seconds 60] [--rate 300]
                                         [--quick] [--skip-fleet] [--skip-latency] [--json OUT]

Part 1, serving 1,000 targets: `goapps/fleet` listens on N loopback ports, each one service
answering /debug/pprof/goroutine (and goroutineleak on a few) with profiles recorded from
real Go programs (tests/fixtures). A real `grprof serve` process (this repo's .venv, SQLite
in a temporary directory) scrapes all of them at the default settings but for the 15 s
interval written in its config. After `--warmup` minutes, a `--minutes` window measures, from
/proc, the daemon's CPU time (share of one core) and memory (VmRSS, VmHWM); from its
database, when each scheduled scrape started against its slot and how long it took; then the
time to render /metrics and /api/v1/targets, and the database size.

Part 2, the target's latency: `goapps/loadtarget serve` (net/http/pprof, ~1 ms of CPU and some
garbage per request, 300 parked goroutines) under a constant-rate load from `loadtarget load`
(latency measured from each request's due time: no coordinated omission), in alternating
rounds without and with a `grprof serve` scraping it at the default settings. The target is
pinned to CPU 0, the load generator and grprof to CPU 1 (`--no-pin` to leave them free).

Nothing is asserted: it reports (and says whether each goal of docs/performance.md is met).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from grprof.collect.scraper import phase

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
GOAPPS = HERE / "goapps"
FIXTURES = REPO / "tests" / "fixtures"
INTERVAL = 15.0
JITTER = 0.1  # the scrape.jitter default: each scrape is due up to 10% of the interval late
CPU_GOAL = 0.3  # cores (issue 9; 0.5 before)
RSS_GOAL = 1e9  # bytes (issue 9)
P99_GOAL = 0.01  # relative p99 difference
CLK_TCK = os.sysconf("SC_CLK_TCK")


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# --- building and processes --------------------------------------------------------------


def go_build(name: str, *, leak_profile: bool = False) -> Path:
    """Build goapps/NAME into .work/ unless the binary is newer than its sources."""
    src = GOAPPS / name
    out = WORK / (f"{name}-leakprofile" if leak_profile else name)
    newest = max(p.stat().st_mtime for p in src.iterdir() if p.suffix in (".go", ".mod", ".sum"))
    if not out.exists() or out.stat().st_mtime < newest:
        WORK.mkdir(parents=True, exist_ok=True)
        print(f"building {out.name} ...", file=sys.stderr)
        env = dict(os.environ)
        if leak_profile:  # Go 1.26: /debug/pprof/goroutineleak exists only with the experiment
            env["GOEXPERIMENT"] = "goroutineleakprofile"
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=src, check=True, env=env)
    return out


def pinned(cpus: str | None, cmd: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else list(cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
    return body


def stop(proc: subprocess.Popen[Any], grace: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_lines_until(stream: IO[str], end: str, proc: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    for line in stream:
        if line.strip() == end:
            return lines
        lines.append(line.strip())
    raise RuntimeError(f"{proc.args!r} exited ({proc.wait()}) before printing {end}")


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def get(self, path: str, timeout: float = 60.0) -> bytes:
        return http_get(self.base + path, timeout)

    def json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


@contextlib.contextmanager
def running_serve(args: Sequence[str], workdir: Path, cpus: str | None = None) -> Iterator[Serve]:
    """A real `grprof serve` process, once /healthz answers; SIGTERM at the end."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    cmd = pinned(cpus, [python(), "-m", "grprof.cli", "serve", "--listen", f"127.0.0.1:{port}", *args])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    srv = Serve(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"grprof serve exited with {proc.returncode}:\n{srv.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if srv.json("/healthz").get("status") == "ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"grprof serve did not answer /healthz:\n{srv.log_tail()}")
            time.sleep(0.2)
        yield srv
    finally:
        stop(proc)


# --- /proc ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    cpu: float
    """Seconds of CPU (user + system) since the process started, all threads."""
    rss: int
    hwm: int
    """Bytes: VmRSS now, VmHWM (the peak so far)."""
    threads: int


def proc_stat(pid: int) -> ProcStat:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc(5)
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()

    def kib(key: str) -> int:
        return int(status.get(key, "0 kB").split()[0]) * 1024

    return ProcStat(cpu, kib("VmRSS"), kib("VmHWM"), int(status.get("Threads", "0")))


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def cores() -> int:
    return os.cpu_count() or 1


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass(frozen=True)
class Sample:
    t: float
    wall: float
    serve: ProcStat
    fleet: ProcStat
    busy: int
    total: int
    load1: float
    healthz: float | None
    """Seconds to answer GET /healthz (the daemon's event loop responsiveness), None: failed."""


def take_sample(srv: Serve, fleet_pid: int) -> Sample:
    t0 = time.monotonic()
    healthz: float | None = None
    with contextlib.suppress(OSError):
        srv.get("/healthz", timeout=10)
        healthz = time.monotonic() - t0
    busy, total = machine_jiffies()
    return Sample(
        time.monotonic(),
        time.time(),
        proc_stat(srv.proc.pid),
        proc_stat(fleet_pid),
        busy,
        total,
        load1(),
        healthz,
    )


def share(a: Sample, b: Sample, which: str) -> float:
    """CPU share of one core between two samples."""
    cpu_a, cpu_b = getattr(a, which).cpu, getattr(b, which).cpu
    return float(cpu_b - cpu_a) / (b.t - a.t)


# --- statistics ----------------------------------------------------------------------------


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not sorted_values:
        return math.nan
    i = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def quantiles(values: Sequence[float]) -> dict[str, float]:
    s = sorted(values)
    return {"p50": pct(s, 0.5), "p99": pct(s, 0.99), "max": s[-1] if s else math.nan, "n": len(s)}


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile over (le, cumulative count) pairs."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(cum - below, 1e-12)
        lower, below = le, cum
    return lower


# --- part 1: a fleet of 1,000 targets ------------------------------------------------------


@dataclass
class Fleet:
    proc: subprocess.Popen[str]
    services: list[dict[str, Any]]
    control: str

    def stats(self) -> Any:
        return json.loads(http_get(f"http://{self.control}/stats"))


@contextlib.contextmanager
def running_fleet(binary: Path, n: int, phase_every: float) -> Iterator[Fleet]:
    cmd = [str(binary), "-fixtures", str(FIXTURES), "-n", str(n), "-phase", f"{phase_every:g}s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = read_lines_until(proc.stdout, "READY", proc)
        services = [json.loads(x) for x in lines if x.startswith("{")]
        control = next(x.split()[1] for x in lines if x.startswith("CONTROL "))
        yield Fleet(proc, services, control)
    finally:
        stop(proc)


def write_config(path: Path, services: Sequence[dict[str, Any]], db: Path, fmt: str = "debug=1") -> None:
    """The YAML config: every service a static target with three labels; `scrape.format`
    `fmt`; defaults otherwise (a debug=2 capture every 4th scrape)."""
    q = json.dumps  # a JSON string is a YAML flow scalar
    lines = ["version: 1", f"db: {q(str(db))}", "scrape:", "  interval: 15s", f"  format: {fmt}", "targets:"]
    for i, s in enumerate(services):
        labels = f"{{team: {q(f'team-{i % 40:02d}')}, env: bench, go: {q(s['variant'])}}}"
        lines.append(f"  - {{name: {q(s['name'])}, url: {q('http://' + s['addr'])}, labels: {labels}}}")
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class ScrapeRow:
    target: str
    kind: str
    started: float
    duration: float
    status: str
    bytes: int


def scrape_rows(db: Path) -> list[ScrapeRow]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT t.name, s.kind, s.started, s.duration, s.status, s.bytes "
            "FROM scrapes s JOIN targets t ON t.id = s.target_id ORDER BY s.started"
        ).fetchall()
    finally:
        con.close()
    return [ScrapeRow(*r) for r in rows]


# The goroutine profile of a slot, in whichever form the capture policy picked for it.
SCHEDULED = ("debug=0", "debug=1", "debug=2")


def lag_report(rows: Sequence[ScrapeRow], targets: int, start: float, end: float) -> dict[str, Any]:
    """When each scheduled scrape (debug=0, 1 or 2; a goroutineleak request follows one)
    started, against its target's slot.

    The scraper puts target T's slots at `phase(T) + k * interval` (Unix seconds) and makes
    each one due a random 0..jitter*interval later (1.5 s at the defaults); its lag is the
    start minus that due time. The database has the start, not the drawn jitter, so the
    offset from the slot is lag + jitter: lag <= offset, and the scrape was certainly late
    (lag > 0) when the offset passes 1.5 s."""
    jitter_max = JITTER * INTERVAL
    offsets: list[float] = []
    gaps: list[float] = []
    last: dict[str, float] = {}
    for r in rows:
        if r.kind not in SCHEDULED:
            continue
        if start <= r.started <= end:
            off = (r.started - phase(r.target, INTERVAL)) % INTERVAL
            offsets.append(0.0 if off > INTERVAL - 0.05 else off)  # clock noise before the slot
            if r.target in last:
                gaps.append(r.started - last[r.target])
        last[r.target] = r.started
    expected = targets * (end - start) / INTERVAL
    # Once the daemon falls behind it skips missed slots: a start then belongs to an unknown
    # later slot, and offsets mean nothing (completeness < 1 says so); the gaps still do.
    late = [o - jitter_max for o in offsets if o > jitter_max + 0.001]
    return {
        "offset_s": quantiles(offsets),
        "offset_if_no_lag_s": {"p50": jitter_max / 2, "p99": jitter_max * 0.99, "max": jitter_max},
        "late_scrapes": len(late),
        "late_beyond_jitter_s": quantiles(late),
        "gap_s": quantiles(gaps),
        "gaps_over_1_5_intervals": sum(1 for g in gaps if g > 1.5 * INTERVAL),
        "scheduled_scrapes": len(offsets),
        "expected_scrapes": round(expected),
        "completeness": len(offsets) / expected if expected else math.nan,
    }


def scrape_report(rows: Sequence[ScrapeRow], start: float, end: float) -> dict[str, Any]:
    inside = [r for r in rows if start <= r.started <= end]
    by_kind: dict[str, list[float]] = {}
    for r in inside:
        by_kind.setdefault(r.kind, []).append(r.duration)
    statuses = Counter(f"{r.kind} {r.status}" for r in inside)
    ok = [r.bytes for r in inside if r.kind in SCHEDULED and r.status == "ok"]
    return {
        "duration_s": {k: quantiles(v) for k, v in sorted(by_kind.items())},
        "results": dict(sorted(statuses.items())),
        "errors": sum(n for k, n in statuses.items() if not k.endswith(" ok") and "not_found" not in k),
        "bytes_per_scrape_mean": statistics.fmean(ok) if ok else math.nan,
    }


def metrics_report(text: str, kind: str = "debug=1") -> dict[str, Any]:
    """Totals from /metrics: scrapes by kind/result, `kind`'s duration quantiles from the histogram."""
    results: Counter[str] = Counter()
    buckets: dict[float, float] = {}
    series = 0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            series += 1
            if s.name == "grprof_scrapes_total":
                results[f"{s.labels['kind']} {s.labels['result']}"] += int(s.value)
            elif s.name == "grprof_scrape_duration_seconds_bucket" and s.labels.get("kind") == kind:
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    pairs = list(buckets.items())
    return {
        "series": series,
        "scrapes_total": dict(sorted(results.items())),
        "histogram_scheduled_s": {
            "p50": histogram_quantile(pairs, 0.5),
            "p99": histogram_quantile(pairs, 0.99),
        },
    }


def time_endpoint(srv: Serve, path: str, n: int, background: float) -> dict[str, Any]:
    """Wall time of n GETs of `path`, and the daemon's CPU per GET net of its background rate."""
    walls: list[float] = []
    size = 0
    cpu0, t0 = proc_stat(srv.proc.pid).cpu, time.monotonic()
    for _ in range(n):
        t = time.monotonic()
        size = len(srv.get(path))
        walls.append(time.monotonic() - t)
    cpu = proc_stat(srv.proc.pid).cpu - cpu0 - background * (time.monotonic() - t0)
    # A saturated daemon (a whole core busy in the background) leaves no CPU to attribute.
    per = max(0.0, cpu / n) if background < 0.8 else None
    return {
        "wall_s": quantiles(walls),
        "cpu_per_request_s": per,
        "bytes": size,
        "requests": n,
    }


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def sample_until(deadline: float, every: float, srv: Serve, fleet: Fleet, out: list[Sample]) -> None:
    while True:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"grprof serve exited with {srv.proc.returncode}:\n{srv.log_tail()}")
        out.append(take_sample(srv, fleet.proc.pid))
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(every, left))


def timeline(samples: Sequence[Sample], every: float = 60.0) -> list[dict[str, float]]:
    """Per minute since the daemon answered: its CPU share, RSS, and the machine's load."""
    out = []
    first = samples[0]
    marks = [first]
    for s in samples[1:]:
        if s.t - marks[-1].t >= every - 0.5:
            marks.append(s)
    for a, b in itertools.pairwise(marks):
        out.append(
            {
                "minute": round((b.t - first.t) / 60, 1),
                "serve_cpu": round(share(a, b, "serve"), 3),
                "fleet_cpu": round(share(a, b, "fleet"), 3),
                "machine_busy_cores": round((b.busy - a.busy) / (b.total - a.total) * cores(), 2),
                "serve_rss_mb": round(b.serve.rss / 1e6, 1),
                "load1": b.load1,
            }
        )
    return out


def window_report(samples: Sequence[Sample], start: int) -> dict[str, Any]:
    """CPU, memory and machine use over samples[start:] (the measurement window)."""
    w = samples[start:]
    a, b = w[0], w[-1]
    healthz = [s.healthz for s in w if s.healthz is not None]
    return {
        "seconds": b.t - a.t,
        "serve_cpu_share": share(a, b, "serve"),
        "fleet_cpu_share": share(a, b, "fleet"),
        "machine_busy_cores": (b.busy - a.busy) / (b.total - a.total) * cores(),
        "serve_rss_peak_bytes": max(s.serve.rss for s in w),
        "serve_rss_final_bytes": b.serve.rss,
        "serve_rss_growth_mb_per_min": (b.serve.rss - a.serve.rss) / 1e6 / ((b.t - a.t) / 60),
        "serve_vmhwm_bytes": b.serve.hwm,
        "serve_threads": b.serve.threads,
        "fleet_rss_final_bytes": b.fleet.rss,
        "load1": {"min": min(s.load1 for s in w), "max": max(s.load1 for s in w)},
        "healthz_s": quantiles(healthz),
        "healthz_failures": sum(1 for s in w if s.healthz is None),
    }


def targets_report(targets: Sequence[dict[str, Any]], growth: set[str]) -> dict[str, Any]:
    with_findings = [t["name"] for t in targets if t.get("open_findings")]
    return {
        "targets": len(targets),
        "up": sum(1 for t in targets if t.get("up")),
        "with_open_findings": len(with_findings),
        "growing_with_findings": sum(1 for n in with_findings if n in growth),
        "growing": len(growth),
        "leak_profile_served": sum(1 for t in targets if t.get("leak_profile")),
    }


def log_report(log: Path) -> dict[str, Any]:
    lines = log.read_text(errors="replace").splitlines()
    bad = [x for x in lines if " WARNING " in x or " ERROR " in x]
    return {"lines": len(lines), "warnings_errors": len(bad), "first_warnings_errors": bad[:5]}


def run_fleet(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    binary = go_build("fleet")
    db = workdir / "grprof.db"
    config = workdir / "grprof.yaml"
    with running_fleet(binary, args.targets, args.phase) as fleet:
        write_config(config, fleet.services, db, args.format)
        growth = {s["name"] for s in fleet.services if s["growth"]}
        print(f"fleet: {len(fleet.services)} services; starting grprof serve ...", file=sys.stderr)
        with running_serve(["--config", str(config)], workdir) as srv:
            samples: list[Sample] = []
            t0 = time.monotonic()
            sample_until(t0 + args.warmup * 60, args.sample, srv, fleet, samples)
            begin = len(samples) - 1
            print(f"warm-up done; measuring for {args.minutes:g} min ...", file=sys.stderr)
            sample_until(t0 + (args.warmup + args.minutes) * 60, args.sample, srv, fleet, samples)
            window = window_report(samples, begin)
            bg = window["serve_cpu_share"]
            metrics_text = srv.get("/metrics").decode()
            extras = {
                "metrics_render": time_endpoint(srv, "/metrics", args.renders, bg),
                "targets_api": time_endpoint(srv, "/api/v1/targets", args.renders, bg),
                "metrics": metrics_report(metrics_text, args.format),
                "targets_state": targets_report(srv.json("/api/v1/targets")["targets"], growth),
                "fleet_requests": fleet.stats(),
                "db_bytes_running": db_bytes(db),
            }
        extras["db_bytes_stopped"] = db_bytes(db)
        extras["serve_log"] = log_report(srv.log)
    rows = scrape_rows(db)
    start, end = samples[begin].wall, samples[-1].wall
    return {
        "targets": args.targets,
        "warmup_minutes": args.warmup,
        "format": args.format,
        "window": window,
        "lag": lag_report(rows, args.targets, start, end),
        "scrapes": scrape_report(rows, start, end),
        **extras,
        "timeline": timeline(samples),
        "cpu_goal_met": window["serve_cpu_share"] < CPU_GOAL,
        "rss_goal_met": window["serve_rss_peak_bytes"] < RSS_GOAL,
    }


# --- part 2: the target's latency with and without grprof -----------------------------------


@contextlib.contextmanager
def running_target(binary: Path, cpus: str | None, parked: int) -> Iterator[tuple[str, int]]:
    cmd = pinned(cpus, [str(binary), "serve", "-parked", str(parked)])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = read_lines_until(proc.stdout, "READY", proc)
        url = next(x.split()[1] for x in lines if x.startswith("LISTEN "))
        yield url, proc.pid
    finally:
        stop(proc)


def run_load(binary: Path, url: str, args: argparse.Namespace, seconds: float, raw: Path | None) -> Any:
    rate, duration = f"{args.rate:g}", f"{seconds:g}s"
    cmd = [str(binary), "load", "-url", url + "/work", "-rate", rate, "-duration", duration]
    if raw is not None:
        cmd += ["-raw", str(raw)]
    out = subprocess.run(pinned(args.cpu_load, cmd), check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def wait_first_scrape(srv: Serve, timeout: float = 60.0) -> None:
    """Until the target's first scheduled scrape (and the goroutineleak one after it) is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = srv.json("/api/v1/targets")["targets"]
        if targets and targets[0].get("last_scrape"):
            time.sleep(2.0)  # the goroutineleak request follows the first debug=1 scrape
            return
        time.sleep(0.5)
    raise RuntimeError(f"no scrape within {timeout:g}s:\n{srv.log_tail()}")


@dataclass
class Round:
    index: int
    condition: str
    summary: dict[str, Any]
    scrapes: dict[str, int] = field(default_factory=dict)
    """grprof's requests to the target during the round, by kind and result."""
    findings: list[str] = field(default_factory=list)
    """What grprof's detector said about the target by the end of the round."""
    load1: float = 0.0


def findings_in(db: Path) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT state, verdict, json_extract(doc, '$.title') FROM findings").fetchall()
    finally:
        con.close()
    return [f"{state} {verdict}: {title}" for state, verdict, title in rows]


def near_scrapes(count: int, begin: float, rate: float, rows: Sequence[ScrapeRow]) -> list[bool]:
    """For each request (by due time): was it due while grprof's request to the target was in
    flight, from 10 ms before (a request due just before is still being served during it) to
    50 ms after (what a profile leaves behind: garbage, a forced GC for goroutineleak)?"""
    spans = [(r.started - 0.01, r.started + r.duration + 0.05) for r in rows]
    return [any(a <= begin + i / rate <= b for a, b in spans) for i in range(count)]


def one_round(
    i: int, condition: str, binary: Path, url: str, args: argparse.Namespace, workdir: Path
) -> tuple[Round, list[int], list[bool]]:
    """One round of load; the latencies in due order, and which were due near a scrape."""
    raw = workdir / f"round-{i}.txt"
    if condition == "without":
        time.sleep(args.settle)
        res = run_load(binary, url, args, args.round_seconds, raw)
        lat = [int(x) for x in raw.read_text().split()]
        return Round(i, condition, res, load1=load1()), lat, [False] * len(lat)
    db = workdir / f"latency-{i}.db"
    with running_serve(["--target", url, "--db", str(db)], workdir, args.cpu_grprof) as srv:
        wait_first_scrape(srv)
        time.sleep(args.settle)
        t0 = time.time()
        res = run_load(binary, url, args, args.round_seconds, raw)
        t1 = time.time()
    rows = [r for r in scrape_rows(db) if t0 <= r.started <= t1]
    lat = [int(x) for x in raw.read_text().split()]
    near = near_scrapes(len(lat), res["begin_unix_ns"] / 1e9, args.rate, rows)
    scrapes = dict(Counter(f"{r.kind} {r.status}" for r in rows))
    return Round(i, condition, res, scrapes, findings_in(db), load1()), lat, near


def pooled_stats(values: Sequence[int]) -> dict[str, float]:
    s = sorted(values)
    keys = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
    return {**{k: pct(s, q) for k, q in keys.items()}, "max": s[-1] if s else math.nan, "requests": len(s)}


def rel_mad(values: Sequence[float]) -> float:
    """Median absolute deviation over the median: a spread one wild round does not blow up."""
    med = statistics.median(values)
    return statistics.median(abs(v - med) for v in values) / med


def condition_stats(rounds: Sequence[Round], pooled: Sequence[int]) -> dict[str, Any]:
    p99s = [float(r.summary["p99_us"]) for r in rounds]
    return {
        "rounds": len(rounds),
        "p99_us_per_round": p99s,
        "p99_us_median": statistics.median(p99s),
        "p99_rel_mad": rel_mad(p99s),
        "p50_us_per_round": [float(r.summary["p50_us"]) for r in rounds],
        "pooled_us": pooled_stats(pooled),
        "errors": sum(int(r.summary["errors"]) for r in rounds),
        "send_lag_p99_us_max": max(int(r.summary["send_lag_p99_us"]) for r in rounds),
    }


def compare(without: dict[str, Any], with_: dict[str, Any]) -> dict[str, Any]:
    """The p99 difference (median of rounds, and pooled) against the round-to-round noise."""
    diff = with_["p99_us_median"] / without["p99_us_median"] - 1
    pooled = with_["pooled_us"]["p99"] / without["pooled_us"]["p99"] - 1
    few = min(without["rounds"], with_["rounds"]) < 2  # one round says nothing about noise
    noise = math.nan if few else max(without["p99_rel_mad"], with_["p99_rel_mad"])
    # Inconclusive: the machine's own variation between rounds is larger than the effect sought.
    verdict = "inconclusive" if few or noise >= P99_GOAL else "met" if abs(diff) < P99_GOAL else "not met"
    return {
        "p99_median_relative_diff": diff,
        "p99_pooled_relative_diff": pooled,
        "noise_rel_mad": noise,
        "goal": verdict,
    }


def run_latency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    binary = go_build("loadtarget", leak_profile=args.leak_profile)
    rounds: list[Round] = []
    pooled: dict[str, list[int]] = {"without": [], "with": [], "near": [], "far": []}
    with running_target(binary, args.cpu_target, args.parked) as (url, _pid):
        print(f"target {url}: warm-up load ...", file=sys.stderr)
        run_load(binary, url, args, 10, None)
        for i in range(args.rounds):
            condition = "without" if i % 2 == 0 else "with"
            print(f"round {i + 1}/{args.rounds} ({condition} grprof) ...", file=sys.stderr)
            rnd, lat, near = one_round(i, condition, binary, url, args, workdir)
            rounds.append(rnd)
            pooled[condition] += lat
            if condition == "with":
                pooled["near"] += [v for v, n in zip(lat, near, strict=True) if n]
                pooled["far"] += [v for v, n in zip(lat, near, strict=True) if not n]
    stats = {
        c: condition_stats([r for r in rounds if r.condition == c], pooled[c]) for c in ("without", "with")
    }
    return {
        "rate": args.rate,
        "round_seconds": args.round_seconds,
        "parked": args.parked,
        "leak_profile": args.leak_profile,
        "pinning": {"target": args.cpu_target, "load": args.cpu_load, "grprof": args.cpu_grprof},
        "rounds": [asdict(r) for r in rounds],
        "conditions": stats,
        "near_scrape_us": pooled_stats(pooled["near"]),
        "far_from_scrape_us": pooled_stats(pooled["far"]),
        "comparison": compare(stats["without"], stats["with"]),
    }


# --- report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(int(mem) / 2**20, 1),
        "python": platform.python_version(),
        "go": go,
        "kernel": platform.release(),
        "load1_at_start": load1(),
    }


def ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v * 1000:.1f} ms"


def triple(q: dict[str, float], fmt: Any = ms) -> str:
    return f"{fmt(q['p50'])} / {fmt(q['p99'])} / {fmt(q['max'])}"


def seconds2(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.2f} s"


def fleet_table(r: dict[str, Any]) -> str:
    w, lag, sc, st = r["window"], r["lag"], r["scrapes"], r["targets_state"]
    fmt = r.get("format", "debug=1")
    d1 = sc["duration_s"].get(fmt, quantiles([]))
    d2 = sc["duration_s"].get("debug=2", quantiles([]))
    leak = sc["duration_s"].get("goroutineleak", quantiles([]))
    mr, ta, hist = r["metrics_render"], r["targets_api"], r["metrics"]["histogram_scheduled_s"]
    rss = [w[k] / 1e6 for k in ("serve_rss_peak_bytes", "serve_rss_final_bytes", "serve_vmhwm_bytes")]
    results = ", ".join(f"{k}: {v}" for k, v in sc["results"].items())
    late = lag["late_beyond_jitter_s"]
    cpu_each = "n/a (saturated)" if mr["cpu_per_request_s"] is None else ms(mr["cpu_per_request_s"])
    # Offsets from the slot mean something only while no slot is skipped (see lag_report).
    offsets = triple(lag["offset_s"], seconds2) + " (jitter alone: 0.75/1.49/1.50)"
    busy = f"{w['machine_busy_cores']:.2f} cores; load1 {w['load1']['min']}-{w['load1']['max']}"
    late_text = f"{lag['late_scrapes']} scrapes, max {seconds2(late['max'])}"
    if lag["completeness"] < 0.99:
        offsets = late_text = "n/a: slots were skipped, see the gaps"
    gaps = "{} / {} / {}; {} over 1.5 intervals".format(
        *(seconds2(lag["gap_s"][k]) for k in ("p50", "p99", "max")), lag["gaps_over_1_5_intervals"]
    )
    rows = [
        ("targets", f"{r['targets']} ({st['up']} up at the end)"),
        ("window", f"{w['seconds'] / 60:.1f} min after {r['warmup_minutes']:g} min of warm-up"),
        ("CPU, grprof serve", f"{w['serve_cpu_share']:.3f} of one core (goal < {CPU_GOAL})"),
        ("CPU, the fleet (all targets)", f"{w['fleet_cpu_share']:.3f} of one core"),
        ("machine busy (all processes)", busy),
        ("RSS peak / final / VmHWM",
         "{:.0f} / {:.0f} / {:.0f} MB (goal < {:.0f})".format(*rss, RSS_GOAL / 1e6)),
        ("RSS growth in the window", f"{w['serve_rss_growth_mb_per_min']:+.1f} MB/min"),
        ("scheduled scrapes", f"{lag['scheduled_scrapes']} of {lag['expected_scrapes']} expected "
         f"({lag['completeness']:.1%})"),
        ("start vs slot p50/p99/max", offsets),
        ("late beyond the jitter", late_text),
        ("gap between scrapes p50/p99/max", gaps),
        (f"{fmt} duration p50/p99/max", f"{triple(d1)} (n={d1['n']})"),
        ("debug=2 duration p50/p99/max", f"{triple(d2)} (n={d2['n']})"),
        ("goroutineleak p50/p99/max", f"{triple(leak)} (n={leak['n']})"),
        ("histogram estimate p50/p99", f"{ms(hist['p50'])} / {ms(hist['p99'])} (whole run, {fmt})"),
        ("scrape errors in window", f"{sc['errors']} ({results})"),
        ("/metrics render", f"{ms(mr['wall_s']['p50'])} median, {ms(mr['wall_s']['max'])} max; "
         f"{mr['bytes'] / 1e6:.2f} MB, {r['metrics']['series']} samples; CPU each: {cpu_each}"),
        ("/api/v1/targets", f"{ms(ta['wall_s']['p50'])} median; {ta['bytes'] / 1e6:.2f} MB"),
        ("/healthz during the window", f"{triple(w['healthz_s'])} p50/p99/max"),
        ("database size", f"{r['db_bytes_running'] / 1e6:.1f} MB running (db+wal), "
         f"{r['db_bytes_stopped'] / 1e6:.1f} MB after stop"),
        ("findings", f"{st['with_open_findings']} targets with open findings "
         f"({st['growing_with_findings']} of {st['growing']} growing)"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def timeline_table(rows: Sequence[dict[str, float]]) -> str:
    out = ["\nminute  grprof CPU  fleet CPU  machine busy  grprof RSS  load1"]
    for r in rows:
        out.append(
            f"{r['minute']:>6.1f}  {r['serve_cpu']:>10.3f}  {r['fleet_cpu']:>9.3f}  "
            f"{r['machine_busy_cores']:>12.2f}  {r['serve_rss_mb']:>7.0f} MB  {r['load1']:>5.2f}"
        )
    return "\n".join(out)


def latency_table(r: dict[str, Any]) -> str:
    c, cmp_ = r["conditions"], r["comparison"]
    head = f"{'requests':<24} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>9} {'n':>7}"
    lines = [head + "  (us)"]
    pooled = [
        ("without grprof", c["without"]["pooled_us"]),
        ("with grprof", c["with"]["pooled_us"]),
        ("  with: near a scrape", r["near_scrape_us"]),
        ("  with: the others", r["far_from_scrape_us"]),
    ]
    for name, p in pooled:
        cols = " ".join(f"{p[k]:>8.0f}" for k in ("p50", "p90", "p99", "p999"))
        lines.append(f"{name:<24} {cols} {p['max']:>9.0f} {p['requests']:>7}")
    for name in ("without", "with"):
        per = ", ".join(f"{v:.0f}" for v in c[name]["p99_us_per_round"])
        lines.append(f"p99 per round, {name}: {per} (median {c[name]['p99_us_median']:.0f})")
    lines.append(
        f"p99 difference: median of rounds {cmp_['p99_median_relative_diff']:+.1%}, pooled "
        f"{cmp_['p99_pooled_relative_diff']:+.1%}; round-to-round noise (MAD/median of p99) "
        f"{cmp_['noise_rel_mad']:.1%}; goal (< {P99_GOAL:.0%}): {cmp_['goal']}"
    )
    for rnd in r["rounds"]:
        if rnd["condition"] == "with":
            lines.append(
                f"  round {rnd['index']}: grprof's requests {rnd['scrapes']}; findings {rnd['findings']}"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--warmup", type=float, default=1.0, help="minutes before the window")
    p.add_argument("--minutes", type=float, default=5.0, help="the measurement window")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between /proc samples")
    p.add_argument("--phase", type=float, default=60.0, help="seconds per zoo phase on growing ports")
    p.add_argument("--renders", type=int, default=5, help="timed GETs of /metrics and /api/v1/targets")
    p.add_argument("--rounds", type=int, default=6, help="latency rounds, alternating without/with")
    p.add_argument("--round-seconds", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=3.0, help="seconds of quiet before each round")
    p.add_argument("--rate", type=float, default=300.0, help="requests per second to the target")
    p.add_argument("--parked", type=int, default=300, help="parked goroutines in the target")
    p.add_argument("--no-leak-profile", dest="leak_profile", action="store_false",
                   help="build the target without /debug/pprof/goroutineleak")  # fmt: skip
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--quick", action="store_true", help="200 targets, 1+1 min, 2 rounds of 20 s")
    p.add_argument("--skip-fleet", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--format", default="debug=1", choices=SCHEDULED, help="scrape.format of the fleet part")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    p.add_argument("--json", type=Path, help="also write every number here")
    args = p.parse_args(argv)
    if args.quick:
        args.targets, args.warmup, args.minutes = 200, 1.0, 1.0
        args.rounds, args.round_seconds = 2, 20.0
    pins = (None, None, None) if args.no_pin or cores() < 2 else ("0", "1", "1")
    args.cpu_target, args.cpu_load, args.cpu_grprof = pins
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:]}
    workdir = Path(tempfile.mkdtemp(prefix="grprof-bench-serve-"))
    try:
        if not args.skip_fleet:
            result["fleet"] = run_fleet(args, workdir)
            print(f"\n## Serving {args.targets} targets\n\n{fleet_table(result['fleet'])}")
            print(timeline_table(result["fleet"]["timeline"]))
        if not args.skip_latency:
            result["latency"] = run_latency(args, workdir)
            print(f"\n## Target latency at {args.rate:g} req/s\n\n{latency_table(result['latency'])}")
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
