"""Root-cause rules: which class of bug parks a group of goroutines, and how to fix it.

The rules are data: `grprof/data/rules.yaml` ships with grprof, Python packages add theirs
through the `grprof.rules` entry point group, and users add files with `--rules FILE`
(docs/rules.md describes the schema). This module loads, validates and applies them:

    rules = load_rules(["team-rules.yaml"])
    rules.ignored(group)    # id of the ignore rule for goroutines that are long-lived by design
    rules.classify(group)   # Explanation(category, title, explanation, fix, rule=id) or None

Function-name patterns are "exact or regex": a pattern matches a name equal to it, or a name
the pattern (a Python regular expression) matches in full. Names such as
`net/http.(*persistConn).readLoop` are not valid regexes and so match only themselves.
Matching memoises per function name, so classifying thousands of groups costs a dictionary
lookup per frame and rule once the names have been seen.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from grprof.detect.model import CATEGORIES, Explanation, Verdict
from grprof.errors import GrprofError
from grprof.model import Frame, Group

ENTRY_POINT_GROUP = "grprof.rules"
SHIPPED = "grprof/data/rules.yaml"
VERSION = 1

_TOP_KEYS = ("version", "rules", "ignore")
_RULE_KEYS = ("id", "category", "when", "title", "explanation", "fix", "max_verdict", "enabled")
_RULE_REQUIRED = ("id", "category", "when", "title", "explanation", "fix")
_WHEN_KEYS = (
    "state",
    "not_state",
    "top",
    "blocked_in",
    "frames",
    "frames_all",
    "not_frames",
    "created_by",
    "not_created_by",
    "labels",
    "site_is_innermost",
)
_IGNORE_KEYS = ("id", "top_function", "any_function", "created_by", "state", "reason", "enabled")
_IGNORE_MATCHERS = ("top_function", "any_function", "created_by")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Characters that only a regex has: a pattern with one of these that does not compile is a
# broken regex (an error), not a function name.
_REGEX_ONLY = re.compile(r"\\|\||\^|\$|\.\*|\.\+|\+\)|\(\?")
# Closures and go-statement wrappers: `main.handler.func1`, `main.f.func1.2`, `main.g.gowrap3`.
_CLOSURE = re.compile(r"^(?P<outer>.+?)\.(?:func\d+|gowrap\d+)(?:\.\d+)*$")
_PLACEHOLDER = re.compile(r"\{(site|site_function|created_by|state|count)\}")
_MAX_CACHE = 200_000
_T = TypeVar("_T")


class RulesError(GrprofError):
    """A rule file (or entry point) is not valid; the message is one line naming where."""


# ---------------------------------------------------------------------------- matching


class _Names:
    """Function-name patterns (any of them), compiled once, with results memoised per name."""

    __slots__ = ("_cache", "_exact", "_regexes", "patterns")

    def __init__(self, patterns: Sequence[str], exact: frozenset[str], regexes: Sequence[re.Pattern[str]]):
        self.patterns = tuple(patterns)
        self._exact = exact
        self._regexes = tuple(regexes)
        self._cache: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            hit = name in self._exact or any(r.fullmatch(name) for r in self._regexes)
            if len(self._cache) >= _MAX_CACHE:  # a long-lived watcher sees many binaries
                self._cache.clear()
            self._cache[name] = hit
        return hit

    def any(self, names: Iterable[str]) -> bool:
        return any(self(n) for n in names)


class _View:
    """What rules read from a group, computed once per group."""

    __slots__ = ("blocked", "creator", "labels", "names", "site", "site_is_innermost", "states", "top")

    def __init__(self, group: Group) -> None:
        frames = group.frames
        self.states = group.states
        self.labels = group.labels
        self.names = tuple(dict.fromkeys(f.function for f in frames))
        site = group.site
        self.site = site.function if site else None
        k = _first_outside_runtime(frames)
        # goleak's "top function": what debug=2 prints first, whichever format this is.
        self.top = tuple(f.function for f in frames[: k + 1])
        self.site_is_innermost = site is not None and k < len(frames) and frames[k] is site
        self.blocked = self.names
        if site is not None:
            idx = next(i for i, f in enumerate(frames) if f is site)
            self.blocked = tuple(dict.fromkeys(f.function for f in frames[: idx + 1]))
        self.creator = _creator(group)


def _first_outside_runtime(frames: Sequence[Frame]) -> int:
    for i, f in enumerate(frames):
        if not f.is_runtime:
            return i
    return max(len(frames) - 1, 0)


def _creator(group: Group) -> str | None:
    """The function whose `go` statement started the group's goroutines.

    debug=2 says so (`created by`); debug=0 and debug=1 do not, but a goroutine whose entry
    function is a closure (`main.handler.func1`) or a go-statement wrapper (`main.f.gowrap1`)
    was started by the function that encloses it.
    """
    if group.created_by is not None:
        return group.created_by.function
    for f in reversed(group.frames):
        if not f.is_runtime:
            m = _CLOSURE.match(f.function)
            return m.group("outer") if m else None
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when` mapping: every key given must hold."""

    states: frozenset[str] | None = None
    not_states: frozenset[str] | None = None
    top: _Names | None = None
    blocked_in: _Names | None = None
    frames: _Names | None = None
    frames_all: tuple[_Names, ...] = ()
    not_frames: _Names | None = None
    created_by: _Names | None = None
    not_created_by: _Names | None = None
    labels: tuple[tuple[str, re.Pattern[str]], ...] = ()
    site_is_innermost: bool | None = None

    def matches(self, v: _View) -> bool:
        # Cheapest tests first: most rules fail on the state.
        if self.states is not None and not any(s in self.states for s in v.states):
            return False
        if self.not_states is not None and any(s in self.not_states for s in v.states):
            return False
        if self.site_is_innermost is not None and v.site_is_innermost != self.site_is_innermost:
            return False
        if self.top is not None and (v.site is None or not self.top(v.site)):
            return False
        if self.created_by is not None and (v.creator is None or not self.created_by(v.creator)):
            return False
        if self.not_created_by is not None and v.creator is not None and self.not_created_by(v.creator):
            return False
        if self.blocked_in is not None and not self.blocked_in.any(v.blocked):
            return False
        if self.frames is not None and not self.frames.any(v.names):
            return False
        if self.not_frames is not None and self.not_frames.any(v.names):
            return False
        if not all(p.any(v.names) for p in self.frames_all):
            return False
        return all(any(rx.fullmatch(val) for val in v.labels.get(key, ())) for key, rx in self.labels)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    title: str
    explanation: str
    fix: str
    when: tuple[Condition, ...]
    """Any of these."""
    source: str = ""
    max_verdict: Verdict | None = None

    def matches(self, view: _View) -> bool:
        return any(c.matches(view) for c in self.when)

    def explain(self, group: Group) -> Explanation:
        values = _placeholders(group)

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        return Explanation(
            category=self.category,
            title=fill(self.title),
            explanation=fill(self.explanation),
            fix=fill(self.fix),
            rule=self.id,
            max_verdict=self.max_verdict,
        )


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    id: str
    reason: str
    top_function: _Names | None = None
    any_function: _Names | None = None
    created_by: _Names | None = None
    states: frozenset[str] | None = None
    source: str = ""

    def matches(self, v: _View) -> bool:
        if self.states is not None and not any(s in self.states for s in v.states):
            return False
        if self.top_function is not None and not self.top_function.any(v.top):
            return False
        if self.created_by is not None and (v.creator is None or not self.created_by(v.creator)):
            return False
        return self.any_function is None or self.any_function.any(v.names)


def _placeholders(group: Group) -> dict[str, str]:
    site = group.site
    creator = str(group.created_by) if group.created_by else _creator(group)
    return {
        "site": str(site) if site else "(no frames)",
        "site_function": site.function if site else "(no frames)",
        "created_by": creator or "(unknown: the profile does not record it)",
        "state": group.state or "unknown",
        "count": str(group.count),
    }


class RuleSet:
    """Rules in matching order (first match wins) and ignore rules."""

    def __init__(self, rules: Sequence[Rule], ignores: Sequence[IgnoreRule]) -> None:
        self.rules = tuple(rules)
        self.ignores = tuple(ignores)
        self._by_id = {r.id: r for r in self.rules}
        # A daemon asks about the same stacks at every scrape: remember the answers per stack.
        self._uses_labels = any(c.labels for r in self.rules for c in r.when)
        self._matched: dict[object, tuple[object, Rule | None]] = {}
        self._ignored: dict[object, tuple[object, str | None]] = {}

    def _key(self, group: Group) -> object:
        labels = (
            tuple(sorted((k, tuple(sorted(v))) for k, v in group.labels.items())) if self._uses_labels else ()
        )
        # By the frames tuple's identity: the snapshots of one service share their stacks'
        # tuples, and hashing 20 frames costs more than matching them. Each cached answer holds
        # its tuple, so the id cannot be reused while the entry lives.
        return (id(group.frames), group.created_by, frozenset(group.states), labels)

    @staticmethod
    def _remember(cache: dict[object, tuple[object, _T]], key: object, group: Group, value: _T) -> _T:
        if len(cache) >= _MAX_CACHE:
            cache.clear()
        cache[key] = (group.frames, value)
        return value

    def classify(self, group: Group) -> Explanation | None:
        """The first matching rule's explanation, None when no rule matches."""
        rule = self.match(group)
        return rule.explain(group) if rule else None

    def match(self, group: Group) -> Rule | None:
        key = self._key(group)
        hit = self._matched.get(key)
        if hit is not None:
            return hit[1]
        view = _View(group)
        rule = next((r for r in self.rules if r.matches(view)), None)
        return self._remember(self._matched, key, group, rule)

    def ignored(self, group: Group) -> str | None:
        """The id of the ignore rule that matches the group, else None."""
        key = self._key(group)
        hit = self._ignored.get(key)
        if hit is not None:
            return hit[1]
        view = _View(group)
        why = next((i.id for i in self.ignores if i.matches(view)), None)
        return self._remember(self._ignored, key, group, why)

    def rule(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules, {len(self.ignores)} ignore rules)"


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The rules and ignore rules of one file, entry point or mapping, validated."""

    name: str
    rules: tuple[Rule, ...] = ()
    ignores: tuple[IgnoreRule, ...] = ()
    disabled_rules: frozenset[str] = frozenset()
    disabled_ignores: frozenset[str] = frozenset()


def load_rules(extra: Sequence[str | Path] = (), *, entry_points: bool = True) -> RuleSet:
    """The shipped rules, plus every `grprof.rules` entry point's, plus user files.

    Later sources come first: a rule (or ignore rule) whose id an earlier source already
    has replaces it, and a later source's new rules are tried before the earlier ones.
    A rule with `enabled: false` removes the rule of that id.
    """
    sources = [_shipped()]
    if entry_points:
        sources.extend(_entry_point_sources())
    sources.extend(load_file(p) for p in extra)
    return combine(sources)


def combine(sources: Sequence[RuleSource]) -> RuleSet:
    """Merge sources, the later ones first (see load_rules)."""
    rules: list[Rule] = []
    ignores: list[IgnoreRule] = []
    seen_rules: set[str] = set()
    seen_ignores: set[str] = set()
    for src in reversed(sources):
        rules.extend(r for r in src.rules if r.id not in seen_rules)
        ignores.extend(i for i in src.ignores if i.id not in seen_ignores)
        seen_rules |= {r.id for r in src.rules} | src.disabled_rules
        seen_ignores |= {i.id for i in src.ignores} | src.disabled_ignores
    return RuleSet(rules, ignores)


@functools.cache
def _shipped() -> RuleSource:
    text = resources.files("grprof").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    return parse_yaml(text, SHIPPED)


def load_file(path: str | Path) -> RuleSource:
    """A user rule file (`--rules FILE`)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"{name}: cannot read rule file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise RulesError(f"{name}: not UTF-8 text (byte {e.start})") from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> RuleSource:
    """Rules from YAML text; `name` says where they come from in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RulesError(f"{name}: not valid YAML: {problem}{where}") from None
    return parse_data(data, name)


def _entry_point_sources() -> Iterator[RuleSource]:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        name = f'entry point "{ep.name}" ({ep.value})'
        try:
            obj = ep.load()
        except Exception as e:
            raise RulesError(f"{name}: cannot load: {type(e).__name__}: {e}") from None
        yield _from_object(obj, name)


def _from_object(obj: object, name: str) -> RuleSource:
    """An entry point's object: a path, YAML text, a mapping, or a callable returning one."""
    if callable(obj) and not isinstance(obj, (str, Path, Mapping)):
        obj = obj()
    if isinstance(obj, Path):
        return load_file(obj)
    if isinstance(obj, Mapping):
        return parse_data(obj, name)
    if isinstance(obj, str):
        if "\n" not in obj and obj.strip() and Path(obj).is_file():
            return load_file(obj)
        return parse_yaml(obj, name)
    read_text = getattr(obj, "read_text", None)  # importlib.resources Traversable
    if callable(read_text):
        return parse_yaml(str(read_text(encoding="utf-8")), f"{name}: {obj}")
    raise RulesError(f"{name}: loads to {type(obj).__name__}; want a path, YAML text or a mapping")


def parse_data(data: object, name: str) -> RuleSource:
    """Rules from parsed YAML (or an equivalent mapping)."""
    if not isinstance(data, Mapping):
        raise RulesError(f"{name}: want a mapping with version, rules and ignore, got {_kind(data)}")
    _check_keys(data, _TOP_KEYS, name)
    if data.get("version") != VERSION:
        raise RulesError(f"{name}: version: want {VERSION}, got {data.get('version')!r}")
    rules, disabled_rules = _parse_list(data.get("rules"), "rules", "rule", name, _parse_rule)
    ignores, disabled_ignores = _parse_list(data.get("ignore"), "ignore", "ignore", name, _parse_ignore)
    return RuleSource(
        name, tuple(rules), tuple(ignores), frozenset(disabled_rules), frozenset(disabled_ignores)
    )


def _parse_list(
    items: object, key: str, noun: str, name: str, parse: Callable[[Mapping[str, Any], str], _T]
) -> tuple[list[_T], list[str]]:
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise RulesError(f"{name}: {key}: want a list, got {_kind(items)}")
    out: list[_T] = []
    disabled: list[str] = []
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        rid = item.get("id") if isinstance(item, Mapping) else None
        where = f"{name}: {noun} {n}" + (f' (id "{rid}")' if isinstance(rid, str) else "")
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: want a mapping, got {_kind(item)}")
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise RulesError(f"{where}: id: want lowercase letters, digits, '.', '_' or '-', got {rid!r}")
        if rid in seen:
            raise RulesError(f'{where}: id "{rid}" is used twice in this file')
        seen.add(rid)
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RulesError(f"{where}: enabled: want true or false, got {enabled!r}")
        if not enabled:
            _check_keys(item, _RULE_KEYS if noun == "rule" else _IGNORE_KEYS, where)
            disabled.append(rid)
            continue
        out.append(parse(item, where))
    return out, disabled


def _parse_rule(item: Mapping[str, Any], where: str) -> Rule:
    _check_keys(item, _RULE_KEYS, where)
    for key in _RULE_REQUIRED:
        if key not in item:
            raise RulesError(f'{where}: missing key "{key}"')
    for key in ("title", "explanation", "fix", "category"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise RulesError(f"{where}: {key}: want non-empty text, got {_kind(item[key])}")
    category = item["category"]
    if category not in CATEGORIES and not re.fullmatch(r"sdk/[\w./-]+", category):
        hint = _hint(category, CATEGORIES)
        raise RulesError(f'{where}: category: unknown category "{category}"{hint} (or "sdk/<library>")')
    max_verdict = item.get("max_verdict")
    if max_verdict is not None and max_verdict not in ("leak", "suspect"):
        raise RulesError(f'{where}: max_verdict: want "leak" or "suspect", got {_kind(max_verdict)}')
    when = item["when"]
    conditions = when if isinstance(when, list) else [when]
    if not conditions:
        raise RulesError(f"{where}: when: want a mapping or a non-empty list of mappings")
    parsed = tuple(
        _parse_condition(c, where if len(conditions) == 1 else f"{where}: when {i}")
        for i, c in enumerate(conditions, 1)
    )
    return Rule(
        id=item["id"],
        category=category,
        title=item["title"].strip(),
        explanation=item["explanation"].strip(),
        fix=item["fix"].rstrip(),
        when=parsed,
        source=where,
        max_verdict=max_verdict,
    )


def _parse_condition(when: object, where: str) -> Condition:
    if not isinstance(when, Mapping) or not when:
        raise RulesError(f"{where}: when: want a non-empty mapping of conditions, got {_kind(when)}")
    _check_keys(when, _WHEN_KEYS, where)
    names = {
        k: _names(when[k], f"{where}: {k}")
        for k in ("top", "blocked_in", "frames", "not_frames", "created_by", "not_created_by")
        if k in when
    }
    frames_all: tuple[_Names, ...] = ()
    if "frames_all" in when:
        value = when["frames_all"]
        if not isinstance(value, list) or not value:
            raise RulesError(f"{where}: frames_all: want a non-empty list of patterns, got {_kind(value)}")
        frames_all = tuple(_names(p, f"{where}: frames_all") for p in value)
    site = when.get("site_is_innermost")
    if site is not None and not isinstance(site, bool):
        raise RulesError(f"{where}: site_is_innermost: want true or false, got {site!r}")
    return Condition(
        states=_states(when.get("state"), f"{where}: state"),
        not_states=_states(when.get("not_state"), f"{where}: not_state"),
        frames_all=frames_all,
        labels=_labels(when.get("labels"), f"{where}: labels"),
        site_is_innermost=site,
        **names,
    )


def _parse_ignore(item: Mapping[str, Any], where: str) -> IgnoreRule:
    _check_keys(item, _IGNORE_KEYS, where)
    if not any(k in item for k in _IGNORE_MATCHERS):
        raise RulesError(f"{where}: needs at least one of " + ", ".join(_IGNORE_MATCHERS))
    reason = item.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise RulesError(f"{where}: reason: say why these goroutines are never a leak (non-empty text)")
    return IgnoreRule(
        id=item["id"],
        reason=reason.strip(),
        states=_states(item.get("state"), f"{where}: state"),
        source=where,
        **{k: _names(item[k], f"{where}: {k}") for k in _IGNORE_MATCHERS if k in item},
    )


def _names(value: object, where: str) -> _Names:
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise RulesError(f"{where}: want a pattern or a non-empty list of patterns, got {_kind(value)}")
    exact: set[str] = set()
    regexes: list[re.Pattern[str]] = []
    for p in patterns:
        exact.add(p)
        try:
            regexes.append(re.compile(p))
        except re.error as e:
            if _REGEX_ONLY.search(p):
                raise RulesError(f'{where}: bad regex "{p}": {e}') from None
            # Not a regex: a function name such as `sync.(*Mutex).Lock`, matched exactly.
    return _Names(patterns, frozenset(exact), regexes)


def _states(value: object, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    states = [value] if isinstance(value, str) else value
    if not isinstance(states, list) or not states or not all(isinstance(s, str) and s for s in states):
        raise RulesError(f"{where}: want a state or a non-empty list of states, got {_kind(value)}")
    return frozenset(states)


def _labels(value: object, where: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise RulesError(f"{where}: want a mapping of label key to value regex, got {_kind(value)}")
    out = []
    for key, rx in value.items():
        if not isinstance(key, str) or not isinstance(rx, str):
            raise RulesError(f"{where}: want text keys and regexes, got {key!r}: {rx!r}")
        try:
            out.append((key, re.compile(rx)))
        except re.error as e:
            raise RulesError(f'{where}: {key}: bad regex "{rx}": {e}') from None
    return tuple(out)


def _check_keys(item: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in item:
        if key not in allowed:
            raise RulesError(f'{where}: unknown key "{key}"{_hint(str(key), allowed)}')


def _hint(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f'"{value}"' if len(value) < 40 else "text"
    return {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


__all__ = [
    "ENTRY_POINT_GROUP",
    "Condition",
    "IgnoreRule",
    "Rule",
    "RuleSet",
    "RuleSource",
    "RulesError",
    "combine",
    "load_file",
    "load_rules",
    "parse_data",
    "parse_yaml",
]
