"""Federation for real: `grprof serve` members on loopback, each scraping its own Go service,
and one global `grprof serve` that pulls them through their API (docs/serve.md#federation).

Members kill -9'd and restarted, a wrong token, a member that never answers, members behind
TLS with a private CA and client certificates: all real processes and sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from misbehaving import fake_targets, make_tls
from prometheus_client.parser import text_string_to_metric_families
from serveproc import Serve, free_port, run_serve
from test_serve import leaky

INTERVAL = 1.0
CLUSTERS = ("eu-1", "eu-2", "us-1")
SITE = "main.leakyHandler.func1"


def fed_config(
    path: Path, members: list[dict[str, Any]], interval: float = INTERVAL, version: int = 1
) -> Path:
    lines = [
        f"version: {version}",
        "federate:",
        f"  interval: {interval:g}s",
        f"  timeout: {interval:g}s",
        "  members:",
    ]
    for m in members:
        lines.append(f"    - name: {m['name']}")
        for k, v in m.items():
            if k == "tls":
                lines.append("      tls:")
                lines += [f"        {tk}: {tv}" for tk, tv in v.items()]
            elif k != "name":
                lines.append(f"      {k}: {v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def federation(srv: Serve) -> dict[str, dict[str, Any]]:
    return {m["cluster"]: m for m in srv.get("/api/v1/federation")["members"]}


def open_findings(srv: Serve, token: str | None = None, query: str = "") -> list[dict[str, Any]]:
    r = srv.get("/api/v1/findings" + query, token=token)
    assert r["schema"] == "grprof.findings/v1"
    return [f for f in r["findings"] if f["lifecycle"] != "resolved"]


def samples(srv: Serve) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(srv.get("/metrics")):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def member_args(app: str, name: str, tmp_path: Path, token: Path) -> list[str]:
    db = tmp_path / f"{name}.db"
    return ["--target", app, "--interval", f"{INTERVAL:g}s", "--db", str(db), "--api-token-file", str(token)]


@pytest.mark.slow
def test_a_global_view_over_three_members(tmp_path: Path) -> None:
    token, wrong = tmp_path / "token", tmp_path / "wrong"
    token.write_text("member-secret\n")
    wrong.write_text("a-guess\n")
    with contextlib.ExitStack() as stack:
        ft = stack.enter_context(fake_targets())
        apps = {c: stack.enter_context(leaky(rate=10)) for c in CLUSTERS}
        ports = {c: free_port() for c in CLUSTERS}
        members = {
            c: stack.enter_context(run_serve(member_args(apps[c], c, tmp_path, token), port=ports[c]))
            for c in CLUSTERS
        }
        urls = {c: f"http://127.0.0.1:{ports[c]}" for c in CLUSTERS}
        cfg = fed_config(
            tmp_path / "global.yaml",
            [
                *({"name": c, "url": urls[c], "token_file": str(token)} for c in CLUSTERS),
                {"name": "eu-1-wrong-token", "url": urls["eu-1"], "token_file": str(wrong)},
                {"name": "silent", "url": ft.silent_url},  # accepts, never answers
            ],
        )
        glob = stack.enter_context(run_serve(["--config", str(cfg), "--db", str(tmp_path / "global.db")]))
        assert "federating 5 members" in glob.logs()

        # The global view lists every member's open findings, each with its cluster: the same
        # ids the member itself lists.
        def same_findings() -> bool:
            for c in CLUSTERS:
                mine = {f["id"] for f in open_findings(members[c], token="member-secret")}
                there = [f for f in open_findings(glob) if f["cluster"] == c]
                if not mine or {f["id"] for f in there} != mine:
                    return False
                if not any(f["verdict"] == "leak" and f["site"]["function"] == SITE for f in there):
                    return False
            return True

        glob.wait_for(same_findings, timeout=120, every=1.0)
        by_cluster = {c: open_findings(glob, query=f"?cluster={c}") for c in CLUSTERS}
        assert all(f["cluster"] == c for c, fs in by_cluster.items() for f in fs)
        assert all(f["target"] == apps[c].split("://")[1] for c, fs in by_cluster.items() for f in fs)
        targets = glob.get("/api/v1/targets")["targets"]
        assert sorted((t["cluster"], t["name"]) for t in targets) == sorted(
            (c, apps[c].split("://")[1]) for c in CLUSTERS
        )
        assert all(t["up"] and not t["local"] for t in targets)
        # The UI's fleet page lists them too, each with its cluster, linked to its member's UI.
        fleet = glob.get("/")
        for c in CLUSTERS:
            assert f"cluster {c}" in fleet and apps[c].split("://")[1] in fleet, fleet[-3000:]
            assert f'href="{urls[c]}/targets/' in fleet, fleet[-3000:]

        # Member states: the slow one and the wrong token delay nobody.
        glob.wait_for(lambda: all(m["last_attempt"] for m in federation(glob).values()), every=0.2)
        fed = federation(glob)
        for c in CLUSTERS:
            assert fed[c]["state"] == "fresh" and fed[c]["age_seconds"] <= 2 * INTERVAL, fed[c]
        wrong_token = fed["eu-1-wrong-token"]
        assert wrong_token["state"] == "auth-failed", wrong_token
        assert wrong_token["last_error"] == "member eu-1-wrong-token: the token was refused (401)"
        assert fed["silent"]["state"] == "down", fed["silent"]
        assert fed["silent"]["last_error"] == "member silent: no complete answer within 1s"
        assert "member eu-1-wrong-token: the token was refused (401)" in glob.logs()

        m = samples(glob)
        up = {s.labels["cluster"]: s.value for s in m["grprof_federation_member_up"]}
        assert up == {"eu-1": 1, "eu-2": 1, "us-1": 1, "eu-1-wrong-token": 0, "silent": 0}
        ages = {s.labels["cluster"] for s in m["grprof_federation_member_age_seconds"]}
        assert ages == set(CLUSTERS)  # never answered: no age
        target_up = {(s.labels["cluster"], s.labels["target"]): s.value for s in m["grprof_target_up"]}
        assert target_up == {(c, apps[c].split("://")[1]): 1.0 for c in CLUSTERS}
        leaks = {s.labels["cluster"] for s in m["grprof_leak_suspects"] if s.labels["verdict"] == "leak"}
        assert leaks == set(CLUSTERS)

        # kill -9 one member: stale within two intervals, its last-known data still served;
        # the others stay fresh.
        gone = "us-1"
        before = {f["id"] for f in open_findings(glob, query=f"?cluster={gone}")}
        members[gone].process.send_signal(signal.SIGKILL)
        members[gone].process.wait()
        killed = time.monotonic()
        glob.wait_for(lambda: federation(glob)[gone]["state"] == "stale", timeout=10, every=0.1)
        took = time.monotonic() - killed
        assert took <= 2 * INTERVAL + 0.5, took  # 0.5 s: the polls of this test and the API
        fed = federation(glob)
        assert fed[gone]["age_seconds"] > 2 * INTERVAL and "unreachable" in fed[gone]["last_error"]
        assert all(fed[c]["state"] == "fresh" for c in CLUSTERS if c != gone), fed
        assert {f["id"] for f in open_findings(glob, query=f"?cluster={gone}")} == before
        time.sleep(2 * INTERVAL)
        assert all(federation(glob)[c]["state"] == "fresh" for c in CLUSTERS if c != gone)

        # Restarted (same port, same database): fresh again.
        stack.enter_context(run_serve(member_args(apps[gone], gone, tmp_path, token), port=ports[gone]))
        glob.wait_for(lambda: federation(glob)[gone]["state"] == "fresh", timeout=30, every=0.2)
        assert federation(glob)[gone]["last_error"] is None
        assert open_findings(glob, query=f"?cluster={gone}")


# -- TLS -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tls_proxy(upstream_port: int, context: ssl.SSLContext) -> Iterator[int]:
    """A TLS front for a plain-HTTP `grprof serve` (as a real deployment puts one: an ingress,
    a sidecar): accepts TLS on a free loopback port and pipes the bytes to `upstream_port`."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port = free_port()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def main(stop: asyncio.Event) -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
        ready.set()
        await stop.wait()
        server.close()

    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(main(stop)), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


def test_members_behind_tls_with_a_private_ca_and_client_certificates(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    port = free_port()
    with (
        run_serve(["--db", str(tmp_path / "m.db")], port=port) as member,
        tls_proxy(port, tls.server_context(require_client_cert=True)) as tls_port,
    ):
        url = f"https://127.0.0.1:{tls_port}"
        client = {"cert_file": tls.client_cert, "key_file": tls.client_key}
        cfg = fed_config(
            tmp_path / "global.yaml",
            [
                {"name": "ca", "url": url, "tls": {"ca_file": tls.ca_cert, **client}},
                {"name": "insecure", "url": url, "tls": {"insecure_skip_verify": "true", **client}},
                {"name": "no-ca", "url": url, "tls": client},
                {"name": "no-client-cert", "url": url, "tls": {"ca_file": tls.ca_cert}},
            ],
        )
        with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as glob:
            fed = glob.wait_for(
                lambda: (f := federation(glob)) and all(m["last_attempt"] for m in f.values()) and f
            )
            time.sleep(2 * INTERVAL)  # a second pull each: the states have settled
            fed = federation(glob)
            assert fed["ca"]["state"] == "fresh", fed["ca"]
            assert fed["ca"]["version"] == member.get("/healthz")["version"]
            assert fed["insecure"]["state"] == "fresh", fed["insecure"]
            assert fed["no-ca"]["state"] == "down"
            assert "certificate verify failed" in fed["no-ca"]["last_error"], fed["no-ca"]
            assert fed["no-client-cert"]["state"] == "down", fed["no-client-cert"]
            assert fed["no-client-cert"]["last_error"].startswith("member no-client-cert: GET ")

            # A reload applies a changed member list at once (SIGHUP; a file change does too).
            first = fed["ca"]["last_success"]
            fed_config(
                cfg,
                [
                    {"name": "ca", "url": url, "tls": {"ca_file": tls.ca_cert, **client}},
                    {"name": "added", "url": url, "tls": {"ca_file": tls.ca_cert, **client}},
                ],
                version=2,
            )
            glob.process.send_signal(signal.SIGHUP)
            glob.wait_for(lambda: list(federation(glob)) == ["ca", "added"], every=0.2)
            after = federation(glob)
            assert after["ca"]["state"] == "fresh" and after["ca"]["last_success"] is not None
            assert after["ca"]["last_success"] >= first
            glob.wait_for(lambda: federation(glob)["added"]["state"] == "fresh", every=0.2)


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml", "error"),
    [
        (
            "federate:\n  interval: 2s\n  timeout: 3s\n  members:\n    - {name: a, url: 'http://x:1'}\n",
            "3: federate.timeout: timeout (3s) must not exceed interval (2s)",
        ),
        (
            "federate:\n  members:\n    - {name: a, url: 'http://x:1'}\n    - {name: a, url: 'http://y:1'}\n",
            "4: federate.members.1.name: two members are named 'a'",
        ),
        (
            "federate:\n  members:\n    - name: a\n      url: http://x:1\n      tokn_file: t\n",
            '5: federate.members.0.tokn_file: unknown key (did you mean "token_file"?)',
        ),
        (
            "federate:\n  members:\n    - {name: a, url: 'ftp://x'}\n",
            "3: federate.members.0.url: 'ftp://x' is not an http:// or https:// URL of a grprof API",
        ),
        (
            "federate:\n  members:\n    - name: a\n      url: http://x:1\n      tls: {key_file: k}\n",
            "5: federate.members.0.tls.key_file: a TLS key file needs a cert file (cert_file)",
        ),
        ("federate:\n  members: []\n", "2: federate.members: list at least one member ({name, url})"),
    ],
)
def test_a_bad_federate_section_is_one_line_and_exit_2(tmp_path: Path, yaml: str, error: str) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml)
    r = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "serve", "--config", str(cfg), "--db", str(tmp_path / "g.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"grprof: {cfg}:{error}\n"


# -- decoding a member's answers -------------------------------------------------------------


def test_a_members_answers_are_tagged_checked_and_named_when_wrong() -> None:
    from grprof.serving.federation import MemberError, decode_findings, decode_targets

    target = {
        "name": "api", "url": "http://10.0.0.7:6060", "labels": {"team": "core"}, "shard": None,
        "up": True, "last_scrape": None, "last_success": None, "last_error": "", "goroutines": 12,
        "open_findings": 0, "removed": False, "local": True, "growth_per_minute": None,
        "leak_profile": None, "blocked": None, "cluster": None,
        "added_by_a_newer_member": 1,
    }  # fmt: skip
    nested = {**target, "name": "db", "cluster": "x"}
    body = json.dumps({"targets": [target, nested]}).encode()
    got = decode_targets("eu-1", body)
    assert [(t["name"], t["cluster"], t["local"]) for t in got] == [
        ("api", "eu-1", False),
        ("db", "eu-1/x", False),
    ]
    assert "added_by_a_newer_member" not in got[0]
    bad = json.dumps({"targets": [{**target, "up": "maybe"}]}).encode()
    with pytest.raises(
        MemberError, match=r"^member eu-1: GET /api/v1/targets: targets\.0\.up: Input should be"
    ):
        decode_targets("eu-1", bad)
    with pytest.raises(MemberError, match=r"^member eu-1: GET /api/v1/targets: the answer is not JSON"):
        decode_targets("eu-1", b"<html>")
    wrong = json.dumps({"schema": "grprof.findings/v1", "findings": [{"id": "x"}]}).encode()
    with pytest.raises(
        MemberError, match=r"^member eu-1: GET /api/v1/findings: findings\.0\.verdict: missing$"
    ):
        decode_findings("eu-1", wrong)
    with pytest.raises(MemberError, match=r"not a grprof\.findings/v1 answer"):
        decode_findings("eu-1", b'{"schema": "grprof.report/v1", "findings": []}')


def test_a_federated_targets_own_cluster_label_does_not_hide_the_member() -> None:
    from grprof.server.metrics import federated_labels

    t: Any = {
        "name": "api",
        "cluster": "eu-1",
        "labels": {"cluster": "k8s-prod", "team": "core", "__meta_x": "y"},
    }
    assert federated_labels(t) == {
        "cluster": "eu-1",
        "target": "api",
        "exported_cluster": "k8s-prod",
        "team": "core",
    }
