"""`grprof canary`: judge canary targets against baseline targets (docs/canary.md).

    grprof canary --baseline 10.0.0.1:6060 --canary 10.0.0.2:6060 --duration 5m --interval 15s
    grprof canary --db grprof.db --baseline track=stable --canary track=canary --duration 10m
    grprof canary --baseline old/ --canary new/ --json          # snapshot files (a directory each)

Exit status: 0 pass, 1 fail (and marginal, unless `--marginal pass`), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from grprof import schema
from grprof.canary.config import CanaryConfig, CanaryError, load_config
from grprof.cli._common import EXIT_BAD_INPUT, duration, error, run_guarded, warn

if TYPE_CHECKING:  # the judgement imports scipy: only when a canary is judged
    from grprof.canary.judge import CanaryResult

EXIT_PASS = 0
EXIT_FAIL = 1
DEFAULT_DURATION = 300.0
DEFAULT_INTERVAL = 15.0
WEBHOOK_TIMEOUT = 10.0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "canary",
        help="judge a canary's goroutines against its baseline (pass/marginal/fail, a 0-100 score)",
        description="Compare baseline targets with canary targets over a window, per target and per "
        "goroutine group: counts and growth, Mann-Whitney U test and Hodges-Lehmann shift with its "
        "confidence interval; a runtime-confirmed or new leak in the canary fails at once. "
        "Exit 0 pass, 1 fail (marginal: --marginal), 2 bad input.",
    )
    src = p.add_argument_group("targets")
    src.add_argument(
        "--baseline",
        action="extend",
        nargs="+",
        required=True,
        metavar="TARGET",
        help="baseline: URLs or host:port (scraped live), snapshot files or directories; with --db, "
        "target names or labels as key=value",
    )
    src.add_argument(
        "--canary", action="extend", nargs="+", required=True, metavar="TARGET", help="canary: as --baseline"
    )
    src.add_argument(
        "--db",
        metavar="PATH|URL",
        help="read a `grprof serve` store (SQLite path or postgresql:// URL) instead of scraping",
    )
    src.add_argument(
        "--duration",
        type=duration,
        metavar="DURATION",
        help="how long to scrape live targets (default 5m); with --db, the window to read (default 10m)",
    )
    src.add_argument(
        "--interval",
        type=duration,
        metavar="DURATION",
        help="between scrapes of live targets (default 15s); for text files without times, their spacing",
    )
    src.add_argument(
        "--format",
        choices=("debug=0", "debug=1", "debug=2"),
        metavar="debug=0|debug=1|debug=2",
        help="the goroutine profile format to scrape (default: the URL's, else debug=2)",
    )
    src.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per scrape (default 10)")
    out = p.add_argument_group("judgement and output")
    out.add_argument("--config", metavar="FILE", help="YAML replacing keys of the shipped data/canary.yaml")
    out.add_argument(
        "--marginal",
        choices=("pass", "fail"),
        help="exit status of a marginal result: pass (0) or fail (1) (default: the config's, fail)",
    )
    out.add_argument("--json", action="store_true", help="print the result as JSON (grprof.canary/v1)")
    out.add_argument("--webhook", metavar="URL", help="POST the JSON result to this URL when done")
    return p


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: _run(args))


def _config(args: argparse.Namespace) -> CanaryConfig:
    overrides = {"marginal": args.marginal} if args.marginal else None
    return load_config(args.config, overrides)


def _run(args: argparse.Namespace) -> int:
    from grprof.canary.collect import collect, from_store
    from grprof.canary.judge import judge

    config = _config(args)
    if args.db:
        from grprof.store import open_store

        store = open_store(args.db)
        try:
            got = from_store(store, args.baseline, args.canary, window=args.duration or 600.0)
        finally:
            store.close()
        interval = None
    else:
        interval = args.interval
        got = collect(
            args.baseline,
            args.canary,
            duration=args.duration if args.duration is not None else DEFAULT_DURATION,
            interval=interval or DEFAULT_INTERVAL,
            fmt=args.format,
            timeout=args.timeout,
            progress=_progress if sys.stderr.isatty() else None,
        )
    warn(got.warnings)
    result = judge(got.baseline, got.canary, config, interval=interval)
    doc = result.to_json()
    if args.json:
        print(schema.dump_json(schema.CanaryReport, doc))  # checked against the model
    else:
        from grprof.canary.text import render

        sys.stdout.write(render(result))
    if args.webhook:
        post_webhook(args.webhook, doc)
    return exit_status(result)


def exit_status(result: CanaryResult) -> int:
    return EXIT_PASS if result.passes() else EXIT_FAIL


def post_webhook(url: str, doc: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> bool:
    """POST the result; a webhook that fails is a warning, not a different verdict."""
    if not url.startswith(("http://", "https://")):
        raise CanaryError(f"--webhook {url}: not an http(s) URL")
    body = json.dumps(doc).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "grprof-canary"}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as e:
        warn([f"webhook {url}: {getattr(e, 'reason', e)}"])
        return False
    return True


def _progress(done: int, total: int) -> None:
    end = "" if done < total else "\n"
    print(f"\rgrprof canary: scrape {done}/{total}", end=end, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m grprof.canary ...`: the command alone (until `grprof canary` is wired)."""
    from grprof.cli._common import Parser

    parser = Parser(prog="grprof")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "canary":
        argv = ["canary", *argv]
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_BAD_INPUT
    return run(args)


__all__ = ["add_parser", "error", "main", "run"]
