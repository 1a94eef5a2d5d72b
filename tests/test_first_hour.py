"""A user's first hour, end to end (issue 15): the release wheel installed offline into a fresh
venv, then the *installed* `grprof` run as a user would: the version, a recorded dump, a live
service under every URL form, a pasted dump, the one-line errors, a broken pipe, `/docs`
without a network, and `make demo` in a fresh copy of the repository as a non-root user.

The wheel is dist/grprof-*.whl when it is newer than the sources (`make wheel`, which
`make unit` runs first), else built here with maturin. The dependencies come from the
wheelhouse `make wheelhouse` fills from requirements.lock (`make unit` runs it too): without
it, these tests skip. Other test files check each behaviour in depth; this one checks that the
installed program has it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gobuild import build_goapp, run_goapp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WHEELHOUSE = ROOT / ".wheelhouse"
ZOO = sorted((FIXTURES / "zoo").glob("*goroutine.debug2.txt"))
STRIPPED = FIXTURES / "paste" / "states-go1.26.8.stripped.txt"
WHEEL_RE = re.compile(r"grprof-[^-]+-cp311-abi3-manylinux_\d+_\d+_x86_64\.whl")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points pip or Python at this checkout or an index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def _newest_source() -> float:
    paths = [ROOT / "pyproject.toml", ROOT / "native" / "Cargo.toml"]
    paths += [p for p in (ROOT / "src" / "grprof").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    paths += list((ROOT / "native" / "src").glob("*.rs"))
    return max(p.stat().st_mtime for p in paths)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = sorted((ROOT / "dist").glob("grprof-*.whl"))
    if len(built) == 1 and built[0].stat().st_mtime >= _newest_source():
        return built[0]
    maturin = shutil.which("maturin", path=str(Path(sys.executable).parent)) or shutil.which("maturin")
    if maturin is None or shutil.which("cargo") is None:
        pytest.skip("no fresh dist/grprof-*.whl and no maturin/cargo to build one (make wheel)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [maturin, "build", "--release", "--out", str(out)], cwd=ROOT, check=True, capture_output=True
    )
    (whl,) = out.glob("grprof-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed from the wheelhouse alone (no index): its bin/."""
    if not (WHEELHOUSE / ".complete").exists():
        pytest.skip("no .wheelhouse (make wheelhouse downloads the locked dependencies; make unit runs it)")
    root = tmp_path_factory.mktemp("fresh") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(root)], check=True, env=clean_env())
    p = subprocess.run(
        [root / "bin" / "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE, wheel],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return root / "bin"


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(venv: Path, tmp_path: Path) -> Iterator[Run]:
    """grprof(*args) -> CompletedProcess: the installed entry point, from an empty directory."""

    def grprof(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [venv / "grprof", *map(str, args)],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback" not in p.stderr, p.stderr
        return p

    yield grprof


def one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("grprof: "), line
    for n in needles:
        assert n in line, line
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the wheel and the install -----------------------------------------------------------------


def test_wheel_is_manylinux_abi3_with_the_scanner_and_the_data(wheel: Path) -> None:
    assert WHEEL_RE.fullmatch(wheel.name), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    # exactly the extension just built (no stale copy from src/ beside it) and its stub
    assert {n for n in names if n.startswith("grprof/_native")} == {
        "grprof/_native.abi3.so",
        "grprof/_native.pyi",
    }
    for want in (
        "grprof/py.typed",
        "grprof/data/detect.yaml",
        "grprof/data/rules.yaml",
        "grprof/data/templates/report.html.j2",
        "grprof/store/migrations/script.py.mako",
        "grprof/store/migrations/versions/v0001_initial.py",
    ):
        assert want in names, want
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_version_and_the_native_scanner_is_used(run: Run, venv: Path, tmp_path: Path) -> None:
    p = run("--version")
    # The wheel bundles the native scanner, and --version says which scanner runs.
    assert p.returncode == 0 and re.fullmatch(r"grprof \d+\.\d+\.\d+\S* \(native scanner\)\n?", p.stdout), p
    probe = (
        "import grprof, grprof._native as n\n"
        "from grprof.formats.traceback import native_scanner\n"
        "print(n.__file__, grprof.__file__, native_scanner() is not None)\n"
    )
    out = subprocess.run(
        [venv / "python", "-c", probe], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    )
    so, pkg, used = out.stdout.split()
    assert "site-packages" in so and "site-packages" in pkg and str(ROOT) not in pkg, out
    assert used == "True"


# -- what a user types --------------------------------------------------------------------------


def test_analyze_a_recorded_series_prints_the_leaks(run: Run) -> None:
    p = run("analyze", *ZOO, "--interval", "30s")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^Findings: \d+ leaks", p.stdout, re.M), p.stdout[:2000]
    assert "LEAK (99%) Worker blocked sending its result after the handler gave up" in p.stdout
    assert "fix:" in p.stdout


@contextlib.contextmanager
def leaky_service() -> Iterator[str]:
    binary = build_goapp("../../examples/leaky", env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary, "-addr", "127.0.0.1:0", "-rate", "20") as (_, base):
        time.sleep(1)  # some timed-out requests, so some leaked workers
        yield base


def test_every_url_form_of_a_live_service(run: Run) -> None:
    with leaky_service() as base:
        hostport = base.removeprefix("http://")
        forms = {
            hostport: "goroutine",
            base: "goroutine",
            f"{base}/debug/pprof/": "goroutine",
            f"{base}/debug/pprof/goroutine": "goroutine",
            f"{base}/debug/pprof/goroutineleak": "goroutineleak",
        }
        for form, profile in forms.items():
            p = run("analyze", form)
            assert p.returncode == 0, (form, p.stderr)
            assert "main.leakyHandler.func1" in p.stdout, (form, p.stdout[:2000])
            if profile == "goroutineleak":
                assert "leak" in p.stdout.lower()
            p = run("analyze", "--json", form)
            assert f'"profile": "{profile}"' in p.stdout, form


def test_a_dump_that_lost_its_indentation_is_one_snapshot(run: Run) -> None:
    p = run("analyze", STRIPPED)
    assert p.returncode == 0, p.stderr
    assert "lost their indentation" in p.stderr  # the warning says what was repaired
    p = run("analyze", "--json", STRIPPED)
    (snap,) = json.loads(p.stdout)["snapshots"]
    assert snap["format"] == "debug=2" and snap["total"] > 50, snap


# Each log style as the real tools print it (tests/fixtures/paste/README.md says which tool made
# which file): read as the one dump it holds, the same goroutines as the clean dump.
LOGGED = sorted(
    p for p in (FIXTURES / "paste").glob("states-go1.26.8.*.txt") if not p.name.endswith(".stripped.txt")
)


def test_logged_and_pasted_dumps_read_as_the_dump_they_hold(run: Run) -> None:
    clean = json.loads(
        run("analyze", "--json", FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt").stdout
    )
    (want,) = clean["snapshots"]
    assert len(LOGGED) >= 8, LOGGED
    for path in LOGGED:
        p = run("analyze", "--json", path)
        assert p.returncode == 0, (path.name, p.stderr)
        (snap,) = json.loads(p.stdout)["snapshots"]
        assert (snap["format"], snap["total"]) == (want["format"], want["total"]), path.name
        # and a warning that names the input and what was repaired
        assert str(path) in p.stderr, (path.name, p.stderr)


def test_goleak_output_is_read(run: Run) -> None:
    report = FIXTURES / "goleak" / "go1.26.8" / "verifynone.txt"
    p = run("analyze", "--json", report)
    assert p.returncode == 0, p.stderr
    (snap,) = json.loads(p.stdout)["snapshots"]
    states = {g["state"] for g in json.loads(p.stdout)["groups"]}
    assert snap["total"] >= 5 and {"chan receive", "select", "IO wait"} <= states, (snap, states)
    assert "goleak:" in p.stderr, p.stderr  # which test and package reported them


def test_diff_of_a_real_before_and_after(run: Run) -> None:
    before, after = ZOO[0], ZOO[-1]
    p = run("diff", "--json", before, after)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    leaky = [g for g in doc["groups"] if g["site"] and g["site"]["function"] == "main.leakyHandler.func1"]
    assert leaky and leaky[0]["status"] == "new" and leaky[0]["before"] == 0 < leaky[0]["after"], leaky
    assert run("diff", "--fail-on", "leak", before, after).returncode == 1
    text = run("diff", "--no-pager", before, after)
    assert text.returncode == 0 and "main.leakyHandler.func1" in text.stdout, text.stdout[:2000]


def test_snapshots_of_different_builds_are_warned_about(run: Run) -> None:
    a = FIXTURES / "states" / "go1.22.12" / "goroutine.debug2.txt"
    b = FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt"
    p = run("analyze", a, b, "--interval", "30s")
    assert p.returncode == 0, p.stderr
    assert "different builds" in p.stderr and str(a) in p.stderr and str(b) in p.stderr, p.stderr


def test_errors_are_one_line_with_status_2(run: Run, tmp_path: Path) -> None:
    one_line_error(run("analyze", "no-such-dump.txt"), "no-such-dump.txt", "no such file")
    db = tmp_path / "g.db"
    one_line_error(run("serve", "--db", db, "--listen", "nonsense"), "--listen nonsense")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        one_line_error(run("serve", "--db", db, "--listen", addr), "address already in use")


def test_broken_pipe_is_quiet(venv: Path, tmp_path: Path) -> None:
    """`grprof analyze ... | head -c 100`: status 0, nothing on stderr."""
    cmd = f"'{venv}/grprof' analyze --interval 30s {' '.join(map(str, ZOO))} | head -c 100 >/dev/null"
    cmd += "; echo ${PIPESTATUS[0]}"
    p = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert p.stdout.strip() == "0", p
    assert p.stderr == "", p.stderr


@contextlib.contextmanager
def serving(venv: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [venv / "grprof", "serve", "--listen", f"127.0.0.1:{port}", "--db", tmp_path / "g.db"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                assert time.monotonic() < deadline, "grprof serve did not answer /healthz"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_without_a_network(venv: Path, tmp_path: Path, page: str) -> None:
    """Swagger UI and ReDoc: every asset from grprof's own packaged copies."""
    with serving(venv, tmp_path) as base:
        with urllib.request.urlopen(f"{base}{page}", timeout=30) as r:
            assert r.status == 200
            html = r.read().decode()
        # No URL to another host: every script, stylesheet and the schema come from grprof.
        others = [u for u in re.findall(r"https?://[^\s'\"<>)]+", html) if not u.startswith(base)]
        assert others == [], others
        refs = [
            a or b for a, b in re.findall(r"""(?:src|href)=['"]([^'"]+)['"]|url:\s*['"]([^'"]+)['"]""", html)
        ]
        assert any(u.endswith(".js") for u in refs), html
        if page == "/docs":
            assert any(u.endswith(".css") for u in refs), html
        for ref in refs:
            with urllib.request.urlopen(base + ref if ref.startswith("/") else ref, timeout=30) as r:
                assert r.status == 200 and r.read(), ref


# -- make demo, as a user who just cloned the repository ---------------------------------------


def repo_copy(dest: Path) -> None:
    """What `git clone` of the working tree gives: tracked and untracked, not ignored, files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in out.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def as_user() -> list[str]:
    """The prefix that runs a command as a non-root user, or a skip."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and no runuser to become another user")
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and no user 'nobody'")
    return [runuser, "-u", "nobody", "--"]


def test_make_demo_in_a_fresh_clone_as_a_user() -> None:
    prefix = as_user()
    for tool in ("make", "go", "git", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool}")
    if not (WHEELHOUSE / ".complete").exists():
        pytest.skip("no .wheelhouse to install the demo's dependencies from offline (make wheelhouse)")
    top = Path(tempfile.mkdtemp(prefix="grprof-demo-"))  # not under pytest's root-only tmp_path
    try:
        clone, home = top / "grprof", top / "home"
        clone.mkdir()
        home.mkdir()
        repo_copy(clone)
        shutil.copytree(WHEELHOUSE, clone / ".wheelhouse")
        go = Path(shutil.which("go") or "go").resolve().parent
        path = f"{go}:/usr/local/bin:/usr/bin:/bin"
        if not prefix:  # our own user: keep its PATH (its python3.11, its cargo)
            path = f"{go}:{os.environ['PATH']}"
        else:
            os.chmod(top, 0o755)
            subprocess.run(["chown", "-R", "nobody", str(top)], check=True)
        env = {
            "HOME": str(home),
            "PATH": path,
            "LANG": "C.UTF-8",
            "DEMO_SECONDS": "90",
            # offline: the demo's dependencies from the wheelhouse, as `make wheelhouse` left them
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(clone / ".wheelhouse"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        p = subprocess.run(
            [*prefix, "env", "-i", *(f"{k}={v}" for k, v in env.items()), "make", "demo"],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=600,
        )
        out = p.stdout + p.stderr
        assert p.returncode == 0, out[-6000:]
        # the web UI's address comes first, before the wait for a verdict
        first = next(line for line in p.stdout.splitlines() if line.startswith("==> "))
        assert re.fullmatch(r"==> web UI: http://127\.0\.0\.1:\d+/ .*", first), p.stdout[:2000]
        # the leak, found and explained, with the source line and the fix
        assert re.search(r"^==> LEAK \(\d+%\) Worker blocked sending its result", out, re.M), out
        assert "main.leakyHandler.func1 main.go:" in out, out
        assert "source line" in out and 'ch <- "done"' in out, out
        assert "root cause:" in out and "fix (grprof's advice):" in out, out
        assert "make(chan T, 1)" in out, out
        # then cleared after the fix
        assert "restarting the service with the fix" in out, out
        assert "==> cleared: grprof marked the finding resolved" in out, out
        flat = r"goroutines over \d+ scrapes of the fixed service: \d+ to \d+, not growing$"
        assert re.search(flat, out, re.M), out
    finally:
        shutil.rmtree(top, ignore_errors=True)
