"""`grprof gate`: fail CI on new goroutine leaks, against a baseline of accepted signatures.

    grprof gate LEAKCHECK_DIR [--go-test-json FILE]      # after `go test` with GRPROF_LEAKCHECK_DIR
    grprof gate --before FILE --after FILE               # a service, around a load run
    grprof gate --url URL --duration 60s                 # a service, polled meanwhile

Exit status: 0 pass, 1 a leak whose signature is not in the baseline, 2 bad input (one line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from grprof import schema
from grprof.detect.model import VERDICTS
from grprof.errors import GrprofError
from grprof.gate import baseline as baseline_file
from grprof.gate import junit, report, sarif
from grprof.gate.collect import (
    GateError,
    Poll,
    from_leakcheck_dir,
    from_service,
    gate_rules,
    merge_go_test_json,
    poll,
)
from grprof.gate.model import GateResult
from grprof.loader import load
from grprof.units import parse_duration

EXIT_PASS, EXIT_LEAK, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_BASELINE = ".grprof-baseline.json"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "gate",
        help="fail CI on new goroutine leaks (leakcheck directory or a service), against a baseline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", nargs="?", help="leakcheck directory (GRPROF_LEAKCHECK_DIR of a `go test` run)")
    p.add_argument(
        "--go-test-json", metavar="FILE", help="`go test -json` output: every test in the JUnit report"
    )
    p.add_argument("--before", metavar="FILE", help="service snapshot before the load run (any grprof input)")
    p.add_argument("--after", metavar="FILE", help="service snapshot after the load run")
    p.add_argument("--url", metavar="URL", help="live service (host:port or a /debug/pprof URL) to poll")
    p.add_argument("--duration", metavar="DUR", default="60s", help="how long to poll --url (default 60s)")
    p.add_argument(
        "--snapshots", type=int, default=5, help="profiles taken over --duration (default 5, at least 2)"
    )
    p.add_argument(
        "--interval", metavar="DUR", help="seconds between --before and --after when the files have no times"
    )
    p.add_argument(
        "--fail-on",
        choices=VERDICTS,
        default="suspect",
        help="service mode: the weakest detector verdict that counts as a leak (default suspect)",
    )
    p.add_argument(
        "--min-growth",
        type=int,
        default=1,
        metavar="N",
        help="service mode: a group in a blocking wait that grew by N goroutines fails, whatever the verdict"
        " (default 1)",
    )
    p.add_argument(
        "--baseline",
        metavar="FILE",
        default=DEFAULT_BASELINE,
        help=f"accepted signatures (default {DEFAULT_BASELINE})",
    )
    p.add_argument(
        "--update-baseline",
        action="store_true",
        help="write every current leak's signature to --baseline, exit 0",
    )
    p.add_argument(
        "--rules",
        metavar="FILE",
        action="append",
        default=[],
        help="extra rule file (ignore: entries), repeatable",
    )
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--sarif", metavar="FILE", help="write a SARIF 2.1.0 report (GitHub code scanning)")
    p.add_argument(
        "--source-root", metavar="DIR", help="make SARIF paths relative to DIR (the repository root)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the grprof.gate/v1 JSON document instead of text"
    )
    p.set_defaults(run=run)
    return p


def _seconds(text: str, flag: str) -> float:
    try:
        return float(parse_duration(text))
    except (ValueError, GrprofError) as e:
        raise GateError(f"{flag} {text}: {e}") from e


def _collect(args: argparse.Namespace) -> GateResult:
    rules = gate_rules(args.rules)
    modes = sum(bool(x) for x in (args.dir, args.before or args.after, args.url))
    if modes != 1:
        raise GateError("give one of: a leakcheck DIR, --before FILE --after FILE, or --url URL")
    if args.dir:
        result = from_leakcheck_dir(Path(args.dir), rules)
        if args.go_test_json:
            merge_go_test_json(result, Path(args.go_test_json))
        return result
    fail_on = args.fail_on
    interval = _seconds(args.interval, "--interval") if args.interval else None
    if args.url:
        if args.snapshots < 2:
            raise GateError("--snapshots: want at least 2")
        duration = _seconds(args.duration, "--duration")
        snaps = poll(Poll(args.url, duration, args.snapshots))
        return from_service(
            snaps, rules, fail_on=fail_on, interval=None, inputs=[args.url], min_growth=args.min_growth
        )
    if not (args.before and args.after):
        raise GateError("--before and --after go together")
    try:
        snaps = [load(args.before), load(args.after)]
    except GrprofError as e:
        raise GateError(str(e)) from e
    return from_service(
        snaps,
        rules,
        fail_on=fail_on,
        interval=interval,
        inputs=[args.before, args.after],
        min_growth=args.min_growth,
    )


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise GateError(f"{path}: cannot write: {e.strerror or e}") from e


def run(args: argparse.Namespace) -> int:
    try:
        result = _collect(args)
        bpath = Path(args.baseline)
        if args.update_baseline:
            baseline_file.write(bpath, result.leaks)
            print(f"baseline {bpath}: {len({x.signature.id for x in result.leaks})} signature(s) written")
            return EXIT_PASS
        accepted = baseline_file.read(bpath)
        result.leaks = [dataclasses.replace(x, accepted=x.signature.id in accepted) for x in result.leaks]
        result.baseline = str(bpath) if bpath.exists() else None
        if args.junit:
            _write(args.junit, junit.render(result))
        if args.sarif:
            root = Path(args.source_root) if args.source_root else None
            _write(args.sarif, json.dumps(sarif.render(result, root), indent=2) + "\n")
        if args.json:
            sys.stdout.write(schema.dump_json(schema.GateReport, report.to_json(result)) + "\n")
        else:
            sys.stdout.write(report.text(result))
    except GrprofError as e:
        sys.stderr.write(f"grprof: {e}\n")
        return EXIT_BAD_INPUT
    return EXIT_PASS if result.passed else EXIT_LEAK
