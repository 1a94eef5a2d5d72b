"""Build and run the Go test programs under tests/goapps/.

`build_goapp("states")` compiles tests/goapps/states once per (sources, Go
version, build env) into a cache directory and returns the binary; concurrent
pytest-xdist workers may call it at once (each builds to a temporary name and
renames it into place atomically). `run_goapp(...)` starts a program, waits for
its `READY` line and yields the process and its pprof base URL.

The cache lives in $GRPROF_TEST_CACHE, else ~/.cache/grprof-tests/goapps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import selectors
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, NamedTuple

GOAPPS = pathlib.Path(__file__).resolve().parent / "goapps"
READY_TIMEOUT = 120.0


class GoAppError(RuntimeError):
    """A Go test program failed to build or to start."""


class RunningApp(NamedTuple):
    process: subprocess.Popen[bytes]
    base_url: str


def cache_dir() -> pathlib.Path:
    root = os.environ.get("GRPROF_TEST_CACHE") or str(pathlib.Path.home() / ".cache" / "grprof-tests")
    path = pathlib.Path(root) / "goapps"
    path.mkdir(parents=True, exist_ok=True)
    return path


def go_version(go: str = "go") -> str:
    """`go env GOVERSION` of a toolchain, e.g. `go1.26.8`."""
    out = subprocess.run([go, "env", "GOVERSION"], env=_go_env(), capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_goapp(
    name: str,
    go: str = "go",
    *,
    env: Mapping[str, str] | None = None,
    go_line: str | None = None,
    flags: Sequence[str] = (),
) -> pathlib.Path:
    """Build tests/goapps/<name> (or a path relative to it, `../../examples/leaky`) with `go`
    and return the cached binary.

    `env` adds build environment (e.g. GOEXPERIMENT); `go_line` rewrites the
    module's go.mod `go` directive in a temporary copy (Go 1.27 prints labels in
    traceback headers only for modules that say `go 1.27`); `flags` go to `go build`
    (`-gcflags=...`, `-buildmode=pie`: another build of the same source).
    """
    src = (GOAPPS / name).resolve()
    name = src.name
    if not (src / "go.mod").is_file():
        raise GoAppError(f"no Go module at {src}")
    extra = dict(env or {})
    version = go_version(go)
    # The binary names its source files by absolute path (stacks print them): a checkout
    # elsewhere (a clean clone) must not reuse it.
    key = _source_hash(src, [version, repr(sorted(extra.items())), go_line or "", str(src), *flags])
    binary = cache_dir() / f"{name}-{version}-{key[:16]}"
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory(prefix=f"goapp-{name}-") as tmp:
        workdir = src
        if go_line is not None:
            workdir = pathlib.Path(tmp) / name
            shutil.copytree(src, workdir)
            _set_go_line(workdir / "go.mod", go_line)
        out = pathlib.Path(tmp) / "bin"
        proc = subprocess.run(
            [go, "build", *flags, "-o", str(out), "."],
            cwd=workdir,
            env=_go_env(extra),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise GoAppError(f"go build {name} with {version} failed:\n{proc.stderr}")
        # tmp is on another filesystem maybe: copy next to the target, then rename atomically.
        staged = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
        shutil.copy2(out, staged)
        os.replace(staged, binary)
    return binary


@contextlib.contextmanager
def run_goapp(
    app: str | pathlib.Path,
    *args: str,
    go: str = "go",
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> Iterator[RunningApp]:
    """Start a goapp (a name under tests/goapps, or a built binary path), wait
    for its READY line, yield (process, base_url), then kill it.

    `env` is added to the program's environment (e.g. GODEBUG, GOTRACEBACK).
    """
    binary = pathlib.Path(app) if isinstance(app, pathlib.Path) else build_goapp(app, go)
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [str(binary), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
        try:
            base_url = _wait_ready(proc, binary.name, timeout, stderr)
            yield RunningApp(proc, base_url)
        finally:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def fetch(base_url: str, path: str, timeout: float = 60.0) -> bytes:
    """GET base_url + path over real HTTP and return the body."""
    with urllib.request.urlopen(base_url + path, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body


def _wait_ready(proc: subprocess.Popen[bytes], name: str, timeout: float, stderr: IO[bytes]) -> str:
    """Read stdout lines until READY; return the LISTEN URL."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    base_url = ""
    pending = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise GoAppError(f"{name}: no READY within {timeout}s{_tail(stderr)}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise GoAppError(f"{name} exited with {proc.wait()}{_tail(stderr)}")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace").strip()
                if text.startswith("LISTEN "):
                    base_url = text.removeprefix("LISTEN ")
                elif text == "READY":
                    return base_url
    finally:
        sel.close()


def _tail(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    text = stderr.read()[-4000:].decode(errors="replace")
    return f"\nstderr:\n{text}" if text else ""


def _source_hash(src: pathlib.Path, salt: Sequence[str]) -> str:
    h = hashlib.sha256()
    for part in salt:
        h.update(part.encode() + b"\0")
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.suffix in {".go", ".mod", ".sum", ".s", ".c", ".h"}:
            h.update(path.relative_to(src).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _set_go_line(gomod: pathlib.Path, go_line: str) -> None:
    lines = gomod.read_text().splitlines()
    lines = [f"go {go_line}" if ln.startswith("go ") else ln for ln in lines]
    gomod.write_text("\n".join(lines) + "\n")


def _go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # GOTOOLCHAIN=local: build with exactly the toolchain asked for, never switch;
    # no inherited GOFLAGS (stdlib-only modules need none).
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    env.update(extra or {})
    return env
