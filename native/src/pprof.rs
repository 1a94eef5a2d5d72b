//! debug=0: the Rust twin of `grprof.formats.pprof._Decoder` (a gunzipped profile.proto).
//!
//! A small hand-written protobuf wire reader with the same checks, in the same places, and
//! the same error messages and offsets as the Python decoder (tests/test_pprof_equivalence.py
//! holds the two to it). It decodes what a goroutine profile uses and returns plain data:
//! distinct frames (interned by value), each location's frame indexes, the distinct stacks
//! (by frame indexes, in order of first use), distinct label sets, and one row per sample.
//! The Python side turns that into a `GoroutineTable` without hashing a frame.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's): a multiply-rotate per word. The keys here are ids and short byte or
/// index runs from the input, hashed once per sample: SipHash was a third of the decode time.
/// Flooding is not a concern: the input is a local profile, and equal hashes cost a compare.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

fn fx_hash(words: &[u32]) -> u64 {
    let mut h = Fx::default();
    for w in words {
        h.add(*w as u64);
    }
    h.add(words.len() as u64);
    h.finish()
}

pub struct Malformed {
    pub message: String,
    pub pos: usize,
}

type R<T> = Result<T, Malformed>;

fn bad<T>(message: String, pos: usize) -> R<T> {
    Err(Malformed { message, pos })
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

const P_SAMPLE_TYPE: u64 = 1;
const P_SAMPLE: u64 = 2;
const P_MAPPING: u64 = 3;
const P_LOCATION: u64 = 4;
const P_FUNCTION: u64 = 5;
const P_STRINGS: u64 = 6;
const P_TIME: u64 = 9;

const OTHER_PROFILES: &[(&str, &str)] = &[
    ("alloc_objects", "heap"),
    ("alloc_space", "heap"),
    ("inuse_objects", "heap"),
    ("inuse_space", "heap"),
    ("samples", "CPU"),
    ("cpu", "CPU"),
    ("contentions", "block or mutex"),
    ("delay", "block or mutex"),
    ("threadcreate", "threadcreate"),
];

/// One field of a message: number, wire type, value (the integer, or the payload start
/// for wire type 2), tag offset and the offset after the field.
#[derive(Clone, Copy)]
struct Field {
    num: u64,
    wt: u64,
    value: u64,
    tag: usize,
    end: usize,
}

#[inline]
fn varint(data: &[u8], mut pos: usize, end: usize) -> R<(u64, usize)> {
    if pos < end {
        let b = data[pos];
        if b < 0x80 {
            return Ok((b as u64, pos + 1));
        }
    }
    let start = pos;
    let mut result: u128 = 0;
    let mut shift = 0u32;
    while pos < end {
        let b = data[pos];
        pos += 1;
        result |= ((b & 0x7F) as u128) << shift;
        if b < 0x80 {
            if result >> 64 != 0 {
                return bad("varint overflows 64 bits".into(), start);
            }
            return Ok((result as u64, pos));
        }
        shift += 7;
        if shift >= 70 {
            return bad("varint longer than 10 bytes".into(), start);
        }
    }
    bad("truncated varint".into(), start)
}

/// Every field of the message data[pos..end], or the first error in it.
fn fields(data: &[u8], mut pos: usize, end: usize, out: &mut Vec<Field>) -> R<()> {
    out.clear();
    while pos < end {
        let tag_at = pos;
        let tag;
        (tag, pos) = varint(data, pos, end)?;
        let wt = tag & 7;
        let num = tag >> 3;
        if tag < 8 {
            return bad("field number 0".into(), tag_at);
        }
        let value;
        match wt {
            LEN => {
                let (n, start) = varint(data, pos, end)?;
                // n as usize may not fit: compare in u128.
                if start as u128 + n as u128 > end as u128 {
                    return bad(
                        format!("length {n} of field {num} runs past the end of its message"),
                        tag_at,
                    );
                }
                value = start as u64;
                pos = start + n as usize;
            }
            VARINT => {
                (value, pos) = varint(data, pos, end)?;
            }
            FIXED64 | FIXED32 => {
                let width = if wt == FIXED64 { 8 } else { 4 };
                if pos + width > end {
                    return bad(format!("truncated fixed{} field {num}", width * 8), tag_at);
                }
                let mut v = 0u64;
                for (i, b) in data[pos..pos + width].iter().enumerate() {
                    v |= (*b as u64) << (8 * i);
                }
                value = v;
                pos += width;
            }
            _ => return bad(format!("unsupported wire type {wt} in field {num}"), tag_at),
        }
        out.push(Field {
            num,
            wt,
            value,
            tag: tag_at,
            end: pos,
        });
    }
    Ok(())
}

fn expect(f: &Field, want: u64, message: &str) -> R<()> {
    if f.wt != want {
        return bad(
            format!(
                "wrong wire type {} for {message} field {} (want {want})",
                f.wt, f.num
            ),
            f.tag,
        );
    }
    Ok(())
}

fn packed(data: &[u8], mut pos: usize, end: usize, out: &mut Vec<u64>) -> R<()> {
    while pos < end {
        let v;
        (v, pos) = varint(data, pos, end)?;
        out.push(v);
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    tag: usize,
}

/// What a profile holds, by string-table index where a string is meant.
pub struct Decoded<'a> {
    pub strings: Vec<std::borrow::Cow<'a, str>>,
    pub profile: &'static str,
    /// (function, file, line) per distinct frame.
    pub frames: Vec<(String, String, i64)>,
    /// Frame indexes of each location, in the order Python's dict of locations has them.
    pub locs: Vec<Vec<u32>>,
    /// Frame indexes of the distinct stacks, in order of first use by a sample: stack i is
    /// stack_frames[stack_offsets[i]..stack_offsets[i + 1]].
    pub stack_frames: Vec<u32>,
    pub stack_offsets: Vec<usize>,
    /// Label sets: (key string, value) pairs in dict order; a value is a string index or a
    /// number written as text.
    pub labelsets: Vec<Vec<(u32, LabelValue)>>,
    pub row_stack: Vec<i64>,
    pub row_labels: Vec<i64>,
    pub row_count: Vec<i64>,
    pub time_nanos: Option<(i64, usize)>,
    /// The first mapping's (filename, build id) string indexes, or its decoding error.
    pub origin: R<Option<(u32, u32)>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    Str(u32),
    Num(i64),
}

#[derive(PartialEq, Eq, Hash)]
enum StackKey<'a> {
    Raw(&'a [u8]),
    Ids(Vec<u64>),
}

pub fn decode(data: &[u8]) -> R<Decoded<'_>> {
    if data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b {
        return bad("input is still gzip-compressed".into(), 0);
    }
    // Top-level fields: Go's profiles have about one per 12 to 30 bytes.
    let mut buf: Vec<Field> = Vec::with_capacity(data.len() / 16);
    let mut spans: [Vec<Span>; 7] = Default::default();
    let mut time_nanos: Option<(i64, usize)> = None;
    fields(data, 0, data.len(), &mut buf)?;
    for f in &buf {
        if (P_SAMPLE_TYPE..=P_STRINGS).contains(&f.num) {
            expect(f, LEN, "Profile")?;
            spans[f.num as usize].push(Span {
                start: f.value as usize,
                end: f.end,
                tag: f.tag,
            });
        } else if f.num == P_TIME {
            expect(f, VARINT, "Profile")?;
            time_nanos = Some((f.value as i64, f.tag));
        }
    }
    let strings: Vec<std::borrow::Cow<'_, str>> = spans[P_STRINGS as usize]
        .iter()
        .map(|s| String::from_utf8_lossy(&data[s.start..s.end]))
        .collect();
    let nstr = strings.len();
    let str_at = |index: u64, at: usize| -> R<u32> {
        if (index as u128) < nstr as u128 {
            Ok(index as u32)
        } else {
            bad(
                format!("string index {index} out of range ({nstr} strings)"),
                at,
            )
        }
    };
    // The varint fields `wanted` of a small message (last one wins).
    let ints = |s: &Span, message: &str, wanted: &[u64], buf: &mut Vec<Field>| -> R<[u64; 3]> {
        fields(data, s.start, s.end, buf)?;
        let mut out = [0u64; 3];
        for f in buf.iter() {
            if let Some(i) = wanted.iter().position(|w| *w == f.num) {
                expect(f, VARINT, message)?;
                out[i] = f.value;
            }
        }
        Ok(out)
    };

    // Profile kind and the value that counts goroutines.
    let types = &spans[P_SAMPLE_TYPE as usize];
    if types.is_empty() {
        return bad(
            "missing sample_type (not a pprof profile?)".into(),
            data.len(),
        );
    }
    let mut names = Vec::with_capacity(types.len());
    for s in types {
        let v = ints(s, "ValueType", &[1], &mut buf)?;
        names.push(str_at(v[0], s.tag)?);
    }
    let mut kind: Option<(&'static str, usize)> = None;
    for (i, n) in names.iter().enumerate() {
        match &*strings[*n as usize] {
            "goroutine" => {
                kind = Some(("goroutine", i));
                break;
            }
            "goroutineleak" => {
                kind = Some(("goroutineleak", i));
                break;
            }
            _ => {}
        }
    }
    let (profile, value_index) = match kind {
        Some(k) => k,
        None => {
            let first: &str = &strings[names[0] as usize];
            let k = OTHER_PROFILES
                .iter()
                .find(|(n, _)| *n == first)
                .map_or(first, |(_, k)| k);
            return bad(
                format!("a \"{k}\" profile, not a goroutine profile"),
                types[0].tag,
            );
        }
    };

    // Functions: id -> (name, file) string indexes (last one wins).
    let mut funcs: FxMap<u64, (u32, u32)> = FxMap::default();
    for s in &spans[P_FUNCTION as usize] {
        let f = ints(s, "Function", &[1, 2, 4], &mut buf)?;
        let name = str_at(f[1], s.tag)?;
        let file = str_at(f[2], s.tag)?;
        funcs.insert(f[0], (name, file));
    }
    // Frames interned by value (text, not string index), unsymbolized ones as "0x<address>".
    let mut frames: Vec<(String, String, i64)> = Vec::new();
    let mut frame_ids: FxMap<(String, String, i64), u32> = FxMap::default();
    let mut intern = |key: (String, String, i64), frames: &mut Vec<(String, String, i64)>| -> u32 {
        if let Some(&i) = frame_ids.get(&key) {
            return i;
        }
        frames.push(key.clone());
        let i = (frames.len() - 1) as u32;
        frame_ids.insert(key, i);
        i
    };
    let mut locs: Vec<Vec<u32>> = Vec::new();
    let mut loc_index: FxMap<u64, usize> = FxMap::default();
    let mut lbuf: Vec<Field> = Vec::new();
    for s in &spans[P_LOCATION as usize] {
        fields(data, s.start, s.end, &mut buf)?;
        let mut lid = 0u64;
        let mut address = 0u64;
        let mut fr: Vec<u32> = Vec::new();
        for f in &buf {
            match f.num {
                1 => {
                    expect(f, VARINT, "Location")?;
                    lid = f.value;
                }
                3 => {
                    expect(f, VARINT, "Location")?;
                    address = f.value;
                }
                4 => {
                    expect(f, LEN, "Location")?;
                    let ls = Span {
                        start: f.value as usize,
                        end: f.end,
                        tag: f.tag,
                    };
                    let l = ints(&ls, "Line", &[1, 2], &mut lbuf)?;
                    let Some(&(name, file)) = funcs.get(&l[0]) else {
                        return bad(
                            format!("line refers to missing function id {}", l[0]),
                            ls.tag,
                        );
                    };
                    let key = (
                        strings[name as usize].to_string(),
                        strings[file as usize].to_string(),
                        l[1] as i64,
                    );
                    fr.push(intern(key, &mut frames));
                }
                _ => {}
            }
        }
        if fr.is_empty() {
            fr.push(intern(
                (format!("0x{address:x}"), String::new(), 0),
                &mut frames,
            ));
        }
        match loc_index.get(&lid) {
            Some(&i) => locs[i] = fr,
            None => {
                loc_index.insert(lid, locs.len());
                locs.push(fr);
            }
        }
    }

    // Samples.
    let mut frame_budget: i128 = 16 * data.len() as i128 + (1 << 16);
    let nsamples = spans[P_SAMPLE as usize].len();
    // Capacities are guesses from the sample count, capped: a hostile count is not a reason
    // to reserve gigabytes up front.
    let guess = nsamples.min(1 << 20);
    let mut stack_cache: FxMap<StackKey<'_>, i64> = FxMap::default();
    stack_cache.reserve(guess);
    // Distinct stacks: frame indexes flat, with offsets; found again by a hash of their frames.
    let mut stack_frames: Vec<u32> = Vec::with_capacity(guess * 8);
    let mut stack_offsets: Vec<usize> = Vec::with_capacity(guess + 1);
    stack_offsets.push(0);
    // First stack with a hash, and per stack the next one with the same hash (-1: none).
    let mut stack_by_hash: FxMap<u64, i64> = FxMap::default();
    stack_by_hash.reserve(guess);
    let mut same_hash: Vec<i64> = Vec::with_capacity(guess);
    let mut labelsets: Vec<Vec<(u32, LabelValue)>> = Vec::new();
    let mut labelset_ids: FxMap<Vec<(u32, LabelValue)>, i64> = FxMap::default();
    let mut row_stack = Vec::with_capacity(nsamples);
    let mut row_labels = Vec::with_capacity(nsamples);
    let mut row_count = Vec::with_capacity(nsamples);
    let mut values: Vec<u64> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    let mut unpacked: Vec<u64> = Vec::new();
    let mut packed_spans: Vec<Span> = Vec::new();
    let mut labels: Vec<(u32, LabelValue)> = Vec::new();
    let mut fr: Vec<u32> = Vec::new();
    for s in &spans[P_SAMPLE as usize] {
        fields(data, s.start, s.end, &mut buf)?;
        values.clear();
        unpacked.clear();
        packed_spans.clear();
        labels.clear();
        for f in &buf {
            match f.num {
                1 => {
                    if f.wt == LEN {
                        packed_spans.push(Span {
                            start: f.value as usize,
                            end: f.end,
                            tag: f.tag,
                        });
                    } else {
                        expect(f, VARINT, "Sample")?;
                        unpacked.push(f.value);
                    }
                }
                2 => {
                    if f.wt == LEN {
                        packed(data, f.value as usize, f.end, &mut values)?;
                    } else {
                        expect(f, VARINT, "Sample")?;
                        values.push(f.value);
                    }
                }
                3 => {
                    expect(f, LEN, "Sample")?;
                    fields(data, f.value as usize, f.end, &mut lbuf)?;
                    let (mut key, mut string, mut num) = (0u64, 0u64, 0i64);
                    for lf in &lbuf {
                        if (1..=3).contains(&lf.num) {
                            expect(lf, VARINT, "Label")?;
                            match lf.num {
                                1 => key = lf.value,
                                2 => string = lf.value,
                                _ => num = lf.value as i64,
                            }
                        }
                    }
                    let v = if num != 0 && string == 0 {
                        LabelValue::Num(num)
                    } else {
                        LabelValue::Str(str_at(string, f.tag)?)
                    };
                    let k = str_at(key, f.tag)?;
                    // Keys are compared by text, as in a dict of str.
                    let kt: &str = &strings[k as usize];
                    match labels
                        .iter_mut()
                        .find(|(k2, _)| &*strings[*k2 as usize] == kt)
                    {
                        Some(slot) => slot.1 = v,
                        None => labels.push((k, v)),
                    }
                }
                _ => {}
            }
        }
        let key = if packed_spans.len() == 1 && unpacked.is_empty() {
            StackKey::Raw(&data[packed_spans[0].start..packed_spans[0].end])
        } else {
            ids.clear();
            for p in &packed_spans {
                packed(data, p.start, p.end, &mut ids)?;
            }
            ids.extend_from_slice(&unpacked);
            StackKey::Ids(ids.clone())
        };
        let si = match stack_cache.get(&key) {
            Some(&si) => si,
            None => {
                if let StackKey::Raw(_) = key {
                    ids.clear();
                    packed(data, packed_spans[0].start, packed_spans[0].end, &mut ids)?;
                }
                fr.clear();
                for lid in &ids {
                    let Some(&li) = loc_index.get(lid) else {
                        return bad(format!("sample refers to missing location id {lid}"), s.tag);
                    };
                    fr.extend_from_slice(&locs[li]);
                    if fr.len() as i128 > frame_budget {
                        // As Python: a missing id anywhere in the sample is named first.
                        if let Some(lid) = ids.iter().find(|l| !loc_index.contains_key(l)) {
                            return bad(
                                format!("sample refers to missing location id {lid}"),
                                s.tag,
                            );
                        }
                        return bad("stacks expand to implausibly many frames".into(), s.tag);
                    }
                }
                frame_budget -= fr.len() as i128;
                let h = fx_hash(&fr);
                let mut at = stack_by_hash.get(&h).copied().unwrap_or(-1);
                while at >= 0 {
                    let i = at as usize;
                    if stack_frames[stack_offsets[i]..stack_offsets[i + 1]] == fr[..] {
                        break;
                    }
                    at = same_hash[i];
                }
                let si = if at >= 0 {
                    at
                } else {
                    let si = (stack_offsets.len() - 1) as i64;
                    stack_frames.extend_from_slice(&fr);
                    stack_offsets.push(stack_frames.len());
                    same_hash.push(stack_by_hash.insert(h, si).unwrap_or(-1));
                    si
                };
                stack_cache.insert(key, si);
                si
            }
        };
        let li = match labelset_ids.get(labels.as_slice()) {
            Some(&i) => i,
            None => {
                let i = labelsets.len() as i64;
                labelset_ids.insert(labels.clone(), i);
                labelsets.push(labels.clone());
                i
            }
        };
        if value_index >= values.len() {
            return bad(
                format!(
                    "sample has {} values, wanted {}",
                    values.len(),
                    value_index + 1
                ),
                s.tag,
            );
        }
        row_stack.push(si);
        row_labels.push(li);
        row_count.push(values[value_index] as i64);
    }

    // The main mapping's binary and build id; its error, if any, is raised by the caller
    // after time_nanos is checked (the order of the Python decoder).
    let origin = match spans[P_MAPPING as usize].first() {
        None => Ok(None),
        Some(s) => (|| {
            let m = ints(s, "Mapping", &[5, 6], &mut buf)?;
            let binary = str_at(m[0], s.tag)?;
            let build = str_at(m[1], s.tag)?;
            Ok(Some((binary, build)))
        })(),
    };

    Ok(Decoded {
        strings,
        profile,
        frames,
        locs,
        stack_frames,
        stack_offsets,
        labelsets,
        row_stack,
        row_labels,
        row_count,
        time_nanos,
        origin,
    })
}

#[cfg(test)]
mod tests {
    /// `GRPROF_PB=file.pb [GRPROF_ITERS=30] cargo test --release -- --ignored --nocapture time_decode`
    #[test]
    #[ignore]
    fn time_decode() {
        let path = std::env::var("GRPROF_PB").unwrap_or("/tmp/d.pb".into());
        let data = std::fs::read(path).unwrap();
        let iters: usize = std::env::var("GRPROF_ITERS").map_or(30, |n| n.parse().unwrap());
        let mut best = f64::MAX;
        for _ in 0..iters {
            let t = std::time::Instant::now();
            let d = super::decode(&data).ok().unwrap();
            std::hint::black_box(&d);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("decode best {:.2} ms", best * 1e3);
    }
}
