"""The web UI of `grprof serve` (docs/ui.md): fleet, target, finding, flame graph, paste, login.

Fast tests render every page through FastAPI's TestClient from a store filled by the API
tests' world (tests/test_api.py) plus hostile values; browser tests drive Debian's Chromium
over the DevTools protocol (tests/test_html.py's driver) against uvicorn and against a real
`grprof serve` watching examples/leaky beside tests/goapps/healthy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Iterator
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import STATES, TOKEN, ZOO, World, build_world, serve
from test_html import Browser, needs_chromium
from test_html_hostile import PAYLOADS, dump, hostile_finding

import grprof
from grprof.collect.model import Target
from grprof.detect.detector import Options, detect
from grprof.server.api import create_app
from grprof.server.ui.routes import CSP, SESSION_COOKIE, parse_form
from grprof.store.model import ScrapeRecord

HOSTILE = PAYLOADS[0]  # <script>alert(1)</script>
NOW = dt.datetime.now(dt.UTC)


# -- a world with services and hostile values ---------------------------------------------


@dataclasses.dataclass
class UiWorld:
    world: World
    hostile_findings: list[str]


def add_hostile(w: World) -> list[str]:
    """Targets of a `service`, and one whose labels, groups and findings are all hostile text."""
    store = w.store
    store.upsert_targets(
        [
            Target("api-1", "http://127.0.0.1:7001", {"service": "api", "team": "core"}),
            Target("api-2", "http://127.0.0.1:7002", {"service": "api", "team": "core"}),
            Target("evil", "http://127.0.0.1:7003", {"service": HOSTILE, HOSTILE: PAYLOADS[3]}),
        ],
        "3/3",
    )
    snaps = [grprof.load(dump(k, crash=False), name=f"{k}.txt") for k in range(3)]
    for i, s in enumerate(snaps):
        s.time = NOW - dt.timedelta(minutes=3 - i)
        store.record_scrape(ScrapeRecord("evil", "debug=2", s.time, 0.01, "ok", 100, ""))
        store.add_snapshot("evil", s, dump(i, crash=False))
    d = detect(snaps, Options(interval=60.0))
    (real,) = d.findings
    hostile = [hostile_finding(real, n, m.id) for n, m in enumerate(real.members, 1)]
    store.sync_findings("evil", [*hostile, real], NOW)
    for i in range(2):
        t = NOW - dt.timedelta(minutes=2 - i)
        store.record_scrape(ScrapeRecord("api-1", "debug=2", t, 0.01, "ok", 100, ""))
        s = grprof.load(STATES / "goroutine.debug2.txt")
        s.time = t
        store.add_snapshot("api-1", s, None)
    store.record_scrape(ScrapeRecord("api-2", "debug=2", NOW, 1.0, "error", 0, f"HTTP 500 {HOSTILE}"))
    return [f.id for f in hostile]


@pytest.fixture(scope="module")
def uiworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    w = build_world(tmp_path_factory.mktemp("ui"))
    ids = add_hostile(w)
    yield UiWorld(w, ids)
    w.store.close()


@pytest.fixture(scope="module")
def client(uiworld: UiWorld) -> Iterator[TestClient]:
    w = uiworld.world
    with TestClient(create_app(w.store, w.runtime)) as c:
        yield c


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def authed(uiworld: UiWorld) -> Iterator[TestClient]:
    w = uiworld.world
    with TestClient(create_app(w.store, w.runtime, api_token=TOKEN)) as c:
        yield c


def zoo_finding(w: World) -> Any:
    return next(f for f in w.store.findings(target="zoo") if f.finding["verdict"] == "leak")


def pages(uw: UiWorld) -> list[str]:
    w = uw.world
    f = zoo_finding(w)
    return [
        "/",
        "/?sort=goroutines",
        "/targets/zoo",
        "/targets/zoo?range=7d",
        "/targets/evil",
        "/targets/api-1?range=24h",
        f"/targets/states?snapshot={w.states_ids['debug2']}",
        "/targets/" + urllib.parse.quote("payments/10.0.0.7:6060", safe=""),
        f"/findings/{f.id}?target=zoo",
        *(f"/findings/{i}?target=evil" for i in uw.hostile_findings),
        f"/snapshots/{w.zoo_ids[-1]}/flame",
        "/paste",
        "/login",
    ]


# -- markup checks ------------------------------------------------------------------------


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    t = Tags()
    t.feed(html)
    return t


def assert_safe_markup(html: str) -> None:
    """No inline script, no handler attributes, no style attributes, nothing off-site."""
    tags = parse(html)
    for tag, attrs in tags.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/ui/"), attrs  # type: ignore[union-attr]
        for k in ("src", "href", "action"):
            v = attrs.get(k) or ""
            assert not v.lower().startswith(("javascript:", "http:", "https:", "//")), (tag, attrs)
    assert "<script>alert" not in html and "<img src=x" not in html


def test_every_page_renders_with_a_strict_policy(client: TestClient, uiworld: UiWorld) -> None:
    for path in pages(uiworld):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe" not in CSP
        assert_safe_markup(r.text)


def test_static_files_are_served(client: TestClient) -> None:
    for path, kind in (
        ("/ui/static/ui.js", "javascript"),
        ("/ui/static/ui.css", "text/css"),
        ("/ui/flame.js", "javascript"),
        ("/ui/report.css", "text/css"),
    ):
        r = client.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
    assert "addEventListener" in client.get("/ui/flame.js").text


def test_fleet_lists_targets_findings_and_services(client: TestClient) -> None:
    html = client.get("/").text
    for name in ("zoo", "states", "api-1", "api-2", "evil"):
        assert f'href="/targets/{name}"' in html
    row = html.split('href="/targets/zoo"')[1].split("</tr>")[0]
    assert re.search(r'class="badge leak">\d+ leak<', row)
    assert "channel (" in row  # open findings by category
    services = html.split('class="services"')[1].split("</table>")[0]
    assert '>api</a></td><td class="num">2</td>' in services  # two targets of service api
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in services
    assert "HTTP 500 &lt;script&gt;" in html  # the scrape error, escaped
    assert '<svg class="spark"' in html  # api-1 has snapshots in the last hours
    assert "hunter2" not in html and "http://127.0.0.1:6060" in html  # credentials redacted


def test_fleet_filter_and_sort_without_js(client: TestClient) -> None:
    only = client.get("/?name=api").text
    assert 'href="/targets/api-1"' in only and 'href="/targets/zoo"' not in only
    by_label = client.get("/?label=team=core").text
    assert 'href="/targets/states"' in by_label and 'href="/targets/zoo"' not in by_label
    by_text = client.get("/?label=payments").text
    assert 'href="/targets/zoo"' in by_text and 'href="/targets/api-1"' not in by_text
    html = client.get("/?sort=goroutines&order=desc").text
    order = re.findall(r'class="tname" href="/targets/([^"]+)"', html)
    assert order[0] == "zoo"
    html = client.get("/?sort=name&order=desc").text
    order = re.findall(r'class="tname" href="/targets/([^"]+)"', html)
    assert order == sorted(order, reverse=True)


def test_fleet_pagination_without_js(client: TestClient) -> None:
    everyone = re.findall(r'class="tname" href="/targets/([^"]+)"', client.get("/").text)
    assert len(everyone) >= 5
    html = client.get("/?per=10&sort=name").text
    assert 'rel="next"' not in html  # fewer than 10 targets: one page, no pager
    # Page size below the minimum is raised to 10; a page past the end shows the last page.
    html = client.get("/?per=1&page=99").text
    assert re.findall(r'class="tname" href="/targets/([^"]+)"', html) == everyone
    assert 'rel="prev"' not in html


def test_fleet_pages_of_a_big_fleet(tmp_path: Path) -> None:
    from grprof.server.runtime import Runtime
    from grprof.server.ui.routes import ui_app
    from grprof.store.sql import SQLStore

    store = SQLStore.open(str(tmp_path / "big.db"))
    names = [f"t{i:03d}<b>" for i in range(25)]
    store.upsert_targets([Target(n, "http://127.0.0.1:1") for n in names], None)
    calls: list[int] = []
    real = store.goroutine_series

    def counted(targets: Any, since: Any, **kw: Any) -> Any:
        calls.append(len(targets))
        return real(targets, since, **kw)

    store.goroutine_series = counted  # type: ignore[method-assign]
    try:
        with TestClient(ui_app(store, Runtime.create())) as c:
            shown: list[str] = []
            path = "/?per=10"
            pages = 0
            while path:
                html = c.get(path).text
                assert "&lt;b&gt;" in html and "<b>" not in html.split("<main")[1]
                shown += [
                    urllib.parse.unquote(h)
                    for h in re.findall(r'class="tname" href="/targets/([^"]+)"', html)
                ]
                nxt = re.search(r'<a rel="next" href="([^"]+)"', html)
                path = html_unescape(nxt.group(1)) if nxt else ""
                pages += 1
            assert pages == 3 and shown == names
            assert calls == [10, 10, 5]  # one batched sparkline query per page, for its rows only
            assert "targets 21–25 of 25 (page 3 of 3)" in html
    finally:
        store.close()


def test_target_page(client: TestClient, uiworld: UiWorld) -> None:
    w = uiworld.world
    html = client.get("/targets/evil?range=1h").text
    assert '<svg class="chart"' in html and "<polyline" in html
    assert 'class="marker leak"' in html or 'class="marker suspect"' in html
    assert html.count('<tr class="group"') == 6  # five hostile groups and main.main
    assert 'href="/snapshots/' in html and "/flame" in html and "raw dump" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    filtered = client.get("/targets/evil?filter=main.main").text
    assert filtered.count('<tr class="group"') == 1
    states = client.get(f"/targets/states?snapshot={w.states_ids['debug1']}").text
    assert f'<option value="{w.states_ids["debug1"]}" selected>' in states
    assert "raw dump" not in states  # debug1 was stored without its raw bytes
    assert client.get("/targets/nope").status_code == 404
    bad = client.get("/targets/zoo?snapshot=<b>x</b>")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "<b>x" not in bad.text


def test_raw_dump_download(client: TestClient, uiworld: UiWorld) -> None:
    sid = uiworld.world.states_ids["debug2"]
    r = client.get(f"/snapshots/{sid}/raw")
    assert r.status_code == 200 and r.text.startswith("goroutine ")
    assert "attachment" in r.headers["content-disposition"]
    assert client.get(f"/snapshots/{uiworld.world.states_ids['debug1']}/raw").status_code == 404


def test_finding_page(client: TestClient, uiworld: UiWorld) -> None:
    f = zoo_finding(uiworld.world)
    html = client.get(f"/findings/{f.id}?target=zoo").text
    assert '<td class="verdict">leak</td>' in html
    assert '<pre class="fix"><code class="language-go">' in html
    for e in f.finding["evidence"]:
        assert e["summary"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html.replace(
            "&#x27;", "'"
        ).replace("&quot;", '"')
    assert "first seen" in html and "last seen" in html
    assert '<svg class="spark"' in html  # the per-snapshot count chart
    assert client.get("/findings/nope").status_code == 404


def test_hostile_finding_page_is_escaped(client: TestClient, uiworld: UiWorld) -> None:
    for fid in uiworld.hostile_findings:
        html = client.get(f"/findings/{fid}?target=evil").text
        assert_safe_markup(html)
        assert "fix: &lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "snippet &lt;script&gt;" in html  # the source snippet


def test_flame_graph_page(client: TestClient, uiworld: UiWorld) -> None:
    html = client.get(f"/snapshots/{uiworld.world.zoo_ids[-1]}/flame").text
    assert '<svg class="flame"' in html or 'class="flame"' in html
    assert 'class="flamebox"' in html and '<script src="/ui/flame.js">' in html
    assert client.get("/snapshots/999999/flame").status_code == 404


# -- paste --------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def test_paste_needs_the_sessions_csrf_token(client: TestClient) -> None:
    client.cookies.clear()
    data = {"dump": (ZOO / "3-leak-3.goroutine.debug2.txt").read_text()}
    form = client.get("/paste")
    assert form.cookies.get(SESSION_COOKIE)
    assert "httponly" in form.headers["set-cookie"].lower()
    assert "samesite=strict" in form.headers["set-cookie"].lower()
    token = csrf_of(form.text)
    r = client.post("/paste", data={**data, "csrf": "0" * 64})
    assert r.status_code == 403 and "submit it again" in r.text
    client.cookies.clear()  # the token is the session's: without the cookie it is refused
    r = client.post("/paste", data={**data, "csrf": token})
    assert r.status_code == 403
    client.cookies.set(SESSION_COOKIE, form.cookies[SESSION_COOKIE])
    r = client.post("/paste", data={**data, "csrf": token}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/paste", data={**data, "csrf": token})
    assert r.status_code == 200, r.text[:400]
    assert 'id="findings"' in r.text or "Findings" in r.text
    assert "leak" in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    # multipart upload of a gzipped protobuf
    pb = (ZOO / "3-leak-3.goroutine.debug0.pb.gz").read_bytes()
    r = client.post("/paste", data={"csrf": token}, files={"file": ("dump.pb.gz", pb)})
    assert r.status_code == 200, r.text[:400]
    r = client.post("/paste", data={"csrf": token, "dump": "not a dump"})
    assert r.status_code == 400 and "could not read the dump" in r.text
    client.cookies.clear()


def test_paste_hostile_dump_renders_escaped(client: TestClient) -> None:
    client.cookies.clear()
    token = csrf_of(client.get("/paste").text)
    r = client.post("/paste", data={"csrf": token, "dump": dump(2, crash=True).decode()})
    assert r.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<script>alert(1)" not in r.text
    client.cookies.clear()


def test_parse_form() -> None:
    body = b"a=1&csrf=x%C3%A9&a=2"
    assert parse_form("application/x-www-form-urlencoded", body) == {"a": b"1", "csrf": "xé".encode()}
    mp = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="d.txt"\r\n\r\n'
        b"goroutine 1 [running]:\r\n\r\n"
        b'--B\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nabc\r\n--B--\r\n'
    )
    assert parse_form("multipart/form-data; boundary=B", mp) == {
        "file": b"goroutine 1 [running]:\r\n",
        "csrf": b"abc",
    }
    assert parse_form("text/plain", b"x") == {}


# -- auth ---------------------------------------------------------------------------------


def test_token_protects_the_ui(authed: TestClient, uiworld: UiWorld) -> None:
    authed.cookies.clear()
    for path in pages(uiworld):
        if path == "/login":
            continue
        r = authed.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login?" + urllib.parse.urlencode({"next": path}), path
    assert authed.post("/paste", data={"dump": "x"}).status_code == 401
    assert authed.get("/login").status_code == 200
    bad = authed.post("/login", data={"token": "wrong", "next": "/"}, follow_redirects=False)
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.cookies
    ok = authed.post("/login", data={"token": TOKEN, "next": "/targets/zoo"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/targets/zoo"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    for path in pages(uiworld):
        assert authed.get(path).status_code == 200, path
    # The cookie opens the UI only: the API still wants the bearer token.
    assert authed.get("/api/v1/targets").status_code == 401
    assert authed.get("/api/v1/targets", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert authed.get("/healthz").status_code == 200
    # Log out needs the CSRF token; then the cookie is gone.
    html = authed.get("/").text
    assert authed.post("/logout", data={"csrf": "x"}).status_code == 403
    out = authed.post("/logout", data={"csrf": csrf_of(html)}, follow_redirects=False)
    assert out.status_code == 303
    authed.cookies.clear()
    assert authed.get("/", follow_redirects=False).status_code == 303


def test_login_redirects_only_to_local_paths(authed: TestClient) -> None:
    for nxt in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        r = authed.post("/login", data={"token": TOKEN, "next": nxt}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", nxt
    authed.cookies.clear()
    forged = authed.get("/", cookies={SESSION_COOKIE: "abc.def"}, follow_redirects=False)
    assert forged.status_code == 303


def test_api_unaffected(client: TestClient) -> None:
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found", "detail": None}
    assert client.get("/api/v1/targets").status_code == 200


# -- a real browser -----------------------------------------------------------------------


def visit(b: Browser, url: str) -> None:
    b.open(url)
    b.js("new Promise(r => setTimeout(r, 100))")
    assert b.csp_violations() == [], (url, b.csp_violations())
    assert b.console_errors() == [], (url, b.console_errors())
    assert b.js("window.__dialogs") == [], url
    failed = [e for e in b.events if e.get("method") == "Network.loadingFailed"]
    assert failed == [], (url, failed)
    bad = [
        e["params"]["response"]
        for e in b.events
        if e.get("method") == "Network.responseReceived" and e["params"]["response"]["status"] >= 400
    ]
    assert bad == [], (url, bad)


@needs_chromium
def test_browser_every_page_clean_and_hostile_values_inert(browser: Browser, uiworld: UiWorld) -> None:
    w = uiworld.world
    with serve(create_app(w.store, w.runtime)) as base:
        for path in pages(uiworld):
            visit(browser, base + path)
        browser.open(base + "/targets/evil")
        text = browser.js("document.body.innerText")
        assert HOSTILE in text  # shown as text
        assert browser.js("document.querySelectorAll('main script, main img').length") == 0
        # The live filter hides rows without a reload.
        browser.click("input.livefilter")
        browser.send("Input.insertText", text="main.main")
        shown = browser.js(
            "[...document.querySelectorAll('#groups tr.group')].filter(r => r.offsetParent).length"
        )
        assert shown == 1
        # The flame graph's script runs from its file: a click zooms.
        browser.open(f"{base}/snapshots/{w.zoo_ids[-1]}/flame")
        assert browser.js("document.querySelector('#flame0').dataset.zoom") == "0"
        browser.click("#flame0 g.f:not(.root) rect")
        assert browser.js("location.hash").startswith("#zoom=flame0-n")
        assert browser.csp_violations() == [] and browser.console_errors() == []
        # Paste the hostile dump through the form.
        browser.open(base + "/paste")
        browser.js(f"document.querySelector('#dump').value = {json.dumps(dump(2, crash=True).decode())}")
        browser.events.clear()
        browser.click("form.paste button[type=submit]")
        browser.wait_event("Page.loadEventFired")
        assert "Findings" in browser.js("document.body.innerText")
        assert HOSTILE in browser.js("document.body.innerText")
        assert browser.js("window.__dialogs") == []
        assert browser.csp_violations() == [] and browser.console_errors() == []


@needs_chromium
def test_browser_login_flow(browser: Browser, uiworld: UiWorld) -> None:
    w = uiworld.world
    with serve(create_app(w.store, w.runtime, api_token=TOKEN)) as base:
        browser.send("Network.clearBrowserCookies")
        browser.open(base + "/targets/zoo")
        assert browser.js("location.pathname") == "/login"
        browser.click("input[name=token]")
        browser.send("Input.insertText", text=TOKEN)
        browser.events.clear()
        browser.click("form.login button[type=submit]")
        browser.wait_event("Page.loadEventFired")
        assert browser.js("location.pathname") == "/targets/zoo"
        assert browser.js("document.cookie") == ""  # HttpOnly: not readable by script
        visit(browser, base + "/")
        assert "zoo" in browser.js("document.body.innerText")
        browser.send("Network.clearBrowserCookies")


# -- a real `grprof serve` watching a real leak -------------------------------------------


@contextlib.contextmanager
def real_serve(tmp: Path, token: str | None = None) -> Iterator[tuple[Any, str]]:
    from serveproc import run_serve
    from test_serve import healthy, leaky

    with leaky() as a, healthy() as b:
        cfg = tmp / "grprof.yaml"
        lines = [
            "version: 1",
            "scrape:",
            "  interval: 1s",
            "  timeout: 1s",
            "  leak_profile_every: 2",
            "targets:",
        ]
        lines += [
            "  - name: leaky",
            f"    url: {a}",
            f"    labels: {{service: shop, note: {json.dumps(HOSTILE)}}}",
        ]
        lines += ["  - name: healthy", f"    url: {b}", "    labels: {service: shop}"]
        cfg.write_text("\n".join(lines) + "\n")
        args = ["--config", str(cfg), "--db", str(tmp / "g.db")]
        if token:
            (tmp / "token").write_text(token)
            args += ["--api-token-file", str(tmp / "token")]
        with run_serve(args) as srv:
            yield srv, a


def leak_finding(srv: Any, token: str | None = None) -> Any:
    fs = srv.get("/api/v1/findings?target=leaky&verdict=leak", token=token)["findings"]
    return next((f for f in fs if f["site"] and f["site"]["function"] == "main.leakyHandler.func1"), None)


@needs_chromium
@pytest.mark.slow
def test_browser_real_serve_shows_the_leak(browser: Browser, tmp_path: Path) -> None:
    with real_serve(tmp_path) as (srv, _):
        found = srv.wait_for(lambda: leak_finding(srv), timeout=120)
        b = browser
        visit(b, srv.base + "/")
        row = b.js("document.querySelector('a.tname[href=\"/targets/leaky\"]').closest('tr').innerText")
        assert "leak" in row and "up" in row
        assert HOSTILE in b.js("document.body.innerText")  # the label value, as text
        b.events.clear()
        b.click('a.tname[href="/targets/leaky"]')
        b.wait_event("Page.loadEventFired")
        assert b.js("location.pathname") == "/targets/leaky"
        assert b.csp_violations() == [] and b.console_errors() == []
        assert b.js("document.querySelectorAll('svg.chart polyline').length") == 1
        links = b.js("[...document.querySelectorAll('a.flink')].map(a => a.getAttribute('href'))")
        href = f"/findings/{found['id']}?target=leaky"
        assert href in links, links
        b.events.clear()
        b.click(f'a.flink[href="{href}"]')
        b.wait_event("Page.loadEventFired")
        text = b.js("document.body.innerText")
        assert "leak" in b.js("document.querySelector('td.verdict').textContent")
        assert b.js("document.querySelector('pre.fix code').textContent").strip() == found["fix"].strip()
        assert "main.leakyHandler.func1" in text
        assert b.csp_violations() == [] and b.console_errors() == []
        visit(b, srv.base + "/targets/leaky?range=24h")
        flame = b.js("document.querySelector('a[href$=\"/flame\"]').getAttribute('href')")
        visit(b, srv.base + flame)
        assert b.js("document.querySelectorAll('#flame0 g.f.leak').length") > 0
        # Paste a recorded fixture dump and get the report with its findings.
        visit(b, srv.base + "/paste")
        text_dump = (ZOO / "3-leak-3.goroutine.debug2.txt").read_text()
        b.js(f"document.querySelector('#dump').value = {json.dumps(text_dump)}")
        b.events.clear()
        b.click("form.paste button[type=submit]")
        b.wait_event("Page.loadEventFired")
        assert b.js("document.querySelectorAll('#findings tr, .findings tr').length") > 1
        assert b.csp_violations() == [] and b.console_errors() == []


@needs_chromium
@pytest.mark.slow
def test_browser_real_serve_with_token(browser: Browser, tmp_path: Path) -> None:
    with real_serve(tmp_path, token=TOKEN) as (srv, _):
        b = browser
        b.send("Network.clearBrowserCookies")
        b.open(srv.base + "/")
        assert b.js("location.pathname") == "/login"
        b.open(srv.base + "/targets/leaky")
        assert b.js("location.pathname + location.search") == "/login?next=%2Ftargets%2Fleaky"
        b.click("input[name=token]")
        b.send("Input.insertText", text=TOKEN)
        b.events.clear()
        b.click("form.login button[type=submit]")
        b.wait_event("Page.loadEventFired")
        assert b.js("location.pathname") == "/targets/leaky"
        visit(b, srv.base + "/")
        assert "leaky" in b.js("document.body.innerText")
        b.send("Network.clearBrowserCookies")
