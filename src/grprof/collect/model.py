"""What collection deals in: targets and the results of scraping them."""

from __future__ import annotations

import builtins
import datetime as dt
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

GoroutineKind = Literal["debug=1", "debug=0", "debug=2", "goroutineleak"]
"""The goroutine profiles a scrape fetches."""
ScrapeKind = GoroutineKind | Literal["memstats"]
"""...and `memstats`: the runtime's stack figures (`scrape.memstats_path`), parsed by formats.memstats."""
ScrapeStatus = Literal[
    "ok",  # fetched (parsing is the consumer's business: "parse_error" is recorded by it)
    "parse_error",
    "http_error",  # a non-2xx status
    "not_found",  # 404: for goroutineleak, the target does not have the profile
    "timeout",
    "unreachable",  # connection refused, DNS, TLS handshake
    "too_large",  # the response passed the size cap
    "redirect",  # too many redirects, or a redirect off the target
    "refused",  # policy: e.g. debug=2 on a target above the goroutine limit
]


@dataclass(frozen=True, slots=True)
class Auth:
    bearer_token_file: str | None = None
    basic_username: str | None = None
    basic_password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """A service to scrape. `url` is its base URL: `/debug/pprof/...` is appended."""

    name: str
    url: str
    labels: Mapping[str, str] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth)
    source: str = "static"
    """Where it came from: `static`, `file_sd:PATH`, `http_sd:URL`, `cli`."""


@dataclass(slots=True)
class ScrapeResult:
    target: str
    kind: ScrapeKind
    started: dt.datetime
    duration: float
    """Seconds, request start to last byte."""
    status: ScrapeStatus
    bytes: int = 0
    body: builtins.bytes = b""
    http_status: int | None = None
    error: str = ""
    """One line for people, empty when ok."""
    plain: builtins.bytes | None = None
    """The body gunzipped when it was gzip (debug=0), by the scraper's size check: what the
    parser reads, so the profile is gunzipped once; None for text, or cut or corrupt gzip."""
    reason: str = ""
    """Why a debug=2 was fetched (grprof.collect.policy.CaptureReason: `format`, `every`,
    `suspect`, `growth`, `demand`); empty for the other profiles."""


def redact_url(url: str) -> str:
    """The URL without user:password (a target URL may carry basic-auth credentials): what
    the API, the UI and the logs show."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
