"""The schema of `grprof/data/detect.yaml` (pydantic): imported only to validate the file.

`grprof.detect.model.parse_detect` validates the YAML with `DetectFile` (errors as
`FILE:LINE: key.path: message (did you mean ...)`, through `grprof._yamlvalid`) and turns the
result into `grprof.detect.model.DetectData`, the plain dataclasses of the same keys that the
detector reads and the user's cache keeps; a run that reads the cache imports neither this
module nor pydantic (start-up time, issue 9).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from grprof._yamlvalid import Located, Strict
from grprof.detect.vocab import WaitKind


def _regexes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for i, p in enumerate(patterns):
        try:
            re.compile(p)
        except re.error as e:
            raise Located((i,), f'bad regex "{p}": {e}') from None
    return patterns


class _Level(Strict):
    rate_per_minute: float
    above_baseline: float
    trend: float


class _Growth(Strict):
    leak: _Level
    suspect: _Level
    min_snapshots: int
    min_span_minutes: float
    window: int
    recovered: float
    draining: float


class _WaitKinds(Strict):
    frames: dict[str, WaitKind]
    source: dict[str, WaitKind]
    states: dict[WaitKind, tuple[str, ...]]


class _Persistence(Strict):
    min_snapshots: int
    min_span_minutes: float
    on_behalf_creators: tuple[str, ...]
    woken_min_span_minutes: float
    accumulating_min_span_minutes: float


class _Tier(Strict):
    states: tuple[str, ...]
    min_snapshots: int
    min_span_minutes: float


class _Turnover(Strict):
    churn: float
    min_count: int


class _Verdicts(Strict):
    leak: float
    suspect: float


class _Confidence(Strict):
    midpoint: float
    steepness: float
    max: float


class _Scoring(Strict):
    verdicts: _Verdicts
    confidence: _Confidence
    weights: dict[str, float]


class DetectFile(Strict):
    """`grprof/data/detect.yaml`: the detector's thresholds, wait kinds and weights."""

    growth: _Growth
    age_minutes: int
    age_states: tuple[str, ...]
    orphans: int
    caller_spawners: tuple[str, ...]
    request_frames: Annotated[tuple[str, ...], AfterValidator(_regexes)]
    busy_states: tuple[str, ...]
    wait_kinds: _WaitKinds
    persistence: _Persistence
    steady: dict[str, _Tier]
    turnover: _Turnover
    scoring: _Scoring
