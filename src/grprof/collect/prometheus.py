"""The p95 latency from Prometheus: one PromQL instant query (`GET /api/v1/query`).

grprof.detect.sla turns the value into the SLA factor α; the network I/O is here.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_RESPONSE = 1 << 20
"""A one-sample query answer is a few hundred bytes; anything far larger is not one."""


class PrometheusError(Exception):
    """Prometheus gave no usable p95; `str(err)` is `<base url>: <what went wrong>`, one line."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Fetch only the configured URL: a redirect is reported, never followed.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def query_prometheus(base_url: str, query: str, timeout: float = 10.0) -> float:
    """Run one instant query (`GET {base_url}/api/v1/query`) and return its single finite value."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            body = _read(resp, deadline, timeout)
    except urllib.error.HTTPError as err:
        raise PrometheusError(base_url, _http_error(err)) from None
    except urllib.error.URLError as err:
        raise PrometheusError(base_url, _os_reason(err.reason, timeout)) from None
    except (TimeoutError, OSError) as err:
        raise PrometheusError(base_url, _os_reason(err, timeout)) from None
    except http.client.HTTPException as err:
        # Not HTTP at all, or the connection dropped mid-answer.
        raise PrometheusError(base_url, f"bad HTTP answer: {type(err).__name__} {err}".strip()) from None
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


def _read(resp: Any, deadline: float, timeout: float) -> bytes:
    # The socket timeout bounds each read; the deadline bounds the whole answer (a slow drip).
    chunks: list[bytes] = []
    size = 0
    while chunk := resp.read(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE:
            raise OSError(f"answer larger than {MAX_RESPONSE} bytes; not a one-sample query result")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete answer within {timeout:g}s")
    return b"".join(chunks)


def _http_error(err: urllib.error.HTTPError) -> str:
    if 300 <= err.code < 400:
        where = err.headers.get("Location", "?")
        return f"HTTP {err.code} redirect to {where} not followed (configure the final URL)"
    try:
        doc = json.loads(err.read(MAX_RESPONSE))
        detail = f"{doc['errorType']}: {doc['error']}"
    except (ValueError, KeyError, TypeError, OSError):
        detail = err.reason if isinstance(err.reason, str) else ""
    return f"HTTP {err.code} {detail}".strip()


def _os_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return str(reason) if reason.args and "within" in str(reason) else f"no answer within {timeout:g}s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


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
