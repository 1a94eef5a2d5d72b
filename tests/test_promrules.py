"""`grprof rules` (docs/alerts.md): the rule file it writes is accepted by `promtool check
rules`, and `promtool test rules` (tests/fixtures/alerts/*.test.yaml) shows each alert firing on
the series it is for and not firing on the others; thresholds, overrides and flag errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grprof.cli import main
from grprof.ops.alerts import (
    RulesError,
    apply_overrides,
    expressions,
    load_spec,
    parse_check_file,
    render,
    rule_groups,
)

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
PROMTOOL = "/usr/bin/promtool"
DOCS = Path(__file__).resolve().parent.parent / "docs"

needs_promtool = pytest.mark.skipif(
    shutil.which(PROMTOOL) is None,
    reason="promtool missing (Debian package prometheus; scripts/system-deps.sh installs it as root)",
)

# Every metric grprof exposes (docs/metrics.md); the rules may use only these and their own records.
METRICS = {
    "grprof_target_up",
    "grprof_target_goroutines",
    "grprof_goroutines_growth_rate",
    "grprof_blocked_goroutines",
    "grprof_leak_suspects",
    "grprof_leaked_goroutines",
    "grprof_group_goroutines",
    "grprof_target_last_success_timestamp_seconds",
    "grprof_target_leak_profile",
    "grprof_scrape_lag_seconds",
    "grprof_scrape_duration_seconds_bucket",
    "grprof_scrape_duration_seconds_sum",
    "grprof_scrape_duration_seconds_count",
    "grprof_scrapes_total",
    "grprof_store_queued_writes",
    "grprof_store_batches_total",
    "grprof_store_writes_total",
    "grprof_build_info",
}


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def _rules(tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "rules.yml"
    assert main(["rules", "-o", str(out), *argv]) == 0
    return out


@needs_promtool
def test_promtool_check_rules_accepts_the_output(tmp_path: Path) -> None:
    out = _rules(tmp_path, "--ui-url", "http://grprof.example:8080/")
    proc = _promtool("check", "rules", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 9 rules found" in proc.stdout


@needs_promtool
@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.test.yaml")), ids=lambda p: p.name)
def test_promtool_unit_tests(fixture: Path, tmp_path: Path) -> None:
    shutil.copy(fixture, tmp_path / fixture.name)
    _rules(tmp_path)
    proc = _promtool("test", "rules", tmp_path / fixture.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@needs_promtool
@pytest.mark.parametrize(
    ("setting", "failing"),
    [
        ("growth_min_goroutines=50", "GoroutineGrowth"),  # the small target would fire too
        ("blocked_classes=channel|io", "GoroutinesBlocked"),  # IO wait would fire
        ("lag_seconds=1", "GrprofScrapeLagging"),  # jitter-sized lag would fire
    ],
)
def test_unit_tests_notice_a_changed_threshold(setting: str, failing: str, tmp_path: Path) -> None:
    """The not-firing cases are real: move a threshold and the fixture's expectations break."""
    shutil.copy(FIXTURES / "grprof.test.yaml", tmp_path / "grprof.test.yaml")
    _rules(tmp_path, "--set", setting)
    proc = _promtool("test", "rules", tmp_path / "grprof.test.yaml")
    assert proc.returncode != 0
    assert f"alertname: {failing}" in proc.stdout + proc.stderr


def test_every_alert_has_for_severity_annotations_and_runbook() -> None:
    groups = rule_groups(load_spec(), ui_url="http://grprof:8080")
    alerts = [r for g in groups["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "GoroutineLeak",
        "GoroutineLeakSuspect",
        "GoroutineGrowth",
        "GoroutinesBlocked",
        "GrprofTargetDown",
        "GrprofStoreWritesFailing",
        "GrprofScrapeLagging",
    }
    for a in alerts:
        assert re.fullmatch(r"\d+[smh]", a["for"]), a
        assert a["labels"]["severity"] in {"critical", "warning", "info"}
        assert set(a["annotations"]) == {"summary", "description", "runbook_url"}
        assert a["annotations"]["runbook_url"].startswith("http://grprof:8080/api/v1/"), a
        assert "${" not in a["expr"] + "".join(a["annotations"].values())
    growth = next(a for a in alerts if a["alert"] == "GoroutineGrowth")
    assert "target:grprof_goroutines_growth_rate:avg" in growth["expr"]  # the recording rule


def test_rules_use_only_real_metrics() -> None:
    groups = rule_groups(load_spec(), ui_url="http://grprof:8080")
    records = {r["record"] for g in groups["groups"] for r in g["rules"] if "record" in r}
    for name, expr in expressions(groups):
        text = re.sub(r'"[^"]*"', '""', expr)  # label values are not metric names
        used = set(re.findall(r"\b(grprof_[a-z_]+|target:[a-z_:]+)", text))
        assert used, name
        assert used <= METRICS | records, (name, used - METRICS - records)


def test_label_names_match_the_exposition() -> None:
    """verdict/category/class/target are the labels server/metrics.py exposes."""
    text = Path(__file__).resolve().parent.parent.joinpath("src/grprof/server/metrics.py").read_text()
    for label in ("verdict", "category", "class", "target"):
        assert f'"{label}"' in text
    rules = render(load_spec(), ui_url="http://x:1")
    for label in ("verdict", "category", "class", "target"):
        assert f"$labels.{label}" in rules or f"{label}=" in rules


def test_set_and_for_flags(tmp_path: Path) -> None:
    out = _rules(tmp_path, "--set", "growth_per_minute=2.5", "--set", "lag_seconds=3", "--for", "5s")
    data = yaml.safe_load(out.read_text())
    rules = {r.get("alert") or r["record"]: r for g in data["groups"] for r in g["rules"]}
    assert "> 2.5 and" in rules["GoroutineGrowth"]["expr"]
    assert rules["GrprofScrapeLagging"]["expr"] == "grprof_scrape_lag_seconds > 3"
    assert {r["for"] for r in rules.values() if "alert" in r} == {"5s"}


def test_overrides_file(tmp_path: Path) -> None:
    ov = tmp_path / "team.yaml"
    ov.write_text(
        "thresholds:\n  growth_window: 30m\n"
        "alerts:\n  GoroutineLeak: {for: 1h, severity: critical}\n  GrprofScrapeLagging: {enabled: false}\n"
        "labels:\n  team: payments\n"
    )
    out = _rules(tmp_path, "--overrides", str(ov))
    data = yaml.safe_load(out.read_text())
    rules = {r.get("alert") or r["record"]: r for g in data["groups"] for r in g["rules"]}
    assert "GrprofScrapeLagging" not in rules
    assert rules["GoroutineLeak"]["for"] == "1h"
    assert rules["GoroutineLeak"]["labels"] == {"team": "payments", "severity": "critical"}
    assert rules["target:grprof_goroutines_growth_rate:avg"]["expr"].endswith("[30m])")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--set", "growth_per_minute=fast"],
            "grprof: --set: thresholds.growth_per_minute: not a number: 'fast'",
        ),
        (["--set", "growth_per_minut=3"], 'unknown threshold (did you mean "growth_per_minute"?)'),
        (["--set", "nothing"], "want NAME=VALUE"),
        (["--set", 'blocked_classes=a"b'], "without quotes"),
        (["--set", "growth_window=1.5m"], "not a Prometheus duration"),
        (["--for", "1.5s"], "grprof: --for: not a Prometheus duration: '1.5s'"),
        (["--ui-url", "grprof:8080"], "grprof: --ui-url: want an http(s) base URL"),
        (["--overrides", "/nonexistent/x.yaml"], "cannot read override file"),
        (["-o", "/nonexistent/dir/rules.yml"], "cannot write"),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_overrides_file_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ov = tmp_path / "o.yaml"
    ov.write_text("alerts:\n  GoroutineLeak:\n    fro: 1h\n")
    assert main(["rules", "--overrides", str(ov)]) == 2
    err = capsys.readouterr().err
    assert f"{ov}:3: alerts.GoroutineLeak.fro: unknown key" in err
    ov.write_text("alerts:\n  GoroutineLeek: {for: 1h}\n")
    assert main(["rules", "--overrides", str(ov)]) == 2
    assert 'unknown alert (did you mean "GoroutineLeak"?)' in capsys.readouterr().err


def test_bad_data_file_is_refused() -> None:
    text = (Path(__file__).resolve().parent.parent / "src/grprof/data/alerts.yaml").read_text()
    with pytest.raises(RulesError, match=r"unknown threshold \$\{nope\}"):
        load_spec(text.replace("${lag_seconds}", "${nope}", 1))
    with pytest.raises(RulesError, match="not a Prometheus duration"):
        load_spec(text.replace("for: 15m", "for: soon", 1))
    with pytest.raises(RulesError, match="unknown threshold"):
        apply_overrides(load_spec(), {"thresholds": {"x": 1}})


def test_stdout_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["groups"]
    assert main(["rules", "--list", "--set", "lag_seconds=9"]) == 0
    out = capsys.readouterr().out
    assert "lag_seconds = 9" in out and "alert GoroutineLeak: for 15m" in out


@needs_promtool
def test_every_expression_parses(tmp_path: Path) -> None:
    """Each expression alone, as a recording rule: Prometheus' parser accepts it."""
    exprs = expressions(rule_groups(load_spec(), ui_url="http://x:1"))
    f = tmp_path / "check.yml"
    f.write_text(parse_check_file(exprs))
    proc = _promtool("check", "rules", f)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and a broken one is caught the same way (the check is not vacuous)
    f.write_text(parse_check_file([("bad", "sum by (target (grprof_target_up)")]))
    assert _promtool("check", "rules", f).returncode != 0


def test_docs_list_every_alert_and_threshold() -> None:
    doc = (DOCS / "alerts.md").read_text()
    spec = load_spec()
    for a in spec.alerts:
        assert a.alert in doc
    for name in spec.thresholds:
        assert f"`{name}`" in doc


def test_cli_subprocess_exit_status() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "rules", "--for", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("grprof: --for:")


@needs_promtool
def test_match_restricts_every_selector(tmp_path: Path) -> None:
    out = _rules(tmp_path, "--match", 'team="payments", env!~"dev|test"', "--group", "grprof-payments")
    data = yaml.safe_load(out.read_text())
    assert [g["name"] for g in data["groups"]] == ["grprof-payments.recording", "grprof-payments.alerts"]
    for name, expr in expressions(data):
        selectors = re.findall(r"(?:target:)?grprof_[a-z_:]+(\{[^}]*\})?", expr)
        assert selectors, name
        for sel in selectors:
            assert 'team="payments", env!~"dev|test"' in sel, (name, expr)
    assert _promtool("check", "rules", out).returncode == 0
    # the same rules, one file per group of targets, on series of both groups: each fires once
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'grprof_target_up{target="a", team="payments"}', "values": "0x30"},
                    {"series": 'grprof_target_up{target="b", team="search"}', "values": "0x30"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "GrprofTargetDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "target": "a", "team": "payments"},
                                "exp_annotations": {
                                    "summary": "grprof cannot scrape a",
                                    "description": "grprof's goroutine scrapes of a fail: "
                                    "no leak detection for it.",
                                    "runbook_url": "http://127.0.0.1:8080/api/v1/targets",
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    _rules(tmp_path, "--match", 'team="payments"')
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(test))
    proc = _promtool("test", "rules", tmp_path / "t.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--match", "team=payments"], "grprof: --match: want PromQL label matchers"),
        (["--match", 'team="a"}'], "grprof: --match: want PromQL label matchers"),
        (["--group", "a b"], "grprof: --group: want letters"),
    ],
)
def test_match_and_group_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", *argv]) == 2
    assert message in capsys.readouterr().err
