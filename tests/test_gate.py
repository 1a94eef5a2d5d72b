"""`grprof gate` (src/grprof/gate, docs/ci.md), with real Go.

- leakcheck mode: `go test` on tests/goapps/gatesuite (a parallel suite using go/leakcheck,
  one leaky test) with GRPROF_LEAKCHECK_DIR set, then `grprof gate DIR`: it fails
  blaming TestLeaky only; its JUnit XML is valid against the Apache Ant JUnit schema and its
  SARIF against the OASIS SARIF 2.1.0 schema (both vendored in tests/fixtures/gate/, sources
  in its README.md); `--update-baseline` then the gate passes; a second leak (TestSecondLeak,
  GATESUITE_SECOND_LEAK=1) fails on the new signature only.
- service mode: examples/leaky (leaking) and tests/goapps/healthy, a debug=0 profile before
  and after a few seconds of load: leaky fails, healthy passes; `--url` polls leaky.

The tests run the real entry point (`python -m grprof.cli gate`, what `grprof gate` runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gobuild
import jsonschema
import pytest
import xmlschema
from gobuild import fetch, run_goapp

import grprof
from grprof.frames import Frame
from grprof.gate.signature import normal_state, signature

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "goapps" / "gatesuite"
SUITE_FILE = "tests/goapps/gatesuite/gatesuite_test.go"
FIXTURES = ROOT / "tests" / "fixtures" / "gate"
LEAK_LINE = 21  # `out <- 42` in fetchResult

pytestmark = [pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")]


def gate(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grprof.cli", "gate", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )


def go_test(
    leakdir: Path, *, second_leak: bool, go: str = "go"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`go test -json` on the gate suite with GRPROF_LEAKCHECK_DIR=leakdir; the -json file."""
    env = gobuild._go_env({"GRPROF_LEAKCHECK_DIR": str(leakdir)})
    env["GATESUITE_SECOND_LEAK"] = "1" if second_leak else "0"
    leakdir.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        [go, "test", "-count=1", "-json", "."],
        cwd=SUITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = leakdir.parent / (leakdir.name + ".go-test.json")
    out.write_text(p.stdout)
    return p, out


@pytest.fixture(scope="module")
def run1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("gate1") / "leaks"
    p, js = go_test(d, second_leak=False)
    assert p.returncode != 0, "want TestLeaky to fail the go test run\n" + p.stdout + p.stderr
    return d, js


@pytest.fixture(scope="module")
def run2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("gate2") / "leaks"
    p, js = go_test(d, second_leak=True)
    assert p.returncode != 0
    return d, js


def junit_valid(path: Path) -> Any:
    schema = xmlschema.XMLSchema(str(FIXTURES / "JUnit.xsd"))
    schema.validate(str(path))  # raises with the reason when invalid
    return schema.to_dict(str(path))


def sarif_valid(path: Path) -> dict[str, Any]:
    schema = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text())
    doc: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft4Validator)
    return doc


def cases_of(doc: Any) -> dict[str, Any]:
    suite = doc["testsuite"][0]
    return {c["@name"]: c for c in suite.get("testcase", [])}


# ---------------------------------------------------------------------------- signatures


def test_signature_ignores_lines_paths_ids_and_closure_numbers() -> None:
    a = [
        Frame("runtime.gopark", "/usr/local/go/src/runtime/proc.go", 435),
        Frame("runtime.chansend1", "/usr/local/go/src/runtime/chan.go", 161),
        Frame("example.com/svc.handler.func1", "/home/a/svc/h.go", 28),
        Frame("example.com/svc.serve.gowrap2", "/home/a/svc/s.go", 90),
    ]
    b = [  # another machine, another Go version (no runtime frames at the top: debug=1), code moved
        Frame("example.com/svc.handler.func3", "/builds/x/svc/h.go", 41),
        Frame("example.com/svc.serve.gowrap1", "/builds/x/svc/s.go", 97),
    ]
    sa, sb = signature(a, "chan send"), signature(b, "chan send (nil chan)")
    assert sa == sb
    assert sa.text == "chan send | example.com/svc.handler.func <- example.com/svc.serve.gowrap"
    assert len(sa.id) == 16
    assert signature(b, "chan receive") != sa  # the state is part of it
    assert signature([*b[:1], Frame("example.com/svc.other", "h.go", 1)], "chan send") != sa
    assert normal_state("Select (no cases)") == "select"


# ---------------------------------------------------------------------------- leakcheck mode


@pytest.mark.slow
def test_leakcheck_dir_fails_blaming_the_leaky_test(run1: tuple[Path, Path], tmp_path: Path) -> None:
    leakdir, gojson = run1
    assert sorted(p.name for p in leakdir.iterdir())[:3] == [
        "TestLeaky.goroutine.debug1.txt",
        "TestLeaky.goroutine.debug2.txt",
        "TestLeaky.goroutine.pb.gz",
    ]
    junit, sarif = tmp_path / "junit.xml", tmp_path / "gate.sarif"
    p = gate(leakdir, "--go-test-json", gojson, "--baseline", tmp_path / "none.json",
             "--junit", junit, "--sarif", sarif, "--source-root", ROOT, "--json")  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr == ""
    doc = json.loads(p.stdout)
    assert doc["schema"] == "grprof.gate/v1" and doc["passed"] is False and doc["new"] == 1
    (leak,) = doc["leaks"]
    assert leak["test"] == "TestLeaky"
    assert leak["signature_text"] == "chan send | grproftest/gatesuite.fetchResult"
    assert leak["category"] == "channel" and leak["rule"] == "chan-send-no-receiver"
    assert leak["site"]["function"] == "grproftest/gatesuite.fetchResult"
    assert leak["site"]["line"] == LEAK_LINE
    # The parallel tests' helpers (running while TestLeaky was checked) are never blamed.
    assert "helper" not in p.stdout
    tests = {t["name"]: t for t in doc["tests"]}
    assert {"TestLeaky", "TestSecondLeak", "TestFast", "TestSlow"} <= tests.keys()
    assert [n for n, t in tests.items() if t["leaked"]] == ["TestLeaky"]

    # JUnit: valid, one testcase per Go test, the failure on TestLeaky with the stack.
    cases = cases_of(junit_valid(junit))
    assert {"TestLeaky", "TestSecondLeak", "TestFast", "TestSlow"} <= cases.keys()
    failed = {n for n, c in cases.items() if "failure" in c}
    assert failed == {"TestLeaky"}
    failure = cases["TestLeaky"]["failure"]
    assert "grproftest/gatesuite.fetchResult" in failure["$"]
    assert f"gatesuite_test.go:{LEAK_LINE}" in failure["$"]
    assert "1 goroutine leaked" in failure["@message"]

    # SARIF: valid, one result at the user's line (not runtime.chansend), relative to the root.
    s = sarif_valid(sarif)
    (run,) = s["runs"]
    (res,) = run["results"]
    assert res["ruleId"] == "chan-send-no-receiver"
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": SUITE_FILE, "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == LEAK_LINE
    assert res["baselineState"] == "new" and res["level"] == "error"
    assert res["properties"]["test"] == "TestLeaky"
    assert res["partialFingerprints"]["grprofSignature/v1"] == leak["signature"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == ROOT.as_uri() + "/"


@pytest.mark.slow
def test_signature_is_the_same_in_every_profile_format(run1: tuple[Path, Path]) -> None:
    leakdir, _ = run1
    sigs = set()
    for name in (
        "TestLeaky.goroutine.pb.gz",
        "TestLeaky.goroutine.debug1.txt",
        "TestLeaky.goroutine.debug2.txt",
    ):
        snap = grprof.load(str(leakdir / name))
        sigs |= {signature(g.frames, g.state) for g in snap.groups() if "fetchResult" in str(g.frames)}
    assert len(sigs) == 1, sigs


@pytest.mark.slow
def test_baseline_then_a_second_leak_fails_on_the_new_signature_only(
    run1: tuple[Path, Path], run2: tuple[Path, Path], tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    p = gate(run1[0], "--baseline", baseline, "--update-baseline")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(baseline.read_text())
    assert doc["schema"] == "grprof.gate-baseline/v1"
    assert [e["signature"] for e in doc["signatures"]] == ["chan send | grproftest/gatesuite.fetchResult"]
    assert doc["signatures"][0]["tests"] == ["TestLeaky"]

    # The same run again: accepted.
    p = gate(
        run1[0], "--baseline", baseline, "--junit", tmp_path / "j1.xml", "--sarif", tmp_path / "s1.sarif"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("PASS: no new leak (1 accepted by the baseline)")
    assert not any("failure" in c for c in cases_of(junit_valid(tmp_path / "j1.xml")).values())
    (res,) = sarif_valid(tmp_path / "s1.sarif")["runs"][0]["results"]
    assert res["baselineState"] == "unchanged" and res["level"] == "note"

    # Another run with a second leak: fails on the new signature only.
    junit, sarif = tmp_path / "j2.xml", tmp_path / "s2.sarif"
    p = gate(
        run2[0],
        "--baseline",
        baseline,
        "--go-test-json",
        run2[1],
        "--junit",
        junit,
        "--sarif",
        sarif,
        "--json",
    )
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    new = [x for x in doc["leaks"] if not x["accepted"]]
    assert [(x["test"], x["site"]["function"]) for x in new] == [
        ("TestSecondLeak", "grproftest/gatesuite.watchUpdates")
    ]
    assert ".func" in new[0]["signature_text"] and ".func1" not in new[0]["signature_text"]
    assert [x["test"] for x in doc["leaks"] if x["accepted"]] == ["TestLeaky"]
    cases = cases_of(junit_valid(junit))
    assert {n for n, c in cases.items() if "failure" in c} == {"TestSecondLeak"}
    results = sarif_valid(sarif)["runs"][0]["results"]
    assert sorted(r["baselineState"] for r in results) == ["new", "unchanged"]


@pytest.mark.slow
def test_a_baseline_holds_across_go_versions(run1: tuple[Path, Path], tmp_path: Path) -> None:
    """A baseline written from a Go 1.26 run accepts the same leak from a Go 1.22 run (another
    runtime, other line numbers in the standard library, another build directory)."""
    try:
        tool = subprocess.run(
            [str(ROOT / "scripts" / "go-toolchain.sh"), "1.22.12"],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"Go 1.22.12 toolchain unavailable: {e}")
    go122 = tool.stdout.strip().splitlines()[-1]
    baseline = tmp_path / "baseline.json"
    p = gate(run1[0], "--baseline", baseline, "--update-baseline")
    assert p.returncode == 0, p.stdout + p.stderr
    leaks = tmp_path / "go122" / "leaks"
    p, js = go_test(leaks, second_leak=False, go=go122)
    assert p.returncode != 0, "want TestLeaky to fail under Go 1.22 too\n" + p.stdout + p.stderr
    p = gate(leaks, "--baseline", baseline, "--go-test-json", js, "--json")
    why = f"{p.stdout}{p.stderr}\nbaseline: {baseline.read_text()}"
    doc = json.loads(p.stdout)
    assert (p.returncode, doc["passed"], doc["new"]) == (0, True, 0), why
    p = gate(leaks, "--baseline", tmp_path / "none.json")
    assert p.returncode == 1, p.stdout + p.stderr  # without the baseline, the leak is seen


def test_ignore_rules_from_a_rules_file(run1: tuple[Path, Path], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nignore:\n  - id: known-fetch\n    top_function: grproftest/gatesuite.fetchResult\n"
        "    reason: a known leak, fixed upstream\n"
    )
    p = gate(run1[0], "--baseline", tmp_path / "none.json", "--rules", rules)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "known-fetch (1)" in p.stdout


# ---------------------------------------------------------------------------- bad input


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        [tmp_path / "absent"],
        [],
        [tmp_path, "--before", tmp_path / "x"],
        [tmp_path, "--baseline", tmp_path / "bad.json"],
        ["--before", tmp_path / "bad.json", "--after", tmp_path / "bad.json"],
        [tmp_path, "--fail-on", "never"],
    ]
    (tmp_path / "bad.json").write_text("{not json")
    for args in cases:
        p = gate(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("grprof: ") and p.stderr.count("\n") == 1, (args, p.stderr)
        assert "Traceback" not in p.stderr


def test_empty_leakcheck_dir_passes(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    p = gate(tmp_path, "--baseline", tmp_path / "none.json", "--junit", junit)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("PASS")
    junit_valid(junit)


# ---------------------------------------------------------------------------- service mode

LOAD_SECONDS = 6.0


def _before_after(tmp_path: Path, app: str, *args: str) -> tuple[Path, Path]:
    before, after = tmp_path / "before.pb.gz", tmp_path / "after.pb.gz"
    with run_goapp(app, "-addr", "127.0.0.1:0", *args) as (_, base):
        before.write_bytes(fetch(base, "/debug/pprof/goroutine?debug=0"))
        time.sleep(LOAD_SECONDS)
        after.write_bytes(fetch(base, "/debug/pprof/goroutine?debug=0"))
    return before, after


@pytest.mark.slow
def test_service_before_after_leaky_fails(tmp_path: Path) -> None:
    before, after = _before_after(tmp_path, "../../examples/leaky", "-rate", "10")
    junit, sarif = tmp_path / "j.xml", tmp_path / "s.sarif"
    p = gate("--before", before, "--after", after, "--baseline", tmp_path / "b.json",
             "--junit", junit, "--sarif", sarif, "--source-root", ROOT, "--json")  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["mode"] == "service"
    (leak,) = [x for x in doc["leaks"] if "leakyHandler" in x["signature_text"]]
    assert leak["state"] == "chan send" and leak["category"] == "channel"
    assert leak["site"]["file"].endswith("examples/leaky/main.go")
    junit_valid(junit)
    (res,) = [
        r for r in sarif_valid(sarif)["runs"][0]["results"] if "leakyHandler" in r["properties"]["signature"]
    ]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "examples/leaky/main.go"

    # Accepted, the same pair passes.
    assert gate("--before", before, "--after", after, "--baseline", tmp_path / "b.json",
                "--update-baseline").returncode == 0  # fmt: skip
    p = gate("--before", before, "--after", after, "--baseline", tmp_path / "b.json")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.slow
def test_service_before_after_healthy_passes(tmp_path: Path) -> None:
    before, after = _before_after(tmp_path, "healthy")
    junit = tmp_path / "j.xml"
    p = gate("--before", before, "--after", after, "--baseline", tmp_path / "none.json", "--junit", junit)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("PASS: no new leak")
    junit_valid(junit)


@pytest.mark.slow
def test_service_url_polled_leaky_fails(tmp_path: Path) -> None:
    with run_goapp("../../examples/leaky", "-addr", "127.0.0.1:0", "-rate", "10") as (_, base):
        p = gate("--url", base.split("://", 1)[1], "--duration", "4s", "--snapshots", "3",
                 "--baseline", tmp_path / "none.json")  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    assert "main.leakyHandler" in p.stdout


@pytest.mark.slow
def test_ci_local_script(tmp_path: Path) -> None:
    """tests/ci_local.sh: the docs/ci.md steps, run locally."""
    env = {**os.environ, "CI_LOCAL_OUT": str(tmp_path), "GRPROF": f"{sys.executable} -m grprof.cli"}
    p = subprocess.run(["bash", str(ROOT / "tests" / "ci_local.sh")], env=env, capture_output=True, text=True,
                       timeout=600, check=False)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ci_local: OK" in p.stdout
    junit_valid(tmp_path / "junit.xml")
    sarif_valid(tmp_path / "grprof.sarif")


def test_go_test_json_failure_that_is_not_a_leak_fails_the_gate(tmp_path: Path) -> None:
    """A test `go test` failed for another reason (a t.Error outside leakcheck) is a JUnit
    failure and fails the gate; a test failed by leakcheck alone is the gate's to judge."""
    events = [
        {"Action": "run", "Package": "example.com/p", "Test": "TestBroken"},
        {
            "Action": "output",
            "Package": "example.com/p",
            "Test": "TestBroken",
            "Output": "=== RUN   TestBroken\n",
        },
        {
            "Action": "output",
            "Package": "example.com/p",
            "Test": "TestBroken",
            "Output": "    p_test.go:12: want 3, got 4\n",
        },
        {"Action": "fail", "Package": "example.com/p", "Test": "TestBroken", "Elapsed": 0.01},
        {
            "Action": "output",
            "Package": "example.com/p",
            "Test": "TestLeaks",
            "Output": "    leakcheck.go:145: leakcheck: TestLeaks leaked 1 goroutine\n",
        },
        {"Action": "fail", "Package": "example.com/p", "Test": "TestLeaks", "Elapsed": 2.0},
        {"Action": "pass", "Package": "example.com/p", "Test": "TestOK", "Elapsed": 0.0},
        {"Action": "skip", "Package": "example.com/p", "Test": "TestSkipped", "Elapsed": 0.0},
        {"Action": "fail", "Package": "example.com/p", "Elapsed": 2.1},  # explained by its tests
        {"Action": "output", "Package": "example.com/q", "Output": "panic: boom\n"},
        {"Action": "fail", "Package": "example.com/q", "Elapsed": 0.1},  # no test: a panic
        {"Action": "output", "Package": "example.com/r", "Output": "leakcheck: after all tests (TestMain)\n"},
        {"Action": "fail", "Package": "example.com/r", "Elapsed": 0.1},  # VerifyTestMain: the gate's
    ]
    js = tmp_path / "go-test.json"
    js.write_text("# build output\n" + "".join(json.dumps(e) + "\n" for e in events))
    leaks = tmp_path / "leaks"
    leaks.mkdir()
    junit = tmp_path / "j.xml"
    p = gate(leaks, "--go-test-json", js, "--baseline", tmp_path / "none.json", "--junit", junit)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("FAIL: go test failed TestBroken, example.com/q (package) (not a leak)")
    cases = cases_of(junit_valid(junit))
    assert cases.keys() == {"TestBroken", "TestLeaks", "TestOK", "TestSkipped", "example.com/q (package)"}
    assert "panic: boom" in cases["example.com/q (package)"]["failure"]["$"]
    assert cases["TestBroken"]["failure"]["@type"] == "go test"
    assert "want 3, got 4" in cases["TestBroken"]["failure"]["$"]
    assert "failure" not in cases["TestLeaks"] and "failure" not in cases["TestOK"]
    assert "skipped" in cases["TestSkipped"]
    p = gate(leaks, "--go-test-json", tmp_path / "j.xml", "--baseline", tmp_path / "none.json")
    assert p.returncode == 2 and "not `go test -json` output" in p.stderr


@pytest.mark.slow
def test_verify_test_main_profiles(tmp_path: Path) -> None:
    """VerifyTestMain writes `TestMain.*`: every goroutine left is a leak, blamed on its test
    label, else on TestMain; the goroutine writing the profile is not one."""
    leakdir = tmp_path / "leaks"
    p = subprocess.run(
        ["go", "test", "-count=1", "./leakcheck/testdata/verifymain"],
        cwd=ROOT / "go",
        env=gobuild._go_env({"GRPROF_LEAKCHECK_DIR": str(leakdir)}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert p.returncode != 0 and (leakdir / "TestMain.goroutine.pb.gz").is_file(), p.stdout + p.stderr
    p = gate(leakdir, "--baseline", tmp_path / "none.json", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    (leak,) = json.loads(p.stdout)["leaks"]
    assert leak["test"] == "TestMain"
    assert leak["site"]["function"].endswith("verifymain.parkedNoCheck")
