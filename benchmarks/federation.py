#!/usr/bin/env python3
"""Federation benchmark: a global `grprof serve` pulling 50 members of 1,000 targets each.

    .venv/bin/python benchmarks/federation.py [--members 50] [--targets 1000]
                                              [--findings-per-target 0.5] [--interval 15]
                                              [--timeout 10] [--warmup 45] [--seconds 120]
                                              [--slow 0] [--json OUT]

The members are one small process (this file, `--serve-members`): an aiohttp server on
`--members` loopback ports, each answering `/healthz`, `/api/v1/targets` and
`/api/v1/findings?state=new|ongoing` with bytes built once, in the exact shape of the API:
every document is validated against `grprof.schema` (`HealthResponse`, `TargetsResponse`,
`FindingsResponse`) before it is served. The findings are real: the detector's findings on the
recorded leak zoo (tests/fixtures/zoo, six debug=2 dumps 30 s apart), given out round-robin,
`--findings-per-target` per target on average, each with its target and a lifecycle. The
targets are as `grprof serve` lists them (labels, state, blocked classes). `--slow K` makes
the last K members answer nothing until after the global's timeout (a slow region).

A real `grprof serve` (this repo's .venv, SQLite in a temporary directory, no targets of its
own) federates them with `interval`/`timeout` as given. After `--warmup` seconds, a window of
`--seconds` measures, from /proc, its CPU time (share of one core) and memory (VmRSS at the
end, VmHWM the peak), and polls `/api/v1/federation` every second: the worst age any
member's data reached, how many polls saw a member stale, and pull times. Then it times
`GET /api/v1/findings`, `GET /api/v1/targets` and `GET /metrics` on the combined fleet.

Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "tests" / "fixtures" / "zoo"
HZ = os.sysconf("SC_CLK_TCK")


# -- the members (a child process) ----------------------------------------------------------


def zoo_findings() -> list[dict[str, Any]]:
    """The detector's findings on the recorded zoo, as `grprof analyze --json` writes them."""
    import grprof

    snaps = [grprof.load(p) for p in sorted(glob.glob(str(ZOO / "*goroutine.debug2.txt")))]
    d = grprof.detect(snaps, grprof.Options(interval=30))
    return [f.to_json() for f in d.findings if f.verdict in ("leak", "suspect")]


def member_documents(
    index: int, targets: int, per_target: float, templates: list[dict[str, Any]]
) -> dict[str, bytes]:
    """One member's answers, validated against the API's schema, serialized once."""
    from grprof import schema

    now = "2026-12-05T12:00:00Z"
    names = [f"svc-{i % 40:02d}/10.{index}.{i // 250}.{i % 250}:6060" for i in range(targets)]
    tlist: list[schema.Target] = []
    findings: dict[str, list[dict[str, Any]]] = {"new": [], "ongoing": []}
    budget = 0.0
    k = index
    for i, name in enumerate(names):
        budget += per_target
        n = int(budget)
        budget -= n
        for _ in range(n):
            f = templates[k % len(templates)]
            k += 1
            lifecycle = "new" if k % 5 == 0 else "ongoing"
            findings[lifecycle].append(
                {
                    **f,
                    "target": name,
                    "lifecycle": lifecycle,
                    "first_seen": now,
                    "last_seen": now,
                    "resolved_at": None,
                }
            )
        tlist.append(
            {
                "name": name,
                "url": f"http://{name.split('/')[1]}",
                "labels": {"service": f"svc-{i % 40:02d}", "env": "prod"},
                "shard": None,
                "up": i % 97 != 0,
                "last_scrape": now,
                "last_success": now,
                "last_error": "" if i % 97 else "svc: GET ...: timed out after 10s",
                "goroutines": 200 + i % 500,
                "open_findings": n,
                "removed": False,
                "local": True,
                "growth_per_minute": round((i % 13) / 7, 3),
                "leak_profile": i % 3 == 0,
                "blocked": {"channel": 90, "select": 60, "io": 40, "sync": 9, "running": 1},
                "cluster": None,
            }
        )
    health: schema.HealthResponse = {
        "status": "ok",
        "version": "0.1.0",
        "started": now,
        "uptime_seconds": 3600.0,
        "targets": targets,
        "shard": None,
    }
    out = {
        "/healthz": schema.dump_json(schema.HealthResponse, health, indent=None),
        "/api/v1/targets": schema.dump_json(schema.TargetsResponse, {"targets": tlist}, indent=None),
    }
    for state, items in findings.items():
        doc = {"schema": schema.FINDINGS_SCHEMA, "findings": items}
        out[f"/api/v1/findings?state={state}"] = schema.dump_json(schema.FindingsResponse, doc, indent=None)
    return {k: v.encode() for k, v in out.items()}


def serve_members(args: argparse.Namespace) -> None:
    from aiohttp import web

    templates = zoo_findings()
    docs = [
        member_documents(i, args.targets, args.findings_per_target, templates) for i in range(args.members)
    ]
    slow = set(range(args.members - args.slow, args.members))

    def app_for(i: int) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            if i in slow:
                await asyncio.sleep(3600)
            body = docs[i].get(request.path_qs)
            if body is None:
                return web.Response(status=404, text="not found")
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        return app

    async def main() -> None:
        ports = []
        for i in range(args.members):
            runner = web.AppRunner(app_for(i), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            ports.append(runner.addresses[0][1])
        sizes = {k: sum(len(d[k]) for d in docs) for k in docs[0]}
        print("READY", json.dumps({"ports": ports, "bytes": sizes}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the global instance and the measurement ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def memory(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def get(url: str, timeout: float = 120.0) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return body, time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grprof-fed-")))
        t0 = time.perf_counter()
        members = subprocess.Popen(
            [sys.executable, __file__, "--serve-members", *sys.argv[1:]],
            stdout=subprocess.PIPE,
            text=True,
        )
        stack.callback(lambda: (members.kill(), members.wait()))
        line = members.stdout.readline() if members.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"the members did not start: {line!r}")
        info = json.loads(line.split(" ", 1)[1])
        print(
            f"members: {args.members} on loopback, ready in {time.perf_counter() - t0:.1f}s; "
            f"bytes per pull of all members: {info['bytes']}",
            flush=True,
        )
        cfg = tmp / "global.yaml"
        lines = [
            "federate:",
            f"  interval: {args.interval:g}s",
            f"  timeout: {args.timeout:g}s",
            "  members:",
        ]
        lines += [
            f"    - {{name: m{i:02d}, url: 'http://127.0.0.1:{p}'}}" for i, p in enumerate(info["ports"])
        ]
        cfg.write_text("\n".join(lines) + "\n")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = stack.enter_context(open(tmp / "global.log", "w+b"))
        glob_ = subprocess.Popen(
            [sys.executable, "-m", "grprof.cli", "serve", "--config", str(cfg), "--listen",
             f"127.0.0.1:{port}", "--db", str(tmp / "g.db")],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def stop() -> None:
            glob_.send_signal(signal.SIGTERM)
            try:
                glob_.wait(30)
            except subprocess.TimeoutExpired:
                glob_.kill()

        stack.callback(stop)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                get(base + "/healthz", 2)
                break
            if time.monotonic() > deadline or glob_.poll() is not None:
                log.seek(0)
                raise SystemExit(f"grprof serve did not start:\n{log.read().decode()}")
            time.sleep(0.2)
        print(f"warm-up {args.warmup:g}s ...", flush=True)
        time.sleep(args.warmup)
        cpu0, w0 = cpu_seconds(glob_.pid), time.monotonic()
        worst_age, stale_polls, polls, pulls = 0.0, 0, 0, []
        fresh_ok = 0
        end = w0 + args.seconds
        slow = {f"m{i:02d}" for i in range(args.members - args.slow, args.members)}
        while time.monotonic() < end:
            body, _ = get(base + "/api/v1/federation")
            for m in json.loads(body)["members"]:
                if m["cluster"] in slow:
                    continue
                polls += 1
                age = m["age_seconds"]
                worst_age = max(worst_age, float("inf") if age is None else age)
                stale_polls += m["state"] != "fresh"
                fresh_ok += m["state"] == "fresh"
                if m["pull_seconds"] is not None:
                    pulls.append(m["pull_seconds"])
            time.sleep(1.0)
        cpu = (cpu_seconds(glob_.pid) - cpu0) / (time.monotonic() - w0)
        mem = memory(glob_.pid)
        fed = json.loads(get(base + "/api/v1/federation")[0])
        timings = {}
        for path in ("/api/v1/findings", "/api/v1/targets", "/metrics"):
            runs = [get(base + path) for _ in range(3)]
            timings[path] = {
                "seconds_median": round(statistics.median(t for _, t in runs), 3),
                "bytes": len(runs[0][0]),
            }
        n_findings = len(json.loads(get(base + "/api/v1/findings")[0])["findings"])
        n_targets = len(json.loads(get(base + "/api/v1/targets")[0])["targets"])
        states: dict[str, int] = {}
        for m in fed["members"]:
            states[m["state"]] = states.get(m["state"], 0) + 1
        return {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "kernel": platform.release(),
            },
            "members": args.members,
            "targets_per_member": args.targets,
            "findings_per_target": args.findings_per_target,
            "slow_members": args.slow,
            "interval": args.interval,
            "timeout": args.timeout,
            "window_seconds": args.seconds,
            "bytes_per_round": info["bytes"],
            "cpu_cores": round(cpu, 3),
            "rss_bytes": mem.get("VmRSS"),
            "peak_rss_bytes": mem.get("VmHWM"),
            "worst_age_seconds": round(worst_age, 2),
            "stale_polls": stale_polls,
            "polls": polls,
            "pull_seconds_median": round(statistics.median(pulls), 3) if pulls else None,
            "pull_seconds_max": round(max(pulls), 3) if pulls else None,
            "member_states_at_end": states,
            "global_targets": n_targets,
            "global_findings": n_findings,
            "requests": timings,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=50)
    p.add_argument("--targets", type=int, default=1000, help="per member")
    p.add_argument("--findings-per-target", type=float, default=0.5)
    p.add_argument("--interval", type=float, default=15.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=45.0)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--slow", type=int, default=0, help="the last K members never answer in time")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--serve-members", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_members:
        serve_members(args)
        return
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
