"""`python -m grprof.gate [gate] ...`: the gate subcommand alone, until `grprof gate` is wired
(a leading `gate` is optional, so `python -m grprof.gate` can stand in for `grprof`)."""

from __future__ import annotations

import argparse
import sys
from typing import cast

from grprof.gate.cli import EXIT_BAD_INPUT, add_parser, run


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"grprof: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="grprof")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_parser(cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gate"]:  # `python -m grprof.gate gate ...` reads as `grprof gate ...`
        argv = argv[1:]
    args = parser.parse_args(["gate", *argv])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
