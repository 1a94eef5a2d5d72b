"""The `grprof watch` command: the polling loop and its live or plain-line output."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from grprof.cli import EXIT_BAD_INPUT, detection_options, fail_status
from grprof.collect.policy import CaptureSettings
from grprof.diff import Focus
from grprof.errors import GrprofError
from grprof.report import jsonout, text
from grprof.report.model import build_report
from grprof.sources import redact
from grprof.watch import Watcher, event_line, sleep_until, watch_target


def _status(w: Watcher, interval: float) -> Text:
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
    if c.format == "debug=2":
        return "debug=2"
    every = f"every {c.debug2_every} polls and " if c.debug2_every else ""
    return f"{c.format}, debug=2 {every}on findings: {w.debug2_taken} taken"


def capture_settings(args: argparse.Namespace) -> CaptureSettings:
    """The capture policy of `grprof watch`: `--format`, else the format a
    `/debug/pprof/goroutine?debug=N` URL names, else debug=1 (`watch_target`); the debug=2
    keys when the parser has them. Raises TargetError for a URL that names no service."""
    option = getattr(args, "format", None)
    target = watch_target(args.url, option)
    # A goroutineleak URL's ?debug=N is about that profile, not about the goroutine polls.
    fmt = (target.format if target.profile == "goroutine" else option) or "debug=1"
    every = getattr(args, "debug2_every", None)
    limit = getattr(args, "debug2_max_goroutines", None)
    default = CaptureSettings()
    return CaptureSettings(
        format=fmt,
        debug2_every=default.debug2_every if every is None else every,
        debug2_max_goroutines=default.debug2_max_goroutines if limit is None else limit,
    )


def _live_view(w: Watcher, interval: float) -> Group:
    parts: list[RenderableType] = [_status(w, interval)]
    if w.detection is not None:
        report = build_report(w.snapshots[-1:], detection=w.detection)
        if report.findings:
            parts.append(text.findings_table(report))
        else:
            parts.append(Text(f"no leak found yet ({len(w.snapshots)} snapshots)", style="green"))
    return Group(*parts)


def watch(args: argparse.Namespace) -> int:
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
        print(f"grprof: {e}", file=sys.stderr)
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
