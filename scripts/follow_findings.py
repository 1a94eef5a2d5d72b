"""The two halves of `make demo`, against a running `grprof serve` (stdlib only).

    follow_findings.py API SECONDS leak        wait for the leak; print it, its cause and its fix
    follow_findings.py API SECONDS resolved    after the fix: goroutine count and the finding
                                               until grprof marks it resolved

Progress goes out as one line per poll. Exit status 0 when the awaited thing happened within
SECONDS, 1 when not.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

POLL = 2.5
STATE_FILE = "finding.json"  # in the demo's work directory: the leak phase leaves it for the next


def get(api: str, path: str) -> Any:
    with urllib.request.urlopen(f"{api}{path}", timeout=10) as r:
        return json.load(r)


def target(api: str) -> dict[str, Any]:
    ts = get(api, "/api/v1/targets")["targets"]
    return ts[0] if ts else {}


def leak_findings(api: str) -> list[dict[str, Any]]:
    rows = get(api, "/api/v1/findings?verdict=leak")["findings"]
    return [f for f in rows if f["lifecycle"] != "resolved" and (f["site"] or {}).get("function", "")]


def source_line(site: dict[str, Any]) -> str:
    try:
        lines = Path(site["file"]).read_text().splitlines()
        return lines[site["line"] - 1].strip()
    except (OSError, IndexError, KeyError, TypeError):
        return ""


def show(f: dict[str, Any]) -> None:
    site, by = f["site"] or {}, f.get("created_by") or {}
    where = f"{site.get('function')} {Path(site.get('file', '?')).name}:{site.get('line')}"
    print(f"\n==> LEAK ({f['confidence']:.0%}) {f['title']}  [{f['category']}]")
    print(f"    {f['count']} goroutines blocked in {f['state']} at {where}")
    if by:
        print(f"    started by {by.get('function')} {Path(by.get('file', '?')).name}:{by.get('line')}")
    line = source_line(site)
    if line:
        print(f"    source line {site.get('line')}:   {line}")
    print("    evidence:")
    for e in f["evidence"]:
        if e.get("summary") and e["signal"] not in ("sla", "rule", "unit"):
            print(textwrap.fill(e["summary"], 100, initial_indent="      • ", subsequent_indent="        "))
    print("    root cause:")
    print(textwrap.fill(f["explanation"], 100, initial_indent="      ", subsequent_indent="      "))
    print("    fix (grprof's advice):")
    for ln in (f["fix"] or "").splitlines():
        print(f"      {ln}")
    print(flush=True)


class Poller:
    """One line per change (a new scrape's goroutine count, the finding's state), at least one
    every 10 s; the goroutine count of each scrape after `since`."""

    def __init__(self, api: str) -> None:
        self.api, self.t0 = api, time.monotonic()
        self.since = dt.datetime.now(dt.UTC)
        self.counts: dict[str, int] = {}  # goroutines by scrape time
        self.last_line, self.last_at = "", -99.0

    def poll(self, status: str) -> None:
        t = target(self.api)
        last, g = t.get("last_success"), t.get("goroutines")
        if (
            last
            and isinstance(g, int)
            and dt.datetime.fromisoformat(last.replace("Z", "+00:00")) > self.since
        ):
            self.counts[last] = g
        line = f"goroutines {'?' if g is None else g:>5}  {status}"
        now = time.monotonic() - self.t0
        if line != self.last_line or now - self.last_at >= 10:
            print(f"  +{now:3.0f}s  {line}", flush=True)
            self.last_line, self.last_at = line, now

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def series(self) -> list[int]:
        return [self.counts[k] for k in sorted(self.counts)]


def wait_leak(api: str, seconds: float, work: Path) -> int:
    """The leak verdict, once 3 scrapes have shown the count."""
    p = Poller(api)
    while p.elapsed() < seconds:
        found = leak_findings(api)
        f = max(found, key=lambda f: f["count"]) if found else None
        p.poll(f"LEAK found at {f['site']['function']}" if f else "no leak verdict yet")
        seen = p.series()
        if f and len(seen) >= 3:
            print(
                f"\n==> the goroutine count over the last {len(seen)} scrapes: {' → '.join(map(str, seen))}"
            )
            show(f)
            (work / STATE_FILE).write_text(json.dumps({"id": f["id"], "target": f["target"]}))
            return 0
        time.sleep(POLL)
    print(f"demo: no leak found within {seconds:.0f}s")
    return 1


def wait_resolved(api: str, seconds: float, work: Path) -> int:
    want = json.loads((work / STATE_FILE).read_text())
    p = Poller(api)  # scrapes of the fixed service only: the ones after its restart
    while p.elapsed() < seconds:
        rows = get(api, f"/api/v1/findings?target={want['target']}")["findings"]
        f = next((r for r in rows if r["id"] == want["id"]), None)
        life = f["lifecycle"] if f else "gone"
        p.poll(f"finding {want['id']}: {life}")
        seen = p.series()
        if life == "resolved" and len(seen) >= 3:
            trend = "not growing" if max(seen) - min(seen) < 10 else "still moving"
            print(
                f"\n==> cleared: grprof marked the finding resolved (at {f['resolved_at'] if f else '?'}).\n"
                f"    goroutines over {len(seen)} scrapes of the fixed service: {min(seen)} to {max(seen)}, "
                f"{trend}"
            )
            return 0
        time.sleep(POLL)
    print(f"demo: the finding was not resolved within {seconds:.0f}s")
    return 1


def main() -> None:
    api, seconds, phase = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    work = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(".")
    try:
        rc = wait_leak(api, seconds, work) if phase == "leak" else wait_resolved(api, seconds, work)
    except KeyboardInterrupt:
        rc = 130
    sys.exit(rc)


if __name__ == "__main__":
    main()
