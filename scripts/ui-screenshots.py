#!/usr/bin/env python3
"""Screenshots of the web UI for docs/ui.md (docs/img/ui-*.png), from a real `grprof serve`.

    .venv/bin/python scripts/ui-screenshots.py            # writes docs/img/ui-*.png

It runs what tests/test_ui.py's real-serve browser test runs: `grprof serve` watching
examples/leaky (a real leak) beside tests/goapps/healthy and tests/goapps/states (pprof
labels), built with the Go toolchain (scripts/go-toolchain.sh), and Debian's headless
Chromium driven over the DevTools protocol (tests/test_html.py's driver). It waits for the
leak to be found, then saves one 1400x1000 PNG of each page. Needs Go and `chromium`.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

OUT = ROOT / "docs" / "img"
WIDTH, HEIGHT = 1400, 1000
MIN_SNAPSHOTS = 30
"""Snapshots of the leaky service to wait for, so that the chart and the diff have a history."""


def main() -> int:
    from test_html import CHROMIUM, Browser  # the tests' helpers: the same serve, the same browser
    from test_ui import leak_finding, real_serve

    if CHROMIUM is None:
        print("ui-screenshots: Debian's chromium is not installed (apt install chromium)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, real_serve(Path(tmp)) as (srv, _):
        found = srv.wait_for(lambda: leak_finding(srv), timeout=120)
        srv.wait_for(
            lambda: len(srv.get("/api/v1/targets/leaky/snapshots?limit=100")["snapshots"]) >= MIN_SNAPSHOTS,
            timeout=120,
        )
        srv.wait_for(lambda: srv.get("/api/v1/search?key=plain.key/x&value=bare_value")["results"])
        metas = srv.get("/api/v1/targets/leaky/snapshots?limit=100")["snapshots"]
        goroutine = [m for m in metas if m["profile"] == "goroutine"]  # not the goroutineleak ones
        newest, oldest = goroutine[0]["id"], goroutine[-1]["id"]
        # The serve's whole life as a custom range (datetime-local inputs are to the minute).
        start = dt.datetime.fromisoformat(metas[-1]["time"].replace("Z", "+00:00")).replace(second=0)
        end = dt.datetime.now(dt.UTC).replace(second=0) + dt.timedelta(minutes=1)
        span = {"from": f"{start:%Y-%m-%dT%H:%M}", "to": f"{end:%Y-%m-%dT%H:%M}", "snapshot": newest}
        pages = {
            "fleet": "/",
            "target": "/targets/leaky?" + urllib.parse.urlencode(span),
            "finding": f"/findings/{urllib.parse.quote(found['id'])}?target=leaky",
            "flame": f"/snapshots/{newest}/flame",
            "diff": f"/diff?target=leaky&a={oldest}&b={newest}",
            "search": "/search?q=bare_value",
            "paste": "/paste",
        }
        b = Browser(Path(tmp) / "chromium")
        try:
            for name, path in pages.items():
                b.open(srv.base + path)
                time.sleep(0.3)  # the flame graph's script fits it to the page
                errors = b.console_errors() + b.csp_violations()
                if errors:
                    print(f"ui-screenshots: {path}: {errors}", file=sys.stderr)
                    return 1
                shot = b.send(
                    "Page.captureScreenshot",
                    format="png",
                    clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1},
                )
                out = OUT / f"ui-{name}.png"
                out.write_bytes(base64.b64decode(shot["data"]))
                print(f"{out.relative_to(ROOT)}  {out.stat().st_size // 1024} KiB  {path}")
        finally:
            b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
