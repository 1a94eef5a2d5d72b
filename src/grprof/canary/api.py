"""The canary routes of `grprof serve`'s API (docs/canary.md):

    app.include_router(canary_routes(store, runtime, settings=lambda: config.canary))

The settings are the served configuration's `canary:` section (`settings()`, asked at each
request, so a reload applies to the next one), with a request's `config` keys over them; the
shipped data/canary.yaml without `settings`.

- `POST /api/v1/canary` (and `GET` with query parameters): judge the canary targets against
  the baseline targets from the store's last `window`; always 200 with the result (what Argo
  Rollouts' web metric provider reads: `successCondition: result.passed == true`, or on the
  score), 404 for an unknown target, 422 for bad input or too few snapshots.
- `POST /api/v1/canary/flagger`: Flagger's webhook contract: the targets in the payload's
  `metadata`; 200 when the canary passes, 412 when it fails (Flagger counts a non-2xx answer
  as a failed check), with the result as the body either way.

The API never fetches a URL (docs/api-server.md): targets come from the store, so there is no
webhook here (the command line's `--webhook` posts its own result).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from grprof import schema
from grprof.canary.config import CanaryConfig, CanaryError, load_config, with_overrides
from grprof.server.runtime import Runtime
from grprof.store.model import Store
from grprof.units import parse_duration

DEFAULT_WINDOW = "10m"


class CanaryRequest(BaseModel):
    """Which targets to compare, over which window."""

    model_config = ConfigDict(extra="forbid")

    baseline: Annotated[list[str], Field(min_length=1, description="target names, or labels as key=value")]
    canary: Annotated[list[str], Field(min_length=1, description="target names, or labels as key=value")]
    window: str = Field(DEFAULT_WINDOW, description="how far back to read snapshots: 10m, 1h30m, or seconds")
    marginal: Literal["pass", "fail"] | None = Field(
        None, description="what a marginal score counts as (default: the served config's canary.marginal)"
    )
    config: dict[str, Any] | None = Field(
        None,
        description="keys of the served canary settings to replace (thresholds, metrics, confidence, ...)",
    )


class FlaggerRequest(BaseModel):
    """Flagger's webhook payload; grprof reads `metadata` (baseline, canary: comma-separated
    names or key=value labels; window; marginal)."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    namespace: str = ""
    phase: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)


class _NotFound(CanaryError):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": None}, status_code=status)


def _labels(runtime: Runtime) -> dict[str, dict[str, str]]:
    return {name: dict(rt.target.labels) for name, rt in runtime.targets.items()}


Settings = Callable[[], CanaryConfig]
"""The running canary settings (`grprof serve`'s configuration's `canary:`)."""


def evaluate(
    store: Store, runtime: Runtime, req: CanaryRequest, settings: CanaryConfig | None = None
) -> schema.CanaryReport:
    """The judgement as `grprof.canary/v1` JSON (synchronous: run it in a worker thread), with
    `settings` (default: the shipped ones) and the request's `config` and `marginal` over them."""
    from grprof.canary.collect import from_store
    from grprof.canary.judge import judge

    try:
        window = parse_duration(req.window)
    except ValueError as e:
        raise CanaryError(f"window: {e}") from None
    if window <= 0:
        raise CanaryError("window: must be positive")
    overrides = dict(req.config or {})
    if req.marginal is not None:
        overrides["marginal"] = req.marginal
    config = with_overrides(settings if settings is not None else load_config(), overrides)
    try:
        got = from_store(store, req.baseline, req.canary, window=window, extra_labels=_labels(runtime))
    except CanaryError as e:
        if "no target" in str(e):
            raise _NotFound(str(e)) from None
        raise
    result = judge(got.baseline, got.canary, config)
    doc = result.to_json()
    doc["warnings"] = [*got.warnings, *doc["warnings"]]
    return doc


def canary_routes(store: Store, runtime: Runtime, settings: Settings | None = None) -> APIRouter:
    """The canary routes; `settings()` gives the canary settings in force (read per request)."""
    r = APIRouter(prefix="/api/v1", tags=["canary"], responses=schema.API_RESPONSES)

    async def run(req: CanaryRequest) -> JSONResponse | schema.CanaryReport:
        try:
            return await run_in_threadpool(evaluate, store, runtime, req, settings() if settings else None)
        except _NotFound as e:
            return _error(404, str(e))
        except CanaryError as e:
            return _error(422, str(e))

    responses: dict[int | str, dict[str, Any]] = {
        404: {"model": schema.ErrorResponse, "description": "an unknown target or label"},
        422: {"model": schema.ErrorResponse, "description": "bad input, or too few snapshots in the window"},
    }

    @r.post(
        "/canary",
        response_model=schema.CanaryReport,
        responses=responses,
        summary="Judge canary targets against baseline targets (Argo Rollouts web metric)",
    )
    async def canary_post(req: CanaryRequest) -> Any:
        return await run(req)

    @r.get(
        "/canary",
        response_model=schema.CanaryReport,
        responses=responses,
        summary="The same judgement, targets as query parameters",
    )
    async def canary_get(
        baseline: Annotated[list[str], Query(min_length=1, description="repeatable: name or key=value")],
        canary: Annotated[list[str], Query(min_length=1, description="repeatable: name or key=value")],
        window: str = DEFAULT_WINDOW,
        marginal: Literal["pass", "fail"] | None = None,
    ) -> Any:
        return await run(CanaryRequest(baseline=baseline, canary=canary, window=window, marginal=marginal))

    @r.post(
        "/canary/flagger",
        response_model=schema.CanaryReport,
        responses={
            412: {
                "model": schema.CanaryReport,
                "description": "the canary failed (or was marginal and it counts as a fail)",
            },
            **responses,
        },
        summary="Flagger webhook: 200 when the canary passes, 412 when it fails",
    )
    async def canary_flagger(payload: FlaggerRequest) -> Any:
        md = payload.metadata
        missing = [k for k in ("baseline", "canary") if not md.get(k, "").strip()]
        if missing:
            want = "comma-separated names or key=value"
            return _error(422, f"metadata: {' and '.join(missing)} missing ({want})")
        marginal = md.get("marginal")
        if marginal not in (None, "pass", "fail"):
            return _error(422, f"metadata.marginal: {marginal!r}: pass or fail")
        req = CanaryRequest(
            baseline=_split(md["baseline"]),
            canary=_split(md["canary"]),
            window=md.get("window", DEFAULT_WINDOW),
            marginal=marginal,
        )
        out = await run(req)
        if isinstance(out, JSONResponse):
            return out
        # Answered as is (the status carries the verdict): checked against the model here.
        checked = schema.validate(schema.CanaryReport, out)
        return JSONResponse(checked, status_code=200 if out["passed"] else 412)

    return r


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]
