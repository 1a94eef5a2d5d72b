"""Fake pprof targets on loopback, healthy and misbehaving, for scraper and serve tests.

`with fake_targets() as ft:` runs one aiohttp server (plus a few raw TCP listeners) in
a background thread with its own event loop, so sync pytest code can use it. Each
behaviour lives under its own path prefix and is its own target: `ft.url("slow")` is a
base URL, the scraper appends `/debug/pprof/goroutine?debug=1`.

Behaviours (`BEHAVIOURS`):
  healthy     the recorded go1.26.8 states fixtures (debug=0/1/2 and goroutineleak)
  noleak      like healthy, but goroutineleak is 404 "Unknown profile" like a Go built
              without the profile
  sluggish    like healthy, answering after 0.3 s
  never       reads the request and never answers
  slow        answers 200 and then one byte every 0.5 s
  huge        streams 200 MB (chunked, no Content-Length), never held in memory
  huge-cl     the same with a Content-Length of 200 MB
  garbage     200 OK with 64 KiB of random bytes
  loop        302 to itself, forever
  offsite     302 to the same server under another host name (localhost): off the target
  badloc      302 to an unparsable Location
  hop         one 302 to `landing` (healthy) on the same host:port (allowed)
  gzip        the debug=1 fixture with Content-Encoding: gzip
  gzip-bomb   Content-Encoding: gzip that inflates to 100 MB of zeros
  pb-bomb     for debug=0: a "profile" that is a gzip of 100 MB of zeros
  error500    HTTP 500
  flaky       HTTP 500 while `ft.failing` is set, else healthy
  bearer      healthy only with `Authorization: Bearer <ft.bearer_token>`, else 401
  basic       healthy only with basic auth `ft.basic_user` / `ft.basic_password`, else 401
  sd          serves `ft.sd_document` (an HTTP SD JSON body) with `ft.sd_status`

Raw listeners: `ft.raw_garbage_url` (accepts, writes random non-HTTP bytes, closes),
`ft.silent_url` (accepts, never reads or writes) and `ft.dead_url` (nothing listens).

Every request is recorded in `ft.hits` (behaviour, profile, debug level, monotonic
time, Authorization header); `ft.max_concurrency[b]` is the most requests one behaviour
had in flight at once; `ft.sent[b]` counts the bytes the streaming behaviours wrote.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gzip
import os
import pathlib
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "states" / "go1.26.8"
BEHAVIOURS = (
    "healthy noleak sluggish landing never slow huge huge-cl garbage loop offsite badloc hop "
    "gzip gzip-bomb pb-bomb error500 flaky bearer basic sd"
).split()
HUGE = 200 * 1000 * 1000
BOMB = 100 * 1000 * 1000


@dataclass(frozen=True, slots=True)
class Hit:
    behaviour: str
    profile: str
    debug: str
    t: float
    """time.monotonic() when the request arrived (the same clock as asyncio's loop.time())."""
    authorization: str


@functools.cache
def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@functools.cache
def gzip_of_zeros(size: int) -> bytes:
    """A gzip member inflating to `size` zero bytes, built without holding them."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(size // len(block))]
    parts.append(c.compress(bytes(size % len(block))))
    parts.append(c.flush())
    return b"".join(parts)


class FakeTargets:
    """The server's state, shared between its thread and the test (under a lock)."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: list[Hit] = []
        self.sent: Counter[str] = Counter()
        self.max_concurrency: Counter[str] = Counter()
        self.failing = True
        self.bearer_token = "s3cret"
        self.basic_user, self.basic_password = "grprof", "pa55 word"
        self.sd_document: object = []
        self.sd_status = 200
        self.raw_garbage_url = ""
        self.silent_url = ""
        self.dead_url = ""
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()

    def url(self, behaviour: str) -> str:
        assert behaviour in BEHAVIOURS, behaviour
        return f"{self.base}/{behaviour}"

    def hits_of(self, behaviour: str, profile: str | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.behaviour == behaviour and profile in (None, h.profile)]

    # -- the aiohttp side ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/sd", self._sd)
        app.router.add_get("/{behaviour}/debug/pprof/{profile}", self._handle)
        return app

    async def _sd(self, request: web.Request) -> web.Response:
        import json

        self._record(request, "sd", "sd")
        return web.Response(
            status=self.sd_status, body=json.dumps(self.sd_document).encode(), content_type="application/json"
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        behaviour, profile = request.match_info["behaviour"], request.match_info["profile"]
        if behaviour not in BEHAVIOURS:
            raise web.HTTPNotFound()
        self._record(request, behaviour, profile)
        with self._lock:
            self._active[behaviour] += 1
            self.max_concurrency[behaviour] = max(self.max_concurrency[behaviour], self._active[behaviour])
        try:
            return await self._behave(request, behaviour, profile)
        finally:
            with self._lock:
                self._active[behaviour] -= 1

    def _record(self, request: web.Request, behaviour: str, profile: str) -> None:
        hit = Hit(
            behaviour,
            profile,
            request.query.get("debug", ""),
            time.monotonic(),
            request.headers.get("Authorization", ""),
        )
        with self._lock:
            self.hits.append(hit)

    async def _behave(self, request: web.Request, behaviour: str, profile: str) -> web.StreamResponse:
        match behaviour:
            case "healthy" | "noleak" | "landing":
                return self._profile(request, profile, leak=behaviour != "noleak")
            case "sluggish":
                await asyncio.sleep(0.3)
                return self._profile(request, profile, leak=True)
            case "never":
                await asyncio.Event().wait()
                raise AssertionError("unreachable")
            case "slow":
                return await self._slow(request)
            case "huge" | "huge-cl":
                return await self._huge(request, behaviour)
            case "garbage":
                return web.Response(body=os.urandom(64 * 1024), content_type="text/plain")
            case "loop":
                raise web.HTTPFound(request.path_qs)
            case "offsite":
                port = request.url.port
                raise web.HTTPFound(f"http://localhost:{port}/healthy/debug/pprof/{profile}?debug=1")
            case "badloc":
                return web.Response(status=302, headers={"Location": "http://[::1/broken"})
            case "hop":
                raise web.HTTPFound(f"/landing/debug/pprof/{profile}?{request.query_string}")
            case "gzip":
                body = gzip.compress(fixture("goroutine.debug1.txt"))
                return web.Response(
                    body=body, headers={"Content-Encoding": "gzip"}, content_type="text/plain"
                )
            case "gzip-bomb":
                body = gzip_of_zeros(BOMB)
                return web.Response(
                    body=body, headers={"Content-Encoding": "gzip"}, content_type="text/plain"
                )
            case "pb-bomb":
                return web.Response(body=gzip_of_zeros(BOMB), content_type="application/octet-stream")
            case "error500":
                return web.Response(status=500, text="internal error\n")
            case "flaky":
                if self.failing:
                    return web.Response(status=500, text="flaky: failing\n")
                return self._profile(request, profile, leak=True)
            case "bearer":
                return self._authorized(request, profile, f"Bearer {self.bearer_token}")
            case "basic":
                token = base64.b64encode(f"{self.basic_user}:{self.basic_password}".encode()).decode()
                return self._authorized(request, profile, f"Basic {token}")
        raise web.HTTPNotFound()

    def _authorized(self, request: web.Request, profile: str, expected: str) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="Unauthorized\n")
        return self._profile(request, profile, leak=True)

    def _profile(self, request: web.Request, profile: str, leak: bool) -> web.Response:
        debug = request.query.get("debug", "0")
        if profile == "goroutineleak" and not leak:
            return web.Response(status=404, text="Unknown profile\n")
        if profile not in ("goroutine", "goroutineleak"):
            return web.Response(status=404, text="Unknown profile\n")
        if debug == "0":
            name = f"{profile}.debug0.pb.gz"
            return web.Response(body=fixture(name), content_type="application/octet-stream")
        level = "2" if debug == "2" else "1"
        return web.Response(body=fixture(f"{profile}.debug{level}.txt"), content_type="text/plain")

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/plain"
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for byte in fixture("goroutine.debug1.txt"):
                await resp.write(bytes([byte]))
                self._add_sent("slow", 1)
                await asyncio.sleep(0.5)
        return resp

    async def _huge(self, request: web.Request, behaviour: str) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/plain"
        if behaviour == "huge-cl":
            resp.content_length = HUGE
        await resp.prepare(request)
        chunk = b"goroutine profile: total 1\n".ljust(64 * 1024, b"x")
        with contextlib.suppress(ConnectionError):
            for _ in range(HUGE // len(chunk)):
                await resp.write(chunk)
                self._add_sent(behaviour, len(chunk))
        return resp

    def _add_sent(self, behaviour: str, n: int) -> None:
        with self._lock:
            self.sent[behaviour] += n


async def _raw_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        await reader.read(1024)
        writer.write(b"\x00\xffNOT HTTP AT ALL\r\n" + os.urandom(4096))
        await writer.drain()
    writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:  # shutdown; ending quietly keeps asyncio's streams from complaining
        writer.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.contextmanager
def fake_targets(ssl_context: ssl.SSLContext | None = None) -> Iterator[FakeTargets]:
    """Run the fake targets in a thread; yield their state; stop them."""
    ft = FakeTargets()
    gzip_of_zeros(BOMB)  # built now, not in a request (it takes a few hundred ms)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    problem: list[BaseException] = []

    async def main() -> None:
        runner = web.AppRunner(ft.app(), shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        raw = await asyncio.start_server(_raw_garbage, "127.0.0.1", 0)
        silent = await asyncio.start_server(_silent, "127.0.0.1", 0)
        port = runner.addresses[0][1]
        ft.base = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        ft.raw_garbage_url = f"http://127.0.0.1:{raw.sockets[0].getsockname()[1]}"
        ft.silent_url = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}"
        ft.dead_url = f"http://127.0.0.1:{free_port()}"
        started.set()
        await stop.wait()
        raw.close()
        silent.close()
        await runner.cleanup()

    def thread_main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test below
            problem.append(exc)
            started.set()
        finally:
            # Handlers that never answer are still pending: end them before closing.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=thread_main, name="fake-targets", daemon=True)
    thread.start()
    started.wait(30)
    if problem:
        raise problem[0]
    try:
        yield ft
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


# -- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TLSFiles:
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_cert)
        return ctx


def make_tls(directory: pathlib.Path) -> TLSFiles:
    """A throwaway CA and a server (127.0.0.1, localhost) and client cert it signed,
    made with the openssl CLI."""
    d = directory

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]
    run(
        "req",
        "-x509",
        *ec,
        *ca_ext,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    )
    for who, usage, san in (
        ("server", "serverAuth", "IP:127.0.0.1,DNS:localhost"),
        ("client", "clientAuth", ""),
    ):
        ext = d / f"{who}.ext"
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            f"extendedKeyUsage={usage}",
            "authorityKeyIdentifier=keyid",
            "subjectKeyIdentifier=hash",
        ]
        ext.write_text("\n".join([*lines, f"subjectAltName={san}"] if san else lines) + "\n")
        run("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN=grprof test {who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{who}.crt", "-days", "2", "-extfile", ext.name)  # fmt: skip
    return TLSFiles(*(str(d / n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")))
