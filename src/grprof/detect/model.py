"""Findings: what the detector concludes about a group of goroutines, and why."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from grprof import _cache
from grprof.detect.cost import STACK_MIN, StackCost, stack_cost
from grprof.detect.vocab import CATEGORIES, VERDICTS, WAIT_KINDS, Verdict, WaitKind
from grprof.model import Frame

if TYPE_CHECKING:  # imported by to_json: only JSON output needs the schema (pydantic)
    from grprof import schema

Signal = Literal[
    "runtime_proof",
    "growth",
    "persistence",
    "steady",
    "age",
    "orphans",
    "source",
    "turnover",
    "not_proven",
    "woken",
    "accumulating",
    "thin",
    "unit",
    "sla",
    "rule",
]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal that fired, with the numbers behind it."""

    signal: Signal
    summary: str
    """One sentence a person reads: `grew 58/min over 2.0 min (robust slope), never fell back`."""
    value: float | None = None
    threshold: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 0.0
    """What it adds to the finding's score (detect.yaml `scoring`): positive for a leak,
    negative against one, 0 for notes."""

    def to_json(self) -> schema.Evidence:
        out: schema.Evidence = {
            "signal": self.signal,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "weight": round(self.weight, 3),
        }
        if self.data:
            out["data"] = dict(self.data)
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a rule (or the source check) says about a finding."""

    category: str
    title: str
    explanation: str
    fix: str
    rule: str | None = None
    """Id of the rule that matched, None when no rule did."""
    max_verdict: Verdict | None = None
    """The strongest verdict the rule allows without runtime proof: "suspect" for patterns that
    are normal at any steady size and grow with load (idle keep-alive connections)."""


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What reading the service's source showed (`--source DIR`)."""

    file: str
    line: int
    function: str
    """The enclosing function's name as written in the source."""
    snippet: str
    """The blocking statement with a few lines around it, line-numbered."""
    go_statement: str | None = None
    """The `go` statement that spawned the goroutine, line-numbered, when found."""
    pattern: str | None = None
    """A recognised leak pattern, e.g. `unbuffered-send-after-timeout`."""
    confirmed: bool = False
    suggestion: str | None = None

    def to_json(self) -> schema.SourceReport:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "snippet": self.snippet,
            "go_statement": self.go_statement,
            "pattern": self.pattern,
            "confirmed": self.confirmed,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True, slots=True)
class OwnerBy:
    """What decided a finding's owner (grprof.detect.owners)."""

    source: Literal["label", "prefix", "codeowners"]
    rule: str
    """The label key, the prefix, or the CODEOWNERS pattern with its line."""
    frame: Frame | None = None
    """The first owned frame from the blocking frame outward; None for a label."""

    def to_json(self) -> schema.OwnerBy:
        from grprof import schema

        return {"source": self.source, "rule": self.rule, "frame": schema.frame_or_none(self.frame)}

    def __str__(self) -> str:
        return f"{self.source} {self.rule}" + (f" at {self.frame}" if self.frame else "")


@dataclass(frozen=True, slots=True)
class Member:
    """One group of a unit finding: goroutines that leak together with the finding's own (a
    stream's handler and its transport, a connection's reader and writer)."""

    id: str
    verdict: Verdict
    site: Frame | None
    state: str
    count: int
    counts: Sequence[int]
    created_by: Frame | None = None
    category: str = "unknown"
    frames: Sequence[Frame] = ()

    def to_json(self) -> schema.Member:
        from grprof import schema

        return {
            "id": self.id,
            "verdict": self.verdict,
            "site": schema.frame_or_none(self.site),
            "state": self.state,
            "count": self.count,
            "counts": list(self.counts),
            "created_by": schema.frame_or_none(self.created_by),
            "category": self.category,
            "frames": schema.frames(self.frames),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict on one group (or unit of groups), built once by the detector."""

    id: str
    """Stable across runs for the same group: the series key's digest."""
    verdict: Verdict
    confidence: float
    category: str
    title: str
    explanation: str
    fix: str
    site: Frame | None
    created_by: Frame | None
    state: str
    count: int
    """Goroutines in the group in the latest snapshot."""
    counts: Sequence[int]
    """Per snapshot, in input order (0 where the group was absent)."""
    growth_per_minute: float | None
    max_wait_minutes: int
    orphans: int
    runtime_confirmed: bool
    source_confirmed: bool
    labels: Mapping[str, Mapping[str, int]]
    """Top values per label key, with goroutine counts (latest snapshot)."""
    evidence: Sequence[Evidence]
    frames: Sequence[Frame] = ()
    rule: str | None = None
    source: SourceReport | None = None
    score: float = 0.0
    """The sum of the evidence's weights the verdict was read from."""
    wait_kind: WaitKind | Literal[""] = ""
    """`blocking`, `waiting` or `idle` (detect.yaml `wait_kinds`): how much a long wait says."""
    members: Sequence[Member] = ()
    """The other groups of the same unit (they moved in lockstep with this one and share its
    creator chain or its labels): one bug, one finding."""
    owner: str = "unknown"
    """Who owns the code that blocks (docs/owners.md): `unknown` when nothing says, never a guess."""
    owner_by: OwnerBy | None = None
    """What decided the owner: a label, a prefix or CODEOWNERS, and at which frame."""
    stack: StackCost | None = None
    """Stack bytes the group holds, their growth and the time to the memory limit (cost.py)."""

    def to_json(self) -> schema.Finding:
        """The finding in the `grprof.report/v1` shape (`grprof.schema.Finding`)."""
        from grprof import schema

        return {
            "id": self.id,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 3),
            "category": self.category,
            "title": self.title,
            "explanation": self.explanation,
            "fix": self.fix,
            "rule": self.rule,
            "site": schema.frame_or_none(self.site),
            "created_by": schema.frame_or_none(self.created_by),
            "state": self.state,
            "count": self.count,
            "counts": list(self.counts),
            "growth_per_minute": None if self.growth_per_minute is None else round(self.growth_per_minute, 3),
            "max_wait_minutes": self.max_wait_minutes,
            "orphans": self.orphans,
            "runtime_confirmed": self.runtime_confirmed,
            "source_confirmed": self.source_confirmed,
            "labels": {k: dict(v) for k, v in self.labels.items()},
            "evidence": [e.to_json() for e in self.evidence],
            "frames": schema.frames(self.frames),
            "source": self.source.to_json() if self.source else None,
            "score": round(self.score, 3),
            "wait_kind": self.wait_kind,
            "members": [m.to_json() for m in self.members],
            "owner": self.owner,
            "owner_by": self.owner_by.to_json() if self.owner_by else None,
            "stack_bytes": self.stack.bytes if self.stack else self.count * STACK_MIN,
            "stack": (self.stack or stack_cost(self.count, self.growth_per_minute)).to_json(),
        }


# -- data/detect.yaml ------------------------------------------------------------------------
# The validated file as plain frozen dataclasses: what the detector reads and the user's cache
# pickles (grprof._cache), so a run that finds it there imports no pydantic. The schema that
# validates the YAML, with its messages, is `grprof.detect.detect_yaml.DetectFile`: the same
# keys, as pydantic models; `parse_detect` converts one into the other. (Each class has a
# docstring: a dataclass without one gets its signature as docstring, through `inspect`, at import.)


@dataclass(frozen=True, slots=True)
class DetectLevel:
    """detect.yaml `growth.leak` or `growth.suspect`: the growth that makes the verdict."""

    rate_per_minute: float
    above_baseline: float
    trend: float


@dataclass(frozen=True, slots=True)
class DetectGrowth:
    """detect.yaml `growth`: when a count grows, and when it has come back down."""

    leak: DetectLevel
    suspect: DetectLevel
    min_snapshots: int
    min_span_minutes: float
    window: int
    recovered: float
    draining: float


@dataclass(frozen=True, slots=True)
class DetectWaitKinds:
    """detect.yaml `wait_kinds`: how long a wait may be healthy, by frame, source and state."""

    frames: dict[str, WaitKind]
    source: dict[str, WaitKind]
    states: dict[WaitKind, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class DetectPersistence:
    """detect.yaml `persistence`: goroutines that stay, by id, across snapshots."""

    min_snapshots: int
    min_span_minutes: float
    on_behalf_creators: tuple[str, ...]
    woken_min_span_minutes: float
    accumulating_min_span_minutes: float


@dataclass(frozen=True, slots=True)
class DetectTier:
    """detect.yaml `steady.<tier>`: states whose count must hold this long to be `steady`."""

    states: tuple[str, ...]
    min_snapshots: int
    min_span_minutes: float


@dataclass(frozen=True, slots=True)
class DetectTurnover:
    """detect.yaml `turnover`: a group whose goroutines are replaced, not kept."""

    churn: float
    min_count: int


@dataclass(frozen=True, slots=True)
class DetectVerdicts:
    """detect.yaml `scoring.verdicts`: the scores that make a leak and a suspect."""

    leak: float
    suspect: float


@dataclass(frozen=True, slots=True)
class DetectConfidence:
    """detect.yaml `scoring.confidence`: the curve from a score to a confidence."""

    midpoint: float
    steepness: float
    max: float


@dataclass(frozen=True, slots=True)
class DetectScoring:
    """detect.yaml `scoring`: the weight of each signal, the verdicts, the confidence."""

    verdicts: DetectVerdicts
    confidence: DetectConfidence
    weights: dict[str, float]


@dataclass(frozen=True, slots=True)
class DetectData:
    """`grprof/data/detect.yaml`, validated: the detector's thresholds, wait kinds and weights."""

    growth: DetectGrowth
    age_minutes: int
    age_states: tuple[str, ...]
    orphans: int
    caller_spawners: tuple[str, ...]
    request_frames: tuple[str, ...]
    busy_states: tuple[str, ...]
    wait_kinds: DetectWaitKinds
    persistence: DetectPersistence
    steady: dict[str, DetectTier]
    turnover: DetectTurnover
    scoring: DetectScoring


@functools.cache
def load_detect() -> DetectData:
    """data/detect.yaml, validated once and then read from the user's cache (grprof._cache)."""
    return _cache.shipped("detect.yaml", DetectData, _parse_shipped)


def _parse_shipped(text: str) -> DetectData:
    return parse_detect(text, "grprof/data/detect.yaml")


def parse_detect(text: str, name: str) -> DetectData:
    """detect.yaml text, validated; YamlError `NAME:LINE: key.path: message` when it is wrong."""
    # pydantic and the schema only here: a run that reads the file from the cache needs neither.
    from pydantic import TypeAdapter

    from grprof._yamlvalid import parse, validate
    from grprof.detect.detect_yaml import DetectFile

    checked: DetectFile = validate(DetectFile, parse(text, name))
    # The schema's models to the dataclasses of the same keys (a key missing from either fails).
    data: DetectData = TypeAdapter(DetectData).validate_python(checked.model_dump(), strict=False)
    return data


__all__ = [
    "CATEGORIES",
    "VERDICTS",
    "WAIT_KINDS",
    "DetectData",
    "Evidence",
    "Explanation",
    "Finding",
    "Member",
    "OwnerBy",
    "Signal",
    "SourceReport",
    "Verdict",
    "WaitKind",
    "load_detect",
    "parse_detect",
]
