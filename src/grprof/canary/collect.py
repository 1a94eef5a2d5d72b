"""Where a canary judgement's snapshots come from: files, live services (scraped side by side
for `duration`, every `interval`, with grprof's loader), or a `grprof serve` store (targets
by name or by label, the snapshots of the last `window`)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from grprof.canary.config import CanaryError
from grprof.errors import GrprofError
from grprof.loader import load_all
from grprof.model import Snapshot
from grprof.sources import DEFAULT_MAX_SIZE, looks_like_target, redact, resolve_target
from grprof.store.model import Store

Sides = tuple[dict[str, list[Snapshot]], dict[str, list[Snapshot]]]
MAX_WORKERS = 16


@dataclass
class Collected:
    baseline: dict[str, list[Snapshot]]
    canary: dict[str, list[Snapshot]]
    warnings: list[str] = field(default_factory=list)


def is_live(text: str) -> bool:
    """A URL or host:port (not an existing file or directory)."""
    return not os.path.exists(text) and looks_like_target(text)


def _load_path(path: str, max_size: int, timeout: float) -> list[Snapshot]:
    """A file (every dump in it, in order) or a directory (its files in name order)."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path))
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise CanaryError(f"{path}: an empty directory")
        return [s for f in files for s in load_all(f, max_size=max_size, timeout=timeout)]
    if not os.path.exists(path):
        raise CanaryError(f"{path}: no such file, and not a URL or host:port")
    return load_all(path, max_size=max_size, timeout=timeout)


@dataclass
class _Live:
    side: str
    name: str
    url: str
    leak_url: str | None
    snapshots: list[Snapshot] = field(default_factory=list)
    errors: int = 0
    last_error: str = ""


def collect(
    baseline: Sequence[str],
    canary: Sequence[str],
    *,
    duration: float,
    interval: float,
    fmt: str | None = None,
    timeout: float = 10.0,
    max_size: int = DEFAULT_MAX_SIZE,
    progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Collected:
    """Files are read once; live targets are scraped together, `duration / interval + 1` times,
    plus their goroutineleak profile (when they serve one) at the end, for runtime proof."""
    out = Collected({}, {})
    live: list[_Live] = []
    for side, items, dest in (("baseline", baseline, out.baseline), ("canary", canary, out.canary)):
        for text in items:
            if is_live(text):
                try:
                    r = resolve_target(text, fmt, default="debug=2")
                except GrprofError as e:
                    raise CanaryError(f"{side}: {e}") from None
                leak = r.profile_url("goroutineleak", "debug=1") if r.profile == "goroutine" else None
                name = _unique(redact(text), dest)
                dest[name] = []
                live.append(_Live(side, name, r.url, leak))
            else:
                dest[_unique(text, dest)] = _load_path(text, max_size, timeout)
    if not live:
        return out
    if interval <= 0 or duration < interval:
        raise CanaryError(f"--duration ({duration:g}s) must be at least --interval ({interval:g}s)")
    rounds = int(duration // interval) + 1
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(min(MAX_WORKERS, len(live))) as pool:
        for k in range(rounds):
            wait = start + k * interval - time.monotonic()
            if wait > 0:
                sleep(wait)
            list(pool.map(lambda t: _scrape(t, t.url, max_size, timeout), live))
            if progress is not None:
                progress(k + 1, rounds)
        list(pool.map(lambda t: _scrape_leaks(t, max_size, timeout), live))
    for t in live:
        dest = out.baseline if t.side == "baseline" else out.canary
        dest[t.name] = t.snapshots
        if t.errors:
            out.warnings.append(f"{t.side} {t.name}: {t.errors} of {rounds} scrapes failed ({t.last_error})")
        if not any(s.profile == "goroutine" for s in t.snapshots):
            raise CanaryError(f"{t.side} {t.name}: every scrape failed ({t.last_error})")
    return out


_lock = threading.Lock()


def _scrape(t: _Live, url: str, max_size: int, timeout: float) -> None:
    when = dt.datetime.now(dt.UTC)
    try:
        snaps = load_all(url, name=t.name, max_size=max_size, timeout=timeout)
    except GrprofError as e:
        t.errors += 1
        t.last_error = str(e)
        return
    for s in snaps:
        if s.time is None:
            s.time = when
    with _lock:
        t.snapshots.extend(snaps)


def _scrape_leaks(t: _Live, max_size: int, timeout: float) -> None:
    """The goroutineleak profile, once: a service without it (404, or not a profile) is fine."""
    if t.leak_url is None:
        return
    when = dt.datetime.now(dt.UTC)
    try:
        snaps = load_all(t.leak_url, name=t.name, max_size=max_size, timeout=timeout)
    except GrprofError:
        return
    for s in snaps:
        if s.time is None:
            s.time = when
    t.snapshots.extend(s for s in snaps if s.profile == "goroutineleak")


def _unique(name: str, taken: Mapping[str, object]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}#{i}" in taken:
        i += 1
    return f"{name}#{i}"


# -- from a store ----------------------------------------------------------------------------


def select_targets(selectors: Sequence[str], known: Mapping[str, Mapping[str, str]], side: str) -> list[str]:
    """Target names for `name` or `key=value` (a label) selectors; every selector must match."""
    out: list[str] = []
    for sel in selectors:
        key, eq, value = sel.partition("=")
        if eq and sel not in known:
            hits = sorted(n for n, labels in known.items() if labels.get(key.strip()) == value.strip())
            if not hits:
                raise CanaryError(f"{side}: no target has the label {key.strip()}={value.strip()}")
        elif sel in known:
            hits = [sel]
        else:
            raise CanaryError(f"{side}: no target named {sel!r} (a name, or a label as key=value)")
        out.extend(h for h in hits if h not in out)
    return out


def from_store(
    store: Store,
    baseline: Sequence[str],
    canary: Sequence[str],
    *,
    window: float,
    now: dt.datetime | None = None,
    extra_labels: Mapping[str, Mapping[str, str]] | None = None,
    max_snapshots: int = 2000,
) -> Collected:
    """Each selected target's snapshots of the last `window` seconds (newest `max_snapshots`)."""
    known: dict[str, Mapping[str, str]] = {t.name: t.labels for t in store.targets()}
    for name, labels in (extra_labels or {}).items():
        known.setdefault(name, labels)
    b = select_targets(baseline, known, "baseline")
    c = select_targets(canary, known, "canary")
    both = sorted(set(b) & set(c))
    if both:
        raise CanaryError(f"target {both[0]} is on both sides")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=window)
    out = Collected({}, {})
    for names, dest in ((b, out.baseline), (c, out.canary)):
        for name in names:
            metas = store.snapshots(name, limit=max_snapshots)
            n = sum(1 for m in metas if m.time >= cutoff)
            if n == 0:
                raise CanaryError(f"{name}: no snapshot in the last {window:g}s")
            snaps = store.recent_snapshots(name, n)
            dest[name] = [s for s in snaps if s.time is None or s.time >= cutoff]
    return out
