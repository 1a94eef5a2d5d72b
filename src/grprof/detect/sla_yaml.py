"""An SLA as written in configuration (`sla:` of `grprof serve`'s config), validated (pydantic).

    sla = parse_sla({"latency": "200ms", "p95": "180ms"})    # SLA(latency=0.2, p95=0.18)

`SLAConfig` is the schema (durations as `200ms` or seconds; every rule of `SLA` checked, each
error naming its key); it builds the runtime `grprof.detect.sla.SLA`, which detection reads
without importing pydantic (start-up time, issue 9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError, model_validator

from grprof._yamlvalid import Located, Strict, problem
from grprof.detect.sla import DEFAULT_POINTS, SLA
from grprof.units import parse_duration


def _seconds(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"want a duration like 200ms, got {value!r}")
    return parse_duration(str(value))


_Seconds = Annotated[float, BeforeValidator(_seconds)]


class SLAConfig(Strict):
    """An SLA as written in the configuration (`sla:` of `grprof serve`'s config)."""

    latency: _Seconds
    p95: _Seconds | None = None
    prometheus: str | None = None
    query: str | None = None
    points: tuple[tuple[float, float], ...] = DEFAULT_POINTS
    timeout: _Seconds = 10.0

    @model_validator(mode="after")
    def _valid(self) -> SLAConfig:
        try:
            self.to_sla()
        except ValueError as err:
            key, sep, rest = str(err).partition(": ")
            raise (Located((key,), rest) if sep and key in type(self).model_fields else err) from None
        return self

    def to_sla(self) -> SLA:
        return SLA(self.latency, self.p95, self.prometheus, self.query, self.points, self.timeout)


def parse_sla(mapping: Mapping[str, Any]) -> SLA:
    """An SLA from config: durations as `200ms`/`0.2`; ValueError names the offending key."""
    try:
        return SLAConfig.model_validate(mapping).to_sla()
    except ValidationError as err:
        raise ValueError(problem(err, SLAConfig, mapping)) from None
