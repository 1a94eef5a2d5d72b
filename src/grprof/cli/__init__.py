"""The `grprof` command line: the parser, and the commands it dispatches to.

Every command is a module with `add_parser(subparsers)` (its subcommand and options) and
`run(args) -> int` (the exit status); `COMMANDS` lists them, in the order `grprof --help`
shows them, with their help line and a loader, and is the one place a new command is added.
A run imports only the module of the command it runs (`--help` and `--version` none). What
the commands share (exit codes, `UsageError`, the one-line errors, option groups, the pager,
broken pipes) is in `grprof.cli._common`, below them: no command imports this module back.

Exit status (docs/cli.md): 0 success, also when the reader of stdout leaves early (broken pipe);
1 reserved for `--fail-on` (findings); 2 bad input or usage, as one `grprof: ...` line on stderr;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from grprof import __version__
from grprof.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Parser,
    UsageError,
    broken_pipe_raises,
    detection_options,
    fail_status,
    input_source,
    load_inputs,
    run_guarded,
)


class Command(Protocol):
    """A command module: its subcommand's parser, and what it runs."""

    def add_parser(self, subparsers: Any, /) -> object: ...

    def run(self, args: argparse.Namespace, /) -> int: ...


class Entry(NamedTuple):
    """A command as `grprof --help` lists it, and how to import its module: only the command
    that runs is imported (start-up time), the others are listed by name and help alone.
    `name`, `aliases` and `help` are what the module's `add_parser` registers (a test holds
    them equal)."""

    name: str
    help: str
    load: Callable[[], Command]
    aliases: tuple[str, ...] = ()


def _analyze() -> Command:
    from grprof.cli import analyze

    return analyze


def _diff() -> Command:
    from grprof.cli import diff

    return diff


def _watch() -> Command:
    from grprof.cli import watch

    return watch


def _serve() -> Command:
    from grprof.cli import serve

    return serve


def _ops_rules() -> Command:
    from grprof.ops import rules

    return rules


def _ops_dashboard() -> Command:
    from grprof.ops import dashboard

    return dashboard


def _gate() -> Command:
    from grprof.gate import cli

    return cli


def _canary() -> Command:
    from grprof.canary import cli

    return cli


COMMANDS: Sequence[Entry] = (
    Entry("analyze", "read goroutine dumps or profiles and report their goroutine groups", _analyze),
    Entry("diff", "compare two snapshots group by group: new, vanished, grown, shrunk, with verdicts", _diff),
    Entry("watch", "poll a live service and report goroutine leaks as they appear", _watch),
    Entry(
        "serve",
        "scrape many services continuously: history, detection, an API and Prometheus metrics",
        _serve,
    ),
    Entry("rules", "write Prometheus alerting and recording rules for grprof's metrics", _ops_rules),
    Entry("dashboard", "write a Grafana dashboard (JSON) for grprof's metrics", _ops_dashboard),
    Entry(
        "gate",
        "fail CI on new goroutine leaks (leakcheck directory or a service), against a baseline",
        _gate,
    ),
    Entry(
        "canary",
        "judge a canary's goroutines against its baseline (pass/marginal/fail, a 0-100 score)",
        _canary,
    ),
    # New commands go here: an entry whose loader imports a module with `add_parser(subparsers)`
    # and `run(args) -> int`; nothing else to change.
)


def _version() -> str:
    from grprof._rust import native  # what formats.traceback.native_scanner() asks

    scanner = "native scanner" if native("Scanner") is not None else "pure Python scanner (no native scanner)"
    return f"grprof {__version__} ({scanner})"


class _VersionAction(argparse._VersionAction):
    """`--version`, its text computed when it is asked for (it imports the scanner)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        self.version = _version()
        super().__call__(parser, *args, **kwargs)


def command_name(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (its first argument that is not an option), or None."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None, *, all_commands: bool = True) -> argparse.ArgumentParser:
    """The `grprof` parser. With `all_commands=False` only the module of `command` (a name
    or alias) is imported and given its options; the other commands are listed (name, aliases,
    help) but not loaded, which is all `--help` and the parse of one command need."""
    p = Parser(prog="grprof", description="Find, explain and watch goroutine leaks in Go services.")
    p.add_argument("--version", action=_VersionAction, version=f"grprof {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for entry in COMMANDS:
        if not all_commands and command not in (entry.name, *entry.aliases):
            sub.add_parser(entry.name, aliases=list(entry.aliases), help=entry.help)
            continue
        module = entry.load()
        before = set(sub.choices)
        module.add_parser(sub)
        for name in sub.choices.keys() - before:  # the subcommand (and its aliases) it added
            sub.choices[name].set_defaults(_run=module.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)

    def run() -> int:
        args = build_parser(command_name(args_list), all_commands=False).parse_args(args_list)
        command: Callable[[argparse.Namespace], int] = args._run
        with broken_pipe_raises():  # rich is imported for a command, not for `--help`
            return command(args)

    return run_guarded(run, rich=False)


__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "Command",
    "Entry",
    "UsageError",
    "build_parser",
    "command_name",
    "detection_options",
    "fail_status",
    "input_source",
    "load_inputs",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
