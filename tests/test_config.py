"""The serve configuration: defaults, the example file, and errors that name the key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grprof.config import Config, ConfigError, load_config, parse_config

ROOT = Path(__file__).parent.parent


def test_defaults() -> None:
    c = Config()
    assert (c.listen, c.db, c.scrape.interval, c.scrape.format) == (
        "127.0.0.1:8080",
        "./grprof.db",
        15.0,
        "debug=1",
    )
    assert c.scrape.leak_profile_every == 4 and c.scrape.debug2_max_goroutines == 10_000
    assert c.scrape.debug2_every == 4 and c.scrape.debug2_extra_gap == 30.0


def test_capture_policy_keys_reach_the_scraper() -> None:
    from grprof.serve import scrape_settings

    c = parse_config(
        "scrape:\n  format: debug=2\n  debug2_every: 0\n  debug2_max_goroutines: 500\n"
        "  debug2_extra_gap: 1m\n"
    )
    s = scrape_settings(c)
    assert (s.format, s.debug2_every, s.debug2_max_goroutines, s.debug2_extra_gap) == (
        "debug=2",
        0,
        500,
        60.0,
    )
    policy = s.capture()
    assert (policy.format, policy.debug2_every, policy.debug2_max_goroutines, policy.extra_gap) == (
        "debug=2",
        0,
        500,
        60.0,
    )
    assert scrape_settings(Config()).capture().debug2_every == 4


def test_example_file_is_valid() -> None:
    c = load_config(ROOT / "examples" / "grprof.yaml")
    assert [t.name for t in c.static_targets()] == ["checkout", "search"]
    assert (sla := c.sla_for("checkout")) is not None and sla.p95 == 0.15
    assert (d := c.sla_for("nope")) is not None and d.query and d.latency == 0.3
    assert c.static_targets()[1].auth.ca_file == "/etc/grprof/ca.pem"
    assert c.retention.max_age == 14 * 86400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scrape:\n  interval: fast\n", "g.yaml:2: scrape.interval: not a duration: 'fast'"),
        ("scrape:\n  intervl: 3s\n", "g.yaml:2: scrape.intervl: unknown key"),
        (
            "targets:\n  - name: a\n    url: ftp://x\n",
            "g.yaml:3: targets.0.url: must start with http:// or https://",
        ),
        (
            "targets:\n - {name: a, url: 'http://a'}\n - {name: a, url: 'http://b'}\n",
            "two targets are named 'a'",
        ),
        (
            "scrape:\n  interval: 5s\n  timeout: 10s\n",
            "g.yaml:2: scrape: timeout (10s) must not exceed interval (5s)",
        ),
        ("listen: 8080\n", "g.yaml:1: listen: must be HOST:PORT"),
        ("version: [\n", "g.yaml:2: not valid YAML"),
        ("sla:\n  api: {latency: 200ms}\n", "g.yaml:2: sla.api.p95: missing"),
        (
            "sla:\n  api: {latency: 200ms, p95: 1s, points: [[1, 2], [0.5, 3]]}\n",
            "g.yaml:2: sla.api.points: ",
        ),
        ("- 1\n- 2\n", "must be a mapping"),
        (
            "scrape:\n  format: debug=3\n",
            "g.yaml:2: scrape.format: Input should be 'debug=1', 'debug=0' or 'debug=2'",
        ),
        (
            "scrape:\n  debug2_every: -1\n",
            "g.yaml:2: scrape.debug2_every: Input should be greater than or equal to 0",
        ),
        ("scrape:\n  debug2_extra_gap: soon\n", "g.yaml:2: scrape.debug2_extra_gap: not a duration: 'soon'"),
        # The scraper's own limit (backoff_max >= interval), refused at load time.
        (
            "scrape:\n  interval: 10m\n",
            "g.yaml:2: scrape.interval: interval (600s) must not exceed backoff_max (300s)",
        ),
        (
            "scrape:\n  interval: 1m\n  backoff_max: 30s\n",
            "g.yaml:3: scrape.backoff_max: interval (60s) must not exceed backoff_max (30s)",
        ),
    ],
)
def test_errors_name_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "g.yaml")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_every_accepted_scrape_section_is_accepted_by_the_scraper() -> None:
    """Config and the scraper agree: what Config takes, ScrapeSettings takes."""
    from grprof.serve import scrape_settings

    for text in ("scrape:\n  interval: 5m\n", "scrape:\n  interval: 10m\n  backoff_max: 10m\n"):
        scrape_settings(parse_config(text))


def test_serve_refuses_a_bad_config_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("version: 1\nscrape:\n  concurrency: 0\n")
    p = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert (
        p.stderr.strip() == f"grprof: {cfg}:3: scrape.concurrency: Input should be greater than or equal to 1"
    )
