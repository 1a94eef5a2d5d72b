"""Trace links of the finding page: a label value that is a trace (or span) id, linked to a
tracing UI (Jaeger, Tempo, Grafana Explore) through the serve config's `ui.trace_url`.

Which keys hold trace and span ids is data (`grprof/data/trace_keys.yaml`), not code. The
template is validated when the config is loaded (`grprof.config.UiConfig`: http or https, only
the known placeholders); here each placeholder is filled URL-escaped, so a hostile label value
cannot leave its path segment or query parameter, let alone change the URL's scheme or host.
"""

from __future__ import annotations

import functools
import urllib.parse
from importlib import resources
from typing import Literal

from grprof._yamlvalid import Strict, parse, validate

Kind = Literal["trace_id", "span_id"]


class TraceKeys(Strict):
    trace_id: list[str]
    span_id: list[str]


@functools.cache
def trace_keys() -> dict[str, Kind]:
    """Lower-cased label key → what its values are (shipped data: one entry per file)."""
    text = (resources.files("grprof") / "data" / "trace_keys.yaml").read_text("utf-8")
    doc: TraceKeys = validate(TraceKeys, parse(text, "trace_keys.yaml"))
    out: dict[str, Kind] = {}
    for k in doc.trace_id:
        out[k.lower()] = "trace_id"
    for k in doc.span_id:
        out.setdefault(k.lower(), "span_id")
    return out


def trace_link(template: str | None, key: str, value: str) -> str | None:
    """The link for label `key`=`value`, or None: no template, `key` is not a trace or span key,
    or the template needs an id this key does not give (`{span_id}` for a trace id key)."""
    kind = trace_keys().get(key.lower())
    if not template or kind is None or not value:
        return None
    fields = {"key": key, "value": value, kind: value}
    try:
        return template.format_map({k: urllib.parse.quote(v, safe="") for k, v in fields.items()})
    except (KeyError, ValueError, IndexError):
        return None


__all__ = ["TraceKeys", "trace_keys", "trace_link"]
