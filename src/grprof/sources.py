"""Where dumps come from: files, bytes, file objects, stdin and http(s) URLs.

Everything is read as a stream of byte chunks with gzip undone on the fly, so a
multi-gigabyte traceback never sits in memory whole, and a gzip bomb stops at the limit.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, Union

from grprof.errors import ParseError, SourceError
from grprof.units import human_size

CHUNK = 4 << 20
DEFAULT_MAX_SIZE = 1 << 30
DEFAULT_TIMEOUT = 30.0
_GZIP_MAGIC = b"\x1f\x8b"


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

    def chunks(self) -> Iterator[bytes]:
        """Decompressed content in chunks; raises SourceError past `max_size`."""
        first = b""
        for first in self.raw:
            if first:
                break
        if not first:
            return
        if first[:2] == _GZIP_MAGIC or (len(first) < 2 and first[:1] == _GZIP_MAGIC[:1]):
            yield from self._gunzip(first)
        else:
            total = 0
            for c in _chain(first, self.raw):
                total += len(c)
                if total > self.max_size:
                    raise SourceError(self.name, self._too_big())
                yield c

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def _too_big(self) -> str:
        return f"input exceeds the size limit of {human_size(self.max_size)} (raise it with --max-size)"

    def _gunzip(self, first: bytes) -> Iterator[bytes]:
        total = 0
        offset = 0  # compressed bytes consumed, for error positions
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        in_member = False
        for c in _chain(first, self.raw):
            while c:
                in_member = True
                try:
                    out = d.decompress(c, CHUNK)
                    if not d.eof and not d.unconsumed_tail:
                        out += d.decompress(b"", CHUNK)  # output zlib held back at the limit
                except zlib.error as e:
                    detail = str(e).removeprefix("Error -3 while decompressing data: ")
                    raise ParseError(self.name, f"gzip: corrupt data ({detail})", offset) from None
                rest = d.unused_data if d.eof else d.unconsumed_tail
                offset += len(c) - len(rest)
                total += len(out)
                if total > self.max_size:
                    raise SourceError(
                        self.name, "gzip: " + self._too_big().replace("input", "decompressed data")
                    )
                if out:
                    yield out
                if d.eof:
                    # Concatenated members (`cat a.gz b.gz`) are one stream, as for gzip(1);
                    # anything else after a member is trailing garbage, ignored as gzip(1) does.
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    in_member = False
                    rest = rest if rest[:2] == _GZIP_MAGIC else b""
                c = rest
        if in_member:
            raise ParseError(self.name, "gzip: stream ends early (truncated file?)", offset)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _read_stream(f: _Readable) -> Iterator[bytes]:
    while True:
        c = f.read(CHUNK)
        if not c:
            return
        yield bytes(c)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


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
        return Input(
            name or "<bytes>", iter([data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]), max_size
        )
    if isinstance(source, str) and source == "-":
        return Input(name or "<stdin>", _read_stream(sys.stdin.buffer), max_size)
    if isinstance(source, str) and is_url(source):
        return _open_url(source, name or source, max_size, timeout)
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
        yield from _read_stream(f)


def _open_url(url: str, label: str, max_size: int, timeout: float) -> Input:
    req = urllib.request.Request(url, headers={"User-Agent": "grprof", "Accept-Encoding": "gzip"})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise SourceError(label, f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise SourceError(label, f"timed out after {timeout:g}s (connecting)") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise SourceError(label, f"unreachable: {text}") from None
    except TimeoutError:
        raise SourceError(label, f"timed out after {timeout:g}s waiting for a response") from None
    except OSError as e:
        raise SourceError(label, f"unreachable: {e.strerror or e}") from None

    def body() -> Iterator[bytes]:
        with resp:
            try:
                yield from _read_stream(resp)
            except TimeoutError:
                raise SourceError(label, f"timed out after {timeout:g}s reading the response") from None
            except OSError as e:
                raise SourceError(label, f"connection failed while reading: {e}") from None

    return Input(label, body(), max_size)
