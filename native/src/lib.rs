//! `grprof._native`: the Rust twins of `grprof.formats._scan.Scanner` and of the debug=0
//! decoder in `grprof.formats.pprof`.
//!
//! `Scanner().feed(chunk)` any number of times, then `finish()` returns the dict that
//! `grprof.formats.traceback._from_native` turns into a `ScanResult`.
//! `decode_pprof(data, Frame)` returns the dict `grprof.formats.pprof._from_native` turns
//! into a snapshot, or raises ValueError(message, offset).

mod pprof;
mod scan;

use std::borrow::Cow;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

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

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.check()?;
        self.done = true;
        let out = self.inner.finish();
        to_dict(py, out)
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

fn bytes_list<'py>(py: Python<'py>, items: &[Vec<u8>]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, items.iter().map(|b| PyBytes::new(py, b)))
}

fn to_dict(py: Python<'_>, out: scan::ScanOutput) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ids", PyBytes::new(py, &out.ids))?;
    d.set_item("header", PyBytes::new(py, &out.header))?;
    d.set_item("stack", PyBytes::new(py, &out.stack))?;
    d.set_item("creator", PyBytes::new(py, &out.creator))?;
    d.set_item("argkey", PyBytes::new(py, &out.argkey))?;
    d.set_item("header_texts", bytes_list(py, &out.header_texts)?)?;
    d.set_item("stack_texts", bytes_list(py, &out.stack_texts)?)?;
    let anc = PyDict::new(py);
    for (row, text) in &out.ancestors {
        anc.set_item(row, PyBytes::new(py, text))?;
    }
    d.set_item("ancestors", anc)?;
    let dumps = PyList::empty(py);
    for (row, text) in &out.dumps {
        dumps.append(PyTuple::new(
            py,
            [
                row.into_pyobject(py)?.into_any(),
                PyBytes::new(py, text).into_any(),
            ],
        )?)?;
    }
    d.set_item("dumps", dumps)?;
    d.set_item("size", out.size)?;
    d.set_item("unterminated", out.unterminated)?;
    d.set_item("eof_in_block", out.eof_in_block)?;
    d.set_item("eof_in_dump", out.eof_in_dump)?;
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
#[pyfunction]
#[pyo3(signature = (data, frame, stop=None))]
fn decode_pprof<'py>(
    py: Python<'py>,
    data: &[u8],
    frame: &Bound<'py, PyAny>,
    stop: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let decoded = if data.len() >= DETACH_MIN {
        py.detach(|| pprof::decode(data))
    } else {
        pprof::decode(data)
    };
    let d = decoded.map_err(|e| PyValueError::new_err((e.message, e.pos)))?;
    let out = PyDict::new(py);
    out.set_item("profile", d.profile)?;
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
        let mut stops = Vec::with_capacity(frames.len());
        for f in &frames {
            stops.push(stop.call1((f,))?.is_truthy()?);
        }
        let mut classes: Vec<i64> = Vec::with_capacity(d.stack_offsets.len());
        let mut reps: Vec<i64> = Vec::new();
        let mut seen: pprof::FxMap<&[u32], i64> = pprof::FxMap::default();
        for (si, w) in d.stack_offsets.windows(2).enumerate() {
            let ids = &d.stack_frames[w[0]..w[1]];
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
        out.set_item("state_class", i64_bytes(py, &classes))?;
        out.set_item("state_reps", reps)?;
    }
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
    Ok(out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scanner>()?;
    m.add_function(wrap_pyfunction!(decode_pprof, m)?)?;
    Ok(())
}
