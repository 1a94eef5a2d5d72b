"""A snapshot's groups as stored (zlib-compressed JSON), and snapshots rebuilt from them.

The blob is `{"v": 1, "source", "go_version", "prologue", "groups": [...]}`, one JSON object
per group (`group_doc`). A rebuilt snapshot is an aggregated `GoroutineTable` whose rows
reproduce every stored distribution of a group exactly (states, wait minutes, leaked, locked,
each label key's values): grouping it gives back the same groups, with the same signatures,
track ids, counts, states, leaked counts and labels. What is not stored is lost: goroutine
ids (so orphans and `request_scoped` ages), which label values occurred together on one
goroutine, and argument values.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import zlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grprof.detect.series import track_id, track_key
from grprof.model import Format, Frame, Group, Profile, Snapshot
from grprof.store.model import StoredGroup
from grprof.table import GoroutineTable, Header, Stack

VERSION = 1
# Label index bounds: a group's most common values per key, and no huge values (PostgreSQL
# refuses B-tree entries above ~2.7 kB; nobody searches for a kilobyte of label).
LABEL_VALUES_PER_KEY = 1000
LABEL_VALUE_MAX = 512

FrameDoc = list[Any]
GroupDoc = dict[str, Any]


# -- encoding ------------------------------------------------------------------------------


def frame_doc(f: Frame) -> FrameDoc:
    return [f.function, f.file, f.line]


def group_doc(g: Group) -> GroupDoc:
    doc = _group_head(g)
    doc["frames"] = [frame_doc(f) for f in g.frames]
    return doc


def _group_head(g: Group) -> GroupDoc:
    return {
        "signature": g.signature,
        "track": track_id(track_key(g)),
        "count": g.count,
        "state": g.state,
        "states": g.states,
        "wait_minutes": {str(m): n for m, n in g.wait_minutes.items()},
        "leaked": g.leaked,
        "locked_to_thread": g.locked_to_thread,
        "orphans": len(g.orphans),
        "partial": g.partial,
        "labels": g.labels,
        "frames_elided": g.frames_elided,
        "created_by": frame_doc(g.created_by) if g.created_by else None,
    }


# A daemon stores the same stacks at every scrape (a window shares them across snapshots,
# `serving.window`), and their frames are most of a blob's JSON: the text of a frames tuple
# is kept, by the tuple's identity. An entry holds its tuple, so the id is not reused while
# the entry lives; bounded by clearing when full.
_FRAMES_JSON: dict[int, tuple[tuple[Frame, ...], str]] = {}
_FRAMES_JSON_MAX = 16_384
# One encoder: `json.dumps` with arguments builds a new one per call.
_json = json.JSONEncoder(separators=(",", ":")).encode


def _frames_json(frames: tuple[Frame, ...]) -> str:
    hit = _FRAMES_JSON.get(id(frames))
    if hit is not None and hit[0] is frames:
        return hit[1]
    text = _json([frame_doc(f) for f in frames])
    if len(_FRAMES_JSON) >= _FRAMES_JSON_MAX:
        _FRAMES_JSON.clear()
    _FRAMES_JSON[id(frames)] = (frames, text)
    return text


GroupTexts = dict[int, tuple[Group, str]]
"""Groups' JSON without their frames (`_group_head`, closing brace dropped), by the group's
identity; an entry holds its group, so the id is not reused while the entry lives."""


def _group_json(g: Group, last: GroupTexts | None, made: GroupTexts | None) -> str:
    hit = last.get(id(g)) if last is not None else None
    head = hit[1] if hit is not None and hit[0] is g else _json(_group_head(g))[:-1]
    if made is not None:
        made[id(g)] = (g, head)
    return f'{head},"frames":{_frames_json(g.frames)}}}'


def encode(snap: Snapshot, groups: Sequence[Group]) -> bytes:
    """The blob: the document `group_doc` describes, written by parts (each stack's frames
    once per process, see `_frames_json`); level 3 compresses about 3.5x faster than 6 for
    blobs about 14 % larger. A daemon's steady groups are written once: `RecentTexts`."""
    return _encode(_head(snap), groups, None, None)


def _head(snap: Snapshot) -> str:
    return _json(
        {"v": VERSION, "source": snap.source, "go_version": snap.go_version, "prologue": snap.prologue}
    )


def _encode(head: str, groups: Sequence[Group], last: GroupTexts | None, made: GroupTexts | None) -> bytes:
    """A group found in `last` by identity is not encoded again (a group does not change once
    made); each group's text goes into `made`."""
    text = f'{head[:-1]},"groups":[{",".join([_group_json(g, last, made) for g in groups])}]}}'
    return zlib.compress(text.encode(), 3)


@dataclass(frozen=True, slots=True)
class _Last:
    """What `RecentTexts` keeps of a key's last snapshot."""

    at: int
    """The call that wrote it."""
    texts: GroupTexts
    groups: tuple[int, ...]
    """Its groups' ids, in order: `texts` holds the groups, so equal ids are the same groups."""
    head: str
    blob: bytes


class RecentTexts:
    """`encode` for a daemon: per key (a target's snapshots of one format and profile), the
    group texts of the snapshot encoded last, reused by the next.

    A window hands each new snapshot the earlier one's `Group` objects where nothing changed
    (`Snapshot.share_groups`), so a steady service's groups are encoded once, not at every
    scrape; when every group and the snapshot's own fields are the last snapshot's, its blob
    is the last blob (nothing joined or compressed again). Only the last snapshot is kept per
    key, and its groups are ones the window holds anyway; a key not written in the last
    `keep` calls (a target gone, or scraped far more rarely than the rest) is dropped, so that
    its groups do not stay alive here. Thread-safe: a daemon stores from several worker
    threads."""

    def __init__(self, keep: int = 16_384) -> None:
        self._keep = keep
        self._by_key: dict[Hashable, _Last] = {}
        self._calls = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_key)

    def encode(self, key: Hashable, snap: Snapshot, groups: Sequence[Group]) -> bytes:
        last = self._by_key.get(key)
        head = _head(snap)
        ids = tuple(map(id, groups))
        if last is not None and last.groups == ids and last.head == head:
            texts, blob = last.texts, last.blob
        else:
            texts = {}
            blob = _encode(head, groups, last.texts if last is not None else None, texts)
        with self._lock:
            self._calls += 1
            self._by_key[key] = _Last(self._calls, texts, ids, head, blob)
            if self._calls % (self._keep // 4 or 1) == 0:
                old = self._calls - self._keep
                for k in [k for k, e in self._by_key.items() if e.at <= old]:
                    del self._by_key[k]
        return blob


def decode(blob: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(zlib.decompress(blob))
    return doc


def label_rows(groups: Sequence[Group]) -> Iterator[tuple[str, str, str, int]]:
    """(signature, key, value, count) for the label index, bounded per group and key."""
    for g in groups:
        for key, values in g.labels.items():
            if not _indexable(key):
                continue
            kept = (kv for kv in values.items() if _indexable(kv[0]))
            for i, (value, n) in enumerate(kept):
                if i >= LABEL_VALUES_PER_KEY:
                    break
                yield g.signature, key, value, n


def _indexable(text: str) -> bool:
    # PostgreSQL text cannot hold NUL; Go label values can.
    return len(text) <= LABEL_VALUE_MAX and "\x00" not in text


# -- decoding ------------------------------------------------------------------------------


def _frame(d: FrameDoc | None) -> Frame | None:
    return Frame(str(d[0]), str(d[1]), int(d[2])) if d else None


def _frames(g: GroupDoc) -> tuple[Frame, ...]:
    return tuple(Frame(str(f[0]), str(f[1]), int(f[2])) for f in g["frames"])


def stored_group(g: GroupDoc) -> StoredGroup:
    return StoredGroup(
        signature=g["signature"],
        track=g["track"],
        count=g["count"],
        state=g["state"],
        states=g["states"],
        max_wait_minutes=max((int(m) for m in g["wait_minutes"]), default=0),
        leaked=g["leaked"],
        orphans=g["orphans"],
        labels=g["labels"],
        frames=_frames(g),
        created_by=_frame(g["created_by"]),
    )


def rebuild(
    doc: Mapping[str, Any], *, format: Format, profile: Profile, time: dt.datetime, truncated: bool
) -> Snapshot:
    """A `Snapshot` whose `groups()` are the stored groups (see the module docstring)."""
    table = GoroutineTable(aggregated=True)
    for g in doc["groups"]:
        stack = Stack(_frames(g), bool(g["frames_elided"]), _frame(g["created_by"]))
        for header, n in _rows(g):
            table.add(header, stack, count=n)
    return Snapshot(
        source=doc.get("source") or "store",
        format=format,
        profile=profile,
        table=table,
        time=time,
        truncated=truncated,
        go_version=doc.get("go_version"),
        prologue=doc.get("prologue") or "",
    )


_ABSENT = None


def _segments(dist: Mapping[Any, int], total: int, absent: Hashable = _ABSENT) -> list[tuple[Any, int]]:
    """A distribution as consecutive runs over the group's goroutines; the rest is `absent`."""
    segs = [(v, n) for v, n in dist.items() if n > 0]
    rest = total - sum(n for _, n in segs)
    if rest > 0:
        segs.append((absent, rest))
    return segs


def _rows(g: GroupDoc) -> Iterator[tuple[Header, int]]:
    """Rows whose per-column sums give back each of the group's distributions exactly.

    Every distribution is laid out as runs over the same line of `count` goroutines; cutting
    the line at every run boundary gives at most (sum of distinct values) rows.
    """
    total = int(g["count"])
    leaked, locked = int(g["leaked"]), int(g["locked_to_thread"])
    keys = list(g["labels"])
    columns = [
        _segments(g["states"], total, ""),
        _segments({int(m): n for m, n in g["wait_minutes"].items()}, total, 0),
        _segments({True: leaked}, total, False),
        _segments({True: locked}, total, False),
        *(_segments(g["labels"][k], total) for k in keys),
    ]
    for n, (state, wait, is_leaked, is_locked, *values) in _cut(total, columns):
        lab = {k: v for k, v in zip(keys, values, strict=True) if v is not _ABSENT}
        yield Header.make(state, wait, is_locked, is_leaked, lab), n


def _cut(total: int, columns: Sequence[list[tuple[Any, int]]]) -> Iterator[tuple[int, list[Any]]]:
    pos = [0] * len(columns)
    left = [col[0][1] if col else total for col in columns]
    done = 0
    while done < total:
        step = min(left)
        yield step, [col[i][0] if col else _ABSENT for col, i in zip(columns, pos, strict=True)]
        done += step
        for c, col in enumerate(columns):
            left[c] -= step
            if left[c] == 0 and pos[c] + 1 < len(col):
                pos[c] += 1
                left[c] = col[pos[c]][1]
