#!/usr/bin/env bash
# The steps of docs/ci.md (GitHub Actions and GitLab CI), run locally on
# tests/goapps/gatesuite, a parallel Go suite using go/leakcheck where TestLeaky leaks:
#   1. go test with GRPROF_LEAKCHECK_DIR set (leakcheck writes the leaks' profiles there)
#   2. grprof gate on the directory: JUnit XML and SARIF written; exit 1 (a new leak)
#   3. grprof gate --update-baseline, then the gate again: exit 0 (the leak is accepted)
# Environment: GRPROF (the command; default `grprof`), CI_LOCAL_OUT (output directory;
# default a temporary one). Prints "ci_local: OK" when every step did what it should.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GRPROF=${GRPROF:-grprof}
OUT=${CI_LOCAL_OUT:-$(mktemp -d)}
fail() { echo "ci_local: FAIL: $*"; exit 1; }

# 1. go test with leakcheck (the CI job's "go test" step)
rm -rf "$OUT/leakcheck" && mkdir -p "$OUT/leakcheck"
(cd "$ROOT/tests/goapps/gatesuite" &&
	GRPROF_LEAKCHECK_DIR="$OUT/leakcheck" GOTOOLCHAIN=local go test -count=1 -json ./... >"$OUT/go-test.json")
echo "ci_local: go test exit $? (leakcheck fails the leaky test; the gate decides)"
ls "$OUT/leakcheck"

# 2. the gate (the CI job's "grprof gate" step)
cd "$ROOT" || exit 1
rm -f "$OUT/baseline.json"
# shellcheck disable=SC2086  # GRPROF may be a command with arguments
$GRPROF gate "$OUT/leakcheck" --go-test-json "$OUT/go-test.json" --baseline "$OUT/baseline.json" \
	--junit "$OUT/junit.xml" --sarif "$OUT/grprof.sarif" --source-root "$ROOT"
rc=$?
[ "$rc" -eq 1 ] || fail "gate exit $rc, want 1 (TestLeaky leaks)"
[ -s "$OUT/junit.xml" ] && [ -s "$OUT/grprof.sarif" ] || fail "reports not written"
grep -q 'testcase name="TestLeaky"' "$OUT/junit.xml" || fail "no TestLeaky testcase in junit.xml"

# 3. accept the current leaks, then the gate passes
# shellcheck disable=SC2086
$GRPROF gate "$OUT/leakcheck" --baseline "$OUT/baseline.json" --update-baseline || fail "update-baseline"
# shellcheck disable=SC2086
$GRPROF gate "$OUT/leakcheck" --go-test-json "$OUT/go-test.json" --baseline "$OUT/baseline.json" \
	--junit "$OUT/junit.xml" --sarif "$OUT/grprof.sarif" --source-root "$ROOT"
rc=$?
[ "$rc" -eq 0 ] || fail "gate with the baseline: exit $rc, want 0"
echo "ci_local: OK ($OUT)"
