"""One validation layer for every YAML input: pydantic models, errors as one line each.

    doc = parse(text, "rules.yaml", RulesError)      # YAML, keeping each key's line
    rules = validate(RulesFile, doc, RulesError)     # `rules.yaml:12: rules.3.when.stat:
                                                     #  unknown key (did you mean "state"?)`

Models derive from `Strict` (unknown keys are errors, with the nearest known key as a hint).
A validator that knows the error lies below the value it checks (the second of two equal ids
in a list) raises `Located(("3", "id"), message)`: the line and key path then name it.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from grprof.errors import GrprofError

if TYPE_CHECKING:
    import yaml

Loc = tuple[str | int, ...]


class YamlError(GrprofError):
    """A YAML file does not match its schema; one line, `FILE:LINE: key.path: message`."""


class Located(ValueError):
    """Raised by a validator: the problem is at `loc` below the value being validated."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    """The base of every input model: unknown keys are errors, values are immutable."""

    # defer_build: a model's validator is built when it first validates, not when its module
    # is imported (most runs read the shipped files from grprof._cache and validate nothing).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


@dataclass(frozen=True, slots=True)
class Document:
    """Parsed YAML (or JSON) and the line of every key and item, for error messages."""

    name: str
    data: Any
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)


def hint(word: str, choices: Sequence[str]) -> str:
    """` (did you mean "X"?)` for the nearest choice, or "" when none is near."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def read(path: str | Path, error: type[GrprofError] = YamlError, what: str = "file") -> Document:
    """Read and parse a YAML file; `error` for a file that cannot be read or parsed."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"{name}: cannot read {what}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise error(f"{name}: not UTF-8 text (byte {e.start})") from None
    return parse(text, name, error)


def parse(text: str, name: str, error: type[GrprofError] = YamlError) -> Document:
    """YAML text to data, with lines; `error` (one line with the line number) if it is not YAML."""
    import yaml  # here, not at the top: most runs read no YAML (grprof._cache)

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{where}: not valid YAML: {' '.join(str(problem).split())}") from None
    return Document(name, data, lines(text))


def lines(text: str) -> dict[tuple[str, ...], int]:
    """The line of every key and item of YAML (or JSON) text; empty when it does not parse."""
    import yaml

    out: dict[tuple[str, ...], int] = {}
    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError:
        return out
    if node is not None:
        _lines(node, (), out)
    return out


def _loader() -> type[yaml.SafeLoader]:
    import yaml

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def _lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    """Each path's line: where its value starts (a block under `key:` starts on the next line)."""
    import yaml

    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = (*path, str(k.value))
            out[key] = k.start_mark.line + 1
            _lines(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, str(i)), out)


def at(doc: Document, loc: Loc, message: str) -> str:
    """`FILE:LINE: key.path: message` for a problem found after validation."""
    shown = _shown(loc, doc.data)
    line = _line(shown, doc.lines)
    where = f"{doc.name}:{line}" if line else doc.name
    return f"{where}: {'.'.join(str(x) for x in shown) or '(top level)'}: {message}"


def validate(model: Any, doc: Document, error: type[GrprofError] = YamlError) -> Any:
    """`doc.data` as `model` (a pydantic model or any type pydantic validates), else `error`
    with the first problem as `FILE:LINE: key.path: message (did you mean X?)`."""
    try:
        return _adapter(model).validate_python(doc.data)
    except ValidationError as e:
        raise error(describe(e, model, doc)) from None


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def describe(err: ValidationError, model: Any, doc: Document) -> str:
    """The first error of `err` as one line naming the file, line and key path."""
    loc, msg = _first(err, model, doc.data)
    return at(doc, loc, msg)


def problem(err: ValidationError, model: Any, data: Any) -> str:
    """The first error of `err` as `key.path: message` (the message alone at the top level)."""
    loc, msg = _first(err, model, data)
    return f"{'.'.join(str(x) for x in loc)}: {msg}" if loc else msg


def _first(err: ValidationError, model: Any, data: Any) -> tuple[Loc, str]:
    errors = err.errors()
    # A misspelt required key is both unknown and missing: the unknown one says more.
    e = next((x for x in errors if x["type"] != "missing"), errors[0])
    loc: Loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith(("function-", "[key]"))))
    ctx = e.get("ctx") or {}
    cause = ctx.get("error")
    msg = str(e["msg"]).removeprefix("Value error, ")
    kind = e["type"]
    if isinstance(cause, Located):
        loc = (*loc, *cause.loc)
        msg = str(cause)
    elif kind == "extra_forbidden":
        msg = "unknown key" + hint(str(loc[-1]), _fields(_type_at(model, loc[:-1])))
    elif kind == "missing":
        msg = "missing"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        fields = _fields(_type_at(model, loc))
        keys = f" of keys ({', '.join(fields[:3])}, ...)" if len(fields) > 3 else ""
        msg = f"must be a mapping{keys}, got {_kind(e.get('input'))}"
    elif kind == "list_type":
        msg = f"must be a list, got {_kind(e.get('input'))}"
    elif kind == "literal_error" and isinstance(e.get("input"), str):
        msg += hint(e["input"], [str(a) for a in typing.get_args(_unwrap(_type_at(model, loc)))])
    return loc, msg


def _shown(loc: Loc, data: Any) -> Loc:
    """The key path as the file has it: a single value the model reads as a list of one
    (`frames: f` for `frames: [f]`) has no index in the file."""
    out: list[str | int] = []
    cur = data
    for x in loc:
        if isinstance(x, int) and not isinstance(cur, list):
            continue
        out.append(x)
        if isinstance(cur, Mapping):
            cur = cur.get(x)
        elif isinstance(cur, list) and isinstance(x, int) and 0 <= x < len(cur):
            cur = cur[x]
        else:
            cur = None
    return tuple(out)


def _line(loc: Loc, lines: Mapping[tuple[str, ...], int]) -> int | None:
    path = tuple(str(x) for x in loc)
    return next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)


def _unwrap(tp: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` to `X`."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(model: Any, loc: Loc) -> Any:
    """The type the model expects at `loc` (None when it cannot tell)."""
    tp = model
    for x in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(x))
            if info is None:
                return None
            tp = info.annotation
        elif origin in (list, tuple, Sequence, frozenset, set) and args and isinstance(x, int):
            tp = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            tp = args[1]
        elif isinstance(x, int):
            continue  # a value the model wraps into a list (see _shown)
        else:
            return None
    return tp


def _fields(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f'"{value}"' if len(value) < 40 else "text"
    return {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
