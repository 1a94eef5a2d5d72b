"""Root-cause rules: which class of bug parks a group of goroutines, and how to fix it.

The rules are data: `grprof/data/rules.yaml` ships with grprof, Python packages add theirs
through the `grprof.rules` entry point group, and users add files with `--rules FILE`
(docs/rules.md describes the schema). This module loads, validates and applies them:

    rules = load_rules(["team-rules.yaml"])
    rules.ignored(group)    # id of the ignore rule for goroutines that are long-lived by design
    rules.classify(group)   # Explanation(category, title, explanation, fix, rule=id) or None
    rules.classify(group, source_dir=Path("svc"))   # the same, with the blocking statement read
    rules.stack_class(group)   # StackClass(category, what, frame): what the frames alone say

Categories come from what the goroutines are parked in, never from what their functions are
called: the rules' states and frame patterns, the stack table (`stack:` in the YAML: frame
patterns that mean context, timer, channel, sync, io or a library) and, with `--source`, the
blocking statement (grprof.detect.source.wait_at), which decides where the stack cannot tell
`<-ctx.Done()` from `<-results`. The explanation ends with a sentence saying which one decided.

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

from grprof.detect.model import CATEGORIES, WAIT_KINDS, Explanation, Verdict, WaitKind
from grprof.detect.source import WAIT_CATEGORIES, SourceWait
from grprof.errors import GrprofError
from grprof.model import Frame, Group

ENTRY_POINT_GROUP = "grprof.rules"
SHIPPED = "grprof/data/rules.yaml"
VERSION = 1

_TOP_KEYS = ("version", "rules", "ignore", "stack")
_RULE_KEYS = ("id", "category", "when", "title", "explanation", "fix", "max_verdict", "wait_kind", "enabled")
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
    "stack",
    "source",
)
_IGNORE_KEYS = ("id", "top_function", "any_function", "created_by", "state", "reason", "enabled")
_IGNORE_MATCHERS = ("top_function", "any_function", "created_by")
_STACK_LAYERS = ("calls", "creators", "runtime", "states")
_STACK_KEYS = ("category", "what", "frames", "created_by", "state")
# The key each layer of the stack table matches on.
_STACK_MATCH = {"calls": "frames", "creators": "created_by", "runtime": "frames", "states": "state"}
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Characters that only a regex has: a pattern with one of these that does not compile is a
# broken regex (an error), not a function name.
_REGEX_ONLY = re.compile(r"\\|\||\^|\$|\.\*|\.\+|\+\)|\(\?")
# Closures and go-statement wrappers: `main.handler.func1`, `main.f.func1.2`, `main.g.gowrap3`.
_CLOSURE = re.compile(r"^(?P<outer>.+?)\.(?:func\d+|gowrap\d+)(?:\.\d+)*$")
_PLACEHOLDER = re.compile(
    r"\{(site|site_function|created_by|state|count|basis|senders|senders_seen|buffer|channel|channel_at"
    r"|chan_type|ctx|ctx_origin|cancel|cancel_at|ticker|ticker_at)\}"
)
_SENDERS = ("{senders}", "{senders_seen}", "{buffer}")
# What a placeholder says when neither the stack nor the source shows its value.
_DEFAULTS = {
    "channel": "ch",
    "channel_at": "where the channel is made",
    "chan_type": "chan T",
    "ctx": "ctx",
    "ctx_origin": "a context that is never cancelled",
    "cancel": "cancel",
    "cancel_at": "where the context is derived",
    "ticker": "t",
    "ticker_at": "where the ticker is made",
}
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

    __slots__ = (
        "blocked",
        "creator",
        "labels",
        "names",
        "site",
        "site_is_innermost",
        "stack",
        "states",
        "top",
        "wait",
    )

    def __init__(self, group: Group, table: StackTable | None = None, wait: SourceWait | None = None) -> None:
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
        self.stack = None if table is None else table.classify(self.blocked, self.creator, group.state)
        self.wait = wait


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
class StackClass:
    """What a stack's frames alone say a group waits on (the stack table's verdict)."""

    category: str
    what: str
    """`a channel receive`, `time.Sleep`, `an io.Pipe read or write`."""
    frame: str
    """The function that says so, or `created by time.goFunc`."""


@dataclass(frozen=True, slots=True)
class StackEntry:
    """A row of the stack table: frames (a creator, a wait state) that mean a category."""

    category: str
    what: str
    names: _Names | None = None
    states: frozenset[str] = frozenset()
    source: str = ""

    def __call__(self, name: str) -> bool:
        return self.names(name) if self.names is not None else name in self.states


@dataclass(frozen=True, slots=True)
class StackTable:
    """Frame patterns that say what a goroutine is parked in (`stack:` in the rules YAML).

    The frames read are those from the innermost one out to the group's site (the call the
    goroutine is parked in, not the code that called it). `calls` (library and standard
    library calls: context, time, sync, io, net/http, database/sql, grpc, ...) are matched
    outermost first, so `io.(*pipe).read` wins over the `runtime.selectgo` it parks in; then
    `creators` (the goroutine's creator: `time.goFunc` runs AfterFunc callbacks); then
    `runtime` (the runtime's channel and select primitives), innermost first; then `states`,
    the wait state the runtime printed (debug=2 dumps leave the runtime's frames out).
    """

    calls: tuple[StackEntry, ...] = ()
    creators: tuple[StackEntry, ...] = ()
    runtime: tuple[StackEntry, ...] = ()
    states: tuple[StackEntry, ...] = ()

    def classify(self, blocked: Sequence[str], creator: str | None, state: str = "") -> StackClass | None:
        for name in reversed(blocked):
            for e in self.calls:
                if e(name):
                    return StackClass(e.category, e.what, name)
        if creator is not None:
            for e in self.creators:
                if e(creator):
                    return StackClass(e.category, e.what, f"created by {creator}")
        for name in blocked:
            for e in self.runtime:
                if e(name):
                    return StackClass(e.category, e.what, name)
        for e in self.states:
            if e(state):
                return StackClass(e.category, e.what, f"state {state}")
        return None

    def __len__(self) -> int:
        return len(self.calls) + len(self.creators) + len(self.runtime) + len(self.states)


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
    stack: frozenset[str] | None = None
    """Categories of the stack table (`StackTable.classify`)."""
    source: frozenset[str] | None = None
    """Wait kinds read from the source (`grprof.detect.source.WAIT_CATEGORIES`): never true
    without `--source`."""

    def matches(self, v: _View) -> bool:
        if self.source is not None and (v.wait is None or v.wait.kind not in self.source):
            return False
        # Cheapest tests first: most rules fail on the state.
        if self.states is not None and not any(s in self.states for s in v.states):
            return False
        if self.stack is not None and (v.stack is None or v.stack.category not in self.stack):
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
    wait_kind: WaitKind | None = None
    """How long the matched goroutines may healthily wait, when the rule knows better than the
    state: a client connection's readLoop in `select` holds a response body nobody closed
    (blocking), though a `select` is idle elsewhere."""

    def matches(self, view: _View) -> bool:
        return any(c.matches(view) for c in self.when)

    def explain(self, group: Group, values: Mapping[str, str] | None = None) -> Explanation:
        """The texts with the placeholders filled in (from the group, or `values`); the
        explanation ends with `{basis}` (which evidence decided the category) unless it uses it."""
        values = values or _placeholders(group)

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        explanation = fill(self.explanation)
        if "{basis}" not in self.explanation and values.get("basis"):
            explanation += "\n" + values["basis"]
        return Explanation(
            category=self.category,
            title=fill(self.title),
            explanation=explanation,
            fix=fill(self.fix),
            rule=self.id,
            max_verdict=self.max_verdict,
        )

    @property
    def uses_source(self) -> bool:
        return any(c.source is not None for c in self.when)

    @property
    def uses_senders(self) -> bool:
        return any(p in text for text in (self.title, self.explanation, self.fix) for p in _SENDERS)


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


def _placeholders(
    group: Group, wait: SourceWait | None = None, basis: str = "", *, senders_needed: bool = True
) -> dict[str, str]:
    """Placeholder values: the group's, the numbers seen in it, and what the source shows."""
    site = group.site
    creator = str(group.created_by) if group.created_by else _creator(group)
    facts = dict(wait.facts) if wait is not None else {}
    # Sorting a big group's ids costs: only for texts that say how many goroutines per call.
    senders, seen = _senders_seen(group) if senders_needed else (1, "")
    if "senders" in facts:
        senders, seen = int(facts["senders"]), f"{facts.get('senders_seen', 'read')} in the source"
    values = {
        "site": str(site) if site else "(no frames)",
        "site_function": site.function if site else "(no frames)",
        "created_by": creator or "(unknown: the profile does not record it)",
        "state": group.state or "unknown",
        "count": str(group.count),
        "basis": basis,
        "senders": str(senders),
        "senders_seen": seen,
        "buffer": str(max(senders, 1)),
    }
    for key, default in _DEFAULTS.items():
        values[key] = facts.get(key) or default
    if values["cancel"] == "_":
        values["cancel"] = "cancel"  # discarded: the fix names the variable to keep
    return values


def _senders_seen(group: Group) -> tuple[int, str]:
    """Goroutines of the group that one call started: `(3, how that was seen)`.

    `Group.creators` (creator goroutine id -> members; debug=2 dumps of Go 1.21+, whose
    headers say `created by F in goroutine N`) bounds it: a call's goroutines share their
    creator. A creator that runs many calls one after another (a server's keep-alive
    connection serves request after request) shares it too, so the member ids refine it:
    goroutines one call starts in a loop get consecutive ids (the runtime hands each P ids in
    aligned batches of 16), and the run length that covers most members is the count per
    call (runs cut at a batch edge are left out when whole runs exist).
    """
    creators: Mapping[int, int] = getattr(group, "creators", None) or {}
    if not creators:
        return 1, "not recorded by this profile (debug=2 dumps of Go 1.21+ have it); 1 assumed"
    most = max(creators.values())
    calls = len(creators)
    total = sum(creators.values())
    seen = f"{total} goroutines from {calls} creator goroutine{'s' if calls != 1 else ''}"
    runs = _id_runs(sorted(set(group.ids)))
    if not runs:
        return most, f"{most} per creator goroutine: {seen}"
    whole = [b - a + 1 for a, b in runs if a % _GOID_BATCH != 1 and b % _GOID_BATCH != 0]
    lengths = whole or [b - a + 1 for a, b in runs]
    run = max(set(lengths), key=lambda n: (n * lengths.count(n), n))
    if run >= most:
        return most, f"{most} per creator goroutine: {seen}"
    return (
        run,
        f"{run} per call: {seen} (up to {most} from one), started {run} at a time (ids in runs of {run})",
    )


_GOID_BATCH = 16
"""Goroutine ids come to each P in batches of this many, aligned (runtime._GoidCacheBatch)."""


def _id_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive ids: [1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


class RuleSet:
    """Rules in matching order (first match wins) and ignore rules."""

    def __init__(
        self, rules: Sequence[Rule], ignores: Sequence[IgnoreRule], stack: StackTable | None = None
    ) -> None:
        self.rules = tuple(rules)
        self.ignores = tuple(ignores)
        self.stack = stack or StackTable()
        self._source_rules = tuple(r for r in self.rules if r.uses_source)
        self._uses_stack = any(c.stack is not None for r in self.rules for c in r.when)
        self._stack_classes: dict[object, tuple[object, StackClass | None]] = {}
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

    def classify(
        self, group: Group, *, source_dir: str | Path | None = None, wait: SourceWait | None = None
    ) -> Explanation | None:
        """The first matching rule's explanation, None when no rule matches.

        With `source_dir` (or a `wait` already read with grprof.detect.source.wait_at), rules
        that read the blocking statement (`when: {source: [...]}`) take part, so the source
        decides where the stack cannot: `<-ctx.Done()` and `<-results` park in the same
        runtime frames. The explanation's last sentence says what decided the category.
        """
        if wait is None and source_dir is not None:
            from grprof.detect.source import wait_at

            wait = wait_at(Path(source_dir), group)
        stack_rule = self.match(group)
        rule = self.match(group, wait) if wait is not None else stack_rule
        if rule is None:
            return None
        basis = self._basis(group, rule, stack_rule, wait)
        return rule.explain(group, _placeholders(group, wait, basis, senders_needed=rule.uses_senders))

    def match(self, group: Group, wait: SourceWait | None = None) -> Rule | None:
        """The first rule that matches (reading the source's `wait` when given)."""
        key = self._key(group)
        if wait is not None:
            if not self._source_rules:
                return self.match(group)
            key = (key, wait.kind)
        hit = self._matched.get(key)
        if hit is not None:
            return hit[1]
        view = _View(group, self.stack if self._uses_stack else None, wait)
        rule = next((r for r in self.rules if r.matches(view)), None)
        return self._remember(self._matched, key, group, rule)

    def stack_class(self, group: Group) -> StackClass | None:
        """What the frames alone say the group waits on (the stack table), or None."""
        key = self._key(group)
        hit = self._stack_classes.get(key)
        if hit is not None:
            return hit[1]
        view = _View(group)
        cls = self.stack.classify(view.blocked, view.creator, group.state)
        return self._remember(self._stack_classes, key, group, cls)

    def _basis(self, group: Group, rule: Rule, stack_rule: Rule | None, wait: SourceWait | None) -> str:
        """One sentence: which evidence decided the category (the stack or the source)."""
        cls = self.stack_class(group)
        frames = f"{cls.what} ({cls.frame})" if cls is not None else ""
        if stack_rule is None:
            alone = "no rule matches the stack alone" + (f", whose frames show {frames}" if frames else "")
        elif cls is not None and cls.category == stack_rule.category:
            alone = f"the stack alone says {stack_rule.category}: {frames}"
        else:
            alone = f"the stack alone says {stack_rule.category} (rule {stack_rule.id}, state {group.state})"
        if wait is not None and rule is not stack_rule:
            return f"Category {rule.category} from the source: {wait.basis}. Without it, {alone}."
        if cls is not None and cls.category == rule.category:
            said = f"Category {rule.category} from the stack: {frames}."
        else:
            said = f"Category {rule.category} from the stack: rule {rule.id} (state {group.state})" + (
                f"; the frames alone show {frames}." if frames else "."
            )
        if wait is not None:
            agree = "agrees" if wait.category == rule.category else f"shows a {wait.category} wait"
            said += f" The source {agree}: {wait.basis}."
        return said

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
        return (
            f"RuleSet({len(self.rules)} rules, {len(self.ignores)} ignore rules, "
            f"{len(self.stack)} stack table rows)"
        )


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The rules and ignore rules of one file, entry point or mapping, validated."""

    name: str
    rules: tuple[Rule, ...] = ()
    ignores: tuple[IgnoreRule, ...] = ()
    disabled_rules: frozenset[str] = frozenset()
    disabled_ignores: frozenset[str] = frozenset()
    stack: StackTable = StackTable()


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
    layers: dict[str, list[StackEntry]] = {k: [] for k in _STACK_LAYERS}
    for src in reversed(sources):
        rules.extend(r for r in src.rules if r.id not in seen_rules)
        ignores.extend(i for i in src.ignores if i.id not in seen_ignores)
        seen_rules |= {r.id for r in src.rules} | src.disabled_rules
        seen_ignores |= {i.id for i in src.ignores} | src.disabled_ignores
        for k in _STACK_LAYERS:
            layers[k].extend(getattr(src.stack, k))
    return RuleSet(rules, ignores, StackTable(**{k: tuple(v) for k, v in layers.items()}))


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
        name,
        tuple(rules),
        tuple(ignores),
        frozenset(disabled_rules),
        frozenset(disabled_ignores),
        _parse_stack(data.get("stack"), name),
    )


def _parse_stack(value: object, name: str) -> StackTable:
    """`stack:`: a mapping of layer (calls, creators, runtime, states) to rows of the stack table."""
    if value is None:
        return StackTable()
    if not isinstance(value, Mapping):
        raise RulesError(
            f"{name}: stack: want a mapping of calls, creators, runtime and states, got {_kind(value)}"
        )
    _check_keys(value, _STACK_LAYERS, f"{name}: stack")
    layers: dict[str, tuple[StackEntry, ...]] = {}
    for layer in _STACK_LAYERS:
        rows = value.get(layer)
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise RulesError(f"{name}: stack: {layer}: want a list, got {_kind(rows)}")
        layers[layer] = tuple(
            _parse_stack_row(r, layer, f"{name}: stack: {layer} {n}") for n, r in enumerate(rows, 1)
        )
    return StackTable(**layers)


def _parse_stack_row(item: object, layer: str, where: str) -> StackEntry:
    if not isinstance(item, Mapping):
        raise RulesError(f"{where}: want a mapping, got {_kind(item)}")
    _check_keys(item, _STACK_KEYS, where)
    key = _STACK_MATCH[layer]
    if key not in item:
        raise RulesError(f'{where}: missing key "{key}"')
    for other in sorted(set(_STACK_MATCH.values()) - {key}):
        if other in item:
            owners = " or ".join(k for k, v in _STACK_MATCH.items() if v == other)
            raise RulesError(f'{where}: "{other}" belongs in stack: {owners}, not {layer}')
    category = _category(item.get("category"), where)
    what = item.get("what")
    if not isinstance(what, str) or not what.strip():
        raise RulesError(f"{where}: what: say what these frames wait on (non-empty text)")
    if key == "state":
        states = _states(item["state"], f"{where}: state")
        assert states is not None
        return StackEntry(category, what.strip(), states=states, source=where)
    return StackEntry(category, what.strip(), _names(item[key], f"{where}: {key}"), source=where)


def _category(category: object, where: str) -> str:
    if not isinstance(category, str) or not category.strip():
        raise RulesError(f"{where}: category: want non-empty text, got {_kind(category)}")
    if category not in CATEGORIES and not re.fullmatch(r"sdk/[\w./-]+", category):
        hint = _hint(category, CATEGORIES)
        raise RulesError(f'{where}: category: unknown category "{category}"{hint} (or "sdk/<library>")')
    return category


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
    category = _category(item["category"], where)
    max_verdict = item.get("max_verdict")
    if max_verdict is not None and max_verdict not in ("leak", "suspect"):
        raise RulesError(f'{where}: max_verdict: want "leak" or "suspect", got {_kind(max_verdict)}')
    wait_kind = item.get("wait_kind")
    if wait_kind is not None and wait_kind not in WAIT_KINDS:
        raise RulesError(f"{where}: wait_kind: want one of {', '.join(WAIT_KINDS)}, got {_kind(wait_kind)}")
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
        wait_kind=wait_kind,
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
        stack=_choices(when.get("stack"), f"{where}: stack", CATEGORIES, "category", sdk=True),
        source=_choices(when.get("source"), f"{where}: source", tuple(WAIT_CATEGORIES), "wait kind"),
        **names,
    )


def _choices(
    value: object, where: str, allowed: Sequence[str], noun: str, *, sdk: bool = False
) -> frozenset[str] | None:
    """A list of names from a fixed set (categories, or wait kinds), or None when absent."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s for s in items):
        raise RulesError(f"{where}: want a {noun} or a non-empty list of them, got {_kind(value)}")
    for item in items:
        if item not in allowed and not (sdk and re.fullmatch(r"sdk/[\w./-]+", item)):
            raise RulesError(f'{where}: unknown {noun} "{item}"{_hint(item, allowed)}')
    return frozenset(items)


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
