//! Group members: the twin of `grprof.aggregate._attach_members` (and `_attach_single`).
//!
//! `group()` puts each per-goroutine group's member ids, creator ids and orphans in
//! `array('q')` slices of two columns sorted by group. In Python that is a loop over the rows
//! and another over the groups (some 20 ms each for 20,000 distinct stacks); here both run
//! on integers, and the Python objects are made once each: two whole columns, then per group
//! two slices, a `CreatorCounts` when a member names its creator, an orphans array when
//! there are orphans. Everything made here, and the groups, leave the cyclic collector's
//! lists (see `tree::untrack_groups`). tests/test_aggregate_equivalence.py and
//! tests/test_group_members_json.py hold it to the Python path.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::scan::MulHasher;

fn column(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    match PyBuffer::<i64>::get(obj) {
        Ok(buf) => buf.to_vec(obj.py()),
        Err(_) => obj.extract(),
    }
}

fn untrack(o: &Bound<'_, PyAny>) {
    // SAFETY: a live object; only a tracked object (of a GC type) is untracked.
    unsafe {
        if ffi::PyObject_GC_IsTracked(o.as_ptr()) == 1 {
            ffi::PyObject_GC_UnTrack(o.as_ptr().cast());
        }
    }
}

fn i64_bytes<'py>(py: Python<'py>, v: &[i64]) -> PyResult<Bound<'py, PyBytes>> {
    // Written in place: no second copy of a column the size of the table.
    PyBytes::new_with(py, v.len() * 8, |out| {
        for (dst, x) in out.chunks_exact_mut(8).zip(v) {
            dst.copy_from_slice(&x.to_ne_bytes());
        }
        Ok(())
    })
}

/// The goroutine ids present, as a bitmap when they are small (they count up from 1 in a
/// process: 128 KB for a million), else a hash set (tens of MB for a million).
enum Present {
    Bits(Vec<u64>),
    Set(HashSet<i64, BuildHasherDefault<MulHasher>>),
}

impl Present {
    fn of(ids: &[i64]) -> Present {
        let top = ids.iter().copied().max().unwrap_or(0);
        if ids.iter().all(|&i| i >= 0) && top < (1 << 28) {
            let mut bits = vec![0u64; (top as usize >> 6) + 1];
            for &i in ids {
                bits[i as usize >> 6] |= 1 << (i & 63);
            }
            Present::Bits(bits)
        } else {
            Present::Set(ids.iter().copied().collect())
        }
    }

    fn contains(&self, i: i64) -> bool {
        match self {
            Present::Bits(bits) => {
                i >= 0 && bits.get(i as usize >> 6).is_some_and(|w| w & (1 << (i & 63)) != 0)
            }
            Present::Set(set) => set.contains(&i),
        }
    }
}

/// Sets `ids`, `orphans` and `creators` of each group of `groups` (group number -> `Group`,
/// in order of first row; each group's `count` its number of rows) from the table's
/// columns: `keys` (each row's group number), `ids` and `creator` (-1: none). `array` is
/// `array.array`, `counts` `CreatorCounts`. With `untrack`, the groups and what is made here
/// leave the cyclic collector's lists.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn attach_members<'py>(
    py: Python<'py>,
    groups: &Bound<'py, PyDict>,
    keys: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    creator: &Bound<'py, PyAny>,
    array: &Bound<'py, PyType>,
    counts: &Bound<'py, PyType>,
    untrack_all: bool,
) -> PyResult<()> {
    let keys = column(keys)?;
    let id_col = column(ids)?;
    let cr_col = column(creator)?;
    let n = keys.len();
    if id_col.len() != n || cr_col.len() != n {
        return Err(PyValueError::new_err("columns of different lengths"));
    }
    let mut objs: Vec<Bound<'py, PyAny>> = Vec::with_capacity(groups.len());
    // Group number -> (its index in `objs`); numbers are row keys, small next to the rows
    // in a whole table, possibly sparse in a slice.
    let top = keys.iter().copied().max().unwrap_or(-1);
    let dense = top >= 0 && (top as usize) <= 2 * n + 1024;
    let mut slot_dense: Vec<u32> = if dense {
        vec![u32::MAX; top as usize + 1]
    } else {
        Vec::new()
    };
    let mut slot_map: std::collections::HashMap<i64, u32, BuildHasherDefault<MulHasher>> =
        Default::default();
    let mut start: Vec<usize> = Vec::with_capacity(groups.len() + 1);
    let mut pos = 0usize;
    for (k, g) in groups.iter() {
        let k: i64 = k.extract()?;
        let c: i64 = g.getattr(intern!(py, "count"))?.extract()?;
        let i = objs.len() as u32;
        if dense && k >= 0 && k <= top {
            slot_dense[k as usize] = i;
        } else {
            slot_map.insert(k, i);
        }
        start.push(pos);
        pos += usize::try_from(c).map_err(|_| PyValueError::new_err("negative count"))?;
        objs.push(g);
    }
    start.push(pos);
    if pos != n {
        return Err(PyValueError::new_err("group counts do not add up to the rows"));
    }
    let slot = |k: i64| -> PyResult<usize> {
        let i = if dense && k >= 0 && k <= top {
            slot_dense[k as usize]
        } else {
            slot_map.get(&k).copied().unwrap_or(u32::MAX)
        };
        if i == u32::MAX {
            return Err(PyValueError::new_err("a row's group is not in groups"));
        }
        Ok(i as usize)
    };
    let present = Present::of(&id_col);
    let mut at: Vec<usize> = start[..objs.len()].to_vec();
    let mut sorted_ids = vec![0i64; n];
    let mut sorted_cr = vec![0i64; n];
    let mut orphans: Vec<Vec<i64>> = vec![Vec::new(); objs.len()];
    for r in 0..n {
        let gi = slot(keys[r])?;
        let p = at[gi];
        at[gi] = p + 1;
        let (gid, cr) = (id_col[r], cr_col[r]);
        sorted_ids[p] = gid;
        sorted_cr[p] = cr;
        if cr >= 0 && !present.contains(cr) {
            orphans[gi].push(gid);
        }
    }
    drop(present);
    drop((keys, id_col, cr_col)); // copies of the columns: freed before the arrays are made
    let q = intern!(py, "q");
    let all_ids = array.call1((q, i64_bytes(py, &sorted_ids)?))?;
    drop(sorted_ids);
    let all_cr = array.call1((q, i64_bytes(py, &sorted_cr)?))?;
    let empty = PyTuple::empty(py);
    let new = counts.getattr(intern!(py, "__new__"))?;
    for (gi, g) in objs.iter().enumerate() {
        let (a, b) = (start[gi], start[gi + 1]);
        let member_ids = all_ids.get_slice(a, b)?;
        g.setattr(intern!(py, "ids"), &member_ids)?;
        if orphans[gi].is_empty() {
            g.setattr(intern!(py, "orphans"), &empty)?;
        } else {
            let o = array.call1((q, i64_bytes(py, &orphans[gi])?))?;
            g.setattr(intern!(py, "orphans"), &o)?;
            if untrack_all {
                untrack(&o);
            }
        }
        if sorted_cr[a..b].iter().any(|c| *c >= 0) {
            let of = all_cr.get_slice(a, b)?;
            let cc = new.call1((counts,))?;
            cc.setattr(intern!(py, "creator_of"), &of)?;
            g.setattr(intern!(py, "creators"), &cc)?;
            if untrack_all {
                untrack(&of);
                untrack(&cc);
            }
        } else {
            g.setattr(intern!(py, "creators"), PyDict::new(py))?;
        }
        if untrack_all {
            untrack(&member_ids);
            untrack(g);
        }
    }
    Ok(())
}

trait Slice<'py> {
    fn get_slice(&self, a: usize, b: usize) -> PyResult<Bound<'py, PyAny>>;
}

impl<'py> Slice<'py> for Bound<'py, PyAny> {
    fn get_slice(&self, a: usize, b: usize) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: a live sequence; the result is a new reference or NULL with an exception.
        unsafe {
            let p = ffi::PySequence_GetSlice(self.as_ptr(), a as ffi::Py_ssize_t, b as ffi::Py_ssize_t);
            Bound::from_owned_ptr_or_err(self.py(), p)
        }
    }
}
