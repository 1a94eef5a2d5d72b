"""`FuncName`, the one parser of Go function names, against the four it replaced.

The old code paths are kept here verbatim (`_old_*`): `Frame.package` (frames), `loose_function`
(aggregate, the gate's signatures), `_CLOSURE` (detect.rules, a closure's enclosing function),
`_split_function` with `_CLOSURE_PART`/`_GENERIC_ARGS` (detect.source, the declared function)
and `_CLOSURE_FRAME` (detect.source, is the frame a closure). Every distinct function name of
the fixtures' dumps must get the same answers from `FuncName` as from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import grprof
from grprof.aggregate import loose_function
from grprof.errors import GrprofError
from grprof.frames import FUNC_NAME_CACHE, Frame, FuncName, _parse_func_name

FIXTURES = Path(__file__).parent / "fixtures"

# --- the old code, as it was -----------------------------------------------------------------

_OLD_CLOSURE_NUM = re.compile(r"\.(func|gowrap)\d+|\.\d+(?=\.|$)")
_OLD_CLOSURE = re.compile(r"^(?P<outer>.+?)\.(?:func\d+|gowrap\d+)(?:\.\d+)*$")
_OLD_CLOSURE_FRAME = re.compile(r"\.(func\d+|gowrap\d+)(\.\d+)*$")
_OLD_CLOSURE_PART = re.compile(r"(func\d+|gowrap\d+|\d+)")
_OLD_GENERIC_ARGS = re.compile(r"\[[^\]]*\]")


def _old_package(name: str) -> str:
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name if dot < 0 else name[:dot]


def _old_loose(name: str) -> str:
    return _OLD_CLOSURE_NUM.sub(lambda m: f".{m.group(1)}" if m.group(1) else ".N", name)


def _old_outer(name: str) -> str | None:
    m = _OLD_CLOSURE.match(name)
    return m.group("outer") if m else None


def _old_split(name: str) -> tuple[str | None, str | None]:
    """(name, receiver), as detect.source._split_function answered."""
    rest = _OLD_GENERIC_ARGS.sub("", name[len(_old_package(name)) :].lstrip("."))
    parts = rest.split(".")
    if parts[0].startswith("("):
        return (parts[1] if len(parts) > 1 and parts[1] else None), parts[0].strip("()*")
    if not parts[0] or parts[0] == "glob":
        return None, None
    if len(parts) > 1 and parts[1] and not _OLD_CLOSURE_PART.fullmatch(parts[1]):
        return parts[1], parts[0]
    return parts[0], None


# --- the names -------------------------------------------------------------------------------


def _fixture_names() -> list[str]:
    names: set[str] = set()
    for path in sorted(FIXTURES.rglob("*.txt")):
        try:
            snaps = grprof.load_all(path)
        except (GrprofError, OSError, ValueError):
            continue
        for snap in snaps:
            for g in snap.groups("exact"):
                names.update(f.function for f in g.frames)
                if g.created_by is not None:
                    names.add(g.created_by.function)
    return sorted(names)


NAMES = _fixture_names()

# Shapes the fixtures may lack: generics, value receivers, package-level closures, wrappers.
EXTRA = [
    "main.main",
    "main.main.func15.1",
    "main.seq.1",
    "runtime.gcenable.gowrap1",
    "main.(*Server).handle.func2.1",
    "example.com/x/v2.(*Map[...]).Get",
    "example.com/x/v2.Map[go.shape.int].Get.func1",
    "example.com/x/v2.Pool[...].run.gowrap3",
    "gopkg.in/yaml.v3.(*parser).parse",
    "pkg.glob..func1",
    "pkg.T.M",
    "pkg.T.func1",
    "pkg.F.1.2",
    "net/http.(*conn).serve",
    "noDot",
    "",
    ".func1",
    "a/b/c",
]


def test_fixtures_give_names() -> None:
    assert len(NAMES) > 200
    assert any(".func" in n for n in NAMES) and any("(*" in n for n in NAMES)


@pytest.mark.parametrize("names", [NAMES, EXTRA], ids=["fixtures", "shapes"])
def test_same_answers_as_the_old_parsers(names: list[str]) -> None:
    for n in names:
        fn = FuncName.of(n)
        assert fn.full == n
        assert fn.package == _old_package(n), n
        assert Frame(n, "x.go", 1).package == _old_package(n), n
        assert fn.loose == _old_loose(n), n
        assert fn.outer == _old_outer(n), n
        assert fn.is_closure == (_OLD_CLOSURE_FRAME.search(n) is not None), n
        assert (fn.name, fn.receiver) == _old_split(n), n
        assert fn.generic == ("[" in n), n
        assert loose_function(n) == _old_loose(n), n


def test_derived_values() -> None:
    fn = FuncName.of("main.(*Server).handle.func2.1")
    assert (fn.package, fn.receiver, fn.name, fn.closures) == ("main", "Server", "handle", ("func2", "1"))
    assert fn.loose == "main.(*Server).handle.func.N"
    assert fn.outer == "main.(*Server).handle"
    g = FuncName.of("example.com/x/v2.(*Map[...]).Get")
    assert (g.package, g.receiver, g.name, g.generic, g.is_closure) == (
        "example.com/x/v2",
        "Map",
        "Get",
        True,
        False,
    )
    assert FuncName.of("runtime.gcenable.gowrap1").outer == "runtime.gcenable"
    assert FuncName.of("pkg.glob..func1").name is None
    # As before: a dot in the last path element ends the package (gopkg.in's `.v3` included).
    assert FuncName.of("gopkg.in/yaml.v3.(*parser).parse").package == "gopkg.in/yaml"


def test_parsed_once_and_bounded() -> None:
    assert FuncName.of("main.once.func1") is FuncName.of("main.once.func1")
    assert _parse_func_name.cache_info().maxsize == FUNC_NAME_CACHE
