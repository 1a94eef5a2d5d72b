//! The debug=2 line scanner: a line-for-line twin of `src/grprof/formats/_scan.py`.
//!
//! Every rule here mirrors the Python reference exactly (tests/test_scan_equivalence.py
//! compares both on fixtures, every chunking, truncations and generated input); when the
//! two disagree the Python is right and this file is the bug. No rule may panic on input.
//!
//! One difference of form: the Python scanner hands over each distinct stack's text, this
//! one parses it (`stacks::Builder`, the twin of `traceback.parse_stacks`) when it first
//! meets it and keeps frame ids, never the text, and knows a stack by a 128-bit hash of its
//! key rather than by the key. A dump with 100,000 distinct stacks holds some 140 MB of
//! texts and 120 MB of keys, which a streamed scan must not keep (docs/performance.md,
//! "Streaming the scan without stack texts").

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::os::raw::c_long;

use memchr::memmem::Finder;
use memchr::{memchr, memchr_iter, memrchr};
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64};

use crate::pipeline::StackParser;
use crate::stacks;

const PROLOGUE_LINES: usize = 64;
/// Lines between goroutine blocks that do not end the dump: runtime complaints, and the
/// separator of the per-M sections GOTRACEBACK=crash prints after the goroutines.
const NOISE: [&[u8]; 5] = [
    b"-----",
    b"[signal ",
    b"runtime: ",
    b"non-Go function",
    b"goroutine running on other thread",
];
/// Signal headers open each per-M section of a crash dump; anywhere else they open a new dump.
const CRASH_SECTION: [&[u8]; 3] = [b"SIG", b"PC=", b"signal arrived"];
/// Calls that print a dump (`_scan.DUMPER_CALLS`): a stack holding one is the goroutine
/// that wrote the dump, which `formats.split_dumps` looks for.
const DUMPER_CALLS: [&[u8]; 2] = [b"runtime/pprof.writeGoroutineStacks(", b"runtime.Stack("];

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    Between,
    Block,
    /// Skipping a block up to the next blank line (`runtime stack:`, a goroutine repeated
    /// in a crash section).
    Skip,
}

/// Keys here are already hashes (xxh3) or goroutine ids; a multiply spreads the ids.
#[derive(Default)]
pub struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
    fn write_u128(&mut self, x: u128) {
        // A 128-bit key is a hash already: its low half spreads as well as the whole.
        self.write_u64(x as u64);
    }
}

type Fast = BuildHasherDefault<MulHasher>;

/// Byte strings interned in first-seen order, looked up by slice without allocating.
#[derive(Default)]
struct Interner {
    by_hash: HashMap<u64, Vec<u32>, Fast>,
    keys: Vec<Vec<u8>>,
}

impl Interner {
    /// (index, whether it is new).
    fn intern(&mut self, key: &[u8]) -> (usize, bool) {
        let slot = self.by_hash.entry(xxh3_64(key)).or_default();
        for &i in slot.iter() {
            if self.keys[i as usize] == key {
                return (i as usize, false);
            }
        }
        let i = self.keys.len();
        slot.push(i as u32);
        self.keys.push(key.to_vec());
        (i, true)
    }
}

/// Ids below this are kept as bits (at most 8 MiB of them), the rest in a hash set.
const ID_BITS: u64 = 1 << 26;

/// The goroutine ids of the current dump. Go numbers goroutines from 1 up, so a bitmap up to
/// the largest id is 1 bit per id where a hash set takes some 18 bytes: 150 KB instead of
/// 18 MB for a million goroutines.
#[derive(Default)]
struct IdSet {
    bits: Vec<u64>,
    /// The words of `bits` set since the last `clear`, which zeroes only those: input made
    /// of many small dumps with large ids must not cost a bitmap's worth each.
    touched: Vec<u32>,
    big: HashSet<u64, Fast>,
}

impl IdSet {
    fn contains(&self, id: u64) -> bool {
        if id < ID_BITS {
            let w = (id / 64) as usize;
            w < self.bits.len() && self.bits[w] & (1 << (id % 64)) != 0
        } else {
            self.big.contains(&id)
        }
    }

    fn insert(&mut self, id: u64) {
        if id < ID_BITS {
            let w = (id / 64) as usize;
            if w >= self.bits.len() {
                self.bits.resize(w + 1, 0);
            }
            if self.bits[w] == 0 {
                self.touched.push(w as u32);
            }
            self.bits[w] |= 1 << (id % 64);
        } else {
            self.big.insert(id);
        }
    }

    fn clear(&mut self) {
        for w in self.touched.drain(..) {
            self.bits[w as usize] = 0;
        }
        self.big.clear();
    }
}

/// A `\n`-joined list built in a reused buffer (a part may be empty, so count parts).
#[derive(Default)]
struct Joined {
    buf: Vec<u8>,
    parts: usize,
}

impl Joined {
    #[inline]
    fn push(&mut self, s: &[u8]) {
        if self.parts > 0 {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(s);
        self.parts += 1;
    }
    fn clear(&mut self) {
        self.buf.clear();
        self.parts = 0;
    }
}

/// What `finish()` hands to Python; arrays as native-endian bytes.
#[derive(Default)]
pub struct ScanOutput {
    pub ids: Vec<u8>,
    pub header: Vec<u8>,
    pub stack: Vec<u8>,
    pub creator: Vec<u8>,
    pub argkey: Vec<u8>,
    pub header_texts: Vec<Vec<u8>>,
    /// The distinct stack texts, parsed: text i (the `stack` column's i) is
    /// `stacks.index[i]`, with its `dangling` flag.
    pub stacks: stacks::Parsed,
    /// Per distinct stack text, 1 when it holds one of `DUMPER_CALLS`.
    pub dumper: Vec<u8>,
    pub ancestors: Vec<(usize, Vec<u8>)>,
    pub dumps: Vec<(usize, Vec<u8>)>,
    pub size: u64,
    pub unterminated: bool,
    pub eof_in_block: bool,
    pub eof_in_dump: bool,
}

pub struct Scanner {
    out: ScanOutput,
    rows: usize,
    /// A goroutine or creator id past i64: Python raises OverflowError storing it.
    carry: Vec<u8>,
    headers: Interner,
    /// Hash of a distinct stack's key -> its index. A 128-bit hash in place of the key (the
    /// key is as long as the text): two of a million distinct keys collide with odds of
    /// 1 in 10^26; the seed is drawn per scanner, so input made to collide for one seed
    /// does not collide for the next.
    stack_ix: HashMap<u128, u32, Fast>,
    seed: u64,
    parser: StackParser,
    prologue: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    seen: IdSet,
    state: State,
    gid: u64,
    htext: Vec<u8>,
    raw: Joined,
    key: Joined,
    args: Joined,
    creator: Option<u64>,
    anc: Option<Joined>,
    anc_buf: Joined,
    /// A line that ends the block unless an indented line follows (see `line`).
    maybe: Option<Vec<u8>>,
    maybe_buf: Vec<u8>,
    /// A `-----` separator was seen: the dump continues with per-M crash sections.
    crash: bool,
    /// The last text between blocks was `-----`, or a signal header right after it.
    after_sep: bool,
    in_goroutine: Finder<'static>,
    /// `DUMPER_CALLS`' searchers, built once: `memmem::find` builds one per call, which took
    /// a tenth of the scan of a dump whose 20,000 stacks are all distinct.
    dumper_calls: [Finder<'static>; 2],
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn rstrip(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[inline]
fn lstrip_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

#[inline]
fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// `rax    0x0`, `r10    0xc000012345`: register dumps in crash output.
pub fn is_register_line(s: &[u8]) -> bool {
    let Some(sp) = memchr(b' ', s) else {
        return false;
    };
    if !(1..=7).contains(&sp)
        || !s[..sp]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return false;
    }
    let mut v = &s[sp..];
    while let [b' ', rest @ ..] = v {
        v = rest;
    }
    v.len() > 2
        && v.starts_with(b"0x")
        && v[2..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The id if `s` is a goroutine header line (`goroutine 12 [` / `goroutine 12 gp=`).
pub fn header_id(s: &[u8]) -> Option<u64> {
    let digits = s.strip_prefix(b"goroutine ")?;
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    // Python's `i > 29` with i = 10 + n: at most 19 digits, which always fit a u64.
    if n == 0 || n > 19 {
        return None;
    }
    let rest = &digits[n..];
    if !(rest.starts_with(b" [") || rest.starts_with(b" gp=")) {
        return None;
    }
    // Ids past i64 are not ids Go prints: not a header (Python: `gid < 1 << 63`).
    let gid = parse_digits(&digits[..n]);
    (gid < 1 << 63).then_some(gid)
}

/// Calls `f` with each `\n`-terminated line of `buf` (without the `\n`); returns where the
/// unterminated rest starts. Lines average ~50 bytes, so a memchr call per line costs more
/// than a newline bitmap built 64 bytes at a time (3x the speed on a 30 MB dump).
#[inline]
fn for_each_line(buf: &[u8], mut f: impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    let mut base = 0;
    let mut blocks = buf.chunks_exact(64);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 64]>::try_from(block) else {
            break;
        };
        let mut m = newline_mask(block);
        while m != 0 {
            let nl = base + m.trailing_zeros() as usize;
            f(&buf[start..nl]);
            start = nl + 1;
            m &= m - 1;
        }
        base += 64;
    }
    for nl in memchr_iter(b'\n', blocks.remainder()) {
        f(&buf[start..base + nl]);
        start = base + nl + 1;
    }
    start
}

/// Bit i set when block[i] is a newline.
#[cfg(target_arch = "x86_64")]
#[inline]
fn newline_mask(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let p = block.as_ptr().cast::<__m128i>();
    // SAFETY: SSE2 is part of x86_64; the four unaligned 16-byte loads stay inside `block`.
    unsafe {
        let nl = _mm_set1_epi8(b'\n' as i8);
        let m = |i: usize| {
            u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(p.add(i)), nl)) as u16)
        };
        m(0) | m(1) << 16 | m(2) << 32 | m(3) << 48
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn newline_mask(block: &[u8; 64]) -> u64 {
    memchr_iter(b'\n', block).fold(0u64, |m, i| m | (1 << i))
}

/// Where ` fp=` starts (GOTRACEBACK=system frame registers). Most file lines have no `=`
/// at all, and one memchr for it is cheaper than a substring search per line.
#[inline]
fn find_fp(s: &[u8]) -> Option<usize> {
    memchr_iter(b'=', s)
        .find(|&i| i >= 3 && &s[i - 3..i] == b" fp")
        .map(|i| i - 3)
}

/// ASCII digits (at most 19) as a number.
fn parse_digits(d: &[u8]) -> u64 {
    d.iter().fold(0u64, |v, &c| {
        v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
    })
}

impl Scanner {
    pub fn new() -> Self {
        Scanner {
            out: ScanOutput::default(),
            rows: 0,
            carry: Vec::new(),
            headers: Interner::default(),
            stack_ix: HashMap::default(),
            seed: RandomState::new().build_hasher().finish(),
            parser: StackParser::default(),
            prologue: VecDeque::with_capacity(PROLOGUE_LINES + 1),
            spare: Vec::new(),
            seen: IdSet::default(),
            state: State::Outside,
            gid: 0,
            htext: Vec::new(),
            raw: Joined::default(),
            key: Joined::default(),
            args: Joined::default(),
            creator: None,
            anc: None,
            anc_buf: Joined::default(),
            maybe: None,
            maybe_buf: Vec::new(),
            crash: false,
            after_sep: false,
            in_goroutine: Finder::new(b" in goroutine ").into_owned(),
            dumper_calls: DUMPER_CALLS.map(|d| Finder::new(d).into_owned()),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.out.size += chunk.len() as u64;
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(nl) = memchr(b'\n', rest) else {
                self.carry.extend_from_slice(rest);
                return;
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&rest[..nl]);
            self.line(&line);
            line.clear();
            self.carry = line;
            rest = &rest[nl + 1..];
        }
        let start = for_each_line(rest, |line| self.line(line));
        self.carry.extend_from_slice(&rest[start..]);
    }

    pub fn finish(&mut self) -> ScanOutput {
        let carry = std::mem::take(&mut self.carry);
        let line = rstrip(&carry);
        self.resolve_maybe((!carry.is_empty()).then_some(line));
        // Before the last, cut line: what a partial line looks like must not decide it.
        self.out.eof_in_dump = self.state != State::Outside;
        if !carry.is_empty() {
            self.out.unterminated = true;
            if self.state == State::Block && !line.is_empty() && header_id(line).is_none() {
                // A line cut by the end of input is the partial goroutine's last line,
                // whatever it looks like.
                self.raw.push(line);
                self.key.push(lstrip_ws(line));
            } else {
                self.line(line);
            }
        }
        self.out.eof_in_block = self.state == State::Block;
        if self.state == State::Block {
            self.end_block();
        }
        // The interners are gone before the result is handed to Python, not when the scanner
        // is dropped.
        self.headers = Interner::default();
        self.stack_ix = HashMap::default();
        self.seen = IdSet::default();
        self.out.stacks = std::mem::take(&mut self.parser).finish();
        std::mem::take(&mut self.out)
    }

    fn line(&mut self, line: &[u8]) {
        let line = rstrip(line);
        if self.maybe.is_some() {
            self.resolve_maybe(Some(line));
        }
        if self.state == State::Block {
            if line.is_empty() {
                self.end_block();
                self.state = State::Between;
                return;
            }
            if self.body_line(line) {
                return;
            }
            if self.anc.is_none() && header_id(line).is_none() {
                // Text that is not a frame ends the dump, unless an indented location follows
                // it: a C frame named by a cgo symbolizer (`clock_nanosleep` / `\tpc=0x...`).
                let mut buf = std::mem::take(&mut self.maybe_buf);
                buf.clear();
                buf.extend_from_slice(line);
                self.maybe = Some(buf);
                return;
            }
            self.end_block();
            self.state = State::Between;
        }
        self.between(line);
    }

    fn resolve_maybe(&mut self, next: Option<&[u8]>) {
        let Some(maybe) = self.maybe.take() else {
            return;
        };
        if next.and_then(|n| n.first()).is_some_and(|&c| is_ws(c)) {
            self.raw.push(&maybe);
            self.key.push(&maybe);
        } else {
            self.end_block();
            self.state = State::Between;
            self.between(&maybe);
        }
        self.maybe_buf = maybe;
    }

    /// Takes a (non-empty) line of the current goroutine's stack; false if it is not one.
    #[inline]
    fn body_line(&mut self, line: &[u8]) -> bool {
        let Some(&first) = line.first() else {
            return false;
        };
        let last = line[line.len() - 1];
        if is_ws(first) {
            // A file line, or an indented note such as "stack unavailable".
            if let Some(anc) = self.anc.as_mut() {
                anc.push(line);
                return true;
            }
            self.raw.push(line);
            let s = lstrip_ws(line);
            self.key.push(match find_fp(s) {
                Some(p) => &s[..p],
                None => s,
            });
            return true;
        }
        if line.starts_with(b"[originating from goroutine ") {
            let anc = self.anc.get_or_insert_with(|| {
                let mut j = std::mem::take(&mut self.anc_buf);
                j.clear();
                j
            });
            anc.push(line);
            return true;
        }
        if let Some(anc) = self.anc.as_mut() {
            if last == b')' || line.starts_with(b"created by ") || line.starts_with(b"...") {
                anc.push(line);
                return true;
            }
            return false;
        }
        if last == b')' {
            self.raw.push(line);
            // No `(`: Python's rfind gives -1, so line[:-1] and line[-1:].
            let p = memrchr(b'(', line).unwrap_or(line.len() - 1);
            self.key.push(&line[..p]);
            self.args.push(&line[p..]);
            return true;
        }
        if line.starts_with(b"created by ") {
            self.raw.push(line);
            match self.in_goroutine.find(line) {
                None => self.key.push(line),
                Some(p) => {
                    self.key.push(&line[..p]);
                    let tail = &line[p + 14..];
                    if !tail.is_empty() && tail.len() < 20 && tail.iter().all(u8::is_ascii_digit) {
                        let creator = parse_digits(tail);
                        if creator < 1 << 63 {
                            self.creator = Some(creator);
                        }
                    }
                }
            }
            return true;
        }
        if line.starts_with(b"...") || line.starts_with(b"non-Go function") {
            // Elided frames; a cgo frame.
            self.raw.push(line);
            self.key.push(line);
            return true;
        }
        false
    }

    /// A line outside any goroutine block: a header, crash noise, or other text.
    fn between(&mut self, line: &[u8]) {
        let state = self.state;
        let Some(&first) = line.first() else {
            if state == State::Skip {
                self.state = State::Between;
            }
            return;
        };
        if state == State::Skip {
            return;
        }
        if let Some(gid) = header_id(line) {
            let repeated = gid != 0 && self.seen.contains(gid);
            if state == State::Outside || (repeated && !self.crash) {
                self.start_dump();
            } else if repeated {
                // Per-M sections of GOTRACEBACK=crash repeat goroutines running on that M.
                self.state = State::Skip;
                return;
            }
            self.seen.insert(gid);
            self.after_sep = false;
            // What a later dump's prologue holds starts after this block.
            self.spare.extend(self.prologue.drain(..));
            self.gid = gid;
            // No `[` (a `gp=` header cut short): Python's line[-1:].
            let at = memchr(b'[', line).unwrap_or(line.len() - 1);
            self.htext.clear();
            self.htext.extend_from_slice(&line[at..]);
            self.state = State::Block;
            return;
        }
        if state == State::Between {
            if line == b"runtime stack:" {
                self.state = State::Skip;
                return;
            }
            let section = self.after_sep && CRASH_SECTION.iter().any(|p| line.starts_with(p));
            if is_ws(first)
                || NOISE.iter().any(|p| line.starts_with(p))
                || is_register_line(line)
                || section
            {
                // Crash noise stays in the dump; a signal header not right after `-----` opens
                // the next dump (the `SIGQUIT: quit` of the next crash in the same log).
                let sep = line.starts_with(b"-----");
                self.crash = self.crash || sep;
                self.after_sep = sep || section;
            } else {
                self.state = State::Outside;
            }
        }
        self.push_prologue(line);
    }

    fn push_prologue(&mut self, line: &[u8]) {
        let mut buf = if self.prologue.len() >= PROLOGUE_LINES {
            self.prologue.pop_front().unwrap_or_default()
        } else {
            self.spare.pop().unwrap_or_default()
        };
        buf.clear();
        buf.extend_from_slice(line);
        self.prologue.push_back(buf);
    }

    fn start_dump(&mut self) {
        let mut text = Vec::new();
        for (i, l) in self.prologue.iter().enumerate() {
            if i > 0 {
                text.push(b'\n');
            }
            text.extend_from_slice(l);
        }
        self.out.dumps.push((self.rows, text));
        self.spare.extend(self.prologue.drain(..));
        self.seen.clear();
        self.crash = false;
        self.after_sep = false;
    }

    fn end_block(&mut self) {
        let row = self.rows;
        // header_id and the creator rule keep ids below 2^63.
        let gid = self.gid as i64;
        let creator = self.creator.map_or(-1, |c| c as i64);
        let out = &mut self.out;
        out.ids.extend_from_slice(&gid.to_ne_bytes());
        let (hi, new) = self.headers.intern(&self.htext);
        if new {
            out.header_texts.push(self.htext.clone());
        }
        out.header.extend_from_slice(&(hi as c_long).to_ne_bytes());
        let next = self.stack_ix.len() as u32;
        let h = xxh3_128_with_seed(&self.key.buf, self.seed);
        let si = *self.stack_ix.entry(h).or_insert(next);
        if si == next {
            let raw = &self.raw.buf;
            self.parser.add(raw);
            let dumper = self.dumper_calls.iter().any(|d| d.find(raw).is_some());
            out.dumper.push(u8::from(dumper));
        }
        out.stack.extend_from_slice(&(si as c_long).to_ne_bytes());
        out.creator.extend_from_slice(&creator.to_ne_bytes());
        out.argkey
            .extend_from_slice(&xxh3_64(&self.args.buf).to_ne_bytes());
        if let Some(anc) = self.anc.as_ref() {
            out.ancestors.push((row, anc.buf.clone()));
        }
        self.rows += 1;
        self.reset_block();
    }

    fn reset_block(&mut self) {
        self.raw.clear();
        self.key.clear();
        self.args.clear();
        self.creator = None;
        if let Some(anc) = self.anc.take() {
            self.anc_buf = anc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{IdSet, ID_BITS};

    #[test]
    fn id_set() {
        let mut s = IdSet::default();
        for id in [0, 1, 63, 64, 1_000_000, ID_BITS - 1, ID_BITS, u64::MAX >> 1] {
            assert!(!s.contains(id), "{id}");
            s.insert(id);
            assert!(s.contains(id), "{id}");
        }
        assert!(!s.contains(2) && !s.contains(65) && !s.contains(ID_BITS + 1));
        s.clear();
        for id in [0, 1, 63, 64, 1_000_000, ID_BITS - 1, ID_BITS, u64::MAX >> 1] {
            assert!(!s.contains(id), "{id} after clear");
        }
        assert!(s.touched.is_empty());
        s.insert(5);
        assert!(s.contains(5) && !s.contains(1_000_000));
    }
}
