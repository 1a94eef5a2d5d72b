"""The Go module in go/ (docs/go.md): its own `go test`, and one end-to-end check that a
server using its net/http middleware shows request labels that grprof reads (debug=1 and
debug=0 over HTTP).

`go test ./...` runs in each of the three modules (go/, go/grpclabels, go/hertzlabels);
their dependencies come from the Go module proxy into the module cache, as the
tests/goapps programs' do. The example server go/examples/labelled is built like the
tests/goapps programs (tests/gobuild.py: cached by sources and Go version, GOTOOLCHAIN=local).
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

import gobuild
import pytest

import grprof

GO_DIR = pathlib.Path(__file__).resolve().parent.parent / "go"
MODULES = (".", "grpclabels", "hertzlabels")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain"),
]


def go_env() -> dict[str, str]:
    # gobuild's environment: GOTOOLCHAIN=local, no inherited GOFLAGS.
    return gobuild._go_env()


@pytest.mark.parametrize("module", MODULES)
def test_go_test(module: str) -> None:
    p = subprocess.run(
        ["go", "test", "-count=1", "./..."],
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


def build_example() -> pathlib.Path:
    """Build go/examples/labelled once per (go/ sources, Go version) into the goapps cache."""
    version = gobuild.go_version()
    key = gobuild._source_hash(GO_DIR, [version, "examples/labelled"])
    binary = gobuild.cache_dir() / f"labelled-{version}-{key[:16]}"
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory(prefix="goapp-labelled-") as tmp:
        out = pathlib.Path(tmp) / "bin"
        p = subprocess.run(
            ["go", "build", "-o", str(out), "./examples/labelled"],
            cwd=GO_DIR,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if p.returncode != 0:
            raise gobuild.GoAppError(f"go build ./examples/labelled failed:\n{p.stderr}")
        staged = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
        shutil.copy2(out, staged)
        os.replace(staged, binary)
    return binary


def test_example_server_labels_read_by_grprof() -> None:
    binary = build_example()
    with gobuild.run_goapp(binary) as app:
        results: list[bytes] = []
        blocked = threading.Thread(target=lambda: results.append(gobuild.fetch(app.base_url, "/work/7")))
        blocked.start()
        try:
            deadline = time.monotonic() + 30
            while True:
                snap = grprof.load(gobuild.fetch(app.base_url, "/debug/pprof/goroutine?debug=1"))
                labelled = [g for g in snap.groups() if g.labels.get("route")]
                if len(labelled) >= 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            # The same from the debug=0 protobuf, taken while the request is still blocked.
            snap0 = grprof.load(gobuild.fetch(app.base_url, "/debug/pprof/goroutine"))
            labelled0 = [g for g in snap0.groups() if g.labels.get("route")]
        finally:
            req = urllib.request.Request(app.base_url + "/release", method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.read() == b"released\n"
            blocked.join(30)
        assert results == [b"done 7\n"]
    # In both: the handler (parked in main.wait) and the goroutine it started (main.worker),
    # each carrying the request's labels; nothing else is labelled (the profiler is not).
    for groups in (labelled, labelled0):
        by_site = {g.site.function: g for g in groups if g.site is not None}
        assert set(by_site) == {"main.wait", "main.worker"}, [(g.site, g.labels) for g in groups]
        for g in by_site.values():
            assert g.state == "chan receive"
            assert dict(g.labels) == {"route": {"GET /work/{id}": 1}, "method": {"GET": 1}}
