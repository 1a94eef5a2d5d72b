"""Snapshots of one process in time order, and each group's track across them.

Groups are matched across snapshots, and across formats, by their *track key*: the call
sites outside the Go runtime (function and line), innermost first. debug=1 hides the runtime
frames at the top of a stack and debug=0 keeps them, debug=0/1 carry no `created by`, and
their stacks are cut at 32 or 128 frames: the key leaves out exactly what differs.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import operator
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from grprof.frames import RUNTIME_NAMES, Frame, site_of
from grprof.model import Group, Snapshot, moved_code

KEY_FRAMES = 8
DEFAULT_INTERVAL = 30.0
_PAIR = 2

TrackKey = tuple[tuple[str, int], ...]


def track_key(g: Group) -> TrackKey:
    """The call sites that identify a group across snapshots: its frames outside the runtime,
    innermost first, with their lines, from its site on (`site_of`: the innermost frame
    outside the standard library) when it has one. Goroutines at one call of the service's
    code are one track whatever standard-library path they are in at the moment (a session
    reading its connection is in IO wait, or for an instant in an allocation inside
    bufio): a goroutine caught elsewhere for a snapshot must not leave its track, whose
    count would dip and then seem to grow back."""
    runtime = RUNTIME_NAMES  # `Frame.is_runtime` without a call per frame
    site = site_of(g.frames)  # every frame inside it is the runtime's or, when it has one, stdlib
    frames = g.frames[g.frames.index(site) :] if site is not None else g.frames
    sites = [(f.function, f.line) for f in frames if not runtime[f.function]]
    if not sites:  # a runtime-only stack (system goroutines): its function names
        sites = [(f.function, 0) for f in g.frames]
    return tuple(sites[:KEY_FRAMES])


@functools.lru_cache(maxsize=65536)
def track_id(key: TrackKey) -> str:
    text = "\n".join([f"{fn}:{line}" for fn, line in key])
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@dataclass(slots=True)
class Point:
    """A track's group in one snapshot (several groups with one key are merged)."""

    count: int
    leaked: int
    max_wait: int
    orphans: int
    groups: list[Group]
    id_set: frozenset[int] | None = None
    """Member ids, computed once (`point_ids`): a daemon compares them at every scrape."""
    with_ids: bool | None = None
    """Whether a group has member ids, computed once (`point_has_ids`)."""
    largest: Group | None = None
    """`group`, computed once when there are several."""
    creator_set: frozenset[int] | None = None
    """The groups' creators, computed once (`point_creators`)."""

    @property
    def group(self) -> Group:
        """The largest group: the one whose stack and creator represent the track."""
        groups = self.groups
        if len(groups) == 1:
            return groups[0]
        if self.largest is None:
            self.largest = max(groups, key=lambda g: g.count)
        return self.largest


@dataclass(slots=True)
class Track:
    """One group's counts across the series, found by its track key."""

    key: TrackKey
    id: str
    points: list[Point | None]
    """One per counting snapshot (goroutine profiles and dumps), None where absent."""
    proof: list[int] = field(default_factory=list)
    """Goroutines listed per goroutineleak profile (debug=0/1), in order."""
    proof_group: Group | None = None
    memo_counts: list[int] | None = None
    """`counts`, computed once (`track_counts`): several signals read them in one pass."""
    memo_persisting: tuple[list[int], tuple[frozenset[int], int, int]] | None = None
    """`grprof.detect.signals.persisting`, with the series' `detailed` list it was computed
    with (compared by identity: a track judged against another series computes again)."""

    @property
    def counts(self) -> list[int]:
        """Per counting snapshot (a new list: a finding keeps it)."""
        return list(track_counts(self))

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    def representative(self, detailed: Sequence[int] | None = None) -> Group:
        """The group to describe the track with: the latest, preferring per-goroutine dumps.

        `detailed`: the indexes of the debug=2 snapshots, when the caller knows them (the only
        ones whose groups can have ids or creators); saves scanning every point."""
        points = self.points
        for i in reversed(range(len(points)) if detailed is None else detailed):
            p = points[i]
            if p is not None and (p.group.created_by is not None or p.group.ids):
                return p.group
        for p in reversed(points):
            if p is not None:
                return p.group
        assert self.proof_group is not None  # a track exists because some snapshot had it
        return self.proof_group


def track_counts(track: Track) -> list[int]:
    """The track's counts, computed once per track; shared: callers must not change it."""
    counts = track.memo_counts
    if counts is None:
        counts = track.memo_counts = [p.count if p else 0 for p in track.points]
    return counts


@dataclass(slots=True)
class Series:
    """Snapshots of one process in time order, and the track of each group across them."""

    snapshots: list[Snapshot]
    """The counting snapshots (goroutine profiles and dumps), in time order."""
    times: list[float]
    """Seconds since the first counting snapshot."""
    leak_profiles: list[Snapshot]
    tracks: list[Track]
    times_assumed: bool = False
    """No usable times: snapshots taken to be `DEFAULT_INTERVAL` (or `--interval`) apart."""
    detailed: list[int] = field(default_factory=list)
    """Indexes of the per-goroutine snapshots (debug=2 dumps, tracebacks): the ones with ids."""

    data: list[SnapshotData] = field(default_factory=list)
    """Each counting snapshot's `snapshot_data`, in order (filled by `build_series`)."""
    minutes: list[float] | None = None
    """`times` in minutes (`series_minutes`), computed once per series."""
    leaked: bool | None = None
    """Whether a counting snapshot marks a goroutine ` (leaked)` (`series_leaked`)."""
    aged: list[int] | None = None
    """The per-goroutine snapshots that show a wait age (`series_aged`)."""

    @property
    def span_minutes(self) -> float:
        return (self.times[-1] - self.times[0]) / 60 if self.times else 0.0


def snapshot_times(snaps: Sequence[Snapshot], interval: float | None) -> tuple[list[float], bool]:
    """Protobuf `time_nanos`, else the file's time; `interval` overrides for text snapshots.

    With `interval`, a text snapshot comes `interval` after the one before it. When the times
    do not strictly increase (copied files share a time, stdin has none), snapshots are taken
    to be `interval` (default 30 s) apart, and the series says so.
    """
    times: list[float] = []
    for s in snaps:
        if s.time is not None:
            times.append(s.time.timestamp())
        elif interval is not None and times:
            times.append(times[-1] + interval)
        else:
            stamp = s.mtime.timestamp() if s.mtime is not None else math.nan
            times.append(stamp)
    if all(not math.isnan(t) for t in times) and all(b > a for a, b in itertools.pairwise(times)):
        return [t - times[0] for t in times], False
    step = interval or DEFAULT_INTERVAL
    return [i * step for i in range(len(snaps))], len(snaps) > 1


_KEYS: dict[TrackKey, TrackKey] = {}
_MAX_KEYS = 100_000


def _interned(key: TrackKey) -> TrackKey:
    # A daemon keeps 40 snapshots of each of many services, with the same keys in each: one copy.
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    return _KEYS.setdefault(key, key)


@dataclass(slots=True)
class SnapshotData:
    """What detection derives from one snapshot, computed once (a daemon judges the same 40
    snapshots again at every scrape). Detection's, not the snapshot's: kept in `snapshot_data`,
    keyed by the snapshot, and gone with it."""

    keyed: list[tuple[Group, TrackKey]] | None = None
    """The groups with their track keys (`keyed_groups`)."""
    points: dict[TrackKey, Point] | None = None
    """The groups merged per track key (`snapshot_points`)."""
    ids: frozenset[int] | None = None
    """Every goroutine id (`present_ids`)."""
    serving: frozenset[int] | None = None
    """The ids of goroutines serving a request (for `grprof.detect.signals.serving_ids`)."""
    main_site: tuple[tuple[str, int] | None] | None = None
    """Where main.main is parked (`_main_site`), in a 1-tuple once computed (it may be None)."""
    minor: tuple[str | None] | None = None
    """The Go minor version (`_minor` of `go_version`), in a 1-tuple once computed."""
    leaked: bool | None = None
    """Whether a group marks goroutines ` (leaked)` (`snapshot_leaked`)."""
    aged: bool | None = None
    """Whether a goroutine shows a wait age (`snapshot_aged`)."""
    builds_vs: tuple[weakref.ref[Snapshot], str | None] | None = None
    """`_builds_difference` against the snapshot before it in a series (held weakly: the same
    one scrape after scrape in a daemon's window; another one computes again)."""
    origin_vs: tuple[weakref.ref[Snapshot], tuple[str, list[str]] | None] | None = None
    """`_origin_differences` against the snapshot with an origin before it, likewise."""
    columns: _Columns | None = None
    """The point columns of the last series built that ended with this snapshot (`_columns`)."""


class _Entry(weakref.ref[Snapshot]):
    """A snapshot's detection data, held by a weak reference to the snapshot whose callback
    drops the entry (one object per snapshot, as a `WeakKeyDictionary` entry is)."""

    __slots__ = ("data", "key")
    data: SnapshotData
    key: int


_DATA: dict[int, _Entry] = {}
"""Snapshot id -> its entry. By id rather than in a `WeakKeyDictionary`: a daemon looks up its
40 snapshots' data at every scrape, and a plain dict's C-level `get` costs a fraction of the
weak dictionary's Python-level one. The entry goes when its snapshot does, so an id is never
read for another object."""


def _drop_entry(e: _Entry) -> None:
    if _DATA.get(e.key) is e:
        del _DATA[e.key]


def snapshot_data(s: Snapshot) -> SnapshotData:
    """Detection's data of a snapshot (empty at first). The snapshot must not change after:
    `Snapshot.share_stacks` comes before detection (grprof.serve)."""
    e = _DATA.get(id(s))
    if e is not None:
        return e.data
    e = _Entry(s, _drop_entry)
    e.data, e.key = SnapshotData(), id(s)
    _DATA[e.key] = e
    return e.data


_FRAME_KEYS: dict[int, tuple[tuple[Frame, ...], TrackKey]] = {}
"""Frames tuple (by identity) -> its track key: a window's snapshots share their stacks'
frames (`grprof.serving.window`), so a new snapshot's groups mostly have frames whose key is
known. An entry keeps its frames, so the id cannot be reused while the entry lives."""


def _frames_key(g: Group) -> TrackKey:
    """`_interned(track_key(g))`, remembered per frames tuple (the key depends on nothing else)."""
    frames = g.frames
    e = _FRAME_KEYS.get(id(frames))
    if e is not None and e[0] is frames:
        return e[1]
    key = _interned(track_key(g))
    if len(_FRAME_KEYS) >= _MAX_KEYS:
        _FRAME_KEYS.clear()
    _FRAME_KEYS[id(frames)] = (frames, key)
    return key


def keyed_groups(s: Snapshot) -> list[tuple[Group, TrackKey]]:
    """A snapshot's groups with their track keys (computed once per snapshot)."""
    d = snapshot_data(s)
    if d.keyed is None:
        d.keyed = [(g, _frames_key(g)) for g in s.groups()]
    return d.keyed


def snapshot_points(s: Snapshot) -> dict[TrackKey, Point]:
    """A snapshot's groups merged per track key, computed once per snapshot: a daemon judges
    the same window again at every scrape. The points are shared; nothing changes them."""

    return _points(s, snapshot_data(s))


def _points(s: Snapshot, d: SnapshotData) -> dict[TrackKey, Point]:
    """`snapshot_points`, given the snapshot's data."""
    if d.points is None:
        d.points = snapshot_points_of(s)
    return d.points


def snapshot_points_of(s: Snapshot) -> dict[TrackKey, Point]:
    """A snapshot's groups merged per track key, computed (`snapshot_points` keeps them)."""
    out: dict[TrackKey, Point] = {}
    for g, key in keyed_groups(s):
        p = out.get(key)
        if p is None:
            out[key] = Point(g.count, g.leaked, g.max_wait_minutes, len(g.orphans), [g])
        else:
            p.count += g.count
            p.leaked += g.leaked
            p.max_wait = max(p.max_wait, g.max_wait_minutes)
            p.orphans += len(g.orphans)
            p.groups.append(g)
    return out


def snapshot_leaked(s: Snapshot) -> bool:
    """Whether any of the snapshot's groups marks goroutines ` (leaked)` (once per snapshot)."""
    return _leaked(s, snapshot_data(s))


def _leaked(s: Snapshot, d: SnapshotData) -> bool:
    if d.leaked is None:
        d.leaked = any(p.leaked for p in _points(s, d).values())
    return d.leaked


def snapshot_aged(s: Snapshot) -> bool:
    """Whether any goroutine of the snapshot shows a wait age (`[chan receive, 3 minutes]`):
    the runtime stamps one only at a GC mark, so a process with none has not collected in
    the last minute or more (GOGC=off, or a young process), and a 0 says nothing there."""
    d = snapshot_data(s)
    if d.aged is None:
        d.aged = any(p.max_wait > 0 for p in _points(s, d).values())
    return d.aged


def carry_over(earlier: Snapshot, later: Snapshot) -> None:
    """Let `later` share `earlier`'s groups and detection data where they are equal: the next
    scrape of one service, same format (`grprof.serving.window`). A service that changed
    little shows the same groups and points again; a window of 40 such snapshots then keeps
    one copy of each, not 40 (the daemon's memory is mostly its windows). Groups and points
    do not change once made, and what is carried over derives from the groups alone (not
    from the settings or the snapshot's version), so detection reads the same values."""
    same = later.share_groups(earlier)
    ed = snapshot_data(earlier)
    earlier_points = _points(earlier, ed)  # known already, unless the window is being restored
    ld = snapshot_data(later)
    if same:
        ld.keyed, ld.points, ld.leaked, ld.aged = keyed_groups(earlier), earlier_points, ed.leaked, ed.aged
        ld.ids, ld.main_site = ed.ids, ed.main_site
        return
    points = _points(later, ld)
    for key, p in points.items():
        q = earlier_points.get(key)
        if q is not None and len(q.groups) == len(p.groups) and all(map(operator.is_, q.groups, p.groups)):
            points[key] = q


def _series_data(series: Series) -> list[SnapshotData]:
    """The counting snapshots' data (`series.data`, or looked up when a series was built by
    hand)."""
    if len(series.data) != len(series.snapshots):
        series.data = [snapshot_data(s) for s in series.snapshots]
    return series.data


def series_leaked(series: Series) -> bool:
    """Whether any counting snapshot of the series marks goroutines ` (leaked)`: when none
    does, every point's `leaked` is 0 (a point sums its groups' marks, each >= 0)."""
    if series.leaked is None:
        series.leaked = any(map(_leaked, series.snapshots, _series_data(series)))
    return series.leaked


def series_aged(series: Series) -> list[int]:
    """The indexes of the per-goroutine snapshots (`detailed`) in which some goroutine shows
    a wait age (`snapshot_aged`), once per series."""
    if series.aged is None:
        series.aged = [i for i in series.detailed if snapshot_aged(series.snapshots[i])]
    return series.aged


def series_minutes(series: Series) -> list[float]:
    """`series.times` in minutes (each `t / 60`, as `growth` computed them), once per series."""
    if series.minutes is None:
        series.minutes = [t / 60 for t in series.times]
    return series.minutes


@dataclass(slots=True)
class _Columns:
    """The point columns (`_columns`) of the series that ended with a snapshot: the next scrape's
    series, its window slid by one snapshot, starts from them."""

    before: list[SnapshotData]
    """The data of the counting snapshots before the one that keeps these columns, in order
    (held: compared by identity; not that one's own, which would make a reference cycle)."""
    columns: dict[TrackKey, list[Point | None]]


def _columns(
    data: list[SnapshotData], counted: list[dict[TrackKey, Point]]
) -> dict[TrackKey, list[Point | None]]:
    """Each track key (in order of first appearance) with its point per counting snapshot
    (None where absent): `[pts.get(key) for pts in counted]` for every key of
    `dict.fromkeys(chain(counted))`.

    A daemon's next window is the last one with its oldest snapshot dropped (when full) and
    the new one appended, the others the same objects: the columns of the series that ended
    with the snapshot before the new one are kept on its data, and a key's column is then its
    old column without its first point, plus the new snapshot's point. Same lists, since the
    snapshots they were read from are the same objects (their data, compared by identity; a
    snapshot's points never change once computed). Any other sequence is read in full."""
    # A steady service's snapshots share one point map (`carry_over`): each distinct map once,
    # in order, gives the same keys in the same order (a repeated map adds no new key).
    distinct = {id(pts): pts for pts in counted}.values()  # all alive: ids are unique
    order = dict.fromkeys(itertools.chain.from_iterable(distinct))
    prev = data[-2].columns if len(data) >= _PAIR else None
    drop = -1
    if prev is not None:  # the previous series: prev.before, then data[-2]
        old = prev.before
        if len(old) == len(data) - 1 and all(map(operator.is_, old[1:], data[:-2])):
            drop = 1
        elif len(old) == len(data) - 2 and all(map(operator.is_, old, data[:-2])):
            drop = 0
    out: dict[TrackKey, list[Point | None]] = {}
    if prev is not None and drop >= 0:
        new = counted[-1]
        for key in order:
            col = prev.columns.get(key)
            if col is None:
                out[key] = [pts.get(key) for pts in counted]
            else:
                col = col[drop:]
                col.append(new.get(key))
                out[key] = col
        data[-2].columns = None  # superseded: only the newest snapshot keeps them
    else:
        out = {key: [pts.get(key) for pts in counted] for key in order}
    if data:
        data[-1].columns = _Columns(data[:-1], out)
    return out


def build_series(snaps: Sequence[Snapshot], interval: float | None = None) -> Series:
    counting = [s for s in snaps if s.profile == "goroutine"]
    proofs = [s for s in snaps if s.profile == "goroutineleak"]
    times, assumed = snapshot_times(counting, interval)
    # A track per key, in order of first appearance (counting snapshots first); each track's
    # points read by one comprehension over the snapshots' point maps: a daemon rebuilds the
    # series of a 40-snapshot window at every scrape.
    data = [snapshot_data(s) for s in counting]
    counted = [_points(s, d) for s, d in zip(counting, data, strict=True)]
    columns = _columns(data, counted)
    tracks: dict[TrackKey, Track] = {
        # The track shares its column with the kept columns: nothing changes a track's points.
        key: Track(key, track_id(key), col, [0] * len(proofs))
        for key, col in columns.items()
    }
    for j, s in enumerate(proofs):
        for key, p in snapshot_points(s).items():
            t = tracks.get(key)
            if t is None:
                t = tracks[key] = Track(key, track_id(key), [None] * len(counting), [0] * len(proofs))
            t.proof[j] += p.count
            t.proof_group = p.groups[-1]
    detailed = [i for i, s in enumerate(counting) if s.format == "debug=2"]
    return Series(list(counting), times, proofs, list(tracks.values()), assumed, detailed, data)


def present_ids(s: Snapshot) -> frozenset[int]:
    """Every goroutine id in a per-goroutine snapshot (empty for the aggregated formats)."""
    d = snapshot_data(s)
    if d.ids is None:
        d.ids = frozenset(gid for g in s.groups() for gid in g.ids)
    return d.ids


def point_ids(p: Point) -> frozenset[int]:
    """The ids of a track's goroutines in one snapshot."""
    if p.id_set is None:
        p.id_set = frozenset(gid for g in p.groups for gid in g.ids)
    return p.id_set


def point_creators(p: Point) -> frozenset[int]:
    """The creators of a track's goroutines in one snapshot (computed once per point)."""
    if p.creator_set is None:
        p.creator_set = frozenset(c for g in p.groups for c in g.creators)
    return p.creator_set


def point_has_ids(p: Point) -> bool:
    """Whether one of the point's groups has member ids (computed once per point)."""
    if p.with_ids is None:
        p.with_ids = any(g.ids for g in p.groups)
    return p.with_ids


_MAJOR_MINOR = re.compile(r"(\d+)\.(\d+)(?:\..*)?")
"""`1.22` of `1.22.12` or `1.22`; not of `1.22rc1` (no release to compare)."""


def _minor(version: str | None) -> str | None:
    """`1.26` of `go1.26.8`, `1.26.8` or `1.26`; None for a range (`>=1.18`) or no version."""
    if not version:
        return None
    v = version.removeprefix("go")
    m = _MAJOR_MINOR.fullmatch(v)
    return f"{m[1]}.{m[2]}" if m else None


def _snapshot_minor(s: Snapshot, d: SnapshotData) -> str | None:
    """`_minor(s.go_version)`, once per snapshot."""
    if d.minor is None:
        d.minor = (_minor(s.go_version),)
    return d.minor[0]


def _main_site(s: Snapshot, d: SnapshotData) -> tuple[str, int] | None:
    """Where the program's main.main is parked: its file and line identify the build. Once per
    snapshot: a daemon compares its 40 snapshots again at every scrape."""
    if d.main_site is None:
        found = ((f.file, f.line) for g in s.groups() for f in g.frames if f.function == "main.main")
        d.main_site = (next(found, None),)
    return d.main_site[0]


def _origin_differences(a: Snapshot, b: Snapshot) -> tuple[str, list[str]] | None:
    """What the inputs' origins (`Snapshot.origin`) say differs between two snapshots:
    ("builds" or "processes", the differences), or None when nothing known differs."""
    oa, ob = a.origin, b.origin
    if oa is None or ob is None:
        return None
    builds: list[str] = []
    procs: list[str] = []
    for name, va, vb, out in (
        ("build id", oa.build_id, ob.build_id, builds),
        ("binary", oa.binary, ob.binary, builds),
        ("host", oa.host, ob.host, procs),
        ("pid", oa.pid, ob.pid, procs),
        ("pod", oa.pod, ob.pod, procs),
        ("container", oa.container, ob.container, procs),
    ):
        if va is not None and vb is not None and va != vb:
            out.append(f"{name} {va} and {vb}")
    moved = moved_code(dict(oa.code), dict(ob.code))
    if moved is not None:  # another build, or a restart of a PIE binary: another process either way
        function, was, now = moved
        procs.append(f"{function} moved from {was:#x} to {now:#x}")
    if builds:
        return "builds", builds + procs
    if procs:
        return "processes", procs
    return None


def _builds_difference(a: Snapshot, da: SnapshotData, b: Snapshot, db: SnapshotData) -> str | None:
    """Why two snapshots in a row come from different builds (Go version, main.main), or None."""
    va, vb = _snapshot_minor(a, da), _snapshot_minor(b, db)
    if va and vb and va != vb:
        return f"{a.source} (Go {va}) and {b.source} (Go {vb}) come from different builds"
    ma, mb = _main_site(a, da), _main_site(b, db)
    if ma and mb and ma != mb:
        return (
            f"{a.source} and {b.source} run different builds "
            f"(main.main at {ma[0]}:{ma[1]} and {mb[0]}:{mb[1]})"
        )
    return None


def series_warnings(series: Series) -> list[str]:
    """Why the snapshots may not be one process, which a growth series assumes: another Go
    version, another build of main (main.main parked at another file or line), or what the
    inputs say of their origin (`Snapshot.origin`): another build id or binary path (debug=0
    profiles' main mapping), code at other addresses (debug=1 profiles' PCs: a rebuild, or a
    restart of a PIE binary), another pid, host or pod (the journald and `kubectl --prefix`
    line prefixes of a logged dump).

    (Goroutine ids are no test: the newest goroutine of one snapshot may be gone by the next,
    and a restarted program gives its long-lived goroutines the same small ids again.)"""
    out: list[str] = []
    snaps = series.snapshots
    warned: set[tuple[int, int]] = set()
    data = _series_data(series)
    for i, ((a, da), (b, db)) in enumerate(itertools.pairwise(zip(snaps, data, strict=True))):
        e = db.builds_vs
        if e is not None and e[0]() is a:
            why = e[1]
        else:
            why = _builds_difference(a, da, b, db)
            db.builds_vs = (weakref.ref(a), why)
        if why is not None:
            out.append(why)
            warned.add((i, i + 1))
    # Origins: each snapshot that has one against the one before that has one (text dumps
    # between two profiles carry none).
    known = [i for i, s in enumerate(snaps) if s.origin is not None]
    for i, j in itertools.pairwise(known):
        a, b, db = snaps[i], snaps[j], data[j]
        o = db.origin_vs
        if o is not None and o[0]() is a:
            diff = o[1]
        else:
            diff = _origin_differences(a, b)
            db.origin_vs = (weakref.ref(a), diff)
        if diff is not None and (i, j) not in warned:
            what, details = diff
            out.append(
                f"{snaps[i].source} and {snaps[j].source} come from different {what} ({'; '.join(details)})"
            )
    if out:
        out.append("a growth series needs snapshots of one process: judge each process apart")
    return out
