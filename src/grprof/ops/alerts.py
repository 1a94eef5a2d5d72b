"""Prometheus alerting and recording rules for grprof's metrics, from data/alerts.yaml.

    spec = load_spec()                                   # the packaged data, validated
    spec = apply_overrides(spec, read_overrides(path))   # a user's file (thresholds, for, ...)
    spec = apply_overrides(spec, {"thresholds": {"growth_per_minute": "5"}})
    text = render(spec, ui_url="http://grprof:8080")     # a Prometheus rule file (YAML)

In the data, `${name}` in an expression, annotation or runbook is a threshold (or `ui_url`);
`{{ ... }}` is Prometheus' own alert templating and is written out unchanged.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field

from grprof._yamlvalid import Strict, parse, read, validate
from grprof.errors import GrprofError


class RulesError(GrprofError):
    """alerts data, an override or a flag is wrong; one line."""


# Prometheus' duration syntax (model.ParseDuration): 30s, 15m, 1h30m, 1d; no fractions.
_PROM_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_duration(text: str) -> str:
    text = str(text).strip()
    if not text or text == "0" or not _PROM_DURATION.match(text):
        raise ValueError(f"not a Prometheus duration: {text!r} (use e.g. 30s, 15m, 1h30m)")
    return text


def _metric_name(text: str) -> str:
    if not _NAME.match(text):
        raise ValueError(f"not a valid metric or alert name: {text!r}")
    return text


Duration = Annotated[str, AfterValidator(check_duration)]
Name = Annotated[str, AfterValidator(_metric_name)]
Scalar = str | int | float


class Threshold(Strict):
    value: Scalar
    help: str = ""


class Recording(Strict):
    record: Name
    expr: str


class Alert(Strict):
    alert: Name
    expr: str
    for_: Duration = Field(alias="for")
    severity: str
    summary: str
    description: str
    runbook: str
    enabled: bool = True


class Spec(Strict):
    version: Literal[1]
    group: str
    thresholds: dict[str, Threshold]
    recording: tuple[Recording, ...]
    alerts: tuple[Alert, ...]
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels on every alert (routing), from overrides."""
    match: str = ""
    """Label matchers added to every selector of grprof's series, e.g. `team="payments"`: one
    rule file per group of targets (each with its own thresholds)."""


class AlertOverride(Strict):
    for_: Duration | None = Field(default=None, alias="for")
    severity: str | None = None
    enabled: bool | None = None


class Overrides(Strict):
    """What a user's override file may change: thresholds, and per alert `for`, `severity`,
    `enabled`; extra `labels` go on every alert (routing)."""

    thresholds: dict[str, Scalar] = Field(default_factory=dict)
    alerts: dict[str, AlertOverride] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    match: str | None = None
    group: str | None = None


def load_spec(text: str | None = None, name: str = "alerts.yaml") -> Spec:
    """The packaged data/alerts.yaml (or `text`), validated."""
    if text is None:
        text = resources.files("grprof").joinpath("data/alerts.yaml").read_text(encoding="utf-8")
    spec: Spec = validate(Spec, parse(text, name, RulesError), RulesError)
    names = [a.alert for a in spec.alerts]
    for a in spec.alerts:
        if names.count(a.alert) > 1:
            raise RulesError(f"{name}: alerts: {a.alert} defined twice")
    _check_placeholders(spec, name)
    return spec


def read_overrides(path: str | Path) -> Overrides:
    o: Overrides = validate(Overrides, read(path, RulesError, "override file"), RulesError)
    return o


def _check_placeholders(spec: Spec, name: str) -> None:
    known = set(spec.thresholds) | {"ui_url"}
    for where, text in _texts(spec):
        for m in _PLACEHOLDER.finditer(text):
            if m.group(1) not in known:
                raise RulesError(f"{name}: {where}: unknown threshold ${{{m.group(1)}}}")


def _texts(spec: Spec) -> Iterator[tuple[str, str]]:
    for r in spec.recording:
        yield f"recording.{r.record}.expr", r.expr
    for a in spec.alerts:
        for key in ("expr", "summary", "description", "runbook"):
            yield f"alerts.{a.alert}.{key}", getattr(a, key)


def apply_overrides(spec: Spec, overrides: Overrides | Mapping[str, Any], source: str = "overrides") -> Spec:
    """`spec` with `overrides` applied; RulesError naming an unknown threshold or alert."""
    if not isinstance(overrides, Overrides):
        overrides = Overrides.model_validate(overrides)
    thresholds = dict(spec.thresholds)
    for key, value in overrides.thresholds.items():
        if key not in thresholds:
            raise RulesError(f"{source}: thresholds.{key}: unknown threshold{_hint(key, thresholds)}")
        old = thresholds[key].value
        thresholds[key] = Threshold(value=_coerce(key, value, old, source), help=thresholds[key].help)
    by_name = {a.alert: a for a in spec.alerts}
    alerts = list(spec.alerts)
    for name, o in overrides.alerts.items():
        if name not in by_name:
            raise RulesError(f"{source}: alerts.{name}: unknown alert{_hint(name, by_name)}")
        a = by_name[name]
        changed = a.model_copy(
            update={
                k: v
                for k, v in (("for_", o.for_), ("severity", o.severity), ("enabled", o.enabled))
                if v is not None
            }
        )
        alerts[alerts.index(a)] = changed
    for key in overrides.labels:
        if not _LABEL.match(key) or key.startswith("__"):
            raise RulesError(f"{source}: labels.{key}: not a valid Prometheus label name")
    labels = {**spec.labels, **overrides.labels}
    update: dict[str, Any] = {"thresholds": thresholds, "alerts": tuple(alerts), "labels": labels}
    if overrides.match is not None:
        update["match"] = check_matchers(overrides.match, _where(source, "match"))
    if overrides.group is not None:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", overrides.group):
            raise RulesError(
                f"{_where(source, 'group')}: want letters, digits and . _ : -, got {overrides.group!r}"
            )
        update["group"] = overrides.group
    return spec.model_copy(update=update)


def _where(source: str, key: str) -> str:
    return source if source.startswith("--") else f"{source}: {key}"


_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"\s*'
_MATCHERS = re.compile(rf"^{_MATCHER}(?:,{_MATCHER})*,?\s*$")
_SERIES = re.compile(r"\b((?:target:)?grprof_[a-zA-Z0-9_:]*)(\{[^}]*\})?")


def check_matchers(text: str, where: str) -> str:
    """PromQL label matchers, `team="payments", env!~"dev|test"`, or "" for none."""
    text = text.strip()
    if text and not _MATCHERS.match(text):
        raise RulesError(f'{where}: want PromQL label matchers like team="payments", got {text!r}')
    return text.rstrip(",").strip()


def add_matchers(expr: str, match: str) -> str:
    """`expr` with `match` added to every selector of grprof's series (and its records)."""
    if not match:
        return expr

    def one(m: re.Match[str]) -> str:
        inner = (m.group(2) or "{}")[1:-1].strip()
        return f"{m.group(1)}{{{inner + ', ' if inner else ''}{match}}}"

    return _SERIES.sub(one, expr)


def _hint(word: str, choices: Mapping[str, Any]) -> str:
    from grprof._yamlvalid import hint

    return hint(word, sorted(choices))


def _coerce(key: str, value: Scalar, old: Scalar, source: str) -> Scalar:
    """A threshold keeps its kind: a number stays a number, a duration a duration."""
    text = str(value).strip()
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        if isinstance(old, str) and _PROM_DURATION.match(old):
            try:
                return check_duration(text)
            except ValueError as e:
                raise RulesError(f"{source}: thresholds.{key}: {e}") from None
        if not text or any(c in text for c in '"\\\n`'):
            raise RulesError(f"{source}: thresholds.{key}: must be non-empty, without quotes or backslashes")
        return text
    try:
        number = float(text)
    except ValueError:
        raise RulesError(f"{source}: thresholds.{key}: not a number: {text!r}") from None
    if not math.isfinite(number):
        raise RulesError(f"{source}: thresholds.{key}: not a finite number: {text!r}")
    return int(number) if number.is_integer() else number


def check_ui_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RulesError(f"--ui-url: want an http(s) base URL like http://grprof:8080, got {url!r}")
    return url.rstrip("/")


def _substitute(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _values(spec: Spec, ui_url: str) -> dict[str, str]:
    values = {k: _fmt(t.value) for k, t in spec.thresholds.items()}
    values["ui_url"] = ui_url
    return values


def _fmt(v: Scalar) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def rule_groups(spec: Spec, *, ui_url: str, for_: str | None = None) -> dict[str, Any]:
    """The rule file as data: `{"groups": [...]}`. `for_` replaces every alert's `for:`
    (tests and demos: alerts in seconds instead of the real quarter-hours)."""
    values = _values(spec, check_ui_url(ui_url))
    if for_ is not None:
        try:
            for_ = check_duration(for_)
        except ValueError as e:
            raise RulesError(f"--for: {e}") from None

    def expr(text: str) -> str:
        return add_matchers(" ".join(_substitute(text, values).split()), spec.match)

    recording = [{"record": r.record, "expr": expr(r.expr)} for r in spec.recording]
    alerts = []
    for a in spec.alerts:
        if not a.enabled:
            continue
        alerts.append(
            {
                "alert": a.alert,
                "expr": expr(a.expr),
                "for": for_ or a.for_,
                "labels": {**spec.labels, "severity": a.severity},
                "annotations": {
                    "summary": _substitute(a.summary, values).strip(),
                    "description": " ".join(_substitute(a.description, values).split()),
                    "runbook_url": _substitute(a.runbook, values).strip(),
                },
            }
        )
    groups = []
    if recording:
        groups.append({"name": f"{spec.group}.recording", "rules": recording})
    if alerts:
        groups.append({"name": f"{spec.group}.alerts", "rules": alerts})
    return {"groups": groups}


def render(spec: Spec, *, ui_url: str, for_: str | None = None) -> str:
    """A Prometheus rule file (YAML) for `spec`."""
    header = (
        "# Prometheus rules for grprof's metrics, written by `grprof rules` (docs/alerts.md).\n"
        "# Check with: promtool check rules FILE\n"
    )
    return header + yaml.safe_dump(
        rule_groups(spec, ui_url=ui_url, for_=for_), sort_keys=False, width=1_000_000, allow_unicode=True
    )


def expressions(groups: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, expr) of every rule of a rule file's data."""
    return [
        (rule.get("alert") or rule["record"], rule["expr"]) for g in groups["groups"] for rule in g["rules"]
    ]


def parse_check_file(exprs: list[tuple[str, str]]) -> str:
    """A rule file with one recording rule per expression, for `promtool check rules`: it parses
    each one with Prometheus' own PromQL parser (the way the tests check the dashboard's
    queries, which use Grafana's `$variables`: substitute them first)."""
    rules = [{"record": f"grprof_check:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    return yaml.safe_dump(
        {"groups": [{"name": "grprof-check", "rules": rules}]}, sort_keys=False, width=1_000_000
    )


__all__ = [
    "Alert",
    "Overrides",
    "RulesError",
    "Spec",
    "add_matchers",
    "apply_overrides",
    "check_duration",
    "check_matchers",
    "check_ui_url",
    "expressions",
    "load_spec",
    "parse_check_file",
    "read_overrides",
    "render",
    "rule_groups",
]
