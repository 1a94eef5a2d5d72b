"""Root-cause rules (grprof.detect.rules) against real goroutine stacks.

What runs here, all real Go output:
- the recorded `tests/fixtures/states` profiles (Go 1.19-1.27, debug=0/1/2): every scenario
  of tests/goapps/states classifies into the category its wait says;
- the recorded crash fixtures: the runtime's own goroutines and the testing framework's are
  ignored, no goroutine of the program is;
- `examples/leaky`, built and run: its leakyHandler is the send-after-timeout rule;
- RULESTACKS below, a Go program built from the module proxy (grpc-go v1.85.0,
  modernc.org/sqlite v1.62.0, go-sql-driver/mysql v1.9.3 against a private MariaDB when one
  is installed): goroutines parked the way services leak them inside net/http,
  database/sql, MySQL, gRPC, context, os/signal, time, sync, x/sync and raw IO;
- the leak zoo's recorded fixtures (tests/fixtures/zoo), when present.
Plus loading and validation: one-line errors, overrides, entry points, placeholders.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import liars
import pytest
from gobuild import cache_dir
from test_longrun import series as woken_series

import grprof
from grprof.detect import rules as rules_mod
from grprof.detect.detector import Options, detect
from grprof.detect.model import CATEGORIES, Explanation
from grprof.detect.rules import RulesError, RuleSet, load_rules, parse_yaml
from grprof.errors import GrprofError
from grprof.formats import debug1, pprof
from grprof.model import Group, Snapshot

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FORMATS = ("debug=0", "debug=1", "debug=2")
# Rules no real stack in this suite reaches, and why.
UNTESTED = {
    "kitex-netpoll-singletons": "the Go module proxy does not serve github.com/cloudwego/kitex",
    "kitex-client-per-request": "the Go module proxy does not serve github.com/cloudwego/kitex",
    "kitex-call-no-timeout": "the Go module proxy does not serve github.com/cloudwego/kitex",
    "kitex-streaming": "the Go module proxy does not serve github.com/cloudwego/kitex",
    "kitex-library": "the Go module proxy does not serve github.com/cloudwego/kitex",
}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(entry_points=False)


def _load(path: Path) -> list[Snapshot]:
    data = path.read_bytes()
    if path.name.endswith(".pb.gz"):
        return [pprof.parse(gzip.decompress(data), str(path))]
    if path.name.endswith(".debug1.txt"):
        return debug1.parse(data, str(path))
    return grprof.load_all(path)


def _classify(rules: RuleSet, g: Group) -> tuple[str, str | None]:
    """(category, rule id), ("ignored", ignore id) or ("none", None)."""
    ig = rules.ignored(g)
    if ig:
        return "ignored", ig
    e = rules.classify(g)
    return (e.category, e.rule) if e else ("none", None)


def _main_function(g: Group) -> str | None:
    return next((f.function for f in g.frames if f.function.startswith("main.")), None)


# ------------------------------------------------------------------ loading and validation


def test_shipped_rules_are_valid_and_loaded_once(rules: RuleSet) -> None:
    assert len(rules) >= 40 and len(rules.ignores) >= 8
    ids = [r.id for r in rules.rules]
    assert len(ids) == len(set(ids))
    for r in rules.rules:
        assert r.category in CATEGORIES or r.category.startswith("sdk/"), r.id
        assert r.title and r.explanation and r.fix, r.id
    assert rules_mod._shipped() is rules_mod._shipped()  # parsed once, cached
    # Every category the issue names has rules.
    assert {r.category for r in rules.rules} >= set(CATEGORIES) - {"unknown"}


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _error(path: Path) -> str:
    with pytest.raises(RulesError) as e:
        load_rules([path], entry_points=False)
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, GrprofError)
    return msg


RULE = """\
    version: 1
    rules:
      - id: mine
        category: channel
        when: {state: [chan send]}
        title: t
        explanation: e
        fix: f
"""


def test_unknown_key_names_file_rule_and_key(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        RULE
        + """\
      - id: chan-send
        category: channel
        when:
          stat: [chan send]
        title: t
        explanation: e
        fix: f
    """,
    )
    assert _error(p) == f'{p}:12: rules.1.when.stat: unknown key (did you mean "state"?)'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("version: 2\nrules: []\n", ":1: version: Input should be 1"),
        ("- a\n", ":1: (top level): must be a mapping of keys (version, rules, ignore, ...), got a list"),
        ("version: 1\nrule: []\n", ':2: rule: unknown key (did you mean "rules"?)'),
        ("version: 1\nrules: [\n", ":3: not valid YAML"),
        (
            RULE.replace("category: channel", "category: chanel"),
            ':4: rules.0.category: unknown category "chanel", nor "sdk/<library>" (did you mean "channel"?)',
        ),
        (RULE.replace("        fix: f\n", ""), ":3: rules.0.fix: missing"),
        (
            RULE.replace("{state: [chan send]}", "{frames: 'main\\.(foo'}"),
            ':5: rules.0.when.frames: bad regex "main\\.(foo"',
        ),
        (
            RULE + "        max_verdict: maybe\n",
            ":9: rules.0.max_verdict: Input should be 'leak' or 'suspect'",
        ),
        (
            RULE + "        wait_kind: sleepy\n",
            ":9: rules.0.wait_kind: Input should be 'blocking', 'waiting' or 'idle'",
        ),
        (RULE.replace("id: mine", "id: Mine!"), ":3: rules.0.id: want lowercase"),
        (RULE + RULE.split("rules:\n")[1], ':9: rules.1.id: "mine" is used twice'),
        (
            RULE.replace("{state: [chan send]}", "{site_is_innermost: yes please}"),
            ":5: rules.0.when.site_is_innermost: Input should be a valid boolean",
        ),
        (
            "version: 1\nignore:\n  - id: x\n    reason: r\n",
            ":3: ignore.0: needs at least one of top_function",
        ),
        ("version: 1\nignore:\n  - id: x\n    any_function: f\n", ":3: ignore.0.reason: missing"),
        (
            RULE.replace("{state: [chan send]}", "{source: [ctx-dne]}"),
            ':5: rules.0.when.source.0: unknown wait kind "ctx-dne" (did you mean "ctx-done"?)',
        ),
        (
            RULE.replace("{state: [chan send]}", "{stack: [chanel]}"),
            ':5: rules.0.when.stack.0: unknown category "chanel", nor "sdk/<library>" '
            '(did you mean "channel"?)',
        ),
        ("version: 1\nstack:\n  waits: []\n", ":3: stack.waits: unknown key"),
        (
            "version: 1\nstack: [a]\n",
            ":2: stack: must be a mapping of keys (calls, creators, runtime, ...), got a list",
        ),
        (
            "version: 1\nstack:\n  calls:\n    - {category: io, what: x}\n",
            ":4: stack.calls.0.frames: missing",
        ),
        (
            "version: 1\nstack:\n  calls:\n    - {category: io, what: x, frames: f, created_by: g}\n",
            ":4: stack.calls.0.created_by: belongs in stack.creators, not calls",
        ),
        (
            "version: 1\nstack:\n  states:\n    - {category: io, state: [IO wait]}\n",
            ":4: stack.states.0.what: missing",
        ),
        (
            "version: 1\nstack:\n  runtime:\n    - {category: chanel, what: w, frames: f}\n",
            ':4: stack.runtime.0.category: unknown category "chanel", nor "sdk/<library>" '
            '(did you mean "channel"?)',
        ),
    ],
)
def test_validation_errors_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    p = _write(tmp_path, body)
    msg = _error(p)
    assert msg.startswith(f"{p}:") and message in msg, msg


def test_unreadable_rule_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "missing.yaml").startswith(f"{tmp_path / 'missing.yaml'}: cannot read rule file")


def test_exact_names_need_no_escaping_and_regexes_match_whole_names() -> None:
    src = parse_yaml(
        textwrap.dedent("""\
        version: 1
        ignore:
          - id: exact
            any_function: ['sync.(*Mutex).Lock']
            reason: r
          - id: regex
            any_function: 'main\\.worker\\.func\\d+'
            reason: r
    """),
        "inline",
    )
    exact, regex = src.ignores
    assert exact.any_function is not None and regex.any_function is not None
    assert exact.any_function("sync.(*Mutex).Lock") and not exact.any_function("sync.(*Mutex).Unlock")
    assert regex.any_function("main.worker.func12") and not regex.any_function("main.worker.func1.x")


# ------------------------------------------------------------------ states fixtures

# What each scenario of tests/goapps/states is, by format: (category, rule id).
_CHANNEL = {
    "chan_receive": "chan-receive-no-sender",
    "deep": "chan-receive-no-sender",
    "handler": "chan-receive-no-sender",
    "labeled": "chan-receive-no-sender",
    "labeled_child": "chan-receive-no-sender",
    "leak": "chan-receive-no-sender",
    "locked": "chan-receive-no-sender",
    "orphan": "chan-receive-no-sender",
    "chan_send": "chan-send-no-receiver",
    "select": "select-never-fires",
    "select_no_cases": "select-no-cases",
    "nil_chan_send": "chan-send-nil",
}
_OTHER = {
    "nil_chan_receive": ("context", "context-nil-done"),
    "mutex": ("sync", "sync-mutex-not-unlocked"),
    "rwmutex_lock": ("sync", "sync-rwmutex-not-unlocked"),
    "rwmutex_rlock": ("sync", "sync-rwmutex-not-unlocked"),
    "waitgroup": ("sync", "sync-waitgroup-never-zero"),
    "cond": ("sync", "sync-cond-never-signalled"),
    "sleep": ("timer", "timer-sleep-loop"),
    "io_wait": ("io", "io-read-no-deadline"),
    "syscall": ("io", "io-syscall-read"),
    "main": ("ignored", "main-goroutine"),
    "server": ("ignored", "http-server-accept-loop"),
}


def _expected_states(kind: str, fmt: str, state: str) -> tuple[str, str]:
    # debug=1 hides the runtime frames of channel and select waits (docs/formats.md): where
    # grprof cannot infer the wait from the hidden frames' PCs either, a goroutine parked
    # directly in its own code is "some channel operation".
    if fmt == "debug=1" and state == "unknown" and (kind in _CHANNEL or kind == "nil_chan_receive"):
        return "channel", "chan-blocked"
    if kind in _CHANNEL:
        return "channel", _CHANNEL[kind]
    return _OTHER[kind]


def _state_profiles() -> list[Any]:
    out = []
    for d in sorted((FIXTURES / "states").glob("go1.*")):
        for f in sorted(d.glob("goroutine.debug*")):
            out.append(pytest.param(f, id=f"{d.name}/{f.name}"))
    return out


@pytest.mark.parametrize("path", _state_profiles())
def test_states_fixtures_classify_by_their_wait(rules: RuleSet, path: Path) -> None:
    truth = json.loads((path.parent / "truth.json").read_text())
    kinds = {g["function"]: g["kind"] for g in truth["goroutines"]}
    (snap,) = _load(path)
    seen = set()
    for g in snap.groups():
        fn = _main_function(g)
        if fn not in kinds:
            continue
        kind = kinds[fn]
        seen.add(kind)
        assert _classify(rules, g) == _expected_states(kind, snap.format, g.state), (kind, fn, g.states)
    assert seen == set(kinds.values())


# ------------------------------------------------------------------ crash fixtures


def _crash_files() -> list[Path]:
    # Each dump has a truth file beside it; other .txt files there are not dumps.
    return sorted(
        p for p in (FIXTURES / "crash").glob("go1.*/*.txt") if p.with_suffix(".truth.json").is_file()
    )


_SYSTEM = {
    "runtime.forcegchelper",
    "runtime.bgsweep",
    "runtime.bgscavenge",
    "runtime.runfinq",
    "runtime.runCleanups",
}


def test_runtime_goroutines_are_ignored_and_program_goroutines_are_not(rules: RuleSet) -> None:
    ignored: collections.Counter[str] = collections.Counter()
    for path in _crash_files():
        for snap in grprof.load_all(path):
            for g in snap.groups():
                ig = rules.ignored(g)
                mains = [f.function for f in g.frames if f.function.startswith("main.")]
                created = g.created_by.function if g.created_by else ""
                system = (
                    created.startswith(("runtime.", "unique."))
                    or g.state == "idle"  # an M's scheduler stack (GOTRACEBACK=crash)
                    or any(f.function in _SYSTEM for f in g.frames)
                )
                if system:
                    assert ig, (path, g.state, [f.function for f in g.frames])
                if mains and mains != ["main.main"] and "main.main" not in mains:
                    assert ig is None, (path, ig, mains)
                if ig:
                    ignored[ig] += 1
    # System goroutines show at GOTRACEBACK=system and crash; M stacks only at crash.
    assert {"runtime-background", "runtime-gcenable", "runtime-scheduler", "main-goroutine"} <= set(ignored)


@pytest.mark.parametrize("path", sorted((FIXTURES / "crash").glob("go1.*/gotest-timeout*.txt")), ids=str)
def test_go_test_timeout_ignores_the_framework_not_the_hung_test(rules: RuleSet, path: Path) -> None:
    (snap,) = grprof.load_all(path)
    by_top: dict[str, set[tuple[str, str | None]]] = collections.defaultdict(set)
    for g in snap.groups():
        by_top[g.frames[0].function].add(_classify(rules, g))
    # Goroutine 1 (main.main -> testing.(*M).Run -> ... -> t.Run) and the parent test in t.Run.
    assert by_top["testing.(*T).Run"] == {("ignored", "main-goroutine"), ("ignored", "testing-framework")}
    assert by_top["testing.(*M).startAlarm.func1"] == {("ignored", "testing-framework")}
    hung = {fn: c for fn, c in by_top.items() if fn.startswith("grproftest/")}
    assert hung and all(c == {("channel", "chan-receive-no-sender")} for c in hung.values()), hung


# ------------------------------------------------------------------ building and running Go


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no go toolchain on PATH")
    return go


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}


def _build(name: str, files: dict[str, str], *, tidy: bool) -> Path:
    """Build a Go module from sources into the test cache (once per sources and Go version)."""
    go = _go()
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(repr((sorted(files.items()), version)).encode()).hexdigest()[:16]
    binary = cache_dir() / f"{name}-{version.strip()}-{key}"
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory(prefix=f"grprof-{name}-") as tmp:
        for fname, text in files.items():
            (Path(tmp) / fname).write_text(text)
        steps = ([[go, "mod", "tidy"]] if tidy else []) + [[go, "build", "-o", "bin", "."]]
        for cmd in steps:
            proc = subprocess.run(cmd, cwd=tmp, env=_go_env(), capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"{' '.join(cmd)} for {name} failed:\n{proc.stderr[-4000:]}"
        staged = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
        shutil.copy2(Path(tmp) / "bin", staged)
        os.replace(staged, binary)
    return binary


def _groups(
    snaps: dict[str, Snapshot], rules: RuleSet
) -> Iterator[tuple[str, Group, tuple[str, str | None]]]:
    for fmt, snap in snaps.items():
        for g in snap.groups():
            yield fmt, g, _classify(rules, g)


# ------------------------------------------------------------------ examples/leaky, live


@pytest.fixture(scope="module")
def leaky_snapshots() -> dict[str, Snapshot]:
    src = ROOT / "examples" / "leaky"
    binary = _build("leaky", {p.name: p.read_text() for p in src.iterdir() if p.is_file()}, tidy=False)
    proc = subprocess.Popen(
        [str(binary), "-addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(60), "examples/leaky printed no LISTEN line"
        line = proc.stdout.readline().decode()
        assert line.startswith("LISTEN "), line
        base = line.split()[1]
        time.sleep(2)  # its built-in client sends 40 requests/s; half of them leak
        snaps = {}
        for n, fmt in enumerate(FORMATS):
            with urllib.request.urlopen(f"{base}/debug/pprof/goroutine?debug={n}", timeout=30) as resp:
                snaps[fmt] = grprof.load(resp.read())
        return snaps
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_leaky_handler_is_the_send_after_timeout_leak(
    rules: RuleSet, leaky_snapshots: dict[str, Snapshot], fmt: str
) -> None:
    snap = leaky_snapshots[fmt]
    assert snap.format == fmt
    leaks = [
        g
        for g in snap.groups()
        if g.site and g.site.function == "main.leakyHandler.func1" and g.state in ("chan send", "unknown")
    ]
    assert leaks and max(g.count for g in leaks) >= 5
    (leak,) = [g for g in leaks if g.count == max(x.count for x in leaks)]
    exp = rules.classify(leak)
    assert exp is not None and exp.category == "channel"
    # debug=1 shows the send itself only where the hidden frames' PCs tell it.
    hidden = fmt == "debug=1" and leak.state == "unknown"
    assert exp.rule == ("chan-blocked-per-request" if hidden else "chan-send-after-timeout")
    assert f"{leak.count} goroutines started by main.leakyHandler" in exp.explanation
    # The buffered-channel fix, with one slot per sender: one per request. In debug=2 every
    # worker shares its creator (the keep-alive connection's goroutine serves request after
    # request), but their ids are not consecutive: each request started one.
    assert re.search(r"make\(chan \w+, 1\)", exp.fix), exp.fix
    if fmt == "debug=2":
        assert "started 1 at a time" in exp.fix or "1 per creator goroutine" in exp.fix, exp.fix
    # The worker pool ranges over a channel: debug=0 shows the range (runtime.chanrecv2).
    pool = [g for g in snap.groups() if g.site and g.site.function == "main.workerPool.func1"]
    assert [_classify(rules, g) for g in pool] == [
        {
            "debug=0": ("channel", "chan-range-never-closed"),
            "debug=1": (
                "channel",
                "chan-blocked" if pool[0].state == "unknown" else "chan-receive-no-sender",
            ),
            "debug=2": ("channel", "chan-receive-no-sender"),
        }[fmt]
    ]
    accept = [g for g in snap.groups() if any(f.function == "net/http.(*Server).Serve" for f in g.frames)]
    assert [rules.ignored(g) for g in accept] == ["main-goroutine"]


# ------------------------------------------------------------------ RULESTACKS, a Go program


# Every version pinned, as `go mod tidy` resolved them (grpc-go v1.85.0 is the one the rules
# were written against).
RULESTACKS_GOMOD = """\
module grprof.test/rulestacks

go 1.24

require (
	github.com/go-sql-driver/mysql v1.9.3
	github.com/golang/glog v1.2.5
	go.opencensus.io v0.24.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/sdk/metric v1.47.0
	golang.org/x/sync v0.25.0
	google.golang.org/grpc v1.85.0
	k8s.io/klog/v2 v2.140.0
	modernc.org/sqlite v1.62.0
)

require (
	filippo.io/edwards25519 v1.1.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)
"""

RULESTACKS = r"""// rulestacks parks goroutines the way services leak them (and the way healthy services
// keep them), inside net/http, database/sql (SQLite, and MySQL when given a DSN), grpc-go,
// context, os/signal, time, sync and x/sync, then writes its goroutine profile in debug=0,
// 1 and 2 to -out and exits. grprof's rule tests classify every group it produces.
package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/golang/glog"      // its init starts the log flush daemon
	_ "go.opencensus.io/stats/view" // its init starts the default stats worker
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"k8s.io/klog/v2"
	_ "modernc.org/sqlite"
)

var (
	keep  []any            // leaked objects stay reachable, as in a service's long-lived state
	never = make(chan int) // nobody ever sends on it or closes it
	n     int
)

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// ---- HTTP handlers that leak the goroutines they start (called over real HTTP below)

// timeoutHandler is the classic leakyHandler: the worker's send blocks forever
// once the handler has given up waiting.
func timeoutHandler(w http.ResponseWriter, r *http.Request) {
	ch := make(chan string)
	go func() {
		time.Sleep(20 * time.Millisecond)
		ch <- "done"
	}()
	select {
	case msg := <-ch:
		io.WriteString(w, msg)
	case <-time.After(time.Millisecond):
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

// pollHandler starts a polling loop per request that nothing ever stops.
func pollHandler(w http.ResponseWriter, r *http.Request) {
	go func() {
		for {
			time.Sleep(time.Hour)
		}
	}()
}

// tickerHandler starts a ticker loop per request that nothing ever stops.
func tickerHandler(w http.ResponseWriter, r *http.Request) {
	go func() {
		t := time.NewTicker(time.Hour)
		for range t.C {
		}
	}()
}

// backgroundCtxHandler waits for a context derived from Background: it never ends.
func backgroundCtxHandler(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(context.Background(), "request", r.URL.Path)
	go func() {
		<-ctx.Done()
	}()
}

// hangHandler never answers: its clients wait for response headers forever.
func hangHandler(w http.ResponseWriter, r *http.Request) {
	<-never
}

func httpScenarios() {
	mux := http.NewServeMux()
	mux.HandleFunc("/timeout", timeoutHandler)
	mux.HandleFunc("/poll", pollHandler)
	mux.HandleFunc("/ticker", tickerHandler)
	mux.HandleFunc("/bgctx", backgroundCtxHandler)
	mux.HandleFunc("/hang", hangHandler)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go (&http.Server{Handler: mux}).Serve(ln)
	url := "http://" + ln.Addr().String()
	get := func(c *http.Client, path string) {
		resp, err := c.Get(url + path)
		must(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	client := &http.Client{}
	for _, path := range []string{"/timeout", "/poll", "/ticker", "/bgctx"} {
		for i := 0; i < 2*n; i++ {
			get(client, path)
		}
	}
	// Unclosed response bodies: each request takes a new connection, kept forever.
	for i := 0; i < 3*n; i++ {
		resp, err := http.Get(url + "/unclosed")
		must(err)
		keep = append(keep, resp)
	}
	// A Transport per request, bodies closed: idle keep-alive connections pile up.
	for i := 0; i < 2*n; i++ {
		c := &http.Client{Transport: &http.Transport{}}
		get(c, "/pertransport")
		keep = append(keep, c)
	}
	// Requests to a handler that never answers, with no client timeout.
	for i := 0; i < n; i++ {
		go func() {
			resp, err := http.Get(url + "/hang")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	// A TLS server that accepts and never answers: dials hang in the handshake.
	bh, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go acceptAndIgnore(bh)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	for i := 0; i < n; i++ {
		go func() {
			resp, err := (&http.Client{Transport: tr}).Get("https://" + bh.Addr().String() + "/")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	// HTTP/2 over TLS: an idle client connection and its server side.
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	keep = append(keep, h2)
	get(h2.Client(), "")
	resp, err := h2.Client().Get(h2.URL)
	must(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		log.Fatalf("want HTTP/2.0, got %q", body)
	}
}

// acceptAndIgnore is a raw TCP accept loop that keeps every connection and never reads.
func acceptAndIgnore(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		keep = append(keep, c)
	}
}

// ---- database/sql

func sqlScenarios(driver, dsn string) {
	db, err := sql.Open(driver, dsn)
	must(err)
	db.SetMaxOpenConns(2 * n)
	ctx := context.Background()
	_, err = db.Exec("create table if not exists t (x int)")
	must(err)
	// Transactions never committed nor rolled back.
	for i := 0; i < n; i++ {
		tx, err := db.BeginTx(ctx, nil)
		must(err)
		keep = append(keep, tx)
	}
	// Rows never closed, queried with a cancellable context.
	for i := 0; i < n; i++ {
		qctx, cancel := context.WithCancel(ctx)
		rows, err := db.QueryContext(qctx, "select 1")
		must(err)
		keep = append(keep, rows, cancel)
	}
	// The pool is exhausted: these wait for a connection forever.
	for i := 0; i < n; i++ {
		go func() {
			var x int
			db.QueryRowContext(ctx, "select 1").Scan(&x)
		}()
	}
	// sql.Open per request, never closed.
	for i := 0; i < 2*n; i++ {
		d, err := sql.Open(driver, dsn)
		must(err)
		must(d.Ping())
		keep = append(keep, d)
	}
	if driver == "mysql" {
		// A query the server never finishes, with no timeout.
		slow, err := sql.Open(driver, dsn)
		must(err)
		keep = append(keep, slow)
		for i := 0; i < n; i++ {
			go func() {
				var x int
				slow.QueryRowContext(ctx, "select sleep(3600)").Scan(&x)
			}()
		}
	}
}

// ---- grpc-go

func grpcScenarios() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	addr := ln.Addr().String()
	// ClientConns never closed (with client keepalive on).
	for i := 0; i < n; i++ {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Hour}))
		must(err)
		_, err = healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
		must(err)
		keep = append(keep, cc)
	}
	// One shared ClientConn: streams abandoned after the first message (never drained, context
	// never cancelled), and goroutines waiting in Recv for a message that never comes.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(err)
	hc := healthpb.NewHealthClient(cc)
	for i := 0; i < 2*n; i++ {
		st, err := hc.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		must(err)
		_, err = st.Recv()
		must(err)
		keep = append(keep, st)
	}
	for i := 0; i < 3*n; i++ {
		go watchHealth(hc)
	}
}

func watchHealth(hc healthpb.HealthClient) {
	st, err := hc.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	must(err)
	for {
		if _, err := st.Recv(); err != nil {
			return
		}
	}
}

// ---- context, os/signal, time

// doneCtx is a Context implementation of its own: WithCancel must start a goroutine to
// propagate its cancellation.
type doneCtx struct {
	context.Context
	done chan struct{}
}

func (c doneCtx) Done() <-chan struct{} { return c.done }

func contextScenarios() {
	parent := doneCtx{context.Background(), make(chan struct{})}
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(parent) // cancel is dropped: never called
		keep = append(keep, ctx, cancel)
	}
	// A context nobody cancels: WithCancel's cancel func kept but never called.
	for i := 0; i < 2*n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		keep = append(keep, cancel)
		go waitForCancel(ctx)
	}
	// signal.NotifyContext per call, stop never called.
	for i := 0; i < n; i++ {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGUSR1)
		keep = append(keep, ctx, stop)
	}
}

func waitForCancel(ctx context.Context) {
	<-ctx.Done()
}

func timerScenarios() {
	// AfterFunc callbacks that block.
	for i := 0; i < n; i++ {
		time.AfterFunc(time.Millisecond, func() { <-never })
	}
	// A refresh loop with time.After in a loop, waiting on a channel that never fires.
	for i := 0; i < 2*n; i++ {
		go refreshLoop()
	}
	// One healthy background ticker started by main.
	go backgroundJob()
}

func refreshLoop() {
	for {
		select {
		case <-time.After(time.Hour):
		case <-never:
			return
		}
	}
}

func backgroundJob() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for range t.C {
	}
}

// ---- sync and x/sync

func syncScenarios() {
	var once sync.Once
	go once.Do(func() { <-never })
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < 2*n; i++ {
		go initOnce(&once)
	}
	sem := semaphore.NewWeighted(1)
	must(sem.Acquire(context.Background(), 1))
	for i := 0; i < n; i++ {
		go acquireSlot(sem)
	}
}

func initOnce(once *sync.Once) { once.Do(func() {}) }

func acquireSlot(sem *semaphore.Weighted) { _ = sem.Acquire(context.Background(), 1) }

// ---- raw IO

func ioScenarios() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go acceptAndIgnore(ln) // an accept loop of a plain TCP server
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		must(err)
		keep = append(keep, c)
		go readForever(c) // the peer never writes nor closes
	}
	// A second reader of one connection waits for the first's Read to return (the fd's lock).
	c, err := net.Dial("tcp", ln.Addr().String())
	must(err)
	keep = append(keep, c)
	go readForever(c)
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < n; i++ {
		go readAgain(c)
	}
	// Writes to a peer that never reads: blocked once the socket buffers fill.
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		must(err)
		keep = append(keep, c)
		go writeForever(c)
	}
	// An io.Pipe whose writer returns without Close: the reader waits for EOF forever.
	for i := 0; i < n; i++ {
		pr, pw := io.Pipe()
		go upload(pr)
		io.WriteString(pw, "part 1")
		keep = append(keep, pw)
	}
	// A blocking read(2) on a pipe whose writer never writes.
	for i := 0; i < n; i++ {
		r, w, err := os.Pipe()
		must(err)
		keep = append(keep, w)
		fd := int(r.Fd()) // Fd puts the pipe in blocking mode
		go readPipe(fd)
	}
}

func upload(body io.Reader) { io.Copy(io.Discard, body) }

func readForever(c net.Conn) {
	buf := make([]byte, 1)
	c.Read(buf)
}

func readAgain(c net.Conn) { c.Read(make([]byte, 1)) }

func writeForever(c net.Conn) {
	buf := make([]byte, 1<<20)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func readPipe(fd int) {
	buf := make([]byte, 1)
	syscall.Read(fd, buf)
}

// ---- framework singletons started once at startup (never a leak)

type discardExporter struct{}

func (discardExporter) Temporality(metric.InstrumentKind) metricdata.Temporality {
	return metricdata.CumulativeTemporality
}

func (discardExporter) Aggregation(k metric.InstrumentKind) metric.Aggregation {
	return metric.DefaultAggregationSelector(k)
}

func (discardExporter) Export(context.Context, *metricdata.ResourceMetrics) error { return nil }
func (discardExporter) ForceFlush(context.Context) error                          { return nil }
func (discardExporter) Shutdown(context.Context) error                            { return nil }

func frameworkSingletons() {
	klog.StartFlushDaemon(time.Hour)
	keep = append(keep,
		trace.NewTracerProvider(trace.WithBatcher(tracetest.NewInMemoryExporter())),
		metric.NewMeterProvider(metric.WithReader(metric.NewPeriodicReader(discardExporter{}))))
}

func dump(dir string) {
	for d := 0; d <= 2; d++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("goroutine.debug%d", d)))
		must(err)
		must(pprof.Lookup("goroutine").WriteTo(f, d))
		must(f.Close())
	}
}

func main() {
	flag.IntVar(&n, "n", 2, "scale: each scenario parks a multiple of n goroutines")
	out := flag.String("out", ".", "directory for goroutine.debug{0,1,2}")
	mysqlDSN := flag.String("mysql", "", "MySQL DSN (empty: no MySQL scenarios)")
	flag.Parse()
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR2) // starts os/signal's loop
	frameworkSingletons()
	httpScenarios()
	sqlScenarios("sqlite", "file:"+filepath.Join(*out, "rulestacks.db"))
	if *mysqlDSN != "" { // root@tcp(127.0.0.1:3306)/ : the program makes its own database
		admin, err := sql.Open("mysql", *mysqlDSN)
		must(err)
		_, err = admin.Exec("create database if not exists grprof_rulestacks")
		must(err)
		must(admin.Close())
		sqlScenarios("mysql", *mysqlDSN+"grprof_rulestacks")
	}
	grpcScenarios()
	contextScenarios()
	timerScenarios()
	syncScenarios()
	ioScenarios()
	time.Sleep(time.Second) // let every goroutine reach its blocking point
	dump(*out)
	fmt.Println("DONE")
}
"""

# Groups of RULESTACKS, found by a function in their frames (and a state where one function
# has several groups), and what each format must say: (category, rule id).
_SDK = "sdk/net/http", "sdk/database/sql", "sdk/mysql", "sdk/grpc"
EXPECT: list[tuple[str, str | None, dict[str, tuple[str, str]]]] = [
    (
        "main.timeoutHandler.func1",
        None,
        {
            "debug=0": ("channel", "chan-send-after-timeout"),
            "debug=1": ("channel", "chan-blocked-per-request"),
            "debug=2": ("channel", "chan-send-after-timeout"),
        },
    ),
    ("main.pollHandler.func1", None, {"*": ("timer", "timer-sleep-loop-per-request")}),
    # A ticker loop and a time.After loop park in the runtime's channel frames like any other
    # channel wait: from the stack alone they are channel waits (with --source: timer, below).
    (
        "main.tickerHandler.func1",
        None,
        {
            "debug=0": ("channel", "chan-range-never-closed"),  # runtime.chanrecv2: a range
            "debug=1": ("channel", "chan-blocked-per-request"),
            "debug=1 inferred": ("channel", "chan-receive-no-sender"),
            "debug=2": ("channel", "chan-receive-no-sender"),
        },
    ),
    (
        "main.refreshLoop",
        None,
        {"*": ("channel", "select-never-fires"), "debug=1": ("channel", "chan-blocked")},
    ),
    (
        "main.backgroundCtxHandler.func1",
        None,
        {
            "debug=0": ("context", "context-nil-done"),
            "debug=1": ("channel", "chan-blocked-per-request"),
            "debug=2": ("context", "context-nil-done"),
        },
    ),
    # <-ctx.Done() on a context whose cancel is never called: a channel wait to the stack.
    (
        "main.waitForCancel",
        None,
        {"*": ("channel", "chan-receive-no-sender"), "debug=1": ("channel", "chan-blocked")},
    ),
    ("context.(*cancelCtx).propagateCancel.func2", None, {"*": ("context", "context-propagate-cancel")}),
    ("os/signal.NotifyContext.func1", None, {"*": ("context", "context-notify-not-stopped")}),
    (
        "main.timerScenarios.func1",
        None,
        {
            "debug=0": ("channel", "chan-receive-no-sender"),
            "debug=1": ("channel", "chan-blocked"),
            "debug=2": ("timer", "timer-afterfunc-blocked"),
        },
    ),
    (
        "main.hangHandler",
        None,
        {
            "debug=0": ("channel", "chan-receive-no-sender"),
            "debug=1": ("channel", "chan-blocked"),
            "debug=2": ("channel", "chan-receive-no-sender"),
        },
    ),
    ("main.initOnce", None, {"*": ("sync", "sync-once-blocked")}),
    ("main.acquireSlot", None, {"*": ("sync", "sync-semaphore-not-released")}),
    ("main.readForever", None, {"*": ("io", "io-read-no-deadline")}),
    ("main.readAgain", None, {"*": ("io", "io-waits-for-another-reader")}),
    ("main.writeForever", None, {"*": ("io", "io-write-blocked")}),
    ("main.readPipe", None, {"*": ("io", "io-syscall-read")}),
    ("main.upload", None, {"*": ("io", "io-pipe-never-closed")}),
    ("main.acceptAndIgnore", None, {"*": ("io", "io-accept-loop")}),
    ("net/http.(*persistConn).readLoop", "select", {"*": ("sdk/net/http", "http-client-body-not-closed")}),
    ("net/http.(*persistConn).readLoop", "unknown", {"*": ("sdk/net/http", "http-client-body-not-closed")}),
    ("net/http.(*persistConn).readLoop", "IO wait", {"*": ("sdk/net/http", "http-client-idle-conn")}),
    ("net/http.(*persistConn).writeLoop", None, {"*": ("sdk/net/http", "http-client-write-loop")}),
    ("net/http.(*persistConn).addTLS", None, {"*": ("sdk/net/http", "http-client-dial-hangs")}),
    ("net/http.(*persistConn).addTLS.func2", None, {"*": ("sdk/net/http", "http-client-dial-hangs")}),
    ("net/http.(*persistConn).roundTrip", None, {"*": ("sdk/net/http", "http-client-waits-response")}),
    ("net/http.(*Transport).getConn", None, {"*": ("sdk/net/http", "http-client-waits-response")}),
    ("net/http.(*conn).serve", "IO wait", {"*": ("sdk/net/http", "http-server-idle-conn")}),
    ("net/http.(*http2serverConn).serve", None, {"*": ("sdk/net/http", "http-server-conn")}),
    ("net/http.(*http2serverConn).readFrames", None, {"*": ("sdk/net/http", "http-server-conn")}),
    ("net/http.(*http2ClientConn).readLoop", None, {"*": ("sdk/net/http", "http2-client-conn")}),
    ("database/sql.(*Tx).awaitDone", None, {"*": ("sdk/database/sql", "sql-tx-not-finished")}),
    ("database/sql.(*Rows).awaitDone", None, {"*": ("sdk/database/sql", "sql-rows-not-closed")}),
    ("main.sqlScenarios.func1", None, {"*": ("sdk/database/sql", "sql-pool-exhausted")}),
    ("database/sql.(*DB).connectionOpener", None, {"*": ("sdk/database/sql", "sql-db-not-closed")}),
    (
        "github.com/go-sql-driver/mysql.(*mysqlConn).startWatcher.func1",
        None,
        {"*": ("sdk/mysql", "mysql-conn-watcher")},
    ),
    ("main.sqlScenarios.func2", None, {"*": ("sdk/mysql", "mysql-query-no-timeout")}),
    (
        "google.golang.org/grpc.newClientStreamWithParams.func4",
        None,
        {"*": ("sdk/grpc", "grpc-stream-not-finished")},
    ),
    ("main.watchHealth", None, {"*": ("sdk/grpc", "grpc-stream-recv-blocked")}),
    (
        "google.golang.org/grpc/health.(*Server).Watch",
        None,
        {"*": ("sdk/grpc", "grpc-server-stream-handler")},
    ),
    (
        "google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run",
        None,
        {"*": ("sdk/grpc", "grpc-clientconn-not-closed")},
    ),
    (
        "google.golang.org/grpc/internal/transport.(*http2Client).reader",
        None,
        {"*": ("sdk/grpc", "grpc-clientconn-not-closed")},
    ),
    (
        "google.golang.org/grpc/internal/transport.(*http2Client).keepalive",
        None,
        {"*": ("sdk/grpc", "grpc-clientconn-not-closed")},
    ),
    (
        "google.golang.org/grpc/internal/transport.NewHTTP2Client.func6",
        None,
        {"*": ("sdk/grpc", "grpc-clientconn-not-closed")},
    ),
    (
        "google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams",
        None,
        {"*": ("sdk/grpc", "grpc-server-transport")},
    ),
    (
        "google.golang.org/grpc/internal/transport.(*http2Server).keepalive",
        None,
        {"*": ("sdk/grpc", "grpc-server-transport")},
    ),
    (
        "google.golang.org/grpc/internal/transport.NewServerTransport.func3",
        None,
        {"*": ("sdk/grpc", "grpc-server-transport")},
    ),
    ("os/signal.signal_recv", None, {"*": ("ignored", "os-signal-loop")}),
    ("google.golang.org/grpc.(*Server).Serve", None, {"*": ("ignored", "http-server-accept-loop")}),
    ("main.dump", None, {"*": ("ignored", "main-goroutine")}),
    ("github.com/golang/glog.(*fileSink).flushDaemon", None, {"*": ("ignored", "klog-glog-flush-daemon")}),
    ("k8s.io/klog/v2.(*flushDaemon).run.func1", None, {"*": ("ignored", "klog-glog-flush-daemon")}),
    ("go.opencensus.io/stats/view.(*worker).start", None, {"*": ("ignored", "opencensus-view-worker")}),
    (
        "go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).processQueue",
        None,
        {"*": ("ignored", "otel-sdk-background")},
    ),
    (
        "go.opentelemetry.io/otel/sdk/metric.(*PeriodicReader).run",
        None,
        {"*": ("ignored", "otel-sdk-background")},
    ),
]
_MYSQL_ONLY = {"github.com/go-sql-driver/mysql.(*mysqlConn).startWatcher.func1", "main.sqlScenarios.func2"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mysql_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A private MariaDB/MySQL server for the driver's stacks, when one is installed."""
    server = shutil.which("mariadbd") or shutil.which("mysqld")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not server or not install:
        yield None
        return
    data = tmp_path_factory.mktemp("mysql")
    subprocess.run(
        [install, "--user=root", f"--datadir={data}/db", "--auth-root-authentication-method=normal"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            server,
            "--no-defaults",
            "--user=root",
            f"--datadir={data}/db",
            f"--socket={data}/sock",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-grant-tables",
            f"--pid-file={data}/pid",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "MariaDB did not start"
                time.sleep(0.2)
        yield f"root@tcp(127.0.0.1:{port})/"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="module")
def rulestacks(tmp_path_factory: pytest.TempPathFactory, mysql_dsn: str | None) -> dict[str, Snapshot]:
    binary = _build("rulestacks", {"go.mod": RULESTACKS_GOMOD, "main.go": RULESTACKS}, tidy=True)
    out = tmp_path_factory.mktemp("rulestacks")
    cmd = [str(binary), "-n", "2", "-out", str(out)] + (["-mysql", mysql_dsn] if mysql_dsn else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stderr[-4000:]
    return {fmt: grprof.load(out / f"goroutine.debug{n}") for n, fmt in enumerate(FORMATS)}


@pytest.mark.slow
@pytest.mark.parametrize(("function", "state", "want"), EXPECT, ids=lambda v: v if isinstance(v, str) else "")
def test_rulestacks_classify(
    rules: RuleSet,
    rulestacks: dict[str, Snapshot],
    mysql_dsn: str | None,
    function: str,
    state: str | None,
    want: dict[str, tuple[str, str]],
) -> None:
    if function in _MYSQL_ONLY and mysql_dsn is None:
        pytest.skip("no MariaDB/MySQL server installed (apt-get install mariadb-server)")
    for fmt, snap in rulestacks.items():
        groups = [
            g
            for g in snap.groups()
            if any(f.function == function for f in g.frames) and (state is None or state in g.states)
        ]
        if state == "unknown" and (fmt != "debug=1" or not groups):
            continue  # only debug=1 leaves these states unknown, where hidden frames don't tell
        if state is not None and state != "unknown" and fmt == "debug=1" and not groups:
            continue  # a select/chan state debug=1 cannot infer
        assert groups, f"{fmt}: no group with {function} ({state})"
        for g in groups:
            expected = _expected_rulestack(want, fmt, g)
            assert _classify(rules, g) == expected, (
                fmt,
                function,
                g.states,
                [f.function for f in g.frames][:6],
            )


@pytest.fixture(scope="module")
def rulestacks_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RULESTACKS's source, as `--source` would be given it."""
    src = tmp_path_factory.mktemp("rulestacks-src")
    (src / "go.mod").write_text(RULESTACKS_GOMOD)
    (src / "main.go").write_text(RULESTACKS)
    return src


# With the program's source, the blocking statement decides what the stack cannot tell (a
# ticker, a time.After loop, a context's Done(), an AfterFunc callback without a recorded
# creator), and agrees with it elsewhere.
EXPECT_SOURCE = [
    ("main.tickerHandler.func1", ("timer", "timer-ticker-loop")),
    ("main.refreshLoop", ("timer", "timer-after-loop")),
    ("main.backgroundCtxHandler.func1", ("context", "context-never-cancelled")),
    ("main.waitForCancel", ("context", "context-done-wait")),  # cancel kept (in keep), not called
    ("main.timerScenarios.func1", ("timer", "timer-afterfunc-blocked")),
    ("main.hangHandler", ("channel", "chan-receive-no-sender")),
    ("main.timeoutHandler.func1", ("channel", "chan-send-after-timeout")),
    ("main.readForever", ("io", "io-read-no-deadline")),  # no channel wait: the stack decides
    ("main.initOnce", ("sync", "sync-once-blocked")),
]


@pytest.mark.slow
@pytest.mark.parametrize(("function", "want"), EXPECT_SOURCE, ids=[f for f, _ in EXPECT_SOURCE])
def test_rulestacks_classify_with_source(
    rules: RuleSet,
    rulestacks: dict[str, Snapshot],
    rulestacks_src: Path,
    function: str,
    want: tuple[str, str],
) -> None:
    for fmt, snap in rulestacks.items():
        groups = [g for g in snap.groups() if g.site is not None and g.site.function == function]
        assert groups, f"{fmt}: no group at {function}"
        for g in groups:
            ex = rules.classify(g, source_dir=rulestacks_src)
            assert ex is not None and ex.category == want[0], (fmt, function, ex and ex.rule)
            if g.state != "unknown":  # debug=1 where the hidden frames don't tell: chan-blocked
                assert ex.rule == want[1], (fmt, function, g.states)


def _source_classified(
    rules: RuleSet, rulestacks: dict[str, Snapshot], rulestacks_src: Path
) -> Iterator[str | None]:
    """Rule ids of real stacks classified with their program's source."""
    for snap in rulestacks.values():
        for g in snap.groups():
            if not rules.ignored(g):
                yield (rules.classify(g, source_dir=rulestacks_src) or _NONE).rule
    for snap in liars.record().values():
        for g in snap.groups():
            if not rules.ignored(g):
                yield (rules.classify(g, source_dir=liars.LIARS) or _NONE).rule
    for path in _zoo_files():
        for snap in _load(path):
            for g in snap.groups():
                if not rules.ignored(g):
                    yield (rules.classify(g, source_dir=ZOO_SRC) or _NONE).rule


_NONE = Explanation("unknown", "", "", "")


@pytest.mark.slow
def test_every_rule_matches_a_real_stack(
    rules: RuleSet,
    rulestacks: dict[str, Snapshot],
    rulestacks_src: Path,
    leaky_snapshots: dict[str, Snapshot],
    mysql_dsn: str | None,
) -> None:
    matched: set[str] = set()
    snaps = [*rulestacks.values(), *leaky_snapshots.values(), *liars.record().values()]
    for path in [*_crash_files(), *(p.values[0] for p in _state_profiles()), *_zoo_files()]:
        snaps.extend(_load(path))
    for snap in snaps:
        for g in snap.groups():
            matched.add(_classify(rules, g)[1] or "")  # an ignored group is not classified
    # Rules that read the blocking statement match only with the source (`--source`).
    matched.update(r or "" for r in _source_classified(rules, rulestacks, rulestacks_src))
    # Rules that read the series (`woken`) only in a long one: tests/fixtures/longrun's.
    matched.update(f.rule or "" for f in detect(woken_series(), Options(rules=rules)).findings)
    untested = dict(UNTESTED)
    if mysql_dsn is None:
        untested |= dict.fromkeys(("mysql-conn-watcher", "mysql-query-no-timeout"), "no MySQL server")
    shipped = {r.id for r in rules.rules} | {i.id for i in rules.ignores}
    missing = shipped - matched - set(untested) - _NO_STACK_HERE
    assert not missing, f"rules no real stack in this suite matches: {sorted(missing)}"


def _expected_rulestack(want: dict[str, tuple[str, str]], fmt: str, g: Group) -> tuple[str, str]:
    """What `want` says for a group of this format. debug=1 hides the runtime frames of
    channel waits; where grprof infers the wait from the hidden frames' PCs, the group reads
    like debug=0's (no creator recorded either)."""
    if fmt == "debug=1" and g.state != "unknown":
        return want.get("debug=1 inferred", want.get("debug=0", want.get("*", ("?", "?"))))
    return want.get(fmt, want.get("*", ("?", "?")))


# Catch-alls and ignores for goroutines no program here runs (each documented in rules.yaml).
_NO_STACK_HERE = {
    "mysql-driver",  # catch-all after the specific MySQL rules
    "grpc-library",  # catch-all after the specific grpc-go rules
    "sync-semacquire",  # semacquire waits outside Mutex/RWMutex/WaitGroup (fd locks, Go <= 1.19 others)
    # debug=1 channel waits whose hidden runtime frames grprof cannot infer from their PCs
    # (it infers every recorded one)
    "chan-blocked",
    "chan-blocked-per-request",
    # the stack table's catch-alls: what no rule above explains (every recorded stack is)
    "stack-channel",
    "stack-context",
    "stack-sync",
    "stack-timer",
}


# ------------------------------------------------------------------ sources and precedence


def _state_group(state: str, function: str) -> Group:
    """A real group from the recorded states fixtures (Go 1.26, debug=2)."""
    (snap,) = _load(FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt")
    return next(g for g in snap.groups() if state in g.states and _main_function(g) == function)


def test_user_rules_come_first_and_replace_shipped_ids(tmp_path: Path) -> None:
    send = _state_group("chan send", "main.blockChanSend")
    assert load_rules(entry_points=False).classify(send).rule == "chan-send-no-receiver"  # type: ignore[union-attr]
    user = _write(
        tmp_path,
        """\
        version: 1
        rules:
          - id: team-send
            category: channel
            when: {state: [chan send], top: 'main\\.block.*'}
            title: Our own send rule for {site_function}
            explanation: "{count} senders, state {state}, started by {created_by}; at {site}"
            fix: |-
              select {
              case ch <- v:
              default: // {not a placeholder}
              }
          - id: chan-send-no-receiver
            category: unknown
            when: {state: [chan send]}
            title: replaced
            explanation: replaced
            fix: replaced
    """,
    )
    rs = load_rules([user], entry_points=False)
    e = rs.classify(send)
    assert e is not None and e.rule == "team-send" and e.category == "channel"
    assert e.title == "Our own send rule for main.blockChanSend"
    first, basis = e.explanation.split("\n")
    assert first == f"{send.count} senders, state chan send, started by {send.created_by}; at {send.site}"
    assert basis == "Category channel from the stack: a channel send (state chan send)."
    assert e.fix == "select {\ncase ch <- v:\ndefault: // {not a placeholder}\n}"  # Go braces kept
    replaced = rs.rule("chan-send-no-receiver")
    assert replaced is not None and replaced.title == "replaced"
    assert [r.id for r in rs.rules].count("chan-send-no-receiver") == 1
    assert [r.id for r in rs.rules][:2] == ["team-send", "chan-send-no-receiver"]


def test_enabled_false_removes_a_shipped_rule_or_ignore(tmp_path: Path) -> None:
    main_g = _state_group("chan receive", "main.main")
    recv = _state_group("chan receive", "main.blockChanReceive")
    user = _write(
        tmp_path,
        """\
        version: 1
        rules:
          - {id: chan-receive-no-sender, enabled: false}
        ignore:
          - {id: main-goroutine, enabled: false}
    """,
    )
    rs = load_rules([user], entry_points=False)
    assert rs.rule("chan-receive-no-sender") is None
    assert rs.ignored(main_g) is None
    # No other rule claims a plain receive: only the stack table's catch-all does.
    assert rs.classify(recv).rule == "stack-channel"  # type: ignore[union-attr]
    no_table = RuleSet([r for r in rs.rules if not r.id.startswith("stack-")], rs.ignores, rs.stack)
    assert no_table.classify(recv) is None
    assert load_rules(entry_points=False).ignored(main_g) == "main-goroutine"


def test_stack_table_rows_and_placeholders_of_a_user_file(tmp_path: Path) -> None:
    """A user file's stack table rows are tried before the shipped ones; rules match them with
    `stack:`; a text that uses {basis} gets no sentence appended."""
    recv = _state_group("chan receive", "main.blockChanReceive")
    shipped = load_rules(entry_points=False)
    assert shipped.stack_class(recv) == rules_mod.StackClass(
        "channel", "a channel receive", "state chan receive"
    )
    user = _write(
        tmp_path,
        """\
        version: 1
        stack:
          calls:
            - category: sdk/team
              what: our queue client
              frames: 'main\\.blockChan.*'
        rules:
          - id: team-queue
            category: sdk/team
            when: {stack: [sdk/team]}
            title: t {buffer}
            explanation: "{basis} Per call: {senders} ({senders_seen}); {ctx} {cancel} {ticker}"
            fix: "{channel} := make({chan_type}, {buffer})"
    """,
    )
    rs = load_rules([user], entry_points=False)
    assert rs.stack_class(recv) == rules_mod.StackClass(
        "sdk/team", "our queue client", "main.blockChanReceive"
    )
    e = rs.classify(recv)
    assert e is not None and (e.rule, e.category) == ("team-queue", "sdk/team")
    assert e.explanation == (
        "Category sdk/team from the stack: our queue client (main.blockChanReceive). "
        f"Per call: {recv.count} ({recv.count} per creator goroutine: {recv.count} goroutines from 1 "
        "creator goroutine); ctx cancel t"
    )
    assert e.fix == f"ch := make(chan T, {recv.count})" and e.title == f"t {recv.count}"
    # The shipped rules, without the user file, are untouched.
    assert shipped.classify(recv).rule == "chan-receive-no-sender"  # type: ignore[union-attr]


def test_later_user_files_win(tmp_path: Path) -> None:
    recv = _state_group("chan receive", "main.blockChanReceive")
    a = _write(
        tmp_path, RULE.replace("[chan send]", "[chan receive]").replace("title: t", "title: from a"), "a.yaml"
    )
    b = _write(
        tmp_path, RULE.replace("[chan send]", "[chan receive]").replace("title: t", "title: from b"), "b.yaml"
    )
    assert load_rules([a, b], entry_points=False).classify(recv).title == "from b"  # type: ignore[union-attr]
    assert load_rules([b, a], entry_points=False).classify(recv).title == "from a"  # type: ignore[union-attr]


def _install_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, targets: dict[str, str]) -> None:
    """A real installed distribution (dist-info on sys.path) declaring grprof.rules entry points."""
    dist = tmp_path / "grprof_team_rules-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: grprof-team-rules\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in targets.items())
    (dist / "entry_points.txt").write_text(f"[grprof.rules]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_entry_points_load_a_path_yaml_text_a_mapping_or_a_callable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule_file = _write(tmp_path, RULE.replace("id: mine", "id: from-path"), "team.yaml")
    (tmp_path / "grprof_team_rules.py").write_text(
        textwrap.dedent(f"""\
        from pathlib import Path
        PATH = Path({str(rule_file)!r})
        TEXT = {RULE.replace("id: mine", "id: from-text").replace("[chan send]", "[sleep]")!r}
        DATA = {{"version": 1, "ignore": [{{"id": "from-mapping", "any_function": "main.blockSleep",
                                           "reason": "a team singleton"}}]}}
        def build():
            rule = {{"id": "from-callable", "category": "sdk/team", "when": {{"state": ["sync.Cond.Wait"]}},
                    "title": "t", "explanation": "e", "fix": "f"}}
            return {{"version": 1, "rules": [rule]}}
    """)
    )
    _install_entry_points(
        tmp_path,
        monkeypatch,
        {
            "a-path": "grprof_team_rules:PATH",
            "b-text": "grprof_team_rules:TEXT",
            "c-mapping": "grprof_team_rules:DATA",
            "d-callable": "grprof_team_rules:build",
        },
    )
    rs = load_rules()
    ids = [r.id for r in rs.rules]
    assert {"from-path", "from-text", "from-callable"} <= set(ids)
    assert ids.index("from-callable") < ids.index("chan-send-no-receiver")  # tried before shipped
    assert rs.classify(_state_group("chan send", "main.blockChanSend")).rule == "from-path"  # type: ignore[union-attr]
    assert rs.classify(_state_group("sync.Cond.Wait", "main.blockCond")).category == "sdk/team"  # type: ignore[union-attr]
    assert rs.ignored(_state_group("sleep", "main.blockSleep")) == "from-mapping"
    assert load_rules(entry_points=False).rule("from-path") is None


def test_broken_entry_point_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "grprof_bad_rules.py").write_text(
        "RULES = {'version': 1, 'rules': [{'id': 'x', 'categry': 'io'}]}\n"
    )
    _install_entry_points(tmp_path, monkeypatch, {"bad": "grprof_bad_rules:RULES"})
    with pytest.raises(RulesError) as e:
        load_rules()
    assert str(e.value) == (
        'entry point "bad" (grprof_bad_rules:RULES): rules.0.categry: unknown key (did you mean "category"?)'
    )


def test_labels_and_created_by_conditions(rules: RuleSet) -> None:
    (snap,) = _load(FIXTURES / "states" / "go1.26.8-tracebacklabels" / "goroutine.debug2.txt")
    labeled = next(g for g in snap.groups() if _main_function(g) == "main.blockLabeled.func1")
    src = parse_yaml(
        textwrap.dedent("""\
        version: 1
        rules:
          - id: by-label
            category: channel
            when:
              labels: {span id: 's-\\d'}
              created_by: 'main\\.startAll\\.func\\d+'
              not_created_by: 'main\\.other.*'
            title: t
            explanation: e
            fix: f
          - id: wrong-label
            category: channel
            when: {labels: {span id: 'x'}}
            title: t
            explanation: e
            fix: f
    """),
        "inline",
    )
    rs = rules_mod.combine([src])
    assert rs.classify(labeled).rule == "by-label"  # type: ignore[union-attr]
    wrong = rs.rule("wrong-label")
    assert wrong is not None and RuleSet([wrong], []).classify(labeled) is None


def test_classifying_thousands_of_groups_is_fast(rules: RuleSet) -> None:
    groups = [g for p in _state_profiles() for s in _load(p.values[0]) for g in s.groups()]
    assert len(groups) > 200
    many = (groups * (5000 // len(groups) + 1))[:5000]
    start = time.perf_counter()
    for g in many:
        rules.ignored(g) or rules.classify(g)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"{len(many)} groups took {elapsed:.2f}s"


# ------------------------------------------------------------------ the leak zoo


def _zoo_files() -> list[Path]:
    return sorted((FIXTURES / "zoo").glob("*.goroutine*"))


def _zoo_stack_matches(stack: dict[str, Any], g: Group, fmt: str) -> bool:
    """The truth's innermost main.* function and its frames in order; its state where the
    format shows it (debug=1 leaves channel and select waits "unknown")."""
    if _main_function(g) != (stack["function"] or None):
        return False
    names = iter(f.function for f in g.frames)
    if not all(any(n == want for n in names) for want in stack["frames"]):
        return False
    states = set(stack["states"]) | ({"unknown"} if fmt == "debug=1" else set())
    return bool(states & set(g.states))


def _zoo_phases() -> list[Any]:
    names = sorted({p.name.split(".goroutine")[0] for p in _zoo_files()})
    return [pytest.param(n, id=n) for n in names]


# Zoo leaks whose wait only the source can tell (the truth's category comes from the code):
# from the stack alone they are channel waits, which is all their frames show.
_ZOO_SOURCE_ONLY = {
    "ctx-select-cancel-lost": "channel",  # select { case <-ctx.Done(): ... }, cancel dropped
    "timer-ticker-loop": "channel",  # for range t.C
    "timer-after-loop": "channel",  # for { select { ... case <-time.After(d): } }
}
ZOO_SRC = ROOT / "tests" / "goapps" / "zoo"


@pytest.mark.parametrize("phase", _zoo_phases())
def test_zoo_leaks_classify_into_their_truth_category(rules: RuleSet, phase: str) -> None:
    """From the stack alone, and with the zoo's source (where every leak is its truth's
    category, the three the stack cannot tell included)."""
    zoo = FIXTURES / "zoo"
    truth = json.loads((zoo / "truth.json").read_text())
    files = {
        "debug=0": "goroutine.debug0.pb.gz",
        "debug=1": "goroutine.debug1.txt",
        "debug=2": "goroutine.debug2.txt",
        "leak": "goroutineleak.debug1.txt",
    }
    for key, suffix in files.items():
        (snap,) = _load(zoo / f"{phase}.{suffix}")
        fmt = snap.format
        found = set()
        for g in snap.groups():
            got = _classify(rules, g)
            for leak in truth["leaks"]:
                for stack in leak["goroutines"]:
                    if _zoo_stack_matches(stack, g, fmt):
                        found.add(leak["kind"])
                        want = _ZOO_SOURCE_ONLY.get(leak["kind"], leak["category"])
                        if g.state in ("runnable", "running") and leak["kind"] in _ZOO_SOURCE_ONLY:
                            want = got[0]  # caught awake: no wait to classify; checked with source
                        assert got[0] == want, (key, leak["kind"], got, g.states, g.site)
                        src = rules.classify(g, source_dir=ZOO_SRC)
                        assert src is not None and src.category == leak["category"], (
                            key,
                            leak["kind"],
                            src and src.rule,
                            g.states,
                            g.site,
                        )
            for control in truth["controls"]:
                for stack in control["goroutines"]:
                    # Controls are the detector's business; servers' accept loops are ignored.
                    if control["name"] in {"http-server", "grpc-server"} and _zoo_stack_matches(
                        stack, g, fmt
                    ):
                        assert got[0] == "ignored", (key, control["name"], got)
        if key == "leak":
            continue  # the goroutineleak profile lists only what the GC proved (checked above)
        phases = json.loads((zoo / "times.json").read_text())["phases"]
        requests = phases[int(phase.split("-", maxsplit=1)[0])]["requests"]
        kinds = {leak["kind"] for leak in truth["leaks"] if requests[leak["kind"]] > leak["free_requests"]}
        assert kinds <= found, (key, sorted(kinds - found))


@pytest.mark.parametrize(
    "path", [*(p.values[0] for p in _state_profiles()), *_zoo_files()], ids=lambda p: p.name
)
def test_function_names_never_decide_the_category(rules: RuleSet, path: Path) -> None:
    """Every recorded group classifies the same with every function of its program renamed
    (`main.pollJobStatus` -> `main.f3`): categories come from what goroutines wait in."""
    for snap in _load(path):
        for g in snap.groups():
            if rules.ignored(g):
                continue
            before, after = rules.classify(g), rules.classify(liars.renamed(g))
            assert (before and before.category) == (after and after.category), (path.name, g.site, g.states)


# Function names as Kitex v0.13 and netpoll v0.7 define them (read from their source: the Go
# module proxy does not serve Kitex, so no real stack exists here). This checks the patterns
# only; the Group is built in the test, not recorded.
_KITEX = [
    (
        ["github.com/cloudwego/kitex/pkg/loadbalance/lbcache.(*BalancerFactory).watcher"],
        "chan receive",
        "kitex-client-per-request",
    ),
    (
        [
            "github.com/cloudwego/netpoll.(*connection).waitRead",
            "github.com/cloudwego/netpoll.(*connection).Next",
            "github.com/cloudwego/kitex/pkg/remote/codec.(*defaultCodec).Decode",
            "main.callEcho",
        ],
        "chan receive",
        "kitex-call-no-timeout",
    ),
    (
        [
            "github.com/cloudwego/kitex/pkg/remote/trans/nphttp2/grpc.(*recvBufferReader).read",
            "github.com/cloudwego/kitex/pkg/remote/trans/nphttp2/grpc.(*Stream).Read",
            "main.recvAll",
        ],
        "select",
        "kitex-streaming",
    ),
    (
        ["github.com/cloudwego/kitex/client.(*timeoutPool).createWorker.func1"],
        "chan receive",
        "kitex-library",
    ),
]


@pytest.mark.parametrize(("functions", "state", "rule"), _KITEX, ids=[r for _, _, r in _KITEX])
def test_kitex_patterns_match_kitex_function_names(
    rules: RuleSet, functions: list[str], state: str, rule: str
) -> None:
    frames = tuple(grprof.Frame(fn, "kitex.go", 1) for fn in functions)
    g = Group("k", 1, frames, False, None, {state: 1}, {}, {}, [], [], 0, 0, 0)
    assert _classify(rules, g) == ("sdk/kitex", rule)


@pytest.mark.parametrize(
    "function",
    [
        "github.com/cloudwego/netpoll.(*defaultPoll).Wait",
        "github.com/cloudwego/kitex/pkg/utils.(*SharedTicker).Tick",
    ],
)
def test_kitex_singletons_are_ignored(rules: RuleSet, function: str) -> None:
    g = Group(
        "k", 1, (grprof.Frame(function, "kitex.go", 1),), False, None, {"select": 1}, {}, {}, [], [], 0, 0, 0
    )
    assert rules.ignored(g) == "kitex-netpoll-singletons"


def _ignored_one_by_one(rules: RuleSet, g: Group) -> str | None:
    """The ignore rules asked in order, each on its own (`IgnoreRule.matches`)."""
    view = rules_mod._View(g)
    return next((i.id for i in rules.ignores if i.matches(view)), None)


def test_ignore_masks_agree_with_each_rule_on_every_recorded_group(rules: RuleSet) -> None:
    """`RuleSet.ignored` (bit masks, `_Ignores`) names the first ignore rule whose conditions
    all hold, as asking each rule in turn does: on every group of every recorded dump."""
    files = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".txt", ".gz"))
    seen: collections.Counter[str | None] = collections.Counter()
    for path in files:
        try:
            snaps = grprof.load_all(path)
        except GrprofError:
            continue  # not a dump (truth files, malformed inputs)
        for snap in snaps:
            for g in snap.groups():
                want = _ignored_one_by_one(rules, g)
                assert rules.ignored(g) == want, (path, [f.function for f in g.frames])
                seen[want] += 1
    # The fixtures exercise most shipped ignore rules, and plenty of groups none matches.
    assert seen[None] > 100 and len(seen) >= 6, seen


def test_ignore_masks_combine_conditions_in_rule_order() -> None:
    """Rules with two or three conditions each (state, top function, created by, any
    function), over groups that satisfy every subset of them: the first rule all of whose
    conditions hold wins, in the masks as one by one."""
    src = parse_yaml(
        textwrap.dedent(
            """
            version: 1
            ignore:
              - {id: st-any, state: [chan receive], any_function: ['main\\.work.*'], reason: r}
              - {id: top-any, top_function: [main.workLoop], any_function: [main.serve], reason: r}
              - {id: created, created_by: ['main\\.start.*'], state: [select], reason: r}
              - {id: top, top_function: [main.idle], reason: r}
              - {id: any, any_function: [main.serve], reason: r}
            """
        ),
        "combo.yaml",
    )
    rs = RuleSet((), src.ignores)
    Frame = grprof.Frame
    base = Frame("main.serve", "/app/main.go", 10)
    tops = [
        Frame("main.workLoop", "/app/w.go", 3),
        Frame("main.idle", "/app/i.go", 4),
        Frame("main.x", "/a", 1),
    ]
    park = Frame("runtime.gopark", "/go/src/runtime/proc.go", 402)
    answers = set()
    for top in tops:
        for under in ([], [base], [Frame("main.other", "/app/o.go", 9)]):
            for state in ("chan receive", "select", "sleep"):
                for creator in (
                    None,
                    Frame("main.startWorkers", "/app/s.go", 7),
                    Frame("main.other", "/a", 2),
                ):
                    g = Group(
                        "s", 1, (park, top, *under), False, creator, {state: 1}, {0: 1}, {}, [], [], 0, 0, 0
                    )
                    want = _ignored_one_by_one(rs, g)
                    assert rs.ignored(g) == want, (top.function, under, state, creator)
                    answers.add(want)
    assert answers == {"st-any", "top-any", "created", "top", "any", None}
