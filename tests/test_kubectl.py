"""`kubectl logs` output, printed by the real kubectl, read back as the dump it holds.

kubectl is on the machine but no cluster is: a small stand-in for the API server on loopback
answers the discovery, pod and log requests kubectl makes (`/api`, `/apis`, `/api/v1`, the pod,
its `log`). The log body is a recorded dump; with `timestamps=true` the stand-in puts an
RFC 3339 timestamp before each line as the kubelet does. What kubectl itself adds, the
`[pod/NAME/CONTAINER] ` prefix of `--prefix`, is kubectl's own code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

import grprof

DUMP = Path(__file__).parent / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl")

_DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        ],
    },
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0"},
}
_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "example/app"}]},
    "status": {"phase": "Running"},
}


def _kubelet_log(body: bytes, timestamps: bool) -> bytes:
    if not timestamps:
        return body
    t0 = dt.datetime(2026, 12, 3, 7, 0, 0, tzinfo=dt.UTC)
    out = []
    for i, line in enumerate(body.splitlines(keepends=True)):
        stamp = (t0 + dt.timedelta(microseconds=37 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(stamp.encode() + b" " + line)
    return b"".join(out)


@contextlib.contextmanager
def apiserver(log: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/api/v1/namespaces/default/pods/web-1/log":
                self._send(_kubelet_log(log, query.get("timestamps") == ["true"]), "text/plain")
            elif url.path == "/api/v1/namespaces/default/pods/web-1":
                self._send(json.dumps(_POD).encode(), "application/json")
            elif url.path in _DISCOVERY:
                self._send(json.dumps(_DISCOVERY[url.path]).encode(), "application/json")
            else:
                self._send(
                    b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}',
                    "application/json",
                    404,
                )

        def _send(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def kubectl_logs(tmp_path: Path, *flags: str) -> bytes:
    with apiserver(DUMP.read_bytes()) as url:
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f'clusters: [{{name: c, cluster: {{server: "{url}"}}}}]\n'
            "contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\n"
            "current-context: c\nusers: [{name: u, user: {token: t}}]\n"
        )
        p = subprocess.run(
            ["kubectl", "--kubeconfig", str(config), "logs", "web-1", *flags],
            capture_output=True,
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


@pytest.mark.parametrize("flags", [["--prefix"], ["--prefix", "--timestamps"], ["--timestamps"]])
def test_kubectl_logs_read_as_the_dump(tmp_path: Path, flags: list[str]) -> None:
    out = kubectl_logs(tmp_path, *flags)
    if "--prefix" in flags:
        assert out.startswith(b"[pod/web-1/app] "), out[:80]
    (snap,) = grprof.load_all(out, name="kubectl.log")
    clean = grprof.load(DUMP)
    assert (snap.format, snap.total) == (clean.format, clean.total)
    assert [(g.count, g.state, g.site) for g in snap.groups()] == [
        (g.count, g.state, g.site) for g in clean.groups()
    ]
    assert snap.notes and "kubectl.log" in snap.notes[0], snap.notes
    if "--prefix" in flags:
        assert snap.origin is not None and (snap.origin.pod, snap.origin.container) == ("web-1", "app")


def test_kubectl_logs_through_the_cli(tmp_path: Path) -> None:
    """`kubectl logs POD --prefix --timestamps | grprof analyze -`, as a user types it."""
    out = kubectl_logs(tmp_path, "--prefix", "--timestamps")
    p = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", "-", "--json"],
        input=out,
        capture_output=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr.decode()
    (snap,) = json.loads(p.stdout)["snapshots"]
    assert snap["total"] == grprof.load(DUMP).total
    assert p.stderr.startswith(b"grprof: warning: <stdin>: ") and b"kubectl" in p.stderr, p.stderr
