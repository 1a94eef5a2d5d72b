"""Source confirmation (`--source DIR`): open the service's Go source at a group's blocking
statement, show it with the `go` statement that spawned the goroutine, check it against known
leak patterns, and say what the goroutine waits on (a context, a ticker, a timer callback or a
plain channel), all with tree-sitter-go.

Everything here is best effort. A file that cannot be found, read or parsed gives None, or a
report without a pattern; never an exception. A pattern is reported only when the code shows
it clearly: a missed pattern costs a line of explanation, a wrong one costs the user's trust.

    confirm(source_dir, group)   # SourceReport: the snippet, the `go` statement, a leak pattern
    wait_at(source_dir, group)   # SourceWait: what the blocking statement waits on, its category
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grprof.detect.model import SourceReport
from grprof.detect.source._files import (
    _GENERIC_ARGS,
    MAX_FILE_SIZE,
    MAX_WALK_FILES,
    _GoFile,
    _language,
    _open,
    resolve_file,
)
from grprof.detect.source._files import _parse_file as _parse_file
from grprof.detect.source._patterns import PATTERN_CATEGORIES, PATTERNS, _match
from grprof.detect.source._syntax import (
    _frame_statement,
    _outer_decl,
    _Site,
    _statement_at,
    _text,
    _walk,
)
from grprof.detect.source._waits import WAIT_CATEGORIES, SourceWait, wait_at
from grprof.model import Frame, Group

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = [
    "MAX_FILE_SIZE",
    "MAX_WALK_FILES",
    "PATTERNS",
    "PATTERN_CATEGORIES",
    "WAIT_CATEGORIES",
    "SourceWait",
    "confirm",
    "resolve_file",
    "wait_at",
]

# At most this many lines of a long statement (a `for` loop) around the blocking line.
_STATEMENT_SPAN = 6


# ---------------------------------------------------------------------------------------------
# Public entry point


def confirm(source_dir: Path, group: Group, *, context_lines: int = 3) -> SourceReport | None:
    """Read `group.site`'s statement under `source_dir` and check it for a known leak pattern.

    None when the site's file is not under `source_dir` (or cannot be read, or is shorter
    than the frame's line); a report with `pattern=None` when the code shows no known pattern.
    """
    site = group.site
    if site is None or site.line <= 0 or _language() is None:
        return None
    try:
        return _report(Path(source_dir), group, site, context_lines)
    except Exception:
        # Reading someone's source tree is best effort: whatever it holds, the analysis goes on.
        return None


def _report(root: Path, group: Group, site: Frame, context_lines: int) -> SourceReport | None:
    src = _open(root, site)
    if src is None or site.line > len(src.lines):
        return None
    row = site.line - 1
    stmt, func = _frame_statement(src, site)
    pattern, suggestion = None, None
    # Patterns read the whole outer function: a syntax error anywhere in it voids them.
    if stmt is not None and func is not None and not (_outer_decl(func) or func).has_error:
        try:
            pattern, suggestion = _match(_Site(root, src, stmt, func, group)) or (None, None)
        except Exception:
            # A bug in one heuristic must not lose the snippet, nor stop a report of 100 groups.
            pattern, suggestion = None, None
    return SourceReport(
        file=src.rel,
        line=site.line,
        function=_function_name(func) if func is not None else "",
        snippet=_snippet(src, row, stmt, func, max(0, context_lines)),
        go_statement=_go_statement(root, group.created_by),
        pattern=pattern,
        confirmed=pattern is not None,
        suggestion=suggestion,
    )


# ---------------------------------------------------------------------------------------------
# Presentation


def _function_name(func: Node) -> str:
    """`handler`, `(*Server).handle`, `func literal in handler` (as written in the source)."""
    if func.type == "func_literal":
        outer = _outer_decl(func)
        return "func literal" + (f" in {_function_name(outer)}" if outer is not None else "")
    name = _text(func.child_by_field_name("name"))
    if func.type == "method_declaration":
        recv = func.child_by_field_name("receiver")
        decl = recv.named_children[0] if recv is not None and recv.named_children else None
        rtype = _GENERIC_ARGS.sub("", _text(None if decl is None else decl.child_by_field_name("type")))
        return f"({rtype}).{name}" if rtype.startswith("*") else f"{rtype}.{name}"
    return name


def _snippet(src: _GoFile, row: int, stmt: Node | None, func: Node | None, context: int) -> str:
    """The statement and `context` lines around it (within its function), numbered, `>` on
    the blocking line."""
    first, last = row, row
    if stmt is not None:
        first = max(min(stmt.start_point.row, row), row - _STATEMENT_SPAN)
        last = min(max(stmt.end_point.row, row), row + _STATEMENT_SPAN)
    lo, hi = 0, len(src.lines) - 1
    decl = None if func is None else (_outer_decl(func) or func)
    if decl is not None:
        lo, hi = max(lo, decl.start_point.row), min(hi, decl.end_point.row)
    start, end = max(lo, min(first, row) - context), min(hi, max(last, row) + context)
    texts = [src.lines[i].decode("utf-8", "replace").expandtabs(4).rstrip() for i in range(start, end + 1)]
    indent = min((len(t) - len(t.lstrip()) for t in texts if t.strip()), default=0)
    width = len(str(end + 1))
    return "\n".join(
        f"{'>' if start + i == row else ' '} {start + i + 1:>{width}} | {t[indent:]}".rstrip()
        for i, t in enumerate(texts)
    )


def _go_statement(root: Path, created_by: Frame | None) -> str | None:
    """`file.go:26: go func() {`: the first line of the `go` statement at created_by's line."""
    if created_by is None or created_by.line <= 0:
        return None
    src = _open(root, created_by)
    if src is None or created_by.line > len(src.lines):
        return None
    row = created_by.line - 1
    stmt = _statement_at(src, row)
    if stmt is None:
        return None
    if stmt.type != "go_statement":
        stmt = next((n for n in _walk(stmt) if n.type == "go_statement" and n.start_point.row == row), None)
        if stmt is None:
            return None
    text = src.lines[stmt.start_point.row].decode("utf-8", "replace").strip()
    return f"{src.rel}:{stmt.start_point.row + 1}: {text}"
