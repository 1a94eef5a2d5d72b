"""`summary(snapshot)`: everything a parsed snapshot holds, in comparable form, for the tests that
pin a native parser to its pure-Python twin (tests/test_pprof_equivalence.py,
tests/test_debug1_equivalence.py)."""

from __future__ import annotations

from typing import Any

from grprof.model import Snapshot


def summary(s: Snapshot) -> dict[str, Any]:
    """Everything a snapshot holds, in comparable form (label order included)."""
    t = s.table
    return {
        "source": s.source,
        "format": s.format,
        "profile": s.profile,
        "time": s.time,
        "truncated": s.truncated,
        "go_version": s.go_version,
        "origin": s.origin,
        "notes": list(s.notes),
        "headers": [
            (
                h.state,
                h.wait_minutes,
                h.locked_to_thread,
                h.leaked,
                list(h.labels.items()),
                h.flags,
                h.labels_key,
            )
            for h in t.headers
        ],
        "stacks": [(st.frames, st.frames_elided, st.created_by) for st in t.stacks],
        "ids": list(t.ids),
        "header": list(t.header),
        "stack": list(t.stack),
        "creator": list(t.creator),
        "argkey": list(t.argkey),
        "counts": None if t.counts is None else list(t.counts),
        "column_types": (
            t.ids.typecode,
            t.header.typecode,
            t.stack.typecode,
            t.creator.typecode,
            t.argkey.typecode,
            None if t.counts is None else t.counts.typecode,
        ),
        "extras": t.extras,
        "total": s.total,
    }
