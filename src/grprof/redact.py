"""Redaction of pprof label values, applied to a snapshot as soon as it is parsed
(docs/owners.md#redaction), before anything stores, shows or exports it.

    redactor = Redactor.load(RedactConfig(presets=["default"], drop=["session"]))
    redactor.apply(snapshot)   # the snapshot's labels are rewritten in place

The parsers know nothing of it: the CLI (`analyze --redact`) and the serve pipeline call
`apply` on what the parser returned.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from grprof._yamlvalid import Located, Strict, parse, read, validate
from grprof.model import Snapshot
from grprof.table import Header


def _regex(p: str) -> str:
    try:
        re.compile(p)
    except re.error as e:
        raise Located((), f'bad regex "{p}": {e}') from None
    return p


class Rule(Strict):
    kind: str
    pattern: Annotated[str, AfterValidator(_regex)]


class _DataFile(Strict):
    presets: dict[str, Rule]
    default: tuple[str, ...]


@functools.cache
def presets() -> _DataFile:
    text = resources.files("grprof").joinpath("data/redact.yaml").read_text(encoding="utf-8")
    data: _DataFile = validate(_DataFile, parse(text, "grprof/data/redact.yaml"))
    return data


def _presets(names: list[str]) -> list[str]:
    known = presets().presets
    for i, n in enumerate(names):
        if n != "default" and n not in known:
            raise Located((i,), f"unknown preset {n!r} (known: default, {', '.join(known)})")
    return names


class RedactConfig(Strict):
    """The config's `redact:`, `analyze --redact FILE`."""

    presets: Annotated[list[str], AfterValidator(_presets)] = Field(default_factory=lambda: ["default"])
    """Preset rule names from data/redact.yaml; `default` for its default list."""
    rules: list[Rule] = Field(default_factory=list)
    """More rules, applied after the presets."""
    keep: list[str] = Field(default_factory=list)
    """Label keys whose values are kept as they are."""
    drop: list[str] = Field(default_factory=list)
    """Label keys removed altogether."""
    replace: Literal["kind", "hash"] = "kind"
    """`kind`: `<redacted:email>`; `hash`: `<redacted:email:1a2b3c4d>`, a stable hash prefix
    that tells equal values apart without showing them."""


def load_redact_file(path: str | Path) -> RedactConfig:
    conf: RedactConfig = validate(RedactConfig, read(path, what="redaction file"))
    return conf


@dataclass(frozen=True)
class Redactor:
    rules: tuple[tuple[str, re.Pattern[str]], ...]
    keep: frozenset[str] = frozenset()
    drop: frozenset[str] = frozenset()
    replace: Literal["kind", "hash"] = "kind"

    @classmethod
    def load(cls, conf: RedactConfig | None = None) -> Redactor:
        conf = conf or RedactConfig()
        data = presets()
        names: list[str] = []
        for n in conf.presets:
            if n == "default":
                names.extend(data.default)
            elif n in data.presets:
                names.append(n)
            else:  # RedactConfig refused it already
                raise ValueError(f"redact: unknown preset {n!r}")
        rules = [data.presets[n] for n in dict.fromkeys(names)] + list(conf.rules)
        return cls(
            tuple((r.kind, re.compile(r.pattern)) for r in rules),
            frozenset(conf.keep),
            frozenset(conf.drop),
            conf.replace,
        )

    def value(self, key: str, value: str) -> str:
        if key in self.keep:
            return value
        for kind, rx in self.rules:
            value = rx.sub(functools.partial(self._mark, kind), value)
        return value

    def _mark(self, kind: str, m: re.Match[str]) -> str:
        raw = m.group(0)
        if self.replace == "hash":
            return f"<redacted:{kind}:{hashlib.sha256(raw.encode()).hexdigest()[:8]}>"
        return f"<redacted:{kind}>"

    def labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {k: self.value(k, v) for k, v in labels.items() if k not in self.drop}

    def apply(self, snap: Snapshot) -> int:
        """Rewrite the snapshot's label values in place; the number of values changed. Call it
        before anything derives data from the snapshot (groups, the store, detection)."""
        table = snap.table
        changed = 0
        for i, h in enumerate(table.headers):
            if not h.labels:
                continue
            new = self.labels(h.labels)
            if new != dict(h.labels):
                changed += 1
                table.headers[i] = Header.make(
                    h.state, h.wait_minutes, h.locked_to_thread, h.leaked, new, h.flags
                )
        if changed:
            table.forget_index()
            # Nothing derived from the old labels may survive (normally nothing was derived yet).
            snap._groups.clear()
            snap._goroutines = None
        return changed
