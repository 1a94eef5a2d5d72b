"""Coverage-guided fuzzing of every parser with atheris.

    .venv/bin/python tests/fuzz/fuzz_load.py CORPUS_DIR -runs=100000

Seeds: put real fixtures in CORPUS_DIR (tests/test_atheris.py does). Any exception other
than grprof.ParseError / SourceError is a crash, and atheris stops with the input saved.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["grprof"]):
    import grprof
    from grprof.errors import GrprofError


def one_input(data: bytes) -> None:
    try:
        snaps = grprof.load_all(data, name="fuzz")
    except GrprofError as e:
        if "\n" in str(e):
            raise AssertionError(f"multi-line error: {e!r}") from None
        return
    for s in snaps:
        assert sum(g.count for g in s.groups()) == s.total
        s.groups("loose")
        s.stack_tree()


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
