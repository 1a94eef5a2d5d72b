"""Print findings from a running `grprof serve` as they appear: `follow_findings.py API SECONDS`."""

from __future__ import annotations

import json
import sys
import time
import urllib.request


def main() -> None:
    api, seconds = sys.argv[1], float(sys.argv[2])
    seen: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{api}/api/v1/findings", timeout=10) as r:
                rows = json.load(r)["findings"]
            for f in rows:
                key = f"{f['target']}/{f['id']}"
                if seen.get(key) != f["verdict"] and f["lifecycle"] != "resolved":
                    seen[key] = f["verdict"]
                    site = f["site"]["function"] if f["site"] else "?"
                    print(
                        f"{time.strftime('%H:%M:%S')}  {f['verdict'].upper():<7} {f['confidence']:.2f}  "
                        f"{f['category']:<14} {site}  count={f['count']}  {f['title']}",
                        flush=True,
                    )
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    if not seen:
        print("no finding yet")


if __name__ == "__main__":
    main()
