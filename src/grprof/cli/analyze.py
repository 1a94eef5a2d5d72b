"""`grprof analyze`: read dumps or profiles, detect, and report their groups (docs/cli.md)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from grprof import _gc
from grprof.aggregate import SIMILARITIES, Similarity
from grprof.cli._common import (
    EXIT_BAD_INPUT,
    detection_args,
    detection_options,
    fail_status,
    focus_args,
    input_args,
    load_inputs,
    output_console,
    pager_arg,
    positive,
    warn,
    write_html,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    a: argparse.ArgumentParser = subparsers.add_parser(
        "analyze",
        help="read goroutine dumps or profiles and report their goroutine groups",
        description="Read goroutine dumps (debug=2 text, panics, SIGQUIT tracebacks, logs), debug=1 "
        "text or debug=0 pprof profiles, from files, '-' (stdin) or http(s) URLs, and report the groups.",
    )
    a.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="file, '-' for stdin, or a live service: host:port, http(s)://host:port or any of its "
        "/debug/pprof/ URLs (its goroutine profile is fetched)",
    )
    out = a.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the JSON report (grprof.report/v1)")
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with a flame graph")
    out.add_argument(
        "--top", type=positive, default=10, metavar="N", help="groups in the text table (default 10)"
    )
    out.add_argument(
        "--stacks", type=positive, default=5, metavar="N", help="stacks printed in full (default 5)"
    )
    out.add_argument(
        "--frames", type=positive, default=8, metavar="N", help="frames shown per stack (default 8)"
    )
    grp = a.add_argument_group("grouping")
    grp.add_argument(
        "--similarity",
        choices=SIMILARITIES,
        default="default",
        help="exact: same frames and argument values; default: same call sites; "
        "loose: also ignore line numbers and closure numbering",
    )
    focus_args(grp)
    grp.add_argument(
        "--min-count", type=positive, default=1, metavar="N", help="drop groups under N goroutines"
    )
    detection_args(a, interval_help="time between text snapshots, e.g. 30s (default: file times)")
    out.add_argument(
        "--all-snapshots", action="store_true", help="print every snapshot's groups, not only the latest"
    )
    pager_arg(out)
    input_args(a)
    return a


def run(args: argparse.Namespace) -> int:
    from grprof.detect.detector import detect
    from grprof.report.model import GroupFilter, build_report

    _gc.tune()  # a short-lived process holding many parsed stacks: see grprof/_gc.py
    opts = detection_options(args)
    snaps = load_inputs(args.inputs, args.max_size, args.timeout, args.format)
    if args.redact is not None:
        from grprof.redact import Redactor, load_redact_file

        redactor = Redactor.load(load_redact_file(args.redact) if args.redact else None)
        for s in snaps:
            redactor.apply(s)
    detection = detect(snaps, opts)
    warn(detection.warnings)
    if args.focus is not None or args.ignore is not None:
        # The findings on the groups --focus/--ignore leave out go too (and --fail-on). Imported
        # here: grprof.diff brings the JSON schema (pydantic), which a plain run does not need.
        from grprof.diff import Focus

        focus = Focus(args.focus, args.ignore)
        detection = replace(detection, findings=focus.findings(detection.findings))
    similarity: Similarity = args.similarity
    flt = GroupFilter(args.focus, args.ignore, max(args.min_count, 1))
    report = build_report(snaps, similarity, flt, detection)
    if args.html:
        from grprof.report import html

        if not write_html(args.html, lambda: html.render(report), "HTML report"):
            return EXIT_BAD_INPUT
    if args.json:
        from grprof.report import jsonout

        sys.stdout.write(jsonout.render(report))
    else:
        from grprof.report import text

        with output_console(args.pager) as console:
            if not args.all_snapshots and len(report.snapshots) > 1:
                hidden = len(report.snapshots) - 1
                report.snapshots = report.snapshots[-1:]
                console.print(f"[dim]{hidden} earlier snapshots not shown (--all-snapshots to print each)[/]")
            text.render(
                report,
                console,
                top=args.top,
                stacks=args.stacks,
                max_frames=args.frames,
                details=args.details,
            )
            if args.html:
                console.print(f"[dim]HTML report written to {args.html}[/]")
    return fail_status(report.findings, args.fail_on)
