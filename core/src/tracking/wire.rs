//! The binary batch format, version 1 (documented in docs/wire-format.md).
//!
//! ```text
//! batch   = magic "TRNB" | version u8 (=1) | strings | facet_sets | header | events | crc32c u32 LE
//! strings = varint n, n x (varint h, h&1 ? 16 raw UUID bytes : (h>>1) UTF-8 bytes)
//! sets    = varint n, n x (varint k, k x (varint key<<3|tag, payload))
//! header  = client, sdk, sdk_version, platform (string indices), seq, zigzag created_ms, dropped, fold_overflow
//! events  = varint n, n x event
//! ```
//!
//! Every string (names, values, facet keys and values, header fields) is
//! written once in the string table and referred to by index; every distinct
//! facet set is written once and referred to by index; times are zigzag
//! deltas. Encoding is deterministic: tables are filled in first-use order
//! and the facets of a set are written sorted by name.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use thiserror::Error;

use super::event::{facet_tag, Event, EventData};
use crate::decision::Source;
use crate::facets::Facets;
use crate::value::FacetValue;

/// The 4 magic bytes that open every batch.
pub const MAGIC: &[u8; 4] = b"TRNB";
/// The wire format version this engine writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// Decoded facet data may take at most this many times the batch's size.
const DECODE_EXPANSION: usize = 32;

/// The batch header.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchHeader {
    /// The client instance that recorded the batch (with `seq`, the de-duplication key).
    pub client_id: String,
    /// Sequence number, unique per client.
    pub seq: u64,
    /// Unix milliseconds when the batch was assembled.
    pub created_at_ms: i64,
    /// SDK name, e.g. `turnout-rust`.
    pub sdk: String,
    /// SDK version.
    pub sdk_version: String,
    /// Platform, e.g. `linux-x86_64`, `wasm`, `android`.
    pub platform: String,
    /// Occurrences dropped (queue full, unacked batches evicted) since the previous batch.
    pub dropped: u64,
    /// Occurrences recorded unfolded because the fold table was full, since the previous batch.
    pub fold_overflow: u64,
}

/// A decoded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    /// The header.
    pub header: BatchHeader,
    /// The events, in recorded order.
    pub events: Vec<Event>,
}

/// Why a batch could not be decoded. Nothing is ever partially decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Too short, or the magic bytes are wrong.
    #[error("not a turnout batch (bad magic or too short)")]
    NotABatch,
    /// A version this decoder does not read.
    #[error("unsupported batch version {0}")]
    Version(u8),
    /// The CRC-32C trailer does not match: the bytes were corrupted.
    #[error("checksum mismatch: the batch is corrupted")]
    Checksum,
    /// The structure is inconsistent.
    #[error("malformed batch at byte {offset}: {what}")]
    Malformed {
        /// Byte offset where decoding failed.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
}

// ---- varints ----------------------------------------------------------------

/// Appends an unsigned LEB128 varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-maps a signed integer so that small magnitudes stay small.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

// ---- encoder ----------------------------------------------------------------

/// Interns strings by content, with a cache by `Arc` pointer in front.
struct Strings<'a> {
    by_ptr: HashMap<usize, u32, FxBuildHasher>,
    by_text: HashMap<&'a str, u32, FxBuildHasher>,
    out: Vec<u8>,
    n: u32,
}

impl<'a> Strings<'a> {
    /// Sized for a batch of `events` events, so the tables do not rehash while filling.
    fn for_events(events: usize) -> Self {
        let cap = 16 + events * 2;
        Strings {
            by_ptr: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            by_text: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            out: Vec::with_capacity(events * 16),
            n: 0,
        }
    }

    fn text(&mut self, s: &'a str) -> u32 {
        if let Some(i) = self.by_text.get(s) {
            return *i;
        }
        let i = self.n;
        self.n += 1;
        match uuid_bytes(s) {
            Some(b) => {
                self.out.push(1);
                self.out.extend_from_slice(&b);
            }
            None => {
                put_varint(&mut self.out, (s.len() as u64) << 1);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
        self.by_text.insert(s, i);
        i
    }

    fn arc(&mut self, s: &'a Arc<str>) -> u32 {
        let key = Arc::as_ptr(s) as *const u8 as usize;
        if let Some(i) = self.by_ptr.get(&key) {
            return *i;
        }
        let i = self.text(s);
        self.by_ptr.insert(key, i);
        i
    }
}

/// Lowercase hex digit values; 0xFF for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut c = 0;
    while c < 10 {
        t[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        t[b'a' as usize + c] = 10 + c as u8;
        c += 1;
    }
    t
};

/// Where the 16 hex pairs of a canonical UUID start.
const UUID_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A canonical lowercase hyphenated UUID as 16 bytes (only that exact form,
/// so decoding gives back the same string).
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (o, &p) in out.iter_mut().zip(UUID_PAIRS.iter()) {
        let hi = HEX_VALUE[b[p] as usize];
        let lo = HEX_VALUE[b[p + 1] as usize];
        bad |= hi | lo;
        *o = hi << 4 | (lo & 0x0F);
    }
    (bad & 0xF0 == 0).then_some(out)
}

fn uuid_string(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

struct Sets<'a> {
    by_ptr: HashMap<usize, u32, FxBuildHasher>,
    /// xxh3 of a set's bytes -> its index; `spans` locates the bytes in `out`
    /// so that a hit is confirmed byte for byte (no key allocation per set).
    by_hash: HashMap<u64, u32, FxBuildHasher>,
    spans: Vec<(u32, u32)>,
    out: Vec<u8>,
    n: u32,
    scratch: Vec<u8>,
    sorted: Vec<&'a crate::facets::Facet>,
}

impl<'a> Sets<'a> {
    fn for_events(events: usize) -> Self {
        let cap = 8 + events / 2;
        Sets {
            by_ptr: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            by_hash: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            spans: Vec::with_capacity(cap),
            out: Vec::with_capacity(events * 8),
            n: 0,
            scratch: Vec::new(),
            sorted: Vec::new(),
        }
    }

    fn set(&mut self, f: &'a Facets, strings: &mut Strings<'a>) -> u32 {
        let key = f.share_id();
        if let Some(i) = self.by_ptr.get(&key) {
            return *i;
        }
        self.scratch.clear();
        put_varint(&mut self.scratch, f.len() as u64);
        // Facets are written sorted by name (bytewise), so the bytes do not
        // depend on the order a host happened to set them in.
        self.sorted.clear();
        self.sorted.extend(f.iter());
        self.sorted.sort_unstable_by(|a, b| a.key().as_bytes().cmp(b.key().as_bytes()));
        for facet in &self.sorted {
            let k = strings.text(facet.key());
            put_varint(&mut self.scratch, u64::from(k) << 3 | u64::from(facet_tag(facet.value())));
            match facet.value() {
                FacetValue::Str(s) => {
                    let i = strings.text(s);
                    put_varint(&mut self.scratch, u64::from(i));
                }
                FacetValue::Int(i) => put_varint(&mut self.scratch, zigzag(*i)),
                FacetValue::Float(x) => self.scratch.extend_from_slice(&x.to_le_bytes()),
                FacetValue::Bool(_) => {}
            }
        }
        let h = xxhash_rust::xxh3::xxh3_64(&self.scratch);
        let found = self.by_hash.get(&h).copied().filter(|&i| {
            let (a, b) = self.spans[i as usize];
            self.out[a as usize..b as usize] == self.scratch[..]
        });
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.n;
                self.n += 1;
                let a = self.out.len() as u32;
                self.out.extend_from_slice(&self.scratch);
                self.spans.push((a, self.out.len() as u32));
                // On a hash collision the first set keeps the slot and this
                // one is written again: the bytes are still deterministic.
                self.by_hash.entry(h).or_insert(i);
                i
            }
        };
        self.by_ptr.insert(key, i);
        i
    }
}

const KIND_TRACK: u8 = 1;
const F_EXPERIMENT: u8 = 1 << 4;
const F_RULE: u8 = 1 << 5;
const F_CHOICE: u8 = 1 << 6;
const F_TRACK_INT: u8 = 1 << 2;
const F_COUNT: u8 = 1 << 7;

fn source_bits(s: Source) -> u8 {
    match s {
        Source::Experiment => 0,
        Source::Rollout => 1,
        Source::Default => 2,
        Source::Fallback => 3,
    }
}

fn source_of(bits: u8) -> Source {
    match bits & 3 {
        0 => Source::Experiment,
        1 => Source::Rollout,
        2 => Source::Default,
        _ => Source::Fallback,
    }
}

/// Encodes a batch. The same header and events give the same bytes on every platform.
pub fn encode_batch(header: &BatchHeader, events: &[Event]) -> Vec<u8> {
    let mut strings = Strings::for_events(events.len());
    let mut sets = Sets::for_events(events.len());
    let mut body = Vec::with_capacity(16 + events.len() * 12);
    for s in [&header.client_id, &header.sdk, &header.sdk_version, &header.platform] {
        let i = strings.text(s);
        put_varint(&mut body, u64::from(i));
    }
    put_varint(&mut body, header.seq);
    put_varint(&mut body, zigzag(header.created_at_ms));
    put_varint(&mut body, header.dropped);
    put_varint(&mut body, header.fold_overflow);
    put_varint(&mut body, events.len() as u64);
    let mut prev_time = header.created_at_ms;
    for e in events {
        let mut flags = 0u8;
        if e.count > 1 {
            flags |= F_COUNT;
        }
        match &e.data {
            EventData::Decision { source, experiment, rule, choice, .. } => {
                flags |= source_bits(*source) << 2;
                if experiment.is_some() {
                    flags |= F_EXPERIMENT;
                }
                if rule.is_some() {
                    flags |= F_RULE;
                }
                if choice.is_some() {
                    flags |= F_CHOICE;
                }
            }
            EventData::Track { value } => {
                flags |= KIND_TRACK;
                if track_int(*value).is_some() {
                    flags |= F_TRACK_INT;
                }
            }
        }
        body.push(flags);
        put_varint(&mut body, zigzag(e.time_ms.wrapping_sub(prev_time)));
        prev_time = e.time_ms;
        if e.count > 1 {
            put_varint(&mut body, e.count);
        }
        let svc = strings.arc(&e.service);
        put_varint(&mut body, u64::from(svc));
        let name = strings.arc(&e.name);
        put_varint(&mut body, u64::from(name));
        match &e.data {
            EventData::Decision { value, experiment, rule, choice, .. } => {
                let v = strings.arc(value);
                put_varint(&mut body, u64::from(v));
                if let Some(x) = experiment {
                    let i = strings.arc(x);
                    put_varint(&mut body, u64::from(i));
                }
                if let Some(r) = rule {
                    put_varint(&mut body, u64::from(*r));
                }
                if let Some(c) = choice {
                    put_varint(&mut body, u64::from(*c));
                }
            }
            EventData::Track { value } => match track_int(*value) {
                Some(i) => put_varint(&mut body, zigzag(i)),
                None => body.extend_from_slice(&value.to_le_bytes()),
            },
        }
        let set = sets.set(&e.facets, &mut strings);
        put_varint(&mut body, u64::from(set));
    }
    let mut out = Vec::with_capacity(5 + 10 + strings.out.len() + sets.out.len() + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(WIRE_VERSION);
    put_varint(&mut out, u64::from(strings.n));
    out.extend_from_slice(&strings.out);
    put_varint(&mut out, u64::from(sets.n));
    out.extend_from_slice(&sets.out);
    out.extend_from_slice(&body);
    let crc = checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A track value that round-trips exactly as a zigzag varint.
fn track_int(v: f64) -> Option<i64> {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 && !(v == 0.0 && v.is_sign_negative()) {
        Some(v as i64)
    } else {
        None
    }
}

/// The CRC-32C (Castagnoli) checksum the trailer carries.
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

// ---- decoder ----------------------------------------------------------------

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, what: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError::Malformed { offset: self.pos, what })
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.b.get(self.pos) {
            Some(x) => {
                self.pos += 1;
                Ok(*x)
            }
            None => self.err("unexpected end"),
        }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return self.err("length exceeds the batch");
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return self.err("varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.err("varint too long")
    }
    /// A count of items that each take at least `min_bytes`: checked against what remains.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bytes) <= self.remaining() => Ok(n),
            _ => self.err("count exceeds the batch"),
        }
    }
    fn index<T: Clone>(&mut self, table: &[T], what: &'static str) -> Result<T, DecodeError> {
        let i = self.varint()?;
        match usize::try_from(i).ok().and_then(|i| table.get(i)) {
            Some(x) => Ok(x.clone()),
            None => self.err(what),
        }
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let v = self.varint()?;
        match u32::try_from(v) {
            Ok(x) => Ok(x),
            Err(_) => self.err("index out of range"),
        }
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

/// Decodes a batch, verifying the checksum first. Never panics; never
/// allocates more than the input can describe.
pub fn decode_batch(bytes: &[u8]) -> Result<DecodedBatch, DecodeError> {
    if bytes.len() < MAGIC.len() + 1 + 4 || &bytes[..4] != MAGIC {
        return Err(DecodeError::NotABatch);
    }
    if bytes[4] != WIRE_VERSION {
        return Err(DecodeError::Version(bytes[4]));
    }
    let (payload, trailer) = bytes.split_at(bytes.len() - 4);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(trailer);
    if checksum(payload) != u32::from_le_bytes(crc) {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader { b: payload, pos: 5 };
    let n = r.count(1)?;
    let mut strings: Vec<Arc<str>> = Vec::with_capacity(n);
    for _ in 0..n {
        let h = r.varint()?;
        if h & 1 == 1 {
            if h != 1 {
                return r.err("bad string header");
            }
            strings.push(Arc::from(uuid_string(r.bytes(16)?)));
        } else {
            let len = usize::try_from(h >> 1).unwrap_or(usize::MAX);
            let raw = r.bytes(len)?;
            match std::str::from_utf8(raw) {
                Ok(s) => strings.push(Arc::from(s)),
                Err(_) => return r.err("string is not UTF-8"),
            }
        }
    }
    let n = r.count(1)?;
    let mut sets: Vec<Facets> = Vec::with_capacity(n);
    // Facet values are copied out of the string table; cap the copies at a
    // fixed multiple of the input so hostile batches cannot amplify memory.
    let mut budget = bytes.len().saturating_mul(DECODE_EXPANSION).saturating_add(64 * 1024);
    for _ in 0..n {
        let k = r.count(1)?;
        let mut items: Vec<(std::borrow::Cow<'static, str>, FacetValue)> = Vec::with_capacity(k);
        for _ in 0..k {
            let h = r.varint()?;
            let key = match usize::try_from(h >> 3).ok().and_then(|i| strings.get(i)) {
                Some(s) => s.clone(),
                None => return r.err("facet key index out of range"),
            };
            let value = match h & 7 {
                0 => FacetValue::Str(r.index(&strings, "facet string index out of range")?.to_string()),
                1 => FacetValue::Int(unzigzag(r.varint()?)),
                2 => FacetValue::Float(r.f64()?),
                3 => FacetValue::Bool(false),
                4 => FacetValue::Bool(true),
                _ => return r.err("unknown facet tag"),
            };
            let cost = key.len() + 64 + if let FacetValue::Str(v) = &value { 2 * v.len() } else { 24 };
            budget = match budget.checked_sub(cost) {
                Some(b) => b,
                None => return r.err("facet sets expand beyond the decoder's limit"),
            };
            let key = match crate::facets::names::well_known(&key) {
                Some(k) => std::borrow::Cow::Borrowed(k),
                None => std::borrow::Cow::Owned(key.to_string()),
            };
            items.push((key, value));
        }
        // Small sets (all real ones) are checked pairwise without allocating;
        // large ones by sorting, so a hostile set stays O(k log k).
        let repeats = if items.len() <= 16 {
            (1..items.len()).any(|i| items[..i].iter().any(|(k, _)| *k == items[i].0))
        } else {
            let mut keys: Vec<&str> = items.iter().map(|(k, _)| &**k).collect();
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        };
        if repeats {
            return r.err("facet set repeats a key");
        }
        sets.push(Facets::from_distinct(items));
    }
    let client_id = r.index(&strings, "string index out of range")?.to_string();
    let sdk = r.index(&strings, "string index out of range")?.to_string();
    let sdk_version = r.index(&strings, "string index out of range")?.to_string();
    let platform = r.index(&strings, "string index out of range")?.to_string();
    let seq = r.varint()?;
    let created_at_ms = unzigzag(r.varint()?);
    let dropped = r.varint()?;
    let fold_overflow = r.varint()?;
    let header = BatchHeader { client_id, seq, created_at_ms, sdk, sdk_version, platform, dropped, fold_overflow };
    let n = r.count(6)?;
    let mut events = Vec::with_capacity(n);
    let mut time = created_at_ms;
    for _ in 0..n {
        let flags = r.byte()?;
        time = time.wrapping_add(unzigzag(r.varint()?));
        let count = if flags & F_COUNT != 0 {
            let c = r.varint()?;
            if c < 2 {
                return r.err("folded count below 2");
            }
            c
        } else {
            1
        };
        let service = r.index(&strings, "service index out of range")?;
        let name = r.index(&strings, "name index out of range")?;
        let data = match flags & 3 {
            0 => {
                let value = r.index(&strings, "value index out of range")?;
                let experiment = if flags & F_EXPERIMENT != 0 {
                    Some(r.index(&strings, "experiment index out of range")?)
                } else {
                    None
                };
                let rule = if flags & F_RULE != 0 { Some(r.u32()?) } else { None };
                let choice = if flags & F_CHOICE != 0 { Some(r.u32()?) } else { None };
                EventData::Decision { value, source: source_of(flags >> 2), experiment, rule, choice }
            }
            KIND_TRACK => {
                if flags & 0b0111_1000 != 0 {
                    return r.err("unknown track flags");
                }
                let value = if flags & F_TRACK_INT != 0 { unzigzag(r.varint()?) as f64 } else { r.f64()? };
                EventData::Track { value }
            }
            _ => return r.err("unknown event kind"),
        };
        let facets = r.index(&sets, "facet set index out of range")?;
        events.push(Event { time_ms: time, count, service, name, data, facets });
    }
    if r.remaining() != 0 {
        return r.err("trailing bytes after the events");
    }
    Ok(DecodedBatch { header, events })
}

// ---- batch streams ----------------------------------------------------------

/// Appends one batch to a batch stream (a file of several batches): its length
/// as a varint, then its bytes.
pub fn append_to_stream(stream: &mut Vec<u8>, batch: &[u8]) {
    put_varint(stream, batch.len() as u64);
    stream.extend_from_slice(batch);
}

/// Splits a batch stream into batches. A single raw batch (starting with the
/// magic) is accepted as a stream of one.
pub fn split_stream(bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    if bytes.starts_with(MAGIC) {
        return Ok(vec![bytes]);
    }
    let mut r = Reader { b: bytes, pos: 0 };
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let n = r.varint()?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        out.push(r.bytes(n)?);
    }
    Ok(out)
}
