"""What `grprof gate` judged: leaked goroutine groups, each with its signature and its test."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from grprof import schema
from grprof.gate.signature import Signature
from grprof.model import Frame

Mode = Literal["leakcheck", "service"]
# A t.Error/t.Fatal line in `go test -v` output: four spaces, file:line, a colon.
_MESSAGE = re.compile(r"^ {4}([\w.-]+\.go):\d+: ")


@dataclass(frozen=True, slots=True)
class Leak:
    """One group of leaked goroutines (per test in leakcheck mode)."""

    signature: Signature
    count: int
    state: str
    frames: tuple[Frame, ...]
    site: Frame | None
    """Where to point: the first frame in the user's code (not the runtime, the standard
    library or a dependency), else grprof's site (`grprof.model.site_of`)."""
    category: str
    rule: str | None
    """The grprof root-cause rule that matched (data/rules.yaml), None when none did."""
    title: str
    fix: str = ""
    test: str | None = None
    """The Go test that leaked it (its `test` pprof label), leakcheck mode."""
    source: str = ""
    """The profile (file or URL) it was read from."""
    proven: bool = False
    """A goroutineleak profile lists it: the runtime proved it leaked."""
    verdict: str = "leak"
    confidence: float = 1.0
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    accepted: bool = False
    """Its signature is in the baseline: reported, but does not fail the gate."""

    @property
    def rule_id(self) -> str:
        """The SARIF ruleId: grprof's rule id, else `category/<category>`."""
        return self.rule or f"category/{self.category}"

    def stack_text(self) -> str:
        lines = [f"goroutine [{self.state}] x{self.count}" + (f" (test {self.test})" if self.test else "")]
        for f in self.frames:
            lines.append(f"{f.function}(...)")
            lines.append(f"\t{f.file}:{f.line}")
        return "\n".join(lines)

    def to_json(self) -> schema.GateLeak:
        return {
            "signature": self.signature.id,
            "signature_text": self.signature.text,
            "test": self.test,
            "count": self.count,
            "state": self.state,
            "category": self.category,
            "rule": self.rule,
            "rule_id": self.rule_id,
            "title": self.title,
            "fix": self.fix,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 3),
            "proven": self.proven,
            "accepted": self.accepted,
            "site": schema.frame_or_none(self.site),
            "source": self.source,
            "labels": self.labels,
            "frames": [schema.frame(f) for f in self.frames],
        }


@dataclass(slots=True)
class TestCase:
    """A Go test, from the leakcheck directory (a test with a leak) or `go test -json`."""

    name: str
    package: str = ""
    seconds: float = 0.0
    outcome: str = "pass"
    """`go test -json`'s verdict: pass, fail or skip (pass when only the directory names it)."""
    output: str = ""
    whole: bool = False
    """A whole package `go test` failed with no failed test (build failure, panic, TestMain)."""

    @property
    def failed_otherwise(self) -> bool:
        """`go test` failed it for something other than a leakcheck report (a `file.go:N:`
        message from a file other than leakcheck.go): the gate fails on it too."""
        if self.whole:
            return True
        return self.outcome == "fail" and any(
            (m := _MESSAGE.match(line)) is not None and m.group(1) != "leakcheck.go"
            for line in self.output.splitlines()
        )


@dataclass(slots=True)
class GateResult:
    mode: Mode
    inputs: Sequence[str]
    leaks: list[Leak]
    tests: list[TestCase] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    """Ignore rule id -> goroutines it silenced."""
    baseline: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def new(self) -> list[Leak]:
        return [x for x in self.leaks if not x.accepted]

    @property
    def failed_tests(self) -> list[TestCase]:
        """Tests `go test` failed for something other than a leak (`--go-test-json`)."""
        return [t for t in self.tests if t.failed_otherwise]

    @property
    def passed(self) -> bool:
        return not self.new and not self.failed_tests
