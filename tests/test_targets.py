"""Targets (issue 15): every way people name a live service resolves to its goroutine profile,
the same for `analyze`, `watch` and `serve` (grprof.sources.resolve_target)."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gobuild import build_goapp, run_goapp

from grprof.cli import input_source
from grprof.config import ConfigError, parse_config
from grprof.serve import cli_targets
from grprof.sources import ResolvedTarget, TargetError, looks_like_target, redact, resolve_target
from grprof.watch import base_url, url_format, watch_target

GRPROF = [sys.executable, "-m", "grprof.cli"]
LEAKY = "../../examples/leaky"
DUMP = Path(__file__).parent / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"
H = "http://h:6060"
G = f"{H}/debug/pprof/goroutine"

# (given, profile URL for analyze, format): the table.
FORMS = [
    ("h:6060", f"{G}?debug=2", "debug=2"),
    (H, f"{G}?debug=2", "debug=2"),
    (f"{H}/", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof/", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof/goroutine", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof/goroutine/", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof/goroutine?debug=0", f"{G}?debug=0", "debug=0"),
    (f"{H}/debug/pprof/goroutine?debug=1", f"{G}?debug=1", "debug=1"),
    (f"{H}/debug/pprof/goroutine?debug=2", f"{G}?debug=2", "debug=2"),
    (f"{H}/debug/pprof/goroutineleak", f"{H}/debug/pprof/goroutineleak?debug=1", "debug=1"),
    (f"{H}/debug/pprof/goroutineleak?debug=0", f"{H}/debug/pprof/goroutineleak?debug=0", "debug=0"),
]


@pytest.mark.parametrize("given,url,fmt", FORMS)
def test_every_form_resolves_to_the_profile(given: str, url: str, fmt: str) -> None:
    t = resolve_target(given)
    assert (t.url, t.format, t.base, t.query) == (url, fmt, H, "")
    assert t.profile == ("goroutineleak" if "goroutineleak" in given else "goroutine")
    assert looks_like_target(given)


@pytest.mark.parametrize("given,url,fmt", FORMS)
def test_format_option_wins_over_the_url(given: str, url: str, fmt: str) -> None:
    for option in ("debug=0", "debug=1", "debug=2"):
        t = resolve_target(given, option)
        assert t.format == option
        assert t.url == url.replace(fmt, option)


def test_default_format_is_the_callers() -> None:
    # analyze wants debug=2; watch and serve poll debug=1 (the capture policy adds debug=2).
    assert resolve_target(H).format == "debug=2"
    assert resolve_target(H, default="debug=1").url == f"{G}?debug=1"
    assert resolve_target(f"{G}?debug=0", default="debug=1").format == "debug=0"
    # goroutineleak is debug=1 unless asked: its debug=1 is the leaked goroutines only.
    assert resolve_target(f"{H}/debug/pprof/goroutineleak", default="debug=2").format == "debug=1"
    assert watch_target(H).format == "debug=1"
    assert watch_target(H, "debug=2").format == "debug=2"


def test_https_userinfo_prefix_and_other_query_parameters_are_kept() -> None:
    t = resolve_target("https://u:p%40ss@h.example:8443/admin/debug/pprof/goroutine?token=x&debug=1&a=b#frag")
    assert t == ResolvedTarget(
        url="https://u:p%40ss@h.example:8443/admin/debug/pprof/goroutine?debug=1&token=x&a=b",
        base="https://u:p%40ss@h.example:8443/admin",
        profile="goroutine",
        format="debug=1",
        query="token=x&a=b",
    )
    assert t.profile_url("goroutineleak", "debug=1") == (
        "https://u:p%40ss@h.example:8443/admin/debug/pprof/goroutineleak?debug=1&token=x&a=b"
    )
    assert resolve_target("HTTPS://h:1/?k=v").url == "https://h:1/debug/pprof/goroutine?debug=2&k=v"
    assert (
        resolve_target("  [::1]:6060/debug/pprof/ ").url == "http://[::1]:6060/debug/pprof/goroutine?debug=2"
    )
    assert resolve_target("u:p@h:6060").base == "http://u:p@h:6060"
    assert redact(t.url) == "https://u:***@h.example:8443/admin/debug/pprof/goroutine?debug=1&token=x&a=b"
    assert redact(G) == G


def test_a_url_that_is_no_pprof_url_is_fetched_as_given() -> None:
    # A dump served as a file (a CI artifact): not rewritten; its content tells the format.
    t = resolve_target("https://ci.example/artifacts/dump.txt?sig=abc&debug=1")
    assert t.url == "https://ci.example/artifacts/dump.txt?sig=abc&debug=1"
    assert (t.profile, t.format) == (None, None)
    # For watch and serve, which need a service, the path is where pprof is mounted.
    assert base_url("https://h/app") == "https://h/app"
    assert base_url("https://h/app/debug/pprof/") == "https://h/app"


@pytest.mark.parametrize(
    "given,message",
    [
        ("ftp://h:21/", "must start with http:// or https://"),
        ("http://h:99999/", "bad port"),
        ("http:///debug/pprof/", "no host"),
        ("dump.txt", "not a URL"),
        (f"{H}/debug/pprof/heap", "/debug/pprof/heap is not a goroutine profile"),
        (f"{G}?debug=3", "debug=3: use debug=0, debug=1 or debug=2"),
        (f"{G}?debug=x&debug=1", "debug=x"),
    ],
)
def test_what_is_not_a_target(given: str, message: str) -> None:
    with pytest.raises(TargetError, match=message.replace("?", r"\?")):
        resolve_target(given)


def test_bad_format_option() -> None:
    with pytest.raises(TargetError, match="format debug=3"):
        resolve_target(H, "debug=3")


def test_analyze_inputs_files_first(tmp_path: Path) -> None:
    assert input_source("-") == "-"
    assert input_source("dump.txt") == "dump.txt"  # not a service: read as a (missing) file
    assert input_source("h:6060") == f"{G}?debug=2"
    assert input_source("h:6060", "debug=1") == f"{G}?debug=1"
    named = tmp_path / "h:6060"
    named.write_bytes(b"")
    assert input_source(str(named)) == str(named)  # an existing file wins
    assert not looks_like_target("C:\\dumps\\a.txt") and not looks_like_target("./a:1b")


def test_watch_helpers() -> None:
    assert base_url("h:6060") == H
    assert url_format(f"{G}?debug=0") == "debug=0"
    assert url_format(G) is None  # names no format: watch's default applies
    assert url_format(f"{H}/debug/pprof/goroutineleak?debug=2") is None


def test_serve_targets_are_normalized() -> None:
    cfg = parse_config(
        "targets:\n"
        "  - {name: a, url: 127.0.0.1:6060}\n"
        "  - {name: b, url: 'http://127.0.0.1:6061/debug/pprof/goroutine?debug=2'}\n"
        "  - {name: c, url: 'https://h/admin/debug/pprof/'}\n"
    )
    assert [t.url for t in cfg.static_targets()] == [
        "http://127.0.0.1:6060",
        "http://127.0.0.1:6061",
        "https://h/admin",
    ]
    with pytest.raises(
        ConfigError, match=r"<config>:2: targets\.0\.url: /debug/pprof/heap is not a goroutine"
    ):
        parse_config("targets:\n  - {name: a, url: 'http://h:1/debug/pprof/heap'}\n")
    with pytest.raises(ConfigError, match=r"targets\.0\.url: query parameters other than debug"):
        parse_config("targets:\n  - {name: a, url: 'http://h:1/?token=x'}\n")
    (t,) = cli_targets(["127.0.0.1:6060/debug/pprof/"])
    assert (t.name, t.url) == ("127.0.0.1:6060", "http://127.0.0.1:6060")


# -- end to end ------------------------------------------------------------------------------


def grprof(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*GRPROF, *args], capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def analyze(*args: str) -> dict[str, Any]:
    p = grprof("analyze", "--json", *args)
    assert p.returncode == 0, p.stderr
    return dict(json.loads(p.stdout))


@pytest.fixture(scope="module")
def leaky() -> Iterator[str]:
    with run_goapp(LEAKY, "-addr", "127.0.0.1:0", "-rate", "0") as (_, base):
        yield base


@pytest.mark.slow
def test_analyze_every_url_form_of_a_live_service(leaky: str) -> None:
    forms = [
        ([leaky.removeprefix("http://")], "debug=2"),
        ([leaky], "debug=2"),
        ([f"{leaky}/"], "debug=2"),
        ([f"{leaky}/debug/pprof"], "debug=2"),
        ([f"{leaky}/debug/pprof/"], "debug=2"),
        ([f"{leaky}/debug/pprof/goroutine"], "debug=2"),
        ([f"{leaky}/debug/pprof/goroutine?debug=1"], "debug=1"),
        ([f"{leaky}/debug/pprof/goroutine?debug=0"], "debug=0"),
        ([f"{leaky}/debug/pprof/goroutine?debug=1&x=1"], "debug=1"),
        ([leaky, "--format", "debug=1"], "debug=1"),
        ([f"{leaky}/debug/pprof/", "--format", "debug=0"], "debug=0"),
        ([f"{leaky}/debug/pprof/goroutine?debug=0", "--format", "debug=2"], "debug=2"),
        ([leaky.replace("http://", "http://user:secret@")], "debug=2"),
    ]
    for args, fmt in forms:
        r = analyze(*args)
        (snap,) = r["snapshots"]
        assert (snap["format"], snap["profile"]) == (fmt, "goroutine"), args
        assert snap["total"] > 0 and r["groups"], args
        assert "/debug/pprof/goroutine?debug=" in snap["source"], args
        assert "secret" not in snap["source"]
    # The text report too, for the form the issue starts from.
    p = grprof("analyze", leaky)
    assert p.returncode == 0 and "main.workerPool" in p.stdout, p.stderr


@pytest.mark.slow
def test_analyze_errors_name_the_resolved_url(leaky: str) -> None:
    p = grprof("analyze", f"{leaky}/debug/pprof/goroutineleak")  # built without the experiment
    assert p.returncode == 2
    assert p.stderr.strip() == f"grprof: {leaky}/debug/pprof/goroutineleak?debug=1: HTTP 404 Not Found"
    p = grprof("analyze", f"{leaky}/debug/pprof/heap")
    assert p.returncode == 2
    assert p.stderr.strip().endswith(
        "/debug/pprof/heap is not a goroutine profile (use /debug/pprof/goroutine or goroutineleak)"
    )
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_analyze_the_goroutineleak_profile() -> None:
    binary = build_goapp(LEAKY, env={"GOEXPERIMENT": "goroutineleakprofile"})
    with run_goapp(binary, "-addr", "127.0.0.1:0", "-rate", "0") as (_, base):
        r = analyze(f"{base.removeprefix('http://')}/debug/pprof/goroutineleak")
    (snap,) = r["snapshots"]
    assert (snap["profile"], snap["format"]) == ("goroutineleak", "debug=1")
    assert snap["source"] == f"{base}/debug/pprof/goroutineleak?debug=1"


@pytest.mark.slow
def test_watch_takes_the_same_forms_and_format(leaky: str) -> None:
    p = grprof(
        "watch",
        leaky.removeprefix("http://"),
        "--interval",
        "1s",
        "--duration",
        "1s",
        "--json",
        "--format",
        "debug=2",
    )
    assert p.returncode == 0, p.stderr
    assert f"watching {leaky} every 1s (debug=2)" in p.stderr
    assert json.loads(p.stdout)["detection"]["snapshots"] >= 1
    p = grprof("watch", f"{leaky}/debug/pprof/heap", "--interval", "1s", "--duration", "1s")
    assert p.returncode == 2 and "is not a goroutine profile" in p.stderr, p.stderr


def test_basic_auth_and_query_reach_the_service() -> None:
    seen: list[tuple[str, str | None]] = []
    body = DUMP.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        r = analyze(f"http://me:s%3Acret@127.0.0.1:{port}/debug/pprof/?token=t1")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [
        ("/debug/pprof/goroutine?debug=2&token=t1", "Basic " + base64.b64encode(b"me:s:cret").decode())
    ]
    assert (
        r["snapshots"][0]["source"]
        == f"http://me:***@127.0.0.1:{port}/debug/pprof/goroutine?debug=2&token=t1"
    )
