"""Every JSON document grprof writes, as pydantic models: one schema layer.

- `grprof.report/v1` (`grprof analyze --json`, docs/report-schema.md): `Report`;
- `grprof.diff/v1` (`grprof diff --json`, docs/diff.md): `DiffReport`;
- the HTTP API of `grprof serve` (docs/api-server.md): the `*Response` models, given to the
  routes as `response_model=`, so `/openapi.json`, `/docs` and `/redoc` show them.

The models are TypedDicts with a pydantic config (closed: an unknown key is an error). Why not
BaseModel: a 20,000-group report holds ~200,000 frames, and pydantic validates a dict into a
TypedDict about ten times faster than into model instances; the producers build plain dicts
anyway, and mypy checks every key they write against these classes. `dump_json(Model, doc)`
validates the dict and serializes it, both in pydantic-core (Rust): the output is byte for byte
what `json.dumps(doc, indent=2, ensure_ascii=False)` wrote, in less time. `json_schema(Model)`
exports the JSON Schema (draft 2020-12) for other tools.

Numbers that may be integers are `Number` (`int | float`), so `110` stays `110` and does not
become `110.0`. Keys written only when there is something to say (an evidence's `data`) are
`NotRequired`. Fields are only ever added within a version.

A leaf module: it imports nothing from grprof, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal, NotRequired, Protocol

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

REPORT_SCHEMA: Final = "grprof.report/v1"
DIFF_SCHEMA: Final = "grprof.diff/v1"
FINDINGS_SCHEMA: Final = "grprof.findings/v1"

Number = int | float
Labels = dict[str, dict[str, int]]


CLOSED = ConfigDict(extra="forbid", ser_json_inf_nan="constants")
"""A closed object: unknown keys are an error (the model is the shape)."""
OPEN = ConfigDict(extra="allow", ser_json_inf_nan="constants")


# -- grprof.report/v1 ----------------------------------------------------------------------


@with_config(CLOSED)
class Frame(TypedDict):
    """`{"function", "file", "line"}`: one call in a stack."""

    function: str
    file: str
    line: int


@with_config(CLOSED)
class Generator(TypedDict):
    name: str
    version: str


@with_config(CLOSED)
class Filter(TypedDict):
    """The filter as given on the command line."""

    include: str | None
    exclude: str | None
    min_count: int


@with_config(CLOSED)
class SnapshotInfo(TypedDict):
    """One dump or profile read (`snapshots[]`)."""

    index: int
    source: str
    format: str
    profile: str
    time: str | None
    total: int
    truncated: bool
    go_version: str | None
    prologue: str | None
    crashed_goroutine: int | None
    states: dict[str, int]
    groups: int
    hidden_groups: int
    hidden_goroutines: int


@with_config(CLOSED)
class WaitCount(TypedDict):
    minutes: int
    count: int


@with_config(CLOSED)
class Group(TypedDict):
    """One group of goroutines with the same stack (`groups[]`)."""

    snapshot: int
    signature: str
    count: int
    state: str
    states: dict[str, int]
    state_inferred: bool
    crashed: bool
    max_wait_minutes: int
    wait_minutes: list[WaitCount]
    leaked: int
    locked_to_thread: int
    partial: int
    orphans: int
    orphan_ids: list[int]
    ids: list[int]
    labels: Labels
    site: Frame | None
    created_by: Frame | None
    frames: list[Frame]
    frames_elided: bool


@with_config(CLOSED)
class SLA(TypedDict):
    """The factor that scaled the growth thresholds, and where the p95 came from."""

    alpha: Number
    ratio: Number | None
    p95_seconds: Number | None
    latency_seconds: Number | None
    source: str


@with_config(CLOSED)
class Detection(TypedDict):
    """How the detector saw the inputs."""

    snapshots: int
    leak_profiles: int
    times: list[Number]
    times_assumed: bool
    span_minutes: Number
    sla: SLA
    ignored: dict[str, int]
    thin: str | None
    warnings: list[str]
    stack_bytes: int
    stack_per_goroutine: int
    stack_source: Literal["runtime_minimum", "heap_profile", "metrics"]
    memory_limit: int | None
    memory_limit_source: Literal["configured", "gomemlimit"] | None


@with_config(CLOSED)
class Evidence(TypedDict):
    """One signal that fired; `data` only when the signal has details."""

    signal: str
    summary: str
    value: Any
    threshold: Any
    weight: Number
    data: NotRequired[dict[str, Any]]


@with_config(CLOSED)
class SourceReport(TypedDict):
    """What reading the service's source showed (`--source`)."""

    file: str
    line: int
    function: str
    snippet: str
    go_statement: str | None
    pattern: str | None
    confirmed: bool
    suggestion: str | None


Verdict = Literal["leak", "suspect", "inconclusive"]


@with_config(CLOSED)
class Member(TypedDict):
    """Another group of the same unit finding."""

    id: str
    verdict: Verdict
    site: Frame | None
    state: str
    count: int
    counts: list[int]
    created_by: Frame | None
    category: str
    frames: list[Frame]


@with_config(CLOSED)
class StackCost(TypedDict):
    """Stack bytes a finding's goroutines hold (docs/owners.md#cost)."""

    bytes: int
    per_goroutine: int
    source: Literal["runtime_minimum", "heap_profile", "metrics"]
    lower_bound: bool
    bytes_per_hour: Number | None
    hours_to_limit: Number | None
    limit_source: Literal["configured", "gomemlimit"] | None


@with_config(CLOSED)
class OwnerBy(TypedDict):
    """What decided a finding's owner (docs/owners.md)."""

    source: Literal["label", "prefix", "codeowners"]
    rule: str
    frame: Frame | None


@with_config(CLOSED)
class FindingCore(TypedDict):
    """The fields every finding document has had since v1's first release."""

    id: str
    verdict: Verdict
    confidence: Number
    category: str
    title: str
    explanation: str
    fix: str
    rule: str | None
    site: Frame | None
    created_by: Frame | None
    state: str
    count: int
    counts: list[int]
    growth_per_minute: Number | None
    max_wait_minutes: int
    orphans: int
    runtime_confirmed: bool
    source_confirmed: bool
    labels: Labels
    evidence: list[Evidence]
    frames: list[Frame]
    source: SourceReport | None


@with_config(CLOSED)
class Finding(FindingCore):
    """One leak finding (`findings[]`, docs/detection.md)."""

    score: Number
    wait_kind: str
    members: list[Member]
    owner: str
    owner_by: OwnerBy | None
    stack_bytes: int
    stack: StackCost


@with_config(CLOSED)
class Report(TypedDict):
    """`grprof analyze --json`: the `grprof.report/v1` document."""

    schema: Literal["grprof.report/v1"]
    generator: Generator
    similarity: str
    filter: Filter
    snapshots: list[SnapshotInfo]
    groups: list[Group]
    detection: Detection | None
    findings: list[Finding]


# -- grprof.diff/v1 ------------------------------------------------------------------------


@with_config(CLOSED)
class DiffSide(TypedDict):
    source: str
    format: str
    profile: str
    total: int
    groups: int
    go_version: str | None
    time: str | None


@with_config(CLOSED)
class DiffFilter(TypedDict):
    focus: str | None
    ignore: str | None
    hidden_groups: int


@with_config(CLOSED)
class BeforeAfter(TypedDict):
    before: int
    after: int


@with_config(CLOSED)
class DiffGoroutines(BeforeAfter):
    delta: int


@with_config(CLOSED)
class DiffSummary(TypedDict):
    goroutines: DiffGoroutines
    groups: int
    status: dict[str, int]
    verdicts: dict[str, int]


@with_config(CLOSED)
class WaitChange(TypedDict):
    before: int | None
    after: int | None
    grown: bool


@with_config(CLOSED)
class GroupDiff(TypedDict):
    """One group (track) in the two snapshots."""

    id: str
    status: Literal["new", "grown", "vanished", "shrunk", "same"]
    before: int
    after: int
    delta: int
    state: str
    state_inferred: bool
    site: Frame | None
    created_by: Frame | None
    wait_minutes: WaitChange
    leaked: BeforeAfter
    verdict: Verdict | None
    confidence: Number | None
    finding: str | None
    category: str | None
    title: str | None
    frames: list[Frame]


@with_config(CLOSED)
class DiffReport(TypedDict):
    """`grprof diff --json`: the `grprof.diff/v1` document."""

    schema: Literal["grprof.diff/v1"]
    generator: Generator
    before: DiffSide
    after: DiffSide
    filter: DiffFilter
    summary: DiffSummary
    groups: list[GroupDiff]
    findings: list[Finding]
    warnings: list[str]


# -- the HTTP API (docs/api-server.md) -----------------------------------------------------


@with_config(CLOSED)
class ErrorResponse(TypedDict):
    """Every error: one line for people, and details."""

    error: str
    detail: Any


@with_config(CLOSED)
class HealthResponse(TypedDict):
    status: Literal["ok"]
    version: str
    started: str | None
    uptime_seconds: Number
    targets: int
    shard: str | None


@with_config(CLOSED)
class Target(TypedDict):
    """A target of any replica, with its state (`local` ones with this replica's memory)."""

    name: str
    url: str
    labels: dict[str, str]
    shard: str | None
    up: bool | None
    last_scrape: str | None
    last_success: str | None
    last_error: str | None
    goroutines: int | None
    open_findings: int
    removed: bool
    local: bool
    growth_per_minute: Number | None
    leak_profile: bool | None
    blocked: dict[str, int] | None
    cluster: str | None
    """The federation member (docs/serve.md#federation) the target came from; null for this
    instance's own."""


@with_config(CLOSED)
class TargetsResponse(TypedDict):
    targets: list[Target]


@with_config(CLOSED)
class SnapshotMeta(TypedDict):
    id: int
    target: str
    time: str | None
    format: str
    profile: str
    total: int
    groups: int
    truncated: bool
    has_raw: bool
    downsampled: bool


@with_config(CLOSED)
class SnapshotsResponse(TypedDict):
    target: str
    snapshots: list[SnapshotMeta]
    next_before: str | None


@with_config(CLOSED)
class StoredGroup(TypedDict):
    """A stored group (fewer fields than `grprof analyze`'s: no ids, no per-goroutine data)."""

    signature: str
    track: str
    count: int
    state: str
    states: dict[str, int]
    max_wait_minutes: int
    leaked: int
    orphans: int
    labels: Labels
    site: Frame | None
    created_by: Frame | None
    frames: list[Frame]
    state_inferred: bool


@with_config(CLOSED)
class SnapshotResponse(TypedDict):
    snapshot: SnapshotMeta
    blocked: dict[str, int]
    groups: list[StoredGroup]


@with_config(CLOSED)
class DiffRow(TypedDict):
    track: str
    signature: str
    signatures: list[str]
    state: str
    site: Frame | None
    a: int
    b: int
    delta: int
    status: Literal["new", "gone", "changed", "same"]


@with_config(CLOSED)
class DiffTotals(TypedDict):
    a: int
    b: int
    delta: int
    minutes: Number
    new_groups: int
    gone_groups: int


@with_config(CLOSED)
class SnapshotDiffResponse(TypedDict):
    a: SnapshotMeta
    b: SnapshotMeta
    same_target: bool
    warning: str | None
    totals: DiffTotals
    groups: list[DiffRow]


@with_config(OPEN)
class StoredFinding(FindingCore):
    """A finding as last seen by detection (the `grprof analyze --json` fields), with its
    lifecycle. Open (extra keys allowed): a document stored by an older grprof keeps its
    fields as written, and fields added to findings since are optional here."""

    score: NotRequired[Number]
    wait_kind: NotRequired[str]
    members: NotRequired[list[Member]]
    owner: NotRequired[str]
    owner_by: NotRequired[OwnerBy | None]
    stack_bytes: NotRequired[int]
    stack: NotRequired[StackCost]
    target: str
    lifecycle: Literal["new", "ongoing", "resolved"]
    first_seen: str | None
    last_seen: str | None
    resolved_at: str | None
    cluster: NotRequired[str | None]
    """The federation member the finding came from; null for this instance's own (the API
    always writes it; a stored document has none)."""


@with_config(CLOSED)
class FindingsResponse(TypedDict):
    schema: Literal["grprof.findings/v1"]
    findings: list[StoredFinding]


@with_config(CLOSED)
class SearchResult(TypedDict):
    target: str
    snapshot: SnapshotMeta
    goroutines: int
    group: StoredGroup


@with_config(CLOSED)
class SearchResponse(TypedDict):
    key: str
    value: str
    results: list[SearchResult]


@with_config(OPEN)
class CaptureResponse(TypedDict):
    """The daemon's answer to a capture (201): `status` "ok", the new `snapshot` id, `bytes`
    fetched; the daemon may add keys."""

    target: str
    status: str
    snapshot: NotRequired[int | None]
    bytes: NotRequired[int]


# -- grprof.canary/v1 (`grprof canary --json`, `POST /api/v1/canary`, docs/canary.md) -----

CANARY_SCHEMA: Final = "grprof.canary/v1"
CanaryScope = Literal["target", "group"]
CanaryMeasure = Literal["count", "growth"]
CanaryDirection = Literal["increase", "decrease", "either"]
CanaryOutcome = Literal["pass", "fail"]


@with_config(CLOSED)
class CanaryShift(TypedDict):
    """The canary's shift from the baseline: Hodges-Lehmann estimate and its interval (at
    `confidence`, which the discrete U test makes at least the one asked for), Mann-Whitney
    one-sided p-values, and the samples on each side."""

    estimate: Number
    low: Number
    high: Number
    confidence: Number
    p_greater: Number
    p_less: Number
    n_baseline: int
    n_canary: int


@with_config(CLOSED)
class CanaryInstance(TypedDict):
    """One metric judged on one subject (a canary target, or a group's track id)."""

    metric: str
    scope: CanaryScope
    measure: CanaryMeasure
    direction: CanaryDirection
    subject: str
    site: Frame | None
    outcome: Literal["pass", "high", "low", "nodata"]
    passed: bool | None
    baseline_median: Number | None
    canary_median: Number | None
    shift: CanaryShift | None
    tolerance: Number


@with_config(CLOSED)
class CanaryMetric(TypedDict):
    """A metric's part of the score: `share` of its `judged` instances `passed`."""

    name: str
    scope: CanaryScope
    measure: CanaryMeasure
    direction: CanaryDirection
    weight: Number
    judged: int
    passed: int
    share: Number | None


CanaryThresholds = TypedDict(
    "CanaryThresholds", {"pass": Number, "marginal": Number, "marginal_is": CanaryOutcome}
)
"""The score thresholds, and what a marginal score counts as (`pass` is a keyword)."""
CanaryThresholds.__pydantic_config__ = CLOSED  # type: ignore[attr-defined]


@with_config(CLOSED)
class CanaryCritical(TypedDict):
    """A finding in the canary that fails it at once."""

    kind: Literal["runtime_confirmed_leak", "new_leak"]
    target: str
    finding: str
    verdict: str
    confidence: Number
    category: str
    title: str
    site: Frame | None
    count: int
    growth_per_minute: Number | None
    runtime_confirmed: bool
    description: str


@with_config(CLOSED)
class CanaryTarget(TypedDict):
    """One target of either side: what was read of it."""

    name: str
    snapshots: int
    span_seconds: Number
    leak_profiles: int
    goroutines_median: Number | None
    leaks: list[str]


@with_config(CLOSED)
class CanaryReport(TypedDict):
    """`grprof.canary/v1`: the judgement, the same document from the command and the API."""

    schema: Literal["grprof.canary/v1"]
    generator: Generator
    verdict: Literal["pass", "marginal", "fail"]
    passed: bool
    score: Number
    thresholds: CanaryThresholds
    critical: list[CanaryCritical]
    decided_by: list[CanaryInstance]
    metrics: list[CanaryMetric]
    baseline: list[CanaryTarget]
    canary: list[CanaryTarget]
    instances: list[CanaryInstance]
    confidence: Number
    warnings: list[str]


# -- federation (docs/serve.md#federation) -------------------------------------------------

MemberState = Literal["pending", "fresh", "stale", "auth-failed", "down"]
"""`pending`: not answered yet; `fresh`: its data is at most two intervals old; `stale`: older
(its last-known data is still served, with its age); `auth-failed`: its latest answer refused
the token (401/403); `down`: never answered, its latest pull failed."""


@with_config(CLOSED)
class FederationMember(TypedDict):
    """One member of a federating `grprof serve`, as it pulls it."""

    cluster: str
    url: str
    state: MemberState
    up: bool
    """Its latest pull succeeded."""
    age_seconds: Number | None
    """Of its last-known data (since the member answered); null when it never did."""
    last_success: str | None
    last_attempt: str | None
    last_error: str | None
    failures: int
    """Pulls failed in a row."""
    pull_seconds: Number | None
    """How long its latest successful pull took (the requests and decoding)."""
    version: str | None
    targets: int
    findings: int


@with_config(CLOSED)
class FederationResponse(TypedDict):
    interval_seconds: Number
    stale_after_seconds: Number
    members: list[FederationMember]


# -- grprof gate ----------------------------------------------------------------------------

GATE_SCHEMA: Final = "grprof.gate/v1"
GATE_BASELINE_SCHEMA: Final = "grprof.gate-baseline/v1"


@with_config(CLOSED)
class GateLeak(TypedDict):
    """One leaked group of one test (or of a service's after-snapshot)."""

    signature: str
    """The stable id: no lines, ids, paths or closure numbers (docs/ci.md#signatures)."""
    signature_text: str
    test: str | None
    count: int
    state: str
    category: str
    rule: str | None
    rule_id: str
    title: str
    fix: str
    verdict: str
    confidence: Number
    proven: bool
    accepted: bool
    site: Frame | None
    source: str
    labels: dict[str, dict[str, int]]
    frames: list[Frame]


@with_config(CLOSED)
class GateTest(TypedDict):
    name: str
    package: str
    outcome: str
    seconds: Number
    failed_otherwise: bool
    leaked: bool


@with_config(CLOSED)
class GateReport(TypedDict):
    """`grprof gate --json`: the `grprof.gate/v1` document."""

    schema: Literal["grprof.gate/v1"]
    generator: Generator
    mode: str
    inputs: list[str]
    baseline: str | None
    passed: bool
    new: int
    accepted: int
    leaks: list[GateLeak]
    tests: list[GateTest]
    ignored: dict[str, int]
    notes: list[str]


@with_config(CLOSED)
class GateSignature(TypedDict):
    id: str
    signature: str
    category: str
    rule: str | None
    tests: list[str]
    site: str | None


@with_config(CLOSED)
class GateBaseline(TypedDict):
    """`grprof gate --update-baseline`: the accepted signatures, `grprof.gate-baseline/v1`."""

    schema: Literal["grprof.gate-baseline/v1"]
    signatures: list[GateSignature]


# -- serializing ---------------------------------------------------------------------------


class FrameLike(Protocol):
    @property
    def function(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...


def frame(f: FrameLike) -> Frame:
    return {"function": f.function, "file": f.file, "line": f.line}


def frame_or_none(f: FrameLike | None) -> Frame | None:
    return None if f is None else frame(f)


def frames(fs: Iterable[FrameLike]) -> list[Frame]:
    return [{"function": f.function, "file": f.file, "line": f.line} for f in fs]


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def adapter(model: Any) -> TypeAdapter[Any]:
    """The (cached) pydantic TypeAdapter of one of the models above."""
    ta = _ADAPTERS.get(model)
    if ta is None:
        ta = _ADAPTERS[model] = TypeAdapter(model)
    return ta


def validate(model: Any, doc: object) -> Any:
    """`doc` checked against `model` (pydantic's ValidationError when it does not fit)."""
    return adapter(model).validate_python(doc)


def dump_json(model: Any, doc: object, indent: int | None = 2) -> str:
    """`doc` checked against `model` and written as JSON text: keys in the model's order,
    non-ASCII as is, byte for byte what `json.dumps(doc, indent=indent, ensure_ascii=False)`
    wrote before. Both steps run in pydantic-core (Rust)."""
    ta = adapter(model)
    return ta.dump_json(ta.validate_python(doc), indent=indent).decode()


def json_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model, as published documents are checked with."""
    return adapter(model).json_schema(mode="serialization")


API_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "no or wrong API token"),
        (404, "unknown target, snapshot or route"),
        (422, "invalid parameter"),
        (500, "internal error"),
    )
}
"""The error answers every `/api/v1` route may give, for the OpenAPI document."""


__all__ = [
    "API_RESPONSES",
    "CANARY_SCHEMA",
    "DIFF_SCHEMA",
    "FINDINGS_SCHEMA",
    "GATE_BASELINE_SCHEMA",
    "GATE_SCHEMA",
    "REPORT_SCHEMA",
    "CanaryReport",
    "DiffReport",
    "Finding",
    "GateBaseline",
    "GateReport",
    "Report",
    "dump_json",
    "frame",
    "json_schema",
    "validate",
]
