"""Federation: one `grprof serve` as the global view over other grprof instances (docs/serve.md).

    federate:
      interval: 15s
      timeout: 10s
      members:
        - {name: eu-1, url: "https://grprof.eu-1.internal:8080", token_file: /etc/grprof/eu-1.token}

On each interval the global instance pulls every member's open findings, targets and health
through the member's JSON API (`/api/v1/findings?state=new|ongoing`, `/api/v1/targets`,
`/healthz`): the same documents any client reads, never raw dumps, so a member needs nothing
new and the global instance stores nothing. Each member has its own task, its own deadline
(`timeout`) and its own last-known data: a slow or dead member only ages its own data and
never delays another's pull. A member whose data is older than two intervals is `stale`; its
data is still served, tagged with its age (`/api/v1/federation`). A 401 or 403 is named as
the member's token being refused, not as an outage.

Requests go through the scraper's path (`grprof.collect.scraper`: bearer token read from its
file at each pull so a rotated token applies, the TLS context per CA/cert/key, the size-capped
read), as http_sd does: there is no second HTTP client. Decoding (JSON, schema validation, in
pydantic-core) runs in one worker thread of its own: a 10 MB answer must not stall the event
loop, nor take the default executor's threads from the scrape pipeline.

This module imports nothing above `grprof.collect`, so `grprof.config` can take its
`FederateConfig` (the `federate:` key) without reaching into the daemon.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Annotated, Any

import aiohttp
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import from_json

from grprof import schema
from grprof._yamlvalid import Located, Strict, problem
from grprof.collect.fetch import FetchError
from grprof.collect.model import Auth
from grprof.collect.scraper import auth_headers, read_capped, ssl_options
from grprof.units import iso_utc, parse_duration, parse_size

log = logging.getLogger("grprof.federation")

STALE_INTERVALS = 2
"""A member is stale once its data is older than this many intervals."""
FINDING_STATES = ("new", "ongoing")
"""The lifecycles pulled: open findings. Resolved ones stay in the member's own history."""
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_TARGET_KEYS = frozenset(schema.Target.__required_keys__ | schema.Target.__optional_keys__)
_HEALTH_KEYS = frozenset(schema.HealthResponse.__required_keys__)


# -- configuration (the `federate:` key of the serve YAML) ---------------------------------


def _duration(v: Any) -> Any:
    return parse_duration(v) if isinstance(v, str) else v


def _size(v: Any) -> Any:
    return parse_size(v) if isinstance(v, str) else v


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(_size), Field(gt=0)]


class MemberTLS(Strict):
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> MemberTLS:
        if self.key_file and not self.cert_file:
            raise Located(("key_file",), "a TLS key file needs a cert file (cert_file)")
        return self


class MemberConfig(Strict):
    """One member: its cluster name (the `cluster` of everything it sends), its API base URL
    (`http(s)://host:port`, a path prefix allowed), the file of the bearer token its API wants,
    and TLS settings."""

    name: str
    url: str
    token_file: str | None = None
    tls: MemberTLS | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits and . _ - : (at most 100)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http:// or https:// URL of a grprof API")
        if parts.query or parts.fragment:
            raise ValueError(f"{v!r} must not have a query or fragment (give the API's base URL)")
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError as e:
            raise ValueError(f"{v!r}: {e}") from None
        return v.strip().rstrip("/")

    def auth(self) -> Auth:
        tls = self.tls or MemberTLS()
        return Auth(
            bearer_token_file=self.token_file,
            ca_file=tls.ca_file,
            cert_file=tls.cert_file,
            key_file=tls.key_file,
            insecure_skip_verify=tls.insecure_skip_verify,
        )


class FederateConfig(Strict):
    interval: Duration = 15.0
    timeout: Duration = 10.0
    """Per member and pull: all its requests, connect to last byte."""
    max_response: Size = 256 << 20
    """Bytes per answer (decompressed too)."""
    members: list[MemberConfig]

    @model_validator(mode="after")
    def _check(self) -> FederateConfig:
        if not self.members:
            raise Located(("members",), "list at least one member ({name, url})")
        if self.timeout > self.interval:
            raise Located(
                ("timeout",), f"timeout ({self.timeout:g}s) must not exceed interval ({self.interval:g}s)"
            )
        seen: set[str] = set()
        for i, m in enumerate(self.members):
            if m.name in seen:
                raise Located(("members", i, "name"), f"two members are named {m.name!r}")
            seen.add(m.name)
        return self


# -- what the global instance knows of a member ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Pulled:
    """One member's answer: every document of one pull, tagged with its cluster."""

    targets: tuple[schema.Target, ...]
    findings: tuple[schema.StoredFinding, ...]
    version: str | None
    at: dt.datetime
    """When the member had answered everything (UTC)."""
    mono: float
    """The same moment, `time.monotonic()`: ages are measured on it."""
    seconds: float
    """How long the pull took, decoding included."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member as the global instance knows it now; replaced (never changed) after each pull,
    so a reader (the API, /metrics, in threads) always sees one consistent state."""

    name: str
    url: str
    data: Pulled | None = None
    """The last successful pull: kept through failures, served with its age."""
    last_attempt: dt.datetime | None = None
    last_error: str | None = None
    """The latest pull's problem, one line; None once a pull succeeds."""
    auth_failed: bool = False
    """The latest pull was answered 401 or 403."""
    failures: int = 0

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the member answered its last successful pull; None when it never did."""
        if self.data is None:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - self.data.mono)

    def state(self, stale_after: float, now: float | None = None) -> schema.MemberState:
        if self.auth_failed:
            return "auth-failed"
        age = self.age(now)
        if age is None:
            return "pending" if self.last_attempt is None else "down"
        return "fresh" if age <= stale_after else "stale"

    def to_json(self, stale_after: float, now: float | None = None) -> schema.FederationMember:
        age = self.age(now)
        d = self.data
        return {
            "cluster": self.name,
            "url": self.url,
            "state": self.state(stale_after, now),
            "up": self.last_attempt is not None and self.last_error is None,
            "age_seconds": None if age is None else round(age, 3),
            "last_success": None if d is None else iso_utc(d.at),
            "last_attempt": iso_utc(self.last_attempt),
            "last_error": self.last_error,
            "failures": self.failures,
            "pull_seconds": None if d is None else round(d.seconds, 3),
            "version": None if d is None else d.version,
            "targets": 0 if d is None else len(d.targets),
            "findings": 0 if d is None else len(d.findings),
        }


class MemberError(Exception):
    """A pull that failed: `str()` is one line naming the member; `auth` for a 401/403."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.auth = auth


# -- decoding (pure: bytes in, tagged documents out) ----------------------------------------


def cluster_of(member: str, inner: object) -> str:
    """The cluster of an item: the member's name, or `member/inner` for an item the member
    federates itself (a global view over regional views)."""
    return f"{member}/{inner}" if isinstance(inner, str) and inner else member


def decode_targets(member: str, body: bytes) -> tuple[schema.Target, ...]:
    """A member's `/api/v1/targets` answer, tagged. Keys this version does not know (a newer
    member) are dropped; `local` is false (no target of a member is this instance's)."""
    doc = _json(member, "/api/v1/targets", body)
    items = doc.get("targets") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise MemberError(f"member {member}: GET /api/v1/targets: not a grprof targets answer")
    out = []
    for t in items:
        if isinstance(t, dict):
            t = {k: v for k, v in t.items() if k in _TARGET_KEYS}
            t["local"] = False
            t["cluster"] = cluster_of(member, t.get("cluster"))
        out.append(t)
    checked = _validate(member, "/api/v1/targets", schema.TargetsResponse, {"targets": out})
    return tuple(checked["targets"])


def decode_findings(
    member: str, body: bytes, path: str = "/api/v1/findings"
) -> tuple[schema.StoredFinding, ...]:
    """A member's `/api/v1/findings` answer (`grprof.findings/v1`), tagged."""
    doc = _json(member, path, body)
    if not isinstance(doc, dict) or doc.get("schema") != schema.FINDINGS_SCHEMA:
        raise MemberError(f"member {member}: GET {path}: not a {schema.FINDINGS_SCHEMA} answer")
    items = doc.get("findings")
    if isinstance(items, list):
        for f in items:
            if isinstance(f, dict):
                f["cluster"] = cluster_of(member, f.get("cluster"))
    checked = _validate(member, path, schema.FindingsResponse, doc)
    return tuple(checked["findings"])


def decode_version(member: str, body: bytes) -> str | None:
    """The member's grprof version, from its `/healthz`."""
    doc = _json(member, "/healthz", body)
    if not isinstance(doc, dict) or doc.get("status") != "ok":
        raise MemberError(f"member {member}: GET /healthz: not a grprof health answer")
    health = {k: v for k, v in doc.items() if k in _HEALTH_KEYS}
    checked = _validate(member, "/healthz", schema.HealthResponse, health)
    return str(checked["version"])


def _json(member: str, path: str, body: bytes) -> Any:
    try:
        return from_json(body)
    except ValueError as e:
        raise MemberError(f"member {member}: GET {path}: the answer is not JSON: {e}") from None


def _validate(member: str, path: str, model: Any, doc: Any) -> Any:
    try:
        return schema.validate(model, doc)
    except ValidationError as e:
        raise MemberError(f"member {member}: GET {path}: {problem(e, model, doc)}") from None


# -- pulling --------------------------------------------------------------------------------


class Federation:
    """Every member's last-known data, kept fresh by one task per member.

    `start()` begins pulling (the first pull of every member at once), `stop()` ends it. The
    API and /metrics read `members`, `targets()`, `findings()` and `status()` (any thread:
    each member's entry is replaced whole after a pull)."""

    def __init__(self, config: FederateConfig) -> None:
        self.config = config
        self.members: dict[str, Member] = {m.name: Member(m.name, m.url) for m in config.members}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._decoder: ThreadPoolExecutor | None = None
        """One thread decodes every member's answers in turn: decoding holds the GIL, more
        threads would not go faster, and the default executor stays free for the scrapes."""

    @property
    def interval(self) -> float:
        return self.config.interval

    @property
    def stale_after(self) -> float:
        return STALE_INTERVALS * self.config.interval

    async def start(self) -> None:
        # No connection limit of aiohttp's own (100 by default): 50 members x 4 requests
        # must not queue behind each other; each member's deadline bounds its own.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="federate-decode")
        self._tasks = [
            asyncio.create_task(self._loop(m), name=f"federate:{m.name}") for m in self.config.members
        ]

    async def reconfigure(self, config: FederateConfig) -> None:
        """Run with `config` from now on (a reload): every member's task restarts on the new
        settings; a member kept under the same name and URL keeps its last-known data."""
        old = self.members
        self.config = config
        self.members = {
            m.name: old[m.name] if m.name in old and old[m.name].url == m.url else Member(m.name, m.url)
            for m in config.members
        }
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            self._tasks = [
                asyncio.create_task(self._loop(m), name=f"federate:{m.name}") for m in config.members
            ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._decoder is not None:
            self._decoder.shutdown(wait=False, cancel_futures=True)
            self._decoder = None

    async def _loop(self, mc: MemberConfig) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            await self.pull(mc)
            # The next slot of a fixed grid: a long pull skips slots, never shifts the grid.
            n = max(n + 1, int((loop.time() - start) / self.interval) + 1)
            await asyncio.sleep(max(0.0, start + n * self.interval - loop.time()))

    async def pull(self, mc: MemberConfig) -> Member:
        """One pull of `mc`: all its documents or none; the member's new state (also kept in
        `members`). Never raises: what went wrong is the member's `last_error`."""
        old = self.members.get(mc.name) or Member(mc.name, mc.url)
        attempt = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        try:
            data = await self._fetch_all(mc, t0)
        except MemberError as e:
            new = replace(
                old, last_attempt=attempt, last_error=str(e), auth_failed=e.auth, failures=old.failures + 1
            )
            if old.last_error != new.last_error:
                log.warning("%s", e)
        except Exception as e:  # whatever a broken member provokes, the other members go on
            log.exception("member %s: unexpected error pulling %s", mc.name, mc.url)
            new = replace(
                old,
                last_attempt=attempt,
                last_error=f"member {mc.name}: unexpected error: {type(e).__name__}: {e}",
                auth_failed=False,
                failures=old.failures + 1,
            )
        else:
            if old.last_error is not None:
                log.info("member %s: answering again", mc.name)
            new = Member(mc.name, mc.url, data, attempt, None, False, 0)
        self.members[mc.name] = new
        return new

    async def _fetch_all(self, mc: MemberConfig, t0: float) -> Pulled:
        session = self._session
        if session is None:
            raise RuntimeError("the federation is not started")
        auth = mc.auth()
        try:
            headers = {**auth_headers(auth), "Accept": "application/json", "Accept-Encoding": "gzip"}
            tls = ssl_options(auth)
        except FetchError as e:  # an unreadable token file, a bad CA file
            raise MemberError(f"member {mc.name}: {e}") from None
        paths = ["/healthz", "/api/v1/targets", *(f"/api/v1/findings?state={s}" for s in FINDING_STATES)]
        try:
            async with asyncio.timeout(self.config.timeout):
                got = await asyncio.gather(
                    *(self._get(session, mc, p, headers, tls) for p in paths), return_exceptions=True
                )
        except TimeoutError:
            raise MemberError(
                f"member {mc.name}: no complete answer within {self.config.timeout:g}s"
            ) from None
        errors = [e for e in got if isinstance(e, BaseException)]
        if errors:  # a refused token says the most, then the first request's problem
            raise next((e for e in errors if isinstance(e, MemberError) and e.auth), errors[0])
        bodies = [b for b in got if isinstance(b, bytes)]
        loop = asyncio.get_running_loop()
        version, targets, findings = await loop.run_in_executor(
            self._decoder, _decode_all, mc.name, paths, bodies
        )
        done = time.monotonic()
        return Pulled(targets, findings, version, dt.datetime.now(dt.UTC), done, done - t0)

    async def _get(
        self,
        session: aiohttp.ClientSession,
        mc: MemberConfig,
        path: str,
        headers: Mapping[str, str],
        tls: Any,
    ) -> bytes:
        url = mc.url + path
        try:
            async with session.get(url, headers=dict(headers), ssl=tls, allow_redirects=False) as resp:
                if resp.status in (401, 403):
                    why = (
                        f"the token was refused ({resp.status})"
                        if "Authorization" in headers
                        else f"it wants a token ({resp.status}) and none is configured (token_file)"
                    )
                    raise MemberError(f"member {mc.name}: {why}", auth=True)
                if not 200 <= resp.status < 300:
                    raise MemberError(f"member {mc.name}: GET {path}: HTTP {resp.status}")
                return await read_capped(resp, self.config.max_response)
        except FetchError as e:
            raise MemberError(f"member {mc.name}: GET {path}: {e}") from None
        except (aiohttp.ClientError, OSError) as e:
            text = " ".join(str(e).split()) or type(e).__name__
            raise MemberError(f"member {mc.name}: GET {path}: unreachable: {text}") from None

    # -- views (the API and /metrics) --------------------------------------------------------

    def snapshot(self) -> list[Member]:
        """The members now, in configuration order."""
        return list(dict(self.members).values())

    def targets(self) -> list[schema.Target]:
        """Every member's last-known targets, tagged with their cluster."""
        return [t for m in self.snapshot() if m.data is not None for t in m.data.targets]

    def findings(self) -> list[schema.StoredFinding]:
        """Every member's last-known open findings, tagged with their cluster."""
        return [f for m in self.snapshot() if m.data is not None for f in m.data.findings]

    def status(self) -> schema.FederationResponse:
        now = time.monotonic()
        return {
            "interval_seconds": self.interval,
            "stale_after_seconds": self.stale_after,
            "members": [m.to_json(self.stale_after, now) for m in self.snapshot()],
        }


def _decode_all(
    member: str, paths: Sequence[str], bodies: Sequence[bytes]
) -> tuple[str | None, tuple[schema.Target, ...], tuple[schema.StoredFinding, ...]]:
    version = decode_version(member, bodies[0])
    targets = decode_targets(member, bodies[1])
    findings: list[schema.StoredFinding] = []
    for path, body in zip(paths[2:], bodies[2:], strict=True):
        findings += decode_findings(member, body, path)
    return version, targets, tuple(findings)


__all__ = [
    "FINDING_STATES",
    "STALE_INTERVALS",
    "FederateConfig",
    "Federation",
    "Member",
    "MemberConfig",
    "MemberError",
    "MemberTLS",
    "Pulled",
    "cluster_of",
    "decode_findings",
    "decode_targets",
]
