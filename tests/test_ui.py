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
import time
import urllib.parse
from collections.abc import Iterator, Sequence
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
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_LABELS = {
    "trace_id": {TRACE_ID: 3, HOSTILE: 2, '"onload="x': 1},
    "x-b3-spanid": {"00f067aa0ba902b7": 3},
    "route": {"/checkout": 5},
}
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
    # The five payload groups: one finding with four members, or five findings (whether one
    # creator goroutine ties them is detect.units' call); either way one stays real and the
    # other four get a hostile finding each.
    real = d.findings[0]
    groups = [m.id for f in d.findings for m in f.members] + [f.id for f in d.findings[1:]]
    assert len(groups) == 4
    hostile = [hostile_finding(real, n, gid) for n, gid in enumerate(groups, 1)]
    # Trace and span ids among the labels of one finding (the trace links of the finding page).
    hostile[0] = dataclasses.replace(hostile[0], labels=TRACE_LABELS)
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
        "/targets/zoo?from=2026-03-01T11:59&to=2026-03-01T12:03",
        "/targets/evil?" + urllib.parse.urlencode({"from": f"{NOW - dt.timedelta(hours=2):%Y-%m-%dT%H:%M}"}),
        f"/targets/states?snapshot={w.states_ids['debug2']}",
        "/targets/" + urllib.parse.quote("payments/10.0.0.7:6060", safe=""),
        f"/findings/{f.id}?target=zoo",
        *(f"/findings/{i}?target=evil" for i in uw.hostile_findings),
        f"/snapshots/{w.zoo_ids[-1]}/flame",
        "/diff?target=zoo",
        f"/diff?target=zoo&a={w.zoo_ids[0]}&b={w.zoo_ids[-1]}",
        "/diff?target=evil",
        "/search",
        "/search?q=/leak/chan-nil",
        "/search?" + urllib.parse.urlencode({"q": "handler=/leak/chan-nil"}),
        "/search?" + urllib.parse.urlencode({"q": HOSTILE}),
        "/search?" + urllib.parse.urlencode({"q": f"k={HOSTILE}"}),
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


def assert_safe_markup(html: str, links: str = "") -> None:
    """No inline script, no handler attributes, no style attributes, nothing off-site (but
    trace links starting with `links`)."""
    tags = parse(html)
    for tag, attrs in tags.tags:
        if links and tag == "a" and attrs.get("class") == "tracelink":
            assert (attrs.get("href") or "").startswith(links), attrs
            continue
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


def test_hostile_target_name_on_the_new_pages(tmp_path: Path) -> None:
    """A target named with markup and quotes: diff, search, custom range and capture pages
    show it as text and link to it escaped."""
    from grprof.server.runtime import Runtime
    from grprof.server.ui.routes import ui_app
    from grprof.store.sql import SQLStore

    name = f"{HOSTILE}/\"q'&x?y#z"
    store = SQLStore.open(str(tmp_path / "h.db"))
    try:
        store.upsert_targets([Target(name, "http://127.0.0.1:1", {"k": HOSTILE})], None)
        ids = []
        for k in range(2):
            s = grprof.load(dump(k, crash=False), name=f"{k}.txt")
            s.time = NOW - dt.timedelta(minutes=2 - k)
            ids.append(store.add_snapshot(name, s, None))
        quoted = urllib.parse.quote(name, safe="")
        with TestClient(ui_app(store, Runtime.create())) as c:
            for path in (
                f"/diff?target={quoted}",
                f"/diff?target={quoted}&a={ids[0]}&b={ids[1]}",
                "/search?" + urllib.parse.urlencode({"q": PAYLOADS[4]}),
                f"/targets/{quoted}?from={NOW - dt.timedelta(hours=1):%Y-%m-%dT%H:%M}",
                f"/snapshots/{ids[1]}/flame",
            ):
                r = c.get(path)
                assert r.status_code == 200, (path, r.text[:300])
                assert_safe_markup(r.text)
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, path
            assert f'href="/targets/{quoted}"' in c.get(f"/diff?target={quoted}").text
            assert (
                f"/diff?target={quoted}&amp;a={ids[0]}&amp;b={ids[1]}"
                in c.get(f"/snapshots/{ids[1]}/flame").text
            )
            search = c.get("/search?" + urllib.parse.urlencode({"q": PAYLOADS[4]})).text
            assert f'class="tname" href="/targets/{quoted}"' in search
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
    # First seen in UTC, as the API and every other page write a time.
    assert f"{NOW.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z (new)" in html
    filtered = client.get("/targets/evil?filter=main.main").text
    assert filtered.count('<tr class="group"') == 1
    states = client.get(f"/targets/states?snapshot={w.states_ids['debug1']}").text
    assert f'<option value="{w.states_ids["debug1"]}" selected>' in states
    assert "raw dump" not in states  # debug1 was stored without its raw bytes
    assert client.get("/targets/nope").status_code == 404
    bad = client.get("/targets/zoo?snapshot=<b>x</b>")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "<b>x" not in bad.text


def chart_points(html: str) -> int:
    m = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert m, html[:300]
    line = re.search(r'<polyline class="line" points="([^"]*)"', m.group(0))
    return len(line.group(1).split()) if line else 0


def test_target_custom_time_range(client: TestClient, uiworld: UiWorld) -> None:
    """The zoo's six snapshots are 30 s apart from 2026-03-01 12:00 UTC: a range picks some."""
    w = uiworld.world
    html = client.get("/targets/zoo?from=2026-03-01T11:59&to=2026-03-01T13:00").text
    assert chart_points(html) == 6 and "6 snapshots" in html
    assert 'value="2026-03-01T11:59"' in html and 'value="2026-03-01T13:00"' in html
    assert 'class="on" aria-current' not in html  # none of 1h/24h/7d is the range
    # 12:00:00 .. 12:01:00 inclusive: the first three; `to` may name its offset, `from` ISO seconds.
    html = client.get(
        "/targets/zoo?"
        + urllib.parse.urlencode({"from": "2026-03-01T12:00:00Z", "to": "2026-03-01T13:01+01:00"})
    ).text
    assert chart_points(html) == 3
    # The chosen snapshot is the newest in the range; the picker keeps the range.
    assert f'<option value="{w.zoo_ids[2]}" selected>' in html
    assert '<input type="hidden" name="from" value="2026-03-01T12:00">' in html
    # Finding markers only inside the range: the zoo's findings were first seen from 12:00 on.
    early = client.get("/targets/zoo?from=2026-03-01T11:00&to=2026-03-01T11:59").text
    assert chart_points(early) == 0 and 'class="marker' not in early
    assert 'class="marker' in client.get("/targets/zoo?from=2026-03-01T11:00&to=2026-03-01T13:00").text
    # Nothing in the range: an empty chart, not an error.
    assert chart_points(client.get("/targets/zoo?from=2020-01-01T00:00&to=2020-01-02T00:00").text) == 0
    # Bad input: a 400 page naming the parameter.
    for query, word in (
        ({"from": "yesterday"}, "from: not an ISO 8601 time"),
        ({"from": "2026-03-01T13:00", "to": "2026-03-01T12:00"}, "must be before"),
        ({"to": "<script>"}, "to: not an ISO 8601 time"),
        ({"from": "2020-01-01T00:00", "to": "2026-01-01T00:00"}, "more than 366 days"),
    ):
        r = client.get("/targets/zoo?" + urllib.parse.urlencode(query))
        assert r.status_code == 400 and word in r.text, (query, r.text[:300])
        assert "<script>" not in r.text.split("<main")[1]


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
    # The fix is Go, highlighted on the server: its text unchanged, keywords and comments marked.
    fix = re.search(r'<pre class="fix"><code class="language-go">(.*?)</code></pre>', html, re.S)
    assert fix and html_unescape(re.sub(r"<[^>]*>", "", fix.group(1))) == f.finding["fix"]
    assert '<span class="hl-c">//' in fix.group(1) and '<span class="hl-k">' in fix.group(1)
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
        # The fix is highlighted: tokens in spans, each escaped; its text is the payload.
        fix = re.search(r'<pre class="fix"><code class="language-go">(.*?)</code></pre>', html, re.S)
        assert fix and "<script" not in fix.group(1)
        assert set(re.findall(r"<(/?[a-z]+)", fix.group(1))) <= {"span", "/span"}
        text = html_unescape(re.sub(r"<[^>]*>", "", fix.group(1)))
        assert text.startswith("fix: <script>alert(1)</script>")
        assert "snippet &lt;script&gt;" in html  # the source snippet


def test_flame_graph_page(client: TestClient, uiworld: UiWorld) -> None:
    html = client.get(f"/snapshots/{uiworld.world.zoo_ids[-1]}/flame").text
    assert '<svg class="flame"' in html or 'class="flame"' in html
    assert 'class="flamebox"' in html and '<script src="/ui/flame.js">' in html
    assert client.get("/snapshots/999999/flame").status_code == 404


# -- diff ---------------------------------------------------------------------------------


def diff_sections(html: str) -> dict[str, list[tuple[int, int]]]:
    """(A, B) of each row of each section table of the diff page."""
    out = {}
    for kind in ("grown", "new", "shrunk", "gone"):
        m = re.search(rf'<table class="groups diff {kind}">(.*?)</table>', html, re.S)
        rows = (
            re.findall(r'<td class="num">([\d,]+)</td><td class="num">([\d,]+)</td>', m.group(1)) if m else []
        )
        out[kind] = [(int(a.replace(",", "")), int(b.replace(",", ""))) for a, b in rows]
    return out


def test_diff_page_matches_grprof_diff(client: TestClient, uiworld: UiWorld) -> None:
    """The page's grown / new / shrunk / gone groups are `grprof diff`'s rows of the same two
    snapshots (the zoo's warm-up and third leak phase), matched by track id."""
    from test_api import PHASES

    from grprof.diff import compute

    w = uiworld.world
    html = client.get(f"/diff?target=zoo&a={w.zoo_ids[0]}&b={w.zoo_ids[3]}").text
    got = diff_sections(html)
    first = grprof.load(ZOO / f"{PHASES[0]}.goroutine.debug2.txt")
    last = grprof.load(ZOO / f"{PHASES[3]}.goroutine.debug2.txt")
    want: dict[str, list[tuple[int, int]]] = {k: [] for k in got}
    for g in compute(first, last).groups:
        kind = "gone" if g.status == "vanished" else g.status
        if kind in want:
            want[kind].append((g.before, g.after))
    assert got == want
    assert sum(map(len, got.values())) > 0 and got["grown"]
    # The differential flame graph: the report's markup, each frame classed by its change.
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flame diffflame" id="diff0"' in html
    kinds = set(re.findall(r'<g class="f (new|grown|shrunk|gone|same)[ "]', html))
    assert "grown" in kinds
    assert '<script src="/ui/flame.js">' in html
    # Default: B is the latest snapshot, A the one before it.
    default = client.get("/diff?target=zoo").text
    assert f'<option value="{w.zoo_ids[-1]}" selected>' in default.split('name="b"')[1].split("</select>")[0]
    assert f'<option value="{w.zoo_ids[-2]}" selected>' in default.split('name="a"')[1].split("</select>")[0]


def test_diff_links_from_target_and_flame_pages(client: TestClient, uiworld: UiWorld) -> None:
    ids = uiworld.world.zoo_ids
    html = client.get("/targets/zoo").text
    form = html.split('<form method="get" action="/diff" class="filters compare">')[1].split("</form>")[0]
    assert '<input type="hidden" name="target" value="zoo">' in form
    assert f'<input type="hidden" name="b" value="{ids[-1]}">' in form
    assert (
        f'<option value="{ids[-2]}" selected>' in form
        and f'value="{ids[-1]}"' not in form.split("<select")[1]
    )
    flame = client.get(f"/snapshots/{ids[-1]}/flame").text
    assert f'class="difflink" href="/diff?target=zoo&amp;a={ids[-2]}&amp;b={ids[-1]}"' in flame
    assert 'class="difflink"' not in client.get(f"/snapshots/{ids[0]}/flame").text  # nothing before it
    finding = client.get(f"/findings/{zoo_finding(uiworld.world).id}?target=zoo").text
    assert f'class="flamelink" href="/snapshots/{ids[-1]}/flame"' in finding


def test_diff_page_refuses_other_targets_snapshots(client: TestClient, uiworld: UiWorld) -> None:
    w = uiworld.world
    assert client.get("/diff?target=nope").status_code == 404
    r = client.get(f"/diff?target=zoo&a={w.states_ids['debug2']}")
    assert r.status_code == 404 and "no snapshot" in r.text
    assert client.get("/diff?target=zoo&b=999999").status_code == 404
    assert client.get("/diff").status_code == 422  # target is required
    assert client.get("/diff?target=zoo&a=-1").status_code == 404


def test_diff_flame_tree_widths() -> None:
    """Each stack is as wide as the larger of its counts; a frame's class is its change."""
    from grprof.model import Frame
    from grprof.server.ui.diffflame import change, diff_tree
    from grprof.store.model import StoredGroup

    def grp(count: int, *fns: str) -> StoredGroup:
        frames = [Frame(fn, "/x.go", 1) for fn in fns]  # innermost first
        return StoredGroup(fns[0], fns[0], count, "chan receive", {}, 0, 0, 0, {}, frames, None)

    a = [grp(10, "leaf1", "main.h"), grp(4, "gone", "main.h"), grp(3, "same", "main.x")]
    b = [grp(25, "leaf1", "main.h"), grp(7, "fresh", "main.h"), grp(3, "same", "main.x")]
    t = diff_tree(a, b)
    h = t.root.children["main.h"]
    assert t.root.count == 25 + 4 + 7 + 3
    assert h.count == 25 + 4 + 7 and t.sides[id(h)] == (14, 32)
    assert t.sides[id(h.children["gone"])] == (4, 0) and h.children["gone"].count == 4
    assert [change(*t.sides[id(h.children[k])]) for k in ("leaf1", "gone", "fresh")] == [
        "grown",
        "gone",
        "new",
    ]
    assert change(*t.sides[id(t.root.children["main.x"])]) == "same"
    assert change(5, 2) == "shrunk"


# -- label search -------------------------------------------------------------------------


def test_search_by_label_value_finds_the_groups(client: TestClient, uiworld: UiWorld) -> None:
    """evil's dumps label each payload's goroutines `k=<payload>` and `<payload>=<all payloads>`."""
    w = uiworld.world
    (newest, *_) = w.store.snapshots("evil", limit=1)
    _, groups = w.store.snapshot(newest.id) or (None, [])
    value = PAYLOADS[4]  # {{7*7}}: no markup, one group
    want = [g.labels["k"][value] for g in groups if value in g.labels.get("k", {})]
    assert want == [15]
    for query in (value, f"k={value}", f" k = {value} "):
        html = client.get("/search?" + urllib.parse.urlencode({"q": query})).text
        # Only the target's newest snapshot with the value: its group, its count.
        assert re.findall(r"snapshot (\d+), ", html) == [str(newest.id)], query
        got = re.findall(r'<td class="num">([\d,]+) <span class="small muted">of', html)
        assert [int(n) for n in got] == want, query
        assert 'class="tname" href="/targets/evil"' in html
        assert "hitlink" in html and "filter=%7B%7B7%2A7%7D%7D" in html
    # A value under five keys (one per payload) in each of five groups: each group once.
    all_ = " ".join(PAYLOADS)
    html = client.get("/search?" + urllib.parse.urlencode({"q": all_})).text
    assert html.count('class="group hit"') == 5
    # A key the value is not under, and an unknown value, find nothing.
    for query in (f"team={value}", "no-such-value"):
        html = client.get("/search?" + urllib.parse.urlencode({"q": query})).text
        assert 'class="group hit"' not in html and "No goroutine carries" in html
    # The header's search box is on every page.
    assert '<form method="get" action="/search" class="headsearch"' in client.get("/").text


def test_search_hostile_value_is_text(client: TestClient) -> None:
    html = client.get("/search?" + urllib.parse.urlencode({"q": f"k={HOSTILE}"})).text
    assert_safe_markup(html)
    assert html.count('class="group hit"') == 1  # the group of the payload, in evil's newest snapshot
    assert 'href="/targets/evil?' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


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
    assert_clean(b, url)


def follow(b: Browser, selector: str) -> None:
    """Click a link and check the page it opens like `visit` does."""
    b.events.clear()
    b.click(selector)
    b.wait_event("Page.loadEventFired")
    assert_clean(b, selector)


def assert_clean(b: Browser, url: str) -> None:
    """No CSP violation, console error, dialog, failed request or HTTP error since the load."""
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
    from gobuild import run_goapp
    from serveproc import run_serve
    from test_serve import healthy, leaky

    # states: goroutines with pprof labels (`plain.key/x=bare_value`), for the label search.
    with leaky() as a, healthy() as b, run_goapp("states", "-n", "1") as (_, c):
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
        lines += ["  - name: states", f"    url: {c}"]
        cfg.write_text("\n".join(lines) + "\n")
        args = ["--config", str(cfg), "--db", str(tmp / "g.db")]
        if token:
            (tmp / "token").write_text(token)
            args += ["--api-token-file", str(tmp / "token")]
        with run_serve(args) as srv:
            yield srv, a


def goroutine_snapshots(srv: Any, target: str, after: str) -> int:
    """How many goroutine profiles (not goroutineleak ones) of `target` were stored after `after`."""
    metas = srv.get(f"/api/v1/targets/{target}/snapshots?limit=1000")["snapshots"]
    return sum(m["profile"] == "goroutine" and m["time"] > after for m in metas)


def leak_finding(srv: Any, token: str | None = None) -> Any:
    fs = srv.get("/api/v1/findings?target=leaky&verdict=leak", token=token)["findings"]
    return next((f for f in fs if f["site"] and f["site"]["function"] == "main.leakyHandler.func1"), None)


@needs_chromium
@pytest.mark.slow
def test_browser_real_serve_shows_the_leak(browser: Browser, tmp_path: Path) -> None:
    with real_serve(tmp_path) as (srv, _):
        found = srv.wait_for(lambda: leak_finding(srv), timeout=120)
        # Goroutine profiles since the leak was found: the flame graph shows it, and has one to diff with.
        srv.wait_for(lambda: goroutine_snapshots(srv, "leaky", after=found["first_seen"]) >= 2, timeout=60)
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
        # The fix's "after" part counts the goroutines, which grow between the scrapes: its
        # "before" part is the same.
        fix = b.js("document.querySelector('pre.fix code').textContent")
        assert fix.split("// after")[0].strip() == found["fix"].split("// after")[0].strip()
        assert "main.leakyHandler.func1" in text
        assert b.csp_violations() == [] and b.console_errors() == []
        # finding -> flame graph -> diff, by clicking.
        follow(b, "a.flamelink")
        assert b.js("location.pathname").endswith("/flame")
        # The leak's frames name the finding (they are red when no healthy goroutine shares them:
        # handlers still sleeping in the same function do, now and then).
        assert b.js("document.querySelectorAll('#flame0 g.f[data-finding^=\"leak finding\"]').length") > 0
        follow(b, "a.difflink")
        assert b.js("location.pathname") == "/diff"
        assert b.js("document.querySelectorAll('#diff0 g.f').length") > 1
        b.click("#diff0 g.f:not(.root) rect")  # the report's script zooms the diff too
        assert b.js("location.hash").startswith("#zoom=diff0-n")
        assert b.csp_violations() == [] and b.console_errors() == []
        # Search a label value from the header's box: it finds the labelled group of `states`.
        srv.wait_for(lambda: srv.get("/api/v1/search?key=plain.key/x&value=bare_value")["results"])
        b.click("form.headsearch input[name=q]")
        b.send("Input.insertText", text="bare_value")
        b.events.clear()
        b.js("document.querySelector('form.headsearch').requestSubmit()")
        b.wait_event("Page.loadEventFired")
        assert_clean(b, "/search")
        assert b.js("location.pathname + location.search") == "/search?q=bare_value"
        hits = b.js("[...document.querySelectorAll('tr.hit')].map(r => r.innerText)")
        assert hits and all("states" in h and "plain.key/x" in h for h in hits), hits
        follow(b, "a.hitlink")
        assert b.js("location.pathname") == "/targets/states"
        assert b.js("document.querySelectorAll('#groups tr.group').length") >= 1
        # The Capture button: a debug=2 of the leaky service now, stored, and shown.
        visit(b, srv.base + "/targets/leaky")
        before = {m["id"] for m in srv.get("/api/v1/targets/leaky/snapshots?limit=1000")["snapshots"]}
        follow(b, "form.capture button[type=submit]")
        params = dict(urllib.parse.parse_qsl(b.js("location.search").lstrip("?")))
        assert b.js("location.pathname") == "/targets/leaky" and params.get("captured") == "1", params
        assert int(params["snapshot"]) not in before
        assert "captured: snapshot" in b.js("document.querySelector('form.capture').innerText")
        assert "debug=2" in b.js("document.querySelector('select[name=snapshot] option:checked').textContent")
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


def test_target_chart_marks_deploys_and_reloads(client: TestClient, uiworld: UiWorld) -> None:
    """A deploy (the build changed between two stored snapshots) and a config reload are
    squares on the target chart, not links, their text escaped in the tooltip; a range
    without them has none."""
    store = uiworld.world.store
    now = dt.datetime.now(dt.UTC)
    path = Path(__file__).parent / "fixtures" / "states" / "go1.26.8" / "goroutine.debug2.txt"
    for i, go in enumerate(("1.26.8", "1.26.8", "1.27.3")):
        snap = grprof.load(path)
        snap.time, snap.go_version = now - dt.timedelta(minutes=12 - 5 * i), go
        store.add_snapshot("deployed", snap)
    store.add_event("reload", f"config version 1 → 2: {PAYLOADS[0]} (SIGHUP)", now - dt.timedelta(minutes=1))
    html = client.get("/targets/deployed").text
    assert_safe_markup(html)
    events = re.findall(r'<g class="marker event (\w+)">(.*?)</g>', html, re.S)
    titles = {k: html_unescape(re.sub(r".*<title>(.*)</title>.*", r"\1", b, flags=re.S)) for k, b in events}
    assert titles == {
        "deploy": "deploy: go1.26.8 → go1.27.3",
        "reload": "config version 1 → 2: <script>alert(1)</script> (SIGHUP)",
    }
    assert all("<rect " in body and "<a " not in body for _, body in events)
    # A custom range before them: no event marker.
    early = (now - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    late = (now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert 'class="marker event' not in client.get(f"/targets/deployed?from={early}&to={late}").text


def test_a_reload_of_a_real_serve_is_marked_on_the_target_chart(tmp_path: Path) -> None:
    """`grprof serve` records the reload it applied (what changed, in a few words) and the
    target page's chart marks it; the edit seen twice (the signal and the file watcher) is
    one marker."""
    import signal

    from serveproc import free_port, run_serve

    cfg = tmp_path / "grprof.yaml"
    dead = f"http://127.0.0.1:{free_port()}/debug/pprof/goroutine"

    def write(version: int, names: Sequence[str]) -> None:
        lines = [f"version: {version}", "scrape: {interval: 1s, timeout: 1s}", "targets:"]
        lines += [f"  - {{name: {n}, url: '{dead}'}}" for n in names]
        cfg.write_text("\n".join(lines) + "\n")

    write(1, ["one"])
    with run_serve(["--config", str(cfg), "--db", str(tmp_path / "g.db")]) as srv:
        assert 'class="marker event' not in srv.get("/targets/one")
        write(2, ["one", "two"])
        srv.process.send_signal(signal.SIGHUP)
        srv.wait_for(lambda: "now running config version 2" in srv.logs())
        srv.wait_for(lambda: 'class="marker event reload"' in srv.get("/targets/one"))
        time.sleep(2.5)  # the file watcher's poll sees the same edit
        html = srv.get("/targets/one")
        titles = re.findall(r'<g class="marker event reload">.*?<title>(.*?)</title></g>', html, re.S)
        assert len(titles) == 1, titles
        want = r"config version 1 → 2: targets \(\+1\) \((SIGHUP|file change)\)"
        assert re.fullmatch(want, html_unescape(titles[0])), titles


@needs_chromium
def test_browser_fix_is_coloured_in_light_and_dark(browser: Browser, uiworld: UiWorld) -> None:
    """The highlighted fix in Chromium: keywords and comments take the stylesheet's colours,
    different from the code's own text and from each other, in light and in dark."""
    f = zoo_finding(uiworld.world)
    w = uiworld.world
    colour = """(sel) => getComputedStyle(document.querySelector(sel)).color"""
    seen = {}
    with serve(create_app(w.store, w.runtime)) as base:
        for scheme in ("light", "dark"):
            browser.send(
                "Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}]
            )
            browser.open(f"{base}/findings/{f.id}?target=zoo")
            got = {
                sel: browser.js(f"({colour})({json.dumps(sel)})")
                for sel in ("pre.fix code", "pre.fix .hl-k", "pre.fix .hl-c")
            }
            assert len(set(got.values())) == 3, (scheme, got)
            assert browser.csp_violations() == [] and browser.console_errors() == []
            seen[scheme] = got
        browser.send("Emulation.setEmulatedMedia", features=[])
    assert seen["light"]["pre.fix .hl-k"] != seen["dark"]["pre.fix .hl-k"]
