//! `grprof._native`: the Rust twin of `grprof.formats._scan.Scanner`.
//!
//! `Scanner().feed(chunk)` any number of times, then `finish()` returns the dict that
//! `grprof.formats.traceback._from_native` turns into a `ScanResult`.

mod scan;

use std::borrow::Cow;

use pyo3::exceptions::PyRuntimeError;
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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scanner>()?;
    Ok(())
}
