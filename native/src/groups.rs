//! Groups from (group, header) counts: the twin of `grprof.aggregate._build_groups`.
//!
//! `group()` counts goroutines per (group number, header) pair on integer columns, then makes
//! one `Group` per group: its count, its states, wait minutes and labels summed over its pairs
//! (each dict sorted as `group()` documents), its stack, signature and flags. In Python that
//! loop cost about 1.5 µs a group, most of it bytecode around the dataclass's `__init__`
//! (20,000 distinct stacks: some 35 ms of the 50 ms `groups()` took after `load()`); here the
//! sums run on integers, the dicts are made once each with their final order, and the
//! groups are sorted (largest first, ties by signature) before they are returned.
//! tests/test_aggregate_equivalence.py holds it to the Python path and to the reference.

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::members::{self, untrack, Columns};
use crate::scan::MulHasher;
use crate::signature::PendingSignatures;
use crate::slots::Maker;

/// `build_groups`' `members`: ids, creator, `array`, `CreatorCounts`.
type MemberArgs<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyType>,
    Bound<'py, PyType>,
);

/// `Group`'s fields in the order of its constructor's arguments (`aggregate.Group`).
const GROUP_FIELDS: [&str; 15] = [
    "signature",
    "count",
    "frames",
    "frames_elided",
    "created_by",
    "states",
    "wait_minutes",
    "labels",
    "ids",
    "orphans",
    "leaked",
    "locked_to_thread",
    "partial",
    "creators",
    "state_inferred",
];

/// `grprof.table.Stack`'s fields, as `Maker::get` reads them.
const STACK_FIELDS: [&str; 3] = ["frames", "frames_elided", "created_by"];

/// `seq[k]`: a list's item read directly when `k` is within it.
fn item<'py>(
    list: Option<&Bound<'py, PyList>>,
    seq: &Bound<'py, PyAny>,
    k: i64,
) -> PyResult<Bound<'py, PyAny>> {
    match (list, usize::try_from(k)) {
        (Some(l), Ok(i)) if i < l.len() => l.get_item(i),
        _ => seq.get_item(k),
    }
}

/// What one `grprof.table.Header` says, read once per header a group uses.
struct Fact<'py> {
    state: Bound<'py, PyAny>,
    wait: i64,
    wait_obj: Bound<'py, PyAny>,
    labels: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    leaked: bool,
    locked: bool,
}

fn fact<'py>(h: &Bound<'py, PyAny>) -> PyResult<Fact<'py>> {
    let py = h.py();
    let wait_obj = h.getattr(intern!(py, "wait_minutes"))?;
    let mut labels = Vec::new();
    for pair in h.getattr(intern!(py, "labels_key"))?.try_iter()? {
        let pair = pair?;
        let pair = pair.cast::<PyTuple>()?;
        labels.push((pair.get_item(0)?, pair.get_item(1)?));
    }
    Ok(Fact {
        state: h.getattr(intern!(py, "state"))?,
        wait: wait_obj.extract()?,
        wait_obj,
        labels,
        leaked: h.getattr(intern!(py, "leaked"))?.is_truthy()?,
        locked: h.getattr(intern!(py, "locked_to_thread"))?.is_truthy()?,
    })
}

/// `a < b` for two `str`s as Python orders them (code points: UTF-8 bytes order the same);
/// Python's comparison when either cannot be encoded (a lone surrogate).
fn str_cmp(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<Ordering> {
    if a.is(b) {
        return Ok(Ordering::Equal);
    }
    match (utf8(a), utf8(b)) {
        (Some(x), Some(y)) => Ok(x.cmp(y)),
        _ => a.compare(b),
    }
}

fn same(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(a.is(b) || a.eq(b)?)
}

/// Sorts `items` with a fallible comparison, keeping the first error.
fn sort_by_fallible<T>(
    items: &mut [T],
    mut cmp: impl FnMut(&T, &T) -> PyResult<Ordering>,
) -> PyResult<()> {
    let mut err = None;
    items.sort_by(|a, b| match cmp(a, b) {
        Ok(o) => o,
        Err(e) => {
            err.get_or_insert(e);
            Ordering::Equal
        }
    });
    err.map_or(Ok(()), Err)
}

fn add(a: i64, b: i64) -> PyResult<i64> {
    a.checked_add(b)
        .ok_or_else(|| PyOverflowError::new_err("a group's count does not fit 64 bits"))
}

/// `_build_groups(keys, table, ...)`: the groups, largest first, ties by signature, then by
/// first row. Row r is in group `keys[r]` with header `header[r]` (`headers[h]` is header h,
/// a `Header`; only those the rows name are read) and stands for `counts[r]` goroutines (1
/// each without `counts`); `reps[k]` is group k's `Stack`, `sigs[k]` its signature (a list
/// or a dict, or a `PendingSignatures` of every stack: waited for once all else is made),
/// `partial` group number -> partial rows. The columns are sequences of ints
/// (an `array` or a list). A per-goroutine table's groups get their members from `members`
/// (ids, creator, `array`, `CreatorCounts`: `members::Columns`, one per row); an aggregated
/// table's (`members` None: states inferred) get an empty tuple for ids and orphans and
/// `no_creators` (the shared read-only empty mapping) for creators. From `untrack_from`
/// groups up, the groups and what is made for them leave the cyclic collector's lists
/// (`aggregate._untrack`). OverflowError, before anything is made, when a group's count does
/// not fit 64 bits (the caller then counts in Python).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn build_groups<'py>(
    py: Python<'py>,
    keys: &Bound<'py, PyAny>,
    header: &Bound<'py, PyAny>,
    counts: Option<&Bound<'py, PyAny>>,
    headers: &Bound<'py, PyList>,
    reps: &Bound<'py, PyAny>,
    sigs: &Bound<'py, PyAny>,
    partial: &Bound<'py, PyDict>,
    group_type: &Bound<'py, PyType>,
    members: Option<MemberArgs<'py>>,
    untrack_from: usize,
    no_creators: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let inferred = members.is_none();
    let key_col = members::column(keys)?;
    let header_col = members::column(header)?;
    let count_col = counts.map(members::column).transpose()?;
    if header_col.len() != key_col.len()
        || count_col.as_ref().is_some_and(|c| c.len() != key_col.len())
    {
        return Err(PyValueError::new_err("columns of different lengths"));
    }
    // Groups in order of first row (their numbers and counts), and every (group, header)
    // pair in order of first row as (group index, header, goroutines): what `_per_header`'s
    // `Counter` gives, counted here without a tuple and an int a pair. Every other sum of a
    // group is at most its count, but a label's (a header may name a label twice): those
    // are summed in 128 bits.
    let mut numbers: Vec<i64> = Vec::new();
    let mut counts: Vec<i64> = Vec::new();
    let mut slot: HashMap<i64, u32, BuildHasherDefault<MulHasher>> = Default::default();
    let mut pair_at: HashMap<u64, u32, BuildHasherDefault<MulHasher>> = Default::default();
    let mut pairs: Vec<(u32, u32, i64)> = Vec::new();
    for (r, &k) in key_col.iter().enumerate() {
        let h = u32::try_from(header_col[r])
            .ok()
            .filter(|&h| (h as usize) < headers.len())
            .ok_or_else(|| PyValueError::new_err("a row's header is not in headers"))?;
        let n = count_col.as_ref().map_or(1, |c| c[r]);
        let gi = *slot.entry(k).or_insert_with(|| {
            numbers.push(k);
            counts.push(0);
            (numbers.len() - 1) as u32
        });
        counts[gi as usize] = add(counts[gi as usize], n)?;
        match pair_at.entry(u64::from(gi) << 32 | u64::from(h)) {
            Entry::Occupied(e) => {
                let p = &mut pairs[*e.get() as usize];
                p.2 = add(p.2, n)?;
            }
            Entry::Vacant(e) => {
                e.insert(pairs.len() as u32);
                pairs.push((gi, h, n));
            }
        }
    }
    drop((slot, pair_at, header_col, count_col));
    let groups = numbers.len();
    let untrack_all = groups >= untrack_from;
    // Each group's pairs together, in the order they came (a counting sort).
    let mut start = vec![0usize; groups + 1];
    for p in &pairs {
        start[p.0 as usize + 1] += 1;
    }
    for i in 0..groups {
        start[i + 1] += start[i];
    }
    let mut at = start.clone();
    let mut by_group: Vec<(u32, i64)> = vec![(0, 0); pairs.len()];
    for &(gi, h, n) in &pairs {
        by_group[at[gi as usize]] = (h, n);
        at[gi as usize] += 1;
    }
    drop((pairs, at));
    let mut member_objs = match &members {
        None => Vec::new(),
        Some((ids, creator, array, cc)) => {
            let cols = Columns {
                ids,
                creator,
                array,
                counts: cc,
            };
            let rows: Vec<usize> = counts.iter().map(|&c| c.max(0) as usize).collect();
            members::members(&cols, key_col, &numbers, &rows, untrack_all)?
        }
    }
    .into_iter();

    let mut fact_of: Vec<Option<Fact<'py>>> = (0..headers.len()).map(|_| None).collect();
    let no_partial = partial.is_empty();
    let frames_a = intern!(py, "frames");
    let elided_a = intern!(py, "frames_elided");
    let created_a = intern!(py, "created_by");
    let inferred_obj = inferred.into_pyobject(py)?.to_owned().into_any();
    let zero = 0i64.into_pyobject(py)?.into_any();
    let maker = Maker::new(group_type, &GROUP_FIELDS)?;
    // The stacks' fields read from their slots (`Maker::get`), the class taken from the first.
    let reps_list = reps.cast::<PyList>().ok();
    let sigs_list = sigs.cast::<PyList>().ok();
    let stack_reader = match numbers.first() {
        Some(&k) => Maker::new(&item(reps_list, reps, k)?.get_type(), &STACK_FIELDS)?,
        None => None,
    };
    let empty = PyTuple::empty(py).into_any();
    let pending = sigs.cast::<PendingSignatures>().ok();
    // (count, signature, group) for the final sort.
    let mut made: Vec<(i64, Bound<'py, PyAny>, Bound<'py, PyAny>)> = Vec::with_capacity(groups);
    let mut states: Vec<(usize, i64)> = Vec::new(); // (header of the state's first pair, count)
    let mut waits: Vec<(usize, i64)> = Vec::new();
    type Values<'a> = Vec<(Bound<'a, PyAny>, i128)>;
    let mut labels: Vec<(Bound<'py, PyAny>, Values<'py>)> = Vec::new();
    for (gi, &k) in numbers.iter().enumerate() {
        let mine = &by_group[start[gi]..start[gi + 1]];
        for &(h, _) in mine {
            let h = h as usize;
            if h >= fact_of.len() {
                return Err(PyValueError::new_err("a pair's header is not in headers"));
            }
            if fact_of[h].is_none() {
                fact_of[h] = Some(fact(&headers.get_item(h)?)?);
            }
        }
        let f = |h: u32| fact_of[h as usize].as_ref().expect("read above");
        let count = counts[gi];
        let (mut leaked, mut locked) = (0i64, 0i64);
        states.clear();
        waits.clear();
        labels.clear();
        for &(h, n) in mine {
            let x = f(h);
            // At most `count`, which fits: no overflow.
            if x.leaked {
                leaked += n;
            }
            if x.locked {
                locked += n;
            }
            match find(&states, |&(s, _)| same(&f(s as u32).state, &x.state))? {
                Some(i) => states[i].1 += n,
                None => states.push((h as usize, n)),
            }
            match waits.iter().position(|&(w, _)| f(w as u32).wait == x.wait) {
                Some(i) => waits[i].1 += n,
                None => waits.push((h as usize, n)),
            }
            for (lk, lv) in &x.labels {
                let i = match find(&labels, |(k, _)| same(k, lk))? {
                    Some(i) => i,
                    None => {
                        labels.push((lk.clone(), Vec::new()));
                        labels.len() - 1
                    }
                };
                let vals = &mut labels[i].1;
                match find(vals, |(v, _)| same(v, lv))? {
                    Some(j) => vals[j].1 += i128::from(n),
                    None => vals.push((lv.clone(), i128::from(n))),
                }
            }
        }
        // Most common state first, ties by name; waits increasing; labels by key, each
        // key's values most common first, ties by value (as `group()` documents).
        if states.len() > 1 {
            sort_by_fallible(&mut states, |a, b| match b.1.cmp(&a.1) {
                Ordering::Equal => str_cmp(&f(a.0 as u32).state, &f(b.0 as u32).state),
                o => Ok(o),
            })?;
        }
        if waits.len() > 1 {
            waits.sort_by_key(|&(h, _)| f(h as u32).wait);
        }
        if labels.len() > 1 {
            sort_by_fallible(&mut labels, |a, b| str_cmp(&a.0, &b.0))?;
        }
        for (_, vals) in labels.iter_mut() {
            if vals.len() > 1 {
                sort_by_fallible(vals, |a, b| match b.1.cmp(&a.1) {
                    Ordering::Equal => str_cmp(&a.0, &b.0),
                    o => Ok(o),
                })?;
            }
        }
        let state_d = PyDict::new(py);
        for &(h, n) in &states {
            state_d.set_item(&f(h as u32).state, n)?;
        }
        let wait_d = PyDict::new(py);
        for &(h, n) in &waits {
            wait_d.set_item(&f(h as u32).wait_obj, n)?;
        }
        let label_d = PyDict::new(py);
        for (lk, vals) in &labels {
            let v = PyDict::new(py);
            for (lv, n) in vals {
                // An i64 when it fits (the usual case, and the cheaper conversion).
                match i64::try_from(*n) {
                    Ok(n) => v.set_item(lv, n)?,
                    Err(_) => v.set_item(lv, n)?,
                }
            }
            label_d.set_item(lk, v)?;
        }
        let st = item(reps_list, reps, k)?;
        let sig = match pending {
            Some(_) => py.None().into_bound(py), // set below, once hashed
            None => item(sigs_list, sigs, k)?,
        };
        let part = if no_partial {
            zero.clone()
        } else {
            match partial.get_item(k)? {
                Some(p) => p,
                None => zero.clone(),
            }
        };
        let (ids_o, orphans_o, creators_o) = match member_objs.next() {
            Some(m) => m,
            // An aggregated format's groups share one empty tuple and one read-only mapping.
            None => (empty.clone(), empty.clone(), no_creators.clone()),
        };
        let field = |i: usize, name: &Bound<'py, PyString>| match stack_reader
            .as_ref()
            .and_then(|r| r.get(&st, i))
        {
            Some(v) => Ok(v),
            None => st.getattr(name),
        };
        let values = [
            sig.clone(),
            count.into_pyobject(py)?.into_any(),
            field(0, frames_a)?,
            field(1, elided_a)?,
            field(2, created_a)?,
            state_d.into_any(),
            wait_d.into_any(),
            label_d.clone().into_any(),
            ids_o,
            orphans_o,
            leaked.into_pyobject(py)?.into_any(),
            locked.into_pyobject(py)?.into_any(),
            part,
            creators_o,
            inferred_obj.clone(),
        ];
        let g = match &maker {
            Some(m) => m.make(values)?,
            None => group_type.call1(PyTuple::new(py, values)?)?,
        };
        if untrack_all {
            untrack(&g);
            // The containers made for the group alone (none can be in a cycle; a dict that is
            // given a container later is tracked again). Its states and waits dicts, of
            // strings and ints, were never tracked.
            untrack(label_d.as_any());
            for (_, v) in label_d.iter() {
                untrack(&v);
            }
        }
        made.push((count, sig, g));
    }
    if let Some(p) = pending {
        // Hashed on other threads while the groups were made (where `group()` waited for
        // them first: some 5 ms of a dump of 20,000 distinct stacks), written in now.
        let list = p.get().result(py)?;
        let signature_a = intern!(py, "signature");
        for (m, &k) in made.iter_mut().zip(&numbers) {
            let sig = item(Some(&list), list.as_any(), k)?;
            m.2.setattr(signature_a, &sig)?;
            m.1 = sig;
        }
    }
    // Each signature's UTF-8 (borrowed from the `str` in `made`) when all have one: the sort
    // then compares bytes.
    let sig_bytes: Option<Vec<&[u8]>> = made.iter().map(|m| utf8(&m.1)).collect();
    // Largest first, ties by signature, then by first pair. With bytes, each signature's
    // first 8 bytes as a big-endian integer decide most ties without reading the strings
    // again (their bytes are scattered over the heap: a cache miss a comparison).
    let mut order: Vec<usize> = (0..made.len()).collect();
    if let Some(sig_bytes) = sig_bytes {
        let prefix: Vec<u64> = sig_bytes
            .iter()
            .map(|b| {
                let mut p = [0u8; 8];
                let n = b.len().min(8);
                p[..n].copy_from_slice(&b[..n]);
                u64::from_be_bytes(p)
            })
            .collect();
        order.sort_unstable_by(|&a, &b| {
            made[b]
                .0
                .cmp(&made[a].0)
                .then(prefix[a].cmp(&prefix[b]))
                .then_with(|| sig_bytes[a].cmp(sig_bytes[b]))
                .then(a.cmp(&b))
        });
    } else {
        sort_by_fallible(&mut order, |&a, &b| match made[b].0.cmp(&made[a].0) {
            Ordering::Equal => str_cmp(&made[a].1, &made[b].1),
            o => Ok(o),
        })?;
    }
    let out = PyList::empty(py);
    for i in order {
        out.append(&made[i].2)?;
    }
    Ok(out)
}

/// A `str`'s UTF-8 bytes, None when it has none (a lone surrogate) or is not a `str`.
fn utf8<'a>(s: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    s.cast::<PyString>().ok()?.to_str().ok().map(str::as_bytes)
}

/// The index of the first item `pred` holds for.
fn find<T>(items: &[T], mut pred: impl FnMut(&T) -> PyResult<bool>) -> PyResult<Option<usize>> {
    for (i, x) in items.iter().enumerate() {
        if pred(x)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}
