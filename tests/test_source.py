"""Source confirmation (`--source DIR`) against real Go.

tests/goapps/srcpatterns parks goroutines in every leak pattern the source check knows and
in near-misses that look alike; examples/leaky leaks the classic leakyHandler under
its own traffic. Each program is built and run with the machine's Go, a real debug=2 dump is
taken over HTTP, and each group is mapped back to the program's source and checked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gobuild import GOAPPS, build_goapp, run_goapp

import grprof
from grprof.detect import source
from grprof.detect.source import PATTERN_CATEGORIES, WAIT_CATEGORIES, confirm, resolve_file, wait_at
from grprof.model import Frame, Group, Snapshot

SRC = GOAPPS / "srcpatterns"
ROOT = Path(__file__).resolve().parent.parent
LEAKY = ROOT / "examples" / "leaky"
PROFILE = "/debug/pprof/goroutine?debug="
DEBUG2 = PROFILE + "2"

# Site function -> (pattern, file) of every leak srcpatterns parks.
LEAKS = {
    "main.fetchWithTimeout.func1": ("unbuffered-send-after-timeout", "channel.go"),
    "main.fetchWithContext.func1": ("unbuffered-send-after-timeout", "channel.go"),
    "main.fetchWithTimer.func1": ("unbuffered-send-after-timeout", "channel.go"),
    "main.fetchOrGiveUp.func1": ("unbuffered-send-after-timeout", "channel.go"),
    "main.awaitWorker": ("receive-without-sender", "receive.go"),
    "main.produce.func1": ("range-never-closed", "stream.go"),
    "main.watchBackground.func1": ("ctx-background", "ctx.go"),
    "main.watchUncancelled.func1": ("ctx-background", "ctx.go"),
    "grprof.test/srcpatterns/internal/poll.Start.func1": ("ticker-never-stopped", "internal/poll/poll.go"),
    "grprof.test/srcpatterns/internal/poll.Every.func1": ("ticker-never-stopped", "internal/poll/poll.go"),
}
# Site function -> file of goroutines parked in code that looks like a pattern but is not.
NEAR_MISSES = {
    "main.fetchBuffered.func1": "channel.go",  # buffered channel (its second send blocks)
    "main.fetchGuarded.func1": "channel.go",  # send in a select with ctx.Done()
    "main.fetchNonBlocking.func1": "channel.go",  # send in a select with default
    "main.fetchPatient.func1": "channel.go",  # the receiver waits without a timeout
    "main.fetchPatient": "channel.go",
    "main.awaitSlowWorker": "receive.go",  # the worker closes done when it finishes
    "main.awaitSlowWorker.func1": "receive.go",
    "main.produceClosed": "stream.go",
    "main.produceClosed.func1": "stream.go",  # the producer closes the channel
    "main.main.func1": "main.go",  # a process-lifetime worker pool
    "main.main.func3": "main.go",  # a process-lifetime shutdown hook
    "main.janitor": "main.go",  # a process-lifetime ticker job
    "main.heartbeat": "main.go",  # the same, in a helper of a closure of main
    "main.watchCancelled.func1": "ctx.go",  # the context's cancel is deferred
    "main.watchRequest.func1": "ctx.go",  # the request's context
    "main.watchRequest": "ctx.go",
    "main.fetchEither.func1": "channel.go",  # the receiver's select has no timeout case
    "grprof.test/srcpatterns/internal/poll.StartStoppable.func1": "internal/poll/poll.go",
    "grprof.test/srcpatterns/internal/poll.StartUntil.func1": "internal/poll/poll.go",  # the loop returns
    "grprof.test/srcpatterns/internal/poll.Times.func1": "internal/poll/poll.go",  # the loop ends
}

pytestmark = pytest.mark.slow


def group_of(snap: Snapshot, function: str) -> Group:
    found = [g for g in snap.groups() if g.site is not None and g.site.function == function]
    assert found, f"no group at {function} in the dump"
    return max(found, key=lambda g: g.count)


def marked_line(snippet: str) -> tuple[int, str]:
    """The number and text of the line the snippet marks with `>`."""
    (line,) = [ln for ln in snippet.splitlines() if ln.startswith(">")]
    number, _, text = line[1:].partition(" | ")
    return int(number), text


def go_build(src: Path, out: Path, *flags: str) -> Path:
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    subprocess.run(["go", "build", *flags, "-o", str(out), "."], cwd=src, env=env, check=True)
    return out


def toolchain(version: str) -> str:
    """The `go` binary of a Go version (the oldest one grprof reads, 1.19, comes from Debian)."""
    if version == "system":
        return "go"
    try:
        proc = subprocess.run(
            [str(ROOT / "scripts" / "go-toolchain.sh"), version], capture_output=True, text=True, check=True
        )
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"Go {version} toolchain unavailable: {e}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def snapshots() -> Iterator[Callable[[str], dict[str, Snapshot]]]:
    """Run srcpatterns once per Go version; its debug=2, debug=1 and debug=0 dumps."""
    runs: dict[str, dict[str, Snapshot]] = {}

    def get(version: str) -> dict[str, Snapshot]:
        if version not in runs:
            with run_goapp(build_goapp("srcpatterns", toolchain(version))) as app:
                runs[version] = {f"debug={d}": grprof.load(f"{app.base_url}{PROFILE}{d}") for d in (2, 1, 0)}
        return runs[version]

    yield get


# Every format carries the blocking line; only debug=2 names the creator. The oldest Go
# grprof reads (1.19) prints no `in goroutine N` and may name closures differently.
@pytest.fixture(
    scope="module",
    params=[("system", "debug=2"), ("1.19", "debug=2"), ("system", "debug=1"), ("system", "debug=0")],
)
def dump(request: pytest.FixtureRequest, snapshots: Callable[[str], dict[str, Snapshot]]) -> Snapshot:
    version, fmt = request.param
    return snapshots(version)[fmt]


@pytest.fixture(scope="module")
def dump2(snapshots: Callable[[str], dict[str, Snapshot]]) -> Snapshot:
    return snapshots("system")["debug=2"]


# ---------------------------------------------------------------------------------------------
# The patterns, in a real dump of srcpatterns


@pytest.mark.parametrize("function", sorted(LEAKS))
def test_leak_pattern_is_confirmed(dump: Snapshot, function: str) -> None:
    pattern, file = LEAKS[function]
    group = group_of(dump, function)
    assert group.site is not None
    report = confirm(SRC, group)
    assert report is not None
    assert (report.file, report.pattern, report.confirmed) == (file, pattern, True)
    assert report.line == group.site.line
    number, text = marked_line(report.snippet)
    source_line = (SRC / file).read_text().splitlines()[group.site.line - 1]
    assert number == group.site.line and text.strip() == source_line.strip()
    assert report.suggestion
    if dump.format == "debug=2":
        assert report.go_statement is not None and " go " in f" {report.go_statement.split(': ', 1)[1]}"
    else:
        assert report.go_statement is None
    assert pattern in PATTERN_CATEGORIES


@pytest.mark.parametrize("function", sorted(NEAR_MISSES))
def test_near_miss_is_shown_but_not_confirmed(dump: Snapshot, function: str) -> None:
    group = group_of(dump, function)
    report = confirm(SRC, group)
    assert report is not None
    assert report.file == NEAR_MISSES[function]
    assert (report.pattern, report.confirmed, report.suggestion) == (None, False, None)
    assert marked_line(report.snippet)[0] == report.line


def test_leaky_handler_report_reads_like_the_source(dump: Snapshot) -> None:
    report = confirm(SRC, group_of(dump, "main.fetchWithTimeout.func1"))
    assert report is not None
    assert report.function == "func literal in fetchWithTimeout"
    assert report.snippet == (
        "  11 | ch := make(chan string)\n"
        "  12 | go func() {\n"
        "  13 |     time.Sleep(20 * time.Millisecond) // slow backend call\n"
        '> 14 |     ch <- "result"\n'
        "  15 | }()\n"
        "  16 | select {\n"
        "  17 | case v := <-ch:"
    )
    assert report.go_statement == ("channel.go:12: go func() {" if dump.format == "debug=2" else None)
    assert report.suggestion is not None
    assert "channel.go:11: ch := make(chan string, 1)" in report.suggestion
    assert 'case ch <- "result":' in report.suggestion


def test_context_lines_and_named_functions(dump2: Snapshot) -> None:
    group = group_of(dump2, "main.awaitWorker")
    report = confirm(SRC, group, context_lines=0)
    assert report is not None
    assert report.snippet == "> 14 | <-done"
    # Context stops at the function's end: nothing of the next function.
    report = confirm(SRC, group)
    assert report is not None
    assert report.snippet.splitlines()[-2:] == ["> 14 |     <-done", "  15 | }"]
    assert report.function == "awaitWorker"
    # A named function started with `go f(x)`: the go statement is its caller's.
    go_line = (SRC / "main.go").read_text().splitlines().index("\tgo awaitWorker(-1)") + 1
    assert report.go_statement == f"main.go:{go_line}: go awaitWorker(-1)"
    assert report.suggestion is not None and "defer close(done)" in report.suggestion


def test_groups_outside_the_source_dir_give_none(dump2: Snapshot) -> None:
    stdlib = [g for g in dump2.groups() if g.site is not None and g.site.function.startswith("net")]
    assert stdlib
    assert all(confirm(SRC, g) is None for g in stdlib)
    assert confirm(LEAKY, group_of(dump2, "main.fetchWithTimeout.func1")) is None
    # A handler's goroutine: shown, but net/http's `go` statement is not in the source dir.
    handler = confirm(SRC, group_of(dump2, "main.watchRequest"))
    assert handler is not None and handler.file == "ctx.go" and handler.go_statement is None


# What each goroutine waits on (`wait_at`): the category the source decides, patterns or not.
POLL = "grprof.test/srcpatterns/internal/poll."
WAITS = {
    "main.fetchWithTimeout.func1": (
        "chan-send",
        "ch is made at channel.go:11; 1 goroutine sends on it per call",
    ),
    "main.awaitWorker": ("chan-receive", "done is made at receive.go:8"),
    "main.produce.func1": ("chan-range", "out is made at stream.go:6"),
    "main.watchBackground.func1": ("ctx-never-cancelled", "derived from context.Background(), which nothing"),
    "main.watchUncancelled.func1": ("ctx-cancel-not-called", "whose cancel function is discarded (_)"),
    "main.watchCancelled.func1": ("ctx-done", "its cancel function cancel is deferred at ctx.go:33"),
    "main.watchRequest.func1": ("ctx-done", "ctx comes from r.Context() (at ctx.go:42)"),
    "main.fetchGuarded.func1": ("ctx-done", "ctx comes from ctx, a parameter of fetchGuarded"),
    "grprof.test/srcpatterns/internal/poll.Start.func1": (
        "ticker",
        "never stopped, in a loop with no way out",
    ),
    POLL + "Every.func1": ("ticker", "a time.Tick channel"),
    # A ticker in a select with ctx.Done(): the context is what ends the loop.
    "grprof.test/srcpatterns/internal/poll.StartStoppable.func1": (
        "ctx-done",
        "a parameter of StartStoppable",
    ),
    POLL + "Times.func1": ("ticker", "never stopped"),
    # A ticker kept in a struct field, a loop that ends only when stop is closed (never).
    POLL + "(*Tracker).loop": ("ticker", "ticker r.t (a time.Ticker field), stopped where the loop returns"),
    "main.janitor": ("ticker", "ticker t (time.NewTicker at main.go:"),
}


@pytest.mark.parametrize("function", sorted(WAITS))
def test_what_the_goroutine_waits_on(dump: Snapshot, function: str) -> None:
    kind, detail = WAITS[function]
    group = group_of(dump, function)
    wait = wait_at(SRC, group)
    assert wait is not None and group.site is not None
    assert (wait.kind, wait.category) == (kind, WAIT_CATEGORIES[kind])
    assert detail in wait.detail, wait.detail
    assert (wait.file, wait.line) == (confirm(SRC, group).file, group.site.line)  # type: ignore[union-attr]
    assert wait.basis.startswith(f"{wait.file}:{wait.line} `")


def test_no_wait_where_the_statement_is_no_channel_operation(dump2: Snapshot) -> None:
    # startNearMisses.func4 is parked inside http.Get: a library call, not a wait of its own.
    group = group_of(dump2, "main.startNearMisses.func4")
    assert wait_at(SRC, group) is None
    assert wait_at(SRC / "missing", group) is None
    stdlib = [g for g in dump2.groups() if g.site is not None and g.site.is_stdlib]
    assert stdlib and all(wait_at(SRC, g) is None for g in stdlib)


# ---------------------------------------------------------------------------------------------
# examples/leaky: the classic leakyHandler under real traffic


@pytest.fixture(scope="module")
def leaky_dump(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    binary = go_build(LEAKY, tmp_path_factory.mktemp("leaky") / "leaky")
    with listening(binary, "-addr", "127.0.0.1:0", "-rate", "100") as base:
        deadline = time.monotonic() + 30
        while True:
            snap = grprof.load(base + DEBUG2)
            leaked = [g for g in snap.groups() if g.site and g.site.function == "main.leakyHandler.func1"]
            if (
                any(g.site and g.site.line == 28 and g.count >= 5 for g in leaked)
                or time.monotonic() > deadline
            ):
                return snap
            time.sleep(0.3)


def test_examples_leaky_handler_is_confirmed(leaky_dump: Snapshot) -> None:
    leaked = [g for g in leaky_dump.groups() if g.site and g.site.function == "main.leakyHandler.func1"]
    sends = [g for g in leaked if g.site and g.site.line == 28]
    assert sends, "no goroutine blocked on leakyHandler's send"
    report = confirm(LEAKY, sends[0])
    assert report is not None
    assert (report.file, report.line, report.pattern, report.confirmed) == (
        "main.go",
        28,
        "unbuffered-send-after-timeout",
        True,
    )
    assert report.function == "func literal in leakyHandler"
    assert report.go_statement == "main.go:26: go func() {"
    assert report.suggestion is not None and "main.go:25: ch := make(chan string, 1)" in report.suggestion


def test_examples_safe_handler_send_is_not_confirmed(leaky_dump: Snapshot) -> None:
    # safeHandler's workers never block (the buffer takes the value), so no dump shows one
    # parked on its send. Point the leaked group at safeHandler's send line instead, as Go
    # would print it if one ever blocked there: the buffered channel must not confirm.
    send = next(g for g in leaky_dump.groups() if g.site and g.site.function == "main.leakyHandler.func1")
    lines = (LEAKY / "main.go").read_text().splitlines()
    start = lines.index("func safeHandler(w http.ResponseWriter, r *http.Request) {")
    send_line = next(i for i in range(start, len(lines)) if lines[i].strip() == 'ch <- "done"') + 1
    go_line = next(i for i in range(start, len(lines)) if lines[i].strip() == "go func() {") + 1
    assert send.site is not None and send.created_by is not None
    moved = dataclasses.replace(
        send,
        frames=tuple(
            Frame("main.safeHandler.func1", f.file, send_line) if f == send.site else f for f in send.frames
        ),
        created_by=Frame("main.safeHandler", send.created_by.file, go_line),
    )
    report = confirm(LEAKY, moved)
    assert report is not None
    assert report.function == "func literal in safeHandler"
    assert (report.line, report.pattern, report.confirmed) == (send_line, None, False)
    assert report.go_statement == f"main.go:{go_line}: go func() {{"


# ---------------------------------------------------------------------------------------------
# Path mapping: dumps built elsewhere


@pytest.mark.parametrize("flags", [(), ("-trimpath",)], ids=["other-dir", "trimpath"])
def test_dump_built_in_another_directory_maps_by_suffix(tmp_path: Path, flags: tuple[str, ...]) -> None:
    build = tmp_path / "build" / "services" / "api"
    shutil.copytree(SRC, build)
    binary = go_build(build, tmp_path / "srcpatterns", *flags)
    with run_goapp(binary) as app:
        snap = grprof.load(app.base_url + DEBUG2)
    ticker = group_of(snap, "grprof.test/srcpatterns/internal/poll.Start.func1")
    assert ticker.site is not None
    if flags:
        assert ticker.site.file == "grprof.test/srcpatterns/internal/poll/poll.go"
    else:
        assert ticker.site.file.startswith(str(build))
    for function, (pattern, file) in LEAKS.items():
        report = confirm(SRC, group_of(snap, function))
        assert report is not None, function
        assert (report.file, report.pattern) == (file, pattern)


def test_source_dir_above_the_module(dump2: Snapshot, tmp_path: Path) -> None:
    # --source pointed at a repository whose module is two levels down: found by walking it.
    repo = tmp_path / "repo"
    shutil.copytree(SRC, repo / "services" / "api")
    report = confirm(repo, group_of(dump2, "grprof.test/srcpatterns/internal/poll.Start.func1"))
    assert report is not None
    assert (report.file, report.pattern) == ("services/api/internal/poll/poll.go", "ticker-never-stopped")


def test_path_forms_of_other_machines(tmp_path: Path) -> None:
    (tmp_path / "internal" / "api").mkdir(parents=True)
    (tmp_path / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    handler = tmp_path / "internal" / "api" / "handler.go"
    handler.write_text("package api\n\nfunc Serve() {\n\tgo func() {}()\n}\n")
    vendored = tmp_path / "vendor" / "github.com" / "acme" / "queue" / "worker.go"
    vendored.parent.mkdir(parents=True)
    vendored.write_text("package queue\n\nfunc (w *Worker) Run() {}\n")
    (tmp_path / "server.go").write_text("package main\n\nfunc (s *Server) Serve() {}\n")
    cases = {
        r"C:\Users\dev\svc\internal\api\handler.go": handler,
        "C:/build/svc/internal/api/handler.go": handler,
        "/home/ci/work/internal/api/handler.go": handler,
        "example.com/svc/internal/api/handler.go": handler,  # -trimpath
        "/root/go/pkg/mod/github.com/acme/queue@v1.4.0/worker.go": vendored,
        "/build/../../etc/passwd.go": None,
        "/build/x/handler.c": None,
        "/usr/local/go/src/net/http/server.go": None,  # the standard library, not ./server.go
    }
    for file, want in cases.items():
        fn = (
            "github.com/acme/queue.(*Worker).Run"
            if "queue" in file
            else "example.com/svc/internal/api.Serve.func1"
        )
        assert resolve_file(tmp_path, Frame(fn, file, 4)) == want, file
    # Only the module hint knows the directory: the build path shares nothing but the name.
    assert (
        resolve_file(tmp_path, Frame("example.com/svc/internal/api.Serve", "/x/y/handler.go", 3)) == handler
    )
    # A same-named file that does not declare the function is another file.
    assert resolve_file(tmp_path, Frame("main.other", "/x/handler.go", 3)) is None


# ---------------------------------------------------------------------------------------------
# Robustness: never an exception, and edits are seen


def copy_src(tmp_path: Path) -> Path:
    dst = tmp_path / "src"
    shutil.copytree(SRC, dst)
    return dst


def test_non_utf8_source_still_confirms(dump2: Snapshot, tmp_path: Path) -> None:
    dst = copy_src(tmp_path)
    data = (dst / "channel.go").read_bytes().replace(b"// slow backend call", b"// lent caf\xe9 \xff")
    (dst / "channel.go").write_bytes(data)
    report = confirm(dst, group_of(dump2, "main.fetchWithTimeout.func1"))
    assert report is not None and report.pattern == "unbuffered-send-after-timeout"
    assert "lent caf\ufffd \ufffd" in report.snippet


def test_broken_short_or_missing_files(dump2: Snapshot, tmp_path: Path) -> None:
    group = group_of(dump2, "main.fetchWithTimeout.func1")
    dst = copy_src(tmp_path)
    channel = dst / "channel.go"
    text = channel.read_text()
    # A syntax error inside the function: the snippet, but no pattern on broken code.
    channel.write_text(text.replace("select {\n\tcase v := <-ch:", "select {{{\n\tcase v := <-ch:", 1))
    report = confirm(dst, group)
    assert report is not None and report.line == 14 and not report.confirmed
    # Shorter than the frame's line: another version of the file.
    channel.write_text("\n".join(text.splitlines()[:10]))
    assert confirm(dst, group) is None
    # Binary garbage under the right name.
    channel.write_bytes(bytes(range(256)) * 40)
    report = confirm(dst, group)
    assert report is None or not report.confirmed
    # A directory, then a dangling symlink, where the file should be.
    channel.unlink()
    channel.mkdir()
    assert confirm(dst, group) is None
    channel.rmdir()
    channel.symlink_to(tmp_path / "nowhere.go")
    assert confirm(dst, group) is None
    assert confirm(tmp_path / "does-not-exist", group) is None


def test_edited_file_is_read_again_and_parsed_once(dump2: Snapshot, tmp_path: Path) -> None:
    group = group_of(dump2, "main.fetchWithTimeout.func1")
    dst = copy_src(tmp_path)
    before = source._parse_file.cache_info().misses
    for _ in range(50):
        report = confirm(dst, group)
        assert report is not None and report.confirmed
    assert source._parse_file.cache_info().misses - before <= 2  # channel.go and main.go at most
    channel = dst / "channel.go"
    fixed = channel.read_text().replace("ch := make(chan string)\n", "ch := make(chan string, 1)\n", 1)
    channel.write_text(fixed)
    os.utime(channel, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    report = confirm(dst, group)
    assert report is not None and (report.pattern, report.confirmed) == (None, False)


# ---------------------------------------------------------------------------------------------


class listening:
    """Run a program that prints `LISTEN <url>` (and no READY line); yield the URL, then kill it."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def __enter__(self) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        pending, deadline = b"", time.monotonic() + 60
        try:
            while b"\n" not in pending:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError("no LISTEN line")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"exited with {self.proc.wait()}")
                pending += chunk
        except BaseException:
            self.__exit__()
            raise
        finally:
            sel.close()
        line = pending.split(b"\n", 1)[0].decode()
        assert line.startswith("LISTEN "), line
        return line.removeprefix("LISTEN ")

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_each_leak_pattern_is_one_module_registered_by_its_decorator() -> None:
    """Adding a pattern is adding a module (issue 8): every module of
    `grprof.detect.source.patterns` registers one check with `@pattern`, and the categories
    the rest of grprof reads are the registry's, in the order `match` tries them."""
    import pkgutil

    from grprof.detect.source import patterns as pkg
    from grprof.detect.source._registry import REGISTRY

    modules = {m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")}
    assert modules == set(pkg.__all__)
    assert sorted(p.check.__module__.rsplit(".", 1)[-1] for p in REGISTRY.values()) == sorted(modules)
    assert {p.name: p.category for p in REGISTRY.values()} == PATTERN_CATEGORIES
    assert [p.order for p in REGISTRY.values()] == sorted(p.order for p in REGISTRY.values())
    documented = re.findall(r"^### `([a-z-]+)` \((\w+)\)$", (ROOT / "docs" / "source.md").read_text(), re.M)
    assert dict(documented) == PATTERN_CATEGORIES, "docs/source.md: one section per pattern, in order"
    assert [name for name, _ in documented] == list(PATTERN_CATEGORIES)
