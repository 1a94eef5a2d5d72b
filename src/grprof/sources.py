"""Where dumps come from: files, bytes, file objects, stdin and http(s) URLs.

Everything is read as a stream of byte chunks with gzip undone on the fly, so a
multi-gigabyte traceback never sits in memory whole, and a gzip bomb stops at the limit.
The gunzip, the HTTP GET and their errors are grprof.collect.fetch's, shared with the scraper
of `grprof serve` and the Prometheus query; here they become the CLI's `SourceError` and
`ParseError`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal, Protocol, Union
from urllib.parse import urlsplit, urlunsplit

from grprof.collect import fetch
from grprof.collect.fetch import CHUNK, GZIP_MAGIC, FetchError, Gunzip, too_large
from grprof.collect.policy import FORMATS, ScrapeFormat
from grprof.errors import GrprofError, ParseError, SourceError

DEFAULT_MAX_SIZE = 1 << 30
DEFAULT_TIMEOUT = 30.0
MAX_SIZE_HINT = "raise it with --max-size"
FILE_CHUNK = 1 << 20
"""Bytes read from a file at a time: a chunk the size of a core's cache is still in it when
the scanner reads it, and the same memory serves the next read; `CHUNK` (4 MB) reads of a
25 MB dump took 10 ms, these 3 (each chunk new memory the kernel had to clear first)."""


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, _Readable]


@dataclass
class Input:
    """An opened source: its display name and a stream of decompressed chunks."""

    name: str
    raw: Iterator[bytes]
    max_size: int = DEFAULT_MAX_SIZE
    mtime: float | None = None
    whole: bytes | None = None
    """The input when it was given as bytes (`raw` is then its slices)."""

    def chunks(self) -> Iterator[bytes]:
        """Decompressed content in chunks; raises SourceError past `max_size`.

        Bytes given whole, not gzipped and within `max_size`, come as a `Whole` iterator: its
        `data` is the input itself, which a parser may take instead of joining the chunks."""
        w = self.whole
        if w is not None and 2 <= len(w) <= self.max_size and w[:2] != GZIP_MAGIC:
            self.whole = None
            return Whole(w, self.raw)
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        first = b""
        for first in self.raw:
            if first:
                break
        if not first:
            return
        if first[:2] == GZIP_MAGIC or (len(first) < 2 and first[:1] == GZIP_MAGIC[:1]):
            yield from self._gunzip(first)
        else:
            total = 0
            for c in _chain(first, self.raw):
                total += len(c)
                if total > self.max_size:
                    raise self._error(too_large("input", self.max_size))
                yield c

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def _gunzip(self, first: bytes) -> Iterator[bytes]:
        g = Gunzip(self.max_size)
        try:
            for c in _chain(first, self.raw):
                yield from g.feed(c)
            g.close()
        except FetchError as e:
            raise self._error(e) from None

    def _error(self, e: FetchError) -> GrprofError:
        return source_error(self.name, e)


class Whole:
    """The chunks of an input held in memory whole, and the input itself (`data`)."""

    __slots__ = ("data", "chunks")

    def __init__(self, data: bytes, chunks: Iterator[bytes]) -> None:
        self.data = data
        self.chunks = chunks

    def __iter__(self) -> Whole:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)


def source_error(name: str, e: FetchError) -> GrprofError:
    """The CLI's error for a shared one: bad gzip is a ParseError (the input is not readable as
    a dump), anything else a SourceError; a cap says how to raise it."""
    if e.reason == "too_large" and e.limit is not None:
        return SourceError(name, too_large(e.what, e.limit, hint=MAX_SIZE_HINT).message)
    if e.reason == "parse_error":
        return ParseError(
            name,
            e.message.replace("stream ends early (truncated?)", "stream ends early (truncated file?)"),
            e.offset,
        )
    return SourceError(name, e.message)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _slices(data: bytes) -> Iterator[bytes]:
    """`data` in CHUNK pieces, each cut when asked for (a parser may take `data` whole)."""
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


def _read_stream(f: _Readable, size: int = CHUNK) -> Iterator[bytes]:
    while True:
        c = f.read(size)
        if not c:
            return
        yield bytes(c)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


# -- targets: what a person types for a live service -> the profile URL to fetch --------------

Profile = Literal["goroutine", "goroutineleak"]
PROFILES: tuple[Profile, ...] = ("goroutine", "goroutineleak")
PPROF = "/debug/pprof"
_PPROF_RE = re.compile(r"/debug/pprof(?=/|$)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEME_LESS = re.compile(
    r"^(?:[^/@\s]+@)?"  # user[:password]@
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"  # name, IPv4, [IPv6]
    r":[0-9]{1,5}(?:[/?#].*)?$"  # :port, then path or query
)


class TargetError(GrprofError, ValueError):
    """A target that names no goroutine profile grprof can fetch (a ValueError too, for
    validators such as the config's)."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.message = message


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """Where a target's goroutine profile is, as `resolve_target` worked it out."""

    url: str
    """What to fetch: the profile URL, or the URL as given when it is no pprof URL."""
    base: str
    """Where the service mounts `/debug/pprof`: `scheme://[userinfo@]host[:port][/prefix]`,
    without a trailing slash, query or fragment; `grprof watch` and `serve` append the
    profile paths to it."""
    profile: Profile | None
    """`goroutine` or `goroutineleak`; None for a URL fetched as given."""
    format: ScrapeFormat | None
    """The format asked for (`debug=0`, `debug=1`, `debug=2`); None for a URL fetched as
    given (its content tells)."""
    query: str = ""
    """The URL's query parameters other than `debug`, as given (`a=1&b=2`): kept on every
    profile URL of the target (`profile_url`)."""

    def profile_url(self, profile: Profile = "goroutine", fmt: ScrapeFormat = "debug=1") -> str:
        """Another profile or format of the same service, keeping the other query parameters."""
        return _profile_url(self.base, profile, fmt, self.query)


def looks_like_target(text: str) -> bool:
    """An `http(s)://` URL, or `host:port` with an optional path (`127.0.0.1:6060`,
    `[::1]:6060/debug/pprof/`); callers that also take file paths check for a file first."""
    return text[:8].lower().startswith(("http://", "https://")) or bool(_SCHEME_LESS.match(text))


def resolve_target(text: str, fmt: str | None = None, *, default: ScrapeFormat = "debug=2") -> ResolvedTarget:
    """The goroutine profile URL (and its format) that a target as people type it means.

    Why: people copy what they have at hand: the `host:port` the service listens on, its
    base URL, the `/debug/pprof/` index page they opened in a browser, or a profile URL with
    or without `?debug=N`. Fetched literally, all but the last answer with an HTML page or
    a 404, while the person plainly means "the goroutines of this service". `analyze`,
    `watch` and `serve` resolve every target with this one function, so the three agree.

    | given                                     | profile       | format                |
    |-------------------------------------------|---------------|-----------------------|
    | `host:port` (`http://` is added)          | goroutine     | `fmt`, else `default` |
    | `http://host:port`, `…/`                  | goroutine     | `fmt`, else `default` |
    | `…/debug/pprof`, `…/debug/pprof/`         | goroutine     | `fmt`, else `default` |
    | `…/debug/pprof/goroutine`                 | goroutine     | `fmt`, else `default` |
    | `…/debug/pprof/goroutine?debug=N`         | goroutine     | `fmt`, else `debug=N` |
    | `…/debug/pprof/goroutineleak[?debug=N]`   | goroutineleak | `fmt`, else N, else 1 |
    | `https://h/path/dump.txt` (no pprof path) | None (as is)  | None: from content    |

    - `fmt` (a `--format` option) wins over the URL's `?debug=N`, which wins over `default`
      (`analyze` wants debug=2, the full per-goroutine dump: ids, wait times, arguments;
      `watch` and `serve` poll the cheap debug=1 and let the capture policy choose).
    - goroutineleak defaults to debug=1 whatever `default` says: its debug=1 lists the
      leaked goroutines only, which is what that URL means (debug=2 prints every goroutine).
    - Whatever precedes `/debug/pprof` is kept: services that mount pprof under a prefix
      (`https://h/admin/debug/pprof/`) work; so do `https`, `user:password@` (sent as basic
      auth) and query parameters other than `debug` (tokens, proxies' keys).
    - A URL whose path is neither empty nor a pprof path is fetched as given, not rewritten:
      a dump served as a file (a CI artifact, a pastebin) stays readable; for `watch` and
      `serve`, which need a service, its path is the prefix `base` (pprof mounted there).

    Pure (no I/O). Raises TargetError (a ValueError) for a non-http(s) URL, one without a
    host or with a bad port, a `?debug=` or `fmt` other than 0, 1 or 2, or a pprof profile
    other than goroutine and goroutineleak (heap, mutex, ...: not goroutines).
    """
    raw = text.strip()
    if not _SCHEME.match(raw):
        if not _SCHEME_LESS.match(raw):
            raise TargetError(text, "not a URL: give http://host:port, https://... or host:port")
        raw = "http://" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetError(text, "must start with http:// or https://")
    try:
        _ = parts.port
    except ValueError:
        raise TargetError(text, "bad port") from None
    if not parts.hostname:
        raise TargetError(text, "no host in the URL")
    if fmt is not None and fmt not in FORMATS:
        raise TargetError(text, f"format {fmt}: use debug=0, debug=1 or debug=2")
    origin = f"{scheme}://{parts.netloc}"
    params = [p for p in parts.query.split("&") if p]
    query = "&".join(p for p in params if p.partition("=")[0] != "debug")
    m = _PPROF_RE.search(parts.path)
    if m is None and parts.path.strip("/"):
        as_given = urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
        return ResolvedTarget(as_given, origin + parts.path.rstrip("/"), None, None, query)
    prefix = parts.path[: m.start()].rstrip("/") if m else ""
    name = parts.path[m.end() :].strip("/") if m else ""
    if name and name not in PROFILES:
        raise TargetError(
            text, f"{PPROF}/{name} is not a goroutine profile (use {PPROF}/goroutine or goroutineleak)"
        )
    profile: Profile = "goroutineleak" if name == "goroutineleak" else "goroutine"
    levels = [p.partition("=")[2] for p in params if p.partition("=")[0] == "debug"]
    if levels and levels[0] not in _FORMAT_OF:  # the first one, as Go's FormValue reads it
        raise TargetError(text, f"debug={levels[0]}: use debug=0, debug=1 or debug=2")
    chosen: ScrapeFormat
    if fmt is not None:
        chosen = _FORMAT_OF[fmt.removeprefix("debug=")]
    elif levels:
        chosen = _FORMAT_OF[levels[0]]
    else:
        chosen = default if profile == "goroutine" else "debug=1"
    base = origin + prefix
    return ResolvedTarget(_profile_url(base, profile, chosen, query), base, profile, chosen, query)


def _profile_url(base: str, profile: Profile, fmt: ScrapeFormat, query: str) -> str:
    return f"{base}{PPROF}/{profile}?{fmt}&{query}" if query else f"{base}{PPROF}/{profile}?{fmt}"


_FORMAT_OF: dict[str, ScrapeFormat] = {"0": "debug=0", "1": "debug=1", "2": "debug=2"}


def redact(url: str) -> str:
    """`url` with the password of its userinfo shown as `***`, for messages and reports."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, hostport = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_source(
    source: Source,
    *,
    name: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> Input:
    """Open any supported source. Nothing is read beyond the first request or `open()`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return Input(name or "<bytes>", _slices(data), max_size, whole=data)
    if isinstance(source, str) and source == "-":
        return Input(name or "<stdin>", _read_stream(sys.stdin.buffer), max_size)
    if isinstance(source, str) and is_url(source):
        return _open_url(source, name or redact(source), max_size, timeout)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        label = name or path
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
            mtime = os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            raise SourceError(label, "no such file") from None
        except IsADirectoryError:
            raise SourceError(label, "is a directory, not a dump file") from None
        except OSError as e:
            raise SourceError(label, e.strerror or str(e)) from None
        return Input(label, _closing(f), max_size, mtime)
    if hasattr(source, "read"):
        attr = getattr(source, "name", None)
        return Input(name or (attr if isinstance(attr, str) else "<stream>"), _read_stream(source), max_size)
    raise TypeError(f"cannot read a goroutine dump from {type(source).__name__}")


def _closing(f: BinaryIO) -> Iterator[bytes]:
    with f:
        yield from _read_stream(f, FILE_CHUNK)


def _open_url(url: str, label: str, max_size: int, timeout: float) -> Input:
    # The body as sent: gzip (a Content-Encoding, or a gzipped file) is undone by `Input`,
    # with the same cap; the wire bytes are capped at `max_size` too.
    try:
        resp = fetch.get(url, timeout=timeout, max_size=max_size)
    except FetchError as e:
        raise source_error(label, e) from None

    def body() -> Iterator[bytes]:
        try:
            if resp.content_encoding in ("gzip", "x-gzip"):
                # Undone here, so a gzipped body under it (debug=0) is still seen as gzip by `Input`.
                g = Gunzip(max_size, members="one", what="decompressed response")
                for c in resp.chunks():
                    yield from g.feed(c)
                g.close("Content-Encoding")
            else:
                yield from resp.chunks()
        except FetchError as e:
            raise source_error(label, e) from None

    return Input(label, body(), max_size)
