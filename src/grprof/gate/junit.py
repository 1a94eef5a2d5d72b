"""JUnit XML: one testcase per Go test (leakcheck mode) or per leaking group (service mode),
a `<failure>` with the leaked stacks for each new leak. Valid against the Apache Ant JUnit
schema that Jenkins, GitLab and most CI servers read (tests/fixtures/gate/JUnit.xsd)."""

from __future__ import annotations

import datetime as _dt
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from grprof.gate.model import GateResult, Leak, TestCase

SUITE = "grprof.gate"


def _failure(leaks: Sequence[Leak]) -> tuple[str, str]:
    n = sum(x.count for x in leaks)
    first = leaks[0]
    where = f" at {first.site.function} {first.site.file}:{first.site.line}" if first.site else ""
    message = f"{n} goroutine{'s' if n != 1 else ''} leaked: {first.title}{where}"
    if len(leaks) > 1:
        message += f" (and {len(leaks) - 1} more group{'s' if len(leaks) > 2 else ''})"
    body = "\n\n".join(
        f"[{x.rule_id}] {x.title}\nsignature {x.signature.id}: {x.signature.text}\n{x.stack_text()}"
        for x in leaks
    )
    return message, body


def render(result: GateResult, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.UTC)
    cases: list[tuple[TestCase, list[Leak]]] = []
    if result.mode == "leakcheck":
        for t in sorted(result.tests, key=lambda t: t.name):
            cases.append((t, [x for x in result.new if x.test == t.name]))
        known = {t.name for t in result.tests}
        for x in result.new:
            if x.test not in known:
                cases.append((TestCase(name=x.test or "TestMain", outcome="fail"), [x]))
                known.add(x.test or "TestMain")
    else:
        for x in result.leaks:
            name = x.site.function if x.site else x.signature.text
            cases.append((TestCase(name=f"{name} [{x.signature.id}]"), [] if x.accepted else [x]))
        if not cases:
            cases.append((TestCase(name="no leak"), []))
    failures = sum(1 for t, ls in cases if ls or t.failed_otherwise)
    suites = ET.Element("testsuites")
    package = result.tests[0].package if result.tests and result.tests[0].package else SUITE
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "package": package,
            "id": "0",
            "name": SUITE + (" (leakcheck)" if result.mode == "leakcheck" else " (service)"),
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": socket.gethostname() or "localhost",
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(sum(1 for t, _ in cases if t.outcome == "skip")),
            "time": f"{sum(t.seconds for t, _ in cases):.3f}",
        },
    )
    props = ET.SubElement(suite, "properties")
    for i, src in enumerate(result.inputs):
        ET.SubElement(props, "property", {"name": f"input.{i}", "value": src})
    if result.baseline:
        ET.SubElement(props, "property", {"name": "baseline", "value": result.baseline})
    for t, leaks in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            {"name": t.name, "classname": t.package or SUITE, "time": f"{t.seconds:.3f}"},
        )
        if leaks:
            message, body = _failure(leaks)
            f = ET.SubElement(case, "failure", {"message": message, "type": "goroutine leak"})
            f.text = body
        elif t.failed_otherwise:
            f = ET.SubElement(
                case, "failure", {"message": "go test failed it (not a leak)", "type": "go test"}
            )
            f.text = t.output
        elif t.outcome == "skip":
            ET.SubElement(case, "skipped")
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(
        f"accepted by the baseline: {x.signature.id} {x.signature.text}" for x in result.leaks if x.accepted
    )
    ET.SubElement(suite, "system-err").text = "\n".join(result.notes)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
