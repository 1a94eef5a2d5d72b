"""`grprof gate` and go/leakcheck agree on what is not a leak: every entry of leakcheck's
DefaultIgnores (go/leakcheck/ignore.go) is ignored by the gate's rules (data/rules.yaml and
data/gate.yaml), so a goroutine leakcheck lets pass never fails the gate.

The goroutines are written here as a debug=2 dump (one per function, parked as such daemons
park) and read by grprof's parser; the function names are the libraries' real ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import grprof
from grprof.gate.collect import gate_rules

IGNORE_GO = Path(__file__).resolve().parent.parent / "go" / "leakcheck" / "ignore.go"

# Real functions each default ignore is for; every DefaultIgnores pattern must match one.
EXAMPLES = [
    ("database/sql.(*DB).connectionOpener", "select"),
    ("database/sql.(*DB).connectionCleaner", "select"),
    ("k8s.io/klog/v2.(*flushDaemon).run.func1", "select"),
    ("k8s.io/klog/v2.(*loggingT).flushDaemon", "chan receive"),
    ("k8s.io/klog.(*loggingT).flushDaemon", "chan receive"),
    ("github.com/golang/glog.(*fileSink).flushDaemon", "select"),
    ("github.com/golang/glog.(*loggingT).flushDaemon", "chan receive"),
    ("go.opencensus.io/stats/view.(*worker).start", "select"),
    ("go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).processQueue", "select"),
    ("go.opentelemetry.io/otel/sdk/metric.(*PeriodicReader).run", "select"),
    ("os/signal.signal_recv", "syscall"),
    ("testing.(*T).Run", "chan receive"),
    ("testing.(*T).Parallel", "chan receive"),
    ("testing.tRunner.func1", "chan receive"),
    ("testing.(*M).startAlarm.func1", "sleep"),
]


def default_ignore_patterns() -> list[str]:
    return re.findall(r"\{Function: `([^`]+)`", IGNORE_GO.read_text())


def dump() -> bytes:
    out = []
    for i, (fn, state) in enumerate(EXAMPLES, start=10):
        pkg_file = fn.split("(")[0].rsplit(".", 1)[0].replace("/v2", "")
        out.append(
            f"goroutine {i} [{state}]:\n"
            "runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\t/usr/local/go/src/runtime/proc.go:460 +0xce\n"
            f"{fn}(0xc000100000)\n\t/go/pkg/mod/{pkg_file}/x.go:{100 + i} +0x85\n"
            f"created by main.main in goroutine 1\n\t/src/app/main.go:{20 + i} +0x25\n"
        )
    return "\n".join(out).encode()


def test_every_default_ignore_has_an_example() -> None:
    patterns = default_ignore_patterns()
    assert len(patterns) >= 10, patterns
    for pattern in patterns:
        assert any(re.fullmatch(pattern, fn) for fn, _ in EXAMPLES), f"no example for {pattern}"


def test_the_gate_ignores_what_leakcheck_ignores() -> None:
    snap = grprof.load(dump(), name="defaults.txt")
    rules = gate_rules()
    ignored = {g.site.function if g.site else "": rules.ignored(g) for g in snap.groups()}
    by_function = {
        next(f.function for f in g.frames if not f.is_runtime): rules.ignored(g) for g in snap.groups()
    }
    missed = [fn for fn, _ in EXAMPLES if by_function.get(fn) is None]
    assert not missed, f"leakcheck ignores these, the gate does not: {missed} ({ignored})"
