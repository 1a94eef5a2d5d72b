"""`grprof gate`: judge a `go test` run (go/leakcheck's profile directory) or a running
service (snapshots around a load run) against a baseline of accepted leak signatures, and
report as text, JSON, JUnit XML and SARIF 2.1.0 (docs/ci.md).

`add_parser(subparsers)` and `run(args)` are in `grprof.gate.cli`."""

from __future__ import annotations

from grprof.gate.model import GateResult, Leak
from grprof.gate.signature import Signature, signature

__all__ = ["GateResult", "Leak", "Signature", "signature"]
