"""Pasted and logged dumps: log prefixes, quoting, lost or odd indentation, and where a file splits.

The inputs in tests/fixtures/paste are real recorded dumps with each tool's documented line
format applied by tests/fixtures/paste/make.py; each must read as the dump Go wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import grprof
from grprof.errors import ParseError
from grprof.formats import Origin, _paste

FIXTURES = Path(__file__).parent / "fixtures"
PASTE = FIXTURES / "paste"
SOURCES = {
    "states-go1.26.8": FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt",
    "crash-go1.26.8-panic.all": FIXTURES / "crash" / "go1.26.8" / "panic.all.txt",
}
STYLES = ("kubectl", "kubectl-prefix", "cri", "journald", "docker", "quoted", "stripped", "nbsp", "indented")
# Real journalctl output (tests/fixtures/paste/journal.sh): `-o STYLE`, `short-all` is `-o short --all`.
JOURNALCTL = ("short", "short-iso", "short-precise", "short-all")
NOTE = {
    "kubectl": "stripped the RFC 3339 timestamp (kubectl --timestamps) prefix",
    "kubectl-prefix": "stripped the kubectl --prefix prefix",
    "cri": "stripped the CRI log prefix",
    "journald": "stripped the journald prefix",
    "docker": "stripped the docker json-file prefix",
    "quoted": "stripped the '> ' quoting prefix",
    "stripped": "file lines that had lost their indentation",
    "nbsp": "non-breaking or other unicode spaces",
    "indented": "removed the indentation of every line",
}


@pytest.fixture(params=["native", "pure"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "pure":
        monkeypatch.setenv("GRPROF_PURE", "1")


def summary(snaps: list[grprof.Snapshot]) -> list[tuple[str, int, tuple[str, ...], str]]:
    return [(g.signature, g.count, tuple(sorted(g.states)), str(g.site)) for s in snaps for g in s.groups()]


def test_fixtures_are_up_to_date() -> None:
    names = {p.name for p in PASTE.glob("*.txt")}
    assert names == {f"{src}.{style}.txt" for src in SOURCES for style in STYLES} | {
        f"{src}.journalctl-{style}.txt" for src in SOURCES for style in JOURNALCTL
    }


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("style", STYLES)
def test_pasted_dump_reads_as_the_original(source: str, style: str, scanner: None) -> None:
    original = grprof.load_all(SOURCES[source])
    pasted = grprof.load_all(PASTE / f"{source}.{style}.txt")
    assert len(pasted) == 1  # one dump, never split by what the paste did
    assert summary(pasted) == summary(original)
    assert pasted[0].total == original[0].total
    assert pasted[0].prologue == original[0].prologue
    assert [g.id for g in pasted[0].goroutines] == [g.id for g in original[0].goroutines]
    assert any(NOTE[style] in n for n in pasted[0].notes), pasted[0].notes
    assert all(n.startswith(str(PASTE / f"{source}.{style}.txt")) for n in pasted[0].notes)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("style", JOURNALCTL)
def test_real_journalctl_output_reads_as_the_original(source: str, style: str, scanner: None) -> None:
    """journalctl printed these from a journal file (no journald runs here): without --all it
    shows each tab as spaces; short-precise adds microseconds to the time."""
    path = PASTE / f"{source}.journalctl-{style}.txt"
    original = grprof.load_all(SOURCES[source])
    pasted = grprof.load_all(path)
    assert len(pasted) == 1
    assert summary(pasted) == summary(original)
    assert pasted[0].prologue == original[0].prologue
    assert [g.id for g in pasted[0].goroutines] == [g.id for g in original[0].goroutines]
    n = len(path.read_bytes().splitlines())
    assert pasted[0].notes == (f"{path}: stripped the journald prefix from {n} of {n} lines",)
    # The process journald recorded, kept from the prefixes it printed.
    assert pasted[0].origin == Origin(pid=4242, host="node-1")


def test_journald_times_with_microseconds_mark_gaps() -> None:
    lines = [
        b"Dec 03 07:00:00.000001 node-1 leaky[4242]: goroutine 1 [select]:",
        b"Dec 03 07:00:00.000002 node-1 leaky[4242]: main.f()",
        b"Dec 03 07:00:00.000003 node-1 leaky[4242]: \t/src/x.go:1 +0x1d",
        b"Dec 03 07:00:09.500000 node-1 leaky[4242]: goroutine 1 [select]:",
        b"Dec 03 07:00:09.500001 node-1 leaky[4242]: main.f()",
        b"Dec 03 07:00:09.500002 node-1 leaky[4242]: \t/src/x.go:1 +0x1d",
    ]
    out, notes = _paste.normalize(b"\n".join(lines) + b"\n")
    assert notes[-1] == "a new dump starts after 9 s without output in the log"
    assert _paste.GAP_MARKER + b" (9 s)" in out


@pytest.mark.parametrize("path", SOURCES.values(), ids=list(SOURCES))
def test_clean_dumps_are_left_alone(path: Path) -> None:
    data = path.read_bytes()
    assert not _paste.needed(data[: 64 << 10])
    assert grprof.load(data).notes == ()


def test_stripped_indentation_and_nbsp_give_one_snapshot_before_and_after_crlf() -> None:
    data = SOURCES["states-go1.26.8"].read_bytes()
    stripped = b"\n".join(ln.lstrip() for ln in data.split(b"\n"))
    nbsp = data.replace(b"\t", "\u00a0".encode())
    for variant in (stripped, nbsp, stripped.replace(b"\n", b"\r\n"), nbsp.replace(b"\n", b"\r\n")):
        snaps = grprof.load_all(variant)
        assert len(snaps) == 1
        assert summary(snaps) == summary(grprof.load_all(data))


def test_two_real_dumps_concatenated_are_two_snapshots_with_a_warning(scanner: None) -> None:
    a = SOURCES["states-go1.26.8"].read_bytes()
    b = (FIXTURES / "states" / "go1.27.3-gomod1.27" / "goroutine.debug2.txt").read_bytes()
    snaps = grprof.load_all(a + b, name="both.txt")
    assert [s.total for s in snaps] == [grprof.load(a).total, grprof.load(b).total]
    assert [s.source for s in snaps] == ["both.txt#1", "both.txt#2"]
    (note,) = snaps[0].notes
    assert re.fullmatch(
        r"both\.txt: split: dump #2 starts at goroutine \d+ \(goroutine \d+ appears again\)", note
    )


def test_a_crash_message_splits_and_is_named() -> None:
    one = (FIXTURES / "crash" / "go1.26.8" / "sigquit.crash.txt").read_bytes()
    snaps = grprof.load_all(one + one, name="x")
    assert len(snaps) == 2
    (note,) = snaps[0].notes
    assert re.fullmatch(r"x: split: dump #2 starts at goroutine \d+ \(after 'SIGQUIT: quit'\)", note)


def _shift_ids(dump: bytes, by: int) -> bytes:
    return re.sub(rb"(?m)^goroutine (\d+) ", lambda m: b"goroutine %d " % (int(m.group(1)) + by), dump)


def test_text_inside_a_dump_without_evidence_does_not_split_it() -> None:
    # A log line written while the dump was being printed: the goroutines after it are new
    # ids, with no crash message before them, so still the same dump.
    data = SOURCES["states-go1.26.8"].read_bytes()
    cut = data.index(b"\n\ngoroutine ", len(data) // 2) + 2
    snaps = grprof.load_all(data[:cut] + b"2026/12/03 07:00:01 INFO request served\n" + data[cut:], name="x")
    assert len(snaps) == 1 and snaps[0].total == grprof.load(data).total
    assert len(snaps[0].notes) == 1 and "kept in one dump" in snaps[0].notes[0]


def test_a_time_gap_in_log_timestamps_splits(scanner: None) -> None:
    # Two dumps whose ids do not overlap, a minute apart in `kubectl logs --timestamps`.
    a = SOURCES["states-go1.26.8"].read_bytes()
    b = _shift_ids(a, 100_000)
    lines = a.rstrip(b"\n").split(b"\n") + b.rstrip(b"\n").split(b"\n")

    def stamped(gap: int) -> bytes:
        return b"".join(
            b"2026-12-03T07:%02d:00.%09dZ %s\n" % (gap if i >= len(lines) // 2 else 0, i, ln)
            for i, ln in enumerate(lines)
        )

    snaps = grprof.load_all(stamped(1), name="k")
    assert [s.total for s in snaps] == [grprof.load(a).total] * 2
    assert any(n == "k: a new dump starts after 60 s without output in the log" for n in snaps[0].notes)
    assert any("split: dump #2" in n and "time gap" in n for n in snaps[0].notes)
    # Without the gap nothing says a new dump starts: one snapshot, and a note saying so.
    (one,) = grprof.load_all(stamped(0), name="k")
    assert one.total == 2 * grprof.load(a).total


def test_cri_partial_lines_are_joined() -> None:
    text = (
        b"2026-12-03T07:00:00.1Z stderr F goroutine 1 [chan receive]:\n"
        b"2026-12-03T07:00:00.1Z stderr P main.wo\n"
        b"2026-12-03T07:00:00.1Z stderr P rker(0x1\n"
        b"2026-12-03T07:00:00.1Z stderr F )\n"
        b"2026-12-03T07:00:00.1Z stderr F \t/src/x.go:12 +0x1d\n"
    )
    out, notes = _paste.normalize(text)
    assert out == b"goroutine 1 [chan receive]:\nmain.worker(0x1)\n\t/src/x.go:12 +0x1d\n"
    assert notes == ["stripped the CRI log prefix from 5 of 5 lines"]


def test_docker_json_lines_are_decoded() -> None:
    text = (
        b'{"log":"goroutine 1 [select]:\\n","stream":"stderr","time":"2026-12-03T07:00:00Z"}\n'
        b'{"log":"main.f(...)\\n","stream":"stderr","time":"2026-12-03T07:00:00Z"}\n'
        b'{"log":"\\t\\u003cautogenerated\\u003e:1 +0x1d\\n",'
        b'"stream":"stderr","time":"2026-12-03T07:00:00Z"}\n'
    )
    out, _ = _paste.normalize(text)
    assert out == b"goroutine 1 [select]:\nmain.f(...)\n\t<autogenerated>:1 +0x1d\n"


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello\nworld\n",
        b"> just a quote\n> nothing more\n",
        "\u00a0\u00a0nbsp text\n".encode(),
        b"2026-12-03T07:00:00Z stderr F no dump here\n" * 5,
        b'{"log":"no dump\\n","stream":"stderr","time":"2026-12-03T07:00:00Z"}\n' * 5,
        b"main.f()\n/src/x.go:12 +0x1d\n",
    ],
)
def test_garbage_is_still_not_a_dump(garbage: bytes) -> None:
    with pytest.raises(ParseError) as e:
        grprof.load_all(garbage, name="notes.txt")
    assert (
        str(e.value) == 'notes.txt: not a goroutine dump: no "goroutine N [" header or profile header found'
    )


def test_a_prefixed_debug1_profile() -> None:
    data = (FIXTURES / "states" / "go1.26.8" / "goroutine.debug1.txt").read_bytes()
    stamped = b"".join(b"2026-12-03T07:00:00.%09dZ %s\n" % (i, ln) for i, ln in enumerate(data.split(b"\n")))
    snap = grprof.load(stamped)
    assert snap.format == "debug=1" and snap.total == grprof.load(data).total
    assert snap.notes


def test_the_cli_names_what_it_did_to_a_pasted_dump() -> None:
    """`grprof analyze` prints each note on stderr as one warning line; the report is made."""
    import subprocess
    import sys

    fixture = Path(__file__).resolve().parent / "fixtures" / "paste" / "crash-go1.26.8-panic.all.cri.txt"
    p = subprocess.run(
        [sys.executable, "-m", "grprof.cli", "analyze", str(fixture)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        f"grprof: warning: {fixture}: stripped the CRI log prefix from 151 of 151 lines"
    ], p.stderr
    assert "panic" in p.stdout


def test_the_quick_look_for_a_prefix_misses_no_style() -> None:
    """`needed` first asks one pattern whether a line may start with a prefix at all, then
    each style's: every line a style's pattern matches, in every pasted fixture and in the
    variants each pattern allows (journald's ISO times and padded days, nested quoting, a
    kubectl prefix with a timestamp), that one matches too."""
    lines = [ln for p in PASTE.glob("*.txt") for ln in p.read_bytes().splitlines()[:200]]
    lines += [
        b"2026-12-03T07:00:00+01:00 host app[1]: goroutine 1 [running]:",
        b"Dec  3 07:00:00 host app: goroutine 1 [running]:",
        b"Dec 13 07:00:00.123456 host app[99]: x",
        b">> > goroutine 1 [running]:",
        b">goroutine 1 [running]:",
        b"[pod/api-7d9f/app] 2026-12-03T07:00:00.1Z goroutine 1 [running]:",
        b"2026-12-03 07:00:00,123 goroutine 1 [running]:",
        b"2026-12-03T07:00:00Z",
        b'{"log":"goroutine 1 [running]:\\n","stream":"stderr"}',
    ]
    styled = [ln for ln in lines if any(p.pattern.match(ln) for p in _paste.PREFIXES)]
    assert len(styled) > 1000
    assert [ln for ln in styled if not _paste._MAY_PREFIX.match(ln)] == []
    # and a dump as Go writes it gets no further look
    for path in SOURCES.values():
        assert not any(map(_paste._MAY_PREFIX.match, path.read_bytes().splitlines()[:16]))
