"""The HTTP API of `grprof serve` (FastAPI; every route in docs/api-server.md).

    app = create_app(store, runtime, capture=daemon.capture, api_token=token)
    uvicorn.run(app, host="127.0.0.1", port=8080)

Reads come from the store (the federated view: every replica's targets) and, for this
replica's own targets, from the in-memory `Runtime`. Store calls are synchronous and run in
worker threads. The API never fetches a URL: a capture names a configured target and the
daemon's `capture(name)` does the fetching.
"""

import asyncio
import datetime as dt
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from grprof import __version__, schema
from grprof.canary.api import Settings as CanarySettings
from grprof.canary.api import canary_routes
from grprof.collect.model import redact_url
from grprof.server.metrics import FederationView, exposition
from grprof.server.runtime import CaptureError, Runtime, TargetRuntime, blocked_by_class
from grprof.server.ui import UISettings, install_ui
from grprof.store.model import SnapshotMeta, Store, StoredGroup, StoredTarget
from grprof.units import iso_utc

log = logging.getLogger("grprof.server")

Capture = Callable[[str], Awaitable[dict[str, Any]]]
FINDINGS_SCHEMA: Final = schema.FINDINGS_SCHEMA
# A database integer: a larger id would not reach the store as a 404 but fail inside it.
SnapshotId = Annotated[int, Path(ge=0, le=2**63 - 1, description="A snapshot id")]
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DESCRIPTION = """\
History and findings of the Go services `grprof serve` watches: targets, goroutine snapshots
(groups), diffs, leak findings, label search, on-demand debug=2 captures. `/metrics` serves
the Prometheus exposition. With an API token, send `Authorization: Bearer TOKEN`.
"""


# -- errors --------------------------------------------------------------------------------


class ApiError(Exception):
    """Answered as `{"error": message, "detail": detail}` with `status`."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def error_response(
    status: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.detail)


async def _http_error(_: Request, exc: Exception) -> Response:
    # Unknown routes (404), wrong methods (405): Starlette's, reshaped to ours.
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), None, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return error_response(422, "; ".join(_describe(e) for e in errors), _plain(errors))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error", type(exc).__name__)


def _describe(e: Mapping[str, Any]) -> str:
    """`query parameter 'verdict': Input should be 'leak' or 'suspect'`."""
    loc = [str(x) for x in e.get("loc", ())]
    where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'" if len(loc) > 1 else ".".join(loc) or "request"
    return f"{where}: {e.get('msg', 'invalid')}"


def _plain(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # pydantic's error dicts may hold exception objects under "ctx": keep the JSON-safe keys.
    return [{k: e[k] for k in ("loc", "msg", "type", "input") if k in e} for e in errors]


# -- auth ----------------------------------------------------------------------------------


class BearerAuth:
    """Every HTTP request but `open_paths` needs `Authorization: Bearer <token>`.

    Plain ASGI, so it covers routes FastAPI adds itself (`/docs`, `/openapi.json`) and
    unknown paths (no route list leaks to an unauthenticated client).
    """

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.token = token.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "unauthorized",
            "send the API token as 'Authorization: Bearer TOKEN'",
            {"WWW-Authenticate": 'Bearer realm="grprof"'},
        )
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, cred = bytes(value).partition(b" ")
                # Constant time: the comparison does not tell how much of a guess was right.
                return scheme.lower() == b"bearer" and hmac.compare_digest(cred.strip(), self.token)
        return False


# -- JSON ----------------------------------------------------------------------------------


def _utc(d: dt.datetime) -> dt.datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)


def meta_json(m: SnapshotMeta) -> schema.SnapshotMeta:
    return {
        "id": m.id,
        "target": m.target,
        "time": iso_utc(m.time),
        "format": m.format,
        "profile": m.profile,
        "total": m.total,
        "groups": m.groups,
        "truncated": m.truncated,
        "has_raw": m.has_raw,
        "downsampled": m.downsampled,
    }


def group_json(m: SnapshotMeta, g: StoredGroup) -> schema.StoredGroup:
    """A stored group; `state_inferred`: its snapshot's format (debug=0, debug=1) carries no
    goroutine states, so grprof inferred them from the stacks."""
    return g.to_json(state_inferred=m.format in ("debug=0", "debug=1"))


def target_json(t: StoredTarget, rt: TargetRuntime | None) -> schema.Target:
    return {
        "name": t.name,
        "url": redact_url(t.url),
        "labels": dict(t.labels),
        "shard": t.shard,
        "up": t.up,
        "last_scrape": iso_utc(t.last_scrape),
        "last_success": iso_utc(t.last_success),
        "last_error": t.last_error,
        "goroutines": t.goroutines,
        "open_findings": t.open_findings,
        "removed": t.removed,
        "local": rt is not None,
        "growth_per_minute": None if rt is None else rt.growth_per_minute,
        "leak_profile": None if rt is None else rt.leak_profile,
        "blocked": None if rt is None or rt.goroutines is None else dict(rt.blocked),
        "cluster": None,
    }


@dataclass(slots=True)
class DiffRow:
    track: str
    a: list[StoredGroup]
    b: list[StoredGroup]

    @property
    def delta(self) -> int:
        return _count(self.b) - _count(self.a)

    def to_json(self) -> schema.DiffRow:
        rep = max(self.b or self.a, key=lambda g: (g.count, g.signature))
        site = schema.frame_or_none(rep.site)
        na, nb = _count(self.a), _count(self.b)
        status: Literal["new", "gone", "changed", "same"] = (
            "new" if not self.a else "gone" if not self.b else "changed" if na != nb else "same"
        )
        return {
            "track": self.track,
            "signature": rep.signature,
            "signatures": sorted({g.signature for g in (*self.a, *self.b)}),
            "state": rep.state,
            "site": site,
            "a": na,
            "b": nb,
            "delta": nb - na,
            "status": status,
        }


def _count(groups: Sequence[StoredGroup]) -> int:
    return sum(g.count for g in groups)


def diff_groups(a: Sequence[StoredGroup], b: Sequence[StoredGroup]) -> list[DiffRow]:
    """Groups matched by track (across formats), by signature where a store kept no track."""
    rows: dict[str, DiffRow] = {}
    for side, groups in (("a", a), ("b", b)):
        for g in groups:
            key = g.track or g.signature
            row = rows.setdefault(key, DiffRow(key, [], []))
            (row.a if side == "a" else row.b).append(g)
    return sorted(rows.values(), key=lambda r: (-abs(r.delta), r.track))


def parse_label(text: str) -> tuple[str, str]:
    """`key:value` or `key=value`, split at the first `:` or `=` (the value may hold either)."""
    cut = min((i for i in (text.find(":"), text.find("=")) if i >= 0), default=-1)
    if cut <= 0:
        raise ApiError(
            422, "label must be KEY:VALUE or KEY=VALUE (or use the key= and value= parameters)", text
        )
    return text[:cut], text[cut + 1 :]


# -- the app -------------------------------------------------------------------------------


def create_app(
    store: Store,
    runtime: Runtime,
    *,
    capture: Capture | None = None,
    api_token: str | None = None,
    max_page: int = 1000,
    federation: FederationView | None = None,
    canary: CanarySettings | None = None,
    trace_url: Callable[[], str | None] | None = None,
) -> FastAPI:
    """`canary()`: the canary settings in force (the served configuration's `canary:`).
    `federation`: the members whose last-known targets and findings join this instance's,
    tagged with their `cluster`, and `GET /api/v1/federation` (docs/serve.md#federation)."""
    # /docs and /redoc come from `_docs_routes` (packaged assets, no CDN).
    app = FastAPI(title="grprof", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    if api_token:
        app.add_middleware(BearerAuth, token=api_token)
        _document_bearer(app)
    _docs_routes(app)
    app.include_router(_system_routes(runtime))
    app.include_router(_read_routes(store, runtime, max_page, federation))
    app.include_router(_federation_routes(federation))
    app.include_router(_capture_routes(store, runtime, capture))
    app.include_router(canary_routes(store, runtime, canary))
    ui = UISettings(api_token=api_token, trace_url=trace_url, capture=capture, federation=federation)
    install_ui(app, store, runtime, ui)
    return app


DOCS_ASSETS = "/docs/assets"
REDOC_ASSETS = "/redoc/assets"


def _docs_routes(app: FastAPI) -> None:
    """Swagger UI at `/docs`, its JavaScript and CSS served from the `swagger-ui-bundle` package,
    and ReDoc at `/redoc` from the copy vendored in `grprof/data/redoc` (scripts/vendor-redoc.sh).

    Works without Internet access (an air-gapped cluster, a laptop on a plane), and the browser
    fetches nothing from a third party. Behind `BearerAuth` like `/docs` itself.
    """
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    redoc = resources.files("grprof") / "data" / "redoc"
    app.mount(REDOC_ASSETS, StaticFiles(directory=str(redoc)), name="redoc-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title="grprof API",
            redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="grprof API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def _document_bearer(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document (`/healthz` and `/metrics` stay open)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"bearer": []}]
        for path in OPEN_PATHS:
            for op in schema.get("paths", {}).get(path, {}).values():
                op["security"] = []
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _system_routes(runtime: Runtime) -> APIRouter:
    r = APIRouter(tags=["system"])
    started = time.monotonic()

    @r.get(
        "/healthz",
        summary="Liveness: always 200 while the process serves",
        response_model=schema.HealthResponse,
    )
    async def healthz() -> schema.HealthResponse:
        return {
            "status": "ok",
            "version": __version__,
            "started": iso_utc(runtime.started),
            "uptime_seconds": round(time.monotonic() - started, 3),
            "targets": len(runtime.targets),
            "shard": runtime.shard_label,
        }

    @r.get("/metrics", summary="Prometheus text exposition (docs/metrics.md)", response_class=Response)
    async def metrics() -> Response:
        # In a worker thread: 1,000 targets take most of a second to render, and the event loop
        # is the daemon's too. The collector copies what it iterates; the daemon replaces a
        # target's lists and dicts rather than changing them in place.
        body = await run_in_threadpool(exposition, runtime.metrics.registry)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    return r


def _read_routes(
    store: Store, runtime: Runtime, max_page: int, federation: FederationView | None = None
) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["history"], responses=schema.API_RESPONSES)
    Limit = Annotated[int, Query(ge=1, le=max_page, description=f"At most {max_page}.")]
    Cluster = Annotated[
        str | None,
        Query(description="only this federation member's (docs/serve.md#federation)"),
    ]

    async def known_target(name: str) -> None:
        if name in runtime.targets:
            return
        names = {t.name for t in await run_in_threadpool(store.targets)}
        if name not in names:
            raise ApiError(404, f"unknown target {name!r}")

    async def load_snapshot(sid: int) -> tuple[SnapshotMeta, list[StoredGroup]]:
        got = await run_in_threadpool(store.snapshot, sid)
        if got is None:
            raise ApiError(404, f"no snapshot {sid}")
        return got

    @r.get(
        "/targets",
        summary="Every target of every replica, with its state",
        response_model=schema.TargetsResponse,
    )
    async def targets(cluster: Cluster = None) -> schema.TargetsResponse:
        items: list[schema.Target] = []
        if cluster is None:
            stored = runtime.with_local(await run_in_threadpool(store.targets))
            local = dict(runtime.targets)
            items = [target_json(t, local.get(t.name)) for t in sorted(stored.values(), key=lambda t: t.name)]
        if federation is not None:  # the members' last-known, after this instance's own
            items += [t for t in federation.targets() if cluster is None or t["cluster"] == cluster]
        return {"targets": items}

    @r.get(
        "/targets/{name:path}/snapshots",
        summary="A target's snapshots, newest first",
        response_model=schema.SnapshotsResponse,
    )
    async def snapshots(
        name: str, limit: Limit = 100, before: dt.datetime | None = None
    ) -> schema.SnapshotsResponse:
        await known_target(name)
        metas = await run_in_threadpool(store.snapshots, name, limit=limit, before=before and _utc(before))
        more = iso_utc(metas[-1].time) if len(metas) == limit else None
        return {"target": name, "snapshots": [meta_json(m) for m in metas], "next_before": more}

    @r.get(
        "/snapshots/{snapshot_id}",
        summary="A snapshot's metadata and groups, largest first",
        response_model=schema.SnapshotResponse,
    )
    async def snapshot(snapshot_id: SnapshotId) -> schema.SnapshotResponse:
        meta, groups = await load_snapshot(snapshot_id)
        ordered = sorted(groups, key=lambda g: (-g.count, g.signature))
        return {
            "snapshot": meta_json(meta),
            "blocked": dict(blocked_by_class(groups)),
            "groups": [group_json(meta, g) for g in ordered],
        }

    @r.get(
        "/snapshots/{a}/diff/{b}",
        summary="Group counts from snapshot a to snapshot b",
        response_model=schema.SnapshotDiffResponse,
    )
    async def diff(a: SnapshotId, b: SnapshotId) -> schema.SnapshotDiffResponse:
        (ma, ga), (mb, gb) = await load_snapshot(a), await load_snapshot(b)
        rows = diff_groups(ga, gb)
        same = ma.target == mb.target
        return {
            "a": meta_json(ma),
            "b": meta_json(mb),
            "same_target": same,
            "warning": None if same else f"snapshots of different targets ({ma.target!r}, {mb.target!r})",
            "totals": {
                "a": ma.total,
                "b": mb.total,
                "delta": mb.total - ma.total,
                "minutes": round((_utc(mb.time) - _utc(ma.time)).total_seconds() / 60, 3),
                "new_groups": sum(1 for row in rows if not row.a),
                "gone_groups": sum(1 for row in rows if not row.b),
            },
            "groups": [row.to_json() for row in rows],
        }

    @r.get(
        "/findings",
        summary="Leak findings with their lifecycle (the `grprof analyze --json` schema)",
        response_model=schema.FindingsResponse,
    )
    async def findings(
        target: str | None = None,
        verdict: Literal["leak", "suspect", "inconclusive"] | None = None,
        category: str | None = None,
        state: Literal["new", "ongoing", "resolved"] | None = None,
        owner: Annotated[
            str | None,
            Query(description="only this owner's findings (docs/owners.md); `unknown`: no owner found"),
        ] = None,
        cluster: Cluster = None,
    ) -> schema.FindingsResponse:
        items: list[schema.StoredFinding] = []
        if cluster is None:
            found = await run_in_threadpool(
                store.findings, target=target, verdict=verdict, category=category, state=state
            )
            if owner is not None:
                # Findings stored before owners existed have none: `unknown`, never a guess.
                found = [f for f in found if f.finding.get("owner", "unknown") == owner]
            items = [{**f.to_json(), "cluster": None} for f in found]
        if federation is not None:  # the members' open findings, as they last answered
            want = {"target": target, "verdict": verdict, "category": category, "lifecycle": state}
            for f in federation.findings():
                if cluster is not None and f.get("cluster") != cluster:
                    continue
                if owner is not None and f.get("owner", "unknown") != owner:
                    continue
                if all(v is None or f.get(k) == v for k, v in want.items()):
                    items.append(f)
        return {"schema": FINDINGS_SCHEMA, "findings": items}

    @r.get(
        "/search",
        summary="Groups whose goroutines carry a pprof label value, newest first",
        response_model=schema.SearchResponse,
    )
    async def search(
        label: Annotated[
            str | None, Query(description="KEY:VALUE or KEY=VALUE, split at the first : or =")
        ] = None,
        key: Annotated[str | None, Query(description="The label key, verbatim (with value=)")] = None,
        value: Annotated[str | None, Query(description="The label value, verbatim (with key=)")] = None,
        limit: Limit = 100,
    ) -> schema.SearchResponse:
        if key is not None and value is not None:
            k, v = key, value
        elif label is not None and key is None and value is None:
            k, v = parse_label(label)
        else:
            raise ApiError(422, "give label=KEY:VALUE, or both key= and value=")
        hits = await run_in_threadpool(store.search_labels, k, v, limit=limit)
        results: list[schema.SearchResult] = [
            {
                "target": meta.target,
                "snapshot": meta_json(meta),
                "goroutines": g.labels.get(k, {}).get(v, 0),
                "group": group_json(meta, g),
            }
            for meta, g in hits
        ]
        return {"key": k, "value": v, "results": results}

    @r.get(
        "/snapshots/{snapshot_id}/raw",
        summary="The raw profile bytes as fetched, when kept",
        response_class=Response,
        responses={
            200: {
                "description": "debug=1/2 text, or gzipped debug=0 bytes",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def raw(snapshot_id: SnapshotId) -> Response:
        await load_snapshot(snapshot_id)  # 404 for an unknown id
        data = await run_in_threadpool(store.raw, snapshot_id)
        if data is None:
            raise ApiError(
                404, f"snapshot {snapshot_id} has no raw profile (not kept, or dropped by retention)"
            )
        gz = data[:2] == b"\x1f\x8b"
        return Response(data, media_type="application/octet-stream" if gz else "text/plain; charset=utf-8")

    return r


def _federation_routes(federation: FederationView | None) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["federation"], responses=schema.API_RESPONSES)

    @r.get(
        "/federation",
        summary="The federation members this instance pulls: state, age of their data, last error",
        response_model=schema.FederationResponse,
    )
    async def members() -> schema.FederationResponse:
        if federation is None:
            raise ApiError(404, "this instance federates no members (no `federate:` in its configuration)")
        return federation.status()

    return r


def _capture_routes(store: Store, runtime: Runtime, capture: Capture | None) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["capture"], responses=schema.API_RESPONSES)
    locks: dict[str, asyncio.Lock] = {}

    @r.post(
        "/targets/{name:path}/capture",
        status_code=201,
        summary="Capture a debug=2 dump of a configured target now, and store it",
        response_model=schema.CaptureResponse,
        responses={
            404: {"model": schema.ErrorResponse, "description": "not a target of this replica"},
            409: {"model": schema.ErrorResponse, "description": "refused, or a capture already running"},
            501: {"model": schema.ErrorResponse, "description": "capture not enabled"},
            502: {"model": schema.ErrorResponse, "description": "the target failed"},
        },
    )
    async def capture_now(name: str) -> dict[str, Any]:
        if capture is None:
            raise ApiError(501, "on-demand capture is not enabled on this server")
        if name not in runtime.targets:
            owners = {t.name: t.shard for t in await run_in_threadpool(store.targets)}
            if name in owners:
                raise ApiError(404, f"target {name!r} is scraped by another replica", {"shard": owners[name]})
            raise ApiError(404, f"unknown target {name!r}")
        lock = locks.setdefault(name, asyncio.Lock())
        if lock.locked():  # debug=2 stops the target's world: one at a time
            raise ApiError(409, f"a capture of {name!r} is already running")
        async with lock:
            try:
                result = await capture(name)
            except CaptureError as e:
                raise ApiError(e.status, e.reason, {"target": name}) from e
            except KeyError as e:  # the daemon no longer has it (a reload raced us)
                raise ApiError(404, f"unknown target {name!r}") from e
        status = result.get("status", "ok")
        if status != "ok":  # the daemon reports a failed scrape as a ScrapeStatus
            code = 409 if status == "refused" else 502
            raise ApiError(code, str(result.get("error") or status), {"target": name, **result})
        return {"target": name, **result}

    return r


__all__ = ["FINDINGS_SCHEMA", "ApiError", "BearerAuth", "Capture", "create_app", "diff_groups", "parse_label"]
