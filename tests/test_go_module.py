"""The Go module in go/ (docs/go.md): its own `go test`, and one end-to-end check that a
server using its net/http middleware shows request labels that grprof reads (debug=1 and
debug=0 over HTTP).

`go test ./...` runs in each of the three modules (go/, go/grpclabels, go/hertzlabels);
their dependencies come from the Go module proxy into the module cache, as the
tests/goapps programs' do. The example server go/examples/labelled is built like the
tests/goapps programs (tests/gobuild.py: cached by sources and Go version, GOTOOLCHAIN=local).
So are the gRPC and Hertz examples (go/grpclabels/examples/grpcserver,
go/hertzlabels/examples/hertzserver): each blocks real requests from a real client, and the
test reads debug=1 and debug=0 from its pprof port (separate from the gRPC/Hertz port) with
grprof. Kitex is not served by the module proxy here: kitexlabels is tested in-process only
(docs/go.md).

`go test ./...` also runs in the three modules with Go 1.27 and Go 1.22 (scripts/go-toolchain.sh:
the toolchain module from the module proxy, GOTOOLCHAIN); skipped only if it cannot be obtained.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable

import gobuild
import pytest

import grprof

ROOT = pathlib.Path(__file__).resolve().parent.parent
GO_DIR = ROOT / "go"
MODULES = (".", "grpclabels", "hertzlabels")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain"),
]


def go_env() -> dict[str, str]:
    # gobuild's environment: GOTOOLCHAIN=local, no inherited GOFLAGS.
    return gobuild._go_env()


def run_go_test(go: str, module: str) -> str:
    p = subprocess.run(
        [go, "test", "-count=1", "./..."],
        cwd=GO_DIR / module,
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "FAIL" not in p.stdout, out
    return out


@pytest.mark.parametrize("module", MODULES)
def test_go_test(module: str) -> None:
    run_go_test("go", module)


# Go 1.27 (the second toolchain) and Go 1.22 (the floor every go.mod declares).
OTHER_GO = ("1.27.3", "1.22.12")


def toolchain(version: str) -> str:
    """The go binary of a Go version (the toolchain module, fetched once via GOTOOLCHAIN by
    scripts/go-toolchain.sh); skips if it cannot be obtained."""
    try:
        p = subprocess.run(
            [str(ROOT / "scripts" / "go-toolchain.sh"), version],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"Go {version} toolchain unavailable: {e}")
    go = p.stdout.strip().splitlines()[-1]
    assert gobuild.go_version(go) == f"go{version}"
    return go


@pytest.mark.parametrize("version", OTHER_GO)
@pytest.mark.parametrize("module", MODULES)
def test_go_test_other_go(module: str, version: str) -> None:
    # GOTOOLCHAIN=local with that binary: exactly that toolchain, the modules' `go 1.22.0`
    # unchanged.
    run_go_test(toolchain(version), module)


def build_example(module: str = ".", package: str = "./examples/labelled") -> pathlib.Path:
    """Build an example of one of the modules once per (go/ sources, Go version, checkout)
    into the goapps cache. The hash covers all of go/: the nested modules use the core
    through `replace ../`."""
    version = gobuild.go_version()
    name = pathlib.PurePosixPath(package).name
    key = gobuild._source_hash(GO_DIR, [version, module, package, str(GO_DIR)])
    binary = gobuild.cache_dir() / f"{name}-{version}-{key[:16]}"
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory(prefix=f"goapp-{name}-") as tmp:
        out = pathlib.Path(tmp) / "bin"
        p = subprocess.run(
            ["go", "build", "-o", str(out), package],
            cwd=GO_DIR / module,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if p.returncode != 0:
            raise gobuild.GoAppError(f"go build {package} in {module} failed:\n{p.stderr}")
        staged = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
        shutil.copy2(out, staged)
        os.replace(staged, binary)
    return binary


def test_example_server_labels_read_by_grprof() -> None:
    binary = build_example()
    with gobuild.run_goapp(binary) as app:
        b = Blocked(app.base_url)
        b.start(app.base_url + "/work/7")
        try:
            # Both parked (a profile taken as soon as the worker is would race the handler).
            profiles = b.profiles({"main.wait": 1, "main.worker": 1})
        finally:
            b.release()
        assert b.results == [b"done 7\n"]
    labelled = [g for g in profiles["debug=1"] if g.labels.get("route")]
    labelled0 = [g for g in profiles["debug=0"] if g.labels.get("route")]
    # In both: the handler (parked in main.wait) and the goroutine it started (main.worker),
    # each carrying the request's labels; nothing else is labelled (the profiler is not).
    for groups in (labelled, labelled0):
        by_site = {g.site.function: g for g in groups if g.site is not None}
        assert set(by_site) == {"main.wait", "main.worker"}, [(g.site, g.labels) for g in groups]
        for g in by_site.values():
            assert g.state == "chan receive"
            assert dict(g.labels) == {"route": {"GET /work/{id}": 1}, "method": {"GET": 1}}


TRACE = {"trace_id": {"4bf92f3577b34da6a3ce929d0e0e4736": 1}, "span_id": {"00f067aa0ba902b7": 1}}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def labels_at(groups: Iterable[grprof.Group], match: str) -> dict[str, dict[str, int]]:
    """The labels of the goroutines with a frame whose function starts with `match`, merged
    over groups: {key: {value: goroutines}}."""
    out: dict[str, dict[str, int]] = {}
    for g in groups:
        if any(f.function.startswith(match) for f in g.frames):
            for k, vs in g.labels.items():
                for v, n in vs.items():
                    out.setdefault(k, {}).setdefault(v, 0)
                    out[k][v] += n
    return out


def post(url: str) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as resp:
        body: bytes = resp.read()
    return body


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as resp:
        body: bytes = resp.read()
    return body


class Blocked:
    """Requests blocked in an example server, its debug=1 and debug=0 profiles taken while
    they are, then released."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.results: list[bytes] = []
        self.threads: list[threading.Thread] = []

    def start(self, url: str, headers: dict[str, str] | None = None) -> None:
        t = threading.Thread(target=lambda: self.results.append(get(url, headers)))
        t.start()
        self.threads.append(t)

    def profiles(self, wanted: dict[str, int]) -> dict[str, list[grprof.Group]]:
        """Wait until debug=1 shows `wanted` goroutines parked at each site function."""
        deadline = time.monotonic() + 60
        while True:
            snap = grprof.load(gobuild.fetch(self.base_url, "/debug/pprof/goroutine?debug=1"))
            seen: dict[str, int] = {}
            for g in snap.groups():
                if g.site is not None:
                    seen[g.site.function] = seen.get(g.site.function, 0) + g.count
            if all(seen.get(f, 0) >= n for f, n in wanted.items()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        snap0 = grprof.load(gobuild.fetch(self.base_url, "/debug/pprof/goroutine?debug=0"))
        return {"debug=1": snap.groups(), "debug=0": snap0.groups()}

    def release(self) -> None:
        assert post(self.base_url + "/release") == b"released\n"
        for t in self.threads:
            t.join(30)


def test_grpc_example_labels_read_by_grprof() -> None:
    binary = build_example("grpclabels", "./examples/grpcserver")
    with gobuild.run_goapp(binary) as app:
        b = Blocked(app.base_url)
        b.start(app.base_url + "/call/check?trace=1")  # a span in the server's context
        b.start(app.base_url + "/call/watch")  # none: no trace labels
        try:
            profiles = b.profiles({"main.checkWait": 1, "main.watchWait": 1, "main.worker": 2})
        finally:
            b.release()
        assert sorted(b.results) == [b"check SERVING\n", b"watch SERVING\n"]
    check = {"rpc": {"/grpc.health.v1.Health/Check": 1}}
    watch = {"rpc": {"/grpc.health.v1.Health/Watch": 1}}
    for debug, groups in profiles.items():
        # Server side: the unary handler (rpc + trace labels), the stream handler (rpc), and
        # the goroutine each started, with its request's labels.
        assert labels_at(groups, "main.checkWait") == {**check, **TRACE}, debug
        assert labels_at(groups, "main.watchWait") == watch, debug
        assert labels_at(groups, "main.worker") == {
            "rpc": {"/grpc.health.v1.Health/Check": 1, "/grpc.health.v1.Health/Watch": 1},
            **TRACE,
        }, debug
        # Client side: the goroutine blocked in the unary call, and the one gRPC started for
        # the client stream (it inherits the labels of stream creation).
        assert labels_at(groups, "github.com/grprof/grprof/go/grpclabels.unaryClient") == check, debug
        assert labels_at(groups, "google.golang.org/grpc.newClientStreamWithParams") == watch, debug
        # Nothing else is labelled (the control and pprof handlers are not).
        known = (
            "main.checkWait",
            "main.watchWait",
            "main.worker",
            "github.com/grprof/grprof/go/grpclabels.unaryClient",
            "google.golang.org/grpc.newClientStreamWithParams",
        )
        for g in groups:
            if g.labels:
                assert any(f.function.startswith(known) for f in g.frames), (debug, g.frames, g.labels)


def test_hertz_example_labels_read_by_grprof() -> None:
    binary = build_example("hertzlabels", "./examples/hertzserver")
    with gobuild.run_goapp(binary) as app:
        hertz = gobuild.fetch(app.base_url, "/hertz").decode().strip()  # the Hertz engine's URL
        b = Blocked(app.base_url)
        b.start(hertz + "/users/7", {"traceparent": TRACEPARENT})
        b.start(hertz + "/users/8")
        try:
            profiles = b.profiles({"main.wait": 2, "main.worker": 2})
        finally:
            b.release()
        assert sorted(b.results) == [b"done 7\n", b"done 8\n"]
    for debug, groups in profiles.items():
        # The handler (in main.wait) and its worker, each for both requests: route and
        # method on all four, the trace labels on the two of the request with a traceparent.
        for site in ("main.wait", "main.worker"):
            assert labels_at(groups, site) == {
                "route": {"/users/:id": 2},
                "method": {"GET": 2},
                **TRACE,
            }, (debug, site)
        both = [g for g in groups if g.site is not None and g.site.function in ("main.wait", "main.worker")]
        assert sum(g.count for g in both) == 4, debug
        # Nothing else is labelled (Hertz's own goroutines, the pprof server).
        for g in groups:
            if g.labels:
                assert g in both, (debug, g.frames, g.labels)
