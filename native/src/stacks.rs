//! debug=2 stacks: the Rust twin of `grprof.formats.traceback._parse_stack`, run by the
//! scanner over each distinct stack text as it first meets it (`Builder`), and by
//! `parse_stacks` over a list of texts (the tests' way to hold it to the Python parser).
//!
//! A dump whose goroutines all have their own stack (deep middleware, thousands of
//! handlers) pays the per-stack cost once per goroutine: in Python that is a call per line
//! and a dict lookup per frame. Here the texts are read in one pass without the GIL and each
//! distinct frame (function, file, line) is interned, so the Python side makes one `Frame`
//! per call site and one tuple per stack. The grammar is `_parse_stack`'s, to the character:
//! the text is decoded as UTF-8 with replacement, lines split at `\n` only, whitespace is
//! what Python's `str.strip` strips (tests/test_stack_equivalence.py holds the two to the
//! same stacks on every fixture and on fuzzed text).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64;

use crate::pprof::FxMap;

/// Hashes a byte key in one xxh3 call: `ByText`'s keys are a function name and a file line
/// (some 150 bytes), where an Fx fold takes a multiply per 8 bytes in one dependent chain
/// (`frame_id`, mostly that hash, was a sixth of the scan of a 20,000-distinct-stack dump).
/// `Hash` for `[u8]` and `Box<[u8]>` writes the length, then the bytes in one `write`.
#[derive(Default)]
pub struct BytesHasher(u64);

impl Hasher for BytesHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0.rotate_left(5) ^ xxh3_64(bytes)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Distinct stacks, first use first, in flat arrays (one allocation each, not one per stack:
/// a dump may have 100,000 of them). Stack i's frames (indexes into `Parsed::frames`) are
/// `frames[offsets[i]..offsets[i + 1]]`; `elided[i]`: whether frames were elided;
/// `created[i]`: its `created by` frame (an index, or -1).
pub struct Stacks {
    pub frames: Vec<u32>,
    pub offsets: Vec<u32>,
    pub elided: Vec<bool>,
    pub created: Vec<i64>,
}

impl Default for Stacks {
    fn default() -> Self {
        Stacks {
            frames: Vec::new(),
            offsets: vec![0],
            elided: Vec::new(),
            created: Vec::new(),
        }
    }
}

impl Stacks {
    pub fn len(&self) -> usize {
        self.elided.len()
    }

    pub fn frames_of(&self, i: usize) -> &[u32] {
        &self.frames[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn is(&self, i: usize, frames: &[u32], elided: bool, created: i64) -> bool {
        self.elided[i] == elided && self.created[i] == created && self.frames_of(i) == frames
    }

    fn push(&mut self, frames: &[u32], elided: bool, created: i64) {
        self.frames.extend_from_slice(frames);
        self.offsets.push(self.frames.len() as u32);
        self.elided.push(elided);
        self.created.push(created);
    }
}

#[derive(Default)]
pub struct Parsed {
    /// Distinct frames, first use first.
    pub frames: Vec<(String, String, u64)>,
    /// Distinct stacks, first use first: texts that differ only in what a stack leaves out
    /// (argument values, offsets) give one.
    pub stacks: Stacks,
    /// For each text, its stack's index in `stacks`.
    pub index: Vec<i64>,
    /// For each text, whether it ends in a function (or `created by`) line without its file
    /// line (a cut dump's last goroutine).
    pub dangling: Vec<bool>,
}

/// Python's `str.isspace`: Unicode White_Space plus the four information separators
/// (U+001C to U+001F, bidi classes B and S), which Rust's `char::is_whitespace` leaves out.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `traceback.parse_file_line`: `\t/src/x.go:42 +0x1d fp=0x.. sp=0x.. pc=0x..` ->
/// ("/src/x.go", 42); anything else -> (the stripped text, 0).
fn file_line(s: &str) -> (&str, u64) {
    let mut s = s.trim_matches(py_space);
    for marker in [" fp=", " pc="] {
        if let Some(p) = s.find(marker) {
            s = &s[..p];
        }
    }
    if let Some(p) = s.rfind(" +0x") {
        s = &s[..p];
    }
    s = s.trim_end_matches(py_space);
    if let Some(c) = s.rfind(':') {
        let tail = &s[c + 1..];
        if c > 0 && !tail.is_empty() && tail.len() <= 19 && tail.bytes().all(|b| b.is_ascii_digit())
        {
            return (&s[..c], tail.parse().unwrap());
        }
    }
    (s, 0)
}

#[derive(Default)]
struct Interner {
    ids: FxMap<(String, String, u64), u32>,
    frames: Vec<(String, String, u64)>,
}

impl Interner {
    fn id(&mut self, function: &str, file: &str, line: u64) -> u32 {
        let key = (function.to_owned(), file.to_owned(), line);
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(key.clone());
        self.ids.insert(key, id);
        id
    }
}

/// Entries of `ByText` before it is cleared: a service's stacks are made of a few thousand
/// call sites, and input whose file lines are all different (`fp=` registers, hostile text)
/// must not grow it without bound; a cleared cache costs parsing time only.
const BY_TEXT_MAX: usize = 1 << 16;

/// `function\nfile line as written` -> frame id: most frames repeat a call site seen in an
/// earlier stack, and this finds it without parsing the file line or allocating. Owned
/// keys: the scanner parses each text as it meets it and keeps no text (a name holds no
/// `\n`, so the pair is unambiguous).
#[derive(Default)]
struct ByText {
    ids: HashMap<Box<[u8]>, u32, BuildHasherDefault<BytesHasher>>,
    scratch: Vec<u8>,
}

impl ByText {
    /// Puts the key of (name, raw) in `scratch`.
    fn set_key(&mut self, name: &str, raw: &str) {
        self.scratch.clear();
        self.scratch.extend_from_slice(name.as_bytes());
        self.scratch.push(b'\n');
        self.scratch.extend_from_slice(raw.as_bytes());
    }
}

fn frame_id(it: &mut Interner, by_text: &mut Option<&mut ByText>, name: &str, raw: &str) -> u32 {
    if let Some(m) = by_text.as_deref_mut() {
        m.set_key(name, raw);
        if let Some(id) = m.ids.get(m.scratch.as_slice()) {
            return *id;
        }
    }
    let (file, line) = file_line(raw);
    let id = it.id(name, file, line);
    if let Some(m) = by_text.as_deref_mut() {
        if m.ids.len() >= BY_TEXT_MAX {
            m.ids.clear();
        }
        let key: Box<[u8]> = m.scratch.as_slice().into();
        m.ids.insert(key, id);
    }
    id
}

/// `name.find(" in goroutine ")`: the first space is most often where it starts, and a
/// memchr per space costs less than setting up a substring search per call (a twentieth of
/// the parse of a dump of 20,000 distinct stacks, each with its `created by` line).
fn in_goroutine(name: &str) -> Option<usize> {
    memchr::memchr_iter(b' ', name.as_bytes()).find(|&i| name[i..].starts_with(" in goroutine "))
}

/// One stack text: its frames go to `frames` (cleared first); returns (elided, created by
/// frame or -1, dangling).
fn parse_str(
    text: &str,
    it: &mut Interner,
    mut by_text: Option<&mut ByText>,
    frames: &mut Vec<u32>,
) -> (bool, i64, bool) {
    frames.clear();
    let mut elided = false;
    let mut created: i64 = -1;
    let mut pending: Option<&str> = None;
    let mut pending_created: Option<&str> = None;
    for raw in text.split('\n') {
        let Some(&first) = raw.as_bytes().first() else {
            continue;
        };
        if first == b' ' || first == b'\t' {
            if let Some(p) = pending.take() {
                frames.push(frame_id(it, &mut by_text, p, raw));
            } else if let Some(name) = pending_created.take() {
                created = frame_id(it, &mut by_text, name, raw) as i64;
            }
            continue;
        }
        if let Some(p) = pending.take() {
            frames.push(it.id(p, "", 0));
        }
        if let Some(name) = raw.strip_prefix("created by ") {
            pending_created = Some(match in_goroutine(name) {
                Some(p) => &name[..p],
                None => name,
            });
        } else if raw.starts_with("...") {
            elided = true;
        } else if raw.starts_with("non-Go function") {
            frames.push(it.id("non-Go function", "", 0));
        } else if raw.ends_with(')') {
            // `raw[: raw.rfind("(")]`: without a `(`, rfind is -1 and the `)` goes.
            pending = Some(match raw.rfind('(') {
                Some(p) => &raw[..p],
                None => &raw[..raw.len() - 1],
            });
        } else {
            pending = Some(raw);
        }
    }
    let dangling = pending.is_some() || pending_created.is_some();
    if let Some(p) = pending {
        frames.push(it.id(p, "", 0));
    }
    if let Some(name) = pending_created {
        created = it.id(name, "", 0) as i64;
    }
    (elided, created, dangling)
}

/// Stack texts parsed one at a time, as the scanner meets them: what it keeps is the frames
/// and the stacks as frame ids, never the texts (a dump with 100,000 distinct stacks has
/// some 140 MB of them).
#[derive(Default)]
pub struct Builder {
    it: Interner,
    by_text: ByText,
    /// Hash of a stack -> the first stack with that hash; `next[i]`: the next stack with
    /// stack i's hash (`u32::MAX`: none). Equal stacks are found by comparing the frames,
    /// so a collision costs a comparison, never a wrong stack.
    heads: FxMap<u64, u32>,
    next: Vec<u32>,
    stacks: Stacks,
    scratch: Vec<u32>,
    index: Vec<i64>,
    dangling: Vec<bool>,
}

/// An Fx-style fold: the chains in `Builder` make equal hashes cost a comparison only.
fn stack_hash(frames: &[u32], elided: bool, created: i64) -> u64 {
    let mix = |h: u64, x: u64| (h.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let h = frames
        .iter()
        .fold(mix(u64::from(elided), created as u64), |h, f| {
            mix(h, u64::from(*f))
        });
    mix(h, frames.len() as u64)
}

impl Builder {
    /// Parses the next text (text i is the i-th call).
    pub fn add(&mut self, text: &[u8]) {
        let mut frames = std::mem::take(&mut self.scratch);
        let (elided, created, d) = match std::str::from_utf8(text) {
            Ok(s) => parse_str(s, &mut self.it, Some(&mut self.by_text), &mut frames),
            // Broken UTF-8 (rare): decoded with replacement, as Python does, uncached.
            Err(_) => parse_str(
                &String::from_utf8_lossy(text),
                &mut self.it,
                None,
                &mut frames,
            ),
        };
        let at = self.intern(
            stack_hash(&frames, elided, created),
            &frames,
            elided,
            created,
        );
        self.scratch = frames;
        self.index.push(i64::from(at));
        self.dangling.push(d);
    }

    /// The index of the stack (frames, elided, created), whose hash is `h`; added if new.
    fn intern(&mut self, h: u64, frames: &[u32], elided: bool, created: i64) -> u32 {
        let n = self.stacks.len() as u32;
        let mut at = *self.heads.entry(h).or_insert(n);
        while at != n && !self.stacks.is(at as usize, frames, elided, created) {
            let next = self.next[at as usize];
            if next == u32::MAX {
                self.next[at as usize] = n;
                at = n;
            } else {
                at = next;
            }
        }
        if at == n {
            self.stacks.push(frames, elided, created);
            self.next.push(u32::MAX);
        }
        at
    }

    pub fn finish(self) -> Parsed {
        Parsed {
            frames: self.it.frames,
            stacks: self.stacks,
            index: self.index,
            dangling: self.dangling,
        }
    }
}

/// Takes a stack's frames tuple out of the cyclic collector's lists: a tuple of frames (frozen
/// `Frame`s of two strings and an int) can be in no cycle, and the collector would otherwise
/// walk the 171,012 references of a 20,000-distinct-stack dump's 20,002 tuples in every
/// collection of their generation (a tuple untracks itself only when its items are untracked).
pub fn untrack_frames(tuple: &pyo3::Bound<'_, pyo3::types::PyTuple>) {
    use pyo3::ffi;
    // SAFETY: a live tuple; only a tracked object is untracked.
    unsafe {
        if ffi::PyObject_GC_IsTracked(tuple.as_ptr()) == 1 {
            ffi::PyObject_GC_UnTrack(tuple.as_ptr().cast());
        }
    }
}

pub fn parse(texts: &[&[u8]]) -> Parsed {
    let mut b = Builder::default();
    for t in texts {
        b.add(t);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::{file_line, in_goroutine, Builder};

    #[test]
    fn in_goroutine_is_the_first_occurrence() {
        for name in [
            "main.main in goroutine 1",
            "main.(*T).f in  in goroutine 7 in goroutine 8",
            "a b c in goroutine",
            "main.main in goroutine",
            " in goroutine 3",
            "main.main",
            "main.main in goroutin",
            "é in goroutine 2",
        ] {
            assert_eq!(in_goroutine(name), name.find(" in goroutine "), "{name}");
        }
    }

    #[test]
    fn stacks_with_one_hash_stay_apart() {
        // A hash shared by different stacks (collisions are easy to make for an Fx fold)
        // chains them: each is found again, none is taken for another.
        let mut b = Builder::default();
        let stacks: [(&[u32], bool, i64); 4] = [
            (&[1, 2], false, -1),
            (&[1, 2], true, -1),
            (&[1], false, 2),
            (&[], false, -1),
        ];
        let first: Vec<u32> = stacks
            .iter()
            .map(|(f, e, c)| b.intern(7, f, *e, *c))
            .collect();
        assert_eq!(first, [0, 1, 2, 3]);
        for (i, (f, e, c)) in stacks.iter().enumerate().rev() {
            assert_eq!(b.intern(7, f, *e, *c), i as u32);
        }
        assert_eq!(b.intern(8, &[1, 2], false, -1), 4); // another hash: not looked up
        assert_eq!(b.stacks.len(), 5);
        assert_eq!(b.stacks.frames_of(2), [1]);
    }

    #[test]
    fn file_lines() {
        assert_eq!(file_line("\t/src/x.go:42 +0x1d"), ("/src/x.go", 42));
        assert_eq!(
            file_line("\tC:/src/x.go:7 +0x1d fp=0x1 sp=0x2 pc=0x3"),
            ("C:/src/x.go", 7)
        );
        assert_eq!(file_line("\t:42"), (":42", 0));
        assert_eq!(file_line("\tx.go:\u{b2}"), ("x.go:\u{b2}", 0));
        assert_eq!(file_line("\u{1c}\tx.go:1\u{1f}"), ("x.go", 1));
    }
}

#[cfg(test)]
mod timing {
    /// `GRPROF_STACKS=texts.bin cargo test --release -- --ignored --nocapture time_stacks`
    /// (texts.bin: a dump's `ScanResult.stack_texts` joined with NUL bytes).
    #[test]
    #[ignore]
    fn time_stacks() {
        let path = std::env::var("GRPROF_STACKS").unwrap_or("/tmp/texts.bin".into());
        let data = std::fs::read(path).unwrap();
        let texts: Vec<&[u8]> = data.split(|c| *c == 0).collect();
        let mut best = f64::MAX;
        for _ in 0..10 {
            let t = std::time::Instant::now();
            let d = super::parse(&texts);
            std::hint::black_box(&d);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("parse best {:.2} ms", best * 1e3);
    }
}
