"""The schemas of data/wait_states.yaml and data/wait_classes.yaml (pydantic).

Imported only to validate a file: `grprof.formats.states` indexes the validated wait-state
rules into its own plain classes (`Rules`), which the parsers of debug=0 and debug=1 read and
the user's cache keeps, so a run that finds them there imports neither this module nor
pydantic (start-up time, issue 9). Imports nothing of `grprof.formats.states`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StrictInt, StrictStr, model_validator

from grprof._yamlvalid import Located, Strict, hint

UNKNOWN = "unknown"
"""`grprof.formats.states.UNKNOWN`: the default `empty_stack`."""
_MATCHERS = ("function", "prefix", "contains")


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


_Names = Annotated[tuple[Annotated[StrictStr, Field(min_length=1)], ...], BeforeValidator(_listify)]


class StateRule(Strict):
    function: _Names | None = None
    prefix: _Names | None = None
    contains: _Names | None = None
    caller: _Names = ()
    max_lines_below_caller: StrictInt | None = None
    go_before: Annotated[StrictStr, Field(pattern=r"^1\.\d+$")] | None = None
    state: StrictStr

    @model_validator(mode="after")
    def _one_matcher(self) -> StateRule:
        if sum(getattr(self, k) is not None for k in _MATCHERS) != 1:
            raise ValueError(f"needs exactly one of {'/'.join(_MATCHERS)}")
        return self


class HiddenChain(Strict):
    sites: _Names
    state: StrictStr


class Hidden(Strict):
    chains: tuple[HiddenChain, ...]
    layout: tuple[_Names, ...] = ()

    @model_validator(mode="after")
    def _layout_sites(self) -> Hidden:
        sites = {s for c in self.chains for s in c.sites}
        seen: set[str] = set()
        for li, names in enumerate(self.layout):
            for pos, site in enumerate(names):
                if site in seen:
                    raise Located(("layout", li, pos), f"{site!r} is named twice")
                if site not in sites:
                    raise Located(("layout", li, pos), f"{site!r} is in no chain")
                seen.add(site)
        return self


class WaitStatesFile(Strict):
    rules: tuple[StateRule, ...]
    empty_stack: Annotated[StrictStr, Field(min_length=1)] = UNKNOWN
    hidden: Hidden | None = None


# -- data/wait_classes.yaml (grprof.server.runtime.classify_wait) ----------------------------


class WaitClass(Strict):
    exact: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()


class WaitClassesFile(Strict):
    """`grprof/data/wait_classes.yaml`: wait reasons grouped into classes for metrics."""

    default: str
    classes: dict[str, WaitClass]

    @model_validator(mode="after")
    def _default_is_a_class(self) -> WaitClassesFile:
        if self.default not in self.classes:
            raise Located(
                ("default",),
                f'"{self.default}" is not one of the classes{hint(self.default, list(self.classes))}',
            )
        return self
