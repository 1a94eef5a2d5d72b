"""One collection path: the size-capped gunzip, the fetch errors, and the synchronous HTTP GET.

- `Gunzip`: incremental gunzip that stops as soon as the output passes a cap (a gzip bomb of
  a few kilobytes never becomes gigabytes in memory). `grprof analyze` on a file or URL and
  `grprof watch` (grprof.sources), the scraper of `grprof serve` (a gzip `Content-Encoding`
  and a gzipped debug=0 body, grprof.collect.scraper) and the Prometheus query all use it.
- `FetchError`: why a fetch stopped, as a reason code (the scraper's `ScrapeStatus` values)
  and one line for people; `http_status`, `location` and `body` (the start of an error answer)
  when the server answered.
- `get()`: the synchronous HTTP client (urllib) of `analyze URL`, `watch` and the Prometheus
  query: basic auth from `user:password@` in the URL, redirects followed or refused, a
  timeout per read and a deadline for the whole body, a cap on the bytes on the wire and,
  with `decode=True`, on the decompressed ones. The asynchronous scraper keeps aiohttp (one
  event loop, hundreds of targets) and shares the gunzip and the errors.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from grprof.units import human_size

# The HTTP client (http.client, urllib.request: email, ssl, about 25 ms) is imported by the
# functions that fetch: `grprof analyze FILE` reads and gunzips through this module too.
if TYPE_CHECKING:
    import urllib.error
    import urllib.request

CHUNK = 4 << 20
"""Bytes read from a socket or produced by the gunzip at a time."""
GZIP_MAGIC = b"\x1f\x8b"

Reason = Literal["too_large", "parse_error", "http_error", "not_found", "timeout", "unreachable", "redirect"]
"""Why a fetch stopped: `too_large` (a cap: wire bytes, Content-Length or decompressed),
`parse_error` (corrupt or truncated gzip), `http_error` (a non-2xx answer, a broken one, an
unsupported Content-Encoding), `not_found` (404), `timeout`, `unreachable` (DNS, refused,
reset, TLS), `redirect` (not followed, too many, or off the target)."""


class FetchError(Exception):
    """A fetch that stopped: `reason` (a `Reason`), `str()` one line saying why."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        http_status: int | None = None,
        *,
        offset: int | None = None,
        location: str | None = None,
        body: bytes = b"",
        limit: int | None = None,
        what: str = "",
    ) -> None:
        super().__init__(" ".join(message.split()))
        self.reason: Reason = reason
        self.message = str(self)
        self.http_status = http_status
        self.offset = offset
        """Compressed bytes read before a gzip error."""
        self.location = location
        """A redirect's Location, when one was not followed."""
        self.body = body
        """The start of an error answer (Prometheus explains its 400s there)."""
        self.limit = limit
        self.what = what
        """For `too_large`: the cap, and what passed it."""

    @property
    def status(self) -> Reason:
        """The reason under the scraper's name for it (`ScrapeResult.status`)."""
        return self.reason


def too_large(what: str, limit: int, http_status: int | None = None, hint: str = "") -> FetchError:
    """`{what} exceeds the size limit of 8 MiB (capped)`: the one message for every cap;
    `hint` says how to raise it where people can (`raise it with --max-size`)."""
    text = f"{what} exceeds the size limit of {human_size(limit)} (capped{'; ' + hint if hint else ''})"
    return FetchError("too_large", text, http_status, limit=limit, what=what)


# -- gunzip --------------------------------------------------------------------------------


@dataclass
class Gunzip:
    """Incremental, size-capped gunzip of one stream.

    `feed(data)` yields the decompressed bytes (pieces of at most `CHUNK`) and raises
    `FetchError("too_large")` as soon as the output passes `limit`, `FetchError("parse_error")`
    on corrupt data; `close()` raises `FetchError("parse_error")` when the stream stopped
    inside a gzip member (a truncated file or answer). Concatenated members (`cat a.gz b.gz`)
    are one stream, as for gzip(1), unless `members="one"` (an HTTP Content-Encoding);
    anything else after a member is ignored, as gzip(1) and Go's reader do.
    """

    limit: int
    members: Literal["one", "many"] = "many"
    what: str = "gzip: decompressed data"
    """How `too_large` names the output."""
    total: int = 0
    """Decompressed bytes so far."""
    offset: int = 0
    """Compressed bytes consumed so far (for error positions)."""
    _d: Any = field(default=None, repr=False)
    _in_member: bool = False
    _done: bool = False

    def __post_init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        """A gzip member ended and no other began."""
        return not self._in_member and self.offset > 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._done:
            self._in_member = True
            d = self._d
            out = self._inflate(d, data)
            rest = d.unused_data if d.eof else d.unconsumed_tail
            self.offset += len(data) - len(rest)
            yield from self._emit(out)
            while not d.eof and not rest:  # all input taken, output zlib held back at the cap
                more = self._inflate(d, b"")
                if not more:
                    break
                yield from self._emit(more)
            if d.eof:
                self._in_member = False
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if self.members == "one" or rest[:2] != GZIP_MAGIC:
                    self._done = True  # trailing bytes: ignored
                    rest = b""
            data = rest

    def _inflate(self, d: Any, data: bytes) -> bytes:
        room = max(self.limit - self.total, 0) + 1  # one byte more than fits tells "too large"
        try:
            out: bytes = d.decompress(data, min(CHUNK, room))
        except zlib.error as e:
            detail = str(e).removeprefix("Error -3 while decompressing data: ")
            raise FetchError("parse_error", f"gzip: corrupt data ({detail})", offset=self.offset) from None
        return out

    def _emit(self, out: bytes) -> Iterator[bytes]:
        self.total += len(out)
        if self.total > self.limit:
            raise too_large(self.what, self.limit)
        if out:
            yield out

    def close(self, what: str = "stream") -> None:
        """Raise when the input ended inside a member: `gzip: {what} ends early (truncated?)`."""
        if self._in_member:
            raise FetchError("parse_error", f"gzip: {what} ends early (truncated?)", offset=self.offset)


def gunzip(data: bytes, limit: int, what: str = "gzip: decompressed data") -> bytes:
    """All of one gzip stream, capped (`Gunzip`)."""
    g = Gunzip(limit, what=what)
    out = b"".join(g.feed(data))
    g.close()
    return out


def gunzip_checked(data: bytes, limit: int, what: str = "the gzip profile") -> bytes | None:
    """`data` gunzipped, or None when it is cut or corrupt gzip (the parser's business: it says
    so in its own words); raises `too_large` past `limit` (a debug=0 profile is itself gzip: a
    bomb must stop before the parser). The scraper hands the result on with the body, so a
    profile is gunzipped once, not once to check it and again to parse it."""
    g = Gunzip(limit, what=f"{what} decompressed")
    try:
        out = b"".join(g.feed(data))
        g.close()
    except FetchError as e:
        if e.reason == "too_large":
            raise
        return None
    return out


# -- the synchronous HTTP GET --------------------------------------------------------------


@functools.cache
def _opener(follow_redirects: bool) -> urllib.request.OpenerDirector:
    """The opener that follows redirects, or the one that refuses them; built once each."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener() if follow_redirects else urllib.request.build_opener(NoRedirect)


@dataclass
class Response:
    """An answered GET: read the body with `chunks()` (wire bytes, as sent) or `read()`."""

    url: str
    status: int
    headers: Mapping[str, str]
    _resp: Any = field(repr=False)
    timeout: float = 30.0
    deadline: float | None = None
    max_size: int = 1 << 30

    @property
    def content_encoding(self) -> str:
        return (self.headers.get("Content-Encoding") or "").strip().lower()

    def chunks(self) -> Iterator[bytes]:
        """The body as sent (no Content-Encoding undone), capped at `max_size` wire bytes."""
        import http.client  # loaded already: `get` answered

        wire = 0
        with self._resp:
            while True:
                try:
                    c = self._resp.read(CHUNK)
                except TimeoutError:
                    raise FetchError(
                        "timeout", f"timed out after {self.timeout:g}s reading the response"
                    ) from None
                except http.client.HTTPException as e:
                    raise FetchError("http_error", f"bad HTTP answer: {type(e).__name__} {e}") from None
                except OSError as e:
                    raise FetchError("unreachable", f"connection failed while reading: {e}") from None
                if not c:
                    return
                wire += len(c)
                if wire > self.max_size:
                    raise too_large("response", self.max_size, self.status)
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise FetchError("timeout", f"no complete answer within {self.timeout:g}s")
                yield bytes(c)

    def read(self, decode: bool = True) -> bytes:
        """The whole body; with `decode`, a gzip Content-Encoding undone (capped too)."""
        enc = self.content_encoding
        if not decode or enc in ("", "identity"):
            return b"".join(self.chunks())
        if enc not in ("gzip", "x-gzip"):
            raise FetchError("http_error", f"unsupported Content-Encoding {enc!r}", self.status)
        g = Gunzip(self.max_size, members="one", what="decompressed response")
        out = b"".join(piece for c in self.chunks() for piece in g.feed(c))
        g.close("Content-Encoding")
        return out


def basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """The URL without `user:password@`, and the Authorization header it meant."""
    import base64

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    user = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    header = "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), {"Authorization": header}


def get(
    url: str,
    *,
    timeout: float,
    max_size: int,
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = True,
    accept_gzip: bool = True,
    deadline: float | None = None,
) -> Response:
    """GET `url` and return once the headers are in; the body is read from the `Response`.

    Raises `FetchError`: `not_found`/`http_error` for a non-2xx answer (with its status and
    the start of its body), `redirect` for a 3xx when `follow_redirects` is off, `timeout`,
    `unreachable`. `deadline` (time.monotonic()) bounds the whole body, the timeout each read.
    """
    import http.client
    import urllib.error
    import urllib.request

    target, auth = basic_auth(url)
    hdrs = {"User-Agent": "grprof", **({"Accept-Encoding": "gzip"} if accept_gzip else {}), **auth}
    hdrs.update(headers or {})
    opener = _opener(follow_redirects)
    try:
        resp = opener.open(urllib.request.Request(target, headers=hdrs), timeout=timeout)
    except urllib.error.HTTPError as e:
        body = _error_body(e)
        if 300 <= e.code < 400:
            where = e.headers.get("Location", "?")
            raise FetchError(
                "redirect",
                f"HTTP {e.code} redirect to {where} not followed",
                e.code,
                location=where,
                body=body,
            ) from None
        reason: Reason = "not_found" if e.code == 404 else "http_error"
        raise FetchError(reason, f"HTTP {e.code} {e.reason}".strip(), e.code, body=body) from None
    except urllib.error.URLError as e:
        raise _os_error(e.reason, timeout, connecting=True) from None
    except http.client.HTTPException as e:
        raise FetchError("http_error", f"bad HTTP answer: {type(e).__name__} {e}".strip()) from None
    except (TimeoutError, OSError) as e:
        raise _os_error(e, timeout, connecting=False) from None
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_size:
        resp.close()
        raise too_large(f"Content-Length {length}", max_size, resp.status)
    return Response(target, resp.status, resp.headers, resp, timeout, deadline, max_size)


def _error_body(e: urllib.error.HTTPError, limit: int = 1 << 16) -> bytes:
    """The start of an error answer, its gzip Content-Encoding undone (what decodes of it)."""
    import http.client

    try:
        raw = e.read(limit) or b""
    except (OSError, http.client.HTTPException):
        return b""
    if (e.headers.get("Content-Encoding") or "").strip().lower() not in ("gzip", "x-gzip"):
        return raw
    g = Gunzip(limit, members="one")
    out = bytearray()
    try:
        for piece in g.feed(raw):
            out += piece
    except FetchError:
        pass
    return bytes(out)


def _os_error(reason: object, timeout: float, *, connecting: bool) -> FetchError:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        when = "(connecting)" if connecting else "waiting for a response"
        return FetchError("timeout", f"timed out after {timeout:g}s {when}")
    if isinstance(reason, OSError) and reason.strerror:
        return FetchError("unreachable", f"unreachable: {reason.strerror}")
    return FetchError("unreachable", f"unreachable: {reason}")


__all__ = [
    "CHUNK",
    "GZIP_MAGIC",
    "FetchError",
    "Gunzip",
    "Reason",
    "Response",
    "get",
    "gunzip",
    "gunzip_checked",
    "too_large",
]
