"""debug=0: a goroutine or goroutineleak profile in profile.proto (already gunzipped).

A hand-written protobuf wire reader, so every error names the byte where the input went
wrong. Only the messages a goroutine profile uses are decoded; unknown fields are skipped
whatever their number. Samples sharing a stack share the packed location bytes, which
key the caches: a profile of thousands of samples decodes each distinct stack once.

The Rust extension has a twin of this decoder (`grprof._native.decode_pprof`, native/src/
pprof.rs) with the same checks and messages; `parse` uses it unless it is missing or
GRPROF_PURE=1 is set (tests/test_pprof_equivalence.py holds the two to the same snapshots).
It returns distinct frames, stacks and label sets with one row per sample, and the table is
filled from those columns without hashing a frame. Its `Frame` and `Stack` objects are kept
across profiles (native/src/objcache.rs), and so are the Go version and the wait states
inferred from them here (`_Known`): a scraped service repeats its frames every 15 s.
"""

from __future__ import annotations

import datetime as _dt
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

from grprof import _rust
from grprof._gc import gc_paused
from grprof.errors import ParseError
from grprof.formats.goversion import infer_go_version, line_table, version_minor
from grprof.formats.states import infer_state, load_rules
from grprof.model import Frame, Origin, Profile, Snapshot
from grprof.table import GoroutineTable, Header, Stack

_PREFIX = "pprof protobuf: "
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)

# Profile, Sample, Location, Line, Function and ValueType field numbers (profile.proto).
_P_SAMPLE_TYPE, _P_SAMPLE, _P_MAPPING, _P_LOCATION, _P_FUNCTION, _P_STRINGS = 1, 2, 3, 4, 5, 6
_P_TIME = 9
_S_LOCATION, _S_VALUE, _S_LABEL = 1, 2, 3
_L_KEY, _L_STR, _L_NUM = 1, 2, 3
_LOC_ID, _LOC_ADDRESS, _LOC_LINE = 1, 3, 4
_LINE_FUNCTION, _LINE_LINE = 1, 2
_F_ID, _F_NAME, _F_FILE = 1, 2, 4
_M_FILENAME, _M_BUILD_ID = 5, 6
_VT_TYPE = 1

# Sample types of the other runtime/pprof profiles, to name what was given instead.
_OTHER_PROFILES = {
    "alloc_objects": "heap",
    "alloc_space": "heap",
    "inuse_objects": "heap",
    "inuse_space": "heap",
    "samples": "CPU",
    "cpu": "CPU",
    "contentions": "block or mutex",
    "delay": "block or mutex",
    "threadcreate": "threadcreate",
}


class _Malformed(Exception):
    """Raised inside the reader; `parse` turns it into a ParseError naming the source."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def native_decoder() -> Any | None:
    """The Rust decoder, unless unavailable or disabled with GRPROF_PURE=1."""
    return _rust.native("decode_pprof")


def parse(data: bytes, source: str, *, native: bool | None = None, signatures: bool = True) -> Snapshot:
    """Decode a goroutine/goroutineleak profile.proto into one aggregated snapshot.

    `native`: None uses the Rust decoder when available; False forces the Python one; True
    requires the Rust one (tests and benchmarks). `signatures`: the Rust decoder gives the
    stacks' signatures (`GoroutineTable.stack_signatures`): a big profile's hashed meanwhile,
    a smaller one's from its cache of stacks; a caller that keeps its own says False."""
    decode = _rust.native("decode_pprof", native)
    try:
        if decode is not None:
            return _from_native(decode, data, source, signatures)
        return _Decoder(data).snapshot(source)
    except _Malformed as e:
        raise ParseError(source, _PREFIX + e.message, e.pos) from None


def _stops_state(frame: Frame) -> bool:
    """Where `infer_state` stops reading a stack: it walks frames innermost first, checking
    each frame's rules against that frame and its caller, and stops after the first frame
    outside the standard library. So a stack's state depends only on its frames up to that
    one and its caller, and the native decoder infers it once per distinct such prefix.
    (`lookup` caches `is_stdlib` by function name: the flag `infer_state` itself reads.)"""
    return not load_rules().lookup(frame)[1]


def _from_native(decode: Any, data: bytes, source: str, signatures: bool = True) -> Snapshot:
    if type(data) is not bytes:  # the extension borrows bytes only (bytearray, memoryview: copy)
        data = bytes(data)
    rules = load_rules()
    try:
        d = decode(data, Frame, _stops_state, Stack, rules, signatures)
    except ValueError as e:
        message, pos = e.args
        raise _Malformed(message, pos) from None
    # Tens of thousands of stacks and headers, no cycles: as the traceback parser does.
    with gc_paused(len(d["stacks"]) + len(d["labelsets"])):
        return _build(d, source, rules)


class _Known:
    """What the native decoder's frames and stacks imply, kept across profiles: the Go version
    of a set of frames and the wait state of a state class, keyed by the process-wide frame
    ids the extension hands out (valid for its `generation`) and for the rules and the line
    table they were inferred with. A scraped service repeats both every 15 s."""

    limit = 200_000
    pairs_limit = 4096  # one entry per scraped service: a fleet of 1,000 fits
    pairs_labelsets = 64  # kept only for profiles with at most this many label sets
    pairs_max = 1024  # and this many (state class, label set) pairs

    def __init__(self) -> None:
        self.key: tuple[int, object, object] = (-1, None, None)
        self.versions: dict[bytes, str | None] = {}
        self.states: dict[tuple[bytes, int | None], str] = {}
        self.pairs: dict[tuple[object, ...], tuple[tuple[Header, ...], list[int] | None]] = {}

    def get(
        self, generation: int, rules: object, lines: object
    ) -> tuple[dict[bytes, str | None], dict[tuple[bytes, int | None], str]]:
        """The caches for these ids, rules and line table: new ones when any of them changed.
        A parse keeps what it got (another thread may start new ones meanwhile)."""
        key = self.key
        if (
            generation != key[0]
            or rules is not key[1]
            or lines is not key[2]
            or len(self.states) > self.limit
            or len(self.versions) > self.limit
        ):
            self.key = (generation, rules, lines)
            self.versions = {}
            self.states = {}
        return self.versions, self.states

    def headers(
        self,
        states: Sequence[str],
        leaked: bool,
        pair_state: array[int],
        pair_labels: array[int],
        labelsets: Sequence[tuple[tuple[str, str], ...]],
    ) -> tuple[tuple[Header, ...], list[int] | None]:
        """The headers of the distinct (state, label set) pairs: pair i is state
        `states[pair_state[i]]` with label set `labelsets[pair_labels[i]]`, pairs numbered in
        order of first use, so that no Python code runs per sample. Returns the distinct
        headers in order of first use and each pair's header (None: each pair is its own).
        A scraped service repeats its pairs and gets the same answer back without a header
        looked up again (75 pairs: 60 of the 75 µs `_build` took). Not kept for many label
        sets (labels per request change at every scrape, and would be held 4,096 times over)."""
        key = None
        if len(labelsets) <= self.pairs_labelsets and len(pair_state) <= self.pairs_max:
            key = (tuple(states), leaked, pair_state.tobytes(), pair_labels.tobytes(), tuple(labelsets))
            hit = self.pairs.get(key)
            if hit is not None:
                return hit
        made: dict[tuple[str, int], int] = {}
        index: dict[Header, int] = {}  # label sets in another order make equal headers
        pair_header = []
        for c, li in zip(pair_state, pair_labels, strict=True):
            k = (states[c], li)
            h = made.get(k)
            if h is None:
                h = made[k] = index.setdefault(_header(k[0], leaked, labelsets[li]), len(index))
            pair_header.append(h)
        out = (tuple(index), None if pair_header == list(range(len(pair_header))) else pair_header)
        if key is not None:
            if len(self.pairs) >= self.pairs_limit:
                self.pairs.clear()
            self.pairs[key] = out
        return out


_KNOWN = _Known()


def _build(d: dict[str, Any], source: str, rules: object) -> Snapshot:
    profile: Profile = d["profile"]
    versions, states = _KNOWN.get(d["generation"], rules, line_table())
    frames_key = d["frames_key"]
    if frames_key in versions:
        version = versions[frames_key]
    else:
        version = versions[frames_key] = infer_go_version([d["frames"]])
    go_minor = version_minor(version)
    leaked = profile == "goroutineleak"
    stacks: list[Stack] = d["stacks"]
    class_states = []
    for key, rep in zip(d["state_keys"], d["state_reps"], strict=True):
        k = (key, go_minor)
        st = states.get(k)
        if st is None:
            st = states[k] = infer_state(stacks[rep].frames, go_minor)
        class_states.append(st)
    table = GoroutineTable(aggregated=True)
    headers, pair_header = _KNOWN.headers(
        class_states, leaked, _ints(d["pair_class"]), _ints(d["pair_labels"]), d["labelsets"]
    )
    table.headers = list(headers)
    row_pair = _longs(d["row_pair"])
    n = len(row_pair)
    table.set_stacks(stacks, d["signatures"])
    if pair_header is not None:
        row_pair = array("l", map(pair_header.__getitem__, row_pair))
    table.header = row_pair
    table.stack = _longs(d["row_stack"])
    table.counts = _ints(d["row_count"])
    table.ids = array("q", [-1]) * n
    table.creator = array("q", [-1]) * n
    table.argkey = array("Q", [0]) * n
    snap = Snapshot(
        source=source,
        format="debug=0",
        profile=profile,
        table=table,
        time=_time(d["time_nanos"]),
        go_version=version,
    )
    if d["origin_error"] is not None:
        raise _Malformed(*d["origin_error"])
    if d["origin"] is not None:
        binary, build_id = d["origin"]
        if binary or build_id:
            snap.origin = Origin(binary=binary or None, build_id=build_id or None)
    return snap


def _ints(raw: bytes) -> array[int]:
    a = array("q")
    a.frombytes(raw)
    return a


def _longs(raw: bytes) -> array[int]:
    """int64 bytes as the table's columns ("l") hold them."""
    a = array("l")
    if a.itemsize != 8:
        return array("l", _ints(raw))
    a.frombytes(raw)
    return a


# Headers of recent profiles (frozen, so shared): a service scraped every 15 s shows the
# same few states and label sets each time.
_HEADERS: dict[tuple[str, bool, tuple[tuple[str, str], ...]], Header] = {}
_HEADERS_SIZE = 4096


def _header(state: str, leaked: bool, pairs: tuple[tuple[str, str], ...]) -> Header:
    key = (state, leaked, pairs)
    h = _HEADERS.get(key)
    if h is None:
        if len(_HEADERS) >= _HEADERS_SIZE:
            _HEADERS.clear()
        h = _HEADERS[key] = Header.make(state, leaked=leaked, labels=dict(pairs))
    return h


def _time(time_nanos: tuple[int, int] | None) -> _dt.datetime | None:
    if time_nanos is None or time_nanos[0] == 0:
        return None
    nanos, at = time_nanos
    try:
        return _EPOCH + _dt.timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise _Malformed(f"time_nanos {nanos} out of range", at) from None


# -- wire format --------------------------------------------------------------------------


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at `pos` (must finish before `end`) and the offset after it."""
    if pos < end:
        b = data[pos]
        if b < 0x80:
            return b, pos + 1
    start = pos
    result = shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if result >> 64:
                raise _Malformed("varint overflows 64 bits", start)
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes", start)
    raise _Malformed("truncated varint", start)


def _signed(v: int) -> int:
    """An int64 field encoded as a plain varint (two's complement, ten bytes if negative)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(data: bytes, pos: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """(field number, wire type, value, tag offset, payload end) for each field of a message.

    The value is the integer for varint and fixed fields, the payload start for wire type
    2 (whose payload is data[value:payload end]). One-byte varints, nearly all tags and
    lengths, are decoded inline: this loop is most of the parse time.
    """
    out: list[tuple[int, int, int, int, int]] = []
    append = out.append
    while pos < end:
        tag_at = pos
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(data, pos, end)
        wt = tag & 7
        if tag < 8:
            raise _Malformed("field number 0", tag_at)
        if wt == _LEN:
            n = data[pos] if pos < end else 0x80
            if n < 0x80:
                value = pos + 1
            else:
                n, value = _varint(data, pos, end)
            pos = value + n
            if pos > end:
                raise _Malformed(f"length {n} of field {tag >> 3} runs past the end of its message", tag_at)
        elif wt == _VARINT:
            value = data[pos] if pos < end else 0x80
            if value < 0x80:
                pos += 1
            else:
                value, pos = _varint(data, pos, end)
        elif wt in (_FIXED64, _FIXED32):
            width = 8 if wt == _FIXED64 else 4
            if pos + width > end:
                raise _Malformed(f"truncated fixed{width * 8} field {tag >> 3}", tag_at)
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise _Malformed(f"unsupported wire type {wt} in field {tag >> 3}", tag_at)
        append((tag >> 3, wt, value, tag_at, pos))
    return out


def _expect(wt: int, want: int, num: int, message: str, at: int) -> None:
    if wt != want:
        raise _Malformed(f"wrong wire type {wt} for {message} field {num} (want {want})", at)


def _packed(data: bytes, pos: int, end: int) -> list[int]:
    """Decode packed varints; one C-speed pass when every value fits in one byte."""
    chunk = data[pos:end]
    if not chunk or max(chunk) < 0x80:
        return list(chunk)
    out: list[int] = []
    append = out.append
    while pos < end:
        v, pos = _varint(data, pos, end)
        append(v)
    return out


# -- decoding -----------------------------------------------------------------------------


class _Span(NamedTuple):
    """A length-delimited payload data[start:end] and the offset of its field tag."""

    start: int
    end: int
    tag: int


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.spans: dict[int, list[_Span]] = {
            n: [] for n in (_P_SAMPLE_TYPE, _P_SAMPLE, _P_MAPPING, _P_LOCATION, _P_FUNCTION, _P_STRINGS)
        }
        self.time_nanos: tuple[int, int] | None = None
        self.strings: list[str] = []
        self.funcs: dict[int, tuple[str, str]] = {}
        self.locs: dict[int, tuple[Frame, ...]] = {}
        self.label_cache: dict[bytes, tuple[str, str]] = {}
        # A few bytes can name a location of many lines many times over: cap how far the
        # stacks may expand (real profiles stay far below, at a few frames per byte).
        self.frame_budget = 16 * len(data) + (1 << 16)

    def snapshot(self, source: str) -> Snapshot:
        if self.data[:2] == b"\x1f\x8b":
            raise _Malformed("input is still gzip-compressed", 0)
        # One pass collects the top-level spans: strings must be decoded before anything
        # that points into them, and Go writes the string table last.
        self._scan_profile()
        self.strings = [self._text(s) for s in self.spans[_P_STRINGS]]
        profile, value_index = self._profile_kind()
        for s in self.spans[_P_FUNCTION]:
            self._function(s)
        for s in self.spans[_P_LOCATION]:
            self._location(s)
        # Every frame of the profile is in some location: enough to date the runtime, whose
        # version decides a few state strings.
        version = infer_go_version(self.locs.values())
        table = GoroutineTable(aggregated=True)
        self._samples(table, profile, value_index, version_minor(version))
        snap = Snapshot(
            source=source,
            format="debug=0",
            profile=profile,
            table=table,
            time=self._time(),
            go_version=version,
        )
        snap.origin = self._origin()
        return snap

    def _origin(self) -> Origin | None:
        """The program's binary and build id: runtime/pprof writes the main executable's
        mapping first (from /proc/self/maps), with the ELF GNU build id it reads from it."""
        if not self.spans[_P_MAPPING]:
            return None
        s = self.spans[_P_MAPPING][0]
        m = self._ints(s, "Mapping", (_M_FILENAME, _M_BUILD_ID))
        binary = self._str(m.get(_M_FILENAME, 0), s.tag) or None
        build_id = self._str(m.get(_M_BUILD_ID, 0), s.tag) or None
        if binary is None and build_id is None:
            return None
        return Origin(binary=binary, build_id=build_id)

    def _scan_profile(self) -> None:
        spans = self.spans
        for num, wt, value, tag, end in _fields(self.data, 0, len(self.data)):
            target = spans.get(num)
            if target is not None:
                _expect(wt, _LEN, num, "Profile", tag)
                target.append(_Span(value, end, tag))
            elif num == _P_TIME:
                _expect(wt, _VARINT, num, "Profile", tag)
                self.time_nanos = (_signed(value), tag)

    def _text(self, s: _Span) -> str:
        return self.data[s.start : s.end].decode("utf-8", "replace")

    def _str(self, index: int, at: int) -> str:
        if 0 <= index < len(self.strings):
            return self.strings[index]
        raise _Malformed(f"string index {index} out of range ({len(self.strings)} strings)", at)

    def _ints(self, s: _Span, message: str, wanted: tuple[int, ...]) -> dict[int, int]:
        """The varint fields `wanted` of a small message (last one wins, as in protobuf)."""
        out: dict[int, int] = {}
        for num, wt, value, tag, _ in _fields(self.data, s.start, s.end):
            if num in wanted:
                _expect(wt, _VARINT, num, message, tag)
                out[num] = value
        return out

    def _profile_kind(self) -> tuple[Profile, int]:
        """The profile's name from sample_type, and which sample value counts goroutines."""
        types = self.spans[_P_SAMPLE_TYPE]
        if not types:
            raise _Malformed("missing sample_type (not a pprof profile?)", len(self.data))
        names = [self._str(self._ints(s, "ValueType", (_VT_TYPE,)).get(_VT_TYPE, 0), s.tag) for s in types]
        for i, name in enumerate(names):
            if name == "goroutine":
                return "goroutine", i
            if name == "goroutineleak":
                return "goroutineleak", i
        kind = _OTHER_PROFILES.get(names[0], names[0])
        raise _Malformed(f'a "{kind}" profile, not a goroutine profile', types[0].tag)

    def _function(self, s: _Span) -> None:
        f = self._ints(s, "Function", (_F_ID, _F_NAME, _F_FILE))
        name = self._str(f.get(_F_NAME, 0), s.tag)
        self.funcs[f.get(_F_ID, 0)] = (name, self._str(f.get(_F_FILE, 0), s.tag))

    def _location(self, s: _Span) -> None:
        lid = address = 0
        frames: list[Frame] = []
        for num, wt, value, tag, end in _fields(self.data, s.start, s.end):
            if num == _LOC_ID:
                _expect(wt, _VARINT, num, "Location", tag)
                lid = value
            elif num == _LOC_ADDRESS:
                _expect(wt, _VARINT, num, "Location", tag)
                address = value
            elif num == _LOC_LINE:
                _expect(wt, _LEN, num, "Location", tag)
                frames.append(self._line(_Span(value, end, tag)))
        if not frames:
            # Unsymbolized: keep the address so the stack still tells samples apart.
            frames.append(Frame(f"0x{address:x}", "", 0))
        self.locs[lid] = tuple(frames)

    def _line(self, s: _Span) -> Frame:
        f = self._ints(s, "Line", (_LINE_FUNCTION, _LINE_LINE))
        fn = self.funcs.get(f.get(_LINE_FUNCTION, 0))
        if fn is None:
            raise _Malformed(f"line refers to missing function id {f.get(_LINE_FUNCTION, 0)}", s.tag)
        return Frame(fn[0], fn[1], _signed(f.get(_LINE_LINE, 0)))

    def _samples(
        self, table: GoroutineTable, profile: Profile, value_index: int, go_minor: int | None
    ) -> None:
        leaked = profile == "goroutineleak"
        stacks: dict[bytes | tuple[int, ...], tuple[Stack, str]] = {}
        headers: dict[tuple[int, tuple[tuple[str, str], ...]], Header] = {}
        for s in self.spans[_P_SAMPLE]:
            loc_key, packed, values, labels = self._sample(s)
            cached = stacks.get(loc_key)
            if cached is None:
                ids = _packed(self.data, packed.start, packed.end) if packed else loc_key
                assert not isinstance(ids, bytes)
                stack = self._stack(ids, s.tag)
                cached = stacks[loc_key] = (stack, infer_state(stack.frames, go_minor))
            stack, state = cached
            hkey = (id(stack), tuple(labels.items()))
            header = headers.get(hkey)
            if header is None:
                header = headers[hkey] = Header.make(state, leaked=leaked, labels=labels)
            if value_index >= len(values):
                raise _Malformed(f"sample has {len(values)} values, wanted {value_index + 1}", s.tag)
            table.add(header, stack, count=values[value_index])

    def _sample(self, s: _Span) -> tuple[bytes | tuple[int, ...], _Span | None, list[int], dict[str, str]]:
        """A sample's stack cache key, its packed location ids, values and labels.

        Go writes the location ids packed: their raw bytes are the key, decoded only on a
        cache miss. Anything else (unpacked, several packed runs) is decoded here and keyed
        as a tuple of ids.
        """
        data = self.data
        packed: list[_Span] = []
        unpacked: list[int] = []
        values: list[int] = []
        labels: dict[str, str] = {}
        label_cache = self.label_cache
        for num, wt, value, tag, end in _fields(data, s.start, s.end):
            if num == _S_LOCATION:
                if wt == _LEN:
                    packed.append(_Span(value, end, tag))
                else:
                    _expect(wt, _VARINT, num, "Sample", tag)
                    unpacked.append(value)
            elif num == _S_VALUE:
                if wt == _LEN:
                    values.extend(_signed(v) for v in _packed(data, value, end))
                else:
                    _expect(wt, _VARINT, num, "Sample", tag)
                    values.append(_signed(value))
            elif num == _S_LABEL:
                _expect(wt, _LEN, num, "Sample", tag)
                # Label messages repeat verbatim across samples: decode each once.
                raw = data[value:end]
                pair = label_cache.get(raw)
                if pair is None:
                    pair = label_cache[raw] = self._label(value, end, tag)
                labels[pair[0]] = pair[1]
        if len(packed) == 1 and not unpacked:
            return data[packed[0].start : packed[0].end], packed[0], values, labels
        ids = [i for p in packed for i in _packed(data, p.start, p.end)] + unpacked
        return tuple(ids), None, values, labels

    def _stack(self, ids: list[int] | tuple[int, ...], tag: int) -> Stack:
        frames: list[Frame] = []
        locs = self.locs
        for lid in ids:
            loc = locs.get(lid)
            if loc is None:
                raise _Malformed(f"sample refers to missing location id {lid}", tag)
            frames.extend(loc)
        self.frame_budget -= len(frames)
        if self.frame_budget < 0:
            raise _Malformed("stacks expand to implausibly many frames", tag)
        return Stack(frames=tuple(frames))

    def _label(self, start: int, end: int, at: int) -> tuple[str, str]:
        key = string = num = 0
        for fnum, wt, value, tag, _ in _fields(self.data, start, end):
            if fnum in (_L_KEY, _L_STR, _L_NUM):
                _expect(wt, _VARINT, fnum, "Label", tag)
                if fnum == _L_KEY:
                    key = value
                elif fnum == _L_STR:
                    string = value
                else:
                    num = _signed(value)
        # Goroutine labels are strings; a numeric label (other producers) keeps its number.
        text = str(num) if num and not string else self._str(string, at)
        return self._str(key, at), text

    def _time(self) -> _dt.datetime | None:
        return _time(self.time_nanos)
