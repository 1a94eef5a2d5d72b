"""The target page's Capture button (docs/ui.md#capture): the API's on-demand debug=2 capture
behind the session's CSRF token. The daemon's capture is test_api's `Daemon`, which stores a
recorded dump as the real one stores its scrape; tests/test_ui.py clicks the button of a real
`grprof serve`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api import TOKEN, Daemon, World, build_world
from test_ui import HOSTILE, assert_safe_markup, csrf_of

from grprof.server.api import create_app
from grprof.server.runtime import CaptureError
from grprof.server.ui.routes import SESSION_COOKIE


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build_world(tmp_path)
    yield w
    w.store.close()


@pytest.fixture
def daemon(world: World) -> Iterator[tuple[Daemon, TestClient]]:
    d = Daemon(world)
    with TestClient(create_app(world.store, world.runtime, capture=d.capture)) as c:
        yield d, c


def capture_form(html: str) -> str | None:
    m = re.search(r'<form method="post" action="([^"]+)" class="capture">', html)
    return m.group(1) if m else None


def test_capture_button_stores_a_snapshot(daemon: tuple[Daemon, TestClient], world: World) -> None:
    d, c = daemon
    page = c.get("/targets/zoo")
    assert capture_form(page.text) == "/targets/zoo/capture"
    assert page.cookies.get(SESSION_COOKIE), "the form's CSRF token needs a session"
    assert_safe_markup(page.text)
    r = c.post("/targets/zoo/capture", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and d.calls == ["zoo"]
    (newest,) = world.store.snapshots("zoo", limit=1)
    assert r.headers["location"] == f"/targets/zoo?captured=1&snapshot={newest.id}"
    shown = c.get(r.headers["location"]).text
    assert f'<option value="{newest.id}" selected>' in shown and f"captured: snapshot {newest.id}" in shown


def test_capture_refuses_a_post_without_the_csrf_token(daemon: tuple[Daemon, TestClient]) -> None:
    d, c = daemon
    token = csrf_of(c.get("/targets/zoo").text)
    cookie = c.cookies[SESSION_COOKIE]
    assert c.post("/targets/zoo/capture", data={}).status_code == 403
    assert c.post("/targets/zoo/capture", data={"csrf": "0" * 64}).status_code == 403
    r = c.post("/targets/zoo/capture", data={"csrf": token}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.text
    c.cookies.clear()  # the token is the session's: without its cookie it is refused
    r = c.post("/targets/zoo/capture", data={"csrf": token})
    assert r.status_code == 403 and "reload the page" in r.text
    assert d.calls == []  # nothing was captured
    c.cookies.set(SESSION_COOKIE, cookie)
    assert c.post("/targets/zoo/capture", data={"csrf": token}, follow_redirects=False).status_code == 303


def test_capture_only_of_this_replicas_targets(daemon: tuple[Daemon, TestClient], world: World) -> None:
    d, c = daemon
    token = csrf_of(c.get("/targets/zoo").text)
    assert capture_form(c.get("/targets/remote").text) is None  # scraped by the other replica
    r = c.post("/targets/remote/capture", data={"csrf": token})
    assert r.status_code == 404 and "not a target of this replica" in r.text
    assert d.calls == []


@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        (CaptureError(f"HTTP 500 {HOSTILE}"), 502, "HTTP 500 &lt;script&gt;"),
        ({"status": "refused", "error": "too many goroutines"}, 409, "too many goroutines"),
        ({"status": "error", "error": HOSTILE}, 502, "&lt;script&gt;alert(1)"),
    ],
)
def test_capture_failures_are_pages(
    daemon: tuple[Daemon, TestClient], reply: object, code: int, message: str
) -> None:
    d, c = daemon
    d.reply = reply  # type: ignore[assignment]
    r = c.post("/targets/zoo/capture", data={"csrf": csrf_of(c.get("/targets/zoo").text)})
    assert r.status_code == code and message in r.text, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert_safe_markup(r.text)


def test_no_capture_button_without_capture(world: World) -> None:
    with TestClient(create_app(world.store, world.runtime)) as c:
        page = c.get("/targets/zoo")
        assert capture_form(page.text) is None and SESSION_COOKIE not in page.cookies
        c.get("/paste")  # a session and its token
        r = c.post("/targets/zoo/capture", data={"csrf": csrf_of(c.get("/paste").text)})
        assert r.status_code == 501


def test_capture_needs_a_login_with_a_token(world: World) -> None:
    d = Daemon(world)
    with TestClient(create_app(world.store, world.runtime, capture=d.capture, api_token=TOKEN)) as c:
        assert c.post("/targets/zoo/capture", data={"csrf": "x"}).status_code == 401
        ok = c.post("/login", data={"token": TOKEN, "next": "/targets/zoo"})
        assert ok.status_code == 200
        r = c.post("/targets/zoo/capture", data={"csrf": csrf_of(ok.text)}, follow_redirects=False)
        assert r.status_code == 303 and d.calls == ["zoo"]
