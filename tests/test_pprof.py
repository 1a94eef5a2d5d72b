"""debug=0: profile.proto goroutine and goroutineleak profiles recorded from real Go.

Each recorded profile is compared with the truth its program wrote: goroutines per
function, labels, the leaked flag, time, frames. Variants of the real bytes (unpacked
repeated fields, unknown fields) must decode the same; broken bytes must fail with a
ParseError that names the byte; and nothing else may ever escape.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grprof import ParseError
from grprof.formats import pprof
from grprof.model import Snapshot

STATES = Path(__file__).resolve().parent / "fixtures" / "states"


def _profiles() -> list[Path]:
    return sorted(STATES.glob("go1.*/goroutine*.debug0.pb.gz"))


PROFILES = _profiles()
PARAMS = [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in PROFILES]


def _raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def rows(snap: Snapshot) -> list[tuple[Any, ...]]:
    """Every row as plain values, for comparing two parses."""
    t = snap.table
    assert t.counts is not None
    out = []
    for r in range(len(t)):
        h, s = t.headers[t.header[r]], t.stacks[t.stack[r]]
        out.append((h.state, h.leaked, h.labels_key, s.frames, t.counts[r]))
    return sorted(out, key=repr)


def test_profiles_of_every_version_are_recorded() -> None:
    versions = {p.parent.name.split("-")[0].rsplit(".", 1)[0] for p in PROFILES}
    assert {"go1.19", "go1.21", "go1.22", "go1.26", "go1.27"} <= versions, versions
    assert any(p.name.startswith("goroutineleak") for p in PROFILES)


@pytest.mark.parametrize("path", PARAMS)
def test_profile_matches_truth(path: Path) -> None:
    truth = json.loads((path.parent / "truth.json").read_text())
    snap = pprof.parse(_raw(path), str(path))
    leak = path.name.startswith("goroutineleak")
    assert (snap.format, snap.profile) == ("debug=0", "goroutineleak" if leak else "goroutine")
    assert snap.source == str(path)
    assert not snap.goroutines  # aggregated: no per-goroutine records
    assert snap.time is not None and snap.time.tzinfo is not None
    assert dt.datetime(2024, 1, 1, tzinfo=dt.UTC) < snap.time < dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    considered = [g for g in truth["goroutines"] if not leak or g["leak"]]
    want_counts = collections.Counter(g["function"] for g in considered)
    want_labels = collections.Counter((g["function"], tuple(sorted(g["labels"].items()))) for g in considered)
    got_counts: collections.Counter[str] = collections.Counter()
    got_labels: collections.Counter[tuple[str, Any]] = collections.Counter()
    outside = 0
    t = snap.table
    assert t.counts is not None
    for r in range(len(t)):
        h, frames, n = t.headers[t.header[r]], t.stacks[t.stack[r]].frames, t.counts[r]
        assert h.leaked == leak
        assert all(f.file.endswith((".go", ".s")) and f.line > 0 for f in frames), frames
        main = next((f.function for f in frames if f.function.startswith("main.")), None)
        if main is None:
            outside += n
            continue
        got_counts[main] += n
        got_labels[(main, h.labels_key)] += n
    assert got_counts == want_counts
    assert got_labels == want_labels
    # Beyond the truth only the scrape's own connection goroutines.
    assert outside <= (0 if leak else 2)
    assert snap.total == len(considered) + outside


@pytest.mark.parametrize("path", [p for p in PARAMS if p.values[0].name.startswith("goroutine.")])
def test_stacks_are_innermost_first_with_inlined_frames(path: Path) -> None:
    snap = pprof.parse(_raw(path), str(path))
    stacks = {s.frames[-1].function: s.frames for s in snap.table.stacks if s.frames}
    # The writer of the profile: innermost is the runtime, outermost goexit is dropped.
    writer = next(
        s.frames for s in snap.table.stacks if any("writeGoroutine" in f.function for f in s.frames)
    )
    assert writer[0].function.startswith("runtime.")
    assert all(f.function != "runtime.goexit" for s in snap.table.stacks for f in s.frames)
    # Deep recursion: many main.recurse frames, cut at the profile's depth limit.
    deep = max(snap.table.stacks, key=lambda s: sum(f.function == "main.recurse" for f in s.frames))
    assert sum(f.function == "main.recurse" for f in deep.frames) >= 28
    assert len(deep.frames) <= 128 + 8
    assert stacks  # at least one stack ends somewhere


# -- the same data, encoded differently --------------------------------------------------

Field = tuple[int, int, Any]  # number, wire type, int or bytes


def pb_decode(data: bytes) -> list[Field]:
    """A test-side protobuf reader (independent of the parser) for re-encoding real data."""
    out: list[Field] = []
    pos = 0
    while pos < len(data):
        tag, pos = _uvarint(data, pos)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, pos = _uvarint(data, pos)
            out.append((num, wt, v))
        elif wt == 2:
            n, pos = _uvarint(data, pos)
            out.append((num, wt, data[pos : pos + n]))
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wt}")
    return out


def pb_encode(fields: list[Field]) -> bytes:
    out = bytearray()
    for num, wt, v in fields:
        out += _enc((num << 3) | wt)
        if wt == 0:
            out += _enc(v)
        elif wt == 2:
            out += _enc(len(v)) + v
        elif wt == 1:
            out += v.to_bytes(8, "little")
        elif wt == 5:
            out += v.to_bytes(4, "little")
    return bytes(out)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7


def _enc(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _packed_values(b: bytes) -> list[int]:
    vals, pos = [], 0
    while pos < len(b):
        v, pos = _uvarint(b, pos)
        vals.append(v)
    return vals


def _unpack_sample(sample: bytes) -> bytes:
    fields = []
    for num, wt, v in pb_decode(sample):
        if num in (1, 2) and wt == 2:
            fields.extend((num, 0, x) for x in _packed_values(v))
        else:
            fields.append((num, wt, v))
    return pb_encode(fields)


UNKNOWN: list[Field] = [(99, 0, 12345), (100, 2, b"\x08\x01junk"), (101, 1, 2**63), (102, 5, 7)]


@pytest.mark.parametrize("path", PARAMS)
def test_unpacked_and_unknown_fields_decode_the_same(path: Path) -> None:
    raw = _raw(path)
    reference = rows(pprof.parse(raw, "ref"))
    top = pb_decode(raw)
    unpacked = [(n, w, _unpack_sample(v) if n == 2 else v) for n, w, v in top]
    assert rows(pprof.parse(pb_encode(unpacked), "unpacked")) == reference
    # Unknown fields of every wire type, at the top level and inside every sample.
    noisy = UNKNOWN + [
        (n, w, pb_encode([*UNKNOWN, *pb_decode(v)]) if n in (2, 4, 5) else v) for n, w, v in top
    ]
    assert rows(pprof.parse(pb_encode(noisy), "noisy")) == reference
    # Split location ids over two packed runs.
    split = []
    for n, w, v in top:
        if n == 2:
            fields = []
            for sn, sw, sv in pb_decode(v):
                if sn == 1 and len(sv) > 1:
                    fields += [(1, 2, sv[:1]), (1, 2, sv[1:])] if sv[0] < 0x80 else [(sn, sw, sv)]
                else:
                    fields.append((sn, sw, sv))
            v = pb_encode(fields)
        split.append((n, w, v))
    assert rows(pprof.parse(pb_encode(split), "split")) == reference


def test_negative_values_and_numeric_labels() -> None:
    """Delta profiles carry negative counts; other producers write numeric labels."""
    raw = _raw(PROFILES[0])
    top = pb_decode(raw)
    strings = [v for n, _, v in top if n == 6]
    key = len(strings)
    out: list[Field] = []
    for n, w, v in top:
        if n == 2:
            fields = [f for f in pb_decode(v) if f[0] != 2]
            fields += [(2, 0, (1 << 64) - 3), (3, 2, pb_encode([(1, 0, key), (3, 0, 42)]))]
            v = pb_encode(fields)
        out.append((n, w, v))
    out.append((6, 2, b"attempt"))
    snap = pprof.parse(pb_encode(out), "delta")
    assert snap.total == -3 * len(snap.table)
    assert all(h.labels["attempt"] == "42" for h in snap.table.headers)


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message", "position"),
    [
        (b"", "missing sample_type (not a pprof profile?)", 0),
        (b"\x48\x01", "missing sample_type (not a pprof profile?)", 2),
        (b"\x0a\x80", "truncated varint", 1),
        (b"\x48\xff\xff", "truncated varint", 1),
        (b"\x0a\x05\x08", "length 5 of field 1 runs past the end of its message", 0),
        (b"\x48\x01\x0a\x04\x08\x01\x12\x05", "length 5 of field 2 runs past the end of its message", 6),
        (b"\x4a\x00", "wrong wire type 2 for Profile field 9 (want 0)", 0),
        (b"\x0a\x02\x0a\x00", "wrong wire type 2 for ValueType field 1 (want 0)", 2),
        (b"\x0f", "unsupported wire type 7 in field 1", 0),
        (b"\x48\x01\x03", "field number 0", 2),
        (b"\x48" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes", 1),
        (b"\x48" + b"\xff" * 9 + b"\x7f", "varint overflows 64 bits", 1),
        (b"\x49\x01\x02", "truncated fixed64 field 9", 0),
        (b"\x0a\x02\x08\x05\x32\x00", "string index 5 out of range (1 strings)", 0),
        (b"\x1f\x8b\x08\x00", "input is still gzip-compressed", 0),
    ],
)
def test_errors_name_the_byte(data: bytes, message: str, position: int) -> None:
    with pytest.raises(ParseError) as e:
        pprof.parse(data, "in.pb")
    assert (e.value.message, e.value.position) == ("pprof protobuf: " + message, position)
    assert str(e.value) == f"in.pb: pprof protobuf: {message} at byte {position}"


def test_dangling_references_name_the_referring_message() -> None:
    raw = _raw(PROFILES[0])
    top = pb_decode(raw)
    no_functions = pb_encode([f for f in top if f[0] != 5])
    with pytest.raises(ParseError, match=r"line refers to missing function id \d+ at byte \d+") as e:
        pprof.parse(no_functions, "x")
    assert e.value.position is not None and no_functions[e.value.position] == 0x22  # a Location's line
    no_locations = pb_encode([f for f in top if f[0] != 4])
    with pytest.raises(ParseError, match=r"sample refers to missing location id \d+") as e:
        pprof.parse(no_locations, "x")
    assert e.value.position is not None and no_locations[e.value.position] == 0x12  # a Sample


OTHER_PROFILES = r"""
package main

import (
	"os"
	"runtime/pprof"
	"time"
)

var sink [][]byte

func main() {
	for i := 0; i < 1000; i++ {
		sink = append(sink, make([]byte, 4096))
	}
	for _, name := range []string{"heap", "allocs", "threadcreate", "block", "mutex"} {
		f, _ := os.Create(name + ".pb.gz")
		pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	f, _ := os.Create("cpu.pb.gz")
	pprof.StartCPUProfile(f)
	for t := time.Now(); time.Since(t) < 50*time.Millisecond; {
	}
	pprof.StopCPUProfile()
	f.Close()
}
"""


@pytest.mark.slow
def test_other_real_profiles_are_named(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module other\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text(OTHER_PROFILES)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "", "CGO_ENABLED": "0"}
    subprocess.run(["go", "run", "."], cwd=tmp_path, env=env, check=True, timeout=600)
    expect = {
        "heap": "heap",
        "allocs": "heap",
        "threadcreate": "threadcreate",
        "block": "block or mutex",
        "mutex": "block or mutex",
        "cpu": "CPU",
    }
    for name, kind in expect.items():
        with pytest.raises(ParseError) as e:
            pprof.parse(gzip.decompress((tmp_path / f"{name}.pb.gz").read_bytes()), name)
        assert e.value.message == f'pprof protobuf: a "{kind}" profile, not a goroutine profile'
        assert e.value.position is not None


# -- whatever the bytes: only ParseError, pointing inside the input -------------------------


def check(data: bytes) -> None:
    try:
        snap = pprof.parse(data, "fuzz")
    except ParseError as e:
        assert e.source == "fuzz"
        assert e.position is not None and 0 <= e.position <= len(data), (e.position, len(data))
    else:
        assert snap.profile in ("goroutine", "goroutineleak")
        assert len(snap.table) == len(snap.table.counts or ())


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(b"\x0a" + data)  # what sniff() routes here starts with field 1


EDIT = st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2))  # where, byte, op
SEEDS = [_raw(p) for p in PROFILES]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.sampled_from(range(len(SEEDS))) if SEEDS else st.nothing(),
    st.lists(
        st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2)), min_size=1, max_size=8
    ),
)
def test_mutated_real_profiles(seed: int, edits: list[tuple[int, int, int]]) -> None:
    data = bytearray(SEEDS[seed])
    for where, byte, op in edits:
        i = where % (len(data) + 1)
        if op == 0 and i < len(data):
            data[i] = byte
        elif op == 1:
            data.insert(i, byte)
        elif i < len(data):
            del data[i]
    check(bytes(data))


def test_every_truncation_of_a_small_real_profile() -> None:
    small = min((p for p in PROFILES if p.name.startswith("goroutineleak")), key=lambda p: p.stat().st_size)
    data = _raw(small)
    full = rows(pprof.parse(data, "full"))
    complete = 0
    for cut in range(len(data)):
        check(data[:cut])
        try:
            if rows(pprof.parse(data[:cut], "cut")) == full:
                complete += 1
        except ParseError:
            pass
    # Only cuts inside the trailing fields that do not change the data can parse equal.
    assert complete < len(data) // 4


def test_go_version_from_goroot_paths_or_runtime_lines() -> None:
    got = {
        p.parent.name: pprof.parse(_raw(p), str(p)).go_version
        for p in PROFILES
        if p.name == "goroutine.debug0.pb.gz"
    }
    assert got["go1.19.8"] == "1.19"  # /usr/lib/go-1.19
    assert got["go1.21.13"] == "1.21.13" and got["go1.27.3"] == "1.27.3"  # toolchain modules
    assert got["go1.26.8"] == "1.26"  # /usr/local/go: the line numbers of its runtime frames
