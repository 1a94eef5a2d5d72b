"""What detection derives from a snapshot is detection's (`grprof.detect.series.snapshot_data`),
kept beside the snapshot, not in it, and gone with it; `Snapshot.share_stacks` swaps a table's
stacks for shared copies in one step."""

from __future__ import annotations

import gc
from pathlib import Path

import grprof
from grprof.detect.detector import detect
from grprof.detect.series import _DATA, snapshot_data, snapshot_points
from grprof.table import Stack

STATES = Path(__file__).parent / "fixtures" / "states" / "go1.26.8"


def test_detection_data_lives_beside_the_snapshot_and_dies_with_it() -> None:
    snaps = [grprof.load(STATES / "goroutine.debug2.txt"), grprof.load(STATES / "goroutine.debug1.txt")]
    detect(snaps)
    data = snapshot_data(snaps[0])
    assert data.keyed is not None and data.points is not None
    assert snapshot_points(snaps[0]) is data.points  # computed once
    before = len(_DATA)
    del snaps, data
    gc.collect()
    assert len(_DATA) <= before - 2


def test_share_stacks_keeps_the_groups() -> None:
    snap = grprof.load(STATES / "goroutine.debug2.txt")
    groups = [(g.signature, g.count) for g in snap.groups()]
    shared: dict[Stack, Stack] = {}
    snap.share_stacks(lambda s: shared.setdefault(s, s))
    assert [(g.signature, g.count) for g in snap.groups()] == groups
    assert all(s is shared[s] for s in snap.table.stacks)
