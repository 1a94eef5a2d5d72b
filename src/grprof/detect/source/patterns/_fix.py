"""Fixes shared by the patterns: a channel given a buffer, a send given a way out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grprof.detect.source._files import _GoFile
from grprof.detect.source._syntax import (
    _args,
    _Chan,
    _text,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def buffer_suggestion(src: _GoFile, ch: _Chan, send: Node, size: int, why: str) -> str:
    """`why`, the `make` line rewritten with a buffer of `size`, and a send with a way out."""
    make = ch.make
    row = make.start_point.row
    line_start = make.start_byte - make.start_point.column
    line_end = line_start + len(src.lines[row])
    chan_type = _text(_args(make)[0])
    fixed = f"make({chan_type}, {size})"
    if make.end_point.row == row:
        before = src.data[line_start : make.start_byte].decode("utf-8", "replace")
        line = (before + fixed + src.data[make.end_byte : line_end].decode("utf-8", "replace")).strip()
    else:
        line = f"{ch.name} := {fixed}"
    return (
        f"{why}:\n"
        f"    {src.rel}:{row + 1}: {line.rstrip()}\n"
        f"or send with a way out:\n"
        f"    select {{\n    case {_text(send)}:\n"
        f"    case <-ctx.Done(): // or default: to drop the value\n    }}"
    )
