"""Infer a goroutine's wait state from its stack, for formats that carry no status.

The knowledge is data (`grprof/data/wait_states.yaml`, which explains it); this module
only loads and applies it:

- `infer_state`: rules on the frames a stack shows, innermost first (debug=0, debug=1);
- `HiddenChains.solve`: for debug=1, whose stacks hide their leading runtime frames, which
  runtime call chain each stack's hidden program counters stand for, from the way the PCs
  of one dump relate to each other (one PC per call site, call sites in address order).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grprof import _cache
from grprof.errors import GrprofError
from grprof.model import Frame

# The schemas (pydantic, grprof.formats.states_yaml) and YAML are imported where a file is
# validated: a run that reads data/wait_states.yaml from the user's cache needs neither.
if TYPE_CHECKING:
    from grprof.formats.states_yaml import WaitClassesFile, WaitStatesFile

UNKNOWN = "unknown"
"""The state of a stack no rule explains (`grprof.formats.states_yaml.UNKNOWN` too)."""
_MAX_NAMES = 200_000
_GO_MINOR = re.compile(r"1\.(\d+)")
# Search effort for one dump's hidden chains: distinct PC tuples get a greedy answer past it.
_MAX_TUPLES = 24
_MAX_NODES = 50_000


@dataclass(frozen=True, slots=True)
class Rule:
    state: str
    callers: frozenset[str] = frozenset()
    max_lines_below_caller: int | None = None
    go_before: int | None = None
    """Applies only when the dump's Go version is known to be older than 1.<go_before>."""

    def applies(self, frames: Sequence[Frame], i: int, go_minor: int | None = None) -> bool:
        """Whether the conditions hold for frames[i] (its name already matched)."""
        if self.go_before is not None and (go_minor is None or go_minor >= self.go_before):
            return False
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
class Chain:
    """A run of runtime frames debug=1 hides: call sites innermost first, and the state."""

    sites: tuple[str, ...]
    state: str


@dataclass(frozen=True, slots=True)
class HiddenChains:
    """The runtime call chains a debug=1 stack may hide, and how their call sites are laid out."""

    chains: tuple[Chain, ...]
    """Most common first: where a dump cannot tell chains apart, the earlier one is chosen."""
    order: Mapping[str, tuple[int, int]]
    """Call site -> (layout list, position): sites of one list have increasing addresses."""
    anchors: tuple[tuple[int, str], ...] = ()
    """(position, site) that every chain has (runtime.gopark first): one PC for every stack."""
    families: tuple[tuple[int, ...], ...] = ()
    """Chain lengths whose chains share no site but the anchors and no layout list with those
    of other families: solved apart."""

    @staticmethod
    def build(chains: Sequence[Chain], order: Mapping[str, tuple[int, int]]) -> HiddenChains:
        if not chains:
            return HiddenChains((), order)
        shared = set.intersection(*({(i, s) for i, s in enumerate(c.sites)} for c in chains))
        anchors = tuple(sorted(shared))
        anchor_sites = {s for _, s in anchors}
        # Union the lengths whose chains share a site (other than an anchor) or a layout list.
        parent = {len(c.sites): len(c.sites) for c in chains}

        def root(n: int) -> int:
            while parent[n] != n:
                n = parent[n]
            return n

        owner: dict[object, int] = {}
        for c in chains:
            for s in c.sites:
                if s in anchor_sites:
                    continue
                for mark in (s, ("layout", order[s][0]) if s in order else s):
                    other = owner.setdefault(mark, len(c.sites))
                    parent[root(other)] = root(len(c.sites))
        groups: dict[int, list[int]] = {}
        for n in parent:
            groups.setdefault(root(n), []).append(n)
        return HiddenChains(tuple(chains), order, anchors, tuple(tuple(sorted(g)) for g in groups.values()))

    def solve(self, tuples: Mapping[tuple[int, ...], int]) -> dict[tuple[int, ...], str]:
        """The state of each tuple of hidden PCs (innermost first) that a known chain explains.

        `tuples` maps each distinct tuple of one dump to its goroutine count. A call site
        returns to one PC, distinct call sites to distinct PCs, and sites of one layout list
        lie in address order. Among the assignments of chains to tuples that respect this,
        the one explaining the most goroutines wins, then the one using earlier chains for
        the larger counts. Tuples no chain explains are left out.
        """
        by_len: dict[int, list[int]] = {}
        for ci, c in enumerate(self.chains):
            by_len.setdefault(len(c.sites), []).append(ci)
        items = [(t, n) for t, n in tuples.items() if len(t) in by_len]
        # An anchor site returns to one PC in the whole dump: the one most goroutines show.
        seed: dict[str, int] = {}
        for pos, site in self.anchors:
            weight: dict[int, int] = {}
            for t, n in items:
                weight[t[pos]] = weight.get(t[pos], 0) + n
            if weight:
                seed[site] = max(weight, key=lambda pc: (weight[pc], -pc))
        items = [(t, n) for t, n in items if all(t[pos] == seed[site] for pos, site in self.anchors)]
        out: dict[tuple[int, ...], str] = {}
        for lengths in self.families or (tuple(by_len),):
            part = sorted(((t, n) for t, n in items if len(t) in lengths), key=lambda tn: (-tn[1], tn[0]))
            if part:
                chosen = self._solve(part, by_len, seed)
                out.update(
                    (t, self.chains[ci].state) for (t, _), ci in zip(part, chosen, strict=True) if ci >= 0
                )
        return out

    def _solve(
        self, items: list[tuple[tuple[int, ...], int]], by_len: dict[int, list[int]], seed: dict[str, int]
    ) -> list[int]:
        greedy = self._greedy(items, by_len, seed)
        if len(items) > _MAX_TUPLES:
            return greedy
        search = _Search(self, items, by_len, seed)
        # The greedy answer bounds the search from the start: most branches end at once.
        search.best = greedy
        search.best_score = (
            sum(n for (_, n), ci in zip(items, greedy, strict=True) if ci >= 0),
            -sum(ci * n for (_, n), ci in zip(items, greedy, strict=True) if ci >= 0),
        )
        search.run(0, 0, 0)  # out of budget, it still holds the best answer found
        return search.best

    def _greedy(
        self, items: list[tuple[tuple[int, ...], int]], by_len: dict[int, list[int]], seed: dict[str, int]
    ) -> list[int]:
        """Largest tuple first, each gets the first chain consistent with those before (-1: none)."""
        b = _Bindings(self, seed)
        out = []
        for t, _ in items:
            for ci in by_len[len(t)]:
                if b.bind(self.chains[ci].sites, t) is not None:
                    out.append(ci)
                    break
            else:
                out.append(-1)
        return out


class _Bindings:
    """Call site <-> PC bindings made so far, checked against the layout as they are made."""

    def __init__(self, model: HiddenChains, seed: Mapping[str, int]) -> None:
        self.order = model.order
        self.site_pc: dict[str, int] = dict(seed)
        self.pc_site: dict[int, str] = {pc: site for site, pc in seed.items()}

    def bind(self, sites: Sequence[str], pcs: Sequence[int]) -> list[str] | None:
        """Bind each site to its PC; the sites newly bound, or None (and nothing bound)."""
        new: list[str] = []
        for site, pc in zip(sites, pcs, strict=True):
            have = self.site_pc.get(site)
            if have is not None:
                if have != pc:
                    self.unbind(new)
                    return None
                continue
            other = self.pc_site.get(pc)
            if (other is not None and other != site) or not self._in_order(site, pc):
                self.unbind(new)
                return None
            self.site_pc[site] = pc
            self.pc_site[pc] = site
            new.append(site)
        return new

    def unbind(self, sites: list[str]) -> None:
        for s in sites:
            del self.pc_site[self.site_pc.pop(s)]

    def _in_order(self, site: str, pc: int) -> bool:
        where = self.order.get(site)
        if where is None:
            return True
        lst, pos = where
        for other, opc in self.site_pc.items():
            ow = self.order.get(other)
            if ow is not None and ow[0] == lst and (ow[1] < pos) != (opc < pc):
                return False
        return True


class _Search:
    """Branch and bound over chain assignments (few tuples: a dump has few call sites)."""

    def __init__(
        self,
        model: HiddenChains,
        items: list[tuple[tuple[int, ...], int]],
        by_len: dict[int, list[int]],
        seed: Mapping[str, int],
    ) -> None:
        self.model = model
        self.items = items
        self.by_len = by_len
        self.rest = [sum(n for _, n in items[i:]) for i in range(len(items) + 1)]
        self.bindings = _Bindings(model, seed)
        self.current: list[int] = []
        self.best: list[int] = []
        self.best_score = (-1, 0)
        self.nodes = 0
        self.exhausted = False

    def run(self, i: int, explained: int, cost: int) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            self.exhausted = True
            return
        # What the rest could add at best: every goroutine explained, at no further cost.
        if (explained + self.rest[i], -cost) <= self.best_score:
            return
        if i == len(self.items):
            score = (explained, -cost)
            if score > self.best_score:
                self.best_score, self.best = score, list(self.current)
            return
        t, n = self.items[i]
        for ci in self.by_len[len(t)]:
            undo = self.bindings.bind(self.model.chains[ci].sites, t)
            if undo is None:
                continue
            self.current.append(ci)
            self.run(i + 1, explained + n, cost + ci * n)
            self.current.pop()
            self.bindings.unbind(undo)
            if self.exhausted:
                return
        self.current.append(-1)
        self.run(i + 1, explained, cost)
        self.current.pop()


@dataclass(frozen=True, slots=True)
class Rules:
    exact: dict[str, tuple[Rule, ...]]
    prefixes: tuple[tuple[str, Rule], ...]
    contains: tuple[tuple[str, Rule], ...]
    empty_stack: str = UNKNOWN
    """The state of a stack with no frame at all (a goroutine that has not started yet)."""
    hidden: HiddenChains = field(default_factory=lambda: HiddenChains.build((), {}))
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


def infer_state(frames: Sequence[Frame], go_minor: int | None = None) -> str:
    """The wait reason the stack shows (`chan receive`, `sync.Mutex.Lock`, ...) or "unknown".

    `go_minor` is the minor Go version that wrote the profile when known exactly (19 for
    Go 1.19.8): rules with `go_before` apply only then.
    """
    rules = load_rules()
    if not frames:
        return rules.empty_stack
    lookup = rules.lookup
    for i, frame in enumerate(frames):
        found, std = lookup(frame)
        for rule in found:
            if rule.applies(frames, i, go_minor):
                return rule.state
        if not std:
            break
    return UNKNOWN


def hidden_chains() -> HiddenChains:
    return load_rules().hidden


@functools.cache
def load_rules() -> Rules:
    """data/wait_states.yaml, validated once and then read from the user's cache."""
    return _cache.shipped("wait_states.yaml", Rules, _parse_shipped_states)


def _parse_shipped_states(text: str) -> Rules:
    return parse_wait_states(text, "grprof/data/wait_states.yaml")


def parse_wait_states(text: str, name: str) -> Rules:
    """wait_states.yaml text, validated and indexed; WaitStatesError (`NAME:LINE: key.path: ...`)."""
    from grprof._yamlvalid import parse, validate
    from grprof.formats.states_yaml import WaitStatesFile

    return _compile(validate(WaitStatesFile, parse(text, name, WaitStatesError), WaitStatesError))


class WaitStatesError(GrprofError, ValueError):
    """wait_states.yaml does not match its schema: `wait_states.yaml:LINE: key.path: message`."""


def compile_rules(doc: Any) -> Rules:
    """Validate the YAML document and index its rules; WaitStatesError (a ValueError) if it is malformed."""
    from grprof._yamlvalid import Document, validate
    from grprof.formats.states_yaml import WaitStatesFile

    return _compile(validate(WaitStatesFile, Document("wait_states.yaml", doc), WaitStatesError))


def _compile(doc: WaitStatesFile) -> Rules:
    exact: dict[str, list[Rule]] = {}
    prefixes: list[tuple[str, Rule]] = []
    contains: list[tuple[str, Rule]] = []
    for item in doc.rules:
        m = _GO_MINOR.fullmatch(item.go_before) if item.go_before else None
        rule = Rule(item.state, frozenset(item.caller), item.max_lines_below_caller, int(m[1]) if m else None)
        for name in item.function or ():
            exact.setdefault(name, []).append(rule)
        prefixes.extend((p, rule) for p in item.prefix or ())
        contains.extend((p, rule) for p in item.contains or ())
    hidden = doc.hidden
    chains = [Chain(c.sites, c.state) for c in hidden.chains] if hidden else []
    layout = hidden.layout if hidden else ()
    order = {site: (li, pos) for li, sites in enumerate(layout) for pos, site in enumerate(sites)}
    return Rules(
        {k: tuple(v) for k, v in exact.items()},
        tuple(prefixes),
        tuple(contains),
        doc.empty_stack,
        HiddenChains.build(chains, order),
    )


# -- data/wait_classes.yaml (grprof.server.runtime.classify_wait) ----------------------------


@functools.cache
def load_wait_classes() -> WaitClassesFile:
    """data/wait_classes.yaml, validated once and then read from the user's cache."""
    from grprof.formats.states_yaml import WaitClassesFile

    return _cache.shipped("wait_classes.yaml", WaitClassesFile, _parse_shipped_classes)


def _parse_shipped_classes(text: str) -> WaitClassesFile:
    return parse_wait_classes(text, "grprof/data/wait_classes.yaml")


def parse_wait_classes(text: str, name: str) -> WaitClassesFile:
    """wait_classes.yaml text, validated; YamlError `NAME:LINE: key.path: message` when it is wrong.
    (The validated model is what `grprof serve` reads and the cache keeps: serve imports pydantic
    anyway.)"""
    from grprof._yamlvalid import parse, validate
    from grprof.formats.states_yaml import WaitClassesFile

    classes: WaitClassesFile = validate(WaitClassesFile, parse(text, name))
    return classes
