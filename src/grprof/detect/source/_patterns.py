"""Leak patterns: code that shows a known leak clearly enough to confirm a finding.

The patterns are the modules of `grprof.detect.source.patterns`, each registered with its
category (`grprof.detect.source._registry`); importing that package registers them all.
"""

from __future__ import annotations

import grprof.detect.source.patterns  # noqa: F401  # registers every pattern
from grprof.detect.source._registry import REGISTRY, match

PATTERN_CATEGORIES: dict[str, str] = {p.name: p.category for p in REGISTRY.values()}
PATTERNS = tuple(PATTERN_CATEGORIES)
_match = match

__all__ = ["PATTERNS", "PATTERN_CATEGORIES", "_match"]
