"""`grprof diff BEFORE AFTER`: two snapshots compared group by group, with verdicts (docs/diff.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from grprof import _gc
from grprof.cli._common import (
    EXIT_BAD_INPUT,
    UsageError,
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
from grprof.diff import Focus
from grprof.model import Snapshot


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    d: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="compare two snapshots group by group: new, vanished, grown, shrunk, with verdicts",
        description="Compare two goroutine snapshots (any inputs 'analyze' takes, any formats): each "
        "group's count before and after, its wait age, and the detector's verdict on the pair.",
    )
    target_help = "file, '-' for stdin, or a live service (as for 'analyze')"
    d.add_argument("before", metavar="BEFORE", help=target_help)
    d.add_argument("after", metavar="AFTER", help=target_help)
    dout = d.add_argument_group("output")
    dout.add_argument("--json", action="store_true", help="print the JSON diff (grprof.diff/v1)")
    dout.add_argument("--html", metavar="FILE", help="write a self-contained HTML page of the diff")
    dout.add_argument(
        "--top", type=positive, default=20, metavar="N", help="groups in the text table (default 20)"
    )
    pager_arg(dout)
    focus_args(d.add_argument_group("grouping"))
    detection_args(d, interval_help="time between BEFORE and AFTER, e.g. 30s (default: file times)")
    for action in d._actions:  # the diff explains no finding in full: accepted, not shown
        if "--details" in action.option_strings:
            action.help = argparse.SUPPRESS
    input_args(d)
    return d


def diff_side(text: str, args: argparse.Namespace) -> Snapshot:
    """One side of `grprof diff`: what `analyze` reads for the input; of a file holding several
    dumps (a log with two panics), the last."""
    snaps = load_inputs([text], args.max_size, args.timeout, args.format)
    if len(snaps) > 1:
        warn([f"{text} holds {len(snaps)} dumps: comparing the last, {snaps[-1].source}"])
    return snaps[-1]


def run(args: argparse.Namespace) -> int:
    from grprof.detect.detector import detect
    from grprof.diff import compute

    if args.before == "-" and args.after == "-":
        raise UsageError("BEFORE and AFTER cannot both be '-' (standard input)")
    _gc.tune()
    opts = detection_options(args)
    before = diff_side(args.before, args)
    after = diff_side(args.after, args)
    # The verdicts: the detector on the pair as a series, as `grprof analyze BEFORE AFTER` runs it.
    detection = detect([before, after], opts)
    warn(detection.warnings)
    d = compute(before, after, detection, Focus(args.focus, args.ignore), detection.warnings)
    if args.html:
        from grprof.report import diff_html

        if not write_html(args.html, lambda: diff_html.render(d), "HTML diff"):
            return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(d.render_json())
    else:
        from grprof.report import diff as diff_text

        with output_console(args.pager) as console:
            diff_text.render(d, console, top=args.top)
            if args.html:
                console.print(f"[dim]HTML diff written to {args.html}[/]")
    return fail_status(d.findings, args.fail_on)
