"""The p95 latency from Prometheus: one PromQL instant query (`GET /api/v1/query`).

grprof.detect.sla turns the value into the SLA factor α; the network I/O is here.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from typing import Any

from grprof.collect import fetch
from grprof.collect.fetch import FetchError

MAX_RESPONSE = 1 << 20
"""A one-sample query answer is a few hundred bytes; anything far larger is not one."""


class PrometheusError(Exception):
    """Prometheus gave no usable p95; `str(err)` is `<base url>: <what went wrong>`, one line."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message


def query_prometheus(base_url: str, query: str, timeout: float = 10.0) -> float:
    """Run one instant query (`GET {base_url}/api/v1/query`) and return its single finite value.

    Through the shared fetch (grprof.collect.fetch): a redirect is reported, never followed
    (fetch only the configured URL); the answer is capped at `MAX_RESPONSE`, gzip or not; the
    timeout bounds each read and the whole answer (a slow drip)."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + timeout
    try:
        resp = fetch.get(
            url, timeout=timeout, max_size=MAX_RESPONSE, follow_redirects=False, deadline=deadline
        )
        body = resp.read()
    except FetchError as err:
        raise PrometheusError(base_url, _reason(err, timeout)) from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise PrometheusError(base_url, "answer is not JSON; is this a Prometheus server?") from None
    try:
        return _value(doc)
    except ValueError as err:
        raise PrometheusError(base_url, str(err)) from None
    except (KeyError, TypeError, IndexError):
        raise PrometheusError(base_url, "answer is not a Prometheus query result") from None


def _reason(err: FetchError, timeout: float) -> str:
    """One line for a failed query; Prometheus's own explanation of a 4xx/5xx when it sent one."""
    if err.reason == "redirect":
        return f"HTTP {err.http_status} redirect to {err.location} not followed (configure the final URL)"
    if err.reason in ("http_error", "not_found") and err.body:
        try:
            doc = json.loads(err.body)
            return f"HTTP {err.http_status} {doc['errorType']}: {doc['error']}"
        except (ValueError, KeyError, TypeError):
            pass
    if err.reason == "timeout":
        return err.message if "within" in err.message else f"no answer within {timeout:g}s"
    if err.reason == "too_large":
        return f"{err.message}; not a one-sample query result"
    return err.message.removeprefix("unreachable: ")


def _value(doc: Any) -> float:
    """The one finite, non-negative value of a Prometheus query answer, or ValueError saying why not."""
    if not isinstance(doc, dict) or doc.get("status") != "success":
        raise ValueError(f"query failed: {doc.get('error', doc) if isinstance(doc, dict) else doc!r}")
    data = doc["data"]
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        raw = result[1]
    elif kind == "vector":
        if not result:
            raise ValueError("query returned no series (no data for this selector or window)")
        if len(result) > 1:
            raise ValueError(
                f"query returned {len(result)} series, want one (aggregate, e.g. sum by (le) (...))"
            )
        raw = result[0]["value"][1]
    else:
        raise ValueError(f"query returned a {kind}, want an instant vector with one sample or a scalar")
    value = float(raw)
    if math.isnan(value):
        raise ValueError("query returned NaN (no requests in the window?)")
    if math.isinf(value):
        raise ValueError(f"query returned {raw}, want a finite latency")
    if value < 0:
        raise ValueError(f"query returned a negative latency: {raw}")
    return value
