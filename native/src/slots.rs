//! Instances of a slotted Python class made without running its `__init__`.
//!
//! `group()` makes one `aggregate.Group` per group: on a dump of 20,000 distinct stacks,
//! calling the dataclass's generated `__init__` (a Python frame binding 15 arguments) was a
//! fifth of `build_groups`. A `Maker` writes the values straight into the instance's slots,
//! as the `__init__`'s `self.x = x` would, at offsets it finds by probing one instance: it
//! sets each named slot to a distinct object as `object.__setattr__` does (through the
//! class's own descriptors; what a frozen dataclass's `__init__` uses, so frozen classes,
//! `Frame` and `Stack`, are made this way too) and looks for each object's address among the
//! instance's words. Only public API is used (no descriptor layout is assumed), and a class
//! the probe does not fully account for (a slot it was not told of, a `__dict__`, a name
//! that is not a slot) gets no `Maker`: the caller then calls the class.
//!
//! The same offsets read an instance's slots (`Maker::get`): `build_groups` reads three
//! fields of each of 20,000 `Stack`s, where `getattr` (a type lookup and a descriptor call
//! each) was a tenth of it.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyType};

pub struct Maker<'py> {
    ty: Bound<'py, PyType>,
    /// The byte offset of each named slot, in the order of the names.
    offsets: Vec<usize>,
}

const WORD: usize = std::mem::size_of::<*mut ffi::PyObject>();
/// An object's header: its reference count and its type.
const HEADER_WORDS: usize = 2;

impl<'py> Maker<'py> {
    /// A maker for `ty` whose instances hold exactly the slots `names` (any order), or None.
    pub fn new(ty: &Bound<'py, PyType>, names: &[&str]) -> PyResult<Option<Maker<'py>>> {
        let py = ty.py();
        let basic: usize = ty.getattr(intern!(py, "__basicsize__"))?.extract()?;
        // A `__dict__` or `__weakref__` (or a slot not named) would take a word more.
        if basic != (HEADER_WORDS + names.len()) * WORD {
            return Ok(None);
        }
        // SAFETY: `ty` is a live type; GenericAlloc returns a new, zeroed instance or NULL.
        let probe = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty.as_type_ptr(), 0))?
        };
        let marks: Vec<Bound<'py, PyAny>> =
            names.iter().map(|_| PyList::empty(py).into_any()).collect();
        for (name, mark) in names.iter().zip(&marks) {
            let name = PyString::new(py, name);
            // SAFETY: live objects; -1 (the name is no slot) leaves an exception, cleared.
            if unsafe { ffi::PyObject_GenericSetAttr(probe.as_ptr(), name.as_ptr(), mark.as_ptr()) }
                < 0
            {
                drop(PyErr::take(py));
                return Ok(None);
            }
        }
        let words = basic / WORD;
        let base = probe.as_ptr().cast::<*mut ffi::PyObject>();
        let mut offsets = Vec::with_capacity(names.len());
        for mark in &marks {
            // SAFETY: the instance is `basic` bytes long; each word is read as a pointer only.
            let hits: Vec<usize> = (HEADER_WORDS..words)
                .filter(|&w| unsafe { *base.add(w) } == mark.as_ptr())
                .collect();
            match hits[..] {
                [w] => offsets.push(w * WORD),
                _ => return Ok(None),
            }
        }
        Ok(Some(Maker {
            ty: ty.clone(),
            offsets,
        }))
    }

    /// The value in the slot of `names[i]` of `obj`, when `obj` is an instance of exactly
    /// this class and the slot is set; else None (a subclass may override the attribute, an
    /// unset slot raises: the caller then asks `getattr`).
    pub fn get(&self, obj: &Bound<'py, PyAny>, i: usize) -> Option<Bound<'py, PyAny>> {
        if obj.get_type_ptr() != self.ty.as_type_ptr() {
            return None;
        }
        // SAFETY: `obj` is a live instance of the probed class, whose slot `i` is at
        // `offsets[i]`; a set slot holds a live object (borrowed here, then owned by the result).
        unsafe {
            let p = *obj
                .as_ptr()
                .cast::<u8>()
                .add(self.offsets[i])
                .cast::<*mut ffi::PyObject>();
            (!p.is_null()).then(|| Bound::from_borrowed_ptr(obj.py(), p))
        }
    }

    /// A new instance with `values[i]` in the slot of `names[i]`.
    pub fn make<I>(&self, values: I) -> PyResult<Bound<'py, PyAny>>
    where
        I: IntoIterator<Item = Bound<'py, PyAny>>,
        I::IntoIter: ExactSizeIterator,
    {
        let values = values.into_iter();
        assert_eq!(values.len(), self.offsets.len(), "one value a slot");
        let py = self.ty.py();
        // SAFETY: a zeroed instance of a type whose slots are at `offsets` (probed in `new`);
        // each slot takes over one new reference, as a descriptor's set would store it.
        unsafe {
            let obj = Bound::from_owned_ptr_or_err(
                py,
                ffi::PyType_GenericAlloc(self.ty.as_type_ptr(), 0),
            )?;
            let base = obj.as_ptr().cast::<u8>();
            for (v, &off) in values.zip(&self.offsets) {
                *base.add(off).cast::<*mut ffi::PyObject>() = v.into_ptr();
            }
            Ok(obj)
        }
    }
}
