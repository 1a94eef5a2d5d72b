"""The web UI of `grprof serve`: server-rendered HTML pages (docs/ui.md).

    install_ui(app, store, runtime, UISettings(api_token=..., ...))   # in create_app

Pages are rendered from the auto-escaping templates of the HTML report
(`grprof/data/templates/ui_*.j2`, the environment of `grprof.report._templates`); the little
JavaScript they use is served as files (`/ui/static/...`), so the Content-Security-Policy is
`script-src 'self'` with no inline script. Nothing is fetched from a CDN.

The UI is its own small ASGI app. `UiDispatch`, the outermost middleware of the API app,
hands it the UI's paths before the API's bearer check: the UI authenticates with a login
form and a session cookie (HttpOnly, SameSite=Strict) signed with the API token, and
answers with HTML pages (a redirect to `/login`) instead of JSON errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.parser
import email.policy
import hashlib
import hmac
import html
import logging
import os
import re
import secrets
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from grprof import __version__, schema
from grprof.aggregate import StackNode
from grprof.collect.model import redact_url
from grprof.diff import count_changes
from grprof.report._templates import environment
from grprof.report.flame import Flagged, render_svg
from grprof.server.metrics import FederationView
from grprof.server.runtime import CaptureError, Runtime
from grprof.server.ui.charts import Chart, Point, line_chart, sparkline
from grprof.server.ui.diffflame import CHANGES, render_diff_svg
from grprof.server.ui.traces import trace_link
from grprof.store.model import SnapshotMeta, Store, StoredFinding, StoredGroup, StoredTarget

log = logging.getLogger("grprof.server.ui")

SESSION_COOKIE = "grprof_session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
STATIC = "/ui/static"
UI_PREFIXES = ("/targets/", "/findings/", "/snapshots/", "/ui/")
UI_EXACT = frozenset({"/", "/login", "/logout", "/paste", "/diff", "/search"})
OPEN_UI = frozenset({"/login"})
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
SPARK_SECONDS = 6 * 3600
SPARK_BUCKETS = 90
FLEET_PAGE = 100
MAX_FLEET_PAGE = 1000
RANGE_POINTS = 3000
MAX_GROUPS = 500
PICKER = 60
SEARCH_LIMIT = 500
"""Label rows read per search (newest first): the groups of the latest snapshots carrying it."""
MAX_PASTE = 64 << 20
OPEN = ("new", "ongoing")
WRONG_TOKEN = "wrong token"
NO_TOKEN = "this server has no API token: no login needed"
VERDICTS = ("leak", "suspect", "inconclusive")


def is_ui_path(path: str) -> bool:
    return path in UI_EXACT or path.startswith(UI_PREFIXES)


# -- auth and CSRF ------------------------------------------------------------------------


class Sessions:
    """Stateless signed sessions: `nonce.mac`, the MAC keyed by the API token (or, without
    one, by a per-process secret: the session then only carries the CSRF token).

    A session cookie is valid while the token is the same; the CSRF token of a form is another
    MAC of the same nonce, so it is per session and checked against the cookie on POST."""

    def __init__(self, api_token: str | None) -> None:
        self.required = bool(api_token)
        self.token = (api_token or "").encode()
        self.key = hashlib.sha256(b"grprof-ui:" + self.token).digest() if api_token else os.urandom(32)

    def _mac(self, purpose: str, nonce: str) -> str:
        return hmac.new(self.key, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()

    def new(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._mac('session', nonce)}"

    def nonce(self, cookie: str | None) -> str | None:
        """The session's nonce when `cookie` is a valid session, else None."""
        if not cookie or "." not in cookie:
            return None
        nonce, _, mac = cookie.partition(".")
        return nonce if hmac.compare_digest(mac, self._mac("session", nonce)) else None

    def csrf(self, cookie: str | None) -> str:
        nonce = self.nonce(cookie)
        return "" if nonce is None else self._mac("csrf", nonce)

    def check_csrf(self, cookie: str | None, sent: str) -> bool:
        expected = self.csrf(cookie)
        return bool(expected) and hmac.compare_digest(expected, sent)

    def check_token(self, sent: str) -> bool:
        return self.required and hmac.compare_digest(sent.strip().encode(), self.token)


def set_session(response: Response, value: str, request: Request) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )


def _cookie(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in bytes(value).decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == SESSION_COOKIE:
                    return v
    return None


class UiAuth:
    """With an API token, every UI page but `/login` and the static files needs a valid
    session cookie: a GET without one is redirected to the login form, anything else is 401."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.sessions.required
            or path in OPEN_UI
            or path.startswith(STATIC + "/")
            or self.sessions.nonce(_cookie(scope)) is not None
        ):
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD"):
            query = scope.get("query_string", b"").decode("latin-1")
            raw = scope.get("raw_path")
            here = raw.decode("latin-1") if isinstance(raw, bytes) else path
            target = here + (f"?{query}" if query else "")
            response: Response = RedirectResponse(
                "/login?" + urllib.parse.urlencode({"next": target}), status_code=303
            )
        else:
            response = HTMLResponse("<!doctype html><title>unauthorized</title><p>Log in first.</p>", 401)
        response.headers["Content-Security-Policy"] = CSP
        await response(scope, receive, send)


class UiDispatch:
    """Outermost middleware of the API app: the UI's paths go to the UI app (its own auth and
    HTML errors), everything else to the API (bearer auth, JSON)."""

    def __init__(self, app: ASGIApp, ui: ASGIApp) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_ui_path(scope.get("path", "")):
            await self.ui(scope, receive, send)
        else:
            await self.app(scope, receive, send)


Capture = Callable[[str], Awaitable[dict[str, Any]]]
"""The daemon's on-demand debug=2 capture (`grprof.server.api.Capture`, the same callable)."""
TraceUrl = Callable[[], str | None]
"""The serve config's `ui.trace_url` in force (a reload changes it), read per page."""


@dataclass(frozen=True, slots=True)
class UISettings:
    """What the UI is served with, fixed for the app's life (`trace_url` reads the setting in
    force at each page: a reload changes it)."""

    api_token: str | None = None
    """Signs the session cookies; None: no login."""
    trace_url: TraceUrl | None = None
    capture: Capture | None = None
    """None: no Capture button (the server takes no on-demand captures)."""
    federation: FederationView | None = None
    """A global instance's members, whose targets join the fleet page."""


def install_ui(app: FastAPI, store: Store, runtime: Runtime, settings: UISettings | None = None) -> None:
    """Serve the UI from `app` (call in `create_app`, after the API's own middleware)."""
    app.add_middleware(UiDispatch, ui=ui_app(store, runtime, settings))


def ui_app(store: Store, runtime: Runtime, settings: UISettings | None = None) -> FastAPI:
    settings = settings or UISettings()
    sessions = Sessions(settings.api_token)
    ui = FastAPI(title="grprof UI", docs_url=None, redoc_url=None, openapi_url=None)
    ui.mount(STATIC, StaticFiles(directory=str(resources.files("grprof") / "data" / "ui")), name="ui-static")
    ui.include_router(ui_routes(store, runtime, settings, sessions=sessions))
    ui.add_exception_handler(StarletteHTTPException, _http_error)
    ui.add_exception_handler(RequestValidationError, _validation_error)
    ui.add_exception_handler(Exception, _internal_error)
    ui.add_middleware(UiAuth, sessions=sessions)
    return ui


# -- rendering ----------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    return environment()


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _env().get_template(template).render(version=__version__, static=STATIC, **context)
    resp = HTMLResponse(body, status_code=status)
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return page(
        "ui_error.html.j2",
        exc.status_code,
        title=f"{exc.status_code}",
        message=str(exc.detail),
        auth=False,
        csrf="",
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(
        ".".join(str(x) for x in e.get("loc", ())) + ": " + str(e.get("msg")) for e in exc.errors()
    )
    return page("ui_error.html.j2", 422, title="422", message=f"bad request: {where}", auth=False, csrf="")


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("UI %s %s failed", request.method, request.url.path, exc_info=exc)
    return page("ui_error.html.j2", 500, title="500", message="internal error", auth=False, csrf="")


def _ago(t: dt.datetime | None, now: dt.datetime) -> str:
    if t is None:
        return "never"
    s = (now - _utc(t)).total_seconds()
    if s < 90:
        return f"{max(0, s):.0f}s ago"
    if s < 5400:
        return f"{s / 60:.0f}m ago"
    if s < 2 * 86400:
        return f"{s / 3600:.0f}h ago"
    return f"{s / 86400:.0f}d ago"


def _utc(d: dt.datetime) -> dt.datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)


def _iso(d: dt.datetime | None) -> str:
    return "" if d is None else _utc(d).strftime("%Y-%m-%d %H:%M:%SZ")


def q(path: str) -> str:
    """A path segment (a target name may hold `/`, `?`, `#`)."""
    return urllib.parse.quote(path, safe="")


# -- views --------------------------------------------------------------------------------


@dataclass
class TargetRow:
    name: str
    href: str
    url: str
    labels: list[tuple[str, str]]
    service: str
    shard: str
    up: bool
    removed: bool
    goroutines: int | None
    spark: Chart
    findings: dict[str, int]
    categories: list[tuple[str, int]]
    last_scrape: str
    last_success: str
    last_error: str
    lag: float | None
    open_findings: int = 0
    cluster: str = ""
    """The federation member the target is in (docs/serve.md#federation); empty: this instance's."""


@dataclass
class ServiceTotal:
    service: str
    targets: int = 0
    up: int = 0
    goroutines: int = 0
    findings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))


@dataclass
class GroupRow:
    count: int
    state: str
    states: list[tuple[str, int]]
    wait: str
    site: str
    site_file: str
    created_by: str
    labels: list[tuple[str, str]]
    finding: StoredFinding | None
    search: str
    frames: list[str]


@dataclass
class DiffRow:
    """One track of the diff page: its goroutines in A and B and what it is."""

    status: str
    """`grown`, `shrunk`, `new`, `gone` or `same` (`grprof.diff.status_of`'s, `vanished` named `gone`)."""
    before: int
    after: int
    state: str
    site: str
    site_file: str
    created_by: str
    finding: StoredFinding | None
    frames: list[str]

    @property
    def delta(self) -> str:
        return f"{self.after - self.before:+,}"


@dataclass
class SearchHit:
    """A group carrying the searched label value, in its target's newest snapshot with it."""

    target: str
    href: str
    """The target page at that snapshot, its groups filtered by the value."""
    snapshot: int
    time: str
    goroutines: int
    """Of the group's goroutines, those carrying the value."""
    keys: str
    group: GroupRow


@dataclass
class SearchTarget:
    name: str
    href: str
    time: str
    groups: int = 0
    goroutines: int = 0


def _search_terms(text: str) -> tuple[str | None, str]:
    """`key=value` (split at the first `=`) or a bare value under any key; `=value` for a bare
    value that holds a `=` itself."""
    key, sep, value = text.partition("=")
    if not sep:
        return None, text
    return (key.strip() or None), value.strip()


DIFF_SECTIONS = ("grown", "new", "shrunk", "gone")
"""The diff page's tables, in order (unchanged groups are only counted)."""


def _diff_rows(
    a: Sequence[StoredGroup], b: Sequence[StoredGroup], findings: Mapping[str, StoredFinding]
) -> list[DiffRow]:
    """The groups of two stored snapshots matched by track id, as `grprof diff` matches them
    (`grprof.diff.count_changes`: the same statuses, the same order)."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for side, groups in ((before, a), (after, b)):
        for g in groups:
            side[g.track or g.signature] += g.count
    # A track's stack as B has it (its largest group there), else as A had it.
    rep: dict[str, StoredGroup] = {}
    for groups in (a, b):
        for g in sorted(groups, key=lambda g: (g.count, g.signature)):
            rep[g.track or g.signature] = g
    rows: list[DiffRow] = []
    for key, status, nb, na in count_changes(before, after):
        row = _group_row(rep[key], findings)
        rows.append(
            DiffRow(
                "gone" if status == "vanished" else status,
                nb,
                na,
                row.state,
                row.site,
                row.site_file,
                row.created_by,
                row.finding,
                row.frames,
            )
        )
    return rows


def _labels(labels: Mapping[str, Mapping[str, int]], top: int = 3) -> list[tuple[str, str]]:
    out = []
    for k, values in labels.items():
        ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
        text = ", ".join(f"{v} ({n})" for v, n in ordered[:top])
        if len(ordered) > top:
            text += f", +{len(ordered) - top} more"
        out.append((k, text))
    return out


@dataclass(frozen=True, slots=True)
class LabelValue:
    value: str
    count: int
    link: str | None
    """A trace link (`grprof.server.ui.traces`), for a trace or span id key."""


def _label_values(
    labels: Mapping[str, Mapping[str, int]], trace_url: str | None, top: int = 5
) -> list[tuple[str, list[LabelValue], int]]:
    """(key, its `top` values by goroutines, how many more) of the finding page."""
    out = []
    for k, values in labels.items():
        ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
        vals = [LabelValue(v, int(n), trace_link(trace_url, k, v)) for v, n in ordered[:top]]
        out.append((k, vals, max(0, len(ordered) - top)))
    return out


def _group_row(g: StoredGroup, findings: Mapping[str, StoredFinding]) -> GroupRow:
    site = g.site
    labels = _labels(g.labels)
    site_text = site.function if site else (g.frames[0].function if g.frames else "?")
    site_file = f"{site.file}:{site.line}" if site else ""
    created = f"{g.created_by.function} {g.created_by.file}:{g.created_by.line}" if g.created_by else ""
    search = " ".join([site_text, site_file, created, g.state, *(f"{k}={v}" for k, v in labels)]).lower()
    return GroupRow(
        g.count,
        g.state,
        sorted(g.states.items(), key=lambda kv: -kv[1]),
        "<1 min" if not g.max_wait_minutes else f"{g.max_wait_minutes} min",
        site_text,
        site_file,
        created,
        labels,
        findings.get(g.track),
        search,
        [f"{f.function} {f.file}:{f.line}" for f in g.frames],
    )


def _tree(groups: Sequence[StoredGroup]) -> StackNode:
    """The flame graph's stack tree of stored groups (as `grprof.aggregate.stack_tree`)."""
    root = StackNode("all")
    for g in groups:
        root.count += g.count
        node = root
        for f in reversed(g.frames):
            nxt = node.children.get(f.function)
            if nxt is None:
                nxt = node.children[f.function] = StackNode(f.function, 0, 0, f, {})
            nxt.count += g.count
            node = nxt
        node.self_count += g.count
    return root


def _finding_order(f: StoredFinding) -> tuple[int, str]:
    verdict = str(f.finding.get("verdict"))
    return (VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS), f.id)


def _fleet_sort(rows: list[TargetRow], key: str, desc: bool) -> list[TargetRow]:
    keys: dict[str, Any] = {
        "name": lambda r: r.name,
        "goroutines": lambda r: r.goroutines or 0,
        "findings": lambda r: (r.findings.get("leak", 0), r.findings.get("suspect", 0), r.open_findings),
        "status": lambda r: (r.up, r.name),
        "service": lambda r: (r.service, r.name),
    }
    return sorted(rows, key=keys.get(key, keys["name"]), reverse=desc)


def _match_label(labels: Mapping[str, str], flt: str) -> bool:
    cut = min((i for i in (flt.find(":"), flt.find("=")) if i >= 0), default=-1)
    if cut <= 0:
        needle = flt.lower()
        return any(needle in k.lower() or needle in v.lower() for k, v in labels.items())
    k, v = flt[:cut], flt[cut + 1 :]
    return labels.get(k) == v


def _federated_rows(
    federation: FederationView, name_q: str, label_q: str, now: dt.datetime
) -> list[TargetRow]:
    """The members' last-known targets as fleet rows, tagged with their cluster and linked to
    the member's own UI (their history and findings stay there)."""
    urls = {m["cluster"]: m["url"].rstrip("/") for m in federation.status()["members"]}
    found: dict[tuple[str, str], list[schema.StoredFinding]] = defaultdict(list)
    for f in federation.findings():
        found[f.get("cluster") or "", f["target"]].append(f)
    rows = []
    for t in federation.targets():
        cluster = t["cluster"] or ""
        if name_q and name_q.lower() not in t["name"].lower():
            continue
        if label_q and not _match_label(t["labels"], label_q):
            continue
        fs = found.get((cluster, t["name"]), [])
        verdicts = Counter(str(f["verdict"]) for f in fs)
        cats = Counter(str(f["category"]) for f in fs)
        base = urls.get(cluster, "")
        rows.append(
            TargetRow(
                t["name"],
                f"{base}/targets/{q(t['name'])}" if base.startswith(("http://", "https://")) else "",
                t["url"],
                sorted(t["labels"].items()),
                t["labels"].get("service", ""),
                t["shard"] or "",
                bool(t["up"]),
                t["removed"],
                t["goroutines"],
                sparkline([]),
                {v: verdicts.get(v, 0) for v in VERDICTS},
                sorted(cats.items(), key=lambda kv: -kv[1]),
                _ago(_parse_iso(t["last_scrape"]), now),
                _ago(_parse_iso(t["last_success"]), now),
                t["last_error"] or "",
                None,
                len(fs),
                cluster,
            )
        )
    return rows


def _parse_iso(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def ui_routes(
    store: Store, runtime: Runtime, settings: UISettings | None = None, *, sessions: Sessions | None = None
) -> APIRouter:
    settings = settings or UISettings()
    sessions = sessions or Sessions(settings.api_token)
    federation, capture, trace_url = settings.federation, settings.capture, settings.trace_url
    capture_locks: dict[str, asyncio.Lock] = {}
    r = APIRouter(include_in_schema=False)
    env = _env()
    flame_js = env.get_template("report.js.j2").render()
    report_css = env.get_template("report.css.j2").render()

    def ctx(request: Request) -> dict[str, Any]:
        cookie = request.cookies.get(SESSION_COOKIE)
        return {"auth": sessions.required, "csrf": sessions.csrf(cookie)}

    def all_targets() -> dict[str, StoredTarget]:
        return runtime.with_local(store.targets())

    # -- static assets rendered from the report's templates ---------------------------

    @r.get("/ui/flame.js")
    async def flame_script() -> Response:
        return Response(
            flame_js,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    @r.get("/ui/report.css")
    async def report_style() -> Response:
        return Response(
            report_css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    # -- fleet ------------------------------------------------------------------------

    def fleet_data(
        name_q: str, label_q: str, sort: str, desc: bool, page_no: int, per: int
    ) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        targets = all_targets()
        open_findings = [f for f in store.findings() if f.state in OPEN]
        by_target: dict[str, list[StoredFinding]] = defaultdict(list)
        for f in open_findings:
            by_target[f.target].append(f)
        rows: list[TargetRow] = []
        since = now - dt.timedelta(seconds=SPARK_SECONDS)
        for t in targets.values():
            if name_q and name_q.lower() not in t.name.lower():
                continue
            if label_q and not _match_label(t.labels, label_q):
                continue
            fs = by_target.get(t.name, [])
            verdicts = Counter(str(f.finding.get("verdict", "")) for f in fs)
            cats = Counter(str(f.finding.get("category", "")) for f in fs)
            rt = runtime.targets.get(t.name)
            rows.append(
                TargetRow(
                    t.name,
                    "/targets/" + q(t.name),
                    redact_url(t.url),
                    sorted(t.labels.items()),
                    t.labels.get("service", ""),
                    t.shard or "",
                    t.up,
                    t.removed,
                    t.goroutines,
                    sparkline([]),
                    {v: verdicts.get(v, 0) for v in VERDICTS},
                    sorted(cats.items(), key=lambda kv: -kv[1]),
                    _ago(t.last_scrape, now),
                    _ago(t.last_success, now),
                    t.last_error,
                    None if rt is None else rt.scrape_lag,
                    len(fs),
                )
            )
        if federation is not None:
            rows += _federated_rows(federation, name_q, label_q, now)
        rows = _fleet_sort(rows, sort, desc)
        services: dict[str, ServiceTotal] = {}
        for row in rows:
            if not row.service:
                continue
            s = services.setdefault(row.service, ServiceTotal(row.service))
            s.targets += 1
            s.up += row.up
            s.goroutines += row.goroutines or 0
            for v in VERDICTS:
                s.findings[v] += row.findings.get(v, 0)
        matched = len(rows)
        pages = max(1, -(-matched // per))
        page_no = min(max(1, page_no), pages)
        shown = rows[(page_no - 1) * per : page_no * per]
        # Sparklines only for the rows shown, all of them in one query.
        points = store.goroutine_series(
            [r.name for r in shown if not r.cluster], since, step=SPARK_SECONDS / SPARK_BUCKETS
        )
        for row in shown:
            if not row.cluster:  # a member's history stays with the member
                row.spark = sparkline([Point(t, n) for t, n in points.get(row.name, [])])
        return {
            "rows": shown,
            "matched": matched,
            "page_no": page_no,
            "pages": pages,
            "first": (page_no - 1) * per + 1 if shown else 0,
            "services": sorted(services.values(), key=lambda s: s.service),
            "total": len(targets),
        }

    @r.get("/", response_class=HTMLResponse)
    async def fleet(
        request: Request,
        name: str = "",
        label: str = "",
        sort: str = "name",
        order: str = "",
        page_no: int = Query(1, alias="page"),
        per: int = FLEET_PAGE,
    ) -> Response:
        desc = order == "desc" or (not order and sort in ("goroutines", "findings"))
        per = min(max(per, 10), MAX_FLEET_PAGE)
        data = await run_in_threadpool(fleet_data, name, label, sort, desc, page_no, per)

        def link(**over: Any) -> str:
            base: dict[str, Any] = {"name": name, "label": label, "sort": sort, "order": order}
            if per != FLEET_PAGE:
                base["per"] = per
            base.update(over)
            return "/?" + urllib.parse.urlencode({k: v for k, v in base.items() if v not in ("", None, 1)})

        sort_links = {}
        for key in ("name", "service", "status", "goroutines", "findings"):
            flip = "asc" if (key == sort and desc) else "desc" if key == sort else ""
            sort_links[key] = link(sort=key, order=flip, page=None)
        pager = {
            "prev": link(page=data["page_no"] - 1) if data["page_no"] > 1 else "",
            "next": link(page=data["page_no"] + 1) if data["page_no"] < data["pages"] else "",
        }
        return page(
            "ui_fleet.html.j2",
            title="Fleet",
            name=name,
            label=label,
            sort=sort,
            desc=desc,
            per=per,
            sort_links=sort_links,
            pager=pager,
            **data,
            **ctx(request),
        )

    # -- target -----------------------------------------------------------------------

    def target_data(
        name: str, span: tuple[dt.datetime, dt.datetime] | None, rng: str, snapshot_id: int | None, filt: str
    ) -> dict[str, Any] | None:
        """`span`: a custom (from, to); None for the last `rng`."""
        targets = all_targets()
        t = targets.get(name)
        if t is None:
            return None
        now = dt.datetime.now(dt.UTC)
        start, end = span or (now - dt.timedelta(seconds=RANGES[rng]), now)
        # `before` is exclusive: a snapshot at `to` itself is in the range.
        metas = store.snapshots(
            name, limit=RANGE_POINTS, before=None if span is None else end + dt.timedelta(microseconds=1)
        )
        in_range = [m for m in metas if start <= _utc(m.time) <= end]
        capped = len(metas) == RANGE_POINTS and len(in_range) == len(metas)
        findings = store.findings(target=name)
        by_track = {f.id: f for f in findings}
        marks = []
        for f in findings:
            verdict = str(f.finding.get("verdict", ""))
            href = f"/findings/{q(f.id)}?target={q(name)}"
            if start <= _utc(f.first_seen) <= end:
                marks.append(
                    (
                        _utc(f.first_seen),
                        f"{verdict}: {f.finding.get('title', '')} (first seen)",
                        verdict,
                        href,
                    )
                )
            if f.resolved_at is not None and start <= _utc(f.resolved_at) <= end:
                marks.append(
                    (_utc(f.resolved_at), f"resolved: {f.finding.get('title', '')}", "resolved", href)
                )
        # Config reloads of `grprof serve` and deploys (the build changed between snapshots).
        for ev in store.events(name, start, end):
            marks.append((_utc(ev.time), ev.text, ev.kind, ""))
        # Goroutine profiles only: a goroutineleak profile counts the leaked goroutines alone.
        chart = line_chart(
            [Point(_utc(m.time), m.total) for m in in_range if m.profile == "goroutine"],
            start=start,
            end=end,
            marks=marks,
        )
        chosen: tuple[SnapshotMeta, list[StoredGroup]] | None = None
        if snapshot_id is not None:
            chosen = store.snapshot(snapshot_id)
            if chosen is None or chosen[0].target != name:
                chosen = None
        elif in_range or metas:
            chosen = store.snapshot((in_range or metas)[0].id)
        groups: list[GroupRow] = []
        more = 0
        meta = None
        if chosen is not None:
            meta, stored = chosen
            ordered = sorted(stored, key=lambda g: (-g.count, g.signature))
            rows = [_group_row(g, by_track) for g in ordered]
            if filt:
                needle = filt.lower()
                rows = [g for g in rows if needle in g.search]
            groups, more = rows[:MAX_GROUPS], max(0, len(rows) - MAX_GROUPS)
        picker = metas[:PICKER]
        if meta is not None and all(m.id != meta.id for m in picker):
            picker = [meta, *picker]
        older = [
            m.id
            for m in metas
            if meta is not None
            and m.profile == meta.profile
            and (_utc(m.time), m.id) < (_utc(meta.time), meta.id)
        ]
        open_fs = sorted((f for f in findings if f.state in OPEN), key=_finding_order)
        resolved = [f for f in findings if f.state not in OPEN]
        return {
            "t": t,
            "url": redact_url(t.url),
            "labels": sorted(t.labels.items()),
            "chart": chart,
            "capped": capped,
            "points": len(in_range),
            "meta": meta,
            "groups": groups,
            "more": more,
            "picker": [(m.id, f"{_iso(m.time)} · {m.total:,} goroutines · {m.format}") for m in picker],
            "open_findings": open_fs,
            "resolved": resolved[:20],
            "now": now,
            "last_scrape": _ago(t.last_scrape, now),
            "snapshot_time": _iso(meta.time) if meta else "",
            "compare_with": older[0] if older else None,
        }

    @r.get("/targets/{name:path}", response_class=HTMLResponse)
    async def target(
        request: Request,
        name: str,
        range: str = "1h",
        snapshot: int | None = None,
        filter: str = "",
        start: str = Query("", alias="from"),
        end: str = Query("", alias="to"),
    ) -> Response:
        rng = range if range in RANGES else "1h"
        if snapshot is not None and not 0 <= snapshot < 2**63:
            snapshot = None
        span = _custom_range(start, end, dt.datetime.now(dt.UTC))
        data = await run_in_threadpool(target_data, name, span, rng, snapshot, filter)
        if data is None:
            raise StarletteHTTPException(404, f"unknown target {name!r}")
        # The capture form (a POST) needs the session's CSRF token: start a session for it.
        can_capture = capture is not None and name in runtime.targets
        cookie = request.cookies.get(SESSION_COOKIE)
        fresh = sessions.new() if can_capture and sessions.nonce(cookie) is None else None
        resp = page(
            "ui_target.html.j2",
            title=name,
            name=name,
            qname=q(name),
            range="" if span else rng,
            ranges=list(RANGES),
            span=span,
            from_value=_local_input(span[0]) if span else "",
            to_value=_local_input(span[1]) if span else "",
            filter=filter,
            finding_href=lambda f: f"/findings/{q(f.id)}?target={q(f.target)}",
            when=_iso,
            can_capture=can_capture,
            captured=request.query_params.get("captured", ""),
            **data,
            **{**ctx(request), **({"csrf": sessions.csrf(fresh)} if fresh else {})},
        )
        if fresh:
            set_session(resp, fresh, request)
        return resp

    @r.post("/targets/{name:path}/capture")
    async def capture_now(request: Request, name: str) -> Response:
        """The target page's Capture button: the API's capture (`POST /api/v1/targets/{name}/capture`)
        behind the session's CSRF token; then the target page at the new snapshot."""
        if not _same_origin(request):
            raise StarletteHTTPException(403, "cross-origin form post refused")
        form = parse_form(request.headers.get("content-type", ""), await _read_body(request, 1 << 16) or b"")
        if not sessions.check_csrf(request.cookies.get(SESSION_COOKIE), _text(form.get("csrf", b""))):
            raise StarletteHTTPException(403, "the form expired or came from another site: reload the page")
        if capture is None:
            raise StarletteHTTPException(501, "on-demand capture is not enabled on this server")
        if name not in runtime.targets:
            raise StarletteHTTPException(404, f"{name!r} is not a target of this replica")
        lock = capture_locks.setdefault(name, asyncio.Lock())
        if lock.locked():  # debug=2 stops the target's world: one at a time
            raise StarletteHTTPException(409, f"a capture of {name!r} is already running")
        async with lock:
            try:
                result = await capture(name)
            except CaptureError as e:
                raise StarletteHTTPException(e.status, f"capture of {name!r} failed: {e.reason}") from e
            except KeyError as e:  # a reload removed it meanwhile
                raise StarletteHTTPException(404, f"{name!r} is not a target of this replica") from e
        status = str(result.get("status", "ok"))
        if status != "ok":
            code = 409 if status == "refused" else 502
            raise StarletteHTTPException(code, f"capture of {name!r} failed: {result.get('error') or status}")
        sid = result.get("snapshot")
        query = {"captured": "1", **({"snapshot": str(sid)} if isinstance(sid, int) else {})}
        return RedirectResponse(f"/targets/{q(name)}?{urllib.parse.urlencode(query)}", status_code=303)

    # -- finding ----------------------------------------------------------------------

    def finding_data(fid: str, target: str | None) -> StoredFinding | None:
        found = [f for f in store.findings(target=target or None) if f.id == fid]
        found.sort(key=lambda f: (f.state not in OPEN, -_utc(f.last_seen).timestamp()))
        return found[0] if found else None

    @r.get("/findings/{fid}", response_class=HTMLResponse)
    async def finding(request: Request, fid: str, target: str = "") -> Response:
        f = await run_in_threadpool(finding_data, fid, target)
        if f is None:
            raise StarletteHTTPException(404, f"no finding {fid!r}")
        # The flame graph of every goroutine (not of a goroutineleak profile) when there is one.
        recent = await run_in_threadpool(lambda: store.snapshots(f.target, limit=PICKER))
        latest = [m for m in recent if m.profile == "goroutine"] or recent
        j = f.finding
        counts = [int(c) for c in j.get("counts") or []]
        base = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        chart = sparkline([Point(base + dt.timedelta(seconds=i), c) for i, c in enumerate(counts)], 600, 90)
        labels = _label_values(j.get("labels") or {}, trace_url() if trace_url else None, top=5)
        frames = [f"{fr.get('function')} {fr.get('file')}:{fr.get('line')}" for fr in j.get("frames") or []]
        return page(
            "ui_finding.html.j2",
            title=str(j.get("title") or fid),
            f=f,
            j=j,
            counts=counts,
            chart=chart,
            labels=labels,
            frames=frames,
            target_href="/targets/" + q(f.target),
            flame_href=f"/snapshots/{latest[0].id}/flame" if latest else "",
            first_seen=_iso(f.first_seen),
            last_seen=_iso(f.last_seen),
            resolved_at=_iso(f.resolved_at),
            confidence=f"{float(j.get('confidence') or 0) * 100:.0f}%",
            **ctx(request),
        )

    # -- snapshot: flame graph and raw ------------------------------------------------

    def flame_data(sid: int) -> dict[str, Any] | None:
        got = store.snapshot(sid)
        if got is None:
            return None
        meta, groups = got
        by_track = {f.id: f for f in store.findings(target=meta.target) if f.state in OPEN}
        flagged = []
        for g in groups:
            sf = by_track.get(g.track)
            verdict = None if sf is None else str(sf.finding.get("verdict"))
            if sf is not None and verdict in ("leak", "suspect"):
                flagged.append(
                    Flagged(
                        [fr.function for fr in g.frames], g.count, verdict, str(sf.finding.get("title", ""))
                    )
                )
        svg = render_svg(_tree(groups), width=1200, svg_id="flame0", flagged=flagged, env=env)
        prev = _previous(store, meta)
        diff_href = f"/diff?target={q(meta.target)}&a={prev.id}&b={meta.id}" if prev else ""
        return {"meta": meta, "svg": Markup(svg), "flagged": bool(flagged), "diff_href": diff_href}

    @r.get("/snapshots/{sid}/flame", response_class=HTMLResponse)
    async def flame(request: Request, sid: int) -> Response:
        data = await run_in_threadpool(flame_data, sid) if 0 <= sid < 2**63 else None
        if data is None:
            raise StarletteHTTPException(404, f"no snapshot {sid}")
        meta = data["meta"]
        return page(
            "ui_flame.html.j2",
            title=f"Flame graph: {meta.target}",
            target_href="/targets/" + q(meta.target),
            time=_iso(meta.time),
            s={"flame": data["svg"]},
            detection=True if data["flagged"] else None,
            **data,
            **ctx(request),
        )

    @r.get("/snapshots/{sid}/raw")
    async def raw(sid: int) -> Response:
        data = await run_in_threadpool(store.raw, sid) if 0 <= sid < 2**63 else None
        if data is None:
            raise StarletteHTTPException(404, f"snapshot {sid} has no raw profile")
        gz = data[:2] == b"\x1f\x8b"
        ext = "pb.gz" if gz else "txt"
        return Response(
            data,
            media_type="application/octet-stream" if gz else "text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="snapshot-{sid}.{ext}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": CSP,
            },
        )

    # -- diff of two snapshots --------------------------------------------------------

    def diff_data(name: str, a_id: int | None, b_id: int | None) -> dict[str, Any]:
        """Raises a 404 for an unknown target or a snapshot that is not the target's."""
        if name not in all_targets():
            raise StarletteHTTPException(404, f"unknown target {name!r}")
        metas = store.snapshots(name, limit=PICKER)
        if not metas:
            raise StarletteHTTPException(404, f"target {name!r} has no snapshot stored yet")

        def load(sid: int) -> tuple[SnapshotMeta, list[StoredGroup]]:
            got = store.snapshot(sid)
            if got is None or got[0].target != name:
                raise StarletteHTTPException(404, f"no snapshot {sid} of target {name!r}")
            return got

        mb, gb = load(metas[0].id if b_id is None else b_id)
        if a_id is None:  # the snapshot before B
            prev = _previous(store, mb)
            a_id = prev.id if prev else mb.id
        ma, ga = (mb, gb) if a_id == mb.id else load(a_id)
        findings = {f.id: f for f in store.findings(target=name)}
        rows = _diff_rows(ga, gb, findings)
        sections = {k: [r for r in rows if r.status == k] for k in (*DIFF_SECTIONS, "same")}
        picker = list(metas)
        for m in (ma, mb):
            if all(p.id != m.id for p in picker):
                picker.append(m)
        picker.sort(key=lambda m: (_utc(m.time), m.id), reverse=True)
        return {
            "ma": ma,
            "mb": mb,
            "time_a": _iso(ma.time),
            "time_b": _iso(mb.time),
            "sections": [
                (k, sections[k][:MAX_GROUPS], max(0, len(sections[k]) - MAX_GROUPS)) for k in DIFF_SECTIONS
            ],
            "same": len(sections["same"]),
            "svg": Markup(render_diff_svg(ga, gb, env, width=1200, svg_id="diff0")),
            "picker": [(m.id, f"{_iso(m.time)} · {m.total:,} goroutines · {m.format}") for m in picker],
        }

    @r.get("/diff", response_class=HTMLResponse)
    async def diff(request: Request, target: str, a: int | None = None, b: int | None = None) -> Response:
        for sid in (a, b):
            if sid is not None and not 0 <= sid < 2**63:
                raise StarletteHTTPException(404, f"no snapshot {sid}")
        data = await run_in_threadpool(diff_data, target, a, b)
        return page(
            "ui_diff.html.j2",
            title=f"Diff: {target}",
            name=target,
            target_href="/targets/" + q(target),
            changes=CHANGES,
            finding_href=lambda f: f"/findings/{q(f.id)}?target={q(f.target)}",
            **data,
            **ctx(request),
        )

    # -- label search -----------------------------------------------------------------

    def search_data(text: str) -> dict[str, Any]:
        key, value = _search_terms(text)
        hits = store.search_labels(key, value, limit=SEARCH_LIMIT)
        if not hits and key is not None:  # `a=b` may be a value holding `=`
            key, value = None, text
            hits = store.search_labels(None, value, limit=SEARCH_LIMIT)
        # Each target's newest snapshot among the hits: where the value is now.
        newest: dict[str, int] = {}
        for meta, _ in hits:
            newest.setdefault(meta.target, meta.id)
        findings: dict[str, dict[str, StoredFinding]] = {
            t: {f.id: f for f in store.findings(target=t)} for t in newest
        }
        groups: list[SearchHit] = []
        targets: dict[str, SearchTarget] = {}
        for meta, g in hits:
            if newest[meta.target] != meta.id:
                continue
            carrying = {k: vs[value] for k, vs in g.labels.items() if value in vs and key in (None, k)}
            n = max(carrying.values(), default=0)
            row = _group_row(g, findings[meta.target])
            groups.append(
                SearchHit(
                    meta.target,
                    "/targets/"
                    + q(meta.target)
                    + "?"
                    + urllib.parse.urlencode({"snapshot": meta.id, "filter": value.lower()}),
                    meta.id,
                    _iso(meta.time),
                    n,
                    ", ".join(sorted(carrying)),
                    row,
                )
            )
            t = targets.setdefault(
                meta.target, SearchTarget(meta.target, "/targets/" + q(meta.target), _iso(meta.time))
            )
            t.groups += 1
            t.goroutines += n
        return {
            "key": key,
            "value": value,
            "hits": groups,
            "targets": sorted(targets.values(), key=lambda t: (-t.goroutines, t.name)),
            "capped": len(hits) >= SEARCH_LIMIT,
        }

    @r.get("/search", response_class=HTMLResponse)
    async def search(request: Request, query: str = Query("", alias="q")) -> Response:
        text = query.strip()
        data = await run_in_threadpool(search_data, text) if text else None
        return page(
            "ui_search.html.j2",
            title=f"Search: {text}" if text else "Label search",
            search_q=text,
            data=data,
            limit=SEARCH_LIMIT,
            finding_href=lambda f: f"/findings/{q(f.id)}?target={q(f.target)}",
            **ctx(request),
        )

    # -- paste a dump -----------------------------------------------------------------

    def paste_form(request: Request, error: str = "", status: int = 200, text: str = "") -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        fresh = None if sessions.nonce(cookie) else sessions.new()
        resp = page(
            "ui_paste.html.j2",
            status,
            title="Paste a dump",
            error=error,
            text=text,
            auth=sessions.required,
            csrf=sessions.csrf(fresh or cookie),
        )
        if fresh:
            set_session(resp, fresh, request)
        return resp

    @r.get("/paste", response_class=HTMLResponse)
    async def paste_page(request: Request) -> Response:
        return paste_form(request)

    @r.post("/paste", response_class=HTMLResponse)
    async def paste(request: Request) -> Response:
        if not _same_origin(request):
            raise StarletteHTTPException(403, "cross-origin form post refused")
        body = await _read_body(request, MAX_PASTE)
        if body is None:
            return paste_form(request, f"the dump is larger than {MAX_PASTE >> 20} MiB", 413)
        form = parse_form(request.headers.get("content-type", ""), body)
        if not sessions.check_csrf(request.cookies.get(SESSION_COOKIE), _text(form.get("csrf", b""))):
            return paste_form(request, "the form expired or came from another site: submit it again", 403)
        dump = form.get("file") or b""
        if not dump.strip():
            dump = form.get("dump") or b""
        if not dump.strip():
            return paste_form(request, "paste a dump or choose a file", 400)
        try:
            out = await run_in_threadpool(analyze_dump, dump)
        except Exception as e:  # a parser's error is for the person who pasted
            return paste_form(
                request, f"could not read the dump: {e}", 400, _text(form.get("dump", b""))[:100_000]
            )
        resp = HTMLResponse(out)
        m = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', out)
        policy = html.unescape(m.group(1)) if m else "default-src 'none'"
        resp.headers["Content-Security-Policy"] = policy + "; frame-ancestors 'none'"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # -- login ------------------------------------------------------------------------

    @r.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        return page(
            "ui_login.html.j2",
            title="Log in",
            next=_safe_next(next),
            error="",
            auth=sessions.required,
            csrf="",
            required=sessions.required,
        )

    @r.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            raise StarletteHTTPException(403, "cross-origin form post refused")
        form = parse_form(request.headers.get("content-type", ""), await _read_body(request, 1 << 16) or b"")
        nxt = _safe_next(_text(form.get("next", b"/")))
        if not sessions.check_token(_text(form.get("token", b""))):
            return page(
                "ui_login.html.j2",
                401 if sessions.required else 400,
                title="Log in",
                next=nxt,
                error=WRONG_TOKEN if sessions.required else NO_TOKEN,
                auth=sessions.required,
                csrf="",
                required=sessions.required,
            )
        resp = RedirectResponse(nxt, status_code=303)
        set_session(resp, sessions.new(), request)
        return resp

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        form = parse_form(request.headers.get("content-type", ""), await _read_body(request, 1 << 16) or b"")
        if not sessions.check_csrf(request.cookies.get(SESSION_COOKIE), _text(form.get("csrf", b""))):
            raise StarletteHTTPException(403, "bad CSRF token")
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    return r


MAX_RANGE = 366 * 86400
"""The longest custom range (seconds): the store keeps weeks, not years."""


def _parse_when(text: str, what: str) -> dt.datetime:
    """An ISO 8601 time (`2026-03-01T12:00`, what a datetime-local input sends), UTC unless it
    names its offset; a 400 page naming the parameter otherwise."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise StarletteHTTPException(400, f"{what}: not an ISO 8601 time: {text!r}") from None
    return _utc(when).astimezone(dt.UTC)


def _custom_range(start: str, end: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """`?from=&to=` of the target page: None when neither is given; `to` defaults to now and
    `from` to an hour before `to`."""
    if not start.strip() and not end.strip():
        return None
    to = _parse_when(end, "to") if end.strip() else now
    frm = _parse_when(start, "from") if start.strip() else to - dt.timedelta(hours=1)
    if frm >= to:
        raise StarletteHTTPException(400, f"from ({_iso(frm)}) must be before to ({_iso(to)})")
    if (to - frm).total_seconds() > MAX_RANGE:
        raise StarletteHTTPException(400, f"from..to spans more than {MAX_RANGE // 86400} days")
    return frm, to


def _local_input(when: dt.datetime) -> str:
    """The value of a datetime-local input (UTC, to the minute)."""
    return when.strftime("%Y-%m-%dT%H:%M")


def _previous(store: Store, meta: SnapshotMeta) -> SnapshotMeta | None:
    """The target's snapshot before `meta` of the same profile (a goroutine profile is compared
    with a goroutine profile, not with the goroutineleak profile taken between two of them)."""
    return next(
        (
            m
            for m in store.snapshots(meta.target, limit=PICKER, before=meta.time)
            if m.profile == meta.profile
        ),
        None,
    )


def _safe_next(nxt: str) -> str:
    """Only a local path: not `//host`, not `/\\host`, not a scheme."""
    if not nxt.startswith("/") or nxt.startswith(("//", "/\\")) or any(c in nxt for c in "\r\n\t"):
        return "/"
    return nxt


def _same_origin(request: Request) -> bool:
    """A form POST's `Origin` (when the browser sends one) must be this server."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


async def _read_body(request: Request, limit: int) -> bytes | None:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """`application/x-www-form-urlencoded` or `multipart/form-data` fields (first of each name),
    with the standard library (no python-multipart)."""
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        out: dict[str, bytes] = {}
        pairs = urllib.parse.parse_qsl(
            body.decode("ascii", "replace"), keep_blank_values=True, errors="replace"
        )
        for k, v in pairs:
            out.setdefault(k, v.encode("utf-8"))
        return out
    if ctype == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        out = {}
        if not msg.is_multipart():
            return out
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or name in out:
                continue
            payload = part.get_payload(decode=True)
            out[name] = payload if isinstance(payload, bytes) else b""
        return out
    return {}


def analyze_dump(data: bytes) -> str:
    """What `grprof analyze --html` writes for this dump."""
    import grprof
    from grprof.detect.detector import detect
    from grprof.report.html import render
    from grprof.report.model import build_report

    snaps = grprof.load_all(data, name="pasted dump")
    if not snaps:
        raise ValueError("no goroutine dump found")
    return render(build_report(snaps, detection=detect(snaps)))


__all__ = [
    "Sessions",
    "UISettings",
    "UiAuth",
    "UiDispatch",
    "analyze_dump",
    "install_ui",
    "is_ui_path",
    "parse_form",
    "ui_app",
    "ui_routes",
]
