"""CPU per scrape of `grprof serve`'s pipeline, without HTTP or asyncio: where the time goes.

For every scrape the daemon parses the body (debug=1 by default; `--format debug=0` reads the
recorded profile.proto of the same programs), adds the snapshot to the target's window, runs
the detector over the window, and stores the scrape, its snapshot and the findings (one
transaction; before 2026-12-06 the store came before detection and the findings' sync was a
transaction of its own: phases "store scrape", "detect", "store findings"). This runs exactly
those calls, single-threaded, for N targets over R rounds (bodies: the recorded debug=1
profiles of tests/fixtures, one per target, cycling), and prints the CPU time and the bytes
per scrape of the last 5 rounds, when every window is full (40 snapshots).

The capture policy (grprof.collect.policy) decides, as in serve, which scrapes are debug=2
instead: the recorded debug=2 dump of the same program then. `--debug2-every 0` is serve
without the policy's scheduled debug=2 (as before it), `--format debug=2` every scrape a debug=2.
The bodies do not change between rounds, so no finding asks for extra debug=2 scrapes; those
are at most one per `debug2_extra_gap` (30 s: every other scrape at 15 s, i.e. `--debug2-every 2`).

    .venv/bin/python benchmarks/serve_pipeline.py --targets 100 --rounds 45 [--debug2-every 4] [--profile]

The scrapes are stored as the daemon stores them: queued (`add_scrape(..., wait=False)`) and
committed in batches by the store's writer thread (grprof.store.commits), whose CPU time is the
"store (writer thread)" phase; `--wait` stores each scrape in a transaction of its own, as
before 2026-12-07 (a tree without the `wait` parameter always does).

`--threads N` runs each round's scrapes on N worker threads, as the daemon's `asyncio.to_thread`
does (its default executor: 6 threads on 2 CPUs): the store then sees transactions from several
threads at once, and each phase is timed on its thread's own CPU clock.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import datetime as dt
import gc
import hashlib
import inspect
import json
import os
import pstats
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grprof.collect.model import ScrapeResult, Target
from grprof.collect.policy import CapturePolicy, CaptureSettings, CaptureState, offset_for
from grprof.detect.detector import Options
from grprof.detect.rules import load_rules
from grprof.detect.signals import default_settings
from grprof.serve import Window, judge_window, parse_payload
from grprof.store import ScrapeRecord, open_store

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
MEASURED = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=45, help="scrapes per target (window: 40)")
    ap.add_argument("--profile", action="store_true", help="cProfile the measured rounds")
    ap.add_argument(
        "--dump",
        type=Path,
        help="write each scrape's findings (round, target, SHA-256 of their JSON) to this file: "
        "two trees' files are equal when their detection agrees",
    )
    ap.add_argument("--debug2-every", type=int, default=4, help="scrape.debug2_every (0: never)")
    ap.add_argument(
        "--format", default="debug=1", choices=("debug=1", "debug=0", "debug=2"), help="scrape.format"
    )
    ap.add_argument(
        "--daemon-gc",
        action="store_true",
        help="the collector's thresholds as `grprof serve` sets them (grprof._gc.tune; "
        "default: CPython's, as in the numbers before 2026-12-06)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="worker threads per round (0: the scrapes one after the other, in the main thread)",
    )
    ap.add_argument("--wait", action="store_true", help="each scrape stored in its own transaction")
    ap.add_argument(
        "--memory",
        action="store_true",
        help="trace allocations (tracemalloc; CPU numbers then mean nothing) and print what the "
        "full windows hold: bytes per retained snapshot and the lines that allocated them",
    )
    args = ap.parse_args()
    if args.memory:
        tracemalloc.start(int(os.environ.get("MEMORY_FRAMES", "1")))
    if args.daemon_gc:
        from grprof import _gc

        _gc.tune(freeze=True)
    paths = [
        *sorted(FIXTURES.glob("states/*/goroutine.debug1.txt")),
        FIXTURES / "zoo" / "0-warm-up.goroutine.debug1.txt",
    ]
    if args.format == "debug=0":
        paths = [p.with_name(p.name.replace("debug1.txt", "debug0.pb.gz")) for p in paths]
        paths = [p for p in paths if p.is_file()]
    bodies = [p.read_bytes() for p in paths]
    detailed = [p.with_name(p.name.split(".debug")[0] + ".debug2.txt").read_bytes() for p in paths]
    policy = CapturePolicy(CaptureSettings(format=args.format, debug2_every=args.debug2_every))
    store = open_store(str(Path(tempfile.mkdtemp()) / "grprof.db"))
    names = [f"t{i}" for i in range(args.targets)]
    store.upsert_targets([Target(n, f"http://127.0.0.1:{10000 + i}", {}) for i, n in enumerate(names)], None)
    opts = Options(rules=load_rules())
    queued = (
        {} if args.wait or "wait" not in inspect.signature(store.add_scrape).parameters else {"wait": False}
    )
    windows: dict[str, Window] = {}
    states = {n: CaptureState(offset=offset_for(n)) for n in names}
    parts: collections.Counter[str] = collections.Counter()
    size: collections.Counter[str] = collections.Counter()
    per_kind: collections.defaultdict[str, float] = collections.defaultdict(float)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    dump = args.dump.open("w") if args.dump else None

    counting = threading.Lock()

    def scrape(i: int, r: int) -> None:
        name = names[i]
        decision = policy.next_scrape(states[name], 15.0 * r)
        kind = decision.kind
        body = (detailed if kind == "debug=2" else bodies)[i % len(bodies)]
        started = t0 + dt.timedelta(seconds=15 * r)
        phase[0] = "parse"
        a = time.thread_time()
        snap = parse_payload(ScrapeResult(name, kind, started, 0.01, "ok", len(body), body))
        b = time.thread_time()
        phase[0] = "window + detect"
        policy.observed(states[name], decision, True, 15.0 * r, snap.total)
        w = windows.setdefault(name, Window(collections.deque(maxlen=default_settings().window)))
        w.add(snap)
        j = judge_window(w.all(), w.snapshots[-1], opts)
        c = time.thread_time()
        phase[0] = "store"
        # as grprof serve: the scrape, its snapshot and the findings in one transaction
        store.add_scrape(
            ScrapeRecord(name, kind, started, 0.01, "ok", len(body)),
            snap,
            None,
            j.detection.findings,
            **queued,
        )
        policy.findings(states[name], j.detection.findings)
        e = time.thread_time()
        text = json.dumps([f.to_json() for f in j.detection.findings], sort_keys=True) if dump else ""
        with counting:
            if dump is not None:  # (with --threads, a round's lines in the order its scrapes ended)
                dump.write(f"{r} {name} {hashlib.sha256(text.encode()).hexdigest()}\n")
            size["bytes"] += len(body)
            size["findings"] += len(j.detection.findings)
            size[kind] += 1
            parts["parse"] += b - a
            per_kind[kind] += b - a
            parts["window + detect"] += c - b
            parts["store"] += e - c

    # The cyclic collector runs inside whichever call allocates: its time is inside the phases
    # above, in whichever a collection happened to fall (a full one takes about 0.2 s here).
    gc_time: collections.Counter[str] = collections.Counter()
    gc_start = [0.0]
    measuring = [False]
    phase = ["parse"]

    def on_gc(event: str, info: dict[str, int]) -> None:
        if event == "start":
            gc_start[0] = time.process_time()
        elif measuring[0]:
            gc_time["cpu"] += time.process_time() - gc_start[0]
            gc_time[phase[0]] += time.process_time() - gc_start[0]
            gc_time[f"gen{info['generation']}"] += 1

    gc.callbacks.append(on_gc)
    prof = cProfile.Profile() if args.profile else None
    pool = ThreadPoolExecutor(args.threads) if args.threads > 0 else None
    mark = 0.0
    writer_clock: list[int] = []
    writer_mark = 0.0
    for r in range(args.rounds):
        if r == args.rounds - MEASURED:
            store.snapshots(names[0], limit=1)  # a read: what earlier rounds queued is committed
            parts.clear()
            size.clear()
            per_kind.clear()
            writer_clock = [
                time.pthread_getcpuclockid(t.ident)
                for t in threading.enumerate()
                if t.name == "grprof-store-writer" and t.ident is not None
            ]
            writer_mark = sum(time.clock_gettime(c) for c in writer_clock)
            mark = time.process_time()
            measuring[0] = True
            if prof:
                prof.enable()
        if pool is None:
            for i in range(len(names)):
                scrape(i, r)
        else:
            list(pool.map(scrape, range(len(names)), [r] * len(names)))
    store.snapshots(names[0], limit=1)  # the last batch committed, inside the measured time
    if writer_clock:
        parts["store (writer thread)"] = sum(time.clock_gettime(c) for c in writer_clock) - writer_mark
    measuring[0] = False
    if prof:
        prof.disable()
    if dump is not None:
        dump.close()
    n = MEASURED * len(names)
    total = 1000 * (time.process_time() - mark) / n
    print(
        f"{len(names)} targets, window {min(args.rounds, default_settings().window)} snapshots; "
        f"format {args.format}, debug2_every {args.debug2_every}: "
        f"{size['debug=2'] / n:.0%} of the scrapes debug=2, {size['bytes'] / n / 1024:.1f} KiB and "
        f"{size['findings'] / n:.1f} findings per scrape"
    )
    print(
        f"CPU per scrape: {total:.2f} ms ("
        + ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in parts.items())
        + ")"
    )
    print(
        "parse CPU per scrape of each kind: "
        + ", ".join(
            f"{k} {1000 * v / size[k]:.2f} ms ({size[k]} scrapes)" for k, v in sorted(per_kind.items())
        )
    )
    print(
        f"of which the cyclic GC (within the phases): {1000 * gc_time['cpu'] / n:.2f} ms per scrape "
        f"({gc_time['gen0']}, {gc_time['gen1']}, {gc_time['gen2']} collections of generation 0, 1, 2); "
        "per phase without it: "
        + ", ".join(f"{k} {1000 * (v - gc_time[k]) / n:.2f}" for k, v in parts.items())
    )
    print(f"at 1,000 targets every 15 s: {total * 1000 / 15 / 1000:.2f} of one core, before HTTP and asyncio")
    if args.memory:
        memory_report(windows)
    if prof:
        # PROFILE_SORT (cumulative), PROFILE_TOP (30); PROFILE_CALLERS=REGEX: who calls what matches;
        # PROFILE_OUT=FILE: the stats, for pstats
        stats = pstats.Stats(prof).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
        stats.print_stats(int(os.environ.get("PROFILE_TOP", "30")))
        if os.environ.get("PROFILE_OUT"):
            stats.dump_stats(os.environ["PROFILE_OUT"])
        if os.environ.get("PROFILE_CALLERS"):
            stats.print_callers(os.environ["PROFILE_CALLERS"])


def memory_report(windows: dict[str, Window]) -> None:
    """What the windows hold: traced bytes before and after dropping them (the difference is
    theirs, with whatever only they kept alive), per retained snapshot, and by allocating line."""
    gc.collect()
    rss = _rss_mb()
    full = tracemalloc.take_snapshot()
    kept = sum(len(w.snapshots) + len(w.leak_profiles) for w in windows.values())
    windows.clear()
    gc.collect()
    empty = tracemalloc.take_snapshot()
    traced = sum(s.size for s in full.statistics("filename"))
    held = traced - sum(s.size for s in empty.statistics("filename"))
    print(
        f"memory: RSS {rss:.0f} MB; traced {traced / 1e6:.1f} MB, "
        f"of which the windows {held / 1e6:.1f} MB: {held / max(kept, 1) / 1024:.1f} KiB per retained "
        f"snapshot ({kept} snapshots)"
    )
    top = int(os.environ.get("MEMORY_TOP", "25"))
    key = "traceback" if tracemalloc.get_traceback_limit() > 1 else "lineno"
    print(f"what the windows held, by allocating {key} (KiB per retained snapshot):")
    for d in full.compare_to(empty, key)[:top]:  # full - empty, largest first
        tb = " <- ".join(str(f) for f in d.traceback)
        print(f"  {d.size_diff / max(kept, 1) / 1024:8.2f}  {d.count_diff / max(kept, 1):8.1f} objects  {tb}")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
