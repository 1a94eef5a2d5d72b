"""Command line: a thin layer over `grprof.load_all` and the reports.

Exit status: 0 success, 1 reserved for `--fail-on` (findings), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from grprof import __version__
from grprof.aggregate import SIMILARITIES, Similarity
from grprof.errors import GrprofError
from grprof.loader import read_input
from grprof.model import Snapshot
from grprof.sources import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, Input, human_size, open_source, parse_size

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"grprof: {message}\n")


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


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="grprof", description="Find, explain and watch goroutine leaks in Go services.")
    p.add_argument("--version", action="version", version=f"grprof {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    a = sub.add_parser(
        "analyze",
        help="read goroutine dumps or profiles and report their goroutine groups",
        description="Read goroutine dumps (debug=2 text, panics, SIGQUIT tracebacks, logs), debug=1 "
        "text or debug=0 pprof profiles, from files, '-' (stdin) or http(s) URLs, and report the groups.",
    )
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="file, '-' for stdin, or http(s) URL")
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
    grp.add_argument("--filter", type=_regex, metavar="REGEX", help="keep groups with a function matching")
    grp.add_argument("--exclude", type=_regex, metavar="REGEX", help="drop groups with a function matching")
    grp.add_argument(
        "--min-count", type=_positive, default=1, metavar="N", help="drop groups under N goroutines"
    )
    src = a.add_argument_group("input")
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "analyze":
            return analyze(args)
    except GrprofError as e:
        print(f"grprof: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("grprof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `grprof analyze x | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return EXIT_BAD_INPUT


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


def load_inputs(inputs: Sequence[str], max_size: int, timeout: float) -> list[Snapshot]:
    snaps: list[Snapshot] = []
    for src in inputs:
        inp = open_source(src, max_size=max_size, timeout=timeout)
        size = os.path.getsize(src) if src != "-" and os.path.isfile(src) else None
        with _progress(inp, size) as chunks:
            snaps.extend(read_input(inp, chunks))
    return snaps


def analyze(args: argparse.Namespace) -> int:
    from grprof.report.model import GroupFilter, build_report

    snaps = load_inputs(args.inputs, args.max_size, args.timeout)
    similarity: Similarity = args.similarity
    report = build_report(snaps, similarity, GroupFilter(args.filter, args.exclude, max(args.min_count, 1)))
    if args.html:
        from grprof.report import html

        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(html.render(report))
        except OSError as e:
            print(f"grprof: {args.html}: cannot write the HTML report: {e.strerror or e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        from grprof.report import jsonout

        sys.stdout.write(jsonout.render(report))
    else:
        from grprof.report import text

        console = text.make_console()
        text.render(report, console, top=args.top, stacks=args.stacks, max_frames=args.frames)
        if args.html:
            console.print(f"[dim]HTML report written to {args.html}[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
