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


class _Cell:
    """A tracked object (a plain class instance), as what a paused section keeps."""


def test_a_paused_section_leaves_what_it_made_in_the_oldest_generation() -> None:
    """`gc_paused` sections build a snapshot's stacks and groups, a detection's tracks. In a
    command that runs once (`_gc.tune()`: analyze, diff), once the collector runs again what
    they made and kept is in the oldest generation, not left for one young collection to walk
    all at once; not in a daemon (`tune(freeze=True)`: its frozen start-up objects stay
    frozen) nor for a library's caller (nothing tuned)."""
    from grprof import _gc
    from grprof._gc import PAUSE_GC_AT, gc_paused

    def young() -> set[int]:
        return {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}

    saved = gc.get_threshold(), _gc._GCPause.promote
    try:
        assert gc.isenabled() and gc.get_freeze_count() == 0
        _gc._GCPause.promote = False  # as for a library's caller
        with gc_paused(PAUSE_GC_AT):
            untuned = [_Cell() for _ in range(PAUSE_GC_AT)]
        assert id(untuned[0]) in young()

        _gc.tune()
        with gc_paused(PAUSE_GC_AT):
            kept = [_Cell() for _ in range(PAUSE_GC_AT)]
        assert gc.isenabled()
        now_young = young()
        assert not any(id(c) in now_young for c in kept)
        assert all(gc.is_tracked(c) for c in kept[:10])
        assert gc.get_freeze_count() == 0

        _gc.tune(freeze=True)  # a daemon after start-up
        frozen = gc.get_freeze_count()
        with gc_paused(PAUSE_GC_AT):
            more = [_Cell() for _ in range(PAUSE_GC_AT)]
        assert gc.get_freeze_count() == frozen  # still frozen, the new objects not among them
        assert id(more[0]) in young()
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved[0])
        _gc._GCPause.promote = saved[1]
