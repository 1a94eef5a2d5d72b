"""The detector's vocabulary: verdicts, wait kinds and root-cause categories.

A leaf (it imports nothing of grprof): the findings (`detect.model`) and the schemas of the
data files that name these words (`detect.detect_yaml`, `detect.rules_yaml`) both read them
from here, so a schema, imported only when a file is validated, need not import the runtime
module whose loader imports it (docs/architecture.md: no import cycles).
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["leak", "suspect", "inconclusive"]
"""`inconclusive`: something was seen (growth between too few snapshots) that is no verdict
either way; the evidence says what would settle it."""
VERDICTS: tuple[Verdict, ...] = ("leak", "suspect", "inconclusive")
"""Strongest first."""
WaitKind = Literal["blocking", "waiting", "idle"]
"""How long a wait may be healthy (data/detect.yaml `wait_kinds`)."""
WAIT_KINDS: tuple[WaitKind, ...] = ("blocking", "waiting", "idle")

# Categories of root cause. Rules may name others ("sdk/<library>"); "unknown" when none matches.
CATEGORIES = (
    "channel",
    "context",
    "sdk/net/http",
    "sdk/database/sql",
    "sdk/mysql",
    "sdk/grpc",
    "sdk/kitex",
    "sync",
    "timer",
    "io",
    "unknown",
)
