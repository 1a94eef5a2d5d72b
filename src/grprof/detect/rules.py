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

import contextlib
import functools
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from grprof import _cache
from grprof.detect.model import Explanation, Verdict, WaitKind
from grprof.errors import GrprofError
from grprof.model import Frame, Group

# The schema (pydantic, grprof.detect.rules_yaml), YAML and the source reader are imported
# where a file is validated or the source read: a run that finds the shipped rules in the
# user's cache (grprof._cache) needs none of them (start-up time, issue 9).
if TYPE_CHECKING:
    from grprof._yamlvalid import Document
    from grprof.detect.rules_yaml import IgnoreEntry, RuleEntry, StackRow, When
    from grprof.detect.source import SourceWait

ENTRY_POINT_GROUP = "grprof.rules"
SHIPPED = "grprof/data/rules.yaml"
VERSION = 1

# The stack table's layers (`grprof.detect.rules_yaml.STACK_MATCH`: the key each matches on).
_LAYERS = ("calls", "creators", "runtime", "states")
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
    """Function-name patterns (any of them), with results memoised per name.

    `regexes` are the patterns that compile as regular expressions (the others are function
    names, matched exactly); they are compiled on the first name that is not an exact match,
    not when the rules are built or unpickled: the shipped rules hold about a hundred regular
    expressions, most of which a run never tries (start-up time, issue 9).
    """

    __slots__ = ("_compiled", "_exact", "_regexes", "_seen", "_yes", "patterns")

    def __init__(self, patterns: Sequence[str], exact: frozenset[str], regexes: Sequence[str]):
        self.patterns = tuple(patterns)
        self._exact = exact
        self._regexes = tuple(regexes)
        self._compiled: tuple[re.Pattern[str], ...] | None = None
        # The memo as two sets (names tried, names that match): `any` then asks both of a
        # group's names in C (`isdisjoint`, `issuperset`). Ignore rules ask it of every
        # group's names: a million names for a dump of 20,000 distinct stacks.
        self._seen: set[str] = set()
        self._yes: set[str] = set()

    def __reduce__(self) -> tuple[type[_Names], tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]]:
        # The patterns only: the memo and the compiled expressions are rebuilt on use.
        return (_Names, (self.patterns, self._exact, self._regexes))

    def __call__(self, name: str) -> bool:
        if name in self._seen:
            return name in self._yes
        hit = name in self._exact or any(r.fullmatch(name) for r in self._expressions())
        if len(self._seen) >= _MAX_CACHE:  # a long-lived watcher sees many binaries
            self._seen.clear()
            self._yes.clear()
        self._seen.add(name)
        if hit:
            self._yes.add(name)
        return hit

    def _expressions(self) -> tuple[re.Pattern[str], ...]:
        if self._compiled is None:
            self._compiled = tuple(re.compile(p) for p in self._regexes)
        return self._compiled

    def any(self, names: Collection[str]) -> bool:
        if not self._yes.isdisjoint(names):
            return True
        if self._seen.issuperset(names):
            return False
        return any(self(n) for n in names)


_FUNCTION = attrgetter("function")


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
        "woken",
    )

    def __init__(
        self,
        group: Group,
        table: StackTable | None = None,
        wait: SourceWait | None = None,
        woken: bool = False,
    ) -> None:
        frames = group.frames
        self.states = group.states
        self.labels = group.labels
        # C-level maps: a view is made for every group, 20,000 of them in a dump of distinct
        # stacks (a generator per tuple cost twice as much).
        self.names = tuple(dict.fromkeys(map(_FUNCTION, frames)))
        site = group.site
        self.site = site.function if site else None
        k = _first_outside_runtime(frames)
        # goleak's "top function": what debug=2 prints first, whichever format this is.
        self.top = tuple(map(_FUNCTION, frames[: k + 1]))
        self.site_is_innermost = site is not None and k < len(frames) and frames[k] is site
        self.blocked = self.names
        if site is not None:
            # The site is the first frame of its kind, so no equal frame comes before it.
            idx = frames.index(site)
            self.blocked = tuple(dict.fromkeys(map(_FUNCTION, frames[: idx + 1])))
        self.creator = _creator(group)
        self.stack = None if table is None else table.classify(self.blocked, self.creator, group.state)
        self.wait = wait
        self.woken = woken


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
            return f.func_name.outer
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
    woken: bool | None = None
    """Whether the goroutines were shown to be woken (`grprof.detect.signals.woken`): never
    true of a group judged alone, without a series of debug=2 snapshots."""

    def matches(self, v: _View) -> bool:
        # What the source and the series said, beside the stack.
        if (self.source is not None and (v.wait is None or v.wait.kind not in self.source)) or (
            self.woken is not None and v.woken != self.woken
        ):
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
    """A root-cause rule: when it matches a group, the category, the texts and the fix."""

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
    """Goroutines that are long-lived by design (`ignore:` in the rules YAML), never a leak."""

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


class _Masks(dict[str, int]):
    """Name (or state) -> bit mask of the ignore rules one condition of which it satisfies
    (rule i is bit i), computed on first lookup (`dict.__getitem__` calls `__missing__`)."""

    __slots__ = ("test",)

    def __init__(self, test: Sequence[Callable[[str], bool] | None]) -> None:
        super().__init__()
        self.test = test

    def __missing__(self, name: str) -> int:
        mask = 0
        for i, t in enumerate(self.test):
            if t is not None and t(name):
                mask |= 1 << i
        if len(self) >= _MAX_CACHE:  # a long-lived watcher sees many binaries
            self.clear()
        self[name] = mask
        return mask


class _Ignores:
    """The ignore rules as bit masks, for `RuleSet.ignored`: the first rule all of whose
    conditions hold is the lowest bit set in the AND of each condition's mask (a rule without
    a condition passes it). A group's mask for `any_function` is the OR of its names' masks,
    in C; the others are asked only while some rule is still possible. `IgnoreRule.matches`
    says the same of one rule (tests/test_rules.py pins the two): 11 rules asked one after
    another cost 15 us a group, 300 ms for a dump of 20,000 distinct stacks."""

    __slots__ = (
        "any",
        "creator",
        "ids",
        "need_any",
        "need_creator",
        "need_states",
        "need_top",
        "states",
        "top",
    )

    def __init__(self, ignores: Sequence[IgnoreRule]) -> None:
        def need(attr: str) -> int:
            return sum(1 << i for i, r in enumerate(ignores) if getattr(r, attr) is not None)

        self.ids = tuple(r.id for r in ignores)
        self.need_any, self.need_top = need("any_function"), need("top_function")
        self.need_creator, self.need_states = need("created_by"), need("states")
        self.any = _Masks([r.any_function for r in ignores])
        self.top = _Masks([r.top_function for r in ignores])
        self.creator = _Masks([r.created_by for r in ignores])
        self.states = _Masks([None if r.states is None else r.states.__contains__ for r in ignores])

    def first(self, group: Group) -> str | None:
        frames = group.frames
        ok = (1 << len(self.ids)) - 1
        if self.need_any:
            ok &= ~self.need_any | functools.reduce(
                operator.or_, map(self.any.__getitem__, map(_FUNCTION, frames)), 0
            )
        if ok & self.need_states:
            ok &= ~self.need_states | functools.reduce(
                operator.or_, map(self.states.__getitem__, group.states), 0
            )
        if ok & self.need_creator:
            creator = _creator(group)
            ok &= ~self.need_creator | (0 if creator is None else self.creator[creator])
        if ok & self.need_top:
            top = frames[: _first_outside_runtime(frames) + 1]
            ok &= ~self.need_top | functools.reduce(
                operator.or_, map(self.top.__getitem__, map(_FUNCTION, top)), 0
            )
        return self.ids[(ok & -ok).bit_length() - 1] if ok else None


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
        return 1, "1 assumed: this profile does not say which goroutine started which (Go 1.21+ debug=2 does)"
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
        self._uses_woken = any(c.woken is not None for r in self.rules for c in r.when)
        self._uses_stack = any(c.stack is not None for r in self.rules for c in r.when)
        self._stack_classes: dict[object, tuple[object, StackClass | None]] = {}
        self._by_id = {r.id: r for r in self.rules}
        # A daemon asks about the same stacks at every scrape: remember the answers per stack.
        self._uses_labels = any(c.labels for r in self.rules for c in r.when)
        self._matched: dict[object, tuple[object, Rule | None]] = {}
        self._ignored: dict[object, tuple[object, str | None]] = {}
        self._ignore_masks = _Ignores(self.ignores)

    def _key(self, group: Group) -> object:
        labels = (
            tuple(sorted((k, tuple(sorted(v))) for k, v in group.labels.items())) if self._uses_labels else ()
        )
        # By the identity of the frames tuple and the creator frame: the snapshots of one
        # service share their stacks (`Snapshot.share_stacks`), and hashing 20 frames (or one:
        # a dataclass's hash is Python code) costs more than matching them. Each cached answer
        # holds both, so their ids cannot be reused while the entry lives. The states as a set:
        # their order (most goroutines first) changes from scrape to scrape.
        return (id(group.frames), id(group.created_by), frozenset(group.states), labels)

    @staticmethod
    def _remember(cache: dict[object, tuple[object, _T]], key: object, group: Group, value: _T) -> _T:
        if len(cache) >= _MAX_CACHE:
            cache.clear()
        cache[key] = ((group.frames, group.created_by), value)
        return value

    def classify(
        self,
        group: Group,
        *,
        source_dir: str | Path | None = None,
        wait: SourceWait | None = None,
        woken: bool = False,
    ) -> Explanation | None:
        """The first matching rule's explanation, None when no rule matches.

        With `source_dir` (or a `wait` already read with grprof.detect.source.wait_at), rules
        that read the blocking statement (`when: {source: [...]}`) take part, so the source
        decides where the stack cannot: `<-ctx.Done()` and `<-results` park in the same
        runtime frames. `woken`: a series showed the goroutines woken now and then (rules with
        `when: {woken: ...}`). The explanation's last sentence says what decided the category.
        """
        if wait is None and source_dir is not None:
            from grprof.detect.source import wait_at

            wait = wait_at(Path(source_dir), group)
        stack_rule = self.match(group, woken=woken)
        rule = self.match(group, wait, woken) if wait is not None else stack_rule
        if rule is None:
            return None
        basis = self._basis(group, rule, stack_rule, wait)
        return rule.explain(group, _placeholders(group, wait, basis, senders_needed=rule.uses_senders))

    def match(self, group: Group, wait: SourceWait | None = None, woken: bool = False) -> Rule | None:
        """The first rule that matches (reading the source's `wait` when given, and whether the
        goroutines were shown to be `woken`)."""
        key = self._key(group)
        woken = woken and self._uses_woken  # no rule reads it: the answer without it
        if wait is not None:
            if not self._source_rules:
                return self.match(group, woken=woken)
            key = (key, wait.kind)
        if woken:
            key = (key, "woken")
        hit = self._matched.get(key)
        if hit is not None:
            return hit[1]
        view = _View(group, self.stack if self._uses_stack else None, wait, woken)
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
        return self._remember(self._ignored, key, group, self._ignore_masks.first(group))

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
    layers: dict[str, list[StackEntry]] = {k: [] for k in _LAYERS}
    for src in reversed(sources):
        rules.extend(r for r in src.rules if r.id not in seen_rules)
        ignores.extend(i for i in src.ignores if i.id not in seen_ignores)
        seen_rules |= {r.id for r in src.rules} | src.disabled_rules
        seen_ignores |= {i.id for i in src.ignores} | src.disabled_ignores
        for k in _LAYERS:
            layers[k].extend(getattr(src.stack, k))
    return RuleSet(rules, ignores, StackTable(**{k: tuple(v) for k, v in layers.items()}))


@functools.cache
def _shipped() -> RuleSource:
    """data/rules.yaml, validated once and then read from the user's cache (grprof._cache)."""
    return _cache.shipped("rules.yaml", RuleSource, _parse_shipped)


def _parse_shipped(text: str) -> RuleSource:
    return parse_yaml(text, SHIPPED)


def load_file(path: str | Path) -> RuleSource:
    """A user rule file (`--rules FILE`)."""
    from grprof._yamlvalid import read

    return _from_doc(read(path, RulesError, "rule file"))


def parse_yaml(text: str, name: str) -> RuleSource:
    """Rules from YAML text; `name` says where they come from in error messages."""
    from grprof._yamlvalid import parse

    return _from_doc(parse(text, name, RulesError))


def _entry_point_sources() -> Iterator[RuleSource]:
    if not _may_declare(ENTRY_POINT_GROUP):
        return
    import importlib.metadata

    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        name = f'entry point "{ep.name}" ({ep.value})'
        try:
            obj = ep.load()
        except Exception as e:
            raise RulesError(f"{name}: cannot load: {type(e).__name__}: {e}") from None
        yield _from_object(obj, name)


def _may_declare(group: str) -> bool:
    """Whether a distribution on `sys.path` may declare entry points of `group`: False only
    when surely none does, so that the usual run (no plugin installed) skips importlib.metadata,
    which imports the `email` package (about 20 ms; start-up time, issue 9) where this look
    costs a directory listing per path entry and a read of each `entry_points.txt`.

    Conservative: a meta path finder other than the standard one that finds distributions, a
    zip file or an egg on the path, an unreadable directory or file all answer True, and
    importlib.metadata decides as before; the group's name anywhere in a distribution's
    `entry_points.txt` is enough.
    """
    import importlib.machinery
    import os
    import sys

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            return True
    needle = group.encode()
    try:
        for entry in sys.path:
            folder = os.fspath(entry) or "."
            if not os.path.isdir(folder):
                if os.path.exists(folder):
                    return True  # a zip file: importlib.metadata reads inside it
                continue
            with os.scandir(folder) as children:
                for child in children:
                    low = child.name.lower()
                    if low.endswith(".egg"):
                        return True
                    if not (low.endswith((".dist-info", ".egg-info")) and child.is_dir()):
                        continue
                    try:
                        with open(os.path.join(child.path, "entry_points.txt"), "rb") as f:
                            if needle in f.read():
                                return True
                    except FileNotFoundError:
                        continue
    except (OSError, TypeError):
        return True
    return False


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
    from grprof._yamlvalid import Document

    return _from_doc(Document(name, data))


def _from_doc(doc: Document) -> RuleSource:
    from grprof._yamlvalid import validate
    from grprof.detect.rules_yaml import STACK_MATCH, RulesFile

    f: RulesFile = validate(RulesFile, doc, RulesError)
    name = doc.name
    return RuleSource(
        name,
        tuple(_rule(r, f"{name}: rules.{i}") for i, r in enumerate(f.rules) if r.enabled),
        tuple(_ignore(r, f"{name}: ignore.{i}") for i, r in enumerate(f.ignore) if r.enabled),
        frozenset(r.id for r in f.rules if not r.enabled),
        frozenset(r.id for r in f.ignore if not r.enabled),
        StackTable(
            **{
                layer: tuple(
                    _stack_entry(row, layer, f"{name}: stack.{layer}.{i}") for i, row in enumerate(rows)
                )
                for layer in STACK_MATCH
                if (rows := getattr(f.stack, layer))
            }
        ),
    )


# ---------------------------------------------------------------------------- validated to compiled


def _names(patterns: Sequence[str]) -> _Names:
    regexes: list[str] = []
    for p in patterns:
        with contextlib.suppress(re.error):  # else a function name such as `sync.(*Mutex).Lock`
            re.compile(p)
            regexes.append(p)
    return _Names(patterns, frozenset(patterns), regexes)


def _maybe_names(patterns: Sequence[str] | None) -> _Names | None:
    return None if patterns is None else _names(patterns)


def _maybe_set(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _rule(r: RuleEntry, where: str) -> Rule:
    assert r.category and r.when and r.title and r.explanation and r.fix  # RuleEntry._complete
    return Rule(
        id=r.id,
        category=r.category,
        title=r.title.strip(),
        explanation=r.explanation.strip(),
        fix=r.fix.rstrip(),
        when=tuple(_condition(c) for c in r.when),
        source=where,
        max_verdict=r.max_verdict,
        wait_kind=r.wait_kind,
    )


def _condition(c: When) -> Condition:
    return Condition(
        states=_maybe_set(c.state),
        not_states=_maybe_set(c.not_state),
        top=_maybe_names(c.top),
        blocked_in=_maybe_names(c.blocked_in),
        frames=_maybe_names(c.frames),
        frames_all=tuple(_names(p) for p in c.frames_all or ()),
        not_frames=_maybe_names(c.not_frames),
        created_by=_maybe_names(c.created_by),
        not_created_by=_maybe_names(c.not_created_by),
        labels=tuple((k, re.compile(rx)) for k, rx in (c.labels or {}).items()),
        site_is_innermost=c.site_is_innermost,
        stack=_maybe_set(c.stack),
        source=_maybe_set(c.source),
        woken=c.woken,
    )


def _ignore(i: IgnoreEntry, where: str) -> IgnoreRule:
    assert i.reason is not None  # IgnoreEntry._complete
    return IgnoreRule(
        id=i.id,
        reason=i.reason.strip(),
        top_function=_maybe_names(i.top_function),
        any_function=_maybe_names(i.any_function),
        created_by=_maybe_names(i.created_by),
        states=_maybe_set(i.state),
        source=where,
    )


def _stack_entry(row: StackRow, layer: str, where: str) -> StackEntry:
    from grprof.detect.rules_yaml import STACK_MATCH

    what = row.what.strip()
    if layer == "states":
        return StackEntry(row.category, what, states=frozenset(row.state or ()), source=where)
    return StackEntry(row.category, what, _maybe_names(getattr(row, STACK_MATCH[layer])), source=where)


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
