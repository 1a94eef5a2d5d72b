"""The SLA-adaptive threshold end to end: a real Prometheus scraping the leak zoo's latency
histogram, and `grprof analyze --sla ... --prometheus ...` scaling its growth thresholds by it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from promserver import run_prometheus
from zoo import Phase, hit, record, start_zoo

from grprof.detect.sla import SLA, alpha, evaluate

QUERY = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[30s])))"


@pytest.mark.slow
def test_sla_from_prometheus_scales_detection(tmp_path: Path) -> None:
    with start_zoo(None) as zoo, run_prometheus({"zoo": [urlsplit(zoo.base).netloc]}) as prom:
        # Traffic with a known shape: the timeout handler answers after ~5 ms.
        deadline = time.monotonic() + 60
        state = evaluate(SLA(latency=0.2, prometheus=prom.url, query=QUERY))
        while state.source != "prometheus" and time.monotonic() < deadline:
            hit(zoo.base, "/leak/chan-send-timeout", 20)
            hit(zoo.base, "/control/pool", 20)
            time.sleep(1)
            state = evaluate(SLA(latency=0.2, prometheus=prom.url, query=QUERY))
        assert state.source == "prometheus", state.summary()
        assert state.p95 is not None and 0 < state.p95 < 0.1
        assert state.alpha == pytest.approx(alpha(state.p95 / 0.2))

        series = record(zoo.base, [Phase(f"p{i}", leaks=3, kinds=("chan-send-timeout",)) for i in range(4)])
        files = []
        for i, body in enumerate(series.bodies["debug=2"]):
            f = tmp_path / f"s{i}.txt"
            f.write_bytes(body)
            files.append(str(f))
        args = [
            "--json",
            "--interval",
            "30s",
            "--sla",
            "200ms",
            "--prometheus",
            prom.url,
            "--p95-query",
            QUERY,
        ]
        p = subprocess.run(
            [sys.executable, "-m", "grprof.cli", "analyze", *args, *files],
            capture_output=True,
            text=True,
            timeout=120,
        )
    r = json.loads(p.stdout)
    sla = r["detection"]["sla"]
    assert sla["source"] == "prometheus"
    assert sla["alpha"] == pytest.approx(alpha(sla["p95_seconds"] / 0.2), abs=1e-3)
    grown = [f for f in r["findings"] if any(e["signal"] == "growth" for e in f["evidence"])]
    assert grown
    for f in grown:
        assert any(e["signal"] == "sla" and "Prometheus" in e["summary"] for e in f["evidence"])


def test_sla_without_prometheus_keeps_base_thresholds() -> None:
    state = evaluate(SLA(latency=0.2, prometheus="http://127.0.0.1:9", query=QUERY, timeout=2))
    assert state.alpha == 1.0 and state.source.startswith("none: prometheus http://127.0.0.1:9")
