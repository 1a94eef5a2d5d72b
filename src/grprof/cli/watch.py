"""`grprof watch URL`: the polling loop and its live or plain-line output (docs/watch.md).

The parser is built at every start of `grprof`; what the loop needs (rich's live view, the
detector, the watcher) is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from grprof.cli._common import (
    EXIT_BAD_INPUT,
    detection_args,
    detection_options,
    duration,
    error,
    fail_status,
    focus_args,
    format_arg,
    positive,
)

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

    from grprof.collect.policy import CaptureSettings
    from grprof.watch import Watcher


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    w: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="poll a live service and report goroutine leaks as they appear",
        description="Poll URL's /debug/pprof/goroutine?debug=1 (and goroutineleak?debug=1 when it exists, "
        "less often: it forces a GC) and print findings as they appear, until --duration or Ctrl-C.",
    )
    w.add_argument(
        "url",
        metavar="URL",
        help="the service: host:port, its base URL, or any of its /debug/pprof/ goroutine URLs",
    )
    w.add_argument(
        "--duration", type=duration, metavar="DURATION", help="stop after this long (default: Ctrl-C)"
    )
    w.add_argument(
        "--leak-every",
        type=positive,
        default=4,
        metavar="N",
        help="fetch the goroutineleak profile after good polls 1, N+1, 2N+1, ... (default 4), as serve does",
    )
    w.add_argument("--json", action="store_true", help="at the end, print the JSON report instead of text")
    w.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)")
    focus_args(w)
    format_arg(
        w,
        "the profile of every poll: debug=2 a per-goroutine dump each time; debug=1 or debug=0 "
        "that profile only (default: the URL's ?debug=N, else debug=1 with a debug=2 every 4th "
        "poll and on findings)",
    )
    detection_args(w, interval_help="time between polls (default 15s)", interval_default=15.0)
    return w


def _status(w: Watcher, interval: float) -> Text:
    from rich.text import Text

    from grprof.sources import redact

    leak = {True: "yes", False: "no", None: "?"}[w.leak_profile]
    base = redact(w.base)
    line = (
        f"{base} · {w.polls} polls every {interval:g}s ({_capture_note(w)}) · goroutineleak profile: {leak}"
    )
    if w.errors:
        line += f" · {w.errors} failed polls (last: {w.last_error})"
    return Text(line, style="dim")


def _capture_note(w: Watcher) -> str:
    c = w.capture
    if c.format == "debug=2" or not c.debug2_max_goroutines:
        return c.format
    every = f"every {c.debug2_every} polls and " if c.debug2_every else ""
    return f"{c.format}, debug=2 {every}on findings: {w.debug2_taken} taken"


def capture_settings(args: argparse.Namespace) -> CaptureSettings:
    """The capture policy of `grprof watch`: `--format`, else the format a
    `/debug/pprof/goroutine?debug=N` URL names, else debug=1 (`watch_target`); the debug=2
    keys when the parser has them. A format asked for by name (`--format debug=1`, a
    `?debug=0` URL) is the only one fetched: the user may be keeping debug=2's cost off the
    service; without one, debug=1 polls mix in a debug=2. Raises TargetError for a URL that
    names no service."""
    from grprof.collect.policy import CaptureSettings
    from grprof.watch import url_format, watch_target

    option = getattr(args, "format", None)
    target = watch_target(args.url, option)
    # A goroutineleak URL's ?debug=N is about that profile, not about the goroutine polls.
    fmt = (target.format if target.profile == "goroutine" else option) or "debug=1"
    named = option or url_format(args.url)
    every = getattr(args, "debug2_every", None)
    limit = getattr(args, "debug2_max_goroutines", None)
    default = CaptureSettings()
    if named is not None and named != "debug=2":
        default = CaptureSettings(debug2_every=0, debug2_max_goroutines=0)
    return CaptureSettings(
        format=fmt,
        debug2_every=default.debug2_every if every is None else every,
        debug2_max_goroutines=default.debug2_max_goroutines if limit is None else limit,
    )


def _live_view(w: Watcher, interval: float) -> Group:
    from rich.console import Group, RenderableType
    from rich.text import Text

    from grprof.report import text
    from grprof.report.model import build_report

    parts: list[RenderableType] = [_status(w, interval)]
    if w.detection is not None:
        report = build_report(w.snapshots[-1:], detection=w.detection)
        if report.findings:
            parts.append(text.findings_table(report))
        else:
            parts.append(Text(f"no leak found yet ({len(w.snapshots)} snapshots)", style="green"))
    return Group(*parts)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from grprof.diff import Focus
    from grprof.errors import GrprofError
    from grprof.report import jsonout, text
    from grprof.report.model import build_report
    from grprof.sources import redact
    from grprof.watch import Watcher, event_line, sleep_until

    opts = detection_options(args, interval=False)
    interval: float = args.interval
    w = Watcher(
        args.url,
        opts,
        timeout=args.timeout,
        leak_every=max(1, args.leak_every),
        capture=capture_settings(args),
        focus=Focus(getattr(args, "focus", None), getattr(args, "ignore", None)),
    )
    err = Console(stderr=True, highlight=False)
    try:
        first = w.poll()  # the first poll must work: a wrong URL is a usage error, not a transient one
    except GrprofError as e:
        error(e)
        return EXIT_BAD_INPUT
    tty = sys.stdout.isatty() and not args.json
    if not tty:
        note = f" ({w.leak_profile_note})" if w.leak_profile_note else ""
        base = redact(w.base)
        err.print(
            f"watching {base} every {interval:g}s ({_capture_note(w).split(':')[0]}); goroutineleak "
            f"profile: {'yes' if w.leak_profile else 'no'}{note}"
        )
        if not args.json:
            for ev in first:
                print(event_line(ev), flush=True)
    start = time.monotonic()
    deadline = start + args.duration if args.duration else None
    live = Live(_live_view(w, interval), console=Console(), refresh_per_second=4) if tty else nullcontext()
    try:
        with live:
            next_poll = start + interval
            while deadline is None or next_poll <= deadline:
                sleep_until(next_poll)
                next_poll += interval
                try:
                    events = w.poll()
                except GrprofError as e:
                    w.errors += 1
                    w.last_error = str(e)
                    if not tty:
                        err.print(f"poll failed, keeping {len(w.snapshots)} snapshots: {e}")
                    continue
                if isinstance(live, Live):
                    live.update(_live_view(w, interval))
                elif not args.json:
                    for ev in events:
                        print(event_line(ev), flush=True)
    except KeyboardInterrupt:
        pass
    report = build_report(w.snapshots[-1:], detection=w.detection)
    if args.json:
        sys.stdout.write(jsonout.render(report))
    else:
        console = text.make_console()
        console.print()
        text.render_findings(report, console, args.details)
    return fail_status(report.findings, args.fail_on)
