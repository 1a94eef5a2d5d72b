"""`grprof serve` configuration: YAML, validated with pydantic; errors name the key and line.

version: 3
listen: 127.0.0.1:8080
db: ./grprof.db
scrape: {interval: 15s, timeout: 10s, concurrency: 32}
targets:
  - {name: api, url: "http://10.0.0.7:6060", labels: {team: payments}}
"""

from __future__ import annotations

import re
import string
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from grprof._yamlvalid import Located, Strict, parse, validate
from grprof.canary.config import ServedCanary
from grprof.collect.model import Auth, Target
from grprof.detect.owners_yaml import OwnersFile
from grprof.detect.sla import SLA
from grprof.detect.sla_yaml import SLAConfig
from grprof.errors import GrprofError
from grprof.redact import RedactConfig
from grprof.serving.federation import FederateConfig
from grprof.sources import TargetError, resolve_target
from grprof.units import parse_duration, parse_size


class ConfigError(GrprofError):
    """The configuration is invalid: one line, `FILE:LINE: key.path: what is wrong`."""


def _duration(v: Any) -> Any:
    return parse_duration(v) if isinstance(v, str) else v


def _size(v: Any) -> Any:
    return parse_size(v) if isinstance(v, str) else v


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(_size), Field(gt=0)]
_NAME = re.compile(r"^[A-Za-z0-9_.:/@-]{1,200}$")


class BasicAuth(Strict):
    username: str
    password_file: str


class TLS(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


class AuthConfig(Strict):
    bearer_token_file: str | None = None
    basic_auth: BasicAuth | None = None
    tls: TLS | None = None

    def to_auth(self) -> Auth:
        tls = self.tls or TLS()
        basic = self.basic_auth
        return Auth(
            bearer_token_file=self.bearer_token_file,
            basic_username=basic.username if basic else None,
            basic_password_file=basic.password_file if basic else None,
            ca_file=tls.ca_file,
            cert_file=tls.cert_file,
            key_file=tls.key_file,
            insecure_skip_verify=tls.insecure_skip_verify,
        )


class TargetConfig(Strict):
    name: str
    url: str
    labels: dict[str, str] = Field(default_factory=dict)
    auth: AuthConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits and . _ - : / @ (at most 200)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        """Any form `grprof analyze` takes (`host:port`, a base URL, a `/debug/pprof/` URL),
        normalized to the base URL the scraper appends `/debug/pprof/...` to
        (grprof.sources.resolve_target). A `?debug=N` is dropped: `scrape.format` decides."""
        try:
            target = resolve_target(v, default="debug=1")
        except TargetError as e:
            raise ValueError(e.message) from None
        if target.query:
            raise ValueError(f"query parameters other than debug cannot be kept: {target.query}")
        return target.base

    def to_target(self) -> Target:
        auth = self.auth.to_auth() if self.auth else Auth()
        return Target(self.name, self.url, dict(self.labels), auth, "static")


class ScrapeConfig(Strict):
    interval: Duration = 15.0
    timeout: Duration = 10.0
    concurrency: int = Field(32, ge=1, le=4096)
    jitter: float = Field(0.1, ge=0, le=0.5)
    max_response: Size = 64 << 20
    format: Literal["debug=1", "debug=0", "debug=2"] = "debug=1"
    leak_profile_every: int = Field(4, ge=0)
    debug2_every: int = Field(4, ge=0)
    """Every N-th scrape of a target is a debug=2 (grprof.collect.policy); 0: never."""
    memstats_every: int = Field(4, ge=0)
    """After every N-th scrape, `memstats_path` for the runtime's stack figures (the cost of
    findings, docs/owners.md#cost); 0: never."""
    memstats_path: str = Field("/debug/pprof/heap?debug=1", pattern=r"^/")
    """The heap profile's text, or `/metrics` of client_golang's Go collector (GOMEMLIMIT too)."""
    debug2_max_goroutines: int = Field(10_000, ge=0)
    debug2_extra_gap: Duration = 30.0
    """An extra debug=2 asked for by findings comes at least this long after the target's last."""
    backoff_max: Duration = 300.0

    @model_validator(mode="after")
    def _timeout_fits(self) -> ScrapeConfig:
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) must not exceed interval ({self.interval:g}s)")
        if self.backoff_max < self.interval:  # the scraper's limit (collect.scraper.ScrapeSettings)
            key = "backoff_max" if "backoff_max" in self.model_fields_set else "interval"
            raise Located(
                (key,), f"interval ({self.interval:g}s) must not exceed backoff_max ({self.backoff_max:g}s)"
            )
        return self


class FileSDConfig(Strict):
    files: list[str] = Field(min_length=1)
    refresh: Duration = 30.0


class HttpSDConfig(Strict):
    url: str
    refresh: Duration = 60.0
    auth: AuthConfig | None = None


class RetentionConfig(Strict):
    raw: Duration = 3600.0
    raw_budget: Size = 256 << 20
    full: Duration = 86400.0
    downsample: Duration = 300.0
    max_age: Duration = 14 * 86400.0


TRACE_PLACEHOLDERS = ("trace_id", "span_id", "key", "value")


class UiConfig(Strict):
    """`ui:` (docs/ui.md): the web UI's settings."""

    trace_url: str | None = None
    """The finding page links a trace-id label value here: an http(s) URL template with
    `{trace_id}`, `{span_id}`, `{key}`, `{value}` (each URL-escaped; `{{`/`}}` for a brace)."""

    @field_validator("trace_url")
    @classmethod
    def _trace_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urllib.parse.urlsplit(v)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL template")
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(v) if f is not None]
        except ValueError as e:
            raise ValueError(f"not a URL template ({e}; write {{{{ and }}}} for a literal brace)") from None
        for name, spec, conv in fields:
            if name in TRACE_PLACEHOLDERS and (spec or conv):
                raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
            if name not in TRACE_PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{name}}}: use {', '.join(f'{{{p}}}' for p in TRACE_PLACEHOLDERS)}"
                )
        if not fields:
            raise ValueError("names no placeholder: put {trace_id} (or {value}) where the id goes")
        return v


class Config(Strict):
    version: int = Field(1, ge=1)
    listen: str = "127.0.0.1:8080"
    db: str = "./grprof.db"
    api_token_file: str | None = None
    ui: UiConfig = UiConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    targets: list[TargetConfig] = Field(default_factory=list)
    file_sd: list[FileSDConfig] = Field(default_factory=list)
    http_sd: list[HttpSDConfig] = Field(default_factory=list)
    sla: dict[str, SLAConfig] = Field(default_factory=dict)
    """Per target name (or `default`): the latency SLA and where its p95 comes from
    (`grprof.detect.sla_yaml.SLAConfig`: latency, p95 or prometheus + query, timeout, points)."""
    rules: list[str] = Field(default_factory=list)
    canary: ServedCanary = Field(default_factory=ServedCanary.shipped)
    """`POST /api/v1/canary`'s settings: keys of data/canary.yaml replacing the shipped ones."""
    owners: OwnersFile | None = None
    """Who owns each finding: `label`, `prefixes`, `unowned` (docs/owners.md)."""
    redact: RedactConfig | None = None
    """Label values replaced before anything stores or shows them (docs/owners.md#redaction)."""
    memory_limit: Size | None = None
    """The targets' memory limit: findings say when their stack growth reaches it."""
    retention: RetentionConfig = RetentionConfig()
    federate: FederateConfig | None = None
    """Other grprof instances this one pulls and serves as one view (docs/serve.md#federation)."""

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, v: Any) -> str:
        text = str(v)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return text

    def sla_for(self, target: str) -> SLA | None:
        """The target's SLA, else the `default` one, else None."""
        entry = self.sla.get(target, self.sla.get("default"))
        return entry.to_sla() if entry is not None else None

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, v: list[TargetConfig]) -> list[TargetConfig]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"two targets are named {t.name!r}")
            seen.add(t.name)
        return v

    def static_targets(self) -> list[Target]:
        return [t.to_target() for t in self.targets]


# -- loading -------------------------------------------------------------------------------


def parse_config(text: str, name: str = "<config>") -> Config:
    doc = parse(text, name, ConfigError)
    if doc.data is None:
        doc = replace(doc, data={})
    config: Config = validate(Config, doc, ConfigError)
    return config


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise ConfigError(f"{p}: cannot read the configuration: {why}") from None
    return parse_config(text, str(p))
