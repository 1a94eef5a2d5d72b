"""Every YAML input goes through one validation layer (grprof._yamlvalid): a wrong file gives
one line, `FILE:LINE: key.path: message (did you mean X?)`, and the CLI exits 2 with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from grprof._yamlvalid import YamlError
from grprof.collect.discovery import DiscoveryError, FileSD, read_file_sd
from grprof.config import ConfigError, load_config
from grprof.detect import rules as rules_mod
from grprof.detect.model import load_detect, parse_detect
from grprof.detect.rules import RulesError, load_file
from grprof.errors import GrprofError
from grprof.formats.states import (
    WaitStatesError,
    load_rules,
    load_wait_classes,
    parse_wait_classes,
    parse_wait_states,
)

ROOT = Path(__file__).parent.parent
DATA = ROOT / "src" / "grprof" / "data"
FIXTURE = ROOT / "tests" / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _message(load: Callable[[Path], object], path: Path, error: type[GrprofError]) -> str:
    with pytest.raises(error) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg.removeprefix(f"{path}:")


# ---------------------------------------------------------------- the serve configuration

CONFIG = [
    ("scrape:\n  intervall: 15s\n", '2: scrape.intervall: unknown key (did you mean "interval"?)'),
    (
        "scrape:\n  concurrency: many\n",
        "2: scrape.concurrency: Input should be a valid integer, unable to parse string as an integer",
    ),
    ("scrape:\n  interval: 10m\n", "2: scrape.interval: interval (600s) must not exceed backoff_max (300s)"),
    (
        "scrape:\n  format: debug1\n",
        "2: scrape.format: Input should be 'debug=1', 'debug=0' or 'debug=2' (did you mean \"debug=1\"?)",
    ),
    ("targets:\n  - name: a\n    urll: http://h:1\n", '3: targets.0.urll: unknown key (did you mean "url"?)'),
]


@pytest.mark.parametrize(("text", "line"), CONFIG)
def test_config(tmp_path: Path, text: str, line: str) -> None:
    assert _message(load_config, _write(tmp_path, "g.yaml", text), ConfigError) == line


# ---------------------------------------------------------------- SLA (the config's `sla:`)

SLA = [
    ("sla:\n  api:\n    latency: 200ms\n    p59: 1s\n", '4: sla.api.p59: unknown key (did you mean "p95"?)'),
    (
        "sla:\n  api:\n    latency: [1]\n    p95: 1s\n",
        "3: sla.api.latency: want a duration like 200ms, got [1]",
    ),
    (
        "sla:\n  api:\n    latency: 200ms\n    prometheus: h:9090\n    query: up\n",
        "4: sla.api.prometheus: want an http(s) URL like http://127.0.0.1:9090, got 'h:9090'",
    ),
]


@pytest.mark.parametrize(("text", "line"), SLA)
def test_sla(tmp_path: Path, text: str, line: str) -> None:
    assert _message(load_config, _write(tmp_path, "g.yaml", text), ConfigError) == line


# ---------------------------------------------------------------- rule files

RULE = """\
    version: 1
    rules:
      - id: mine
        category: channel
        when: {state: [chan send]}
        title: t
        explanation: e
        fix: f
"""

RULES = [
    (RULE.replace("when:", "wehn:"), '5: rules.0.wehn: unknown key (did you mean "when"?)'),
    (RULE.replace("title: t", "title: [t]"), "6: rules.0.title: Input should be a valid string"),
    (
        RULE.replace("category: channel", "category: chanel"),
        '4: rules.0.category: unknown category "chanel", nor "sdk/<library>" (did you mean "channel"?)',
    ),
    (
        RULE + "        max_verdict: leek\n",
        "9: rules.0.max_verdict: Input should be 'leak' or 'suspect' (did you mean \"leak\"?)",
    ),
]


@pytest.mark.parametrize(("text", "line"), RULES)
def test_rules(tmp_path: Path, text: str, line: str) -> None:
    assert _message(load_file, _write(tmp_path, "r.yaml", text), RulesError) == line


# ---------------------------------------------------------------- file_sd files

SD = [
    ("- targets: [h:1]\n  lables: {job: x}\n", '2: 0.lables: unknown key (did you mean "labels"?)'),
    ("- targets: h:1\n", '1: 0.targets: must be a list, got "h:1"'),
    (
        "- targets: [h:1, 'http://h:2']\n",
        "1: 0.targets.1: 'http://h:2' is not host:port (put the scheme in the __scheme__ label)",
    ),
]


@pytest.mark.parametrize(("text", "line"), SD)
def test_discovery(tmp_path: Path, text: str, line: str) -> None:
    path = _write(tmp_path, "sd.yaml", text)
    assert _message(lambda p: read_file_sd(str(p)), path, DiscoveryError) == line
    sd = FileSD([str(path)])
    sd.poll()
    assert sd.errors == [f"{path}:{line}"]  # what serve logs, keeping the previous targets


# ---------------------------------------------------------------- shipped data files


def _shipped(name: str, old: str, new: str) -> str:
    text = (DATA / name).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_wait_states() -> None:
    text = _shipped("wait_states.yaml", "  - function: runtime.block\n", "  - functon: runtime.block\n")
    with pytest.raises(WaitStatesError) as e:
        parse_wait_states(text, "ws.yaml")
    n = _line_of(text, "functon:")
    assert str(e.value) == f'ws.yaml:{n}: rules.0.functon: unknown key (did you mean "function"?)'
    text = _shipped("wait_states.yaml", "empty_stack: runnable", "empty_stack: [runnable]")
    with pytest.raises(WaitStatesError) as e:
        parse_wait_states(text, "ws.yaml")
    assert (
        str(e.value)
        == f"ws.yaml:{_line_of(text, 'empty_stack')}: empty_stack: Input should be a valid string"
    )


def test_detect_yaml() -> None:
    text = _shipped("detect.yaml", "age_minutes: 10", "age_minuts: 10")
    with pytest.raises(YamlError) as e:
        parse_detect(text, "detect.yaml")
    n = _line_of(text, "age_minuts")
    assert str(e.value) == f'detect.yaml:{n}: age_minuts: unknown key (did you mean "age_minutes"?)'
    text = _shipped("detect.yaml", "runtime.chanrecv2: idle", "runtime.chanrecv2: idel")
    with pytest.raises(YamlError) as e:
        parse_detect(text, "detect.yaml")
    n = _line_of(text, "chanrecv2: idel")
    assert str(e.value) == (
        f"detect.yaml:{n}: wait_kinds.frames.runtime.chanrecv2: "
        "Input should be 'blocking', 'waiting' or 'idle' (did you mean \"idle\"?)"
    )


def test_wait_classes_yaml() -> None:
    text = _shipped("wait_classes.yaml", "default: other", "default: othr")
    with pytest.raises(YamlError) as e:
        parse_wait_classes(text, "wc.yaml")
    n = _line_of(text, "default: othr")
    assert str(e.value) == f'wc.yaml:{n}: default: "othr" is not one of the classes (did you mean "other"?)'
    text = _shipped("wait_classes.yaml", '    prefix: ["select"]', '    prefx: ["select"]')
    with pytest.raises(YamlError) as e:
        parse_wait_classes(text, "wc.yaml")
    n = _line_of(text, "prefx")
    assert str(e.value) == f'wc.yaml:{n}: classes.select.prefx: unknown key (did you mean "prefix"?)'


def test_every_shipped_file_validates() -> None:
    rules_mod._shipped.cache_clear()
    assert len(rules_mod._shipped().rules) >= 40
    load_rules.cache_clear()
    assert load_rules().empty_stack == "runnable"
    load_detect.cache_clear()
    assert load_detect().growth.leak.rate_per_minute > 0
    load_wait_classes.cache_clear()
    assert "channel" in load_wait_classes().classes
    assert load_config(ROOT / "examples" / "grprof.yaml").sla_for("checkout") is not None


# Modules that read YAML without a model, each with its reason: go_lines.yaml is a table of
# Go's own source lines written by scripts/go_lines.py (which refuses to write a table that
# misplaces a recorded frame), never by a person, and read with the C loader.
UNVALIDATED_YAML = {"grprof.formats.goversion"}
_YAML_READS = frozenset({"load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all"})


def test_every_yaml_read_goes_through_the_validation_layer() -> None:
    """One way to read YAML (`grprof._yamlvalid`: a pydantic model, `FILE:LINE: key.path`
    errors): no module calls `yaml.load` / `yaml.safe_load` itself, so no input (data/*.yaml
    included: wait_classes.yaml was read a second time, unvalidated) escapes its model."""
    import ast

    src = ROOT / "src"
    readers = set()
    for path in (src / "grprof").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
                and node.attr in _YAML_READS
            ):
                readers.add(".".join(path.relative_to(src).with_suffix("").parts))
    assert readers - {"grprof._yamlvalid"} == UNVALIDATED_YAML


# ---------------------------------------------------------------- through the CLI


def _grprof(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("grprof")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "grprof.cli"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def _fails_with(p: subprocess.CompletedProcess[str], line: str) -> None:
    assert p.returncode == 2, p.stderr
    assert p.stderr == f"grprof: {line}\n"
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_cli_analyze_rules(tmp_path: Path) -> None:
    text, line = RULES[0]
    bad = _write(tmp_path, "bad.yaml", text)
    _fails_with(_grprof("analyze", "--rules", str(bad), str(FIXTURE)), f"{bad}:{line}")


@pytest.mark.parametrize(("text", "line"), [CONFIG[0], CONFIG[2], SLA[0]])
def test_cli_serve_config(tmp_path: Path, text: str, line: str) -> None:
    bad = _write(tmp_path, "bad.yaml", text)
    _fails_with(_grprof("serve", "--config", str(bad), "--db", str(tmp_path / "g.db")), f"{bad}:{line}")
    assert not (tmp_path / "g.db").exists()


def test_cli_serve_config_rule_file(tmp_path: Path) -> None:
    text, line = RULES[2]
    bad = _write(tmp_path, "bad.yaml", text)
    cfg = _write(tmp_path, "g.yaml", f"version: 1\nrules: [{bad}]\n")
    p = _grprof("serve", "--config", str(cfg), "--db", str(tmp_path / "g.db"), "--listen", "127.0.0.1:0")
    _fails_with(p, f"{bad}:{line}")
