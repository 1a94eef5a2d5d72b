"""SLA-adaptive threshold factor α: the curve, the config, and p95 from a real Prometheus."""

from __future__ import annotations

import itertools
import math
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from gobuild import run_goapp
from hypothesis import given
from hypothesis import strategies as st
from promserver import PromServer, check_config, ensure_prometheus, run_prometheus, wait_for_series

from grprof.detect.sla import DEFAULT_POINTS, SLA, SLAState, alpha, check_points, evaluate
from grprof.detect.sla_yaml import parse_sla

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sla.md"

# Slopes of the table's end segments: the curve continues along them until the clamps.
LOW_SLOPE = (0.90 - 0.58) / (1.0 - 0.83)
HIGH_SLOPE = (1.12 - 0.90) / (1.25 - 1.0)


# --- the curve -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "want"), [(0.83, 0.58), (1.0, 0.90), (1.25, 1.12)])
def test_alpha_is_exact_at_the_table_points(ratio: float, want: float) -> None:
    assert alpha(ratio) == want


@pytest.mark.parametrize(
    ("ratio", "want"),
    [
        (0.9, 0.58 + (0.9 - 0.83) * LOW_SLOPE),
        (0.915, (0.58 + 0.90) / 2),  # the middle of the first segment
        (1.1, 0.90 + 0.1 * HIGH_SLOPE),
        (1.125, (0.90 + 1.12) / 2),
    ],
)
def test_alpha_interpolates_between_points(ratio: float, want: float) -> None:
    assert alpha(ratio) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    ("ratio", "want"),
    [
        (0.75, 0.58 - 0.08 * LOW_SLOPE),  # 0.4294: below the table, along its first segment
        (0.7, 0.58 - 0.13 * LOW_SLOPE),
        (1.5, 1.12 + 0.25 * HIGH_SLOPE),  # 1.34: above the table, along its last segment
        (1.6, 1.12 + 0.35 * HIGH_SLOPE),
    ],
)
def test_alpha_extrapolates_along_the_end_segments(ratio: float, want: float) -> None:
    assert alpha(ratio) == pytest.approx(want, abs=1e-12)
    assert 0.3 < alpha(ratio) < 1.5


def test_alpha_is_clamped_to_0_3_and_1_5() -> None:
    low_knee = 0.83 - (0.58 - 0.3) / LOW_SLOPE  # 0.68125: where the first segment reaches 0.3
    high_knee = 1.25 + (1.5 - 1.12) / HIGH_SLOPE  # 1.6818…: where the last segment reaches 1.5
    assert alpha(low_knee) == pytest.approx(0.3)
    assert alpha(high_knee) == pytest.approx(1.5)
    for ratio in (0.0, 0.1, 0.5, low_knee - 1e-9):
        assert alpha(ratio) == 0.3
    for ratio in (high_knee + 1e-9, 2.0, 10.0, 1e300):
        assert alpha(ratio) == 1.5


def test_alpha_custom_clamps_and_points() -> None:
    assert alpha(0.1, lo=0.5) == 0.5
    assert alpha(5.0, hi=1.2) == 1.2
    pts = ((0.5, 0.4), (1.0, 1.0), (2.0, 1.0))  # flat above 1: allowed, still monotonic
    assert alpha(0.75, pts) == pytest.approx(0.7)
    assert alpha(1.5, pts) == 1.0
    assert alpha(3.0, pts) == 1.0  # a flat last segment extrapolates flat
    assert alpha(0.0, pts) == pytest.approx(0.3)  # 0.4 - 0.5 * 1.2 = -0.2, clamped


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (((1.0, 0.9),), "at least 2"),
        ((), "at least 2"),
        (((1.0, 0.9), (0.83, 0.58)), "strictly increasing ratio"),
        (((1.0, 0.9), (1.0, 1.0)), "strictly increasing ratio"),
        (((0.83, 0.9), (1.0, 0.58)), "must not decrease"),
        (((0.83, math.nan), (1.0, 0.9)), "finite"),
        (((0.83, 0.58), (math.inf, 0.9)), "finite"),
        (((-1.0, 0.58), (1.0, 0.9)), ">= 0"),
        (((0.83, 0.58, 1.0), (1.0, 0.9)), "pair"),
        ((("a", 0.58), (1.0, 0.9)), "pair"),
        ("ab", "list of"),
    ],
)
def test_invalid_points_are_rejected(points: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        alpha(1.0, points)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        check_points(points)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", [math.nan, math.inf, -math.inf, -0.01])
def test_invalid_ratio_is_rejected(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio must be finite"):
        alpha(ratio)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.5), (1.6, 1.5), (0.3, math.inf)])
def test_invalid_clamps_are_rejected(lo: float, hi: float) -> None:
    with pytest.raises(ValueError, match="lo <= hi"):
        alpha(1.0, lo=lo, hi=hi)


ratios = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@given(ratios, ratios)
def test_alpha_is_monotonic_and_bounded(a: float, b: float) -> None:
    a, b = sorted((a, b))
    assert 0.3 <= alpha(a) <= alpha(b) <= 1.5


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[tuple[float, float], ...]:
    n = draw(st.integers(2, 6))
    # Ratios as people write them (p95/SLA to 3 decimals): subnormal gaps between points are
    # not configurations, and make the interpolation's arithmetic meaningless.
    xs = sorted(draw(st.sets(st.integers(0, 10_000), min_size=n, max_size=n)))
    xs = [x / 1000 for x in xs]
    ys = sorted(draw(st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=n, max_size=n)))
    return tuple(zip(xs, ys, strict=True))


@given(point_sets(), ratios, ratios)
def test_alpha_is_monotonic_for_any_valid_points(
    points: tuple[tuple[float, float], ...], a: float, b: float
) -> None:
    a, b = sorted((a, b))
    assert 0.3 <= alpha(a, points) <= alpha(b, points) <= 1.5
    for x, y in points:
        assert alpha(x, points) == min(1.5, max(0.3, y))  # exact at every point


# --- config and evaluation without a server --------------------------------------------------


def test_parse_sla_static_and_prometheus_forms() -> None:
    assert parse_sla({"latency": "200ms", "p95": "180ms"}) == SLA(latency=0.2, p95=0.18)
    q = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="x"}[5m])))'
    sla = parse_sla({"latency": "1.5s", "prometheus": "http://127.0.0.1:9090", "query": q, "timeout": "3s"})
    assert sla == SLA(latency=1.5, prometheus="http://127.0.0.1:9090", query=q, timeout=3.0)
    # YAML numbers are seconds; points come as lists of lists from YAML.
    sla = parse_sla({"latency": 0.2, "p95": 0.1, "points": [[0.5, 0.5], [2, 1.5]]})
    assert sla.points == ((0.5, 0.5), (2.0, 1.5))
    assert sla.p95 == 0.1


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"p95": "180ms"}, "latency"),
        ({"latency": "fast", "p95": "180ms"}, "latency"),
        ({"latency": True, "p95": "180ms"}, "latency"),
        ({"latency": "-1s", "p95": "180ms"}, "latency"),
        ({"latency": "200ms", "p95": "soon"}, "p95"),
        ({"latency": "200ms"}, "p95"),
        ({"latency": "200ms", "prometheus": "http://127.0.0.1:9090"}, "query"),
        ({"latency": "200ms", "query": "up"}, "prometheus"),
        ({"latency": "200ms", "prometheus": "127.0.0.1:9090", "query": "up"}, "prometheus"),
        ({"latency": "200ms", "prometheus": "http://h:9090/?x=1", "query": "up"}, "prometheus"),
        ({"latency": "200ms", "prometheus": "http://h:99999", "query": "up"}, "prometheus"),
        ({"latency": "200ms", "prometheus": "http://h:9090", "query": " "}, "query"),
        ({"latency": "200ms", "prometheus": "http://h:9090", "query": 7}, "query"),
        ({"latency": "200ms", "p95": "1s", "timeout": "0s"}, "timeout"),
        ({"latency": "200ms", "p95": "1s", "points": [[1, 1]]}, "points"),
        ({"latency": "200ms", "p95": "1s", "points": [[1, 2], [2, 1]]}, "points"),
        ({"latency": "200ms", "p95": "1s", "p99": "2s"}, "p99"),
    ],
)
def test_parse_sla_errors_name_the_key(mapping: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=rf"^{key}: "):
        parse_sla(mapping)


def test_parse_sla_refuses_two_p95_sources() -> None:
    with pytest.raises(ValueError, match="either p95"):
        parse_sla({"latency": "200ms", "p95": "1s", "prometheus": "http://h:9090", "query": "up"})


def test_evaluate_without_sla_keeps_base_thresholds() -> None:
    state = evaluate(None)
    assert state == SLAState(alpha=1.0, ratio=None, p95=None, latency=0.0, source="none")
    assert state.summary() == "α 1.00 (base thresholds: no SLA configured)"
    assert state.to_json()["latency"] is None


def test_evaluate_static_p95() -> None:
    state = evaluate(parse_sla({"latency": "200ms", "p95": "180ms"}))
    assert state.source == "static"
    assert state.ratio == pytest.approx(0.9)
    assert state.alpha == alpha(0.18 / 0.2)
    assert state.summary() == "p95 180ms / SLA 200ms = 0.90 → α 0.71 (static p95)"
    # A service over its SLA: thresholds grow, fewer alarms while it is in trouble anyway.
    slow = evaluate(SLA(latency=2.0, p95=2.5))
    assert slow.alpha == 1.12
    assert slow.summary() == "p95 2.5s / SLA 2s = 1.25 → α 1.12 (static p95)"


def test_unreachable_prometheus_falls_back_with_the_url() -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    state = evaluate(SLA(latency=0.2, prometheus=url, query="up"))
    assert state.alpha == 1.0
    assert state.ratio is None
    assert state.source == f"none: prometheus {url}: Connection refused"
    assert state.summary() == f"α 1.00 (base thresholds: prometheus {url}: Connection refused)"


def test_silent_prometheus_times_out() -> None:
    # A listening socket that never accepts: the kernel completes the connect, nobody answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        start = time.monotonic()
        state = evaluate(SLA(latency=0.2, prometheus=url, query="up", timeout=0.5))
        elapsed = time.monotonic() - start
    assert state.alpha == 1.0
    assert state.source == f"none: prometheus {url}: no answer within 0.5s"
    assert elapsed < 3.0


# --- a real Prometheus scraping a real Go service --------------------------------------------

P95 = (
    "histogram_quantile(0.95, sum by (le) ("
    'rate(http_request_duration_seconds_bucket{{job="latency",handler="{h}"}}[30s])))'
)


class Stack(NamedTuple):
    prom: PromServer
    app_url: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if ensure_prometheus() is None:
        pytest.skip("prometheus not installed and not root: cannot apt-get install prometheus")
    with run_goapp("latency") as app:
        target = app.base_url.removeprefix("http://")
        with run_prometheus({"latency": [target]}) as prom:
            # rate() needs two scrapes of both handlers' series.
            wait_for_series(prom.url, 'rate(http_request_duration_seconds_count{job="latency"}[30s])', want=2)
            yield Stack(prom, app.base_url)


def drive(app_url: str, seconds: float, slow_every: int = 5) -> int:
    """Send /work requests from 8 threads for `seconds`: one in `slow_every` takes 140 ms, the rest 40 ms."""
    counter = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            ms = 140 if i % slow_every == 0 else 40
            with urllib.request.urlopen(f"{app_url}/work?ms={ms}", timeout=10) as r:
                r.read()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return next(counter)


def evaluate_when_ready(sla: SLA, timeout: float = 30.0) -> SLAState:
    deadline = time.monotonic() + timeout
    while True:
        state = evaluate(sla)
        if state.source == "prometheus" or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@pytest.mark.slow
def test_promtool_accepts_the_generated_config(stack: Stack) -> None:
    proc = check_config(stack.prom.config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_p95_from_prometheus_sets_alpha(stack: Stack) -> None:
    sent = drive(stack.app_url, seconds=6.0)
    assert sent > 300
    time.sleep(2.5)  # at least two more scrapes after the last request

    # 80% of requests take ~40 ms, 20% ~140 ms: p95 lies in the (0.125, 0.15] bucket,
    # histogram_quantile interpolates within it; the mean (~60 ms) would be in (0.05, 0.075].
    sla = SLA(latency=0.2, prometheus=stack.prom.url, query=P95.format(h="/work"))
    state = evaluate_when_ready(sla)
    assert state.source == "prometheus", state.source
    assert state.p95 is not None and state.ratio is not None
    assert 0.125 < state.p95 <= 0.15
    assert state.ratio == state.p95 / 0.2
    assert state.alpha == alpha(state.p95 / 0.2)
    assert 0.3 < state.alpha < 0.58  # p95 well inside the SLA: thresholds lowered
    assert re.fullmatch(r"p95 1[34]\dms / SLA 200ms = 0\.7\d → α 0\.\d\d \(Prometheus\)", state.summary())

    # Any query returning one sample works: a scalar, another quantile, another latency target.
    scalar = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query=f"scalar({P95.format(h='/work')})"))
    assert scalar.source == "prometheus"
    assert scalar.p95 is not None and 0.125 < scalar.p95 <= 0.15
    p50 = evaluate(
        SLA(latency=0.05, prometheus=stack.prom.url, query=P95.format(h="/work").replace("0.95", "0.5"))
    )
    assert p50.p95 is not None and 0.025 < p50.p95 <= 0.05


@pytest.mark.slow
def test_no_traffic_gives_nan_and_base_thresholds(stack: Stack) -> None:
    state = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query=P95.format(h="/idle")))
    assert state.alpha == 1.0
    assert state.p95 is None
    assert state.source.startswith(f"none: prometheus {stack.prom.url}: ")
    assert "NaN" in state.source


@pytest.mark.slow
def test_empty_result_gives_base_thresholds(stack: Stack) -> None:
    query = P95.format(h="/work").replace('job="latency"', 'job="no-such-job"')
    state = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query=query))
    assert state.alpha == 1.0
    assert state.source == (
        f"none: prometheus {stack.prom.url}: query returned no series (no data for this selector or window)"
    )


@pytest.mark.slow
def test_several_series_are_refused(stack: Stack) -> None:
    # Forgot to aggregate: one quantile per handler.
    query = 'histogram_quantile(0.95, rate(http_request_duration_seconds_bucket{job="latency"}[30s]))'
    state = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query=query))
    assert state.alpha == 1.0
    assert "query returned 2 series, want one" in state.source


@pytest.mark.slow
def test_promql_syntax_error_reports_prometheus_message(stack: Stack) -> None:
    state = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query="histogram_quantile(0.95,"))
    assert state.alpha == 1.0
    assert state.source.startswith(f"none: prometheus {stack.prom.url}: HTTP 400 bad_data: ")
    assert "parse error" in state.source
    assert "\n" not in state.source


@pytest.mark.slow
def test_range_vector_is_refused(stack: Stack) -> None:
    state = evaluate(SLA(latency=0.2, prometheus=stack.prom.url, query='up{job="latency"}[10s]'))
    assert state.alpha == 1.0
    assert state.source.endswith(
        "query returned a matrix, want an instant vector with one sample or a scalar"
    )


@pytest.mark.slow
def test_url_that_is_not_prometheus(stack: Stack) -> None:
    # The Go service itself: its mux answers 404 for /api/v1/query.
    state = evaluate(SLA(latency=0.2, prometheus=stack.app_url, query="up"))
    assert state.alpha == 1.0
    assert state.source == f"none: prometheus {stack.app_url}: HTTP 404 Not Found"


@pytest.mark.slow
def test_redirect_is_not_followed(stack: Stack) -> None:
    base = stack.app_url + "/moved"
    state = evaluate(SLA(latency=0.2, prometheus=base, query="up"))
    assert state.alpha == 1.0
    assert state.source == (
        f"none: prometheus {base}: HTTP 302 redirect to /metrics not followed (configure the final URL)"
    )


@pytest.mark.slow
def test_answer_that_is_not_json(stack: Stack) -> None:
    base = stack.app_url + "/text"
    state = evaluate(SLA(latency=0.2, prometheus=base, query="up"))
    assert state.alpha == 1.0
    assert state.source == f"none: prometheus {base}: answer is not JSON; is this a Prometheus server?"


# --- the documentation's table is computed by this code --------------------------------------


def test_docs_table_matches_alpha() -> None:
    rows = re.findall(r"^\| (\d\.\d\d) \| (\d\.\d\d) \|", DOCS.read_text(encoding="utf-8"), flags=re.M)
    assert len(rows) >= 10
    for ratio, want in rows:
        assert f"{alpha(float(ratio)):.2f}" == want, ratio
    assert {float(r) for r, _ in rows} >= {r for r, _ in DEFAULT_POINTS}
