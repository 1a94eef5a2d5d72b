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
use pyo3::types::{PyBytes, PyDict, PyInt, PyTuple, PyType};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::scan::MulHasher;
use crate::slots::Maker;

/// An integer column (an `array` of 8-byte ints, or any sequence of ints) as a vector.
pub fn column(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    match PyBuffer::<i64>::get(obj) {
        Ok(buf) => buf.to_vec(obj.py()),
        Err(_) => obj.extract(),
    }
}

pub fn untrack(o: &Bound<'_, PyAny>) {
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
                i >= 0
                    && bits
                        .get(i as usize >> 6)
                        .is_some_and(|w| w & (1 << (i & 63)) != 0)
            }
            Present::Set(set) => set.contains(&i),
        }
    }
}

/// Group number -> group index: a vector when the numbers are small next to the `rows` of
/// the table (row keys: a whole table numbers its stacks from 0), else a hash map (a table
/// slice may number 100,000 stacks for 10 rows).
struct Slots {
    dense: Vec<u32>,
    map: HashMap<i64, u32, BuildHasherDefault<MulHasher>>,
}

impl Slots {
    fn new(numbers: &[i64], rows: usize) -> Slots {
        let top = numbers.iter().copied().max().unwrap_or(-1);
        let mut s = Slots {
            dense: Vec::new(),
            map: Default::default(),
        };
        if top >= 0 && (top as usize) <= 2 * rows + 1024 {
            s.dense = vec![u32::MAX; top as usize + 1];
        }
        for (i, &k) in numbers.iter().enumerate() {
            match s.dense.get_mut(usize::try_from(k).unwrap_or(usize::MAX)) {
                Some(d) => *d = i as u32,
                None => {
                    s.map.insert(k, i as u32);
                }
            }
        }
        s
    }

    fn get(&self, k: i64) -> Option<usize> {
        let i = match self.dense.get(usize::try_from(k).unwrap_or(usize::MAX)) {
            Some(&d) => d,
            None => *self.map.get(&k)?,
        };
        (i != u32::MAX).then_some(i as usize)
    }
}

/// The table's columns a per-goroutine group's members come from, and the types they are
/// made of: `ids` and `creator` (-1: none); `array` is `array.array`, `counts`
/// `CreatorCounts`.
pub struct Columns<'a, 'py> {
    pub ids: &'a Bound<'py, PyAny>,
    pub creator: &'a Bound<'py, PyAny>,
    pub array: &'a Bound<'py, PyType>,
    pub counts: &'a Bound<'py, PyType>,
}

/// A group's `ids`, `orphans` and `creators`.
pub type Members<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// Each group's members, for the groups numbered `numbers[i]` (in order of first row) with
/// `rows[i]` rows each, row r in group `keys[r]`: the rows put in group order by a counting
/// sort (rows keep their order within a group), then each group takes its slice of the id
/// and creator columns. With `untrack_all`, what is made here leaves the cyclic collector's
/// lists.
pub fn members<'py>(
    cols: &Columns<'_, 'py>,
    keys: Vec<i64>,
    numbers: &[i64],
    rows: &[usize],
    untrack_all: bool,
) -> PyResult<Vec<Members<'py>>> {
    let py = cols.array.py();
    let id_col = column(cols.ids)?;
    let cr_col = column(cols.creator)?;
    let n = keys.len();
    if id_col.len() != n || cr_col.len() != n {
        return Err(PyValueError::new_err("columns of different lengths"));
    }
    let mut start: Vec<usize> = Vec::with_capacity(rows.len() + 1);
    let mut pos = 0usize;
    for &r in rows {
        start.push(pos);
        pos += r;
    }
    start.push(pos);
    if pos != n {
        return Err(PyValueError::new_err(
            "group counts do not add up to the rows",
        ));
    }
    let slots = Slots::new(numbers, n);
    let present = Present::of(&id_col);
    let mut at: Vec<usize> = start[..rows.len()].to_vec();
    let mut sorted_ids = vec![0i64; n];
    let mut sorted_cr = vec![0i64; n];
    let mut orphans: Vec<Vec<i64>> = vec![Vec::new(); rows.len()];
    for r in 0..n {
        let gi = slots
            .get(keys[r])
            .ok_or_else(|| PyValueError::new_err("a row's group is not in groups"))?;
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
    let all_ids = cols.array.call1((q, i64_bytes(py, &sorted_ids)?))?;
    drop(sorted_ids);
    let all_cr = cols.array.call1((q, i64_bytes(py, &sorted_cr)?))?;
    let empty = PyTuple::empty(py).into_any();
    let new = cols.counts.getattr(intern!(py, "__new__"))?;
    let maker = Maker::new(cols.counts, &["creator_of"])?;
    let mut out = Vec::with_capacity(rows.len());
    // A group's slices share one slice object, whose end is the next group's start: one int
    // and one slice a group, where a slice per array made two ints each (past 256, none is
    // cached), some 100,000 allocations for 20,000 groups of one goroutine.
    let mut lo = 0usize.into_pyobject(py)?;
    for gi in 0..rows.len() {
        let (a, b) = (start[gi], start[gi + 1]);
        let hi = b.into_pyobject(py)?;
        let rows_of = slice(&lo, &hi)?;
        let member_ids = all_ids.get_item(&rows_of)?;
        let orphan_ids = if orphans[gi].is_empty() {
            empty.clone()
        } else if orphans[gi].len() == b - a {
            // Every member (a goroutine alone in its group, most often): the members' ids in
            // their order, a slice where an array made from bytes took a call and a copy more.
            let o = all_ids.get_item(&rows_of)?;
            if untrack_all {
                untrack(&o);
            }
            o
        } else {
            let o = cols.array.call1((q, i64_bytes(py, &orphans[gi])?))?;
            if untrack_all {
                untrack(&o);
            }
            o
        };
        let creators = if sorted_cr[a..b].iter().any(|c| *c >= 0) {
            let of = all_cr.get_item(&rows_of)?;
            let cc = match &maker {
                Some(m) => m.make([of.clone()])?,
                None => {
                    let cc = new.call1((cols.counts,))?;
                    cc.setattr(intern!(py, "creator_of"), &of)?;
                    cc
                }
            };
            if untrack_all {
                untrack(&of);
                untrack(&cc);
            }
            cc
        } else {
            PyDict::new(py).into_any()
        };
        if untrack_all {
            untrack(&member_ids);
        }
        out.push((member_ids, orphan_ids, creators));
        lo = hi;
    }
    Ok(out)
}

/// `slice(lo, hi)`.
fn slice<'py>(lo: &Bound<'py, PyInt>, hi: &Bound<'py, PyInt>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: live ints; the result is a new reference or NULL with an exception.
    unsafe {
        let p = ffi::PySlice_New(lo.as_ptr(), hi.as_ptr(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(lo.py(), p)
    }
}

/// Sets `ids`, `orphans` and `creators` of each group of `groups` (group number -> `Group`,
/// in order of first row; each group's `count` its number of rows) from the table's
/// columns (`Columns`; `members`). With `untrack`, the groups and what is made here leave
/// the cyclic collector's lists.
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
    let mut objs: Vec<Bound<'py, PyAny>> = Vec::with_capacity(groups.len());
    let mut rows: Vec<usize> = Vec::with_capacity(groups.len());
    let mut numbers: Vec<i64> = Vec::with_capacity(groups.len());
    for (k, g) in groups.iter() {
        numbers.push(k.extract()?);
        let c: i64 = g.getattr(intern!(py, "count"))?.extract()?;
        rows.push(usize::try_from(c).map_err(|_| PyValueError::new_err("negative count"))?);
        objs.push(g);
    }
    let cols = Columns {
        ids,
        creator,
        array,
        counts,
    };
    let made = members(&cols, column(keys)?, &numbers, &rows, untrack_all)?;
    for (g, (member_ids, orphan_ids, creators)) in objs.iter().zip(made) {
        g.setattr(intern!(py, "ids"), member_ids)?;
        g.setattr(intern!(py, "orphans"), orphan_ids)?;
        g.setattr(intern!(py, "creators"), creators)?;
        if untrack_all {
            untrack(g);
        }
    }
    Ok(())
}
