"""The `grprof` command line: the parser, and the commands it dispatches to.

Every command is a module with `add_parser(subparsers)` (its subcommand and options) and
`run(args) -> int` (the exit status); `COMMANDS` lists them, in the order `grprof --help`
shows them, and is the one place a new command is added. What the commands share (exit codes,
`UsageError`, the one-line errors, option groups, the pager, broken pipes) is in
`grprof.cli._common`, below them: no command imports this module back.

Exit status (docs/cli.md): 0 success, also when the reader of stdout leaves early (broken pipe);
1 reserved for `--fail-on` (findings); 2 bad input or usage, as one `grprof: ...` line on stderr;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from grprof import __version__
from grprof.canary import cli as canary_cli
from grprof.cli import analyze, diff, serve, watch
from grprof.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Parser,
    UsageError,
    detection_options,
    fail_status,
    input_source,
    load_inputs,
    run_guarded,
)
from grprof.gate import cli as gate_cli
from grprof.ops import dashboard as ops_dashboard
from grprof.ops import rules as ops_rules


class Command(Protocol):
    """A command module: its subcommand's parser, and what it runs."""

    def add_parser(self, subparsers: Any, /) -> object: ...

    def run(self, args: argparse.Namespace, /) -> int: ...


COMMANDS: Sequence[Command] = (
    analyze,
    diff,
    watch,
    serve,
    ops_rules,
    ops_dashboard,
    gate_cli,
    canary_cli,
    # New commands go here: a module with `add_parser(subparsers)` and `run(args) -> int`;
    # nothing else to change.
)


def _version() -> str:
    from grprof.formats.traceback import native_scanner

    native = "native scanner" if native_scanner() is not None else "pure Python scanner (no native scanner)"
    return f"grprof {__version__} ({native})"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="grprof", description="Find, explain and watch goroutine leaks in Go services.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        before = set(sub.choices)
        command.add_parser(sub)
        for name in sub.choices.keys() - before:  # the subcommand (and its aliases) it added
            sub.choices[name].set_defaults(_run=command.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        command: Callable[[argparse.Namespace], int] = args._run
        return command(args)

    return run_guarded(run)


__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "Command",
    "UsageError",
    "build_parser",
    "detection_options",
    "fail_status",
    "input_source",
    "load_inputs",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
