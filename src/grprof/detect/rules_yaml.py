"""The schema of a rule file (pydantic): imported only to validate one (docs/rules.md).

`grprof.detect.rules` validates a rule file, an entry point's rules or `grprof/data/rules.yaml`
with `RulesFile` (a mistake is one line, `FILE:LINE: key.path: message (did you mean ...)`,
through `grprof._yamlvalid`) and compiles the result into its own plain classes (`Rule`,
`IgnoreRule`, `StackTable`, in a `RuleSource`), which the detector runs and the user's cache
keeps. A run that reads the shipped rules from the cache imports neither this module nor
pydantic (start-up time, issue 9). This module imports nothing of `grprof.detect.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictStr, model_validator

from grprof._yamlvalid import Located, Strict, hint
from grprof.detect.source import WAIT_CATEGORIES
from grprof.detect.vocab import CATEGORIES, WaitKind

STACK_MATCH = {"calls": "frames", "creators": "created_by", "runtime": "frames", "states": "state"}
"""The key each layer of the stack table matches on."""
_SDK = re.compile(r"sdk/[\w./-]+")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Characters that only a regex has: a pattern with one of these that does not compile is a
# broken regex (an error), not a function name.
_REGEX_ONLY = re.compile(r"\\|\||\^|\$|\.\*|\.\+|\+\)|\(\?")


def _listify(value: object) -> object:
    """A single pattern (or state, or category) is a list of one."""
    return [value] if isinstance(value, str) else value


def _mappings(value: object) -> object:
    """`when:` is a mapping or a list of mappings."""
    return [value] if isinstance(value, Mapping) else value


def _pattern(p: str) -> str:
    try:
        re.compile(p)
    except re.error as e:
        if _REGEX_ONLY.search(p):
            raise ValueError(f'bad regex "{p}": {e}') from None
        # Not a regex: a function name such as `sync.(*Mutex).Lock`, matched exactly.
    return p


def _regex(rx: str) -> str:
    try:
        re.compile(rx)
    except re.error as e:
        raise ValueError(f'bad regex "{rx}": {e}') from None
    return rx


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _known(allowed: Sequence[str], noun: str, *, sdk: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed and not (sdk and _SDK.fullmatch(value)):
            nor = ', nor "sdk/<library>"' if sdk else ""
            raise ValueError(f'unknown {noun} "{value}"{nor}{hint(value, allowed)}')
        return value

    return check


def _id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"want lowercase letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _unique_ids(items: tuple[_Entry, ...]) -> tuple[_Entry, ...]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise Located((i, "id"), f'"{item.id}" is used twice in this file')
        seen.add(item.id)
    return items


def _empty(value: object) -> object:
    return () if value is None else value


_Text = Annotated[StrictStr, AfterValidator(_text)]
_Name = Annotated[StrictStr, Field(min_length=1)]
_Category = Annotated[StrictStr, AfterValidator(_known(CATEGORIES, "category", sdk=True))]
_WaitKindName = Annotated[StrictStr, AfterValidator(_known(tuple(WAIT_CATEGORIES), "wait kind"))]
_Patterns = Annotated[
    tuple[Annotated[_Name, AfterValidator(_pattern)], ...], BeforeValidator(_listify), Field(min_length=1)
]
_States = Annotated[tuple[_Name, ...], BeforeValidator(_listify), Field(min_length=1)]
_Id = Annotated[StrictStr, AfterValidator(_id)]


class When(Strict):
    """One `when` mapping: every key given must hold."""

    state: _States | None = None
    not_state: _States | None = None
    top: _Patterns | None = None
    blocked_in: _Patterns | None = None
    frames: _Patterns | None = None
    frames_all: Annotated[tuple[_Patterns, ...], Field(min_length=1)] | None = None
    not_frames: _Patterns | None = None
    created_by: _Patterns | None = None
    not_created_by: _Patterns | None = None
    labels: (
        Annotated[dict[StrictStr, Annotated[StrictStr, AfterValidator(_regex)]], Field(min_length=1)] | None
    ) = None
    site_is_innermost: StrictBool | None = None
    stack: Annotated[tuple[_Category, ...], BeforeValidator(_listify), Field(min_length=1)] | None = None
    source: Annotated[tuple[_WaitKindName, ...], BeforeValidator(_listify), Field(min_length=1)] | None = None
    woken: StrictBool | None = None

    @model_validator(mode="after")
    def _some(self) -> When:
        if not self.model_fields_set:
            raise ValueError("want at least one condition")
        return self


class _Entry(Strict):
    id: _Id
    enabled: StrictBool = True


class RuleEntry(_Entry):
    category: _Category | None = None
    when: Annotated[tuple[When, ...], BeforeValidator(_mappings), Field(min_length=1)] | None = None
    title: _Text | None = None
    explanation: _Text | None = None
    fix: _Text | None = None
    max_verdict: Literal["leak", "suspect"] | None = None
    wait_kind: WaitKind | None = None

    @model_validator(mode="after")
    def _complete(self) -> RuleEntry:
        for key in ("category", "when", "title", "explanation", "fix"):
            if self.enabled and getattr(self, key) is None:
                raise Located((key,), "missing")
        return self


class IgnoreEntry(_Entry):
    top_function: _Patterns | None = None
    any_function: _Patterns | None = None
    created_by: _Patterns | None = None
    state: _States | None = None
    reason: _Text | None = None

    @model_validator(mode="after")
    def _complete(self) -> IgnoreEntry:
        if self.enabled and not {"top_function", "any_function", "created_by"} & self.model_fields_set:
            raise ValueError("needs at least one of top_function, any_function, created_by")
        if self.enabled and self.reason is None:
            raise Located(("reason",), "missing: say why these goroutines are never a leak")
        return self


class StackRow(Strict):
    category: _Category
    what: _Text
    frames: _Patterns | None = None
    created_by: _Patterns | None = None
    state: _States | None = None


def _layer(layer: str) -> Callable[[tuple[StackRow, ...]], tuple[StackRow, ...]]:
    key = STACK_MATCH[layer]

    def check(rows: tuple[StackRow, ...]) -> tuple[StackRow, ...]:
        for i, row in enumerate(rows):
            if getattr(row, key) is None:
                raise Located((i, key), "missing")
            for other in sorted(set(STACK_MATCH.values()) - {key}):
                if getattr(row, other) is not None:
                    owners = " or ".join(k for k, v in STACK_MATCH.items() if v == other)
                    raise Located((i, other), f"belongs in stack.{owners}, not {layer}")
        return rows

    return check


class Stack(Strict):
    """The stack table: rows per layer."""

    calls: Annotated[tuple[StackRow, ...], BeforeValidator(_empty), AfterValidator(_layer("calls"))] = ()
    creators: Annotated[
        tuple[StackRow, ...], BeforeValidator(_empty), AfterValidator(_layer("creators"))
    ] = ()
    runtime: Annotated[tuple[StackRow, ...], BeforeValidator(_empty), AfterValidator(_layer("runtime"))] = ()
    states: Annotated[tuple[StackRow, ...], BeforeValidator(_empty), AfterValidator(_layer("states"))] = ()


class RulesFile(Strict):
    """A rule file: `grprof/data/rules.yaml`, `--rules FILE`, an entry point's mapping."""

    version: Literal[1]
    rules: Annotated[tuple[RuleEntry, ...], BeforeValidator(_empty), AfterValidator(_unique_ids)] = ()
    ignore: Annotated[tuple[IgnoreEntry, ...], BeforeValidator(_empty), AfterValidator(_unique_ids)] = ()
    stack: Annotated[Stack, BeforeValidator(lambda v: {} if v is None else v)] = Stack()
