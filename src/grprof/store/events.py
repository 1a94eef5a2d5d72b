"""What the target chart marks besides findings: config reloads and deploys (the `events` table).

- A **reload** of `grprof serve`'s config is recorded by the supervisor after it applied it
  (`record_reload`, one call in `grprof.serve.Daemon.reload`): its time and, in a few
  words, what changed (the config's top-level sections that differ, targets added / removed).
  It is about every target (no target id): one replica's config covers its whole shard.
- A **deploy** is found when a snapshot is stored (`SQLStore.add_snapshot` / `add_scrape`):
  each snapshot keeps its build identity (`build_identity`: the Go version when the dump
  names it exactly, the executable's build id when a debug=0 profile has one, a few code
  addresses when a debug=1 profile names them), and when it differs from the target's
  previous known identity a `deploy` event is written in the same transaction
  (`deploy_text`). Found once at write time, the chart reads a handful of event rows
  instead of every snapshot's build of the range.

Why code addresses: debug=1, the default scrape, carries no build id, and goroutine ids
cannot tell a restart (the newest id also drops when the newest goroutines exit). But a
frame line names its PC and `function+0xOFFSET`, so the function's entry; within one build
loaded at one address it never changes (`grprof.model.moved_code`, `formats.debug1`). The
highest entries are kept because code laid out late moves with any change before it. A PIE
binary is loaded at another address on every start, so there a restart is marked too, and
the marker says it may be one. A rebuild that changes only data (`-ldflags -X`) or only code
laid out after every kept function moves nothing and is not marked.

Why only exact versions: grprof infers a Go version from the stacks when no path names it
(`1.19` from runtime line numbers, `>=1.21` as a lower bound), and that inference moves with
the goroutines present; comparing it would mark deploys that never happened.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from grprof.model import Snapshot, moved_code

log = logging.getLogger("grprof.store")

RELOAD = "reload"
DEPLOY = "deploy"
KINDS = (RELOAD, DEPLOY)

_EXACT = re.compile(r"^(?:go)?(\d+\.\d+\.\d+)$")
CODE_KEPT = 32
"""Functions a target's known identity keeps across its snapshots (each snapshot names 8 at
most, not always the same: a goroutine that comes and goes brings its own)."""
MAX_TEXT = 300
"""Characters of an event's text kept (a reload's summary is a few words)."""


def build_identity(snap: Snapshot) -> dict[str, Any] | None:
    """`{"go": "1.26.8", "build_id": "5ec5...", "code": {"main.worker": 6983680}}` with the
    keys the snapshot's input gives, None when it gives none. `go` only when the version is
    exact (a path named it)."""
    out: dict[str, Any] = {}
    m = _EXACT.match(snap.go_version or "")
    if m:
        out["go"] = m.group(1)
    origin = snap.origin
    if origin is not None and origin.build_id:
        out["build_id"] = origin.build_id[:200]
    if origin is not None and origin.code:
        out["code"] = {function[:200]: entry for function, entry in origin.code}
    return out or None


def known_identity(prev: Mapping[str, Any] | None, cur: Mapping[str, Any], deployed: bool) -> dict[str, Any]:
    """What the target's next snapshot is compared with. After a deploy, `cur` alone: what
    `prev` knew was the old build's (its code points would mark the deploy again). Otherwise
    `cur` over `prev`, with the code points of both (`cur`'s first, `CODE_KEPT` at most)."""
    if deployed or not prev:
        return dict(cur)
    out = {**prev, **cur}
    code = dict(cur.get("code", {}))  # cur's functions first, then the older ones
    for function, entry in prev.get("code", {}).items():
        code.setdefault(function, entry)
    if code:
        out["code"] = dict(list(code.items())[:CODE_KEPT])
    return out


def _short(build_id: str) -> str:
    return build_id if len(build_id) <= 12 else build_id[:12] + "…"


def deploy_text(prev: Mapping[str, Any] | None, cur: Mapping[str, Any] | None) -> str | None:
    """The marker's text when `cur` is another build than `prev`, else None.

    Only what both identities know is compared (a debug=1 scrape has no build id, a debug=0
    profile may name no Go version: a format switch is not a deploy)."""
    if not prev or not cur:
        return None
    go_a, go_b = prev.get("go"), cur.get("go")
    id_a, id_b = prev.get("build_id"), cur.get("build_id")
    if go_a and go_b and go_a != go_b:
        return f"deploy: go{go_a} → go{go_b}"
    if id_a and id_b and id_a != id_b:
        return f"deploy: new build ({_short(str(id_a))} → {_short(str(id_b))})"
    code_a, code_b = prev.get("code"), cur.get("code")
    if isinstance(code_a, Mapping) and isinstance(code_b, Mapping):
        moved = moved_code(code_a, code_b)
        if moved is not None:
            function, was, now = moved
            return f"deploy or restart: the code moved ({function} {was:#x} → {now:#x})"
    return None


def reload_text(why: str, old: BaseModel, new: BaseModel) -> str:
    """`config version 3 → 4: targets (+2, −1), canary (SIGHUP)`: what a reload changed."""
    changed: list[str] = []
    for name in type(new).model_fields:
        a, b = getattr(old, name, None), getattr(new, name, None)
        if a == b or name == "version":
            continue
        if name == "targets" and isinstance(a, list) and isinstance(b, list):
            was = {getattr(t, "name", None) for t in a}
            now = {getattr(t, "name", None) for t in b}
            parts = [f"+{len(now - was)}"] if now - was else []
            parts += [f"−{len(was - now)}"] if was - now else []
            changed.append(f"targets ({', '.join(parts) or 'edited'})")
        else:
            changed.append(name)
    va, vb = getattr(old, "version", None), getattr(new, "version", None)
    head = f"config version {va} → {vb}" if va != vb else f"config version {vb}"
    text = f"{head}: {', '.join(changed) or 'no change'} ({why})"
    return text[:MAX_TEXT]


def record_reload(store: Any, why: str, old: BaseModel, new: BaseModel) -> None:
    """Record an applied reload that changed the config (`store`: the daemon's `Store`, or None
    without one). A failed write is logged, never raised: the reload is already applied."""
    if store is None or old == new:
        # Equal configs: the SIGHUP and the file watcher both saw one edit, or only rule
        # files changed (their reload is logged, not marked).
        return
    try:
        store.add_event(RELOAD, reload_text(why, old, new), dt.datetime.now(dt.UTC))
    except Exception as e:  # a marker is not worth failing a reload
        log.error("could not record the reload in the store: %s", e)


__all__ = [
    "DEPLOY",
    "KINDS",
    "RELOAD",
    "build_identity",
    "deploy_text",
    "known_identity",
    "record_reload",
    "reload_text",
]
