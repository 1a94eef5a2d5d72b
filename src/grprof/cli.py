"""Command line: a thin layer over `grprof.load_all` and the reports.

Exit status (docs/cli.md): 0 success, also when the reader of stdout leaves early (broken pipe);
1 reserved for `--fail-on` (findings); 2 bad input or usage, as one `grprof: ...` line on stderr;
130 interrupted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from grprof import __version__, _gc
from grprof.aggregate import SIMILARITIES, Similarity
from grprof.diff import Focus
from grprof.errors import GrprofError
from grprof.loader import read_input
from grprof.model import Snapshot

if TYPE_CHECKING:
    from rich.console import Console

    from grprof.detect.detector import Options
    from grprof.detect.model import Finding
from grprof.collect.policy import FORMATS
from grprof.ops import dashboard as _ops_dashboard
from grprof.ops import rules as _ops_rules
from grprof.sources import (
    DEFAULT_MAX_SIZE,
    DEFAULT_TIMEOUT,
    Input,
    looks_like_target,
    open_source,
    resolve_target,
)
from grprof.units import human_size, parse_duration, parse_size

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(GrprofError):
    """Options that do not go together."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error; the usage is one `--help` away.
        self.exit(EXIT_BAD_INPUT, f"grprof: {message} (see '{self.prog} --help')\n")


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {e}") from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return n


def _version() -> str:
    from grprof.formats.traceback import native_scanner

    native = "native scanner" if native_scanner() is not None else "pure Python scanner (no native scanner)"
    return f"grprof {__version__} ({native})"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="grprof", description="Find, explain and watch goroutine leaks in Go services.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    a = sub.add_parser(
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
        "--top", type=_positive, default=10, metavar="N", help="groups in the text table (default 10)"
    )
    out.add_argument(
        "--stacks", type=_positive, default=5, metavar="N", help="stacks printed in full (default 5)"
    )
    out.add_argument(
        "--frames", type=_positive, default=8, metavar="N", help="frames shown per stack (default 8)"
    )
    grp = a.add_argument_group("grouping")
    grp.add_argument(
        "--similarity",
        choices=SIMILARITIES,
        default="default",
        help="exact: same frames and argument values; default: same call sites; "
        "loose: also ignore line numbers and closure numbering",
    )
    _focus_args(grp)
    grp.add_argument(
        "--min-count", type=_positive, default=1, metavar="N", help="drop groups under N goroutines"
    )
    _detection_args(a, interval_help="time between text snapshots, e.g. 30s (default: file times)")
    out.add_argument(
        "--all-snapshots", action="store_true", help="print every snapshot's groups, not only the latest"
    )
    _pager_arg(out)
    _input_args(a)

    d = sub.add_parser(
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
        "--top", type=_positive, default=20, metavar="N", help="groups in the text table (default 20)"
    )
    _pager_arg(dout)
    _focus_args(d.add_argument_group("grouping"))
    _detection_args(d, interval_help="time between BEFORE and AFTER, e.g. 30s (default: file times)")
    for action in d._actions:  # the diff explains no finding in full: accepted, not shown
        if "--details" in action.option_strings:
            action.help = argparse.SUPPRESS
    _input_args(d)

    w = sub.add_parser(
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
        "--duration", type=_duration, metavar="DURATION", help="stop after this long (default: Ctrl-C)"
    )
    w.add_argument(
        "--leak-every",
        type=_positive,
        default=4,
        metavar="N",
        help="fetch the goroutineleak profile every N polls (default 4)",
    )
    w.add_argument("--json", action="store_true", help="at the end, print the JSON report instead of text")
    w.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)")
    _focus_args(w)
    _format_arg(
        w,
        "the profile of a poll; debug=2 makes every poll a per-goroutine dump (default: the URL's "
        "?debug=N, else debug=1, with a debug=2 every 4th poll and on findings)",
    )
    _detection_args(w, interval_help="time between polls (default 15s)", interval_default=15.0)

    s = sub.add_parser(
        "serve",
        help="scrape many services continuously: history, detection, an API and Prometheus metrics",
        description="Scrape every target's pprof endpoint on a schedule, keep the history (SQLite or "
        "PostgreSQL), detect leaks, and serve an API (/api/v1, docs at /docs) and /metrics.",
    )
    s.add_argument("--config", metavar="FILE", help="YAML configuration (reloaded on SIGHUP and on change)")
    s.add_argument(
        "--target", action="append", default=[], metavar="URL", help="a service's base URL (repeatable)"
    )
    s.add_argument("--interval", type=_duration, metavar="DURATION", help="scrape interval (default 15s)")
    s.add_argument("--listen", metavar="HOST:PORT", help="API address (default 127.0.0.1:8080)")
    s.add_argument(
        "--db", metavar="PATH_OR_URL", help="SQLite file (default ./grprof.db) or postgresql://..."
    )
    s.add_argument("--shard", metavar="I/N", help="scrape only the targets of shard I of N (hash of the URL)")
    s.add_argument("--api-token-file", metavar="FILE", help="require this bearer token on the API")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    _ops_rules.add_parser(sub)
    _ops_dashboard.add_parser(sub)
    return p


def _focus_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--focus`/`--ignore`, the same for `analyze`, `diff` and `watch`; `--filter`/`--exclude`
    are their older names, kept working and hidden."""
    p.add_argument(
        "--focus",
        type=_regex,
        metavar="REGEX",
        help="keep only groups (and findings) with a frame's function or the creator matching",
    )
    p.add_argument("--filter", dest="focus", type=_regex, help=argparse.SUPPRESS)
    p.add_argument(
        "--ignore",
        type=_regex,
        metavar="REGEX",
        help="drop groups (and findings) with a frame's function or the creator matching",
    )
    p.add_argument("--exclude", dest="ignore", type=_regex, help=argparse.SUPPRESS)


def _pager_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--no-pager",
        dest="pager",
        action="store_false",
        help="on a terminal, print a long text report directly instead of through "
        "$GRPROF_PAGER, $PAGER or 'less -FRX'",
    )


def _input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("input")
    src.add_argument(
        "--max-size",
        type=_size,
        default=DEFAULT_MAX_SIZE,
        metavar="SIZE",
        help=f"stop reading past this many (decompressed) bytes (default {human_size(DEFAULT_MAX_SIZE)})",
    )
    src.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="for URLs (default 30)"
    )
    _format_arg(
        src,
        "for services: the goroutine profile format to fetch; wins over a URL's ?debug=N "
        "(default: the URL's, else debug=2)",
    )


def _format_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """`--format`, the same for `analyze` and `watch` (grprof.sources.resolve_target)."""
    p.add_argument("--format", choices=FORMATS, metavar="debug=0|debug=1|debug=2", help=help)


def _detection_args(
    p: argparse.ArgumentParser, interval_help: str, interval_default: float | None = None
) -> None:
    det = p.add_argument_group("leak detection")
    det.add_argument(
        "--interval", type=_duration, default=interval_default, metavar="DURATION", help=interval_help
    )
    det.add_argument(
        "--fail-on",
        choices=("leak", "suspect", "inconclusive"),
        help="exit with status 1 when a finding of this verdict (or worse) exists: leak > suspect > "
        "inconclusive (growth seen in too few snapshots to judge; for CI on two snapshots)",
    )
    det.add_argument(
        "--source", metavar="DIR", help="the service's Go module: show and check the blocking code"
    )
    det.add_argument(
        "--rules", action="append", default=[], metavar="FILE", help="extra rule file (YAML), repeatable"
    )
    det.add_argument(
        "--sla", type=_duration, metavar="DURATION", help="the service's latency SLA, e.g. 200ms"
    )
    det.add_argument("--p95", type=_duration, metavar="DURATION", help="current p95 latency (static)")
    det.add_argument("--prometheus", metavar="URL", help="Prometheus to ask for the p95 (with --p95-query)")
    det.add_argument("--p95-query", metavar="PROMQL", help="PromQL returning the p95 latency in seconds")
    det.add_argument(
        "--details", type=_positive, default=5, metavar="N", help="findings explained in full (default 5)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with _broken_pipe_raises():
            status = _run(argv)
            sys.stdout.flush()  # inside the try: a reader that left shows up here, not at exit
        return status
    except GrprofError as e:
        print(f"grprof: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("grprof: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `grprof analyze x | head`: the reader took what it wanted and left. That is not an
        # error (status 0, like `seq 1000000 | head` under a shell that ignores SIGPIPE),
        # and stdout goes to /dev/null so the interpreter's final flush stays quiet.
        _stdout_to_devnull()
        return 0


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        return analyze(args)
    if args.command == "diff":
        return diff(args)
    if args.command == "watch":
        from grprof.cli_watch import watch

        return watch(args)
    if args.command == "serve":
        from grprof.cli_serve import serve

        return serve(args)
    if args.command == "rules":
        return _ops_rules.run(args)
    if args.command == "dashboard":
        return _ops_dashboard.run(args)
    return EXIT_BAD_INPUT


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextmanager
def _broken_pipe_raises() -> Iterator[None]:
    """Make rich raise BrokenPipeError (handled in `main`) instead of its own `SystemExit(1)`."""
    from rich.console import Console

    def on_broken_pipe(self: Console) -> None:
        self.quiet = True
        raise BrokenPipeError

    saved = Console.on_broken_pipe
    Console.on_broken_pipe = on_broken_pipe  # type: ignore[method-assign]
    try:
        yield
    finally:
        Console.on_broken_pipe = saved  # type: ignore[method-assign]


@contextmanager
def _progress(inp: Input, size: int | None) -> Iterator[Iterator[bytes]]:
    """Chunks of `inp`, with a progress bar on stderr for big inputs on a terminal."""
    if not sys.stderr.isatty() or (size is not None and size < (64 << 20)):
        yield inp.chunks()
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("[dim]reading[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(inp.name, total=size)

        def chunks() -> Iterator[bytes]:
            for c in inp.chunks():
                bar.advance(task, len(c))
                yield c

        yield chunks()


def warn(messages: Iterable[str]) -> None:
    """Each message as one `grprof: warning: ...` line on stderr: the run goes on."""
    for m in messages:
        print(f"grprof: warning: {m}", file=sys.stderr)


def input_source(text: str, fmt: str | None = None) -> str:
    """What `analyze` reads for an INPUT: `-`, an existing file, else a service or URL resolved
    to its goroutine profile (grprof.sources.resolve_target; debug=2 unless `fmt` or the URL
    says), else the path (which then fails as a missing file)."""
    if text == "-" or os.path.exists(text) or not looks_like_target(text):
        return text
    return resolve_target(text, fmt, default="debug=2").url


def load_inputs(
    inputs: Sequence[str], max_size: int, timeout: float, fmt: str | None = None
) -> list[Snapshot]:
    snaps: list[Snapshot] = []
    for text in inputs:
        src = input_source(text, fmt)
        inp = open_source(src, max_size=max_size, timeout=timeout)
        size = os.path.getsize(src) if src != "-" and os.path.isfile(src) else None
        with _progress(inp, size) as chunks:
            read = read_input(inp, chunks)
        for snap in read:  # what reading a pasted or logged dump took: splits, prefixes stripped
            warn(snap.notes)
        snaps.extend(read)
    return snaps


def detection_options(args: argparse.Namespace, *, interval: bool = True) -> Options:
    from grprof.detect.detector import Options
    from grprof.detect.rules import load_rules
    from grprof.detect.sla import SLA

    sla = None
    if args.sla is not None and args.p95 is None and not args.prometheus:
        raise UsageError(
            "--sla needs the current p95: --p95 DURATION, or --prometheus URL with --p95-query PROMQL"
        )
    if args.sla is not None:
        try:
            sla = SLA(latency=args.sla, p95=args.p95, prometheus=args.prometheus, query=args.p95_query)
        except ValueError as e:
            raise UsageError(f"--sla: {e}") from None
    elif args.p95 is not None or args.prometheus or args.p95_query:
        raise UsageError("--p95, --prometheus and --p95-query need --sla (the latency target)")
    if args.prometheus and not args.p95_query:
        raise UsageError("--prometheus needs --p95-query (PromQL returning the p95 in seconds)")
    if args.source and not os.path.isdir(args.source):
        raise UsageError(f"--source {args.source}: not a directory")
    return Options(
        interval=args.interval if interval else None,
        sla=sla,
        rules=load_rules(args.rules),
        source_dir=Path(args.source) if args.source else None,
    )


def analyze(args: argparse.Namespace) -> int:
    from grprof.detect.detector import detect
    from grprof.report.model import GroupFilter, build_report

    _gc.tune()  # a short-lived process holding many parsed stacks: see grprof/_gc.py
    opts = detection_options(args)
    snaps = load_inputs(args.inputs, args.max_size, args.timeout, args.format)
    detection = detect(snaps, opts)
    warn(detection.warnings)
    focus = Focus(args.focus, args.ignore)
    if focus.active:  # the findings on the groups --focus/--ignore leave out go too (and --fail-on)
        detection = replace(detection, findings=focus.findings(detection.findings))
    similarity: Similarity = args.similarity
    flt = GroupFilter(args.focus, args.ignore, max(args.min_count, 1))
    report = build_report(snaps, similarity, flt, detection)
    if args.html:
        from grprof.report import html

        if not _write_html(args.html, lambda: html.render(report), "HTML report"):
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


def _write_html(path: str, render: Callable[[], str], what: str) -> bool:
    try:
        page = render()
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        print(f"grprof: {path}: cannot write the {what}: {e.strerror or e}", file=sys.stderr)
        return False
    return True


def diff_side(text: str, args: argparse.Namespace) -> Snapshot:
    """One side of `grprof diff`: what `analyze` reads for the input; of a file holding several
    dumps (a log with two panics), the last."""
    snaps = load_inputs([text], args.max_size, args.timeout, args.format)
    if len(snaps) > 1:
        warn([f"{text} holds {len(snaps)} dumps: comparing the last, {snaps[-1].source}"])
    return snaps[-1]


def diff(args: argparse.Namespace) -> int:
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

        if not _write_html(args.html, lambda: diff_html.render(d), "HTML diff"):
            return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps(d.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        from grprof.report import diff as diff_text

        with output_console(args.pager) as console:
            diff_text.render(d, console, top=args.top)
            if args.html:
                console.print(f"[dim]HTML diff written to {args.html}[/]")
    return fail_status(d.findings, args.fail_on)


# -- the pager -------------------------------------------------------------------------------

DEFAULT_PAGER = "less -FRX"


def pager_command() -> list[str] | None:
    """The pager to run, as git picks it: `$GRPROF_PAGER`, else `$PAGER`, else `less -FRX`;
    None when it is empty or `cat`, or its program is not installed (print directly then)."""
    value = os.environ.get("GRPROF_PAGER")
    if value is None:
        value = os.environ.get("PAGER")
    if value is None:
        value = DEFAULT_PAGER
    try:
        argv = shlex.split(value)
    except ValueError:
        return None
    if not argv or argv == ["cat"] or shutil.which(argv[0]) is None:
        return None
    return argv


@contextmanager
def output_console(page: bool = True) -> Iterator[Console]:
    """The console a text report prints to. On a terminal (and unless `--no-pager`), the report
    is rendered first and, when taller than the terminal, piped through the pager (as git does);
    elsewhere (a pipe, a file, CI) it goes straight to standard output."""
    from rich.console import Console

    from grprof.report import text

    if not page or not sys.stdout.isatty():
        yield text.make_console()
        return
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        size = os.terminal_size((80, 24))
    buf = io.StringIO()
    yield Console(file=buf, force_terminal=True, width=size.columns, highlight=False)
    out = buf.getvalue()
    cmd = pager_command() if out.count("\n") >= size.lines else None
    if cmd is None:
        sys.stdout.write(out)
        return
    _page(cmd, out)


def _page(cmd: list[str], out: str) -> None:
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git: quit if one screen, keep colours, no screen clearing
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env)
    except OSError:
        sys.stdout.write(out)
        return
    # Ctrl-C belongs to the pager while it runs (less uses it to stop a search), not to grprof.
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(out.encode(sys.stdout.encoding or "utf-8", "replace"))
            proc.stdin.close()
        except BrokenPipeError:  # the reader quit the pager before the end: fine
            pass
        proc.wait()
    finally:
        signal.signal(signal.SIGINT, saved)


def fail_status(findings: Sequence[Finding], fail_on: str | None) -> int:
    """1 when `--fail-on` asks for it: a verdict fails with every stronger one (`VERDICTS` order)."""
    from grprof.detect.model import VERDICTS

    if fail_on is None or fail_on not in VERDICTS:
        return 0
    verdicts = VERDICTS[: VERDICTS.index(fail_on) + 1]
    return EXIT_FINDINGS if any(f.verdict in verdicts for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
