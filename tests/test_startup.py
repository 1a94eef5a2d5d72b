"""Start-up (issue 9): a command imports what it needs and no more (benchmarks/startup.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from grprof import _cache, cli

# Never needed to start or to print help: detection, validation of YAML, the web and the database.
HEAVY = ("pydantic", "yaml", "jinja2", "fastapi", "sqlalchemy", "aiohttp", "rich", "grprof.detect")


def _imported(code: str) -> list[str]:
    """The heavy modules in `sys.modules` after `code` runs in a fresh interpreter."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_import_grprof_imports_no_detection_or_validation() -> None:
    assert _imported("import grprof") == []


def test_help_and_version_import_no_command() -> None:
    for args in (["--help"], ["--version"]):
        code = (
            "import sys\nfrom grprof.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        )
        assert _imported(code) == [], args


def test_lazy_parser_lists_what_the_modules_register() -> None:
    """`COMMANDS` repeats each command's name and help so `--help` need not import it: they
    must be what the module's `add_parser` says, and the help the same as with every module."""
    full = cli.build_parser()
    assert cli.build_parser(None, all_commands=False).format_help() == full.format_help()
    sub = next(a for a in full._actions if a.dest == "command")
    shown = {c.dest: c.help for c in sub._choices_actions}  # type: ignore[attr-defined]
    assert shown == {e.name: e.help for e in cli.COMMANDS}
    for entry in cli.COMMANDS:
        lazy = cli.build_parser(entry.name, all_commands=False)
        assert lazy.format_help() == full.format_help()
        sub_lazy = next(a for a in lazy._actions if a.dest == "command")
        assert sub_lazy.choices[entry.name].format_help() == sub.choices[entry.name].format_help()


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["analyze", "x"], "analyze"),
        (["--version"], None),
        (["-h", "diff"], "diff"),
        (["--", "gate"], "gate"),
        ([], None),
    ],
)
def test_command_name(argv: list[str], name: str | None) -> None:
    assert cli.command_name(argv) == name


def test_analyze_imports_only_its_command() -> None:
    code = (
        "import sys\nfrom grprof.cli import main\n"
        "try:\n    main(['analyze', '--help'])\nexcept SystemExit:\n    pass\n"
        "others = ('grprof.cli.diff', 'grprof.cli.watch', 'grprof.cli.serve', 'grprof.ops', 'grprof.gate',"
        " 'grprof.canary')\n"
        "print(sorted(m for m in sys.modules if m.startswith(others)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "[]"


# -- the cache of validated data files (grprof._cache) -----------------------------------------

ZOO = sorted((Path(__file__).parent / "fixtures" / "zoo").glob("*goroutine.debug2.txt"))


def _analyze(cache: str) -> str:
    env = dict(os.environ, GRPROF_CACHE_DIR=cache)
    argv = [sys.executable, "-m", "grprof.cli", "analyze", *map(str, ZOO), "--interval", "30s", "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    report = json.loads(out.stdout)
    report.pop("generated_at", None)
    return json.dumps(report, sort_keys=True)


def test_a_corrupt_or_unwritable_cache_changes_no_result(tmp_path: Path) -> None:
    without = _analyze("")
    warm = tmp_path / "warm"
    assert _analyze(str(warm)) == without  # fills it
    entries = sorted(warm.glob("*.pickle"))
    assert {p.name.split(".", 2)[0] for p in entries} >= {"rules", "detect", "owners"}
    assert _analyze(str(warm)) == without  # reads it
    for p in entries:
        p.write_bytes(b"not a pickle")
    assert _analyze(str(warm)) == without  # corrupt: validated again (and rewritten)
    for p in entries:  # a valid pickle of the wrong type
        p.write_bytes(pickle.dumps(["wrong"]))
    assert _analyze(str(warm)) == without
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert _analyze(str(not_a_dir)) == without  # cannot be created
    assert _analyze(str(not_a_dir / "sub")) == without


def test_the_cache_follows_the_data_file_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.yaml").write_text("one")
    module = tmp_path / "validator.py"  # the package's code: a module of it
    module.write_text("# v1")
    monkeypatch.setattr(_cache, "DATA", data)
    monkeypatch.setattr(_cache, "PACKAGE", tmp_path)
    monkeypatch.setenv("GRPROF_CACHE_DIR", str(tmp_path / "cache"))
    built: list[str] = []

    def build(text: str) -> str:
        built.append(text)
        return text.upper()

    def load() -> str:
        _cache.code_stamp.cache_clear()  # a new process
        return _cache.shipped("x.yaml", str, build)

    assert load() == "ONE" and built == ["one"]
    assert load() == "ONE" and built == ["one"]  # from the cache
    (data / "x.yaml").write_text("two, longer")  # the data file changed: validated again
    assert load() == "TWO, LONGER" and built == ["one", "two, longer"]
    assert len(list((tmp_path / "cache").glob("x.yaml.*.pickle"))) == 1  # the old entry is gone
    module.write_text("# v2, the schema changed")  # so did the code (any module of grprof)
    assert load() == "TWO, LONGER" and len(built) == 3
    assert load() == "TWO, LONGER" and len(built) == 3
    monkeypatch.setenv("GRPROF_CACHE_DIR", "")  # off: validated every time, nothing written
    assert load() == "TWO, LONGER" and len(built) == 4
    assert _cache.cache_dir() is None
    monkeypatch.delenv("GRPROF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "grprof"


def test_analyze_with_a_warm_cache_reads_no_yaml(tmp_path: Path) -> None:
    """The shipped data files come from the cache: no YAML parser, no web or database stack
    (pydantic neither: test_analyze_of_a_file_imports_no_validation_or_http_client)."""
    crash = Path(__file__).parent / "fixtures" / "crash" / "go1.24.11" / "synctest-panic.all.txt"
    code = (
        "import json, sys\nfrom grprof.cli import main\n"
        f"main(['analyze', {str(crash)!r}])\n"
        "heavy = ('yaml', 'jinja2', 'fastapi', 'sqlalchemy', 'aiohttp', 'uvicorn')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)), file=sys.stderr)\n"
    )
    env = dict(os.environ, GRPROF_CACHE_DIR=str(tmp_path))
    argv = [sys.executable, "-c", code]
    for _ in range(2):  # the first run fills the cache
        out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stderr.splitlines()[-1]) == []


# -- runtime classes apart from their schemas (grprof.detect.*_yaml) -------------------------

CRASH = Path(__file__).parent / "fixtures" / "crash" / "go1.24.11" / "synctest-panic.all.txt"
# What `grprof analyze FILE` with a warm cache must not import: validation (pydantic, the
# schemas, YAML), the JSON schema, the HTTP client (a file is no URL), the entry point machinery
# (no grprof.rules plugin is installed in the test environment).
NOT_FOR_A_FILE = (
    "pydantic",
    "pydantic_core",
    "yaml",
    "http.client",
    "urllib.request",
    "importlib.metadata",
    "grprof._yamlvalid",
    "grprof.schema",
    "grprof.detect.detect_yaml",
    "grprof.detect.rules_yaml",
    "grprof.detect.owners_yaml",
    "grprof.detect.sla_yaml",
    "grprof.formats.states_yaml",
    "grprof.detect.source",
)
ZOO_DIR = Path(__file__).parent / "fixtures" / "zoo"


def _modules_after(args: list[str], cache: str) -> set[str]:
    code = (
        "import json, sys\nfrom grprof.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = dict(os.environ, GRPROF_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(out.stderr.splitlines()[-1]))


@pytest.mark.parametrize(
    "dump",
    [CRASH, *(ZOO_DIR / f"1-leak-1.goroutine.{kind}" for kind in ("debug1.txt", "debug0.pb.gz"))],
    ids=["crash-log", "debug1", "debug0"],
)
def test_analyze_of_a_file_imports_no_validation_or_http_client(tmp_path: Path, dump: Path) -> None:
    _modules_after(["analyze", str(dump)], str(tmp_path))  # fills the cache
    loaded = _modules_after(["analyze", str(dump)], str(tmp_path))
    assert "grprof.detect.detector" in loaded and "grprof.detect.rules" in loaded  # it did detect
    if dump is not CRASH:  # the wait states of debug=0 and debug=1 come from the cache too
        assert "grprof.formats.states" in loaded
    assert sorted(m for m in NOT_FOR_A_FILE if m in loaded) == []
    # Without the cache the shipped files are validated: through pydantic, as before.
    assert {"pydantic", "grprof.detect.rules_yaml", "grprof.detect.detect_yaml"} <= _modules_after(
        ["analyze", str(dump)], ""
    )


def test_the_detector_data_is_the_validated_file() -> None:
    """`DetectData` (plain dataclasses, what the cache keeps) holds what the schema validated."""
    from grprof._yamlvalid import parse, validate
    from grprof.detect.detect_yaml import DetectFile
    from grprof.detect.model import DetectData, parse_detect

    text = (_cache.DATA / "detect.yaml").read_text(encoding="utf-8")
    data = parse_detect(text, "detect.yaml")
    assert isinstance(data, DetectData)
    assert dataclasses.asdict(data) == validate(DetectFile, parse(text, "detect.yaml")).model_dump()
    assert pickle.loads(pickle.dumps(data)) == data
    assert "pydantic" not in pickle.dumps(data).decode("latin-1")  # unpickling needs no pydantic


def test_rule_patterns_survive_the_cache_and_compile_on_use() -> None:
    from grprof.detect import rules
    from grprof.detect.rules_yaml import STACK_MATCH

    assert tuple(STACK_MATCH) == rules._LAYERS  # the schema's layers are the runtime's

    names = rules._names(["sync.(*Mutex).Lock", r"main\.worker.*", "net.Dial"])
    back = pickle.loads(pickle.dumps(names))
    assert back._compiled is None  # nothing compiled by unpickling
    assert back("sync.(*Mutex).Lock") and back("main.workerLoop") and back("netXDial")
    assert not back("main.other") and not back("sync.(*Mutex).Unlock")
    assert back._compiled is not None and len(back._compiled) == 2  # the function name is no regex


def test_plugins_are_looked_for_before_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grprof.detect.rules import ENTRY_POINT_GROUP, _may_declare

    assert not _may_declare(ENTRY_POINT_GROUP)  # none installed here
    other = tmp_path / "other_plugin-1.0.dist-info"
    other.mkdir()
    (other / "entry_points.txt").write_text("[console_scripts]\nx = other:main\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not _may_declare(ENTRY_POINT_GROUP)  # another group
    dist = tmp_path / "Team_Rules-1.0.DIST-INFO"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nteam = team_rules:RULES\n")
    assert _may_declare(ENTRY_POINT_GROUP)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    zipped = tmp_path / "plugins.zip"
    zipped.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: importlib.metadata decides
    monkeypatch.syspath_prepend(str(zipped))
    assert _may_declare(ENTRY_POINT_GROUP)
