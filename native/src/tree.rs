//! The stack tree behind flame graphs: the Rust twin of `grprof.aggregate._stack_tree`.
//!
//! Groups are merged into a prefix tree of frames, outermost first, keyed by function name.
//! The Python path looks each frame's function up in its parent's `children` dict and
//! creates a `StackNode` the first time; on a dump of 20,000 distinct stacks (171,012
//! frames, 99,207 nodes) that took about 110 ms, most of it interpreter work per frame.
//! Here each distinct frame *object* is read once (its function name mapped to an integer
//! through a Python dict, so names compare exactly as `str` keys do), the tree is built on
//! integers (a node is a (parent, function id) key), then the `StackNode`s are made once
//! each, in creation order, with the same names, frames, counts and `children` dict order
//! (tests/test_stack_tree_equivalence.py holds it to the Python path).
//!
//! The nodes and their `children` dicts (some 200,000 objects) are then untracked by the
//! cyclic garbage collector: the tree has no cycles (a node refers to its children and its
//! frame, never up), so reference counting frees it, and the collector's first pass over
//! them once re-enabled (`gc_paused` ends) took as long as building them (40 ms of the
//! 90). A caller that makes a cycle through a node (none in grprof) would leak it.

use pyo3::exceptions::PyOverflowError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::pprof::FxMap;

struct Node {
    parent: u32,
    /// The distinct frame (index into `frames`) that created the node: the first group, in
    /// order, whose path reaches it (`StackNode.frame`, and its `function` the name).
    frame: u32,
    count: i64,
    self_count: i64,
}

fn add(a: i64, b: i64) -> PyResult<i64> {
    a.checked_add(b)
        .ok_or_else(|| PyOverflowError::new_err("stack tree count out of range"))
}

/// `stack_tree(groups)` of `grprof.aggregate`: the root `StackNode` ("all"), every node made
/// as `node(name, count, self_count, frame, children)` (`node` is the `StackNode` class).
/// Counts past int64 raise OverflowError (the caller then takes the Python path).
#[pyfunction]
pub fn stack_tree_of<'py>(
    py: Python<'py>,
    groups: &Bound<'py, PyAny>,
    node: &Bound<'py, PyType>,
) -> PyResult<Bound<'py, PyAny>> {
    // Distinct frame objects, by address (the groups hold them for the whole call), and
    // their function names as ids: equal names, from any frame object, one id.
    let mut frame_ids: FxMap<usize, (u32, u32)> = FxMap::default();
    let mut frames: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut names: Vec<Bound<'py, PyAny>> = Vec::new();
    let name_ids = PyDict::new(py);
    let mut nfuncs: u32 = 0;
    let mut nodes: Vec<Node> = vec![Node {
        parent: u32::MAX,
        frame: u32::MAX,
        count: 0,
        self_count: 0,
    }];
    let mut children: FxMap<(u32, u32), u32> = FxMap::default();
    let mut path: Vec<(u32, u32)> = Vec::new();
    for g in groups.try_iter()? {
        let g = g?;
        let n: i64 = g.getattr(intern!(py, "count"))?.extract()?;
        let fs = g.getattr(intern!(py, "frames"))?;
        path.clear();
        let t = fs.cast::<PyTuple>()?;
        for f in t.iter_borrowed() {
            // Objects are 16-byte aligned: without the shift every key would hash to one
            // bucket in 16 (the hash's low bits are the pointer's, multiplied).
            let key = f.as_ptr() as usize >> 4;
            let ids = match frame_ids.get(&key) {
                Some(ids) => *ids,
                None => {
                    let function = f.getattr(intern!(py, "function"))?;
                    let fid = match name_ids.get_item(&function)? {
                        Some(id) => id.extract::<u32>()?,
                        None => {
                            name_ids.set_item(&function, nfuncs)?;
                            nfuncs += 1;
                            nfuncs - 1
                        }
                    };
                    let ids = (frames.len() as u32, fid);
                    frames.push(f.to_owned());
                    names.push(function);
                    frame_ids.insert(key, ids);
                    ids
                }
            };
            path.push(ids);
        }
        nodes[0].count = add(nodes[0].count, n)?;
        let mut at: u32 = 0;
        for &(frame, fid) in path.iter().rev() {
            let next = nodes.len() as u32;
            let child = *children.entry((at, fid)).or_insert(next);
            if child == next {
                nodes.push(Node {
                    parent: at,
                    frame,
                    count: 0,
                    self_count: 0,
                });
            }
            let c = &mut nodes[child as usize];
            c.count = add(c.count, n)?;
            at = child;
        }
        let leaf = &mut nodes[at as usize];
        leaf.self_count = add(leaf.self_count, n)?;
    }
    drop(children);
    // Made in creation order, each added to its parent's dict: the dicts' order is the
    // order in which the Python path inserts.
    let mut dicts: Vec<Bound<'py, PyDict>> = Vec::with_capacity(nodes.len());
    let mut made: Vec<Bound<'py, PyAny>> = Vec::with_capacity(nodes.len());
    let root_children = PyDict::new(py);
    let root = node.call1((
        "all",
        nodes[0].count,
        nodes[0].self_count,
        py.None(),
        &root_children,
    ))?;
    dicts.push(root_children);
    for nd in &nodes[1..] {
        let kids = PyDict::new(py);
        let name = &names[nd.frame as usize];
        let node_obj = node.call1((
            name,
            nd.count,
            nd.self_count,
            &frames[nd.frame as usize],
            &kids,
        ))?;
        dicts[nd.parent as usize].set_item(name, &node_obj)?;
        dicts.push(kids);
        made.push(node_obj);
    }
    // The nodes and their dicts leave the cyclic collector's lists (`untrack`).
    for (i, kids) in dicts.iter().enumerate() {
        // SAFETY: live objects of GC types (a dict; a StackNode, which holds references);
        // untracking an untracked object is a no-op.
        unsafe { ffi::PyObject_GC_UnTrack(kids.as_ptr().cast()) };
        if i > 0 {
            unsafe { ffi::PyObject_GC_UnTrack(made[i - 1].as_ptr().cast()) };
        }
    }
    Ok(root)
}

/// Takes `groups` (`aggregate.Group`s just built by `group()`) and the objects they alone
/// hold out of the cyclic garbage collector's lists: each group, each of its `ids`, `orphans`
/// and `creators` that is an `array` (type `array`) or a `counts` (`CreatorCounts`), and a
/// `counts`' `creator_of` array. None of them can be part of a cycle that `group()` makes
/// (an array holds no references; a group refers down to its frames, dicts and arrays, never
/// up), so reference counting frees them; the collector's first pass over the 100,000
/// objects of a 20,000-group result, once `gc_paused` ends, took longer than building them.
/// A caller that makes a cycle through a group (none in grprof) would leak it.
#[pyfunction]
pub fn untrack_groups<'py>(
    py: Python<'py>,
    groups: &Bound<'py, PyAny>,
    array: &Bound<'py, PyType>,
    counts: &Bound<'py, PyType>,
) -> PyResult<()> {
    let untrack = |o: &Bound<'py, PyAny>| {
        // SAFETY: a live object; only a tracked object (of a GC type) is untracked.
        unsafe {
            if ffi::PyObject_GC_IsTracked(o.as_ptr()) == 1 {
                ffi::PyObject_GC_UnTrack(o.as_ptr().cast());
            }
        }
    };
    for g in groups.try_iter()? {
        let g = g?;
        for attr in [
            intern!(py, "ids"),
            intern!(py, "orphans"),
            intern!(py, "creators"),
        ] {
            let v = g.getattr(attr)?;
            if v.get_type().is(array) {
                untrack(&v);
            } else if v.get_type().is(counts) {
                let inner = v.getattr(intern!(py, "creator_of"))?;
                if inner.get_type().is(array) {
                    untrack(&inner);
                }
                untrack(&v);
            }
        }
        untrack(&g);
    }
    Ok(())
}
