//! Frames and stacks of the debug=0 and debug=1 parsers, kept across calls (per process).
//!
//! A scraped service shows the same call sites and mostly the same stacks every 15 s: each
//! distinct frame value becomes one `Frame` object, and each distinct sequence of frames one
//! `Stack` object, made once and handed out again while the cache holds them. Frames get a
//! process-wide id (stable until the cache is cleared, which bumps `generation`), so that the
//! Python side can key its own caches (wait states, the Go version) by ids in bytes.
//!
//! Objects are made without running the dataclasses' `__init__`: allocated as
//! `object.__new__(cls)` does and their slots set as `object.__setattr__` does (the frozen
//! dataclasses' `__init__` does exactly that, field by field, through a Python function).
//! Both classes are frozen: sharing their objects between snapshots changes nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::pprof::{self, FxMap};
use crate::signature;

/// Past these, the cache starts over at the next call (a process reading many binaries).
const MAX_FRAMES: usize = 1 << 19;
const MAX_STACKS: usize = 1 << 18;
const MAX_STACK_FRAMES: usize = 1 << 23;

pub struct Cache {
    frame_cls: Option<Py<PyType>>,
    stack_cls: Option<Py<PyType>>,
    rules: Option<Py<PyAny>>,
    frame_ids: FxMap<(String, String, i64), u32>,
    frames: Vec<Py<PyAny>>,
    /// Per frame: 0 not asked yet, 1 `stop` said no, 2 yes (for `rules`).
    stops: Vec<u8>,
    stacks: FxMap<Box<[u32]>, CachedStack>,
    stack_frames: usize,
    pub generation: u64,
    names: Option<[Py<PyString>; 6]>,
}

/// A stack's object and, once asked for, its default-similarity signature.
type CachedStack = (Py<PyAny>, Option<Py<PyString>>);

/// Per debug=1 profile: its stacks (offsets and frames), its dict, and whether it wants its
/// signatures from the cache.
pub type Debug1Profile<'a, 'py> = (&'a [usize], &'a [u32], Bound<'py, PyDict>, bool);

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

impl Cache {
    fn new() -> Cache {
        Cache {
            frame_cls: None,
            stack_cls: None,
            rules: None,
            frame_ids: FxMap::default(),
            frames: Vec::new(),
            stops: Vec::new(),
            stacks: FxMap::default(),
            stack_frames: 0,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            names: None,
        }
    }
}

/// Run `f` on the cache, made ready for `frame_cls`, `stack_cls` and `rules` (the object the
/// `stop` answers depend on): anything made with other classes, or too much, is dropped first.
///
/// `f` runs Python code (the `stop` callback, allocations that may collect), during which
/// another thread may take the GIL and parse too: it must not wait for this lock while
/// holding the GIL, so it gets a cache of its own for that call (with its own generation).
pub fn with_cache<'py, T>(
    py: Python<'py>,
    frame_cls: &Bound<'py, PyType>,
    stack_cls: &Bound<'py, PyType>,
    rules: &Bound<'py, PyAny>,
    f: impl FnOnce(&mut Cache) -> PyResult<T>,
) -> PyResult<T> {
    let mut guard = match CACHE.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    let mut own = None;
    let c = match guard.as_mut() {
        Some(g) => g.get_or_insert_with(Cache::new),
        None => own.insert(Cache::new()),
    };
    let same = |have: &Option<Py<PyType>>, want: &Bound<'py, PyType>| {
        have.as_ref().is_some_and(|h| h.as_ptr() == want.as_ptr())
    };
    if !same(&c.frame_cls, frame_cls)
        || !same(&c.stack_cls, stack_cls)
        || c.frames.len() > MAX_FRAMES
        || c.stacks.len() > MAX_STACKS
        || c.stack_frames > MAX_STACK_FRAMES
    {
        c.frame_ids = FxMap::default();
        c.frames = Vec::new();
        c.stops = Vec::new();
        c.stacks = FxMap::default();
        c.stack_frames = 0;
        c.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        c.frame_cls = Some(frame_cls.clone().unbind());
        c.stack_cls = Some(stack_cls.clone().unbind());
    }
    if c.rules
        .as_ref()
        .is_none_or(|r| r.as_ptr() != rules.as_ptr())
    {
        c.stops.iter_mut().for_each(|s| *s = 0);
        c.rules = Some(rules.clone().unbind());
    }
    if c.names.is_none() {
        c.names = Some(
            [
                "function",
                "file",
                "line",
                "frames",
                "frames_elided",
                "created_by",
            ]
            .map(|n| PyString::intern(py, n).unbind()),
        );
    }
    f(c)
}

/// `object.__new__(cls)` then `object.__setattr__(obj, name, value)` for each pair.
fn new_object<'py>(
    py: Python<'py>,
    cls: &Py<PyType>,
    names: &[Py<PyString>],
    values: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `cls` is a heap type (a Python class) whose instances `object.__new__` makes
    // with this very allocation; every pointer passed is a live object, the GIL is held, and
    // an error (null or -1) is turned into the pending exception.
    unsafe {
        let raw = ffi::PyType_GenericAlloc(cls.as_ptr().cast(), 0);
        if raw.is_null() {
            return Err(PyErr::fetch(py));
        }
        let obj = Bound::from_owned_ptr(py, raw);
        for (n, v) in names.iter().zip(values) {
            if ffi::PyObject_GenericSetAttr(obj.as_ptr(), n.as_ptr(), v.as_ptr()) < 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }
}

impl Cache {
    /// The process-wide id of the frame (function, file, line), its object made if new.
    pub fn frame(&mut self, py: Python<'_>, key: &(String, String, i64)) -> PyResult<u32> {
        if let Some(&i) = self.frame_ids.get(key) {
            return Ok(i);
        }
        let (function, file, line) = key;
        let names = self.names.as_ref().expect("names set");
        let cls = self.frame_cls.as_ref().expect("class set");
        let obj = new_object(
            py,
            cls,
            &names[0..3],
            &[
                PyString::new(py, function).as_any(),
                PyString::new(py, file).as_any(),
                line.into_pyobject(py)?.as_any(),
            ],
        )?;
        let i = self.frames.len() as u32;
        self.frames.push(obj.unbind());
        self.stops.push(0);
        self.frame_ids.insert(key.clone(), i);
        Ok(i)
    }

    /// A frame object with an id of its own, not found again by value.
    pub fn frame_uncached(
        &mut self,
        py: Python<'_>,
        function: &str,
        file: &str,
        line: u64,
    ) -> PyResult<u32> {
        let names = self.names.as_ref().expect("names set");
        let cls = self.frame_cls.as_ref().expect("class set");
        let obj = new_object(
            py,
            cls,
            &names[0..3],
            &[
                PyString::new(py, function).as_any(),
                PyString::new(py, file).as_any(),
                line.into_pyobject(py)?.as_any(),
            ],
        )?;
        let i = self.frames.len() as u32;
        self.frames.push(obj.unbind());
        self.stops.push(0);
        Ok(i)
    }

    pub fn frame_object<'py>(&self, py: Python<'py>, id: u32) -> &Bound<'py, PyAny> {
        self.frames[id as usize].bind(py)
    }

    /// Whether `stop(frame)` holds, asked once per frame (and per `rules`).
    pub fn stops(&mut self, id: u32, stop: &Bound<'_, PyAny>) -> PyResult<bool> {
        let i = id as usize;
        if self.stops[i] == 0 {
            let yes = stop.call1((self.frames[i].bind(stop.py()),))?.is_truthy()?;
            self.stops[i] = if yes { 2 } else { 1 };
        }
        Ok(self.stops[i] == 2)
    }

    /// The `Stack(frames)` object of these frame ids (no `elided`, no `created_by`).
    pub fn stack<'py>(&mut self, py: Python<'py>, ids: &[u32]) -> PyResult<Bound<'py, PyAny>> {
        if let Some((s, _)) = self.stacks.get(ids) {
            return Ok(s.bind(py).clone());
        }
        let frames = PyTuple::new(py, ids.iter().map(|i| self.frames[*i as usize].bind(py)))?;
        let names = self.names.as_ref().expect("names set");
        let cls = self.stack_cls.as_ref().expect("class set");
        let no = false.into_pyobject(py)?.to_owned().into_any();
        let obj = new_object(
            py,
            cls,
            &names[3..6],
            &[frames.as_any(), &no, &py.None().into_bound(py)],
        )?;
        self.stacks.insert(ids.into(), (obj.clone().unbind(), None));
        self.stack_frames += ids.len();
        Ok(obj)
    }
    /// The distinct stacks (frame indexes into `gid`, the frames' process-wide ids) as
    /// `stacks`, `state_class`, `state_reps` and `state_keys` in `out`; the class of each stack.
    fn stacks_to_py<'py>(
        &mut self,
        py: Python<'py>,
        gid: &[u32],
        offsets: &[usize],
        stack_frames: &[u32],
        stop: &Bound<'py, PyAny>,
        out: &Bound<'py, PyDict>,
    ) -> PyResult<(Vec<i64>, Vec<u32>)> {
        let global: Vec<u32> = stack_frames.iter().map(|i| gid[*i as usize]).collect();
        let stacks = PyList::empty(py);
        let mut classes: Vec<i64> = Vec::with_capacity(offsets.len());
        let mut reps: Vec<i64> = Vec::new();
        let keys = PyList::empty(py);
        let mut seen: FxMap<&[u32], i64> = FxMap::default();
        for (si, w) in offsets.windows(2).enumerate() {
            let ids = &global[w[0]..w[1]];
            stacks.append(self.stack(py, ids)?)?;
            let mut k = ids.len();
            for (j, id) in ids.iter().enumerate() {
                if self.stops(*id, stop)? {
                    k = j;
                    break;
                }
            }
            let prefix = &ids[..(k + 2).min(ids.len())];
            let next = reps.len() as i64;
            let class = *seen.entry(prefix).or_insert(next);
            if class == next {
                reps.push(si as i64);
                keys.append(u32_bytes(py, prefix))?;
            }
            classes.push(class);
        }
        out.set_item("stacks", stacks)?;
        out.set_item("state_class", i64_bytes(py, &classes))?;
        out.set_item("state_reps", reps)?;
        out.set_item("state_keys", keys)?;
        Ok((classes, global))
    }
}

impl Cache {
    /// Each distinct stack's default-similarity signature (the stacks `stacks_to_py` made, as
    /// `global`: their frames' process-wide ids, which it returns), hashed once per cached
    /// stack: a service scraped or read again shows the same stacks, and `aggregate.group`
    /// then hashes none (`signatures_of` was a third of `load(...).groups()` on a profile of
    /// 52 stacks). `frames`, `offsets` and `stack_frames`: the profile's own, for the texts.
    fn stack_signatures<'py, L: std::fmt::Display>(
        &mut self,
        py: Python<'py>,
        frames: &[(String, String, L)],
        offsets: &[usize],
        stack_frames: &[u32],
        global: &[u32],
    ) -> PyResult<Bound<'py, PyList>> {
        let ids = |si: usize| &global[offsets[si]..offsets[si + 1]];
        let n = offsets.len().saturating_sub(1);
        let mut sigs: Vec<Option<Py<PyString>>> = (0..n)
            .map(|si| {
                let cached = self.stacks.get(ids(si)).and_then(|(_, sig)| sig.as_ref());
                cached.map(|sig| sig.clone_ref(py))
            })
            .collect();
        let missing: Vec<u32> = (0..n as u32)
            .filter(|si| sigs[*si as usize].is_none())
            .collect();
        if !missing.is_empty() {
            let input = signature::profile_stacks(frames, offsets, stack_frames);
            for (si, digest) in missing
                .iter()
                .zip(signature::signatures(&input, &missing, None))
            {
                let sig =
                    PyString::new(py, std::str::from_utf8(&digest).expect("hex digits")).unbind();
                if let Some(entry) = self.stacks.get_mut(ids(*si as usize)) {
                    entry.1 = Some(sig.clone_ref(py));
                }
                sigs[*si as usize] = Some(sig);
            }
        }
        PyList::new(
            py,
            sigs.into_iter().map(|sig| sig.expect("every stack hashed")),
        )
    }
}

fn u32_bytes<'py>(py: Python<'py>, v: &[u32]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_ne_bytes());
    }
    PyBytes::new(py, &out)
}

fn i64_bytes<'py>(py: Python<'py>, v: &[i64]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(v.len() * 8);
    for x in v {
        out.extend_from_slice(&x.to_ne_bytes());
    }
    PyBytes::new(py, &out)
}

/// What `decode_pprof` gives with `stack`: the profile's objects from the cache, and what the
/// Python side keys its caches with (`grprof.formats.pprof._build_cached`):
///
/// - `frames`: the profile's distinct frames (every location's, for the Go version), and
///   `frames_key`: their process-wide ids, sorted (u32 bytes); `generation` of those ids;
/// - `stacks`: the distinct stacks as `Stack` objects, in order of first use;
/// - `state_class` (int64 bytes, per stack), `state_reps` (the first stack of each class),
///   `state_keys` (per class, the frame ids its wait state depends on, u32 bytes): stacks
///   grouped by their frames up to the first one `stop` accepts and the one after it;
/// - `row_pair` (int64 bytes, per sample): the sample's distinct (state class, label set)
///   pair, first use first, and those pairs as `pair_class` and `pair_labels` (int64 bytes);
/// - with `signatures`, `signatures`: each stack's signature (`Cache::stack_signatures`).
#[allow(clippy::too_many_arguments)]
pub fn decoded_to_py<'py>(
    py: Python<'py>,
    d: &pprof::Decoded<'_>,
    frame_cls: &Bound<'py, PyType>,
    stack_cls: &Bound<'py, PyType>,
    stop: &Bound<'py, PyAny>,
    rules: &Bound<'py, PyAny>,
    signatures: bool,
    out: &Bound<'py, PyDict>,
) -> PyResult<()> {
    with_cache(py, frame_cls, stack_cls, rules, |c| {
        let mut gid: Vec<u32> = Vec::with_capacity(d.frames.len());
        for f in &d.frames {
            gid.push(c.frame(py, f)?);
        }
        // The frames of the locations kept (a location id given twice keeps its last one).
        let mut used = vec![false; gid.len()];
        let mut sorted: Vec<u32> = Vec::with_capacity(gid.len());
        for loc in &d.locs {
            for i in loc {
                if !std::mem::replace(&mut used[*i as usize], true) {
                    sorted.push(gid[*i as usize]);
                }
            }
        }
        let frames = PyList::new(py, sorted.iter().map(|i| c.frame_object(py, *i)))?;
        out.set_item("frames", frames)?;
        sorted.sort_unstable();
        out.set_item("frames_key", u32_bytes(py, &sorted))?;
        out.set_item("generation", c.generation)?;
        let (classes, global) =
            c.stacks_to_py(py, &gid, &d.stack_offsets, &d.stack_frames, stop, out)?;
        if signatures {
            let sigs =
                c.stack_signatures(py, &d.frames, &d.stack_offsets, &d.stack_frames, &global)?;
            out.set_item("signatures", sigs)?;
        }
        let mut pairs: FxMap<(i64, i64), i64> = FxMap::default();
        let (mut pair_class, mut pair_labels) = (Vec::new(), Vec::new());
        let mut row_pair = Vec::with_capacity(d.row_stack.len());
        for (s, l) in d.row_stack.iter().zip(&d.row_labels) {
            let key = (classes[*s as usize], *l);
            let next = pair_class.len() as i64;
            let p = *pairs.entry(key).or_insert(next);
            if p == next {
                pair_class.push(key.0);
                pair_labels.push(key.1);
            }
            row_pair.push(p);
        }
        out.set_item("row_pair", i64_bytes(py, &row_pair))?;
        out.set_item("pair_class", i64_bytes(py, &pair_class))?;
        out.set_item("pair_labels", i64_bytes(py, &pair_labels))?;
        Ok(())
    })
}

/// What `parse_debug1` gives with `stack`, per profile: as `decoded_to_py` for `frames`
/// (the profile's distinct frames, first use first), `frames_key`, `generation`, `stacks`
/// and the state classes, and `signatures` for the profiles whose flag says so.
#[allow(clippy::too_many_arguments)]
pub fn debug1_to_py<'py>(
    py: Python<'py>,
    frames: &[(String, String, u64)],
    profiles: &[Debug1Profile<'_, 'py>],
    frame_cls: &Bound<'py, PyType>,
    stack_cls: &Bound<'py, PyType>,
    stop: &Bound<'py, PyAny>,
    rules: &Bound<'py, PyAny>,
) -> PyResult<()> {
    with_cache(py, frame_cls, stack_cls, rules, |c| {
        let mut gid: Vec<u32> = Vec::with_capacity(frames.len());
        for (function, file, line) in frames {
            gid.push(match i64::try_from(*line) {
                Ok(line) => c.frame(py, &(function.clone(), file.clone(), line))?,
                // Past int64 (no Go program has such a line): made, given an id, not kept.
                Err(_) => c.frame_uncached(py, function, file, *line)?,
            });
        }
        for (offsets, stack_frames, out, signatures) in profiles {
            let mut seen = vec![false; gid.len()];
            let mut used: Vec<u32> = Vec::new();
            for i in stack_frames.iter() {
                if !std::mem::replace(&mut seen[*i as usize], true) {
                    used.push(gid[*i as usize]);
                }
            }
            out.set_item(
                "frames",
                PyList::new(py, used.iter().map(|i| c.frame_object(py, *i)))?,
            )?;
            used.sort_unstable();
            out.set_item("frames_key", u32_bytes(py, &used))?;
            out.set_item("generation", c.generation)?;
            let (_, global) = c.stacks_to_py(py, &gid, offsets, stack_frames, stop, out)?;
            if *signatures {
                let sigs = c.stack_signatures(py, frames, offsets, stack_frames, &global)?;
                out.set_item("signatures", sigs)?;
            }
        }
        Ok(())
    })
}
