"""What every command shares: exit codes, the one-line errors, option types and groups, the
inputs of `analyze` and `diff`, detection options, `--fail-on`, the pager and broken pipes.

Exit status (docs/cli.md): 0 success, also when the reader of stdout leaves early (broken pipe);
1 reserved for `--fail-on` (findings); 2 bad input or usage, as one `grprof: ...` line on stderr;
130 interrupted. Nothing here imports a command module or the parser (`grprof.cli`): the
commands sit on top of this module, and `grprof.cli` on top of them.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from grprof.errors import GrprofError
from grprof.units import human_size, parse_duration, parse_size

# Reading inputs (grprof.sources, grprof.loader) is imported by the functions that read them:
# `grprof --help` and commands that take no input do not pay for it.
if TYPE_CHECKING:
    from rich.console import Console

    from grprof.detect.detector import Options
    from grprof.detect.model import Finding
    from grprof.formats.memstats import RuntimeStats
    from grprof.model import Snapshot
    from grprof.sources import Input

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(GrprofError):
    """Options that do not go together."""


def error(message: object) -> None:
    """The one line every error is: `grprof: MESSAGE` on standard error."""
    print(f"grprof: {message}", file=sys.stderr)


def warn(messages: Iterable[str]) -> None:
    """Each message as one `grprof: warning: ...` line on stderr: the run goes on."""
    for m in messages:
        print(f"grprof: warning: {m}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """The parser of `grprof` and (as their parent's class) of every subcommand."""

    def error(self, message: str) -> NoReturn:
        # One line, like every other error; the usage is one `--help` away.
        self.exit(EXIT_BAD_INPUT, f"grprof: {message} (see '{self.prog} --help')\n")


# -- option types ------------------------------------------------------------------------------


def regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {e}") from None


def size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return n


# -- option groups -----------------------------------------------------------------------------

ArgTarget = argparse.ArgumentParser | argparse._ArgumentGroup


def focus_args(p: ArgTarget) -> None:
    """`--focus`/`--ignore`, the same for `analyze`, `diff` and `watch`; `--filter`/`--exclude`
    are their older names, kept working and hidden."""
    p.add_argument(
        "--focus",
        type=regex,
        metavar="REGEX",
        help="keep only groups (and findings) with a frame's function or the creator matching",
    )
    p.add_argument("--filter", dest="focus", type=regex, help=argparse.SUPPRESS)
    p.add_argument(
        "--ignore",
        type=regex,
        metavar="REGEX",
        help="drop groups (and findings) with a frame's function or the creator matching",
    )
    p.add_argument("--exclude", dest="ignore", type=regex, help=argparse.SUPPRESS)


def pager_arg(p: ArgTarget) -> None:
    p.add_argument(
        "--no-pager",
        dest="pager",
        action="store_false",
        help="on a terminal, print a long text report directly instead of through "
        "$GRPROF_PAGER, $PAGER or 'less -FRX'",
    )


def input_args(p: argparse.ArgumentParser) -> None:
    from grprof.sources import DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT

    src = p.add_argument_group("input")
    src.add_argument(
        "--max-size",
        type=size,
        default=DEFAULT_MAX_SIZE,
        metavar="SIZE",
        help=f"stop reading past this many (decompressed) bytes (default {human_size(DEFAULT_MAX_SIZE)})",
    )
    src.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="for URLs (default 30)"
    )
    format_arg(
        src,
        "for services: the goroutine profile format to fetch; wins over a URL's ?debug=N "
        "(default: the URL's, else debug=2)",
    )


def format_arg(p: ArgTarget, help: str) -> None:
    """`--format`, the same for `analyze` and `watch` (grprof.sources.resolve_target)."""
    from grprof.collect.policy import FORMATS

    p.add_argument("--format", choices=FORMATS, metavar="debug=0|debug=1|debug=2", help=help)


def detection_args(
    p: argparse.ArgumentParser, interval_help: str, interval_default: float | None = None
) -> None:
    det = p.add_argument_group("leak detection")
    det.add_argument(
        "--interval", type=duration, default=interval_default, metavar="DURATION", help=interval_help
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
        "--owners",
        metavar="FILE",
        help="who owns each finding: YAML with `label`, `prefixes` and `unowned` (docs/owners.md); "
        "with --source, the checkout's CODEOWNERS too",
    )
    det.add_argument(
        "--redact",
        nargs="?",
        const="",
        metavar="FILE",
        help="replace sensitive label values (e-mails, tokens, ids) by <redacted:KIND> before "
        "anything is shown; FILE: YAML with presets, rules, keep, drop, replace (docs/owners.md)",
    )
    det.add_argument(
        "--memory-limit",
        type=size,
        metavar="SIZE",
        help="the service's memory limit, e.g. 512MiB: findings say when their stack growth reaches it",
    )
    det.add_argument(
        "--memstats",
        metavar="FILE|URL",
        help="the service's own stack figures, taken with the latest dump: /debug/pprof/heap?debug=1 "
        "or its Prometheus /metrics (client_golang); cost per goroutine from the runtime instead of "
        "the 2 KiB lower bound, and GOMEMLIMIT when --memory-limit is not given (docs/owners.md#cost)",
    )
    det.add_argument(
        "--rules", action="append", default=[], metavar="FILE", help="extra rule file (YAML), repeatable"
    )
    det.add_argument("--sla", type=duration, metavar="DURATION", help="the service's latency SLA, e.g. 200ms")
    det.add_argument("--p95", type=duration, metavar="DURATION", help="current p95 latency (static)")
    det.add_argument("--prometheus", metavar="URL", help="Prometheus to ask for the p95 (with --p95-query)")
    det.add_argument("--p95-query", metavar="PROMQL", help="PromQL returning the p95 latency in seconds")
    det.add_argument(
        "--details", type=positive, default=5, metavar="N", help="findings explained in full (default 5)"
    )


def detection_options(args: argparse.Namespace, *, interval: bool = True) -> Options:
    """The detector's options from `detection_args`' flags; `UsageError` for ones that do not
    go together."""
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
    from grprof.detect.owners import Owners, load_owners_file

    source_dir = Path(args.source) if args.source else None
    owners_file = getattr(args, "owners", None)
    conf = load_owners_file(owners_file) if owners_file else None
    return Options(
        interval=args.interval if interval else None,
        sla=sla,
        rules=load_rules(args.rules),
        source_dir=source_dir,
        owners=Owners.load(conf, source_dir),
        memory_limit=getattr(args, "memory_limit", None),
        runtime_stats=_runtime_stats(stats) if (stats := getattr(args, "memstats", None)) else None,
    )


def _runtime_stats(source: str) -> RuntimeStats:
    """`--memstats`: a heap?debug=1 profile or a /metrics page, from a file or a URL."""
    from grprof.formats.memstats import parse_runtime_stats
    from grprof.sources import open_source, redact

    name = redact(source)
    return parse_runtime_stats(open_source(source, name=name, max_size=256 << 20).read(), name)


def fail_status(findings: Sequence[Finding], fail_on: str | None) -> int:
    """1 when `--fail-on` asks for it: a verdict fails with every stronger one (`VERDICTS` order)."""
    from grprof.detect.model import VERDICTS

    if fail_on is None or fail_on not in VERDICTS:
        return EXIT_OK
    verdicts = VERDICTS[: VERDICTS.index(fail_on) + 1]
    return EXIT_FINDINGS if any(f.verdict in verdicts for f in findings) else EXIT_OK


# -- inputs (analyze, diff) --------------------------------------------------------------------


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


def input_source(text: str, fmt: str | None = None) -> str:
    """What `analyze` reads for an INPUT: `-`, an existing file, else a service or URL resolved
    to its goroutine profile (grprof.sources.resolve_target; debug=2 unless `fmt` or the URL
    says), else the path (which then fails as a missing file)."""
    from grprof.sources import looks_like_target, resolve_target

    if text == "-" or os.path.exists(text) or not looks_like_target(text):
        return text
    return resolve_target(text, fmt, default="debug=2").url


def load_inputs(
    inputs: Sequence[str], max_size: int, timeout: float, fmt: str | None = None
) -> list[Snapshot]:
    from grprof.loader import read_input
    from grprof.sources import open_source

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


def write_html(path: str, render: Callable[[], str], what: str) -> bool:
    """Write the page `render` makes to `path`; False (and the one line) when it cannot."""
    try:
        page = render()
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        error(f"{path}: cannot write the {what}: {e.strerror or e}")
        return False
    return True


# -- the pager ---------------------------------------------------------------------------------

DEFAULT_PAGER = "less -FRX"


def pager_command() -> list[str] | None:
    """The pager to run, as git picks it: `$GRPROF_PAGER`, else `$PAGER`, else `less -FRX`;
    None when it is empty or `cat`, or its program is not installed (print directly then)."""
    import shlex  # the pager's modules are imported when a report may be paged
    import shutil

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
    import subprocess

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


# -- running a command: errors, Ctrl-C, broken pipes -------------------------------------------


def run_guarded(run: Callable[[], int], *, rich: bool = True) -> int:
    """`run()`'s status, with every way a command ends mapped to the exit codes above: a
    `GrprofError` is one line and status 2, Ctrl-C 130, a reader that left (broken pipe) 0.
    `rich=False`: `run` enters `broken_pipe_raises` itself (once it knows it needs rich)."""
    try:
        with broken_pipe_raises() if rich else nullcontext():
            status = run()
            sys.stdout.flush()  # inside the try: a reader that left shows up here, not at exit
        return status
    except GrprofError as e:
        error(e)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `grprof analyze x | head`: the reader took what it wanted and left. That is not an
        # error (status 0, like `seq 1000000 | head` under a shell that ignores SIGPIPE),
        # and stdout goes to /dev/null so the interpreter's final flush stays quiet.
        stdout_to_devnull()
        return EXIT_OK


def stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextmanager
def broken_pipe_raises() -> Iterator[None]:
    """Make rich raise BrokenPipeError (handled in `run_guarded`) instead of its own `SystemExit(1)`."""
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
