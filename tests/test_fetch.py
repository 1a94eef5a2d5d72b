"""One collection path (grprof.collect.fetch): the size-capped gunzip and the fetch errors are
the same for `analyze URL`, `watch`, the scraper of `serve` and the Prometheus query.

Real HTTP servers on loopback: a gzip bomb stops at the cap on every path, a truncated gzip
is one clear error, and a gzip Content-Encoding and a gzipped body (debug=0) both work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import grprof
from grprof import watch
from grprof.collect import fetch
from grprof.collect.fetch import FetchError, Gunzip, gunzip, gunzip_checked
from grprof.collect.model import ScrapeResult, Target
from grprof.collect.prometheus import PrometheusError, query_prometheus
from grprof.collect.scraper import Scraper, ScrapeSettings
from grprof.detect.detector import Options
from grprof.errors import ParseError, SourceError
from grprof.loader import load_all

MIB = 1 << 20
CAP = 8 * MIB
ZOO = Path(__file__).parent / "fixtures" / "zoo"
DEBUG2 = (ZOO / "0-warm-up.goroutine.debug2.txt").read_bytes()
DEBUG0 = (ZOO / "0-warm-up.goroutine.debug0.pb.gz").read_bytes()
BOMB = gzip.compress(b"\0" * (64 * MIB), 9)  # ~64 KiB that would become 64 MiB
PROM_400 = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
PROM_OK = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [0, "0.18"]}}).encode()


def _truncated(data: bytes) -> bytes:
    z = gzip.compress(data)
    return z[: len(z) // 2]


# path -> (body, Content-Encoding gzip?)
ROUTES: dict[str, tuple[bytes, bool]] = {
    "/bomb-ce": (BOMB, True),
    "/bomb-body": (BOMB, False),
    "/truncated-ce": (_truncated(DEBUG2), True),
    "/truncated-body": (_truncated(DEBUG2), False),
    "/dump-ce": (gzip.compress(DEBUG2), True),
    "/dump-body": (gzip.compress(DEBUG2), False),
    "/debug0": (DEBUG0, False),
    "/debug0-ce": (gzip.compress(DEBUG0), True),
    "/prom/api/v1/query": (PROM_OK, False),
    "/prom-gz/api/v1/query": (gzip.compress(PROM_OK), True),
    "/prom-bomb/api/v1/query": (BOMB, True),
    "/prom-big/api/v1/query": (b" " * (2 * MIB), False),
    "/prom-400/api/v1/query": (
        gzip.compress(b'{"status":"error","errorType":"bad_data","error":"parse error"}'),
        True,
    ),
    "/bomb": (BOMB, False),  # a service: watch asks for /bomb/debug/pprof/goroutine?debug=1
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        # A route is a URL, or the base of a service (the scraper and watch add the pprof path).
        path = self.path.split("?", 1)[0]
        for suffix in ("/debug/pprof/goroutine", "/debug/pprof/goroutineleak"):
            if path not in ROUTES:
                path = path.removesuffix(suffix)
        body, ce = ROUTES.get(path, (b"no such route", False))
        if path == "/prom-400/api/v1/query":  # Prometheus explains a bad query, gzipped when asked
            self.send_response(400)
        elif body == b"no such route":
            self.send_response(404)
        else:
            self.send_response(200)
        if ce:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stopped reading at its cap
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def scrape(url: str, max_response: int = CAP) -> ScrapeResult:
    async def main() -> ScrapeResult:
        scraper = Scraper(ScrapeSettings(timeout=10.0, max_response=max_response), lambda r: None)  # type: ignore[arg-type,return-value]
        await scraper.start()
        try:
            return await scraper.fetch(Target("t", url), "debug=1")
        finally:
            await scraper.stop()

    return asyncio.run(main())


def expected_total(path: str) -> int:
    """Goroutines in the fixture a route serves (debug=0 and debug=2 are two captures)."""
    name = "0-warm-up.goroutine.debug0.pb.gz" if "debug0" in path else "0-warm-up.goroutine.debug2.txt"
    return grprof.load(ZOO / name).total


# -- the gunzip itself -------------------------------------------------------------------------


def test_gunzip_stops_at_the_cap_without_inflating_the_rest() -> None:
    g = Gunzip(CAP)
    with pytest.raises(FetchError) as err:
        for _ in g.feed(BOMB):
            pass
    assert err.value.reason == "too_large"
    assert str(err.value) == "gzip: decompressed data exceeds the size limit of 8 MiB (capped)"
    assert g.total <= CAP + fetch.CHUNK


def test_gunzip_members_trailing_bytes_and_small_chunks() -> None:
    data = b"goroutine 1 [running]:\n" * 10_000
    z = gzip.compress(data)
    assert gunzip(z + z, CAP) == data + data  # `cat a.gz b.gz`
    assert gunzip(z + b"trailing garbage", CAP) == data
    g = Gunzip(CAP, members="one")
    assert b"".join(p for i in range(0, len(z + z), 97) for p in g.feed((z + z)[i : i + 97])) == data


def test_truncated_and_corrupt_gzip_are_one_line_errors() -> None:
    with pytest.raises(FetchError, match=r"^gzip: stream ends early \(truncated\?\)$") as err:
        gunzip(_truncated(DEBUG2), CAP)
    assert err.value.reason == "parse_error" and err.value.offset
    bad = bytearray(gzip.compress(DEBUG2))
    bad[20:60] = b"\xff" * 40
    with pytest.raises(FetchError, match=r"^gzip: corrupt data \(") as err:
        gunzip(bytes(bad), CAP)
    assert err.value.reason == "parse_error"


def test_gunzip_checked_refuses_bombs_and_hands_on_the_profile() -> None:
    with pytest.raises(FetchError, match="exceeds the size limit of 8 MiB"):
        gunzip_checked(BOMB, CAP)
    assert gunzip_checked(DEBUG0, CAP) == gzip.decompress(DEBUG0)  # gunzipped once, handed on
    assert gunzip_checked(_truncated(DEBUG2), CAP) is None  # cut or corrupt: the parser says so


# -- a gzip bomb stops at the cap on every path ------------------------------------------------


@pytest.mark.parametrize("path", ["/bomb-ce", "/bomb-body"])
def test_bomb_analyze_url(server: str, path: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(
        SourceError, match=r"exceeds the size limit of 8 MiB \(capped; raise it with --max-size\)$"
    ):
        load_all(server + path, max_size=CAP)
    assert time.monotonic() - t0 < 10


def test_bomb_watch(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # watch reads through the same loader; its cap is the loader's (capped here at 8 MiB).
    monkeypatch.setattr(watch, "load_all", functools.partial(load_all, max_size=CAP))
    w = watch.Watcher(server + "/bomb", Options())
    with pytest.raises(SourceError, match="exceeds the size limit of 8 MiB"):
        w.poll()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/bomb-ce", "decompressed response exceeds the size limit of 8 MiB"),
        ("/bomb-body", "the gzip profile decompressed exceeds the size limit of 8 MiB"),
    ],
)
def test_bomb_serve_scraper(server: str, path: str, message: str) -> None:
    r = scrape(server + path)
    assert r.status == "too_large", r.error
    assert message in r.error
    assert r.body == b""


@pytest.mark.parametrize("path", ["/prom-bomb", "/prom-big"])
def test_bomb_prometheus(server: str, path: str) -> None:
    with pytest.raises(
        PrometheusError, match=r"exceeds the size limit of 1 MiB \(capped\); not a one-sample query result$"
    ):
        query_prometheus(server + path, "up", timeout=5)


def test_prometheus_answer_plain_and_gzipped(server: str) -> None:
    assert query_prometheus(server + "/prom", "up") == 0.18
    assert query_prometheus(server + "/prom-gz", "up") == 0.18
    with pytest.raises(PrometheusError, match=r": HTTP 400 bad_data: parse error$"):
        query_prometheus(server + "/prom-400", "up")


# -- a truncated gzip is one clear error -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/truncated-ce", "gzip: Content-Encoding ends early (truncated?)"),
        ("/truncated-body", "gzip: stream ends early (truncated file?)"),
    ],
)
def test_truncated_gzip_analyze_url(server: str, path: str, message: str) -> None:
    with pytest.raises(ParseError) as err:
        load_all(server + path)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_truncated_gzip_content_encoding_scraper(server: str) -> None:
    r = scrape(server + "/truncated-ce")
    assert r.status == "parse_error"
    assert r.error.endswith("gzip: Content-Encoding ends early (truncated?)")


# -- Content-Encoding gzip and a gzipped body both work ----------------------------------------


@pytest.mark.parametrize("path", ["/dump-ce", "/dump-body", "/debug0", "/debug0-ce"])
def test_gzip_content_encoding_and_gzipped_body_analyze(server: str, path: str) -> None:
    want = grprof.load(
        ZOO / ("0-warm-up.goroutine.debug0.pb.gz" if "debug0" in path else "0-warm-up.goroutine.debug2.txt")
    ).total
    snaps = load_all(server + path)
    assert len(snaps) == 1 and snaps[0].total == want


@pytest.mark.parametrize("path", ["/dump-ce", "/debug0", "/debug0-ce"])
def test_gzip_content_encoding_and_gzipped_body_scraper(server: str, path: str) -> None:
    r = scrape(server + path)
    assert r.status == "ok", r.error
    want = grprof.load(
        ZOO / ("0-warm-up.goroutine.debug0.pb.gz" if "debug0" in path else "0-warm-up.goroutine.debug2.txt")
    ).total
    assert grprof.load(r.body).total == want


def test_http_errors_share_the_taxonomy(server: str) -> None:
    with pytest.raises(FetchError) as err:
        fetch.get(server + "/nope", timeout=5, max_size=CAP)
    assert (err.value.reason, err.value.http_status, str(err.value)) == (
        "not_found",
        404,
        "HTTP 404 Not Found",
    )
    assert scrape(server + "/nope").status == "not_found"
    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        load_all(server + "/nope")
