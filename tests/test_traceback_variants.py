"""Real dumps as users paste them: tabs turned into spaces, CRLF line ends, Windows paths.

Each input is a recorded dump transformed the way an editor, a chat tool or Windows would;
the transformation is applied here, in the test, so the recorded file stays as Go wrote it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import grprof

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = [
    FIXTURES / "states" / "go1.26.8" / "goroutine.debug2.txt",
    FIXTURES / "states" / "go1.27.3-gomod1.27" / "goroutine.debug2.txt",
    FIXTURES / "crash" / "go1.22.12" / "sigquit.crash.txt",
    FIXTURES / "crash" / "go1.19.8" / "panic.all.txt",
]


@pytest.fixture(params=["native", "pure"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "pure":
        monkeypatch.setenv("GRPROF_PURE", "1")


def summary(data: bytes) -> list[tuple[str, int, tuple[str, ...]]]:
    snaps = grprof.load_all(data)
    return [(g.signature, g.count, tuple(sorted(g.states))) for s in snaps for g in s.groups()]


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tabs_pasted_as_spaces(path: Path, scanner: None) -> None:
    data = path.read_bytes()
    assert summary(data.replace(b"\t", b"    ")) == summary(data)
    assert summary(data.replace(b"\t", b" ")) == summary(data)


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_crlf_line_ends(path: Path, scanner: None) -> None:
    data = path.read_bytes()
    assert summary(data.replace(b"\n", b"\r\n")) == summary(data)


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_windows_paths(path: Path, scanner: None) -> None:
    data = path.read_bytes()
    # Go on Windows prints drive-letter paths with forward slashes.
    win = data.replace(b"\t/", b"\tC:/Users/dev/")
    a, b = grprof.load(data), grprof.load(win)
    assert a.total == b.total
    for ga, gb in zip(a.goroutines, b.goroutines, strict=True):
        assert [f.line for f in ga.frames] == [f.line for f in gb.frames]
        assert all(
            fb.file == "C:/Users/dev" + fa.file
            for fa, fb in zip(ga.frames, gb.frames, strict=True)
            if fa.file
        )


def test_dump_inside_a_log_with_text_around_it(scanner: None) -> None:
    dump = (FIXTURES / "crash" / "go1.26.8" / "panic.all.txt").read_bytes()
    log = b"".join(f"2026/11/27 10:00:{i:02d} INFO request {i} served\n".encode() for i in range(500))
    snaps = grprof.load_all(log + dump + b"exit status 2\n" + log)
    assert len(snaps) == 1
    assert snaps[0].total == grprof.load(dump).total
    assert snaps[0].prologue == "panic: boom"
