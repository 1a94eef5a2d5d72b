"""Which of the Rust extension's twins to use: one rule for every fast path.

Each fast path (the parsers' `Scanner`, `parse_stacks`, `parse_debug1`, `decode_pprof`, and
the core's `signatures_of`, `loose_groups_of`, `stack_tree_of`) has a pure-Python reference
that equivalence tests hold it to; the Python one runs when the extension is missing or
GRPROF_PURE=1 is set, or when a caller asks for it. A low module of its own (it imports
nothing of grprof but the extension): the core below `grprof.formats` uses it too, and may
not import upward.
"""

from __future__ import annotations

import os
from typing import Any


def native(name: str, required: bool | None = None) -> Any | None:
    """`grprof._native.<name>`, or None for the Python path.

    `required`: None takes the extension when available and GRPROF_PURE is unset; False
    never takes it; True always does (tests and benchmarks: a missing extension raises the
    ImportError that says why)."""
    if required is False or (required is None and os.environ.get("GRPROF_PURE")):
        return None
    try:
        from grprof import _native
    except ImportError:
        if required:
            raise
        return None
    fn = getattr(_native, name, None)
    if required and fn is None:
        raise ImportError(f"grprof._native has no {name}: rebuild the extension (make install)")
    return fn
