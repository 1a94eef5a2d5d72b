"""Issue 14's acceptance test: a healthy service under a load ramp is not a leak.

tests/goapps/ramp is a Go service with a TCP broker (a readLoop and a writeLoop goroutine per
client), a gRPC server-streaming service and an HTTP/1.1 keep-alive API; the same binary in
`-mode drive` ramps its clients 5 → 200 → 5 over about three minutes, across the three kinds,
half of them reconnecting every few seconds. Nothing leaks: the goroutine count follows the
clients up and back down.

A real `grprof serve` at its default settings (15 s scrapes, the default capture policy; only
the target and a temporary store given) watches it. Every 5 s, through the ramp and for a minute
after it, the test reads the findings from the API; no finding may ever have the verdict `leak`.
Each poll is printed (time, phase, clients, goroutines, the findings with their verdict,
confidence, site and evidence), with the worst verdict per poll and the time the findings took to
clear after the ramp came down; the same log is the assertion message.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gobuild import build_goapp, run_goapp
from serveproc import Serve, run_serve

MIN_CLIENTS, MAX_CLIENTS = 5, 200
WARM, UP, HOLD, DOWN = 15.0, 70.0, 30.0, 70.0
"""Seconds: at 5 clients, ramping up, at 200, ramping down (about three minutes)."""
AFTER = 60.0
"""Seconds watched after the ramp."""
POLL = 5.0
RANK = {"": 0, "inconclusive": 1, "suspect": 2, "leak": 3}


@dataclass
class Poll:
    t: float
    """Seconds since the driver started."""
    phase: str
    clients: int | None
    goroutines: int | None
    """The service's own count (runtime.NumGoroutine), now."""
    scraped: int | None
    """The goroutine count of grprof's last scrape of it."""
    scrape: str = ""
    """The format of that scrape (debug=1, or debug=2 by the capture policy)."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """Open findings (lifecycle new or ongoing)."""
    leaks_ever: list[dict[str, Any]] = field(default_factory=list)
    """Every stored finding whose verdict is leak, resolved ones included."""
    error: str = ""

    @property
    def worst(self) -> str:
        return max((f["verdict"] for f in self.findings), key=RANK.__getitem__, default="")

    def line(self) -> str:
        head = (
            f"t={self.t:5.0f}s {self.phase:<5} clients={self.clients!s:>4} goroutines={self.goroutines!s:>4} "
            f"(scraped {self.scraped!s:>4} {self.scrape})  worst={self.worst or 'none'}"
        )
        if self.error:
            head += f"  ERROR {self.error}"
        return "\n".join([head, *(f"      {describe(f)}" for f in self.findings)])


def describe(f: dict[str, Any]) -> str:
    site = f["site"]["function"] if f.get("site") else "?"
    evidence = "; ".join(
        f"{e['signal']}({e.get('weight', 0):+g}): {e['summary']}" for e in f.get("evidence", [])
    )
    return (
        f"{f['verdict']:<12} {f['confidence']:.2f} {f['category']:<14} {site} n={f['count']} "
        f"[{f['lifecycle']}] — {evidence}"
    )


def phase_at(t: float) -> str:
    for name, end in (
        ("warm", WARM),
        ("up", WARM + UP),
        ("hold", WARM + UP + HOLD),
        ("down", WARM + UP + HOLD + DOWN),
    ):
        if t < end:
            return name
    return "after"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def poll_once(srv: Serve, base: str, name: str, t: float) -> Poll:
    p = Poll(t, phase_at(t), None, None, None)
    try:
        stats = get_json(base + "/ramp/stats")
        p.clients = stats["broker_clients"] + stats["grpc_streams"] + stats["api_conns"]
        p.goroutines = stats["goroutines"]
        targets = {x["name"]: x for x in srv.get("/api/v1/targets")["targets"]}
        p.scraped = targets[name]["goroutines"]
        latest = srv.get(f"/api/v1/targets/{name}/snapshots?limit=3")["snapshots"]
        p.scrape = next((s["format"] for s in latest if s["profile"] == "goroutine"), "")
        found = srv.get(f"/api/v1/findings?target={name}")["findings"]
        p.findings = [f for f in found if f["lifecycle"] != "resolved"]
        p.leaks_ever = [f for f in found if f["verdict"] == "leak"]
    except (OSError, ValueError, KeyError) as e:
        p.error = f"{type(e).__name__}: {e}"
    return p


def clearing(polls: list[Poll], verdicts: set[str], down_start: float, down_end: float) -> str:
    """When the findings with one of `verdicts` last showed, relative to the ramp coming down."""
    seen = [p.t for p in polls if any(f["verdict"] in verdicts for f in p.findings)]
    if not seen:
        return "never open"
    last = seen[-1]
    after = [p.t for p in polls if p.t > last]
    if not after:
        return f"still open at the end (t={last:.0f}s)"
    cleared = after[0]
    if cleared <= down_start:
        return f"cleared at t={cleared:.0f}s, before the ramp started down (t={down_start:.0f}s)"
    return (
        f"cleared at t={cleared:.0f}s: {cleared - down_start:.0f}s after the ramp started down, "
        f"{cleared - down_end:+.0f}s after it reached {MIN_CLIENTS} clients (t={down_end:.0f}s)"
    )


def summary(polls: list[Poll], snapshots: list[tuple[float, str]]) -> str:
    down_start, down_end = WARM + UP + HOLD, WARM + UP + HOLD + DOWN
    lines = [p.line() for p in polls]
    worst = max((p.worst for p in polls), key=RANK.__getitem__, default="")
    leaks = sorted({f["id"] for p in polls for f in p.leaks_ever})
    lines.append(f"worst verdict over the run: {worst or 'none'}; findings ever judged a leak: {len(leaks)}")
    for verdicts, what in (
        ({"leak"}, "leak"),
        ({"leak", "suspect"}, "leak or suspect"),
        (set(RANK) - {""}, "any"),
    ):
        lines.append(f"{what} findings: {clearing(polls, verdicts, down_start, down_end)}")
    scrapes = ", ".join(f"{t:.0f}{'*' if f == 'debug=2' else ''}" for t, f in snapshots)
    lines.append(f"grprof's scrapes of the service at t= (s; * debug=2): {scrapes}")
    formats = [f for _, f in snapshots]
    kinds = {k: formats.count(k) for k in sorted(set(formats))}
    lines.append(f"grprof's snapshots of the service: {kinds}")
    return "\n".join(lines)


@pytest.mark.slow
def test_a_load_ramp_is_not_a_leak(tmp_path: Path) -> None:
    binary = build_goapp("ramp")
    with run_goapp(binary, "-addr", "127.0.0.1:0") as (_, base):
        name = base.split("://", 1)[1]
        with run_serve(["--target", base, "--db", str(tmp_path / "grprof.db")]) as srv:
            # The first scrape (at the target's phase in the 15 s interval) sees the quiet service.
            srv.wait_for(lambda: srv.get("/api/v1/targets")["targets"][0]["last_success"], timeout=40)
            drive = ["-mode", "drive", "-target", base, "-min", str(MIN_CLIENTS), "-max", str(MAX_CLIENTS)]
            drive += [f"-{k}={v:g}s" for k, v in (("warm", WARM), ("up", UP), ("hold", HOLD), ("down", DOWN))]
            polls: list[Poll] = []
            with run_goapp(binary, *drive):
                start, wall = time.monotonic(), time.time()
                end = WARM + UP + HOLD + DOWN + AFTER
                while (t := time.monotonic() - start) <= end:
                    p = poll_once(srv, base, name, t)
                    polls.append(p)
                    print(p.line(), flush=True)
                    time.sleep(max(0.0, POLL * len(polls) - (time.monotonic() - start)))
            snaps = srv.get(f"/api/v1/targets/{name}/snapshots?limit=1000")["snapshots"]
            formats = [
                (dt.datetime.fromisoformat(s["time"]).timestamp() - wall, s["format"])
                for s in reversed(snaps)
                if s["profile"] == "goroutine"
            ]
    log = summary(polls, formats)
    print(log, flush=True)
    (tmp_path / "ramp.log").write_text(log + "\n")
    assert sum(1 for p in polls if p.error) <= 2, log
    # The service is healthy: its goroutines went back down with its clients.
    quiet = [p.goroutines for p in polls if p.phase in ("warm", "after") and p.goroutines is not None]
    peak = max(p.goroutines or 0 for p in polls)
    assert peak > 300 and quiet and quiet[-1] < 60, log
    # The capture policy at its defaults: at least every 4th scrape was a debug=2.
    detailed = sum(1 for _, f in formats if f == "debug=2")
    assert detailed >= (len(formats) - 1) // 4, log
    leaks = [p for p in polls if any(f["verdict"] == "leak" for f in p.findings) or p.leaks_ever]
    assert not leaks, f"{len(leaks)} of {len(polls)} polls saw a leak verdict on a healthy service\n{log}"
