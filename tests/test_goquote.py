"""Go string quoting and label sets, checked against what real Go prints.

The slow tests build a small Go program that quotes a few hundred awkward strings with
`strconv.Quote` (what debug=1 `# labels:` lines use) and prints its own traceback header
with those strings as pprof labels under GODEBUG=tracebacklabels=1: Go 1.26 prints them
inside the brackets (` labels:{"k": "v"}`), Go 1.27 after them (`{k: v, "q k": "v"}`).
The recorded states fixtures give the same three forms from a real service.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grprof.formats.goquote import LabelSyntaxError, parse_labels, unquote

ROOT = Path(__file__).resolve().parent.parent
STATES = ROOT / "tests" / "fixtures" / "states"

# -- unquote ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('""', ""),
        ('"plain"', "plain"),
        (r'"\a\b\f\n\r\t\v\\\""', '\a\b\f\n\r\t\v\\"'),
        (r'"\x41\x7f"', "A\x7f"),
        (r'"\xc3\xbc"', "ü"),  # two \x bytes make one UTF-8 character
        (r'"\xff"', "\ufffd"),  # an invalid byte stays visible as U+FFFD
        (r'"a\xe2\x82"', "a\ufffd"),
        (r'"\u00fc\U0001f600"', "ü😀"),
        (r'"\101\303\274"', "Aü"),  # octal bytes
        ('"ü 😀"', "ü 😀"),  # %q keeps printable non-ASCII as is
        (r'"a]: b, }{"', "a]: b, }{"),
    ],
)
def test_unquote(literal: str, value: str) -> None:
    assert unquote(literal) == value


@pytest.mark.parametrize(
    "literal",
    [
        "",
        '"',
        "plain",
        '"open',
        '"a"b"',  # unescaped quote inside
        '"a\nb"',  # raw newline
        r'"\"',  # the closing quote is escaped
        r'"abc\"',
        r'"\q"',  # unknown escape
        r'"\x4"',  # short hex
        r'"\xZZ"',
        r'"\u12"',
        r'"\400"',  # octal > 255
        r'"\12"',  # octal needs three digits
        r'"\ud800"',  # surrogate half
        r'"\U00110000"',  # past U+10FFFF
    ],
)
def test_unquote_rejects(literal: str) -> None:
    with pytest.raises(ValueError):
        unquote(literal)


@given(st.text())
def test_unquote_only_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        unquote(text)


# -- parse_labels -------------------------------------------------------------------------

CASES = [
    # debug=1: fmt %q pairs, no space after the colon
    ('{"span_id":"abc123", "weird key":"v\\"q\\n\\xff"}', {"span_id": "abc123", "weird key": 'v"q\n\ufffd'}),
    # Go 1.26 traceback, inside the brackets
    ('{"k": "v", "tricky": "a]: b"}', {"k": "v", "tricky": "a]: b"}),
    # Go 1.27 traceback: bare when [A-Za-z0-9._/]*, else quoted; the empty value is bare
    (
        '{empty: , msg: "say \\"hi\\"", plain.key/x: bare_value, "span id": "s-0"}',
        {"empty": "", "msg": 'say "hi"', "plain.key/x": "bare_value", "span id": "s-0"},
    ),
    ("{: v}", {"": "v"}),
    ("{}", {}),
    ('{"a}b": "c,d", "e": "}"}', {"a}b": "c,d", "e": "}"}),
]


@pytest.mark.parametrize(("text", "labels"), CASES)
def test_parse_labels_forms(text: str, labels: dict[str, str]) -> None:
    prefix, suffix = "goroutine 7 [chan receive] ", ":"
    got, end = parse_labels(prefix + text + suffix, len(prefix))
    assert got == labels
    assert end == len(prefix) + len(text)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("x", 0),  # not a "{"
        ("{k v}", 2),  # no colon
        ("{k: v", 5),  # no closing brace
        ('{k: "v}', 4),  # unterminated quote
        ('{"k": "\\q"}', 6),  # bad escape
        ("{k: v x: y}", 6),  # no comma
    ],
)
def test_parse_labels_errors(text: str, where: int) -> None:
    with pytest.raises(LabelSyntaxError) as e:
        parse_labels(text, 0)
    assert e.value.pos == where
    assert isinstance(e.value, ValueError)


@given(st.text(alphabet='{}":, \\kvxu0a\t\n"', max_size=40))
def test_parse_labels_only_raises_label_syntax_error(text: str) -> None:
    try:
        _, end = parse_labels("{" + text, 0)
    except LabelSyntaxError as e:
        assert 0 <= e.pos <= len(text) + 1
    else:
        assert 0 < end <= len(text) + 1


@given(st.binary(max_size=60))
def test_parse_labels_on_raw_bytes(raw: bytes) -> None:
    """Callers decode with surrogateescape; what comes back has no surrogates left."""
    text = "{" + raw.decode("utf-8", "surrogateescape")
    try:
        labels, _ = parse_labels(text, 0)
    except LabelSyntaxError as e:
        assert 0 <= e.pos <= len(text)
    else:
        "".join(k + v for k, v in labels.items()).encode("utf-8")


# -- the recorded fixtures ------------------------------------------------------------------


def _fixture_dirs() -> list[Path]:
    return sorted(p for p in STATES.glob("go1.*") if (p / "truth.json").is_file())


def _header_label_cases() -> list[Any]:
    cases = []
    for d in _fixture_dirs():
        truth = json.loads((d / "truth.json").read_text())
        if truth["header_labels"]:
            cases.append(pytest.param(d, id=d.name))
    return cases


def test_fixtures_with_header_labels_exist() -> None:
    names = {p.name for p in _fixture_dirs()}
    assert any(n.endswith("-tracebacklabels") for n in names), names
    assert any(n.endswith("-gomod1.27") for n in names), names


@pytest.mark.parametrize("fixture", _header_label_cases())
def test_traceback_header_labels_match_truth(fixture: Path) -> None:
    truth = json.loads((fixture / "truth.json").read_text())
    want = {g["id"]: g["labels"] for g in truth["goroutines"]}
    text = (fixture / "goroutine.debug2.txt").read_text()
    seen = 0
    for m in re.finditer(r"^goroutine (\d+) [^\n]*$", text, re.M):
        header, gid = m.group(), int(m.group(1))
        start = _label_start(header)
        if start is None:
            assert not want.get(gid), header
            continue
        labels, end = parse_labels(header, start)
        assert header[end:] in ("]:", ":"), header
        if gid in want:
            assert labels == want[gid], header
            seen += 1
    assert seen >= 4


def _label_start(header: str) -> int | None:
    if " labels:{" in header:  # Go 1.26: inside the brackets
        return header.index(" labels:{") + len(" labels:")
    i = header.find("] {")  # Go 1.27: after them
    return i + 2 if i >= 0 else None


@pytest.mark.parametrize("fixture", [pytest.param(d, id=d.name) for d in _fixture_dirs()])
def test_debug1_label_lines_match_truth(fixture: Path) -> None:
    truth = json.loads((fixture / "truth.json").read_text())
    wanted = {json.dumps(g["labels"], sort_keys=True) for g in truth["goroutines"] if g["labels"]}
    text = (fixture / "goroutine.debug1.txt").read_text()
    got = set()
    for line in text.splitlines():
        if line.startswith("# labels: "):
            labels, end = parse_labels(line, len("# labels: "))
            assert end == len(line)
            got.add(json.dumps(labels, sort_keys=True))
    assert got == wanted


# -- live: strconv.Quote and the runtime's header quoting --------------------------------

QUOTER = r"""
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// For each hex-encoded input string: strconv.Quote of it, the first line of this
// goroutine's traceback while it carries the labels {"k": s, s+"~": "v"}, and the
// string as the runtime's rune loop sees it (invalid bytes become U+FFFD one by one).
func main() {
	var inputs []string
	data, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(data, &inputs); err != nil {
		panic(err)
	}
	var out []map[string]string
	for _, h := range inputs {
		b, err := hex.DecodeString(h)
		if err != nil {
			panic(err)
		}
		s := string(b)
		var header string
		pprof.Do(context.Background(), pprof.Labels("k", s, s+"~", "v"), func(context.Context) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, false)]
			header = strings.SplitN(string(buf), "\n", 2)[0]
		})
		out = append(out, map[string]string{
			"quote":  strconv.Quote(s),
			"header": header,
			"runes":  hex.EncodeToString([]byte(string([]rune(s)))),
		})
	}
	enc, _ := json.Marshal(out)
	os.Stdout.Write(enc)
}
"""


def _awkward_strings() -> list[bytes]:
    rng = random.Random(1234)
    pieces = [
        b"",
        b"a",
        b"span_id",
        b"plain.key/x_9",
        b" ",
        b'"',
        b"\\",
        b"}",
        b",",
        b":",
        b"]: ",
        b"\t",
        b"\n",
        b"\r",
        b"\x00",
        b"\x07",
        b"\x1b",
        b"\x7f",
        "ü".encode(),
        "😀".encode(),
        "\u2028".encode(),
        "\ufffd".encode(),
        "\u00a0".encode(),
        b"\xff",
        b"\xc3",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
    ]
    out = list(pieces)
    for _ in range(300):
        out.append(b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))))
    return list(dict.fromkeys(out))


def _go(version: str) -> str:
    try:
        proc = subprocess.run(
            [str(ROOT / "scripts" / "go-toolchain.sh"), version],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"Go {version} toolchain unavailable: {e}")
    return proc.stdout.strip().splitlines()[-1]


def _run_quoter(tmp_path: Path, go: str, inputs: list[bytes]) -> list[dict[str, str]]:
    (tmp_path / "go.mod").write_text("module quoter\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text(QUOTER)
    (tmp_path / "in.json").write_text(json.dumps([b.hex() for b in inputs]))
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-o", "quoter", "."], cwd=tmp_path, env=env, check=True, timeout=600)
    proc = subprocess.run(
        [str(tmp_path / "quoter"), str(tmp_path / "in.json")],
        env={"GODEBUG": "tracebacklabels=1"},
        capture_output=True,
        check=True,
        timeout=120,
    )
    result: list[dict[str, str]] = json.loads(proc.stdout)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("version", ["system", "1.27.3"])
def test_real_go_quoting_round_trips(tmp_path: Path, version: str) -> None:
    inputs = _awkward_strings()
    results = _run_quoter(tmp_path, _go(version), inputs)
    header_forms = set()
    for raw, r in zip(inputs, results, strict=True):
        value = raw.decode("utf-8", "replace")
        # strconv.Quote is lossless: bytes that are not UTF-8 come back as \xHH.
        assert unquote(r["quote"]) == value, r["quote"]
        header = r["header"]
        start = _label_start(header)
        assert start is not None, header
        header_forms.add("inside" if " labels:{" in header else "after")
        labels, end = parse_labels(header, start)
        assert header[end:] in ("]:", ":"), header
        # The runtime's quoting turns each invalid byte into U+FFFD in Go 1.26 and keeps
        # it as \xHH in 1.27.
        if " labels:{" in header:
            value = bytes.fromhex(r["runes"]).decode("utf-8")
        assert labels == {"k": value, value + "~": "v"}, header
    assert header_forms == {"inside" if version == "system" else "after"}
