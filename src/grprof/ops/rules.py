"""`grprof rules`: write Prometheus alerting and recording rules for grprof's metrics
(docs/alerts.md), from data/alerts.yaml with the user's thresholds."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from grprof.ops.alerts import RulesError, apply_overrides, load_spec, read_overrides, render

DEFAULT_UI_URL = "http://127.0.0.1:8080"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "rules",
        help="write Prometheus alerting and recording rules for grprof's metrics",
        description="Write a Prometheus rule file (alerts: confirmed leak, persistent suspect, "
        "growth, blocked goroutines, target down, scrape lag; recording rules they use) for the "
        "metrics `grprof serve` exposes. Load it with rule_files: in prometheus.yml.",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here (atomically) instead of standard output"
    )
    p.add_argument(
        "--ui-url",
        default=DEFAULT_UI_URL,
        metavar="URL",
        help=f"grprof's base URL as alert receivers reach it, for runbook_url (default {DEFAULT_UI_URL})",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a threshold, e.g. growth_per_minute=5 (repeatable; `--list` shows them)",
    )
    p.add_argument(
        "--overrides",
        metavar="FILE",
        help="YAML: thresholds, per-alert for/severity/enabled, extra labels (docs/alerts.md)",
    )
    p.add_argument(
        "--for",
        dest="for_",
        metavar="DURATION",
        help="replace every alert's `for:` (e.g. 5s for a demo or a test; Prometheus syntax)",
    )
    p.add_argument(
        "--match",
        metavar="MATCHERS",
        help="label matchers added to every grprof series the rules read, e.g. 'team=\"payments\"': "
        "one rule file per group of targets with its own thresholds",
    )
    p.add_argument(
        "--group", metavar="NAME", help="rule group name prefix (default grprof); distinct per rule file"
    )
    p.add_argument("--list", action="store_true", help="list the thresholds and alerts, then exit")
    return p


def _sets(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise RulesError(f"--set {item!r}: want NAME=VALUE, e.g. growth_per_minute=5")
        out[name.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    spec = load_spec()
    if args.overrides:
        spec = apply_overrides(spec, read_overrides(args.overrides), source=args.overrides)
    if args.set:
        spec = apply_overrides(spec, {"thresholds": _sets(args.set)}, source="--set")
    if args.match is not None:
        spec = apply_overrides(spec, {"match": args.match}, source="--match")
    if args.group is not None:
        spec = apply_overrides(spec, {"group": args.group}, source="--group")
    if args.list:
        for name, t in spec.thresholds.items():
            print(f"{name} = {t.value}    {' '.join(t.help.split())}")
        for a in spec.alerts:
            state = "" if a.enabled else "  (disabled)"
            print(f"alert {a.alert}: for {a.for_}, severity {a.severity}{state}")
        return 0
    text = render(spec, ui_url=args.ui_url, for_=args.for_)
    if not args.output:
        sys.stdout.write(text)
        return 0
    _write_atomically(args.output, text)
    return 0


def _write_atomically(path: str, text: str) -> None:
    """Prometheus may reload the file at any moment: never let it see half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".grprof-rules-", dir=directory)
    except OSError as e:
        raise RulesError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise RulesError(f"{path}: cannot write: {e.strerror or e}") from None
