"""Infer a goroutine's wait state from its stack, for formats that carry no status.

The rules are data (`grprof/data/wait_states.yaml`, which explains them); this module
only loads and applies them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from grprof.model import Frame

UNKNOWN = "unknown"
_MATCHERS = ("function", "prefix", "contains")
_MAX_NAMES = 200_000


@dataclass(frozen=True, slots=True)
class Rule:
    state: str
    callers: frozenset[str] = frozenset()
    max_lines_below_caller: int | None = None

    def applies(self, frames: Sequence[Frame], i: int) -> bool:
        """Whether the conditions hold for frames[i] (its name already matched)."""
        if not self.callers and self.max_lines_below_caller is None:
            return True
        if i + 1 >= len(frames):
            return False
        frame, caller = frames[i], frames[i + 1]
        if self.callers and caller.function not in self.callers:
            return False
        if self.max_lines_below_caller is not None:
            delta = frame.line - caller.line
            return frame.file == caller.file and 0 <= delta <= self.max_lines_below_caller
        return True


@dataclass(frozen=True, slots=True)
class Rules:
    exact: dict[str, tuple[Rule, ...]]
    prefixes: tuple[tuple[str, Rule], ...]
    contains: tuple[tuple[str, Rule], ...]
    by_name: dict[str, tuple[tuple[Rule, ...], bool]] = field(default_factory=dict)
    """Per function name: the rules its name matches, and whether it is standard library."""

    def lookup(self, frame: Frame) -> tuple[tuple[Rule, ...], bool]:
        name = frame.function
        hit = self.by_name.get(name)
        if hit is None:
            rules = (
                *self.exact.get(name, ()),
                *(r for p, r in self.prefixes if name.startswith(p)),
                *(r for p, r in self.contains if p in name),
            )
            if len(self.by_name) >= _MAX_NAMES:  # a long-lived process sees many binaries
                self.by_name.clear()
            hit = self.by_name[name] = (rules, frame.is_stdlib)
        return hit


def infer_state(frames: Sequence[Frame]) -> str:
    """The wait reason the stack shows (`chan receive`, `sync.Mutex.Lock`, ...) or "unknown"."""
    lookup = load_rules().lookup
    for i, frame in enumerate(frames):
        rules, std = lookup(frame)
        for rule in rules:
            if rule.applies(frames, i):
                return rule.state
        if not std:
            break
    return UNKNOWN


@functools.cache
def load_rules() -> Rules:
    text = (resources.files("grprof") / "data" / "wait_states.yaml").read_text("utf-8")
    return compile_rules(yaml.safe_load(text))


def compile_rules(doc: Any) -> Rules:
    """Validate the YAML document and index its rules; ValueError if it is malformed."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise ValueError("wait_states.yaml: expected a mapping with a 'rules' list")
    exact: dict[str, list[Rule]] = {}
    prefixes: list[tuple[str, Rule]] = []
    contains: list[tuple[str, Rule]] = []
    for n, item in enumerate(doc["rules"]):
        if not isinstance(item, dict) or not isinstance(item.get("state"), str):
            raise ValueError(f"wait_states.yaml: rule {n} needs a 'state' string")
        unknown = set(item) - {*_MATCHERS, "caller", "max_lines_below_caller", "state"}
        if unknown or sum(k in item for k in _MATCHERS) != 1:
            raise ValueError(
                f"wait_states.yaml: rule {n}: needs exactly one of {'/'.join(_MATCHERS)}"
                + (f", unknown keys {sorted(unknown)}" if unknown else "")
            )
        limit = item.get("max_lines_below_caller")
        if limit is not None and not isinstance(limit, int):
            raise ValueError(f"wait_states.yaml: rule {n}: max_lines_below_caller must be an int")
        rule = Rule(item["state"], frozenset(_names(item.get("caller", []), n)), limit)
        for name in _names(item.get("function", []), n):
            exact.setdefault(name, []).append(rule)
        prefixes.extend((p, rule) for p in _names(item.get("prefix", []), n))
        contains.extend((p, rule) for p in _names(item.get("contains", []), n))
    return Rules({k: tuple(v) for k, v in exact.items()}, tuple(prefixes), tuple(contains))


def _names(value: Any, n: int) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"wait_states.yaml: rule {n}: expected a name or a list of names")
    return names
