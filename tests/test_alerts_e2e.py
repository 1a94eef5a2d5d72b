"""End to end (docs/alerts.md): a real Prometheus, loading the rule file `grprof rules` writes
(every `for:` shortened to seconds), scrapes a real `grprof serve` that watches a real leaking
Go service (examples/leaky, built with the goroutineleak profile) and a healthy one
(tests/goapps/healthy). The GoroutineLeak alert reaches `firing` for the leaking target within
a bounded time, and no leak alert is ever pending or firing for the healthy one."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gobuild import build_goapp, run_goapp
from promserver import PROMETHEUS, ensure_prometheus, run_prometheus, wait_ready
from serveproc import free_port, run_serve

from grprof.cli import main

pytestmark = pytest.mark.slow

LEAKY = "../../examples/leaky"
FIRING_WITHIN = 90.0  # seconds from grprof's start; typically ~20-30 s here
LEAK_ALERTS = {"GoroutineLeak", "GoroutineLeakSuspect", "GoroutineGrowth", "GoroutinesBlocked"}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


@contextlib.contextmanager
def _prometheus(grprof_addr: str, rules: Path, alertmanager: str | None = None) -> Iterator[str]:
    """Our own Prometheus (promserver.run_prometheus): loopback, scrape and rule evaluation
    every second, `rules` loaded, alerts sent to `alertmanager` (HOST:PORT) when given."""
    if ensure_prometheus() is None:
        pytest.skip(
            "prometheus missing and cannot be installed (not root or no apt-get; scripts/system-deps.sh)"
        )
    am = [alertmanager] if alertmanager else []
    with run_prometheus({"grprof": [grprof_addr]}, rule_files=[rules], alertmanagers=am) as prom:
        yield prom.url


def _alerts(prom: str) -> list[dict[str, Any]]:
    data = _get(prom + "/api/v1/alerts")
    assert data["status"] == "success"
    return list(data["data"]["alerts"])


@pytest.mark.skipif(
    shutil.which(PROMETHEUS) is None and shutil.which("apt-get") is None,
    reason="prometheus missing (Debian package prometheus; scripts/system-deps.sh installs it as root)",
)
@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain to build the services")
def test_leak_alert_fires_for_the_leaking_service_only(tmp_path: Path) -> None:
    if ensure_prometheus() is None:
        pytest.skip("prometheus missing and cannot be installed (not root or no apt-get)")
    rules = tmp_path / "rules.yml"
    assert main(["rules", "-o", str(rules), "--for", "5s", "--ui-url", "http://grprof.test:8080"]) == 0
    leaky_bin = build_goapp(LEAKY, env={"GOEXPERIMENT": "goroutineleakprofile"})
    cfg = tmp_path / "grprof.yaml"
    with (
        run_goapp(leaky_bin, "-addr", "127.0.0.1:0", "-rate", "100") as (_, leaky),
        run_goapp("healthy") as (_, healthy),
    ):
        cfg.write_text(
            "version: 1\n"
            "scrape: {interval: 1s, timeout: 1s, leak_profile_every: 2}\n"
            "targets:\n"
            f"  - {{name: leaky, url: '{leaky}', labels: {{service: shop}}}}\n"
            f"  - {{name: healthy, url: '{healthy}', labels: {{service: shop}}}}\n"
        )
        port = free_port()
        with (
            run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")], port=port) as srv,
            _prometheus(f"127.0.0.1:{port}", rules) as prom,
        ):
            start = time.monotonic()
            firing: dict[str, Any] | None = None
            seen_healthy: list[dict[str, Any]] = []
            while time.monotonic() - start < FIRING_WITHIN:
                alerts = _alerts(prom)
                seen_healthy += [
                    a
                    for a in alerts
                    if a["labels"].get("target") == "healthy" and a["labels"]["alertname"] in LEAK_ALERTS
                ]
                firing = next(
                    (
                        a
                        for a in alerts
                        if a["labels"]["alertname"] == "GoroutineLeak"
                        and a["labels"].get("target") == "leaky"
                        and a["state"] == "firing"
                    ),
                    None,
                )
                if firing:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - start
            assert firing, (
                f"GoroutineLeak not firing for leaky within {FIRING_WITHIN}s; alerts: {_alerts(prom)}\n"
                f"--- serve log ---\n{srv.logs()[-3000:]}"
            )
            print(f"GoroutineLeak firing for leaky after {elapsed:.1f}s")
            # The alert carries what routing and the receiver need.
            labels, annotations = firing["labels"], firing["annotations"]
            assert labels["severity"] == "warning" and labels["service"] == "shop"
            assert labels["verdict"] == "leak" and labels["job"] == "grprof"
            assert annotations["runbook_url"].startswith(
                "http://grprof.test:8080/api/v1/findings?target=leaky&verdict=leak&category="
            )
            assert "leaky leaks goroutines" in annotations["summary"]
            # grprof's API has the finding the alert points to.
            category = labels["category"]
            found = srv.get(f"/api/v1/findings?target=leaky&verdict=leak&category={category}")["findings"]
            assert found, category
            # Keep watching a little: the healthy service never gets a leak alert.
            until = time.monotonic() + 10
            while time.monotonic() < until:
                seen_healthy += [
                    a
                    for a in _alerts(prom)
                    if a["labels"].get("target") == "healthy" and a["labels"]["alertname"] in LEAK_ALERTS
                ]
                time.sleep(1)
            assert not seen_healthy, seen_healthy
            # Prometheus did evaluate the rules against the healthy target's series.
            up = _get(prom + "/api/v1/query?query=grprof_target_up%7Btarget%3D%22healthy%22%7D")
            assert [r["value"][1] for r in up["data"]["result"]] == ["1"]
            _dashboard_queries_answer(prom)


def _dashboard_queries_answer(prom: str) -> None:
    """Every query of `grprof dashboard` runs on this Prometheus (Grafana's variables on
    "All"), and the main panels show both targets and the leak."""
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk not installed")
    from grprof.ops.dashboard import dashboard_json, promql_for_check, queries

    results: dict[str, list[Any]] = {}
    for where, expr in queries(dashboard_json()):
        url = f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': promql_for_check(expr)})}"
        data = _get(url)
        assert data["status"] == "success", (where, expr, data)
        results[where] = data["data"]["result"]
    per_target = {r["metric"]["target"] for r in results["Goroutines per target"]}
    assert per_target == {"leaky", "healthy"}
    assert float(results["Leaked goroutines"][0]["value"][1]) > 0
    assert float(results["Targets leaking"][0]["value"][1]) == 1
    assert {r["metric"]["target"] for r in results["Findings by target"]} == {"leaky"}
    assert {r["metric"]["class"] for r in results["Goroutines by wait class"]} >= {"channel", "running"}


ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
ROUTED_WITHIN = 120.0  # seconds from grprof's start until both owners' receivers have an alert


class _Receivers:
    """Webhook receivers on one loopback port: Alertmanager POSTs each notification to
    /<receiver>; `got[receiver]` keeps the alerts' label sets in arrival order."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, str]]] = {}
        got = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.setdefault(self.path.strip("/"), []).extend(a["labels"] for a in body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def _alertmanager(receivers: str) -> Iterator[str]:
    """Our own Alertmanager (Debian's prometheus-alertmanager) on loopback, no cluster, routing
    by the `owner` label: team-payments and team-search each to their own webhook, anything
    else to `default`. Yields HOST:PORT."""
    if not Path(ALERTMANAGER).is_file():
        pytest.skip("prometheus-alertmanager missing (scripts/system-deps.sh installs it as root)")
    with tempfile.TemporaryDirectory(prefix="grprof-e2e-am-") as tmp:
        hook = lambda name: {"url": f"{receivers}/{name}", "send_resolved": False}  # noqa: E731
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(
            json.dumps(
                {
                    "route": {
                        "receiver": "default",
                        "group_by": ["alertname", "target", "owner"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                        "routes": [
                            {"matchers": ['owner="team-payments"'], "receiver": "payments"},
                            {"matchers": ['owner="team-search"'], "receiver": "search"},
                        ],
                    },
                    "receivers": [
                        {"name": n, "webhook_configs": [hook(n)]} for n in ("default", "payments", "search")
                    ],
                }
            )
        )
        port = free_port()
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={config}",
                    f"--storage.path={Path(tmp) / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
                cwd=tmp,
            )
            try:
                ready = wait_ready(proc, f"http://127.0.0.1:{port}", log, "alertmanager")
                assert ready, f"alertmanager: port {port} was taken"
                yield f"127.0.0.1:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.mark.skipif(
    shutil.which(PROMETHEUS) is None and shutil.which("apt-get") is None,
    reason="prometheus missing (Debian package prometheus; scripts/system-deps.sh installs it as root)",
)
@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain to build the service")
def test_alertmanager_routes_each_leak_to_its_owner(tmp_path: Path) -> None:
    """tests/goapps/owned leaks in code of two teams: payments blocks in the standard library's
    sync.WaitGroup, search inside a vendored SDK (an `unowned` prefix). grprof names each leak's
    owner by walking past those frames to the team's package; Prometheus fires GoroutineLeak
    with that `owner` label and a real Alertmanager routes each alert to its team's receiver,
    never the other team's."""
    if ensure_prometheus() is None:
        pytest.skip("prometheus missing and cannot be installed (not root or no apt-get)")
    rules = tmp_path / "rules.yml"
    assert main(["rules", "-o", str(rules), "--for", "5s", "--ui-url", "http://grprof.test:8080"]) == 0
    binary = build_goapp("owned", env={"GOEXPERIMENT": "goroutineleakprofile"})
    receivers = _Receivers()
    try:
        with (
            run_goapp(binary) as (_, owned),
            _alertmanager(receivers.url) as am,
        ):
            (tmp_path / "grprof.yaml").write_text(
                "version: 1\n"
                "scrape: {interval: 1s, timeout: 1s, leak_profile_every: 2}\n"
                f"targets:\n  - {{name: owned, url: '{owned}'}}\n"
                "owners:\n"
                "  prefixes:\n"
                "    grprof.test/owned/payments: team-payments\n"
                "    grprof.test/owned/search: team-search\n"
                "  unowned: [grprof.test/owned/third_party]\n"
            )
            port = free_port()
            args = ["--config", str(tmp_path / "grprof.yaml"), "--db", str(tmp_path / "g.db")]
            with run_serve(args, port=port) as srv, _prometheus(f"127.0.0.1:{port}", rules, am):
                start = time.monotonic()
                while time.monotonic() - start < ROUTED_WITHIN:
                    if receivers.got.get("payments") and receivers.got.get("search"):
                        break
                    time.sleep(1)
                got = {k: list(v) for k, v in receivers.got.items()}
                assert got.get("payments") and got.get("search"), (
                    f"not routed to both owners within {ROUTED_WITHIN}s: {got}\n"
                    f"--- serve log ---\n{srv.logs()[-3000:]}"
                )
                print(f"both owners' receivers notified after {time.monotonic() - start:.1f}s")
                for receiver, owner, category in (
                    ("payments", "team-payments", "sync"),
                    ("search", "team-search", "channel"),
                ):
                    leaks = [a for a in got[receiver] if a["alertname"] == "GoroutineLeak"]
                    assert leaks, got[receiver]
                    assert {a["owner"] for a in got[receiver]} == {owner}, got[receiver]
                    assert {a["category"] for a in leaks} == {category}, leaks
                assert not any(
                    a.get("owner") in ("team-payments", "team-search") for a in got.get("default", [])
                ), got
                # The API says which frame decided, and filters by owner like the alert's link.
                found = srv.get("/api/v1/findings?target=owned&owner=team-search")["findings"]
                assert found and all(f["owner"] == "team-search" for f in found), found
    finally:
        receivers.close()
