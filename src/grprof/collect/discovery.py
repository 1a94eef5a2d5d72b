"""Target discovery in Prometheus' formats: file_sd (JSON/YAML files) and HTTP SD.

Both carry a list of groups, `[{"targets": ["host:port", ...], "labels": {...}}]`.
Each `host:port` becomes a `Target`:

- url: `{__scheme__ or http}://host:port{__path_prefix__}`; `/debug/pprof/...` is
  appended when scraping, so `__path_prefix__` (e.g. `/admin`) is only for services
  that mount pprof below a prefix;
- name: the `instance` label, else `job/host:port` when `job` is set, else `host:port`;
- labels: every label whose name does not start with `__`.

A bad file or response is reported (one line, logged once per distinct error) and the
previous targets from that file or URL are kept.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Annotated

import aiohttp
from pydantic import AfterValidator, BeforeValidator, Field, StrictStr, model_validator

from grprof._yamlvalid import Document, Located, Strict, at, lines, parse, validate
from grprof.collect.model import Auth, Target
from grprof.collect.scraper import FetchError, auth_headers, read_capped, ssl_options
from grprof.errors import GrprofError

log = logging.getLogger("grprof.collect.discovery")

MAX_SD_RESPONSE = 16 << 20
NO_AUTH = Auth()
_LABEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ADDRESS_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?::(\d{1,5}))?")


class DiscoveryError(GrprofError):
    """A file_sd file or HTTP SD response is unusable; the message names it and the entry."""


# -- parsing -----------------------------------------------------------------------------


def _address(address: str) -> str:
    m = _ADDRESS_RE.fullmatch(address)
    if m is None or (m.group(1) is not None and not 0 < int(m.group(1)) < 65536):
        hint = " (put the scheme in the __scheme__ label)" if "://" in address else ""
        raise ValueError(f"{address!r} is not host:port{hint}")
    return address


def _label_name(name: str) -> str:
    if not _LABEL_RE.fullmatch(name):
        raise ValueError(f"label name {name!r} is not a valid Prometheus label name")
    return name


def _label_value(value: object) -> str:
    # YAML turns `port: 8080` into an int; Prometheus reads it as the string "8080".
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a string, got {_kind(value)} (quote it)")
    return str(value)


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


class TargetGroup(Strict):
    """One group of a file_sd file or HTTP SD answer (Prometheus' format)."""

    targets: list[Annotated[StrictStr, AfterValidator(_address)]]
    labels: dict[
        Annotated[StrictStr, AfterValidator(_label_name)], Annotated[str, BeforeValidator(_label_value)]
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _special_labels(self) -> TargetGroup:
        if self.labels.get("__scheme__", "http") not in ("http", "https"):
            raise Located(
                ("labels", "__scheme__"), f"must be http or https, not {self.labels['__scheme__']!r}"
            )
        prefix = self.labels.get("__path_prefix__", "")
        if prefix and not prefix.startswith("/"):
            raise Located(("labels", "__path_prefix__"), f"must start with /, not {prefix!r}")
        return self


def parse_groups(data: object, where: str, source: str, target_auth: Auth = NO_AUTH) -> list[Target]:
    """Targets from decoded file_sd / HTTP SD data. `where` names the input in errors."""
    return _targets(Document(where, data), source, target_auth)


def _targets(doc: Document, source: str, target_auth: Auth) -> list[Target]:
    if doc.data is None:
        return []  # an empty file: no targets
    groups: list[TargetGroup] = validate(list[TargetGroup], doc, DiscoveryError)
    targets: list[Target] = []
    first: dict[str, tuple[int, int]] = {}
    for i, group in enumerate(groups):
        scheme = group.labels.get("__scheme__", "http")
        prefix = group.labels.get("__path_prefix__", "").rstrip("/")
        public = {k: v for k, v in group.labels.items() if not k.startswith("__")}
        for j, address in enumerate(group.targets):
            name = public.get("instance") or (f"{public['job']}/{address}" if public.get("job") else address)
            if name in first:
                fi, fj = first[name]
                raise DiscoveryError(
                    at(
                        doc,
                        (i, "targets", j),
                        f"target name {name!r} is already used by {fi}.targets.{fj}; "
                        "give them distinct `instance` labels",
                    )
                )
            first[name] = (i, j)
            url = f"{scheme}://{address}{prefix}"
            targets.append(Target(name=name, url=url, labels=dict(public), auth=target_auth, source=source))
    return targets


# -- file_sd -----------------------------------------------------------------------------


def read_file_sd(path: str, *, target_auth: Auth = NO_AUTH) -> list[Target]:
    """Targets from one file_sd file: JSON when it ends in .json, else YAML."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DiscoveryError(f"{path}: cannot read: {exc}") from exc
    return _targets(_decode(text, path), f"file_sd:{path}", target_auth)


def _decode(text: str, path: str) -> Document:
    if path.endswith(".json"):
        try:
            return Document(path, json.loads(text), lines(text))
        except json.JSONDecodeError as exc:
            raise DiscoveryError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    return parse(text, path, DiscoveryError)


@dataclass(slots=True)
class _File:
    stamp: tuple[int, int, int]
    targets: list[Target]
    error: str = ""


class FileSD:
    """The targets of file_sd files (paths or globs), re-read when they change.

    `poll()` re-expands the globs and re-reads each file whose (mtime, size, inode)
    changed; `updates()` polls every `refresh` seconds and yields the merged list at
    the start and after every change. A file that fails keeps its previous targets."""

    def __init__(
        self, patterns: Sequence[str], refresh: float = 30.0, *, target_auth: Auth = NO_AUTH
    ) -> None:
        self.patterns = [os.path.expanduser(p) for p in patterns]
        self.refresh = refresh
        self.target_auth = target_auth
        self._files: dict[str, _File] = {}
        self._missing: set[str] = set()
        self._targets: list[Target] = []
        self._merge_error = ""

    @property
    def targets(self) -> list[Target]:
        return list(self._targets)

    @property
    def errors(self) -> list[str]:
        """The current problems, one line each (empty when every file is fine)."""
        errs = [f.error for f in self._files.values() if f.error]
        errs += [f"{p}: no such file" for p in sorted(self._missing)]
        return errs + ([self._merge_error] if self._merge_error else [])

    def poll(self) -> bool:
        """Re-check the files now; True when the target list changed."""
        paths = self._expand()
        changed = False
        for gone in [p for p in self._files if p not in paths]:
            del self._files[gone]
            changed = True
        for path in paths:
            changed |= self._refresh_file(path)
        if changed:
            self._merge()
        return changed

    async def updates(self) -> AsyncGenerator[list[Target], None]:
        self.poll()
        yield self.targets
        while True:
            await asyncio.sleep(self.refresh)
            if self.poll():
                yield self.targets

    def _expand(self) -> list[str]:
        paths: set[str] = set()
        missing: set[str] = set()
        for pattern in self.patterns:
            found = glob.glob(pattern)
            if not found and glob.escape(pattern) == pattern:
                missing.add(pattern)  # a plain path that does not exist; a glob may match nothing
            paths.update(p for p in found if os.path.isfile(p))
        for path in sorted(missing - self._missing):
            log.warning("file_sd: %s: no such file", path)
        self._missing = missing
        return sorted(paths)

    def _refresh_file(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False  # vanished between glob and stat: the next poll drops it
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        old = self._files.get(path)
        if old is not None and old.stamp == stamp:
            return False
        try:
            targets = read_file_sd(path, target_auth=self.target_auth)
        except DiscoveryError as exc:
            error = str(exc)
            if old is None or old.error != error:
                log.warning("file_sd: %s (keeping its previous targets)", error)
            self._files[path] = _File(stamp, old.targets if old else [], error)
            return False
        if old is not None and old.error:
            log.info("file_sd: %s: readable again", path)
        self._files[path] = _File(stamp, targets)
        return old is None or old.targets != targets

    def _merge(self) -> None:
        merged: dict[str, Target] = {}
        dupes: list[str] = []
        for path in sorted(self._files):
            for target in self._files[path].targets:
                if target.name in merged:
                    dupes.append(f"{target.name!r} in {path} (already in {merged[target.name].source})")
                else:
                    merged[target.name] = target
        error = f"file_sd: duplicate target names, later ones ignored: {', '.join(dupes)}" if dupes else ""
        if error and error != self._merge_error:
            log.warning("%s", error)
        self._merge_error = error
        self._targets = list(merged.values())


# -- http_sd -----------------------------------------------------------------------------


async def fetch_http_sd(
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,
    *,
    auth: Auth = NO_AUTH,
    target_auth: Auth = NO_AUTH,
) -> list[Target]:
    """One Prometheus HTTP SD request: GET `url`, expect 200 and a JSON list of groups.
    `auth` is for the SD endpoint, `target_auth` is given to the targets it lists."""
    try:
        async with asyncio.timeout(timeout):
            headers = {**auth_headers(auth), "Accept": "application/json"}
            async with session.get(url, headers=headers, ssl=ssl_options(auth)) as resp:
                if resp.status != 200:
                    raise DiscoveryError(f"{url}: HTTP {resp.status}")
                body = await read_capped(resp, MAX_SD_RESPONSE)
    except FetchError as exc:
        raise DiscoveryError(f"{url}: {exc}") from exc
    except TimeoutError as exc:
        raise DiscoveryError(f"{url}: timed out after {timeout:g}s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise DiscoveryError(f"{url}: {' '.join(str(exc).split()) or type(exc).__name__}") from exc
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DiscoveryError(f"{url}: the response is not JSON: {exc}") from exc
    return parse_groups(data, url, f"http_sd:{url}", target_auth)


class HttpSD:
    """The targets of a Prometheus HTTP SD endpoint, re-fetched every `refresh` seconds.
    A failed fetch keeps the previous list (Prometheus does the same)."""

    def __init__(
        self,
        url: str,
        refresh: float = 60.0,
        *,
        timeout: float = 10.0,
        auth: Auth = NO_AUTH,
        target_auth: Auth = NO_AUTH,
    ) -> None:
        self.url = url
        self.refresh = refresh
        self.timeout = timeout
        self.auth = auth
        self.target_auth = target_auth
        self.error = ""
        """The last fetch's problem, one line; empty once a fetch succeeds."""
        self._targets: list[Target] = []

    @property
    def targets(self) -> list[Target]:
        return list(self._targets)

    @property
    def errors(self) -> list[str]:
        """The current problem as a list, like `FileSD.errors`."""
        return [self.error] if self.error else []

    async def poll(self, session: aiohttp.ClientSession) -> bool:
        """Fetch now; True when the target list changed."""
        try:
            targets = await fetch_http_sd(
                session, self.url, self.timeout, auth=self.auth, target_auth=self.target_auth
            )
        except DiscoveryError as exc:
            if str(exc) != self.error:
                log.warning("http_sd: %s (keeping the previous targets)", exc)
            self.error = str(exc)
            return False
        if self.error:
            log.info("http_sd: %s: answering again", self.url)
        self.error = ""
        changed = targets != self._targets
        self._targets = targets
        return changed

    async def updates(
        self, session: aiohttp.ClientSession | None = None
    ) -> AsyncGenerator[list[Target], None]:
        """Yield the list after the first fetch (even if it failed), then after every change."""
        own = session is None
        sess = session or aiohttp.ClientSession()
        try:
            await self.poll(sess)
            yield self.targets
            while True:
                await asyncio.sleep(self.refresh)
                if await self.poll(sess):
                    yield self.targets
        finally:
            if own:
                await sess.close()
