"""`grprof dashboard` (docs/dashboard.md): the Grafana JSON has the rows, panels and variables
the docs promise, every query filters on the variables, and every PromQL expression (panels,
variables, and the alert rules) parses with Prometheus' own parser (`promtool check rules` on
a rule file wrapping each one as a recording rule)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk not installed")

from grprof.cli import main
from grprof.ops.alerts import expressions, load_spec, parse_check_file, rule_groups
from grprof.ops.dashboard import dashboard_json, panels, promql_for_check, queries

PROMTOOL = "/usr/bin/promtool"
DOCS = Path(__file__).resolve().parent.parent / "docs"
needs_promtool = pytest.mark.skipif(
    shutil.which(PROMTOOL) is None,
    reason="promtool missing (Debian package prometheus; scripts/system-deps.sh installs it as root)",
)

ROWS = ["Fleet overview", "Per target", "Growth", "Blocked goroutines by wait class", "Scrape health"]
PANELS = {
    "Targets leaking": "stat",
    "Leaked goroutines": "stat",
    "Suspects": "stat",
    "Targets down": "stat",
    "Leaked goroutines by category": "bargauge",
    "Findings by target": "table",
    "Goroutines per target": "timeseries",
    "Findings per target": "timeseries",
    "Largest goroutine groups": "table",
    "Growth (goroutines per minute)": "timeseries",
    "Goroutines by wait class": "timeseries",
    "Targets up": "timeseries",
    "Scrape lag": "timeseries",
    "Scrape duration p95 by kind": "timeseries",
    "Scrape failures by result": "timeseries",
}


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return dashboard_json()


def test_rows_and_panels(board: dict[str, Any]) -> None:
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ROWS
    by_title = {p["title"]: p for p in panels(board)}
    for title, kind in PANELS.items():
        assert by_title[title]["type"] == kind, title
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "grprof-goroutines" and board["schemaVersion"] >= 39
    # grid: every panel inside the 24 columns, none overlapping
    cells: set[tuple[int, int]] = set()
    for p in panels(board):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine


def test_variables(board: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["datasource", "service", "shard", "target"]
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for name in ("service", "shard", "target"):
        v = variables[name]
        assert v["type"] == "query" and v["includeAll"] and v["multi"] and v["allValue"] == ".*"
        assert v["datasource"]["uid"] == "${datasource}"
    assert variables["service"]["query"] == "label_values(grprof_target_up, service)"
    assert variables["shard"]["query"].endswith(", instance)")
    assert variables["target"]["query"].endswith(", target)")


def test_every_panel_query_filters_on_the_variables(board: dict[str, Any]) -> None:
    for where, expr in queries(board):
        if where.startswith("variable"):
            continue
        for selector in re.findall(r"grprof_[a-z_]+\{([^}]*)\}", expr):
            assert 'service=~"$service"' in selector, (where, expr)
            assert 'instance=~"$shard"' in selector, (where, expr)
            assert 'target=~"$target"' in selector, (where, expr)
        assert re.findall(r"grprof_[a-z_]+\{", expr), (where, expr)  # no bare metric


def test_service_label_flag() -> None:
    data = dashboard_json(service_label="team")
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["service"]["query"] == "label_values(grprof_target_up, team)"
    assert all('team=~"$service"' in e for w, e in queries(data) if not w.startswith("variable service"))


def test_thresholds_follow_the_alert_settings() -> None:
    data = dashboard_json(thresholds={"growth_per_minute": 3, "lag_seconds": 2})
    by_title = {p["title"]: p for p in panels(data)}
    growth_steps = by_title["Growth (goroutines per minute)"]["fieldConfig"]["defaults"]["thresholds"][
        "steps"
    ]
    assert growth_steps[-1]["value"] == 3
    lag_steps = by_title["Scrape lag"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert lag_steps[-1]["value"] == 2


def test_cli_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.json"
    assert (
        main(["dashboard", "-o", str(out), "--set", "growth_per_minute=4", "--ui-url", "http://g:8080/"]) == 0
    )
    data = json.loads(out.read_text())
    assert data["links"][0]["url"] == "http://g:8080/api/v1/findings"
    assert main(["dashboard"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "grprof: goroutine leaks"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--service-label", "team.name"], "grprof: --service-label: not a valid Prometheus label name"),
        (["--uid", "a b"], "grprof: --uid:"),
        (["--ui-url", "nope"], "grprof: --ui-url:"),
        (["--set", "growth_per_minute=x"], "grprof: --set: thresholds.growth_per_minute: not a number"),
        (["-o", "/nonexistent/dir/d.json"], "cannot write"),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_promql_for_check() -> None:
    assert promql_for_check('label_values(grprof_target_up{service=~"$service"}, instance)') == (
        'grprof_target_up{service=~".*"}'
    )
    assert promql_for_check("rate(x[$__rate_interval])") == "rate(x[1m])"


@needs_promtool
def test_every_promql_expression_parses(board: dict[str, Any], tmp_path: Path) -> None:
    """Dashboard queries (variables substituted) and the alert rules' expressions."""
    exprs = [(w, promql_for_check(e)) for w, e in queries(board)]
    exprs += [(w, promql_for_check(e)) for w, e in queries(dashboard_json(service_label="team"))]
    exprs += expressions(rule_groups(load_spec(), ui_url="http://x:1"))
    assert len(exprs) > 30
    for _, e in exprs:
        assert "$" not in e
    f = tmp_path / "exprs.yml"
    f.write_text(parse_check_file(exprs))
    proc = subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_docs_name_every_panel_and_variable(board: dict[str, Any]) -> None:
    doc = (DOCS / "dashboard.md").read_text()
    for title in PANELS:
        assert title in doc, title
    for name in ("datasource", "service", "shard", "target"):
        assert f"`{name}`" in doc
    assert "grafana-foundation-sdk" in doc and "grafanalib" in doc
