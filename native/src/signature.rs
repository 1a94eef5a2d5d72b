//! Group signatures: the Rust twin of `grprof.aggregate._stack_bytes` + `_digest_bytes`.
//!
//! A signature is `blake2b(text, digest_size=8).hexdigest()` of a stack's text: a line per
//! frame (`function file:line`, or the loose function name), `...` when frames were elided,
//! `created by ` and its frame; `exact` similarity appends `\nargs %016x` of the argument
//! key. A dump with 20,000 distinct stacks spent half its load + aggregate time building
//! those texts and hashing them in Python.
//!
//! The input is the Python `Stack` objects themselves: each distinct frame *object* (the
//! parsers make one per call site) is read once, its text kept as bytes, and stacks become
//! lists of frame ids; texts are then joined and hashed without the GIL. The bytes are the
//! Python path's to the byte (tests/test_signature_equivalence.py), so signatures stored by
//! earlier versions, baselines and rules keep matching.

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use blake2b_simd::many::{hash_many, HashManyJob};
use blake2b_simd::Params;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

use crate::pprof::FxMap;

/// Below this many frames in all the GIL is kept: releasing it costs more than the work.
const DETACH_MIN_FRAMES: usize = 4096;

const NONE: u32 = u32::MAX;

/// Distinct stacks as frame ids, and each distinct frame's text.
#[derive(Default)]
pub struct Stacks {
    /// Text of each distinct frame (`function file:line`, or the loose function name).
    pub pieces: Vec<Vec<u8>>,
    /// Frame ids of every stack, one after the other.
    pub frames: Vec<u32>,
    /// Per stack: its range in `frames`, whether frames were elided, its `created by` frame
    /// (or `NONE`).
    pub stacks: Vec<(u32, u32, bool, u32)>,
}

impl Stacks {
    /// `_stack_bytes`: the parts joined by `\n` (`"\n".join(parts)`, so no separator before
    /// the first part, whichever it is), in `buf` (cleared first).
    pub fn text(&self, stack: u32, buf: &mut Vec<u8>) {
        buf.clear();
        self.append_text(stack, buf);
    }

    /// `text`, appended to `buf`.
    pub fn append_text(&self, stack: u32, buf: &mut Vec<u8>) {
        let (start, end, elided, created) = self.stacks[stack as usize];
        for (i, f) in self.frames[start as usize..end as usize].iter().enumerate() {
            if i > 0 {
                buf.push(b'\n');
            }
            buf.extend_from_slice(&self.pieces[*f as usize]);
        }
        let mut first = start == end;
        if elided {
            if !first {
                buf.push(b'\n');
            }
            buf.extend_from_slice(b"...");
            first = false;
        }
        if created != NONE {
            if !first {
                buf.push(b'\n');
            }
            buf.extend_from_slice(b"created by ");
            buf.extend_from_slice(&self.pieces[created as usize]);
        }
    }

    fn frame_count(&self) -> usize {
        self.frames.len()
    }
}

/// 16 lowercase hex digits of the 8-byte BLAKE2b digest (Python's `blake2b(digest_size=8)`:
/// the output length is a parameter of the hash, not a truncation).
#[cfg(test)]
fn digest(text: &[u8]) -> [u8; 16] {
    hex(&Params::new().hash_length(8).hash(text))
}

fn hex(h: &blake2b_simd::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(h.to_hex().as_bytes());
    out
}

/// Stacks hashed per batch: `hash_many` runs 4 (AVX2) texts through BLAKE2b at once, about
/// twice the speed of one at a time, and a batch's texts (some 1 KB each) stay in cache
/// without holding every text of a 100,000-stack dump at once.
const BATCH: usize = 64;

/// The digests of `texts` (one arena, `ends[i]` the end of text i), in order.
fn digest_batch(arena: &[u8], ends: &[usize], out: &mut Vec<[u8; 16]>) {
    let mut params = Params::new();
    params.hash_length(8);
    let mut start = 0;
    let mut jobs: Vec<HashManyJob<'_>> = Vec::with_capacity(ends.len());
    for &end in ends {
        jobs.push(HashManyJob::new(&params, &arena[start..end]));
        start = end;
    }
    hash_many(jobs.iter_mut());
    out.extend(jobs.iter().map(|j| hex(&j.to_hash())));
}

/// `_digest_bytes(text, "exact", argkey)`: the text, then `\nargs ` and the key as 16 hex
/// digits.
fn append_argkey(buf: &mut Vec<u8>, argkey: u64) {
    buf.extend_from_slice(format!("\nargs {argkey:016x}").as_bytes());
}

/// The signature of each stack of `order` (indexes into `stacks`), with the argument key of
/// the same position when `argkeys` is given (exact similarity).
pub fn signatures(stacks: &Stacks, order: &[u32], argkeys: Option<&[u64]>) -> Vec<[u8; 16]> {
    let (mut arena, mut ends) = (Vec::new(), Vec::with_capacity(BATCH));
    let mut out = Vec::with_capacity(order.len());
    for (b, batch) in order.chunks(BATCH).enumerate() {
        arena.clear();
        ends.clear();
        for (i, s) in batch.iter().enumerate() {
            stacks.append_text(*s, &mut arena);
            if let Some(keys) = argkeys {
                append_argkey(&mut arena, keys[b * BATCH + i]);
            }
            ends.push(arena.len());
        }
        digest_batch(&arena, &ends, &mut out);
    }
    out
}

/// The stacks the debug=2 scanner parsed, as the input of `signatures`: each frame's text is
/// the one `Reader` reads from the `Frame` made of the same strings (`parsed_to_py`:
/// function, file, line), so their digests are `signatures_of`'s of the `Stack`s made from
/// `parsed` (tests/test_signature_equivalence.py holds them to it).
pub fn parsed_stacks(parsed: &crate::stacks::Parsed) -> Stacks {
    let pieces = pieces(&parsed.frames);
    let st = &parsed.stacks;
    let stacks = (0..st.len())
        .map(|i| {
            let created = u32::try_from(st.created[i]).unwrap_or(NONE);
            (st.offsets[i], st.offsets[i + 1], st.elided[i], created)
        })
        .collect();
    Stacks {
        pieces,
        frames: st.frames.clone(),
        stacks,
    }
}

/// Each frame's text, as `Reader` makes it from a `Frame(function, file, line)`.
fn pieces<L: std::fmt::Display>(frames: &[(String, String, L)]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|(function, file, line)| format!("{function} {file}:{line}").into_bytes())
        .collect()
}

/// The stacks of a decoded profile (debug=0, debug=1: stack i is the frames
/// `stack_frames[offsets[i]..offsets[i + 1]]`, nothing elided, no `created by`), as the
/// input of `signatures`, with the same texts as `parsed_stacks`.
pub fn profile_stacks<L: std::fmt::Display>(
    frames: &[(String, String, L)],
    offsets: &[usize],
    stack_frames: &[u32],
) -> Stacks {
    Stacks {
        pieces: pieces(frames),
        frames: stack_frames.to_vec(),
        stacks: offsets
            .windows(2)
            .map(|w| (w[0] as u32, w[1] as u32, false, NONE))
            .collect(),
    }
}

enum Hashing {
    Running(JoinHandle<Vec<[u8; 16]>>),
    Done(Vec<[u8; 16]>),
    Failed,
}

/// Default-similarity signatures of every stack of `Stacks`, hashed on another thread from
/// the moment it is made, so that the caller goes on meanwhile (the scanner makes the Python
/// objects, then `group()` asks for them): `result()` waits for them.
#[pyclass(frozen, module = "grprof._native")]
pub struct PendingSignatures {
    state: Mutex<Hashing>,
    /// The stacks being hashed.
    len: usize,
}

impl PendingSignatures {
    pub fn start(input: Stacks) -> PendingSignatures {
        let len = input.stacks.len();
        let handle = std::thread::spawn(move || {
            let order: Vec<u32> = (0..input.stacks.len() as u32).collect();
            signatures_split(&input, &order, None)
        });
        PendingSignatures {
            state: Mutex::new(Hashing::Running(handle)),
            len,
        }
    }
}

#[pymethods]
impl PendingSignatures {
    /// Each stack's signature (str), in order, once hashed: waits without the GIL.
    pub fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // The lock is held with the GIL only where nothing is awaited, so a thread that holds
        // the GIL and waits for the lock never blocks the one joining the hashing thread.
        py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            *state = match std::mem::replace(&mut *state, Hashing::Failed) {
                Hashing::Running(h) => h.join().map_or(Hashing::Failed, Hashing::Done),
                done => done,
            };
        });
        match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            Hashing::Done(sigs) => digests(py, sigs),
            _ => Err(PyRuntimeError::new_err(
                "hashing the stacks' signatures failed",
            )),
        }
    }

    /// The number of stacks (and signatures), known without waiting.
    fn __len__(&self) -> usize {
        self.len
    }
}

/// Stacks past which `signatures_split` hashes on several threads.
const SPLIT_MIN: usize = 2048;

/// `signatures`, a part of `order` on each of up to `available_parallelism()` threads (at
/// most 4) when there are many: BLAKE2b is most of the cost (some 20 MB of text for 20,000
/// distinct stacks), and the parts are independent.
pub fn signatures_split(stacks: &Stacks, order: &[u32], argkeys: Option<&[u64]>) -> Vec<[u8; 16]> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || order.len() < SPLIT_MIN {
        return signatures(stacks, order, argkeys);
    }
    let per = order.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = order
            .chunks(per)
            .enumerate()
            .map(|(i, part)| {
                let keys = argkeys.map(|k| &k[i * per..i * per + part.len()]);
                scope.spawn(move || signatures(stacks, part, keys))
            })
            .collect();
        let mut out = Vec::with_capacity(order.len());
        for p in parts {
            // A panic in a part is one here (as it would be without threads).
            out.extend(p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

/// Loose grouping (`aggregate._row_keys`): stacks with the same loose text form a group,
/// numbered by first appearance. Returns each stack's group, each group's first stack and
/// each group's signature. Groups are found by digest, and a digest match is confirmed on
/// the text (rebuilt from the group's first stack), so two texts that collide in 64 bits
/// still make two groups, as Python's dict of texts does.
pub fn loose_groups(stacks: &Stacks) -> (Vec<u32>, Vec<u32>, Vec<[u8; 16]>) {
    let n = stacks.stacks.len() as u32;
    let order: Vec<u32> = (0..n).collect();
    group_by_digest(stacks, signatures(stacks, &order, None))
}

/// `loose_groups` given each stack's digest (apart for the tests, which collide digests).
fn group_by_digest(stacks: &Stacks, digests: Vec<[u8; 16]>) -> (Vec<u32>, Vec<u32>, Vec<[u8; 16]>) {
    let n = digests.len();
    let mut group = Vec::with_capacity(n);
    let mut reps: Vec<u32> = Vec::new();
    let mut sigs: Vec<[u8; 16]> = Vec::new();
    let mut by_digest: FxMap<[u8; 16], u32> = FxMap::default();
    let mut collided: FxMap<Vec<u8>, u32> = FxMap::default();
    let (mut buf, mut other) = (Vec::new(), Vec::new());
    for (s, d) in digests.into_iter().enumerate() {
        let next = reps.len() as u32;
        let g = match by_digest.get(&d) {
            None => {
                by_digest.insert(d, next);
                next
            }
            Some(&g) => {
                stacks.text(s as u32, &mut buf);
                stacks.text(reps[g as usize], &mut other);
                if other == buf {
                    g
                } else {
                    *collided.entry(buf.clone()).or_insert(next)
                }
            }
        };
        if g == next {
            reps.push(s as u32);
            sigs.push(d);
        }
        group.push(g);
    }
    (group, reps, sigs)
}

/// `FuncName.loose` for a name of ASCII characters: `frames._NUMBERING`
/// (`\.(func|gowrap)\d+|\.\d+(?=\.|$)`) replaced by `.func`, `.gowrap` or `.N`. Python's
/// `\d` also matches other scripts' decimal digits, so names with non-ASCII characters go
/// to Python's own function; `$` matches at the end and before a final `\n`.
pub fn loose_ascii(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    let digits_from = |mut j: usize| {
        while j < n && s[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut i = 0;
    'outer: while i < n {
        if s[i] == b'.' {
            for word in [&b"func"[..], &b"gowrap"[..]] {
                if s[i + 1..].starts_with(word) {
                    let d = i + 1 + word.len();
                    let j = digits_from(d);
                    if j > d {
                        out.push(b'.');
                        out.extend_from_slice(word);
                        i = j;
                        continue 'outer;
                    }
                }
            }
            let j = digits_from(i + 1);
            if j > i + 1 && (j == n || s[j] == b'.' || (j == n - 1 && s[j] == b'\n')) {
                out.extend_from_slice(b".N");
                i = j;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
}

/// Reads `Stack` objects into `Stacks`, each distinct frame object and each distinct stack
/// object once (a daemon's window shares both; exact similarity repeats stacks).
struct Reader<'a, 'py> {
    py: Python<'py>,
    /// `loose_function`, for loose texts (and only called for non-ASCII names).
    loose: Option<&'a Bound<'py, PyAny>>,
    frame_ids: FxMap<usize, u32>,
    stack_ids: FxMap<usize, u32>,
    out: Stacks,
}

impl<'a, 'py> Reader<'a, 'py> {
    fn new(py: Python<'py>, loose: Option<&'a Bound<'py, PyAny>>) -> Self {
        Reader {
            py,
            loose,
            frame_ids: FxMap::default(),
            stack_ids: FxMap::default(),
            out: Stacks::default(),
        }
    }

    /// The id of a frame object; pointers stay valid as the caller's stacks hold the frames.
    fn frame(&mut self, f: &Bound<'py, PyAny>) -> PyResult<u32> {
        let key = f.as_ptr() as usize;
        if let Some(id) = self.frame_ids.get(&key) {
            return Ok(*id);
        }
        let py = self.py;
        let function = f.getattr(intern!(py, "function"))?;
        let mut piece = Vec::new();
        match self.loose {
            Some(loose) => {
                let name = function
                    .cast::<PyString>()
                    .ok()
                    .map(|s| s.to_str())
                    .transpose()?;
                match name {
                    Some(name) if name.is_ascii() => loose_ascii(name.as_bytes(), &mut piece),
                    _ => piece.extend_from_slice(
                        loose
                            .call1((function,))?
                            .cast::<PyString>()?
                            .to_str()?
                            .as_bytes(),
                    ),
                }
            }
            None => {
                // f"{function} {file}:{line}": str() of anything that is not a str or an int.
                let file = f.getattr(intern!(py, "file"))?;
                let line = f.getattr(intern!(py, "line"))?;
                push_str(&mut piece, &function)?;
                piece.push(b' ');
                push_str(&mut piece, &file)?;
                piece.push(b':');
                match line.cast_exact::<PyInt>() {
                    Ok(i) => match i.extract::<i64>() {
                        Ok(v) => piece.extend_from_slice(v.to_string().as_bytes()),
                        Err(_) => push_str(&mut piece, &line)?,
                    },
                    Err(_) => push_str(&mut piece, &line)?,
                }
            }
        }
        let id = self.out.pieces.len() as u32;
        self.out.pieces.push(piece);
        self.frame_ids.insert(key, id);
        Ok(id)
    }

    fn stack(&mut self, s: &Bound<'py, PyAny>) -> PyResult<u32> {
        let key = s.as_ptr() as usize;
        if let Some(id) = self.stack_ids.get(&key) {
            return Ok(*id);
        }
        let py = self.py;
        let start = self.out.frames.len() as u32;
        let frames = s.getattr(intern!(py, "frames"))?;
        match frames.cast::<PyTuple>() {
            Ok(t) => {
                for f in t.iter_borrowed() {
                    let id = self.frame(&f)?;
                    self.out.frames.push(id);
                }
            }
            Err(_) => {
                for f in frames.try_iter()? {
                    let id = self.frame(&f?)?;
                    self.out.frames.push(id);
                }
            }
        }
        let end = self.out.frames.len() as u32;
        let elided = s.getattr(intern!(py, "frames_elided"))?.is_truthy()?;
        let cb = s.getattr(intern!(py, "created_by"))?;
        let created = if cb.is_none() { NONE } else { self.frame(&cb)? };
        let id = self.out.stacks.len() as u32;
        self.out.stacks.push((start, end, elided, created));
        self.stack_ids.insert(key, id);
        Ok(id)
    }
}

/// `str(x)` as UTF-8 (`x` itself when a str): a lone surrogate raises UnicodeEncodeError, as
/// Python's `.encode()` would.
fn push_str(out: &mut Vec<u8>, x: &Bound<'_, PyAny>) -> PyResult<()> {
    match x.cast::<PyString>() {
        Ok(s) => out.extend_from_slice(s.to_str()?.as_bytes()),
        Err(_) => out.extend_from_slice(x.str()?.to_str()?.as_bytes()),
    }
    Ok(())
}

/// Hex digests as Python strings. Not interned: interning cost about a fifth of
/// `signatures_of` (a lookup in the interpreter's table to make each, a deletion from it to
/// free each), and a daemon's snapshots already share one string per stack through
/// `grprof.table.SignatureCache`.
pub fn digests<'py>(py: Python<'py>, sigs: &[[u8; 16]]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        sigs.iter()
            .map(|d| PyString::new(py, std::str::from_utf8(d).expect("hex digits"))),
    )
}

/// The signature of each of `stacks` (`grprof.table.Stack` objects, repeats allowed):
/// `_digest_bytes(_stack_bytes(stack, loose), similarity, argkey)` for similarity
/// `"exact"` when `argkeys` (one per stack) is given, `"loose"` when `loose` (the
/// `loose_function` callable) is, else `"default"`.
#[pyfunction]
#[pyo3(signature = (stacks, argkeys=None, loose=None))]
pub fn signatures_of<'py>(
    py: Python<'py>,
    stacks: &Bound<'py, PyAny>,
    argkeys: Option<Vec<u64>>,
    loose: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let mut r = Reader::new(py, loose);
    let mut order = Vec::new();
    for s in stacks.try_iter()? {
        order.push(r.stack(&s?)?);
    }
    if let Some(keys) = &argkeys {
        if keys.len() != order.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "argkeys must have one key per stack",
            ));
        }
    }
    let input = r.out;
    let keys = argkeys.as_deref();
    let sigs = if input.frame_count() >= DETACH_MIN_FRAMES {
        py.detach(|| signatures_split(&input, &order, keys))
    } else {
        signatures(&input, &order, keys)
    };
    digests(py, &sigs)
}

/// Loose grouping of a table's stacks (`aggregate._row_keys` for `"loose"`): returns each
/// stack's group (groups numbered by first appearance), each group's first stack (an index
/// into `stacks`) and each group's signature. `stacks` are distinct objects.
#[pyfunction]
pub fn loose_groups_of<'py>(
    py: Python<'py>,
    stacks: &Bound<'py, PyAny>,
    loose: &Bound<'py, PyAny>,
) -> PyResult<(Vec<u32>, Vec<u32>, Bound<'py, PyList>)> {
    let mut r = Reader::new(py, Some(loose));
    let mut order = Vec::new();
    for s in stacks.try_iter()? {
        order.push(r.stack(&s?)?);
    }
    let mut input = r.out;
    // A stack object given twice is read once; position i must be stack i for the grouping.
    if order.iter().enumerate().any(|(i, s)| *s as usize != i) {
        let stacks = order.iter().map(|s| input.stacks[*s as usize]).collect();
        input.stacks = stacks;
    }
    let (group, reps, sigs) = if input.frame_count() >= DETACH_MIN_FRAMES {
        py.detach(|| loose_groups(&input))
    } else {
        loose_groups(&input)
    };
    Ok((group, reps, digests(py, &sigs)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(s: &str) -> String {
        let mut out = Vec::new();
        loose_ascii(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn loose_names() {
        assert_eq!(loose("main.main.func15.1"), "main.main.func.N");
        assert_eq!(loose("runtime.gcenable.gowrap1"), "runtime.gcenable.gowrap");
        assert_eq!(loose("main.seq.1"), "main.seq.N");
        assert_eq!(loose("a.1x"), "a.1x");
        assert_eq!(loose("a.12\n"), "a.N\n");
        assert_eq!(loose("a.12\n\n"), "a.12\n\n");
        assert_eq!(loose("a.func"), "a.func");
        assert_eq!(loose("a.func7x"), "a.funcx");
        assert_eq!(loose("a.1.2.3"), "a.N.N.N");
    }

    #[test]
    fn colliding_digests_still_group_by_text() {
        let stacks = Stacks {
            pieces: vec![b"a".to_vec(), b"b".to_vec()],
            frames: vec![0, 1, 0, 1],
            stacks: vec![
                (0, 1, false, NONE),
                (1, 2, false, NONE),
                (2, 3, false, NONE),
                (3, 4, false, NONE),
            ],
        };
        // Texts a, b, a, b all given one digest: two groups, told apart by their texts.
        let (group, reps, sigs) = group_by_digest(&stacks, vec![[b'0'; 16]; 4]);
        assert_eq!(group, vec![0, 1, 0, 1]);
        assert_eq!(reps, vec![0, 1]);
        assert_eq!(sigs.len(), 2);
        let mut buf = Vec::new();
        stacks.text(1, &mut buf);
        assert_eq!(buf, b"b");
    }

    #[test]
    fn texts_join_like_python() {
        let stacks = Stacks {
            pieces: vec![b"f x.go:1".to_vec(), b"g".to_vec()],
            frames: vec![0, 1],
            stacks: vec![
                (0, 2, true, 1),
                (0, 0, true, NONE),
                (0, 0, false, 0),
                (0, 0, false, NONE),
            ],
        };
        let mut buf = Vec::new();
        let want: [&[u8]; 4] = [
            b"f x.go:1\ng\n...\ncreated by g",
            b"...",
            b"created by f x.go:1",
            b"",
        ];
        for (i, w) in want.iter().enumerate() {
            stacks.text(i as u32, &mut buf);
            assert_eq!(&buf[..], *w);
        }
    }

    #[test]
    fn blake2b_8() {
        // hashlib.blake2b(b"", digest_size=8).hexdigest()
        assert_eq!(&digest(b""), b"e4a6a0577479b2b4");
    }
}
