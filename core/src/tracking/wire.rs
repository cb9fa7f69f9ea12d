//! The binary batch format, version 1 (documented in docs/wire-format.md).
//!
//! ```text
//! batch   = magic "TRNB" | version u8 (=1) | strings | shapes | sets | header | events | crc32c u32 LE
//! strings = varint n, n x (varint h: h == 1 ? 16 UUID bytes : (h>>1) UTF-8 bytes)
//! shapes  = varint n, n x (varint k, k x varint (name << 3 | tag))        names sorted bytewise
//! sets    = varint n, n x (str service, varint shape, payload per facet of the shape)
//!           string payload: varint h: even = back to facet string h>>1, 1 = new UUID, h&3 == 3 = new text
//! header  = client, sdk, sdk_version, platform (strings), seq, zigzag created_ms, dropped, fold_overflow
//! events  = varint n, n x (flags, zigzag dt, [count], set, name, value [, experiment, rule, choice])
//! ```
//!
//! Every string but facet values (names, services, decision values, facet
//! names, header fields) is written once in the string table and referred to
//! by index; facet string values are written inside the sets, once, and
//! referred back to; every distinct (service, facets) pair is written once as a
//! set of a shared shape; track names drop their `service.` prefix; times are
//! zigzag deltas. Encoding is deterministic: tables are filled in first-use
//! order and the facets of a set are written sorted by name.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use thiserror::Error;

use super::event::{facet_tag, Event, EventData};
use crate::decision::Source;
use crate::facets::{Facet, Facets};
use crate::value::FacetValue;

/// The 4 magic bytes that open every batch.
pub const MAGIC: &[u8; 4] = b"TRNB";
/// The wire format version this engine writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// Output bytes charged per decoded event besides its strings and facets: the
/// fixed keys of its JSON line (`kind`, `time`, `count`, `source`, ..., and the
/// header's keys that `batch_event_lines` repeats on every line).
const EVENT_COST: usize = 192;
/// Output bytes charged per facet of an event besides its name and value (quotes, separators).
const FACET_OUT_COST: usize = 8;

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
    /// The batch would decode to more than [`crate::limits::DECODE_EXPANSION`]
    /// times its size (counting every copy a consumer's output makes).
    #[error("batch rejected: {0}")]
    Limit(crate::limits::LimitError),
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

/// The batch's string table: strings interned by content, with a cache by
/// `Arc` pointer in front (the engine shares one `Arc` per name and value).
struct Strings<'a> {
    /// A small direct-mapped cache (address, length) -> index in front of
    /// `by_text`: shared `Arc`s and `'static` facet names are found again
    /// without hashing their text. A slot keeps the last string mapped to it.
    by_ptr: Box<[(usize, usize, u32); PTR_CACHE]>,
    by_text: HashMap<&'a str, u32, FxBuildHasher>,
    out: Vec<u8>,
    n: u32,
}

impl<'a> Strings<'a> {
    /// Sized for a batch of `events` events, so the tables do not rehash while filling.
    fn for_events(events: usize) -> Self {
        let cap = 16 + events;
        Strings {
            by_ptr: Box::new([(0, 0, 0); PTR_CACHE]),
            by_text: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            out: Vec::with_capacity(events * 12),
            n: 0,
        }
    }

    fn text(&mut self, s: &'a str) -> u32 {
        if let Some(i) = self.by_text.get(s) {
            return *i;
        }
        let i = self.n;
        self.n += 1;
        put_literal(&mut self.out, s, 1, 0);
        self.by_text.insert(s, i);
        i
    }

    /// [`Strings::text`] for a string that stays put while the batch is
    /// encoded (an `Arc`, a facet name): repeats are found by address.
    #[inline]
    fn pinned(&mut self, s: &'a str) -> u32 {
        let (p, n) = (s.as_ptr() as usize, s.len());
        // (No real string has address 0, the empty slots' value.)
        let slot = cache_slot(p as u64);
        let (q, m, i) = self.by_ptr[slot];
        if q == p && m == n {
            return i;
        }
        let i = self.text(s);
        self.by_ptr[slot] = (p, n, i);
        i
    }
}

const PTR_CACHE_BITS: u32 = 8;
const PTR_CACHE: usize = 1 << PTR_CACHE_BITS;

/// The slot of an address (or a pair of them, mixed) in a direct-mapped cache.
#[inline]
fn cache_slot(x: u64) -> usize {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PTR_CACHE_BITS)) as usize
}

/// Writes a string literal: `01` and 16 bytes for a canonical lowercase UUID,
/// otherwise the varint `len << shift | tag` and the UTF-8 bytes.
#[inline]
fn put_literal(out: &mut Vec<u8>, s: &str, shift: u32, tag: u64) {
    match uuid_bytes(s) {
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&b);
        }
        None => {
            put_varint(out, (s.len() as u64) << shift | tag);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Where the 16 hex pairs of a canonical UUID start.
const UUID_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A canonical lowercase hyphenated UUID as 16 bytes (only that exact form,
/// so decoding gives back the same string).
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let le32 = |i: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[i..i + 4]);
        u64::from(u32::from_le_bytes(a))
    };
    // The 32 hex digits as four words of 8 ASCII bytes, decoded 8 at a time.
    let words =
        [le32(0) | le32(4) << 32, le32(9) | le32(14) << 32, le32(19) | le32(24) << 32, le32(28) | le32(32) << 32];
    let mut out = [0u8; 16];
    for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&hex8(w)?.to_le_bytes());
    }
    Some(out)
}

/// Eight lowercase hex digits (ASCII, first digit in the low byte) as four
/// bytes; `None` if any byte is not `0-9` or `a-f`.
#[inline]
fn hex8(w: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if w & HIGH != 0 {
        return None;
    }
    // Bytes below 0x80: adding 0x80 - c sets a byte's high bit exactly when
    // it is >= c, and never carries into the next byte.
    let at_least = |c: u64| w.wrapping_add((0x80 - c) * ONES) & HIGH;
    let digit = at_least(0x30) & !at_least(0x3A);
    let letter = at_least(0x61) & !at_least(0x67);
    if digit | letter != HIGH {
        return None;
    }
    // '0'-'9' -> 0-9 (low nibble), 'a'-'f' -> 1-6 + 9 (bit 6 marks a letter).
    let nib = (w & (0x0F * ONES)) + ((w >> 6) & ONES) * 9;
    // Pairs (high digit first) into bytes, then the four bytes together.
    let t = ((nib & 0x000F_000F_000F_000F) << 4) | ((nib >> 8) & 0x000F_000F_000F_000F);
    let t = (t | t >> 8) & 0x0000_FFFF_0000_FFFF;
    Some((t | t >> 16) as u32)
}

fn uuid_string(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [b'-'; 36];
    for (x, &p) in b.iter().zip(UUID_PAIRS.iter()) {
        t[p] = HEX[(x >> 4) as usize];
        t[p + 1] = HEX[(x & 15) as usize];
    }
    // Hex digits and hyphens: always ASCII.
    std::str::from_utf8(&t).map(str::to_string).unwrap_or_default()
}

/// A facet of the set being written, with its sort key (its name's first 8
/// bytes, big-endian) and its shape identity (its name's address and length,
/// and its tag).
struct Sorted<'a> {
    prefix: u64,
    addr: (usize, usize, u8),
    facet: &'a Facet,
}

/// "No set": the end of a hash chain.
const NONE: u32 = u32::MAX;

/// The shape and facet-set tables, and the facet string values the sets define.
struct Sets<'a> {
    /// Content hash (of the service's text and the facets' fingerprint) -> the
    /// newest set with it; `next` chains sets of equal hash, so a collision
    /// never duplicates a set.
    by_hash: HashMap<u64, u32, FxBuildHasher>,
    next: Vec<u32>,
    /// A direct-mapped cache (service address, facets identity) -> set in front
    /// of `by_hash`: the events of one context find their set in one probe.
    by_id: Box<[(usize, usize, u32); PTR_CACHE]>,
    /// Each set's service and facets, to confirm a hash match (shared facets
    /// are recognised by identity, others compared).
    reps: Vec<(&'a str, &'a Facets)>,
    out: Vec<u8>,
    n: u32,
    shapes: HashMap<Box<[u8]>, u32, FxBuildHasher>,
    shapes_out: Vec<u8>,
    shape_scratch: Vec<u8>,
    /// Shapes by the addresses of their names and their tags (in shape
    /// order): a set whose names are the same `'static` or shared strings as
    /// an earlier set's finds its shape without interning each name again.
    /// Hash -> alias; an alias is a span of `alias_keys` and its shape.
    shape_by_addr: HashMap<u64, u32, FxBuildHasher>,
    aliases: Vec<(u32, u32, u32)>,
    alias_keys: Vec<(usize, usize, u8)>,
    /// Facet string values already defined -> their index among the batch's facet strings.
    values: HashMap<&'a str, u32, FxBuildHasher>,
    /// The set's facets being written, in shape order.
    sorted: Vec<Sorted<'a>>,
}

impl<'a> Sets<'a> {
    fn for_events(events: usize) -> Self {
        let cap = 8 + events / 2;
        Sets {
            by_hash: HashMap::with_capacity_and_hasher(cap, FxBuildHasher),
            next: Vec::with_capacity(cap),
            by_id: Box::new([(0, 0, 0); PTR_CACHE]),
            reps: Vec::with_capacity(cap),
            out: Vec::with_capacity(events * 12),
            n: 0,
            shapes: HashMap::with_capacity_and_hasher(16, FxBuildHasher),
            shapes_out: Vec::with_capacity(128),
            shape_scratch: Vec::with_capacity(32),
            shape_by_addr: HashMap::with_capacity_and_hasher(16, FxBuildHasher),
            aliases: Vec::with_capacity(16),
            alias_keys: Vec::with_capacity(64),
            values: HashMap::with_capacity_and_hasher(cap * 2, FxBuildHasher),
            sorted: Vec::new(),
        }
    }

    /// The index of the set (service, facets), written on first use.
    fn set(&mut self, service: &'a Arc<str>, f: &'a Facets, strings: &mut Strings<'a>) -> u32 {
        let id = (service.as_ptr() as usize, f.share_id());
        let slot = cache_slot(id.0 as u64 ^ (id.1 as u64).rotate_left(29));
        let (p, q, i) = self.by_id[slot];
        if (p, q) == id {
            return i;
        }
        let i = self.find_or_add(service, f, strings);
        self.by_id[slot] = (id.0, id.1, i);
        i
    }

    /// The set (service, facets) found by content, or added.
    fn find_or_add(&mut self, service: &'a Arc<str>, f: &'a Facets, strings: &mut Strings<'a>) -> u32 {
        // Equal sets hash alike whatever their sharing: the fingerprint is a
        // digest of the facets' content, and one service is one string.
        let h = f.fingerprint() ^ {
            let mut x = rustc_hash::FxHasher::default();
            x.write(service.as_bytes());
            x.finish()
        };
        let mut cand = self.by_hash.get(&h).copied().unwrap_or(NONE);
        while cand != NONE {
            let (s, other) = self.reps[cand as usize];
            let same_service = std::ptr::eq(s, &**service) || s == &**service;
            if same_service && (other.share_id() == f.share_id() || same_facets(f, other)) {
                return cand;
            }
            cand = self.next[cand as usize];
        }
        let svc = strings.pinned(service);
        let i = self.n;
        self.n += 1;
        self.next.push(self.by_hash.insert(h, i).unwrap_or(NONE));
        self.reps.push((service, f));
        put_varint(&mut self.out, u64::from(svc));
        // Facets are written sorted by name (bytewise), so the bytes do not
        // depend on the order a host happened to set them in.
        self.sorted.clear();
        self.sorted.extend(f.iter().map(|x| {
            let k = x.key();
            Sorted { prefix: name_prefix(k), addr: (k.as_ptr() as usize, k.len(), facet_tag(x.value())), facet: x }
        }));
        self.sorted.sort_unstable_by(|a, b| {
            a.prefix.cmp(&b.prefix).then_with(|| a.facet.key().as_bytes().cmp(b.facet.key().as_bytes()))
        });
        let shape = self.shape(strings);
        put_varint(&mut self.out, u64::from(shape));
        for x in &self.sorted {
            match x.facet.value() {
                FacetValue::Str(s) => {
                    let next = self.values.len() as u32;
                    match self.values.entry(s) {
                        Entry::Occupied(e) => put_varint(&mut self.out, u64::from(*e.get()) << 1),
                        Entry::Vacant(e) => {
                            e.insert(next);
                            put_literal(&mut self.out, s, 2, 3);
                        }
                    }
                }
                FacetValue::Int(i) => put_varint(&mut self.out, zigzag(*i)),
                FacetValue::Float(x) => self.out.extend_from_slice(&x.to_le_bytes()),
                FacetValue::Bool(_) => {}
            }
        }
        i
    }

    /// The shape of the facets in `self.sorted`, written on first use.
    fn shape(&mut self, strings: &mut Strings<'a>) -> u32 {
        let h = self.sorted.iter().fold(self.sorted.len() as u64, |h, x| {
            let (p, n, t) = x.addr;
            (h ^ p as u64 ^ (n as u64) << 40 ^ u64::from(t) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23)
        });
        if let Some(&a) = self.shape_by_addr.get(&h) {
            let (start, end, shape) = self.aliases[a as usize];
            let keys = &self.alias_keys[start as usize..end as usize];
            if keys.len() == self.sorted.len() && keys.iter().zip(&self.sorted).all(|(k, x)| *k == x.addr) {
                return shape;
            }
        }
        self.shape_scratch.clear();
        put_varint(&mut self.shape_scratch, self.sorted.len() as u64);
        for x in &self.sorted {
            let k = strings.pinned(x.facet.key());
            put_varint(&mut self.shape_scratch, u64::from(k) << 3 | u64::from(x.addr.2));
        }
        let shape = match self.shapes.get(&self.shape_scratch[..]) {
            Some(&s) => s,
            None => {
                let s = self.shapes.len() as u32;
                self.shapes_out.extend_from_slice(&self.shape_scratch);
                self.shapes.insert(Box::from(&self.shape_scratch[..]), s);
                s
            }
        };
        if let Entry::Vacant(e) = self.shape_by_addr.entry(h) {
            let start = self.alias_keys.len() as u32;
            self.alias_keys.extend(self.sorted.iter().map(|x| x.addr));
            e.insert(self.aliases.len() as u32);
            self.aliases.push((start, self.alias_keys.len() as u32, shape));
        }
        shape
    }
}

/// A name's first 8 bytes as a big-endian number (zero-padded): ordering by
/// it orders names bytewise, except that ties need a full comparison.
#[inline]
fn name_prefix(name: &str) -> u64 {
    // Byte by byte: a short copy into a buffer read back as one word would
    // stall on store forwarding.
    name.as_bytes().iter().take(8).enumerate().fold(0u64, |w, (i, &c)| w | u64::from(c) << (56 - 8 * i))
}

/// Whether two facet sets encode alike: same names, tags and values (floats bit for bit).
fn same_facets(a: &Facets, b: &Facets) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.get(x.key()).is_some_and(|y| match (x.value(), y.value()) {
                (FacetValue::Str(p), FacetValue::Str(q)) => p == q,
                (FacetValue::Int(p), FacetValue::Int(q)) => p == q,
                (FacetValue::Float(p), FacetValue::Float(q)) => p.to_bits() == q.to_bits(),
                (FacetValue::Bool(p), FacetValue::Bool(q)) => p == q,
                _ => false,
            })
        })
}

const KIND_TRACK: u8 = 1;
const F_EXPERIMENT: u8 = 1 << 4;
const F_RULE: u8 = 1 << 5;
const F_CHOICE: u8 = 1 << 6;
const F_TRACK_INT: u8 = 1 << 2;
const F_TRACK_BARE: u8 = 1 << 3;
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

/// A track name without its `service.` prefix, if it has one.
#[inline]
fn bare_track_name<'a>(service: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(service)?.strip_prefix('.')
}

/// Encodes a batch. The same header and events give the same bytes on every platform.
pub fn encode_batch(header: &BatchHeader, events: &[Event]) -> Vec<u8> {
    let mut strings = Strings::for_events(events.len());
    let mut sets = Sets::for_events(events.len());
    let mut body = Vec::with_capacity(16 + events.len() * 8);
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
        // Strings are numbered in wire order: the set's (at its first use), then the name's.
        let set = sets.set(&e.service, &e.facets, &mut strings);
        let mut flags = if e.count > 1 { F_COUNT } else { 0 };
        let name = match &e.data {
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
                strings.pinned(&e.name)
            }
            EventData::Track { value } => {
                flags |= KIND_TRACK;
                if track_int(*value).is_some() {
                    flags |= F_TRACK_INT;
                }
                match bare_track_name(&e.service, &e.name) {
                    Some(bare) => {
                        flags |= F_TRACK_BARE;
                        strings.text(bare)
                    }
                    None => strings.pinned(&e.name),
                }
            }
        };
        body.push(flags);
        put_varint(&mut body, zigzag(e.time_ms.wrapping_sub(prev_time)));
        prev_time = e.time_ms;
        if e.count > 1 {
            put_varint(&mut body, e.count);
        }
        put_varint(&mut body, u64::from(set));
        put_varint(&mut body, u64::from(name));
        match &e.data {
            EventData::Decision { value, experiment, rule, choice, .. } => {
                let v = strings.pinned(value);
                put_varint(&mut body, u64::from(v));
                if let Some(x) = experiment {
                    let i = strings.pinned(x);
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
    }
    let mut out =
        Vec::with_capacity(5 + 15 + strings.out.len() + sets.shapes_out.len() + sets.out.len() + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(WIRE_VERSION);
    put_varint(&mut out, u64::from(strings.n));
    out.extend_from_slice(&strings.out);
    put_varint(&mut out, sets.shapes.len() as u64);
    out.extend_from_slice(&sets.shapes_out);
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
    #[inline]
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
    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Fast path: a one-byte varint (most indices and deltas).
        if let Some(&b) = self.b.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }
    fn varint_slow(&mut self) -> Result<u64, DecodeError> {
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
    /// A varint index below `len`.
    #[inline]
    fn index(&mut self, len: usize, what: &'static str) -> Result<usize, DecodeError> {
        let i = self.varint()?;
        match usize::try_from(i) {
            Ok(i) if i < len => Ok(i),
            _ => self.err(what),
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
    /// A string literal after its header `h`: a UUID when `h == 1`, else
    /// `text_len` bytes of UTF-8 (`None`: the header is invalid).
    fn literal(&mut self, h: u64, text_len: Option<u64>) -> Result<Lit<'a>, DecodeError> {
        if h == 1 {
            let mut u = [0u8; 16];
            u.copy_from_slice(self.bytes(16)?);
            return Ok(Lit::Uuid(u));
        }
        let Some(len) = text_len else {
            return self.err("bad string header");
        };
        let raw = self.bytes(usize::try_from(len).unwrap_or(usize::MAX))?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(Lit::Text(s)),
            Err(_) => self.err("string is not UTF-8"),
        }
    }
}

/// A decoded string literal, borrowed from the batch (UUIDs are kept as their 16 bytes).
#[derive(Clone, Copy)]
enum Lit<'a> {
    Text(&'a str),
    Uuid([u8; 16]),
}

impl Lit<'_> {
    fn len(&self) -> usize {
        match self {
            Lit::Text(s) => s.len(),
            Lit::Uuid(_) => 36,
        }
    }
    fn into_string(self) -> String {
        match self {
            Lit::Text(s) => s.to_string(),
            Lit::Uuid(u) => uuid_string(&u),
        }
    }
    fn to_arc(self) -> Arc<str> {
        match self {
            Lit::Text(s) => Arc::from(s),
            Lit::Uuid(u) => Arc::from(uuid_string(&u)),
        }
    }
}

/// The string table as decoded: literals, and their shared `Arc`s made on first use.
struct Table<'a> {
    lits: Vec<Lit<'a>>,
    arcs: Vec<Option<Arc<str>>>,
}

impl Table<'_> {
    #[inline]
    fn arc(&mut self, i: usize) -> Arc<str> {
        let lit = self.lits[i];
        Arc::clone(self.arcs[i].get_or_insert_with(|| lit.to_arc()))
    }
}

/// What decoded data may still take, in bytes: a fixed multiple of the input.
struct Budget {
    left: usize,
    total: usize,
}

impl Budget {
    fn new(input: usize) -> Budget {
        use crate::limits::{DECODE_ALLOWANCE, DECODE_EXPANSION};
        let total = input.saturating_mul(DECODE_EXPANSION).saturating_add(DECODE_ALLOWANCE);
        Budget { left: total, total }
    }

    #[inline]
    fn take(&mut self, _r: &Reader<'_>, cost: usize) -> Result<(), DecodeError> {
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(DecodeError::Limit(crate::limits::LimitError::new(
                crate::limits::Limit::DecodeExpansion,
                self.total,
                self.total - self.left + cost,
            ))),
        }
    }
}

/// One facet of a shape: its name, tag, and `key << 3 | tag` as written (its identity).
struct ShapeKey {
    name: Cow<'static, str>,
    tag: u8,
    id: u64,
}

/// The facets decoded so far, by (shape key, payload): a facet that repeats
/// across sets (a city, a vehicle type, a session referred back to) is built
/// once and cloned, instead of being canonicalised and hashed again.
struct Reuse {
    /// (shape key, payload) -> (set, position) of the facet's first build.
    index: HashMap<(u64, u64), (u32, u32), FxBuildHasher>,
}

impl Reuse {
    fn with_capacity(n: usize) -> Reuse {
        Reuse { index: HashMap::with_capacity_and_hasher(n, FxBuildHasher) }
    }

    /// The facet `key` = `payload` (the raw integer, float bits or string
    /// reference) at `pos` of set `set`, `sets` being the sets before it.
    #[inline]
    fn facet(
        &mut self,
        sets: &[DecodedSet],
        at: (u32, u32),
        key: &ShapeKey,
        payload: u64,
        value: impl FnOnce() -> FacetValue,
    ) -> Facet {
        match self.index.entry((key.id, payload)) {
            Entry::Occupied(e) => {
                let (set, pos) = *e.get();
                match sets.get(set as usize).and_then(|s| s.facets.iter().nth(pos as usize)) {
                    Some(f) => f.clone(),
                    None => Facet::new(key.name.clone(), value()),
                }
            }
            Entry::Vacant(e) => {
                e.insert(at);
                Facet::new(key.name.clone(), value())
            }
        }
    }
}

/// A decoded facet set: its service (string index and shared text) and facets.
struct DecodedSet {
    svc: usize,
    service: Arc<str>,
    facets: Facets,
    /// What one copy of the set costs in a consumer's output (charged per event).
    out_cost: usize,
}

/// Decoded memory charged per facet besides its strings.
const FACET_COST: usize = std::mem::size_of::<Facet>();

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
    // Facet sets are shared by their events, but a set's facets, its string
    // values and rebuilt track names are copies: cap them at a fixed multiple
    // of the input so hostile batches cannot amplify memory.
    let mut budget = Budget::new(bytes.len());

    // Strings.
    let n = r.count(1)?;
    let mut lits = Vec::with_capacity(n);
    for _ in 0..n {
        let h = r.varint()?;
        lits.push(r.literal(h, (h & 1 == 0).then_some(h >> 1))?);
    }
    let mut table = Table { arcs: vec![None; lits.len()], lits };

    // Shapes: (key, tag) lists, stored flat; `shapes` holds each one's span.
    let n = r.count(1)?;
    let mut shapes: Vec<(usize, usize)> = Vec::with_capacity(n);
    let mut keys: Vec<ShapeKey> = Vec::new();
    for _ in 0..n {
        let k = r.count(1)?;
        let start = keys.len();
        for _ in 0..k {
            let h = r.varint()?;
            let key = match usize::try_from(h >> 3).ok().and_then(|i| table.lits.get(i)) {
                Some(k) => *k,
                None => return r.err("facet key index out of range"),
            };
            let tag = (h & 7) as u8;
            if tag > 4 {
                return r.err("unknown facet tag");
            }
            budget.take(&r, key.len() + 32)?;
            let name = match key {
                Lit::Text(s) => {
                    crate::facets::names::well_known(s).map_or_else(|| Cow::Owned(s.to_string()), Cow::Borrowed)
                }
                Lit::Uuid(u) => Cow::Owned(uuid_string(&u)),
            };
            keys.push(ShapeKey { name, tag, id: h });
        }
        let shape = &keys[start..];
        // Small shapes (all real ones) are checked pairwise without allocating;
        // large ones by sorting, so a hostile shape stays O(k log k).
        let repeats = if shape.len() <= 16 {
            (1..shape.len()).any(|i| shape[..i].iter().any(|k| k.name == shape[i].name))
        } else {
            let mut names: Vec<&str> = shape.iter().map(|k| &*k.name).collect();
            names.sort_unstable();
            names.windows(2).any(|w| w[0] == w[1])
        };
        if repeats {
            return r.err("facet shape repeats a key");
        }
        shapes.push((start, keys.len()));
    }

    // Facet sets: (service, facets); string values are defined in place or refer back.
    let n = r.count(2)?;
    let mut sets: Vec<DecodedSet> = Vec::with_capacity(n);
    // (Sized for real batches; a hostile count cannot make these reserve much.)
    let mut values: Vec<Lit<'_>> = Vec::with_capacity(n.min(1024));
    let mut reuse = Reuse::with_capacity(n.min(1024) * 2);
    for _ in 0..n {
        let svc = r.index(table.lits.len(), "service index out of range")?;
        let (a, b) = match usize::try_from(r.varint()?).ok().and_then(|i| shapes.get(i)) {
            Some(s) => *s,
            None => return r.err("shape index out of range"),
        };
        budget.take(&r, (b - a) * FACET_COST)?;
        let mut items = Vec::with_capacity(b - a);
        let set = sets.len() as u32;
        for (pos, key) in keys[a..b].iter().enumerate() {
            let at = (set, pos as u32);
            let facet = match key.tag {
                0 => {
                    let h = r.varint()?;
                    if h & 1 == 0 {
                        // A value met before: its facet may be too.
                        let i = match usize::try_from(h >> 1).ok().filter(|&i| i < values.len()) {
                            Some(i) => i,
                            None => return r.err("facet string reference out of range"),
                        };
                        let lit = values[i];
                        budget.take(&r, lit.len())?;
                        reuse.facet(&sets, at, key, i as u64, || FacetValue::Str(lit.into_string()))
                    } else {
                        let lit = r.literal(h, (h & 3 == 3).then_some(h >> 2))?;
                        values.push(lit);
                        budget.take(&r, lit.len())?;
                        Facet::new(key.name.clone(), FacetValue::Str(lit.into_string()))
                    }
                }
                1 => {
                    let v = r.varint()?;
                    reuse.facet(&sets, at, key, v, || FacetValue::Int(unzigzag(v)))
                }
                2 => {
                    let x = r.f64()?;
                    reuse.facet(&sets, at, key, x.to_bits(), || FacetValue::Float(x))
                }
                tag => reuse.facet(&sets, at, key, 0, || FacetValue::Bool(tag == 4)),
            };
            items.push(facet);
        }
        let service = table.arc(svc);
        let out_cost =
            items.iter().map(|f| f.key().len() + f.canonical().len() + FACET_OUT_COST).sum::<usize>() + service.len();
        sets.push(DecodedSet { svc, service, facets: Facets::from_built(items), out_cost });
    }

    // Header.
    let header_str = |r: &mut Reader<'_>| -> Result<String, DecodeError> {
        let i = r.index(table.lits.len(), "string index out of range")?;
        Ok(table.lits[i].into_string())
    };
    let client_id = header_str(&mut r)?;
    let sdk = header_str(&mut r)?;
    let sdk_version = header_str(&mut r)?;
    let platform = header_str(&mut r)?;
    let seq = r.varint()?;
    let created_at_ms = unzigzag(r.varint()?);
    let dropped = r.varint()?;
    let fold_overflow = r.varint()?;
    let header = BatchHeader { client_id, seq, created_at_ms, sdk, sdk_version, platform, dropped, fold_overflow };
    // Every event's output line repeats the header's strings.
    let line_cost =
        EVENT_COST + header.client_id.len() + header.sdk.len() + header.sdk_version.len() + header.platform.len();

    // Events.
    let n = r.count(5)?;
    let mut events = Vec::with_capacity(n);
    // `service.name` of bare track names, built once per (service, name).
    let mut full_names: HashMap<(usize, usize), Arc<str>, FxBuildHasher> =
        HashMap::with_capacity_and_hasher(16, FxBuildHasher);
    let mut scratch = String::new();
    let strings = table.lits.len();
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
        let (svc, service, facets) = match usize::try_from(r.varint()?).ok().and_then(|i| sets.get(i)) {
            Some(s) => {
                // The set is shared in memory, but every consumer's output copies it.
                budget.take(&r, line_cost + s.out_cost)?;
                (s.svc, Arc::clone(&s.service), s.facets.clone())
            }
            None => return r.err("facet set index out of range"),
        };
        let name = r.index(strings, "name index out of range")?;
        budget.take(&r, table.lits[name].len())?;
        let (name, data) = match flags & 3 {
            0 => {
                let value = r.index(strings, "value index out of range")?;
                budget.take(&r, table.lits[value].len())?;
                let value = table.arc(value);
                let experiment = if flags & F_EXPERIMENT != 0 {
                    let e = r.index(strings, "experiment index out of range")?;
                    budget.take(&r, table.lits[e].len())?;
                    Some(table.arc(e))
                } else {
                    None
                };
                let rule = if flags & F_RULE != 0 { Some(r.u32()?) } else { None };
                let choice = if flags & F_CHOICE != 0 { Some(r.u32()?) } else { None };
                (
                    table.arc(name),
                    EventData::Decision { value, source: source_of(flags >> 2), experiment, rule, choice },
                )
            }
            KIND_TRACK => {
                if flags & 0b0111_0000 != 0 {
                    return r.err("unknown track flags");
                }
                let name = if flags & F_TRACK_BARE != 0 {
                    match full_names.get(&(svc, name)) {
                        Some(full) => Arc::clone(full),
                        None => {
                            let bare = table.lits[name];
                            budget.take(&r, service.len() + bare.len() + 32)?;
                            scratch.clear();
                            scratch.push_str(&service);
                            scratch.push('.');
                            match bare {
                                Lit::Text(t) => scratch.push_str(t),
                                Lit::Uuid(u) => scratch.push_str(&uuid_string(&u)),
                            }
                            let full: Arc<str> = Arc::from(scratch.as_str());
                            full_names.insert((svc, name), Arc::clone(&full));
                            full
                        }
                    }
                } else {
                    table.arc(name)
                };
                let value = if flags & F_TRACK_INT != 0 { unzigzag(r.varint()?) as f64 } else { r.f64()? };
                (name, EventData::Track { value })
            }
            _ => return r.err("unknown event kind"),
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The UUID form, the slow way: 32 lowercase hex digits with hyphens at 8, 13, 18, 23.
    fn reference(s: &str) -> Option<[u8; 16]> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let hex: Vec<u8> =
            b.iter().enumerate().filter(|(i, _)| ![8, 13, 18, 23].contains(i)).map(|(_, c)| *c).collect();
        if !hex.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(hex.chunks(2)) {
            *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(out)
    }

    #[test]
    fn uuid_form_matches_the_slow_way_for_every_byte_at_every_position() {
        let good = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(uuid_bytes(good), reference(good));
        assert!(uuid_bytes(good).is_some());
        assert_eq!(uuid_string(&uuid_bytes(good).unwrap()), good);
        for i in 0..36 {
            for c in 0..=255u8 {
                let mut b = good.as_bytes().to_vec();
                b[i] = c;
                if let Ok(s) = std::str::from_utf8(&b) {
                    assert_eq!(uuid_bytes(s), reference(s), "{s:?}");
                }
            }
        }
        for s in [
            "",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        ] {
            assert_eq!(uuid_bytes(s), None, "{s}");
        }
    }
}
