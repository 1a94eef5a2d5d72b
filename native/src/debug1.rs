//! debug=1: the Rust twin of `grprof.formats.debug1._Reader` (the text goroutine and
//! goroutineleak profiles, `N @ 0x...` records with `#\t0xPC\tfunc+0xOFF\tfile:line` frames).
//!
//! It reads the lines with the same grammar as the Python regular expressions (`_HEADER`,
//! `_COUNT`, `_FRAME`, `_LABELS`, fullmatch semantics, ASCII whitespace as Python's bytes
//! methods see it), stops at the same line for the same reason, and returns plain data:
//! distinct frames (interned by value), each profile's distinct stacks (frame indexes, in
//! order of first use), one row per block (stack, label line, count, hidden runtime PCs), the
//! distinct `# labels:` lines (parsed by the Python side, which owns Go's quoting rules), and
//! the first error as (kind, offset, line). tests/test_debug1_equivalence.py holds the two
//! parsers to the same snapshots and the same errors.

use std::borrow::Cow;

use crate::pprof::FxMap;

/// What the first line that did not parse was expected to be (`debug1._EXPECT_*`).
pub enum Expected {
    Header,
    Block,
    Frame,
    First,
}

pub enum Error {
    /// `expected ..., found ...`: what, and the line (start, end; no final `\r`).
    Expected(Expected, usize, usize),
    /// A count over int64: its digits, the line's offset.
    CountRange(String, usize),
}

/// A `# labels: ` line: the line (start, end), where the label set starts in it (the end of
/// the `# labels: ` match), and whether it is the last line. Distinct lines only, first use
/// first.
pub struct LabelLine {
    pub start: usize,
    pub end: usize,
    pub brace: usize,
    /// Whether it is the input's last line (nothing follows it, not even a newline).
    pub last: bool,
}

/// The hidden runtime PCs of a block: none (or none before the first frame), a tuple of
/// PCs (an index into `Parsed::hidden`), or PCs past 64 bits, left to the Python side.
pub const HIDDEN_NONE: i64 = -1;
pub const HIDDEN_PYTHON: i64 = -2;

/// A byte range of the input.
pub type Span = (usize, usize);

#[derive(Default)]
pub struct Profile {
    pub leak: bool,
    pub total: u64,
    pub cut: bool,
    pub stack_frames: Vec<u32>,
    pub stack_offsets: Vec<usize>,
    pub row_stack: Vec<i64>,
    pub row_labels: Vec<i64>,
    pub row_count: Vec<i64>,
    pub row_hidden: Vec<i64>,
    /// Rows whose hidden PCs the Python side computes: (row, count line's PCs, first frame line).
    pub fallback: Vec<(usize, Span, Span)>,
}

/// How many of the highest function entries `Parsed::code` keeps (`debug1.CODE_POINTS`).
pub const CODE_POINTS: usize = 8;

pub struct Parsed {
    pub frames: Vec<(String, String, u64)>,
    /// Goroutine start functions (each block's last frame) at the highest entry addresses
    /// (PC − offset), highest first, the first block naming a function winning: where this
    /// build's code sits (`Origin.code`).
    pub code: Vec<(u64, String)>,
    pub profiles: Vec<Profile>,
    pub labels: Vec<LabelLine>,
    pub hidden: Vec<Vec<u64>>,
    pub error: Option<Error>,
}

#[inline]
fn is_st(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Python's `bytes.isspace` set (and `\s` of a bytes pattern).
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[inline]
fn skip_st(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_st(s[i]) {
        i += 1;
    }
    i
}

#[inline]
fn run_of(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < s.len() && f(s[i]) {
        i += 1;
    }
    i
}

fn all_st(s: &[u8]) -> bool {
    s.iter().all(|c| is_st(*c))
}

fn digits_value(d: &[u8]) -> u128 {
    d.iter().fold(0u128, |v, c| v * 10 + (c - b'0') as u128)
}

/// `[ \t]*(goroutine|goroutineleak) profile: total (\d{1,19})[ \t]*`: (leak, total).
fn header(line: &[u8]) -> Option<(bool, u64)> {
    let i = skip_st(line, 0);
    let rest = &line[i..];
    let (leak, rest) = if let Some(r) = rest.strip_prefix(b"goroutine profile: total ") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix(b"goroutineleak profile: total ") {
        (true, r)
    } else {
        return None;
    };
    let d = run_of(rest, 0, |c| c.is_ascii_digit());
    if d == 0 || d > 19 || !all_st(&rest[d..]) {
        return None;
    }
    Some((leak, digits_value(&rest[..d]) as u64))
}

/// `[ \t]*(\d{1,20}) @((?:[ \t]+0x[0-9a-fA-F]+)*)[ \t]*`: (count digits, PCs (start, end)).
fn count_line(line: &[u8]) -> Option<(&[u8], (usize, usize))> {
    let i = skip_st(line, 0);
    let d = run_of(line, i, |c| c.is_ascii_digit());
    if d == i || d - i > 20 || !line[d..].starts_with(b" @") {
        return None;
    }
    let start = d + 2;
    let mut end = start;
    loop {
        let w = skip_st(line, end);
        if w > end && line[w..].starts_with(b"0x") {
            let h = run_of(line, w + 2, |c| c.is_ascii_hexdigit());
            if h > w + 2 {
                end = h;
                continue;
            }
        }
        break;
    }
    if !all_st(&line[end..]) {
        return None;
    }
    Some((&line[i..d], (start, end)))
}

/// `[ \t]*#[ \t]+0x([0-9a-fA-F]+)(?:[ \t]+(\S+)\+0x[0-9a-fA-F]+[ \t]+(.*):(\d{1,19}))?[ \t]*`:
/// the frame it names, as `debug1._Reader.frame` makes it.
fn frame_line(line: &[u8]) -> Option<(Cow<'_, str>, Cow<'_, str>, u64)> {
    let i = skip_st(line, 0);
    if line.get(i) != Some(&b'#') {
        return None;
    }
    let w = skip_st(line, i + 1);
    if w == i + 1 || !line[w..].starts_with(b"0x") {
        return None;
    }
    let h = run_of(line, w + 2, |c| c.is_ascii_hexdigit());
    if h == w + 2 {
        return None;
    }
    if all_st(&line[h..]) {
        let pc = std::str::from_utf8(&line[w + 2..h])
            .unwrap()
            .to_ascii_lowercase();
        return Some((Cow::Owned(format!("0x{pc}")), Cow::Borrowed(""), 0));
    }
    // The function and its offset: a run of non-space bytes ending in `+0x<hex>`, then [ \t].
    let t = skip_st(line, h);
    if t == h {
        return None;
    }
    let te = run_of(line, t, |c| !is_space(c));
    if te == t || te >= line.len() || !is_st(line[te]) {
        return None;
    }
    let token = &line[t..te];
    let plus = token.iter().rposition(|c| *c == b'+')?;
    let off = &token[plus + 1..];
    if plus == 0
        || off.len() < 3
        || !off.starts_with(b"0x")
        || !off[2..].iter().all(|c| c.is_ascii_hexdigit())
    {
        return None;
    }
    // The file and line: everything up to the last `:`, then 1 to 19 digits and [ \t]*.
    let r = skip_st(line, te);
    let rest = &line[r..];
    let colon = rest.iter().rposition(|c| *c == b':')?;
    let d = run_of(rest, colon + 1, |c| c.is_ascii_digit());
    if d == colon + 1 || d - colon - 1 > 19 || !all_st(&rest[d..]) {
        return None;
    }
    Some((
        String::from_utf8_lossy(&token[..plus]),
        String::from_utf8_lossy(&rest[..colon]),
        digits_value(&rest[colon + 1..d]) as u64,
    ))
}

/// A frame line's function and its entry (PC − offset; a line `frame_line` accepted), None
/// for a PC without symbol information, past 64 bits, or an offset past the PC.
fn code_point(line: &[u8]) -> Option<(&[u8], u64)> {
    let i = skip_st(line, 0) + 1;
    let w = skip_st(line, i);
    let h = run_of(line, w + 2, |c| c.is_ascii_hexdigit());
    let pc = hex_value(&line[w..h])?;
    let t = skip_st(line, h);
    let te = run_of(line, t, |c| !is_space(c));
    if te == t {
        return None;
    }
    let token = &line[t..te];
    let plus = token.iter().rposition(|c| *c == b'+')?;
    let off = hex_value(&token[plus + 1..])?;
    Some((&token[..plus], pc.checked_sub(off)?))
}

/// `int(x, 16)` of `0x<hex>`, when it fits in 64 bits.
fn hex_value(tok: &[u8]) -> Option<u64> {
    let h = &tok[2..];
    let h = &h[h.iter().position(|c| *c != b'0').unwrap_or(h.len())..];
    if h.len() > 16 {
        return None;
    }
    Some(h.iter().fold(0u64, |v, c| {
        (v << 4) | (*c as char).to_digit(16).unwrap() as u64
    }))
}

/// `debug1._hidden`: the count line's PCs before the first frame's return PC (its PC + 1, or
/// the PC itself for an inlined frame), left in `values`. Err(()) when a PC does not fit in
/// 64 bits.
fn hidden(pcs: &[u8], first_line: &[u8], values: &mut Vec<u64>) -> Result<bool, ()> {
    // The first frame line matched `frame_line`: its second token is `0x<hex>`.
    let i = skip_st(first_line, 0) + 1;
    let w = skip_st(first_line, i);
    let e = run_of(first_line, w + 2, |c| c.is_ascii_hexdigit());
    let first = hex_value(&first_line[w..e]).ok_or(())? as u128;
    values.clear();
    for tok in pcs.split(|c| is_st(*c)).filter(|t| !t.is_empty()) {
        values.push(hex_value(tok).ok_or(())?);
    }
    for want in [first + 1, first] {
        if let Some(k) = values.iter().position(|v| *v as u128 == want) {
            values.truncate(k);
            return Ok(true);
        }
    }
    Ok(false)
}

struct Block {
    row: usize,
    pcs: (usize, usize),
    first: Option<(usize, usize)>,
    /// The last frame line so far: the goroutine's start function once the block ends.
    last: Option<(usize, usize)>,
    frames: Vec<u32>,
}

struct Reader<'a> {
    data: &'a [u8],
    frames: Vec<(String, String, u64)>,
    frame_ids: FxMap<(Cow<'a, str>, Cow<'a, str>, u64), u32>,
    by_line: FxMap<&'a [u8], u32>,
    label_ids: FxMap<&'a [u8], i64>,
    labels: Vec<LabelLine>,
    hidden_ids: FxMap<Vec<u64>, i64>,
    hidden: Vec<Vec<u64>>,
    stack_ids: FxMap<Vec<u32>, i64>,
    code_lines: FxMap<&'a [u8], ()>,
    code: FxMap<String, u64>,
    code_order: Vec<String>,
    /// Buffers reused from block to block: a block's frames, its PCs.
    spare: Vec<u32>,
    pcs: Vec<u64>,
}

impl<'a> Reader<'a> {
    fn frame(&mut self, line: &'a [u8]) -> Option<u32> {
        if let Some(id) = self.by_line.get(line) {
            return Some(*id);
        }
        let key = frame_line(line)?;
        let id = match self.frame_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.frames.len() as u32;
                self.frames
                    .push((key.0.to_string(), key.1.to_string(), key.2));
                self.frame_ids.insert(key, id);
                id
            }
        };
        self.by_line.insert(line, id);
        Some(id)
    }

    /// A block's last frame: the function its goroutine started in, a physical one (a
    /// goroutine cannot start in an inlined call), so its entry is one address per build.
    fn note_code(&mut self, line: &'a [u8]) {
        if self.code_lines.insert(line, ()).is_some() {
            return;
        }
        if let Some((name, entry)) = code_point(line) {
            let name = String::from_utf8_lossy(name).into_owned();
            if !self.code.contains_key(&name) {
                self.code.insert(name.clone(), entry);
                self.code_order.push(name);
            }
        }
    }

    /// The block's stack interned in its profile, and its hidden PCs.
    fn end_block(&mut self, p: &mut Profile, mut b: Block) {
        if let Some(last) = b.last {
            let data = self.data;
            self.note_code(&data[last.0..last.1]);
        }
        let next = p.stack_offsets.len() as i64 - 1;
        let sid = match self.stack_ids.get(b.frames.as_slice()) {
            Some(s) => *s,
            None => {
                p.stack_frames.extend_from_slice(&b.frames);
                p.stack_offsets.push(p.stack_frames.len());
                self.stack_ids.insert(b.frames.clone(), next);
                next
            }
        };
        p.row_stack[b.row] = sid;
        if let (false, Some(first)) = (b.frames.is_empty(), b.first) {
            let pcs = &self.data[b.pcs.0..b.pcs.1];
            let mut v = std::mem::take(&mut self.pcs);
            p.row_hidden[b.row] = match hidden(pcs, &self.data[first.0..first.1], &mut v) {
                Err(()) => {
                    p.fallback.push((b.row, b.pcs, first));
                    HIDDEN_PYTHON
                }
                Ok(false) => HIDDEN_NONE,
                Ok(true) if v.is_empty() => HIDDEN_NONE,
                Ok(true) => match self.hidden_ids.get(v.as_slice()) {
                    Some(id) => *id,
                    None => {
                        let id = self.hidden.len() as i64;
                        self.hidden_ids.insert(v.clone(), id);
                        self.hidden.push(v.clone());
                        id
                    }
                },
            };
            self.pcs = v;
        }
        b.frames.clear();
        self.spare = b.frames;
    }
}

fn new_profile(leak: bool, total: u64) -> Profile {
    Profile {
        leak,
        total,
        stack_offsets: vec![0],
        ..Default::default()
    }
}

pub fn parse(data: &[u8]) -> Parsed {
    let mut rd = Reader {
        data,
        frames: Vec::new(),
        frame_ids: FxMap::default(),
        by_line: FxMap::default(),
        label_ids: FxMap::default(),
        labels: Vec::new(),
        hidden_ids: FxMap::default(),
        hidden: Vec::new(),
        stack_ids: FxMap::default(),
        code_lines: FxMap::default(),
        code: FxMap::default(),
        code_order: Vec::new(),
        spare: Vec::new(),
        pcs: Vec::new(),
    };
    let mut profiles: Vec<Profile> = Vec::new();
    let mut cur: Option<Profile> = None;
    let mut block: Option<Block> = None;
    let mut in_frames = false;
    let mut error = None;
    let mut pos = 0usize;
    loop {
        let nl = memchr::memchr(b'\n', &data[pos..]).map(|k| pos + k);
        let at = pos;
        let raw_end = nl.unwrap_or(data.len());
        let end = if raw_end > at && data[raw_end - 1] == b'\r' {
            raw_end - 1
        } else {
            raw_end
        };
        let line = &data[at..end];
        let fail: Option<Error> = 'line: {
            if line.iter().all(|c| is_space(*c)) {
                if let (Some(p), Some(b)) = (cur.as_mut(), block.take()) {
                    rd.end_block(p, b);
                }
                in_frames = false;
                break 'line None;
            }
            if let Some((leak, total)) = header(line) {
                if let Some(mut p) = cur.take() {
                    if let Some(b) = block.take() {
                        rd.end_block(&mut p, b);
                    }
                    profiles.push(p);
                }
                rd.stack_ids.clear();
                cur = Some(new_profile(leak, total));
                in_frames = false;
                break 'line None;
            }
            let Some(p) = cur.as_mut() else {
                break 'line Some(Error::Expected(Expected::Header, at, end));
            };
            match block.as_mut() {
                None => {
                    let Some((digits, pcs)) = count_line(line) else {
                        break 'line Some(Error::Expected(Expected::Block, at, end));
                    };
                    let count = digits_value(digits);
                    if count > i64::MAX as u128 {
                        break 'line Some(Error::CountRange(count.to_string(), at));
                    }
                    let row = p.row_stack.len();
                    p.row_stack.push(0);
                    p.row_labels.push(-1);
                    p.row_count.push(count as i64);
                    p.row_hidden.push(HIDDEN_NONE);
                    block = Some(Block {
                        row,
                        pcs: (at + pcs.0, at + pcs.1),
                        first: None,
                        last: None,
                        frames: std::mem::take(&mut rd.spare),
                    });
                    in_frames = false;
                }
                Some(b) => {
                    let i = skip_st(line, 0);
                    if !in_frames && line[i..].starts_with(b"# labels: ") {
                        let n = rd.labels.len() as i64;
                        let id = *rd.label_ids.entry(line).or_insert(n);
                        if id == n {
                            rd.labels.push(LabelLine {
                                start: at,
                                end,
                                brace: i + 10,
                                last: nl.is_none(),
                            });
                        }
                        p.row_labels[b.row] = id;
                        in_frames = true;
                    } else {
                        if b.frames.is_empty() {
                            b.first = Some((at, end));
                        }
                        let Some(f) = rd.frame(line) else {
                            let what = if in_frames {
                                Expected::Frame
                            } else {
                                Expected::First
                            };
                            break 'line Some(Error::Expected(what, at, end));
                        };
                        b.frames.push(f);
                        b.last = Some((at, end));
                        in_frames = true;
                    }
                }
            }
            None
        };
        if let Some(e) = fail {
            // A last line without its newline was cut mid-way: keep what came before.
            if nl.is_none() {
                if let Some(p) = cur.as_mut() {
                    p.cut = true;
                    break;
                }
            }
            error = Some(e);
            break;
        }
        match nl {
            Some(k) => pos = k + 1,
            None => break,
        }
    }
    if let Some(mut p) = cur.take() {
        if let Some(b) = block.take() {
            rd.end_block(&mut p, b);
        }
        profiles.push(p);
    }
    let mut code: Vec<(u64, String)> = rd
        .code_order
        .into_iter()
        .map(|name| (rd.code[&name], name))
        .collect();
    code.sort_unstable_by(|a, b| b.cmp(a)); // (entry, name) highest first, as heapq.nlargest
    code.truncate(CODE_POINTS);
    Parsed {
        frames: rd.frames,
        code,
        profiles,
        labels: rd.labels,
        hidden: rd.hidden,
        error,
    }
}

#[cfg(test)]
mod tests {
    /// `GRPROF_D1=file.txt cargo test --release -- --ignored --nocapture time_parse`
    #[test]
    #[ignore]
    fn time_parse() {
        let path = std::env::var("GRPROF_D1").unwrap_or("/tmp/d1.txt".into());
        let data = std::fs::read(path).unwrap();
        let mut best = f64::MAX;
        for _ in 0..20 {
            let t = std::time::Instant::now();
            let d = super::parse(&data);
            std::hint::black_box(&d);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("parse best {:.2} ms", best * 1e3);
    }
}
