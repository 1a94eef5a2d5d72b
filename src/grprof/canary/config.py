"""The canary judgement's settings: data/canary.yaml, validated through grprof's one YAML
validation layer (`grprof._yamlvalid`), optionally replaced key by key by a user's file
(`grprof canary --config FILE`), by the `canary:` section of `grprof serve`'s configuration
(`ServedCanary`), and by a request's `config` (`with_overrides`)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from grprof._yamlvalid import Document, Located, Strict, parse, read, validate
from grprof.errors import GrprofError

Direction = Literal["increase", "decrease", "either"]
"""Which change is bad: `increase` (more in the canary fails; less is fine), `decrease`, or both."""
Scope = Literal["target", "group"]
Measure = Literal["count", "growth"]
Outcome = Literal["pass", "fail"]


class CanaryError(GrprofError):
    """Bad canary input (settings, targets, snapshots); one line. Exit status 2."""


class Thresholds(Strict):
    # Dumped as `pass`, as written: a dumped configuration validates again (`grprof serve`
    # re-validates the file's with the flags over it).
    model_config = ConfigDict(**Strict.model_config, serialize_by_alias=True)

    pass_: Annotated[float, Field(alias="pass", ge=0, le=100)] = 75
    marginal: Annotated[float, Field(ge=0, le=100)] = 50

    @model_validator(mode="after")
    def _order(self) -> Thresholds:
        if self.marginal > self.pass_:
            raise Located(("marginal",), f"must not be above pass ({self.pass_:g})")
        return self


class Metric(Strict):
    name: Annotated[str, Field(min_length=1)]
    help: str = ""
    scope: Scope
    measure: Measure
    direction: Direction = "increase"
    weight: Annotated[float, Field(gt=0)] = 1
    allowed_increase: Annotated[float, Field(ge=0)] = 0.0
    """Tolerated shift, as a share of the baseline's median (|median|)."""
    min_shift: Annotated[float, Field(ge=0)] = 0.0
    """Tolerated shift, absolute (goroutines, or goroutines per minute): the larger one holds."""


class Critical(Strict):
    runtime_confirmed_leak: bool = True
    new_leak: bool = True


class CanaryConfig(Strict):
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    min_samples: Annotated[int, Field(ge=2)] = 6
    min_group: Annotated[int, Field(ge=0)] = 5
    thresholds: Thresholds = Thresholds()
    marginal: Outcome = "fail"
    metrics: Annotated[tuple[Metric, ...], Field(min_length=1)]
    critical: Critical = Critical()

    @model_validator(mode="after")
    def _unique(self) -> CanaryConfig:
        seen: set[str] = set()
        for i, m in enumerate(self.metrics):
            if m.name in seen:
                raise Located(("metrics", i, "name"), f"{m.name!r} named twice")
            seen.add(m.name)
        return self


class ServedCanary(CanaryConfig):
    """The `canary:` section of `grprof serve`'s configuration: data/canary.yaml's top-level
    keys, each given one replacing the shipped one (as `grprof canary --config FILE` does).

    Validated as part of the configuration, so an error is `FILE:LINE: canary.key.path:
    message` like any other key, and a reload with a bad section is refused whole. The shipped
    keys are merged in before validation, so a check across keys (`thresholds.marginal` not
    above `thresholds.pass`, metric names unique) sees the settings that will run. An empty
    `canary:` (or none) is the shipped settings."""

    @model_validator(mode="before")
    @classmethod
    def _over_the_shipped(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if isinstance(data, Mapping):
            return {**_shipped().data, **data}
        return data  # not a mapping: the model's own error ("must be a mapping ...")

    @classmethod
    def shipped(cls) -> ServedCanary:
        """data/canary.yaml as it ships (the default of the configuration's `canary:`)."""
        return cls.model_validate({})


def with_overrides(base: CanaryConfig, overrides: Mapping[str, Any] | None) -> CanaryConfig:
    """`base` with the top-level keys of `overrides` (the API's `config`) replacing its own;
    `CanaryError` (`config: key.path: message`) when the result is invalid."""
    if not overrides:
        return base
    data = {**base.model_dump(), **overrides}
    cfg: CanaryConfig = validate(CanaryConfig, Document("config", data, {}), CanaryError)
    return cfg


def _shipped() -> Document:
    text = resources.files("grprof").joinpath("data/canary.yaml").read_text(encoding="utf-8")
    return parse(text, "grprof/data/canary.yaml", CanaryError)


def load_config(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> CanaryConfig:
    """The packaged settings, with the top-level keys of `path` (a YAML file) and then of
    `overrides` (a mapping, e.g. the API's `config`) replacing theirs."""
    doc = _shipped()
    data: dict[str, Any] = dict(doc.data)
    if path is not None:
        user = read(path, CanaryError, "canary settings")
        if not isinstance(user.data, Mapping):
            raise CanaryError(f"{path}: must be a mapping of canary settings")
        merged = {**data, **user.data}
        return _with(merged, overrides, Document(user.name, merged, user.lines))
    return _with(data, overrides, doc)


def _with(data: dict[str, Any], overrides: Mapping[str, Any] | None, doc: Document) -> CanaryConfig:
    if overrides:
        data = {**data, **overrides}
        doc = Document("config", data, {})
    else:
        doc = Document(doc.name, data, doc.lines)
    cfg: CanaryConfig = validate(CanaryConfig, doc, CanaryError)
    return cfg
