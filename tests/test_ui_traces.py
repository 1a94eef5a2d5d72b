"""Trace links of the finding page (docs/ui.md#trace-links): label values of trace and span id
keys (grprof/data/trace_keys.yaml) linked through the serve config's `ui.trace_url`."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from test_api import build_world
from test_html import Browser, needs_chromium
from test_ui import HOSTILE, TRACE_ID, UiWorld, add_hostile, assert_safe_markup, visit

from grprof.config import ConfigError, UiConfig, parse_config
from grprof.server.api import create_app
from grprof.server.ui.traces import trace_keys, trace_link

TEMPO = "https://tempo.example/trace/{trace_id}"


def traced_finding(uw: UiWorld) -> str:
    """The id of evil's finding whose labels carry trace and span ids (test_ui.TRACE_LABELS)."""
    (f,) = [f for f in uw.world.store.findings(target="evil") if "trace_id" in f.finding.get("labels", {})]
    return f"/findings/{f.id}?target=evil"


def links(html: str) -> dict[str, str]:
    """Link text → href of the trace links."""
    from html import unescape

    return {
        unescape(text): unescape(href)
        for href, text in re.findall(r'<a class="tracelink" href="([^"]*)" rel="[^"]*">([^<]*)</a>', html)
    }


@pytest.fixture(scope="module")
def uiworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    """test_ui's world: evil's finding with trace labels among its hostile ones."""
    w = build_world(tmp_path_factory.mktemp("traces"))
    ids = add_hostile(w)
    yield UiWorld(w, ids)
    w.store.close()


@pytest.fixture(scope="module")
def setting() -> list[str | None]:
    """The template in force: a test changes it as a config reload would."""
    return [TEMPO]


@pytest.fixture(scope="module")
def client(uiworld: UiWorld, setting: list[str | None]) -> Iterator[TestClient]:
    w = uiworld.world
    with TestClient(create_app(w.store, w.runtime, trace_url=lambda: setting[0])) as c:
        yield c


def test_trace_ids_link_to_the_template(
    client: TestClient, uiworld: UiWorld, setting: list[str | None]
) -> None:
    setting[0] = TEMPO
    html = client.get(traced_finding(uiworld)).text
    got = links(html)
    # Every value of the trace_id key, URL-escaped into the path; the span key and the route
    # are not linked by a template that only takes a trace id.
    assert got == {
        TRACE_ID: f"https://tempo.example/trace/{TRACE_ID}",
        HOSTILE: "https://tempo.example/trace/" + urllib.parse.quote(HOSTILE, safe=""),
        '"onload="x': "https://tempo.example/trace/%22onload%3D%22x",
    }
    assert_safe_markup(html, links="https://tempo.example/trace/")
    assert "/checkout (5)" in html and "00f067aa0ba902b7 (3)" in html


def test_template_placeholders(client: TestClient, uiworld: UiWorld, setting: list[str | None]) -> None:
    # A reload changes the template: the next page uses it. {key} and {value} fit every id key.
    setting[0] = "https://jaeger.example/search?tags={key}%3D{value}"
    got = links(client.get(traced_finding(uiworld)).text)
    assert got[TRACE_ID] == f"https://jaeger.example/search?tags=trace_id%3D{TRACE_ID}"
    assert got["00f067aa0ba902b7"] == "https://jaeger.example/search?tags=x-b3-spanid%3D00f067aa0ba902b7"
    assert "/checkout" not in got  # route is no trace key
    setting[0] = "https://tempo.example/span/{span_id}"
    got = links(client.get(traced_finding(uiworld)).text)
    assert got == {"00f067aa0ba902b7": "https://tempo.example/span/00f067aa0ba902b7"}
    setting[0] = None  # no `ui.trace_url`: values are plain text
    html = client.get(traced_finding(uiworld)).text
    assert links(html) == {} and f"{TRACE_ID} (3)" in html
    setting[0] = TEMPO


def test_trace_keys_are_data() -> None:
    keys = trace_keys()
    for k in ("trace_id", "span_id", "otel.traceid", "traceid", "x-b3-traceid"):
        assert k in keys
    assert trace_link(TEMPO, "OTel.TraceID", "a b/c") == "https://tempo.example/trace/a%20b%2Fc"
    assert trace_link(TEMPO, "route", "x") is None
    assert trace_link(None, "trace_id", "x") is None
    assert trace_link(TEMPO, "trace_id", "") is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)//{trace_id}", "must be an http:// or https:// URL template"),
        ("ftp://x/{trace_id}", "must be an http:// or https:// URL template"),
        ("/trace/{trace_id}", "must be an http:// or https:// URL template"),
        ("https://x/{traceid}", "unknown placeholder {traceid}"),
        ("https://x/{trace_id!r}", "takes no format spec"),
        ("https://x/{", "literal brace"),
        ("https://x/trace", "names no placeholder"),
    ],
)
def test_config_refuses_bad_templates(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(f"version: 1\nui:\n  trace_url: '{url}'\n", "grprof.yaml")
    text = str(e.value)
    assert "\n" not in text and "grprof.yaml:3" in text and "trace_url" in text and message in text, text


def test_config_accepts_the_documented_templates() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "ui.md").read_text()
    examples = re.findall(r"^\s*trace_url: '(.+)'$", doc, re.M)
    assert len(examples) >= 3, "docs/ui.md shows Jaeger, Tempo and Grafana Explore"
    for url in examples:
        cfg = parse_config(f"version: 1\nui:\n  trace_url: '{url}'\n")
        assert cfg.ui == UiConfig(trace_url=url)
        link = trace_link(url, "trace_id", TRACE_ID)
        assert link is not None and TRACE_ID in link and link.startswith("https://")
    assert parse_config("version: 1\n").ui.trace_url is None


@needs_chromium
def test_browser_trace_links(tmp_path_factory: pytest.TempPathFactory, uiworld: UiWorld) -> None:
    from test_api import serve

    w = uiworld.world
    b = Browser(tmp_path_factory.mktemp("chromium-traces"))
    try:
        with serve(create_app(w.store, w.runtime, trace_url=lambda: TEMPO)) as base:
            visit(b, base + traced_finding(uiworld))
            hrefs = b.js("[...document.querySelectorAll('a.tracelink')].map(a => a.href)")
            assert f"https://tempo.example/trace/{TRACE_ID}" in hrefs
            assert HOSTILE in b.js("document.body.innerText")
            assert b.js("window.__dialogs") == []
    finally:
        b.close()


def test_serve_config_reaches_the_ui(uiworld: UiWorld, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`ui.trace_url` of `grprof serve`'s config, through the daemon's app, and a reload's."""
    import asyncio

    from grprof.serve import Daemon

    def config(url: str) -> str:
        return f"version: 1\ndb: {tmp_path_factory.mktemp('serve') / 'x.db'}\nui:\n  trace_url: '{url}'\n"

    async def run() -> list[dict[str, str]]:
        d = Daemon(parse_config(config(TEMPO)))
        d.store = uiworld.world.store
        app = d._api_server().config.app
        out = []
        with TestClient(app) as c:
            out.append(links(c.get(traced_finding(uiworld)).text))
            d.config = parse_config(config("https://jaeger.example/trace/{trace_id}"))  # as a reload does
            out.append(links(c.get(traced_finding(uiworld)).text))
        return out

    tempo, jaeger = asyncio.run(run())
    assert tempo[TRACE_ID] == f"https://tempo.example/trace/{TRACE_ID}"
    assert jaeger[TRACE_ID] == f"https://jaeger.example/trace/{TRACE_ID}"
