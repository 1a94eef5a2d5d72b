"""go.uber.org/goleak reports: `found unexpected goroutines:` and the goroutines it lists.

goleak (`goleak.VerifyNone(t)`, `goleak.VerifyTestMain(m)`, `goleak.Find()`) prints each
leaked goroutine as

    [Goroutine 21 in state chan receive, with main.worker on top of the stack:
    main.worker(...)
        /src/x_test.go:22
    created by main.Leak in goroutine 20
        /src/x_test.go:49 +0x187
     Goroutine 22 in state select, with ...

(`fmt.Sprint` of a slice of stacks: `[` before the first, a space before each next one, `]`
on a line of its own after the last), inside `go test` output where `t.Error` indents it:
the stack below each line is the runtime's traceback text without its `goroutine N [...]:`
line, whose bracket goleak gives as the state. `convert` puts those lines back and returns
ordinary traceback text, which `grprof.formats.traceback` parses like any dump; every
report of the input becomes one snapshot, a goroutine that several checks of one test
binary report (a later test sees the leaks of an earlier one) counted once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = b"found unexpected goroutines:"
_HEAD = re.compile(
    rb"^(?P<indent>[ \t]*)(?P<open>[\[ ])Goroutine (?P<id>\d+) in state (?P<state>.*),"
    rb" with (?P<top>\S+) on top of the stack:\r?$"
)
# The test a report belongs to: `go test -v` names it before its output, plain `go test`
# prints `--- FAIL: TestX` before it; VerifyTestMain reports after every test passed.
_TEST = re.compile(rb"^\s*(?:=== (?:RUN|CONT|NAME) +|--- FAIL: )(?P<name>\S+)")
_TESTMAIN = b"goleak: Errors on successful test run: "
# `FAIL\tpkg\t0.65s`, `ok  \tpkg\t0.1s`: the end of one test binary's output.
_PACKAGE = re.compile(rb"^(?:FAIL|ok  )\t(?P<pkg>\S+)(?:\t|$)")
_LABELS_AFTER = re.compile(r"\] \{")


def detect(data: bytes) -> bool:
    """Whether `data` (an input's first bytes) holds a goleak report."""
    i = data.find(MARKER)
    return i >= 0 and re.search(rb"[\[ ]Goroutine \d+ in state ", data[i : i + 4096]) is not None


@dataclass
class _Report:
    test: str
    ids: list[int] = field(default_factory=list)
    repeated: int = 0
    package: str = ""


def convert(text: bytes) -> tuple[bytes, list[str]]:
    """The goroutines of every goleak report in `text` as traceback text, and notes naming
    the reports (test, package, how many goroutines) for the user. (b"", []) without one."""
    lines = text.split(b"\n")
    out: list[bytes] = []
    reports: list[_Report] = []
    seen: set[tuple[int, int]] = set()  # (test binary, goroutine id)
    binary = 0
    test = ""
    i = 0
    while i < len(lines):
        ln = lines[i]
        m = _TEST.match(ln)
        if m:
            test = m.group("name").decode("utf-8", "replace")
        elif _PACKAGE.match(ln):
            pkg = _PACKAGE.match(ln)
            assert pkg is not None
            for r in reports:
                r.package = r.package or pkg.group("pkg").decode("utf-8", "replace")
            binary += 1
            test = ""
        if MARKER not in ln:
            i += 1
            continue
        name = "TestMain (VerifyTestMain)" if _TESTMAIN in ln else (test or "?")
        report = _Report(name)
        i += 1
        indent: bytes | None = None
        keep = False
        while i < len(lines):
            ln = lines[i].rstrip(b"\r")
            h = _HEAD.match(ln)
            if (
                h
                and (indent is None or h.group("indent") == indent)
                and (h.group("open") == b"[") == (indent is None)
            ):
                indent = h.group("indent")
                gid = int(h.group("id"))
                keep = (binary, gid) not in seen
                if keep:
                    seen.add((binary, gid))
                    report.ids.append(gid)
                    if out:
                        out.append(b"")
                    out.append(b"goroutine %d [%s:" % (gid, _bracket(h.group("state"))))
                else:
                    report.repeated += 1
                i += 1
                continue
            if indent is not None and ln == indent + b"]":
                i += 1
                break
            if indent is None or not ln.startswith(indent):
                break
            if keep:
                out.append(ln[len(indent) :])
            i += 1
        if indent is not None:
            reports.append(report)
    if not reports:
        return b"", []
    notes = []
    for r in reports:
        where = f" in {r.package}" if r.package else ""
        n = len(r.ids) + r.repeated
        again = f", {r.repeated} of them reported before and counted once" if r.repeated else ""
        notes.append(f"goleak: {r.test}{where} found {n} unexpected goroutine{'s' * (n != 1)}{again}")
    return b"\n".join(out) + b"\n", notes


def _bracket(state: bytes) -> bytes:
    """The header's bracket again: goleak gives what was between `[` and `]:`; with Go 1.27
    labels after the bracket (`[chan receive] {k: v}:`) it kept the `]` (it trims only a
    trailing one)."""
    s = state.decode("utf-8", "replace")
    return state if _LABELS_AFTER.search(s) else state + b"]"


__all__ = ["MARKER", "convert", "detect"]
