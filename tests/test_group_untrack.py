"""`group()` takes many new groups out of the cyclic collector (`aggregate._untrack`, native
`untrack_groups`): the same groups, untracked with the extension, tracked without it."""

from __future__ import annotations

import gc

import pytest

import grprof
from grprof import _rust, aggregate


def _dump(n: int) -> bytes:
    out = []
    for i in range(n):
        out.append(
            f"goroutine {i + 1} [chan receive]:\n"
            f"main.f{i}(0x1)\n\t/src/main.go:{i + 10} +0x1d\n"
            f"created by main.main in goroutine {1 if i % 2 else n + 5}\n\t/src/main.go:5 +0x2\n"
        )
    return "\n".join(out).encode()


def test_many_groups_untracked_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    if _rust.native("untrack_groups") is None:
        pytest.skip("no extension")
    data = _dump(aggregate.PAUSE_GC_AT + 500)
    native = grprof.load(data).groups()
    monkeypatch.setenv("GRPROF_PURE", "1")
    pure = grprof.load(data).groups()
    assert [(g.signature, list(g.ids), list(g.orphans), dict(g.creators)) for g in native] == [
        (g.signature, list(g.ids), list(g.orphans), dict(g.creators)) for g in pure
    ]
    assert any(g.orphans for g in native)
    for g in native:
        assert not gc.is_tracked(g)
        assert not gc.is_tracked(g.ids)
        assert not gc.is_tracked(g.creators)
    assert all(gc.is_tracked(g) for g in pure)
    gc.collect()  # nothing breaks when the collector runs over what is left


def test_few_groups_stay_tracked() -> None:
    groups = grprof.load(_dump(10)).groups()
    assert all(gc.is_tracked(g) for g in groups)
