#!/usr/bin/env python3
"""What grprof says about each real-world leak kernel and healthy control (tests/goapps/kernels).

    .venv/bin/python benchmarks/kernels.py                 # the recorded tests/fixtures/kernels
    .venv/bin/python benchmarks/kernels.py --live          # record a fresh series (about 30 s)
    .venv/bin/python benchmarks/kernels.py --fixture DIR [--only-misses] [--details]

One row per truth entry: its name, kind, expected category (leaks), then per variant the
verdict and category grprof gives (`leak/channel`, `suspect/sync`, `-` for no finding), for
the debug=2 series, the same with --source tests/goapps/kernels, the debug=1 and debug=0
series, and the debug=2 series of the second run plus its goroutineleak profiles. A `*`
marks a cell that is wrong: a leak not found as a leak in its category, a control called a
leak. Totals follow. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import kernels  # noqa: E402
from kernels import VARIANTS, Outcome, Recording  # noqa: E402


def wrong(o: Outcome) -> bool:
    return (o.kind == "leak" and not o.found) or (o.kind == "control" and o.verdict == "leak")


def table(rec: Recording, results: dict[str, list[Outcome] | None], only_misses: bool) -> str:
    names = [v.name for v in VARIANTS if results[v.name] is not None]
    by_variant = {n: {o.name: o for o in results[n] or []} for n in names}
    header = ["entry", "kind", "category", *names]
    rows = []
    for e in rec.entries:
        cells = []
        bad = False
        for n in names:
            o = by_variant[n][e["name"]]
            bad |= wrong(o)
            cells.append(o.cell() + (" *" if wrong(o) else ""))
        if only_misses and not bad:
            continue
        rows.append([e["name"], e["kind"], e["category"] or "-", *cells])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.append("")
    out += totals(names, results)
    return "\n".join(out)


def totals(names: Sequence[str], results: dict[str, list[Outcome] | None]) -> list[str]:
    lines = ["totals"]
    for n in names:
        rs = results[n] or []
        leaks = [o for o in rs if o.kind == "leak"]
        controls = [o for o in rs if o.kind == "control"]
        found = sum(o.found for o in leaks)
        leak_any = sum(o.verdict == "leak" for o in leaks)
        suspect = sum(o.verdict == "suspect" for o in leaks)
        missed = sum(o.verdict is None for o in leaks)
        false_leak = sum(o.verdict == "leak" for o in controls)
        false_suspect = sum(o.verdict == "suspect" for o in controls)
        lines.append(
            f"  {n:15} leaks: {found}/{len(leaks)} found in their category "
            f"({leak_any} called leak, {suspect} suspect, {missed} no finding); "
            f"controls: {false_leak}/{len(controls)} called leak, {false_suspect} suspect"
        )
    return lines


def details(rec: Recording, results: dict[str, list[Outcome] | None]) -> str:
    out = []
    for v in VARIANTS:
        rs = results[v.name]
        if rs is None:
            continue
        bad = [o for o in rs if wrong(o)]
        out.append(f"== {v.name}: {len(bad)} wrong")
        out += [f"  - {o.describe()}" for o in bad]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fixture", type=Path, default=kernels.FIXTURES, help="a recording (record.sh's output)"
    )
    parser.add_argument("--live", action="store_true", help="record a fresh series instead")
    parser.add_argument("--steps", type=int, default=kernels.STEPS)
    parser.add_argument("--interval", type=float, default=kernels.INTERVAL)
    parser.add_argument("--only-misses", action="store_true", help="only the rows with a wrong cell")
    parser.add_argument("--details", action="store_true", help="the findings behind every wrong cell")
    args = parser.parse_args(argv)
    if args.live:
        rec = kernels.record_live(steps=args.steps, interval=args.interval)
        problems = kernels.check_recording(rec)
        if problems:
            print("the live dumps disagree with /truth:\n  " + "\n  ".join(problems), file=sys.stderr)
    else:
        rec = kernels.load_recording(args.fixture)
    leaks = sum(e["kind"] == "leak" for e in rec.entries)
    print(
        f"leak kernels: {rec.truth['go_version']}, {leaks} leaks and {len(rec.entries) - leaks} controls, "
        f"{len(next(iter(rec.runs.values())).times)} snapshots {rec.interval:g} s apart "
        f"(stamped {kernels.STAMP_SECONDS} s apart)"
    )
    print()
    results = {v.name: kernels.evaluate(rec, v) for v in VARIANTS}
    print(table(rec, results, args.only_misses))
    if args.details:
        print()
        print(details(rec, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
