#!/usr/bin/env python3
"""`grprof analyze` on a dump where every goroutine has its own stack (issue 14).

    .venv/bin/python benchmarks/analyze.py [-n 20000] [--iters 5] [--json OUT] [--profile]

It builds `goapps/distinct` (cached in benchmarks/.work/), has it park N goroutines with N
distinct stacks (3 to 20 frames, random walks over 300 generated functions) and write the
same process's debug=2 dump (~25 MB at N = 20,000), debug=1 text and debug=0 profile, then,
for each of the three files, with the native scanner and with GRPROF_PURE=1:

- end to end, as a user runs it: `.venv/bin/grprof analyze FILE > /dev/null` in a
  subprocess (start-up and imports included), one warm-up, then best and median of N;
- in-process phases, in one child Python process (one warm-up, then best and median of
  N, each run from a fresh `load`): `load` (read and parse), `groups` (aggregation),
  `detect`, `report` (`build_report` and the text report, rendered to /dev/null), the
  same calls in the same order as `grprof analyze` (`cli.analyze`).

`--profile` appends a cProfile (own time and cumulative) of one in-process run on the
debug=2 dump per scanner. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
APP = HERE / "goapps" / "distinct"
GRPROF = REPO / ".venv" / "bin" / "grprof"
INPUTS = {"debug2": ".debug2.txt", "debug1": ".debug1.txt", "debug0": ".debug0.pb.gz"}
PHASES = ("load", "groups", "detect", "report")


# --- the input ----------------------------------------------------------------------------


def build() -> Path:
    """Build goapps/distinct into .work/distinct unless the binary is newer than every source."""
    out = WORK / "distinct"
    newest = max(p.stat().st_mtime for p in APP.rglob("*") if p.suffix in (".go", ".mod"))
    if not out.exists() or out.stat().st_mtime < newest:
        WORK.mkdir(parents=True, exist_ok=True)
        print("building distinct ...", file=sys.stderr)
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=APP, check=True)
    return out


def make_inputs(binary: Path, n: int) -> dict[str, Path]:
    """The three files of one `distinct -n N` process, generated when missing or stale."""
    prefix = WORK / f"distinct-{n}"
    paths = {k: Path(str(prefix) + ext) for k, ext in INPUTS.items()}
    if all(p.exists() and p.stat().st_mtime >= binary.stat().st_mtime for p in paths.values()):
        return paths
    print(f"generating {prefix.name}.* ({n:,} goroutines, {n:,} distinct stacks) ...", file=sys.stderr)
    tmp = Path(str(prefix) + ".tmp")
    subprocess.run([str(binary), "-n", str(n), "-out", str(tmp)], check=True, stdout=subprocess.DEVNULL)
    for k, ext in INPUTS.items():
        Path(str(tmp) + ext).rename(paths[k])
    return paths


# --- in a child process -------------------------------------------------------------------


def analyze_phases(path: str) -> dict[str, float]:
    """One `grprof analyze PATH` in-process, as cli.analyze runs it, timed per phase."""
    from contextlib import redirect_stdout

    from grprof.cli import build_parser, detection_options, load_inputs
    from grprof.detect.detector import detect
    from grprof.report import text
    from grprof.report.model import GroupFilter, build_report

    args = build_parser().parse_args(["analyze", path])
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    opts = detection_options(args)  # the rule set: loaded once per process, cached
    snaps = load_inputs(args.inputs, args.max_size, args.timeout)
    t1 = time.perf_counter()
    for s in snaps:
        s.groups(args.similarity)  # memoized: detect and the report reuse it
    t2 = time.perf_counter()
    detection = detect(snaps, opts)
    t3 = time.perf_counter()
    report = build_report(snaps, args.similarity, GroupFilter(None, None, 1), detection)
    with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
        console = text.make_console()
        text.render(report, console, top=args.top, stacks=args.stacks, max_frames=args.frames)
    t4 = time.perf_counter()
    t.update(load=t1 - t0, groups=t2 - t1, detect=t3 - t2, report=t4 - t3, total=t4 - t0)
    t["goroutines"] = sum(s.total for s in snaps)
    t["groups_n"] = sum(len(s.groups(args.similarity)) for s in snaps)
    t["findings"] = len(detection.findings)
    return t


def child_phases(path: str, iters: int) -> dict[str, Any]:
    from grprof.formats.traceback import native_scanner

    analyze_phases(path)  # warm-up: imports, rule set, caches
    runs = []
    for _ in range(iters):
        gc.collect()
        runs.append(analyze_phases(path))
    return {"runs": runs, "native": native_scanner() is not None}


def child_profile(path: str, top: int) -> None:
    import cProfile
    import pstats

    analyze_phases(path)
    prof = cProfile.Profile()
    prof.enable()
    analyze_phases(path)
    prof.disable()
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def child_env(pure: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GRPROF_PURE", None)
    if pure:
        env["GRPROF_PURE"] = "1"
    return env


def run_child(args: list[str], pure: bool) -> dict[str, Any]:
    with tempfile.TemporaryFile() as out:
        subprocess.run(
            [sys.executable, __file__, "--child", *args], stdout=out, check=True, env=child_env(pure)
        )
        out.seek(0)
        return json.loads(out.read())


# --- end to end -----------------------------------------------------------------------------


def end_to_end(path: Path, iters: int, pure: bool) -> dict[str, Any]:
    """`grprof analyze PATH > /dev/null`: one warm-up, then `iters` timed runs (wall time).

    The warm-up's output is kept and checked: a run that printed no report is no measurement."""
    times = []
    rc = 0
    for i in range(iters + 1):
        with tempfile.TemporaryFile() as out, open(os.devnull, "wb") as devnull:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [str(GRPROF), "analyze", str(path)],
                stdout=devnull if i else out,
                stderr=subprocess.PIPE,
                env=child_env(pure),
            )
            elapsed = time.perf_counter() - t0
            rc = proc.returncode
            if rc not in (0, 1):
                raise SystemExit(f"grprof analyze {path} failed ({rc}): {proc.stderr.decode()[-400:]}")
            if i:
                times.append(elapsed)
            else:
                out.seek(0)
                if b" goroutines in " not in out.read():
                    raise SystemExit(
                        f"grprof analyze {path} printed no report: {proc.stderr.decode()[-400:]}"
                    )
    return {"best": min(times), "median": statistics.median(times), "times": times, "exit": rc}


# --- main -----------------------------------------------------------------------------------


def native_available() -> bool:
    try:
        from grprof import _native
    except ImportError:
        return False
    return hasattr(_native, "Scanner")


def fmt_row(name: str, e2e: dict[str, Any], ph: dict[str, Any]) -> list[str]:
    runs = ph["runs"]

    def cell(k: str) -> str:
        vals = [r[k] for r in runs]
        return f"{min(vals):.2f} / {statistics.median(vals):.2f}"

    return [
        name,
        f"{e2e['best']:.2f} / {e2e['median']:.2f}" if e2e["times"] else "-",
        *(cell(k) for k in (*PHASES, "total")),
        f"{runs[0]['goroutines']:,}",
        f"{runs[0]['groups_n']:,}",
        str(runs[0]["findings"]),
    ]


def table(rows: list[list[str]]) -> str:
    head = ["input, scanner", "end to end", *PHASES, "in-process", "goroutines", "groups", "findings"]
    lines = [head, *rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = [
        " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in lines
    ]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out) + "\n(seconds, best / median; end to end includes start-up and imports)"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "-n", type=int, default=20_000, help="goroutines, each with its own stack (default 20000)"
    )
    ap.add_argument("--iters", type=int, default=5, help="timed runs per measurement (default 5)")
    ap.add_argument("--inputs", nargs="+", choices=tuple(INPUTS), default=list(INPUTS), help="which files")
    ap.add_argument("--pure-only", action="store_true", help="only GRPROF_PURE=1")
    ap.add_argument("--native-only", action="store_true", help="only the native scanner")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end subprocess runs")
    ap.add_argument("--json", metavar="OUT", help="also write all results as JSON to OUT")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one in-process run (debug=2)")
    ap.add_argument("--top", type=int, default=30, help="functions per cProfile listing (default 30)")
    return ap.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, *rest = sys.argv[2:]
        if mode == "phases":
            print(json.dumps(child_phases(rest[0], int(rest[1]))))
        elif mode == "profile":
            child_profile(rest[0], int(rest[1]))
        return
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    from parse import machine

    paths = make_inputs(build(), args.n)
    info = machine()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}; {info['go']}; Python {info['python']}; "
        f"grprof {info['grprof_commit']}; load average {info['loadavg_1m']}"
    )
    for k, p in paths.items():
        print(f"{k}: {p} ({p.stat().st_size / 1e6:.1f} MB)")
    modes = [False, True] if native_available() else [True]
    if args.pure_only:
        modes = [True]
    elif args.native_only:
        modes = [False]
    rows, results = [], []
    for k in args.inputs:
        for pure in modes:
            name = f"{k}, {'pure Python' if pure else 'native'}"
            e2e = {"best": float("nan"), "median": float("nan"), "times": []}
            if not args.no_e2e:
                e2e = end_to_end(paths[k], args.iters, pure)
            ph = run_child(["phases", str(paths[k]), str(args.iters)], pure)
            rows.append(fmt_row(name, e2e, ph))
            results.append({"input": k, "file": str(paths[k]), "pure": pure, "end_to_end": e2e, "phases": ph})
            total = min(r["total"] for r in ph["runs"])
            done = f"end to end {e2e['best']:.2f} s, in-process {total:.2f} s (best)"
            print(f"  {name}: {done}", file=sys.stderr)
    print()
    print(table(rows))
    if args.profile:
        for pure in modes:
            print(
                f"\ncProfile of one in-process `grprof analyze` of {paths['debug2'].name}"
                f"{' with GRPROF_PURE=1' if pure else ''}:"
            )
            cmd = [sys.executable, __file__, "--child", "profile", str(paths["debug2"]), str(args.top)]
            subprocess.run(cmd, check=True, env=child_env(pure))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
