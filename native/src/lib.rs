//! `grprof._native`: the Rust twins of `grprof.formats._scan.Scanner` and of the debug=0
//! decoder in `grprof.formats.pprof`.
//!
//! `Scanner().feed(chunk)` any number of times, then `finish(Frame)` returns the dict that
//! `grprof.formats.traceback._from_native` turns into a `ScanResult`: the scanner parses
//! each distinct stack when it first meets it, so the dict holds the stacks as frames
//! (`frame` objects, one per call site), never their texts.
//! `decode_pprof(data, Frame)` returns the dict `grprof.formats.pprof._from_native` turns
//! into a snapshot, or raises ValueError(message, offset).
//! `parse_debug1(data, Frame, stop)` returns the dict `grprof.formats.debug1._from_native`
//! turns into snapshots (the debug=1 text twin of `grprof.formats.debug1._Reader`).
//! `parse_stacks(texts, Frame)` parses the scanner's distinct debug=2 stack texts (the twin
//! of `grprof.formats.traceback._parse_stack`).
//! `signatures_of(stacks, argkeys, loose)` and `loose_groups_of(stacks, loose)` compute group
//! signatures (the twins of `grprof.aggregate._stack_bytes` + `_digest_bytes`).
//! `stack_tree_of(groups, node)` builds the flame graphs' stack tree (the twin of
//! `grprof.aggregate._stack_tree`).

mod debug1;
mod groups;
mod members;
mod objcache;
mod pipeline;
mod pprof;
mod scan;
mod signature;
mod slots;
mod stacks;
mod tree;

use std::borrow::Cow;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::slots::Maker;

/// Below this a chunk is scanned without releasing the GIL (not worth the round trip).
const DETACH_MIN: usize = 64 << 10;

#[pyclass(module = "grprof._native")]
struct Scanner {
    /// Boxed: memchr's AVX2 searchers are 32-byte aligned, and Python allocates the object
    /// a pyclass lives in with 16-byte alignment only (an aligned load there faults).
    inner: Box<scan::Scanner>,
    done: bool,
}

#[pymethods]
impl Scanner {
    #[new]
    fn new() -> Self {
        Scanner {
            inner: Box::new(scan::Scanner::new()),
            done: false,
        }
    }

    fn feed(&mut self, py: Python<'_>, chunk: Cow<'_, [u8]>) -> PyResult<()> {
        self.check()?;
        let inner = &mut self.inner;
        if chunk.len() >= DETACH_MIN {
            py.detach(|| inner.feed(&chunk));
        } else {
            inner.feed(&chunk);
        }
        self.check()
    }

    /// `signatures`: start hashing the stacks' signatures when there are many (see
    /// `parsed_to_py`); a caller with its own cache of them says False. With `stack` (the
    /// `Stack` class) the stacks come as `Stack` objects rather than rows (`stacks_to_py`).
    #[pyo3(signature = (frame, signatures=true, stack=None))]
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        frame: &Bound<'py, PyAny>,
        signatures: bool,
        stack: Option<&Bound<'py, PyType>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.check()?;
        self.done = true;
        let out = self.inner.finish();
        to_dict(py, out, frame, signatures, stack)
    }
}

impl Scanner {
    /// A scanner is used once: `finish()` hands its result over.
    fn check(&self) -> PyResult<()> {
        if self.done {
            return Err(PyRuntimeError::new_err(
                "Scanner.finish() was already called",
            ));
        }
        Ok(())
    }
}

/// The texts as Python bytes, each Rust buffer freed once copied: a dump with 100,000
/// distinct stacks holds some 140 MB of them, which must not be held twice.
fn bytes_list(py: Python<'_>, items: Vec<Vec<u8>>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for b in items {
        list.append(PyBytes::new(py, &b))?;
    }
    Ok(list)
}

/// `out` moves into Python piece by piece, each piece dropped once copied (see `bytes_list`).
fn to_dict<'py>(
    py: Python<'py>,
    out: scan::ScanOutput,
    frame: &Bound<'py, PyAny>,
    hash: bool,
    stack_type: Option<&Bound<'py, PyType>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let scan::ScanOutput {
        ids,
        header,
        stack,
        creator,
        argkey,
        header_texts,
        stacks: parsed,
        dumper,
        ancestors,
        dumps: dump_list,
        size,
        unterminated,
        eof_in_block,
        eof_in_dump,
    } = out;
    for (name, col) in [
        ("ids", ids),
        ("header", header),
        ("stack", stack),
        ("creator", creator),
        ("argkey", argkey),
    ] {
        d.set_item(name, PyBytes::new(py, &col))?;
    }
    d.set_item("header_texts", bytes_list(py, header_texts)?)?;
    let (stacks, index, dangling, sigs) = parsed_to_py(py, parsed, frame, hash, stack_type)?;
    d.set_item("stacks", stacks)?;
    d.set_item("signatures", sigs)?;
    d.set_item("text_stack", index)?;
    d.set_item("dangling", dangling)?;
    d.set_item("dumper", PyBytes::new(py, &dumper))?;
    let anc = PyDict::new(py);
    for (row, text) in &ancestors {
        anc.set_item(row, PyBytes::new(py, text))?;
    }
    d.set_item("ancestors", anc)?;
    let dumps = PyList::empty(py);
    for (row, text) in &dump_list {
        dumps.append(PyTuple::new(
            py,
            [
                row.into_pyobject(py)?.into_any(),
                PyBytes::new(py, text).into_any(),
            ],
        )?)?;
    }
    d.set_item("dumps", dumps)?;
    d.set_item("size", size)?;
    d.set_item("unterminated", unterminated)?;
    d.set_item("eof_in_block", eof_in_block)?;
    d.set_item("eof_in_dump", eof_in_dump)?;
    Ok(d)
}

fn i64_bytes<'py>(py: Python<'py>, v: &[i64]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(v.len() * 8);
    for x in v {
        out.extend_from_slice(&x.to_ne_bytes());
    }
    PyBytes::new(py, &out)
}

/// Decode a gunzipped goroutine profile.proto; `frame` is `grprof.model.Frame`.
///
/// `stop(frame) -> bool`, when given, says where a stack's wait state stops depending on
/// its frames: the state of a stack is taken to depend only on its frames up to the first
/// one `stop` accepts and the one after it. Stacks equal in that prefix share a "state
/// class" (`state_class` per stack, `state_reps`: the first stack of each class).
///
/// With `stack` (`grprof.table.Stack`) and `rules` (what `stop`'s answers depend on), frames
/// and stacks come from the process-wide cache of `objcache` and the dict holds what
/// `objcache::decoded_to_py` describes instead of `locs`, `stacks` as tuples and the classes.
///
/// `signatures` (with `stack`): from `SIGNATURES_THREAD_MIN` stacks, `signatures` in the dict
/// is their signatures being hashed, as `Scanner.finish` does; below, the list of them (each
/// stack hashed once while the cache holds it); None without `signatures`.
#[pyfunction]
#[pyo3(signature = (data, frame, stop=None, stack=None, rules=None, signatures=false))]
fn decode_pprof<'py>(
    py: Python<'py>,
    data: &[u8],
    frame: &Bound<'py, PyAny>,
    stop: Option<&Bound<'py, PyAny>>,
    stack: Option<&Bound<'py, pyo3::types::PyType>>,
    rules: Option<&Bound<'py, PyAny>>,
    signatures: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let decoded = if data.len() >= DETACH_MIN {
        py.detach(|| pprof::decode(data))
    } else {
        pprof::decode(data)
    };
    let d = decoded.map_err(|e| PyValueError::new_err((e.message, e.pos)))?;
    let out = PyDict::new(py);
    out.set_item("profile", d.profile)?;
    if let (Some(stack), Some(stop), Some(rules)) = (stack, stop, rules) {
        // Hashed while the cache makes the Python objects and `pprof._build` the table.
        let n = d.stack_offsets.len().saturating_sub(1);
        let pending = start_signatures(py, signatures, n, || {
            signature::profile_stacks(&d.frames, &d.stack_offsets, &d.stack_frames)
        })?;
        // A smaller profile's are hashed now, each stack's once while the cache holds it.
        let cached = signatures && pending.is_none();
        out.set_item("signatures", pending)?;
        let frame = frame.cast::<pyo3::types::PyType>()?;
        objcache::decoded_to_py(py, &d, frame, stack, stop, rules, cached, &out)?;
        pprof_rest(py, &d, &out)?;
        return Ok(out);
    }
    let mut frames: Vec<Bound<'py, PyAny>> = Vec::with_capacity(d.frames.len());
    for (name, file, line) in &d.frames {
        frames.push(frame.call1((name.as_str(), file.as_str(), *line))?);
    }
    let tuples = |ids: &[Vec<u32>]| -> PyResult<Bound<'py, PyList>> {
        let items: PyResult<Vec<Bound<'py, PyTuple>>> = ids
            .iter()
            .map(|s| PyTuple::new(py, s.iter().map(|i| &frames[*i as usize])))
            .collect();
        PyList::new(py, items?)
    };
    out.set_item("locs", tuples(&d.locs)?)?;
    let stacks = PyList::empty(py);
    for w in d.stack_offsets.windows(2) {
        let ids = &d.stack_frames[w[0]..w[1]];
        stacks.append(PyTuple::new(py, ids.iter().map(|i| &frames[*i as usize]))?)?;
    }
    out.set_item("stacks", stacks)?;
    if let Some(stop) = stop {
        let (classes, reps) = state_classes(&frames, &d.stack_offsets, &d.stack_frames, stop)?;
        out.set_item("state_class", i64_bytes(py, &classes))?;
        out.set_item("state_reps", reps)?;
    }
    pprof_rest(py, &d, &out)?;
    Ok(out)
}

/// Label sets, rows, time and origin: the same with or without the cache.
fn pprof_rest<'py>(
    py: Python<'py>,
    d: &pprof::Decoded<'_>,
    out: &Bound<'py, PyDict>,
) -> PyResult<()> {
    let s = |i: u32| d.strings[i as usize].as_ref();
    let labelsets = PyList::empty(py);
    for ls in &d.labelsets {
        let mut pairs = Vec::with_capacity(ls.len());
        for (k, v) in ls {
            let v = match v {
                pprof::LabelValue::Str(i) => s(*i).to_string(),
                pprof::LabelValue::Num(n) => n.to_string(),
            };
            pairs.push((s(*k), v));
        }
        labelsets.append(PyTuple::new(py, pairs)?)?;
    }
    out.set_item("labelsets", labelsets)?;
    out.set_item("row_stack", i64_bytes(py, &d.row_stack))?;
    out.set_item("row_labels", i64_bytes(py, &d.row_labels))?;
    out.set_item("row_count", i64_bytes(py, &d.row_count))?;
    out.set_item("time_nanos", d.time_nanos)?;
    match &d.origin {
        Ok(o) => {
            out.set_item("origin", o.map(|(b, id)| (s(b), s(id))))?;
            out.set_item("origin_error", py.None())?;
        }
        Err(e) => {
            out.set_item("origin", py.None())?;
            out.set_item("origin_error", (e.message.as_str(), e.pos))?;
        }
    }
    Ok(())
}

/// Stacks grouped by the frames their wait state can depend on: `stop(frame)` says where a
/// stack's state stops depending on its frames (up to the first frame it accepts and the one
/// after it). Returns the class of each stack and the first stack of each class.
fn state_classes(
    frames: &[Bound<'_, PyAny>],
    offsets: &[usize],
    stack_frames: &[u32],
    stop: &Bound<'_, PyAny>,
) -> PyResult<(Vec<i64>, Vec<i64>)> {
    let mut stops = Vec::with_capacity(frames.len());
    for f in frames {
        stops.push(stop.call1((f,))?.is_truthy()?);
    }
    let mut classes: Vec<i64> = Vec::with_capacity(offsets.len());
    let mut reps: Vec<i64> = Vec::new();
    let mut seen: pprof::FxMap<&[u32], i64> = pprof::FxMap::default();
    for (si, w) in offsets.windows(2).enumerate() {
        let ids = &stack_frames[w[0]..w[1]];
        let k = ids
            .iter()
            .position(|i| stops[*i as usize])
            .unwrap_or(ids.len());
        let prefix = &ids[..(k + 2).min(ids.len())];
        let next = reps.len() as i64;
        let c = *seen.entry(prefix).or_insert(next);
        if c == next {
            reps.push(si as i64);
        }
        classes.push(c);
    }
    Ok((classes, reps))
}

/// Parse a debug=1 text profile (one or more concatenated); `frame` is `grprof.model.Frame`,
/// `stop` as for `decode_pprof`. Returns the dict `grprof.formats.debug1._from_native` turns
/// into snapshots; errors are data (`"error"`), since the Python side parses the label lines
/// and a bad one before the first bad line wins.
///
/// With `stack` and `rules`, as for `decode_pprof`: each profile's `stacks`, `frames` and
/// state classes come from `objcache::debug1_to_py` (with `frames_key` and `generation`),
/// and with `signatures` each profile's `signatures` are as `decode_pprof`'s.
#[pyfunction]
#[pyo3(signature = (data, frame, stop, stack=None, rules=None, signatures=false))]
fn parse_debug1<'py>(
    py: Python<'py>,
    data: &[u8],
    frame: &Bound<'py, PyAny>,
    stop: &Bound<'py, PyAny>,
    stack: Option<&Bound<'py, pyo3::types::PyType>>,
    rules: Option<&Bound<'py, PyAny>>,
    signatures: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = if data.len() >= DETACH_MIN {
        py.detach(|| debug1::parse(data))
    } else {
        debug1::parse(data)
    };
    let out = PyDict::new(py);
    let cached = stack.zip(rules);
    let mut frames: Vec<Bound<'py, PyAny>> = Vec::new();
    if cached.is_none() {
        frames.reserve(d.frames.len());
        for (name, file, line) in &d.frames {
            frames.push(frame.call1((name.as_str(), file.as_str(), *line))?);
        }
    }
    let profiles = PyList::empty(py);
    let mut dicts = Vec::new();
    for p in &d.profiles {
        let pd = PyDict::new(py);
        pd.set_item(
            "profile",
            if p.leak { "goroutineleak" } else { "goroutine" },
        )?;
        pd.set_item("total", p.total)?;
        pd.set_item("cut", p.cut)?;
        if cached.is_some() {
            let n = p.stack_offsets.len().saturating_sub(1);
            let pending = start_signatures(py, signatures, n, || {
                signature::profile_stacks(&d.frames, &p.stack_offsets, &p.stack_frames)
            })?;
            let from_cache = signatures && pending.is_none();
            pd.set_item("signatures", pending)?;
            dicts.push((
                &p.stack_offsets[..],
                &p.stack_frames[..],
                pd.clone(),
                from_cache,
            ));
        } else {
            let stacks = PyList::empty(py);
            for w in p.stack_offsets.windows(2) {
                let ids = &p.stack_frames[w[0]..w[1]];
                stacks.append(PyTuple::new(py, ids.iter().map(|i| &frames[*i as usize]))?)?;
            }
            pd.set_item("stacks", stacks)?;
            // The profile's distinct frames, first use first (for its Go version).
            let mut seen = vec![false; frames.len()];
            let used = PyList::empty(py);
            for i in &p.stack_frames {
                if !std::mem::replace(&mut seen[*i as usize], true) {
                    used.append(&frames[*i as usize])?;
                }
            }
            pd.set_item("frames", used)?;
            let (classes, reps) = state_classes(&frames, &p.stack_offsets, &p.stack_frames, stop)?;
            pd.set_item("state_class", i64_bytes(py, &classes))?;
            pd.set_item("state_reps", reps)?;
        }
        pd.set_item("row_stack", i64_bytes(py, &p.row_stack))?;
        pd.set_item("row_labels", i64_bytes(py, &p.row_labels))?;
        pd.set_item("row_count", i64_bytes(py, &p.row_count))?;
        pd.set_item("row_hidden", i64_bytes(py, &p.row_hidden))?;
        let fallback = PyList::empty(py);
        for (row, pcs, first) in &p.fallback {
            fallback.append((
                *row,
                PyBytes::new(py, &data[pcs.0..pcs.1]),
                PyBytes::new(py, &data[first.0..first.1]),
            ))?;
        }
        pd.set_item("fallback", fallback)?;
        profiles.append(pd)?;
    }
    if let Some((stack, rules)) = cached {
        let frame = frame.cast::<pyo3::types::PyType>()?;
        objcache::debug1_to_py(py, &d.frames, &dicts, frame, stack, stop, rules)?;
    }
    out.set_item("profiles", profiles)?;
    let labels = PyList::empty(py);
    for l in &d.labels {
        labels.append((
            PyBytes::new(py, &data[l.start..l.end]),
            l.start,
            l.brace,
            l.last,
        ))?;
    }
    out.set_item("labels", labels)?;
    let hidden = PyList::empty(py);
    for h in &d.hidden {
        hidden.append(PyTuple::new(py, h)?)?;
    }
    out.set_item("hidden", hidden)?;
    let code = PyList::empty(py);
    for (pc, point) in &d.code {
        code.append((point.as_str(), *pc))?;
    }
    out.set_item("code", code)?;
    match &d.error {
        None => out.set_item("error", py.None())?,
        Some(debug1::Error::Expected(what, start, end)) => {
            let what = match what {
                debug1::Expected::Header => "header",
                debug1::Expected::Block => "block",
                debug1::Expected::Frame => "frame",
                debug1::Expected::First => "first",
            };
            let shown = &data[*start..(*end).min(*start + 60)];
            out.set_item("error", (what, *start, PyBytes::new(py, shown)))?
        }
        Some(debug1::Error::CountRange(digits, at)) => {
            out.set_item("error", ("count", *at, digits.as_str()))?
        }
    }
    Ok(out)
}

/// The distinct stack texts of a debug=2 dump (`ScanResult.stack_texts`) -> (stacks, index,
/// dangling): the distinct stacks as `(frames, elided, created_by)` (`frames` a tuple of
/// `frame` objects, equal frames one object; `created_by` one or None), each text's stack
/// (int64 bytes) and whether it ends without its last file line (one byte per text); what
/// `traceback._parse_stacks` gives from `_parse_stack`.
#[pyfunction]
fn parse_stacks<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyList>,
    frame: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let owned: Vec<Bound<'py, PyBytes>> = texts
        .iter()
        .map(|t| t.cast_into::<PyBytes>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let views: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
    let size: usize = views.iter().map(|v| v.len()).sum();
    let d = if size >= DETACH_MIN {
        py.detach(|| stacks::parse(&views))
    } else {
        stacks::parse(&views)
    };
    let (stacks, index, dangling, _) = parsed_to_py(py, d, frame, false, None)?;
    PyTuple::new(
        py,
        [stacks.into_any(), index.into_any(), dangling.into_any()],
    )
}

/// Stacks from which the parsers start hashing their signatures on other threads while they
/// make the Python objects. Below it `aggregate.group` hashes them as before.
const SIGNATURES_THREAD_MIN: usize = 2000;

/// The signatures of `n` stacks (`input()`) being hashed, when asked (`hash`) and from
/// `SIGNATURES_THREAD_MIN` stacks; else None.
fn start_signatures<'py>(
    py: Python<'py>,
    hash: bool,
    n: usize,
    input: impl FnOnce() -> signature::Stacks,
) -> PyResult<Option<Bound<'py, signature::PendingSignatures>>> {
    (hash && n >= SIGNATURES_THREAD_MIN)
        .then(|| Bound::new(py, signature::PendingSignatures::start(input())))
        .transpose()
}

/// What `parsed_to_py` returns.
type PyParsed<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Option<Bound<'py, signature::PendingSignatures>>,
);

/// Parsed stacks as Python: the distinct stacks as `(frames, elided, created_by)` (`frames`
/// a tuple of `frame` objects, one object per distinct frame; `created_by` one or None),
/// each text's stack (int64 bytes), each text's dangling flag (a byte each), and, with
/// `hash` and from `SIGNATURES_THREAD_MIN` stacks, their signatures being hashed.
fn parsed_to_py<'py>(
    py: Python<'py>,
    d: stacks::Parsed,
    frame: &Bound<'py, PyAny>,
    hash: bool,
    stack: Option<&Bound<'py, PyType>>,
) -> PyResult<PyParsed<'py>> {
    // A dump of many distinct stacks: `aggregate.group` needs every one's signature, and
    // hashing them from the parsed strings on other threads, from now until `group` asks,
    // costs it nothing where hashing them from the Python objects then (`signatures_of`)
    // was a third of `load(...).groups()` on 20,000 distinct stacks.
    let pending = start_signatures(py, hash, d.stacks.len(), || signature::parsed_stacks(&d))?;
    let out = stacks_to_py(py, &d, frame, stack)?;
    let dangling: Vec<u8> = d.dangling.iter().map(|b| *b as u8).collect();
    Ok((
        out,
        i64_bytes(py, &d.index),
        PyBytes::new(py, &dangling),
        pending,
    ))
}

/// The parsed stacks as Python `(frames tuple, elided, created by)` rows, or with `stack`
/// (`grprof.table.Stack`) as `Stack` objects; a `frame` per distinct frame. A class's
/// objects are made without its `__init__` (`slots::Maker`; the frozen dataclasses' `__init__`
/// only sets their fields: on 20,000 distinct stacks `table.stacks_of` over the rows took
/// 4.5 ms and `Frame(...)` 1 µs a frame), else by calling it; objects made so are left out
/// of the cyclic collector's lists, as the frames tuples are (`stacks::untrack_frames`).
fn stacks_to_py<'py>(
    py: Python<'py>,
    d: &stacks::Parsed,
    frame: &Bound<'py, PyAny>,
    stack: Option<&Bound<'py, PyType>>,
) -> PyResult<Bound<'py, PyList>> {
    let frame_maker = match frame.cast::<PyType>() {
        Ok(t) => Maker::new(t, &["function", "file", "line"])?,
        Err(_) => None,
    };
    let mut frames: Vec<Bound<'py, PyAny>> = Vec::with_capacity(d.frames.len());
    for (name, file, line) in &d.frames {
        frames.push(match &frame_maker {
            Some(m) => {
                let f = m.make([
                    PyString::new(py, name).into_any(),
                    PyString::new(py, file).into_any(),
                    line.into_pyobject(py)?.into_any(),
                ])?;
                // Two strings and an int: in no cycle (see `untrack_frames`).
                members::untrack(&f);
                f
            }
            None => frame.call1((name.as_str(), file.as_str(), *line))?,
        });
    }
    let stack_maker = match stack {
        Some(t) => Maker::new(t, &["frames", "frames_elided", "created_by"])?,
        None => None,
    };
    let st = &d.stacks;
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(st.len());
    for i in 0..st.len() {
        let tuple = PyTuple::new(py, st.frames_of(i).iter().map(|f| &frames[*f as usize]))?;
        stacks::untrack_frames(&tuple);
        let created = if st.created[i] >= 0 {
            frames[st.created[i] as usize].clone()
        } else {
            py.None().into_bound(py)
        };
        let elided = PyBool::new(py, st.elided[i]).to_owned().into_any();
        out.push(match &stack_maker {
            Some(m) => {
                let s = m.make([tuple.into_any(), elided, created])?;
                // Its untracked frames, a bool and a frame: in no cycle either. The young
                // collection after `load` walked these 20,000 stacks once more to find them alive.
                members::untrack(&s);
                s
            }
            None => PyTuple::new(py, [tuple.into_any(), elided, created])?.into_any(),
        });
    }
    PyList::new(py, out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scanner>()?;
    m.add_class::<signature::PendingSignatures>()?;
    m.add_function(wrap_pyfunction!(decode_pprof, m)?)?;
    m.add_function(wrap_pyfunction!(parse_debug1, m)?)?;
    m.add_function(wrap_pyfunction!(parse_stacks, m)?)?;
    m.add_function(wrap_pyfunction!(signature::signatures_of, m)?)?;
    m.add_function(wrap_pyfunction!(signature::loose_groups_of, m)?)?;
    m.add_function(wrap_pyfunction!(tree::stack_tree_of, m)?)?;
    m.add_function(wrap_pyfunction!(tree::untrack_groups, m)?)?;
    m.add_function(wrap_pyfunction!(members::attach_members, m)?)?;
    m.add_function(wrap_pyfunction!(groups::build_groups, m)?)?;
    Ok(())
}
