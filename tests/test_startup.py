"""Start-up (issue 9): a command imports what it needs and no more (benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grprof import cli

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
