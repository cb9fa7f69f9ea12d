//! Loading a config bundle: JSON -> validated, compiled [`Compiled`].
//!
//! Every problem is collected with its document and field path. Problems in
//! one document do not stop the others from loading: see [`compile`] for the
//! isolation rule.
//!
//! Loading is on the update path of every host, so it is built to be cheap
//! for large bundles (`load/10k_variables` in `benches/engine.rs`):
//!
//! - The bytes are parsed once into a flat [`Tape`] of tokens whose strings
//!   borrow from the input, instead of a `serde_json::Value` tree (which
//!   allocates every key, string, array and object). The tape is filled by
//!   the same `serde_json` parser calls that build a `Value` (every value
//!   through `deserialize_any`, with its depth limit), so exactly the same
//!   inputs are accepted, with exactly the same error messages.
//! - Documents are compiled straight from the tape. A value is turned into a
//!   `serde_json::Value` only where the compiled model keeps one ([`CValue`])
//!   or where an error message prints it.
//! - Field paths and document labels are only formatted when a problem is
//!   reported.
//! - Value texts, constraint texts and names are shared ([`Strings`]): a big
//!   bundle repeats the same few many times.
//! - A document's fingerprint is hashed from its tokens ([`fingerprint`]), not
//!   from a re-serialised `Value`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::decimal::DecBuf;
use crate::error::{ConfigError, Problem};
use crate::limits::{
    expanded_constraints_budget, Limit, LimitError, MAX_ARRAY_LEN, MAX_EXPERIMENTS_PER_DOMAIN, MAX_IN_LIST,
    MAX_JSON_DEPTH, MAX_REGEX_WEIGHT, MAX_STRING_BYTES, REGEX_SIZE_BACKSTOP,
};
use crate::model::*;
use crate::regex_weight::regex_weight;
use crate::value::{FacetValue, Num};

/// The only bundle / document schema version this engine understands.
pub const SCHEMA_VERSION: i64 = 1;

/// How a rejected document is handled when the rest of the bundle is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A broken document keeps its last good version (or, with none, its
    /// variable resolves to fallback with `PARSE_ERROR`); the others update.
    #[default]
    PerDocument,
    /// Any problem rejects the whole update.
    Strict,
}

/// A rejected document and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The problems found in it.
    pub problems: Vec<Problem>,
    /// `true` when its last good version stays in force.
    pub kept_last_good: bool,
    /// `true` when the document said `"enabled": false`: the kill switch took
    /// effect although the rest of the document was rejected.
    pub kill_switch: bool,
}

/// The result of compiling a bundle against the previous config.
pub(crate) struct Outcome {
    pub compiled: Compiled,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<Problem>,
}

// ---- the token tape ---------------------------------------------------------

/// One token of a [`Tape`].
#[derive(Debug)]
enum Tok<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    /// An array; its elements follow. `end` is the index just past its last
    /// token, `len` its number of elements.
    Arr {
        end: usize,
        len: usize,
    },
    /// An object; its entries follow as a key (`Str`) then the value's tokens,
    /// and the payload is the index just past its last token.
    Obj(usize),
}

/// A JSON text parsed into a flat sequence of tokens (one allocation for the
/// whole text; strings without escapes borrow from the input).
#[derive(Debug)]
pub(crate) struct Tape<'a> {
    toks: Vec<Tok<'a>>,
}

impl<'a> Tape<'a> {
    /// Parses a whole JSON text: the same parser calls, the same checks and
    /// the same errors as `serde_json::from_slice::<Value>` (the tape is filled
    /// through `deserialize_any` exactly like a `Value` is).
    fn parse(bytes: &'a [u8]) -> Result<Tape<'a>, FillError> {
        // Sized for a typical config (a token per 6 or 7 bytes), so that the
        // tape of a bundle of up to about 6 MB never grows; bigger inputs
        // grow it as they go rather than reserve memory before they are
        // known to be JSON at all.
        let mut toks = Vec::with_capacity((bytes.len() / 6).min(1 << 20) + 4);
        // Valid UTF-8 (the common case) is checked once here, so the parser
        // need not check every string again; anything else goes through the
        // byte parser, which reports the error exactly as before.
        match std::str::from_utf8(bytes) {
            Ok(s) => fill_str(s, &mut toks)?,
            Err(_) => fill(&mut serde_json::Deserializer::from_slice(bytes), &mut toks)?,
        }
        Ok(Tape { toks })
    }

    /// Parses JSON held in a string (e.g. a constraint value `"[302, 11]"`),
    /// accepting exactly what `serde_json::from_str::<Value>` accepts.
    fn parse_str(s: &'a str) -> Option<Tape<'a>> {
        let mut toks = Vec::with_capacity((s.len() / 2).min(64) + 2);
        fill_str(s, &mut toks).ok()?;
        Some(Tape { toks })
    }

    fn root(&self) -> J<'_, 'a> {
        J { toks: &self.toks, at: 0 }
    }
}

fn fill<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    toks: &mut Vec<Tok<'de>>,
) -> Result<(), FillError> {
    let mut hit = None;
    let r = Fill { toks, hit: &mut hit, depth: 0 }.deserialize(&mut *de).and_then(|()| de.end());
    match (hit, r) {
        (Some(l), _) => Err(FillError::Limit(l)),
        (None, Err(e)) => Err(FillError::Json(e)),
        (None, Ok(())) => Ok(()),
    }
}

/// Why a JSON text could not be put on a tape.
#[derive(Debug)]
pub(crate) enum FillError {
    /// Not JSON (the exact `serde_json` error).
    Json(serde_json::Error),
    /// Over a limit of [`crate::limits`].
    Limit(LimitError),
}

/// [`fill`] for text already known to be UTF-8. Natively this is serde_json's
/// `&str` reader, which skips re-checking every string. The WebAssembly build
/// uses the byte reader here too, so that it carries one instantiation of
/// serde_json's parser instead of two (about 17 KB of the `.wasm`): for valid
/// UTF-8 the two readers accept the same texts with the same results and
/// errors (serde_json's `StrRead` is its `SliceRead` minus that check).
#[cfg(not(target_arch = "wasm32"))]
fn fill_str<'a>(s: &'a str, toks: &mut Vec<Tok<'a>>) -> Result<(), FillError> {
    fill(&mut serde_json::Deserializer::from_str(s), toks)
}

#[cfg(target_arch = "wasm32")]
fn fill_str<'a>(s: &'a str, toks: &mut Vec<Tok<'a>>) -> Result<(), FillError> {
    fill(&mut serde_json::Deserializer::from_slice(s.as_bytes()), toks)
}

/// Appends one value to the tape. Mirrors `serde_json::Value`'s own visitor,
/// and enforces the limits on depth, string and array length while parsing
/// (so that nothing over them is ever held): the first limit hit is kept in
/// `hit` and parsing stops with a placeholder error.
struct Fill<'v, 'a> {
    toks: &'v mut Vec<Tok<'a>>,
    hit: &'v mut Option<LimitError>,
    depth: usize,
}

impl<'a> Fill<'_, 'a> {
    fn stop<E: serde::de::Error>(&mut self, limit: Limit, max: usize, found: usize) -> E {
        *self.hit = Some(LimitError::new(limit, max, found));
        E::custom("limit exceeded")
    }
    fn string<E: serde::de::Error>(mut self, v: Cow<'a, str>) -> Result<(), E> {
        if v.len() > MAX_STRING_BYTES {
            return Err(self.stop(Limit::StringBytes, MAX_STRING_BYTES, v.len()));
        }
        self.toks.push(Tok::Str(v));
        Ok(())
    }
    fn nested(&mut self) -> Fill<'_, 'a> {
        Fill { toks: self.toks, hit: self.hit, depth: self.depth + 1 }
    }
    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(self.stop(Limit::JsonDepth, MAX_JSON_DEPTH, self.depth + 1));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Fill<'_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.toks.push(Tok::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.toks.push(Tok::Num(v.into()));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.toks.push(Tok::Num(v.into()));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.toks.push(Number::from_f64(v).map_or(Tok::Null, Tok::Num));
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if v.len() > MAX_STRING_BYTES {
            let mut s = self;
            return Err(s.stop(Limit::StringBytes, MAX_STRING_BYTES, v.len()));
        }
        self.string(Cow::Owned(v.to_string()))
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<(), E> {
        self.string(Cow::Borrowed(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.string(Cow::Owned(v))
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.toks.push(Tok::Null);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.toks.push(Tok::Null);
        Ok(())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let at = self.toks.len();
        self.toks.push(Tok::Arr { end: 0, len: 0 });
        let mut len = 0;
        while seq.next_element_seed(self.nested())?.is_some() {
            len += 1;
            if len > MAX_ARRAY_LEN {
                return Err(self.stop(Limit::ArrayLen, MAX_ARRAY_LEN, len));
            }
        }
        let end = self.toks.len();
        self.toks[at] = Tok::Arr { end, len };
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let at = self.toks.len();
        self.toks.push(Tok::Obj(0));
        while map.next_key_seed(self.nested())?.is_some() {
            map.next_value_seed(self.nested())?;
        }
        let end = self.toks.len();
        self.toks[at] = Tok::Obj(end);
        Ok(())
    }
}

/// A value on a tape: the read-only view the compiler works with, shaped like
/// `serde_json::Value`'s accessors. Duplicate object keys resolve like a
/// `Value` built from the same text: the last one wins.
#[derive(Clone, Copy)]
struct J<'t, 'a> {
    toks: &'t [Tok<'a>],
    at: usize,
}

impl<'t, 'a> J<'t, 'a> {
    fn tok(self) -> &'t Tok<'a> {
        &self.toks[self.at]
    }
    /// The index just past this value.
    fn end(self) -> usize {
        match self.tok() {
            Tok::Arr { end, .. } | Tok::Obj(end) => *end,
            _ => self.at + 1,
        }
    }
    fn is_null(self) -> bool {
        matches!(self.tok(), Tok::Null)
    }
    fn is_object(self) -> bool {
        matches!(self.tok(), Tok::Obj(_))
    }
    fn as_str(self) -> Option<&'t str> {
        match self.tok() {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_bool(self) -> Option<bool> {
        match self.tok() {
            Tok::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn as_number(self) -> Option<&'t Number> {
        match self.tok() {
            Tok::Num(n) => Some(n),
            _ => None,
        }
    }
    fn as_f64(self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }
    fn as_u64(self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }
    /// The elements, if this is an array.
    fn elems(self) -> Option<Elems<'t, 'a>> {
        match self.tok() {
            Tok::Arr { end, len } => Some(Elems { toks: self.toks, at: self.at + 1, end: *end, len: *len }),
            _ => None,
        }
    }
    /// This value alone, as if it were the one element of an array.
    fn alone(self) -> Elems<'t, 'a> {
        Elems { toks: self.toks, at: self.at, end: self.end(), len: 1 }
    }
    /// The entries in text order (duplicates included); none if not an object.
    fn entries(self) -> Entries<'t, 'a> {
        match self.tok() {
            Tok::Obj(end) => Entries { toks: self.toks, at: self.at + 1, end: *end },
            _ => Entries { toks: self.toks, at: 0, end: 0 },
        }
    }
    /// `Value::get` for a string key: the last entry with that key.
    fn get(self, key: &str) -> Option<J<'t, 'a>> {
        let mut found = None;
        for (k, v) in self.entries() {
            if k == key {
                found = Some(v);
            }
        }
        found
    }
    /// `get` for several keys in one pass over the entries.
    fn fields<const N: usize>(self, keys: [&str; N]) -> [Option<J<'t, 'a>>; N] {
        let mut out = [None; N];
        for (k, v) in self.entries() {
            if let Some(i) = keys.iter().position(|key| *key == k) {
                out[i] = Some(v);
            }
        }
        out
    }
    fn contains_key(self, key: &str) -> bool {
        self.entries().any(|(k, _)| k == key)
    }
    /// The entries as a `Value::Object` iterates them: sorted by key, the
    /// last of duplicate keys.
    fn sorted_entries(self) -> Vec<(&'t str, J<'t, 'a>)> {
        let mut out: Vec<_> = self.entries().collect();
        // Stable: among equal keys the text order stays, and the last is kept.
        out.sort_by(|a, b| a.0.cmp(b.0));
        let mut dedup: Vec<(&'t str, J<'t, 'a>)> = Vec::with_capacity(out.len());
        for e in out {
            match dedup.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => dedup.push(e),
            }
        }
        dedup
    }
    /// The JSON type, for messages (as `facets::json_kind`).
    fn kind(self) -> &'static str {
        match self.tok() {
            Tok::Null => "null",
            Tok::Bool(_) => "boolean",
            Tok::Num(_) => "number",
            Tok::Str(_) => "string",
            Tok::Arr { .. } => "array",
            Tok::Obj(_) => "object",
        }
    }
    /// The `serde_json::Value` that parsing the same text gives.
    fn to_value(self) -> Value {
        match self.tok() {
            Tok::Null => Value::Null,
            Tok::Bool(b) => Value::Bool(*b),
            Tok::Num(n) => Value::Number(n.clone()),
            Tok::Str(s) => Value::String(s.to_string()),
            Tok::Arr { .. } => Value::Array(self.elems().into_iter().flatten().map(J::to_value).collect()),
            Tok::Obj(_) => {
                let mut m = serde_json::Map::new();
                for (k, v) in self.entries() {
                    m.insert(k.to_string(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }
    /// A scalar's `Value` without building containers (`None` for arrays and objects).
    fn scalar(self) -> Option<Value> {
        match self.tok() {
            Tok::Arr { .. } | Tok::Obj(_) => None,
            _ => Some(self.to_value()),
        }
    }
}

/// Prints the value as `serde_json::Value` prints (compact JSON, sorted keys).
impl fmt::Display for J<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

/// The elements of an array.
struct Elems<'t, 'a> {
    toks: &'t [Tok<'a>],
    at: usize,
    end: usize,
    /// Elements left.
    len: usize,
}

impl<'t, 'a> Iterator for Elems<'t, 'a> {
    type Item = J<'t, 'a>;
    fn next(&mut self) -> Option<J<'t, 'a>> {
        if self.at >= self.end {
            return None;
        }
        let j = J { toks: self.toks, at: self.at };
        self.at = j.end();
        self.len = self.len.saturating_sub(1);
        Some(j)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl ExactSizeIterator for Elems<'_, '_> {}

impl Elems<'_, '_> {
    fn none() -> Self {
        Elems { toks: &[], at: 0, end: 0, len: 0 }
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct Entries<'t, 'a> {
    toks: &'t [Tok<'a>],
    at: usize,
    end: usize,
}

impl<'t, 'a> Iterator for Entries<'t, 'a> {
    type Item = (&'t str, J<'t, 'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let key = match &self.toks[self.at] {
            Tok::Str(k) => &**k,
            _ => "",
        };
        let v = J { toks: self.toks, at: self.at + 1 };
        self.at = v.end();
        Some((key, v))
    }
}

/// A document's fingerprint, which decides whether its variables are
/// reported as changed by an update ([`Compiled::signature`]): a 64-bit hash
/// of the document's parsed content, computed from the tape (no text is
/// re-serialised).
///
/// Like the previous fingerprint (the `Value` re-serialised with sorted
/// keys), it ignores whitespace, the spelling of escapes and number
/// formatting that parses to the same number, and the order of object keys;
/// unknown fields count. One difference: an object with a duplicated key
/// hashes both entries (the previous one saw only the last), so adding or
/// removing a shadowed duplicate reports the document as changed. Only ever
/// compared with fingerprints computed by this same code.
fn fingerprint(v: J<'_, '_>) -> u64 {
    content_hash(v.toks, v.at).0
}

/// The hash of the value at `at`, and the index just past it.
fn content_hash(toks: &[Tok<'_>], at: usize) -> (u64, usize) {
    // Distinct seeds per kind, so that e.g. `1`, `"1"` and `[1]` differ.
    const NULL: u64 = 0x6a09_e667_f3bc_c908;
    const BOOL: u64 = 0xbb67_ae85_84ca_a73b;
    const UINT: u64 = 0x3c6e_f372_fe94_f82b;
    const INT: u64 = 0xa54f_f53a_5f1d_36f1;
    const FLOAT: u64 = 0x510e_527f_ade6_82d1;
    const STR: u64 = 0x9b05_688c_2b3e_6c1f;
    const ARR: u64 = 0x1f83_d9ab_fb41_bd6b;
    const OBJ: u64 = 0x5be0_cd19_137e_2179;
    let h = match &toks[at] {
        Tok::Null => mix(NULL, 0),
        Tok::Bool(b) => mix(BOOL, u64::from(*b)),
        Tok::Num(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => mix(UINT, u),
            (None, Some(i)) => mix(INT, i as u64),
            _ => mix(FLOAT, n.as_f64().unwrap_or(f64::NAN).to_bits()),
        },
        Tok::Str(s) => xxh3_64_with_seed(s.as_bytes(), STR),
        Tok::Arr { end, len } => {
            // In order.
            let mut h = mix(ARR, *len as u64);
            let mut i = at + 1;
            while i < *end {
                let (e, next) = content_hash(toks, i);
                h = mix(h, e);
                i = next;
            }
            return (h, *end);
        }
        Tok::Obj(end) => {
            // In any order: the entries' hashes are added up.
            let mut sum = 0u64;
            let mut i = at + 1;
            while i < *end {
                let key = match &toks[i] {
                    Tok::Str(k) => xxh3_64_with_seed(k.as_bytes(), STR),
                    _ => 0,
                };
                let (value, next) = content_hash(toks, i + 1);
                sum = sum.wrapping_add(mix(key, value));
                i = next;
            }
            return (mix(OBJ, sum), *end);
        }
    };
    (h, at + 1)
}

/// Mixes two 64-bit values into one (a folded 128-bit multiply, then the
/// MurmurHash3 finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let m = u128::from(a ^ 0x2d35_8dcc_aa6c_78a5) * u128::from(b ^ 0x8bb8_4b93_962e_acc9);
    let mut z = (m as u64) ^ ((m >> 64) as u64);
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// The strings of one load that the compiled config keeps and that
/// evaluation does not read on its hot path (value texts and strings,
/// constraint texts), each distinct one stored once.
struct Strings {
    set: FxHashSet<Arc<str>>,
    /// Where texts are put together before they are looked up.
    scratch: String,
    /// Constraints compiled or expanded from segments so far, and the budget
    /// ([`expanded_constraints_budget`]); once over it, compiling stops adding any.
    expanded: usize,
    budget: usize,
}

impl Strings {
    fn new(budget: usize) -> Strings {
        Strings { set: FxHashSet::default(), scratch: String::new(), expanded: 0, budget }
    }
    /// Counts `n` more constraints; false once the budget is exceeded.
    fn expand(&mut self, n: usize) -> bool {
        self.expanded = self.expanded.saturating_add(n);
        self.expanded <= self.budget
    }
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&a));
        a
    }
    fn value(&mut self, json: Value) -> CValue {
        CValue::new(json, |s| self.get(s))
    }
}

// ---- problems ---------------------------------------------------------------

/// A field path inside a document, formatted only when a problem is reported
/// (`rollouts[0].constraints[1].value`).
#[derive(Clone, Copy)]
enum Path<'p> {
    Root,
    /// `parent.key` (just `key` at the root).
    Key(&'p Path<'p>, &'p str),
    /// `parent[i]`.
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    fn key(&'p self, key: &'p str) -> Path<'p> {
        Path::Key(self, key)
    }
    fn index(&'p self, i: usize) -> Path<'p> {
        Path::Index(self, i)
    }
    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

/// Something that names a field in a [`Problem`].
trait Field {
    fn render(self) -> String;
}

impl Field for &Path<'_> {
    fn render(self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

impl Field for Path<'_> {
    fn render(self) -> String {
        (&self).render()
    }
}

impl Field for &str {
    fn render(self) -> String {
        self.to_string()
    }
}

/// A document's name in problems, formatted only when one is reported.
#[derive(Clone, Copy)]
enum Label<'a> {
    /// `bundle`.
    Bundle,
    /// `rollout "name"`, `experiment "name"`, `segment "name"`.
    Named(&'static str, &'a str),
    /// `rollouts[3]`, `experiments[0]`.
    Indexed(&'static str, usize),
}

impl Label<'_> {
    fn render(self) -> String {
        match self {
            Label::Bundle => "bundle".to_string(),
            Label::Named(kind, name) => format!("{kind} \"{name}\""),
            Label::Indexed(list, i) => format!("{list}[{i}]"),
        }
    }
}

struct Sink<'a> {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    label: Label<'a>,
    /// The summed [`regex_weight`] of the document's regex constraints, each
    /// segment reference counted (limit `regex_weight`).
    regex_weight: u64,
}

impl<'a> Sink<'a> {
    fn new(label: Label<'a>) -> Sink<'a> {
        Sink { problems: Vec::new(), warnings: Vec::new(), label, regex_weight: 0 }
    }
    /// A problem when the document's regexes weigh more than [`MAX_REGEX_WEIGHT`] in all.
    fn check_regex_weight(&mut self) {
        if self.regex_weight > MAX_REGEX_WEIGHT {
            let e = LimitError { limit: Limit::RegexWeight, max: MAX_REGEX_WEIGHT, found: self.regex_weight };
            self.err(
                Path::Root,
                format!("{e} (the regex constraints of this document, each segment reference counted)"),
            );
        }
    }
    /// Something that loads but is almost certainly a mistake.
    fn warn(&mut self, field: impl Field, message: impl Into<String>) {
        self.warnings.push(Problem { document: self.label.render(), field: field.render(), message: message.into() });
    }
    fn err(&mut self, field: impl Field, message: impl Into<String>) {
        self.problems.push(Problem { document: self.label.render(), field: field.render(), message: message.into() });
    }
}

fn bundle_problem(message: impl Into<String>) -> Problem {
    Problem { document: "bundle".into(), field: String::new(), message: message.into() }
}

/// `model::json_int` of the value (integers, and integral floats with |x| < 2^63).
fn get_int(v: J<'_, '_>) -> Option<i64> {
    v.as_number().and_then(|n| json_int(&Value::Number(n.clone())))
}

fn check_schema(field: Option<J<'_, '_>>, key: &str, sink: &mut Sink<'_>) {
    if let Some(s) = field {
        match get_int(s) {
            Some(SCHEMA_VERSION) => {}
            _ => sink.err(key, format!("unsupported schema {s}; this engine reads schema {SCHEMA_VERSION}")),
        }
    }
}

// ---- the bundle -------------------------------------------------------------

/// The raw documents of a bundle, before compilation.
struct RawBundle<'t, 'a> {
    version: Option<i64>,
    segments: Option<J<'t, 'a>>,
    /// Iterated in place (not collected): documents sit far apart on the tape.
    rollouts: Elems<'t, 'a>,
    experiments: Elems<'t, 'a>,
}

fn split_bundle<'t, 'a>(root: J<'t, 'a>) -> Result<RawBundle<'t, 'a>, Vec<Problem>> {
    if !root.is_object() {
        return Err(vec![bundle_problem(format!(
            "expected a JSON object (a bundle, a rollout document or an experiment document), found {}",
            root.kind()
        ))]);
    }
    // A single seed document loads as a bundle of one.
    if root.contains_key("variable") {
        return Ok(RawBundle { version: None, segments: None, rollouts: root.alone(), experiments: Elems::none() });
    }
    if root.contains_key("variables") && root.contains_key("name") {
        return Ok(RawBundle { version: None, segments: None, rollouts: Elems::none(), experiments: root.alone() });
    }
    let mut sink = Sink::new(Label::Bundle);
    check_schema(root.get("schema"), "schema", &mut sink);
    let version = match root.get("version") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => match get_int(v) {
            Some(i) => Some(i),
            None => {
                sink.err("version", "must be an integer");
                None
            }
        },
    };
    let mut list = |key: &str| -> Elems<'t, 'a> {
        match root.get(key) {
            None => Elems::none(),
            Some(v) if v.is_null() => Elems::none(),
            Some(v) => match v.elems() {
                Some(elems) => elems,
                None => {
                    sink.err(key, format!("must be an array of documents, found {}", v.kind()));
                    Elems::none()
                }
            },
        }
    };
    let rollouts = list("rollouts");
    let experiments = list("experiments");
    let segments = match root.get("segments") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) if v.is_object() => Some(v),
        Some(other) => {
            sink.err("segments", format!("must be an object of name -> segment, found {}", other.kind()));
            None
        }
    };
    if !root.contains_key("rollouts") && !root.contains_key("experiments") {
        sink.err("", "no `rollouts` or `experiments`: this is not a turnout bundle or document");
    }
    if sink.problems.is_empty() {
        Ok(RawBundle { version, segments, rollouts, experiments })
    } else {
        Err(sink.problems)
    }
}

/// A constraint operand: strings, numbers and booleans (as `FacetValue::from_json`).
///
/// What evaluation reads (operands, targets, salts) gets its own allocation,
/// as before, rather than a shared string: measured, sharing them saves no
/// load time and made rollout decisions slower.
fn operand(v: J<'_, '_>) -> Option<Operand> {
    match v.tok() {
        // A string is its own canonical form.
        Tok::Str(s) => Some(Operand { canon: Box::from(&**s), num: Num::parse(s) }),
        Tok::Num(n) => match n.as_i64() {
            // An integer is `FacetValue::Int`: its decimal text, exactly.
            Some(i) => Some(Operand { canon: Box::from(DecBuf::new(i).as_str()), num: Some(Num::Int(i)) }),
            None => {
                let fv = FacetValue::from_json(&v.scalar()?)?;
                Some(Operand { canon: fv.canonical().into_boxed_str(), num: fv.num() })
            }
        },
        Tok::Bool(_) => {
            let fv = FacetValue::from_json(&v.scalar()?)?;
            Some(Operand { canon: fv.canonical().into_boxed_str(), num: fv.num() })
        }
        _ => None,
    }
}

fn num_value(v: J<'_, '_>) -> Option<Num> {
    match v.tok() {
        Tok::Num(n) => n.as_i64().map(Num::Int).or_else(|| n.as_f64().and_then(Num::from_f64)),
        Tok::Str(s) => Num::parse(s),
        _ => None,
    }
}

/// The text of a constraint for `--explain`: `target op value`, a string
/// value as is, any other value as compact JSON (as `Value` prints it).
/// Shared, like the other strings: most texts repeat across a big bundle.
fn constraint_text(target: &str, op_name: &str, value: J<'_, '_>, strings: &mut Strings) -> Arc<str> {
    let mut text = std::mem::take(&mut strings.scratch);
    text.clear();
    text.push_str(target);
    text.push(' ');
    text.push_str(op_name);
    text.push(' ');
    match value.tok() {
        Tok::Str(s) => text.push_str(s),
        _ => write_json(value, &mut text),
    }
    let shared = strings.get(&text);
    strings.scratch = text;
    shared
}

/// Writes a value exactly as `Value`'s `Display` does (compact JSON, object
/// keys sorted); scalars and arrays without building a `Value`.
fn write_json(v: J<'_, '_>, out: &mut String) {
    match v.tok() {
        Tok::Null => out.push_str("null"),
        Tok::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // `Number`'s `Display` writes what the serialiser writes (itoa / zmij).
        Tok::Num(n) => match n.as_i64() {
            Some(i) => out.push_str(DecBuf::new(i).as_str()),
            None => {
                let _ = write!(out, "{n}");
            }
        },
        Tok::Arr { .. } => {
            out.push('[');
            for (i, e) in v.elems().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(e, out);
            }
            out.push(']');
        }
        Tok::Str(_) | Tok::Obj(_) => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Compiles one constraint. `default_salt` is the variable's name (rollout)
/// or the experiment's name (experiment).
fn constraint(
    v: J<'_, '_>,
    path: &Path<'_>,
    default_salt: &str,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Constraint> {
    if !v.is_object() {
        sink.err(path, format!("a constraint must be an object {{target, op, value}}, found {}", v.kind()));
        return None;
    }
    let [target, op, value, salt] = v.fields(["target", "op", "value", "salt"]);
    let target = match target.and_then(J::as_str) {
        Some(s) if !s.is_empty() => s,
        _ => {
            sink.err(path.key("target"), "must be a non-empty string naming a facet");
            return None;
        }
    };
    let Some(op_name) = op.and_then(J::as_str) else {
        sink.err(path.key("op"), "must be a string");
        return None;
    };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        sink.err(path.key("value"), "is required");
        return None;
    };
    let vpath = path.key("value");
    // `None`: the default salt.
    let salt = match salt {
        None => None,
        Some(s) if s.is_null() => None,
        Some(s) => match s.as_str() {
            Some(s) => Some(s),
            None => {
                sink.err(path.key("salt"), format!("must be a string, found {}", s.kind()));
                return None;
            }
        },
    };
    let scalar = |sink: &mut Sink<'_>| -> Option<Operand> {
        let o = operand(value);
        if o.is_none() {
            sink.err(vpath, format!("must be a string, number or boolean for `{op_name}`, found {}", value.kind()));
        }
        o
    };
    let text_of = |sink: &mut Sink<'_>| -> Option<Box<str>> { scalar(sink).map(|o| o.canon) };
    let semver_of = |sink: &mut Sink<'_>| -> Option<semver::Version> {
        let v = value.as_str().and_then(parse_semver);
        if v.is_none() {
            sink.err(vpath, format!("`{op_name}` needs a semantic version string like \"1.2.3\", found {value}"));
        }
        v
    };
    let op = match op_name {
        "=" | "==" => Op::Eq(scalar(sink)?),
        "!=" => Op::Ne(scalar(sink)?),
        "in" => Op::In(Arc::new(InList::new(operand_list(value, &vpath, op_name, sink)?))),
        "nin" | "!in" => Op::Nin(Arc::new(InList::new(operand_list(value, &vpath, op_name, sink)?))),
        // Spec rule 3: false when either side is not numeric (a non-numeric
        // value makes the constraint always false; it is not a load error).
        ">" | ">=" | "<" | "<=" => {
            let n = num_value(value);
            if n.is_none() {
                sink.warn(vpath, format!("`{op_name}` with the non-numeric value {value} is always false"));
            }
            match op_name {
                ">" => Op::Gt(n),
                ">=" => Op::Ge(n),
                "<" => Op::Lt(n),
                _ => Op::Le(n),
            }
        }
        "/" => {
            let Some(n) = num_value(value) else {
                sink.err(vpath, format!("`{op_name}` needs a number (or a string holding one), found {value}"));
                return None;
            };
            let p = n.as_f64();
            if !(0.0..=1.0).contains(&p) {
                sink.err(vpath, format!("`/` takes a fraction between 0 and 1, found {p}"));
                return None;
            }
            Op::Fraction {
                p,
                prefix: crate::hash::salt_prefix(salt.unwrap_or(default_salt)),
                explicit_salt: salt.is_some(),
            }
        }
        "semver=" | "semver==" => Op::Semver(SemverOp::Eq, semver_of(sink)?),
        "semver!=" => Op::Semver(SemverOp::Ne, semver_of(sink)?),
        "semver>" => Op::Semver(SemverOp::Gt, semver_of(sink)?),
        "semver>=" => Op::Semver(SemverOp::Ge, semver_of(sink)?),
        "semver<" => Op::Semver(SemverOp::Lt, semver_of(sink)?),
        "semver<=" => Op::Semver(SemverOp::Le, semver_of(sink)?),
        "prefix" => Op::Prefix(text_of(sink)?),
        "suffix" => Op::Suffix(text_of(sink)?),
        "contains" => Op::Contains(text_of(sink)?),
        "regex" => {
            let Some(pat) = value.as_str() else {
                sink.err(vpath, "`regex` needs a string pattern");
                return None;
            };
            // The weight is read from the pattern's text, so the limit is the
            // same on every platform; regex-lite's own (pointer-width
            // dependent) size limit is only a backstop far above it.
            let weight = regex_weight(pat);
            let over = |found| LimitError { limit: Limit::RegexWeight, max: MAX_REGEX_WEIGHT, found };
            if weight > MAX_REGEX_WEIGHT {
                sink.err(vpath, format!("{} (the pattern alone)", over(weight)));
                return None;
            }
            sink.regex_weight = sink.regex_weight.saturating_add(weight);
            match regex_lite::RegexBuilder::new(pat).size_limit(REGEX_SIZE_BACKSTOP).build() {
                Ok(r) => Op::Regex(Arc::new(r)),
                Err(e) if e.to_string().contains("size limit") => {
                    sink.err(vpath, format!("{} (the compiled pattern)", over(weight)));
                    return None;
                }
                Err(e) => {
                    sink.err(vpath, format!("invalid regex: {e}"));
                    return None;
                }
            }
        }
        other => {
            sink.err(
                path.key("op"),
                format!(
                    "unknown op `{other}` (known: = != in nin > >= < <= / semver= semver!= semver> semver>= semver< semver<= prefix suffix contains regex)"
                ),
            );
            return None;
        }
    };
    Some(Constraint { target: FacetKey::new(target), op, text: constraint_text(target, op_name, value, strings) })
}

/// The operands of `in` / `nin`: a JSON array, or a string holding one.
fn operand_list(value: J<'_, '_>, vpath: &Path<'_>, op_name: &str, sink: &mut Sink<'_>) -> Option<Vec<Operand>> {
    let parsed;
    let arr = match value.tok() {
        Tok::Arr { .. } => value,
        Tok::Str(s) => match Tape::parse_str(s) {
            Some(t) if matches!(t.toks.first(), Some(Tok::Arr { .. })) => {
                parsed = t;
                parsed.root()
            }
            _ => {
                sink.err(vpath, format!("`{op_name}` needs an array (or a string holding one), found {value}"));
                return None;
            }
        },
        _ => {
            sink.err(vpath, format!("`{op_name}` needs an array (or a string holding one), found {}", value.kind()));
            return None;
        }
    };
    let elems = arr.elems()?;
    if elems.len() > MAX_IN_LIST {
        sink.err(vpath, LimitError::new(Limit::InList, MAX_IN_LIST, elems.len()).to_string());
        return None;
    }
    let mut out = Vec::with_capacity(elems.len());
    for (i, e) in elems.enumerate() {
        match operand(e) {
            Some(o) => out.push(o),
            None => {
                sink.err(
                    vpath.index(i),
                    format!("list elements must be strings, numbers or booleans, found {}", e.kind()),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// Compiles a constraint list plus its segment references.
fn constraints(
    refs: Option<J<'_, '_>>,
    list: Option<J<'_, '_>>,
    path: &Path<'_>,
    default_salt: &str,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Constraints {
    let mut out = Constraints::default();
    match refs {
        None => {}
        Some(names) if names.is_null() => {}
        Some(names) => match names.elems() {
            Some(names) => {
                let spath = path.key("segments");
                for (i, n) in names.enumerate() {
                    let field = spath.index(i);
                    let Some(name) = n.as_str() else {
                        sink.err(field, "segment references must be strings");
                        continue;
                    };
                    match segments.get(name) {
                        Some(Ok(seg)) => {
                            // Compiled once and shared; every reference still
                            // counts its constraints against the budget (they
                            // are evaluated at each reference).
                            if !strings.expand(seg.constraints.len()) {
                                return out;
                            }
                            out.shared.push(Arc::clone(&seg.constraints));
                            sink.regex_weight = sink.regex_weight.saturating_add(seg.regex_weight);
                            for (f, m) in &seg.warnings {
                                sink.warn(f.as_str(), m.clone());
                            }
                        }
                        Some(Err(())) => sink.err(field, format!("segment `{name}` is invalid (see its own problems)")),
                        None => sink.err(field, format!("unknown segment `{name}`")),
                    }
                }
            }
            None => {
                sink.err(path.key("segments"), format!("must be an array of segment names, found {}", names.kind()))
            }
        },
    }
    match list {
        None => {}
        Some(list) if list.is_null() => {}
        Some(list) => match list.elems() {
            Some(elems) => {
                let cpath = path.key("constraints");
                if !strings.expand(elems.len()) {
                    return out;
                }
                out.own.reserve_exact(elems.len());
                for (i, c) in elems.enumerate() {
                    if let Some(c) = constraint(c, &cpath.index(i), default_salt, strings, sink) {
                        out.own.push(c);
                    }
                }
            }
            None => sink.err(path.key("constraints"), format!("must be an array, found {}", list.kind())),
        },
    }
    out
}

/// A valid segment, compiled once (with the placeholder salt `""`).
struct Segment {
    constraints: Arc<[Constraint]>,
    /// (field, message) of the warnings its constraints give, repeated in
    /// every document that references it.
    warnings: Vec<(String, String)>,
    /// The summed weight of its regexes, added to each referencing document's.
    regex_weight: u64,
}

/// Segment name -> the segment, or `Err` when it is invalid.
type Segments<'t> = HashMap<&'t str, Result<Segment, ()>>;

fn compile_segments<'t>(raw: Option<J<'t, '_>>, strings: &mut Strings, problems: &mut Vec<Problem>) -> Segments<'t> {
    let mut out = HashMap::new();
    let Some(raw) = raw else { return out };
    let root = Path::Root;
    let segs = root.key("segments");
    for (name, seg) in raw.sorted_entries() {
        let mut sink = Sink::new(Label::Named("segment", name));
        let spath = segs.key(name);
        let cpath = spath.key("constraints");
        let list = match seg.tok() {
            Tok::Obj(_) => match seg.get("constraints") {
                Some(a) if a.elems().is_some() => Some(a),
                _ => {
                    sink.err(cpath, "must be an array of constraints");
                    None
                }
            },
            Tok::Arr { .. } => Some(seg),
            _ => {
                sink.err(spath, format!("must be an object {{constraints: [...]}}, found {}", seg.kind()));
                None
            }
        };
        let mut constraints = Vec::new();
        if let Some(list) = list {
            // Compiled once with a placeholder salt: a reference sets its document's default salt.
            for (i, c) in list.elems().into_iter().flatten().enumerate() {
                if let Some(c) = constraint(c, &cpath.index(i), "", strings, &mut sink) {
                    constraints.push(c);
                }
            }
        }
        let ok = sink.problems.is_empty() && list.is_some();
        problems.append(&mut sink.problems);
        let warnings = sink.warnings.into_iter().map(|w| (w.field, w.message)).collect();
        let regex_weight = sink.regex_weight;
        out.insert(
            name,
            if ok { Ok(Segment { constraints: constraints.into(), warnings, regex_weight }) } else { Err(()) },
        );
    }
    out
}

// ---- documents --------------------------------------------------------------

fn rule_value(v: Option<J<'_, '_>>, path: &Path<'_>, strings: &mut Strings, sink: &mut Sink<'_>) -> Option<CValue> {
    match v {
        None => {
            sink.err(path, "is required");
            None
        }
        Some(v) if v.is_null() => {
            sink.err(path, "must not be null (omit the rule, or leave the variable without a value)");
            None
        }
        Some(v) => Some(strings.value(v.to_value())),
    }
}

fn str_field<'t>(field: Option<J<'t, '_>>, key: &str, sink: &mut Sink<'_>) -> Option<&'t str> {
    match field {
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                sink.err(key, format!("must be a non-empty string, found {}", v.kind()));
                None
            }
        },
        None => {
            sink.err(key, "is required");
            None
        }
    }
}

/// Document name for messages and the key used to keep its last good version.
fn rollout_key<'t>(v: J<'t, '_>) -> Option<&'t str> {
    v.get("variable").and_then(J::as_str).filter(|s| !s.is_empty())
}
fn experiment_key<'t>(v: J<'t, '_>) -> Option<&'t str> {
    v.get("name").and_then(J::as_str).filter(|s| !s.is_empty())
}

fn compile_rollout(
    v: J<'_, '_>,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Rollout> {
    if !v.is_object() {
        sink.err("", format!("a rollout document must be an object, found {}", v.kind()));
        return None;
    }
    let [variable, schema, version, enabled, rollouts, default] =
        v.fields(["variable", "schema", "version", "enabled", "rollouts", "default"]);
    let variable: Arc<str> = Arc::from(str_field(variable, "variable", sink)?);
    check_schema(schema, "schema", sink);
    if let Some(ver) = version {
        if !ver.is_null() && get_int(ver).is_none() {
            sink.err("version", "must be an integer");
        }
    }
    let enabled = match enabled {
        None => true,
        Some(e) if e.is_null() => true,
        Some(e) => match e.as_bool() {
            Some(b) => b,
            None => {
                sink.err("enabled", format!("must be a boolean, found {}", e.kind()));
                true
            }
        },
    };
    let mut rules = Vec::new();
    match rollouts {
        None => {}
        Some(list) if list.is_null() => {}
        Some(list) => match list.elems() {
            Some(elems) => {
                let root = Path::Root;
                let rpath = root.key("rollouts");
                rules.reserve_exact(elems.len());
                for (i, r) in elems.enumerate() {
                    let path = rpath.index(i);
                    if !r.is_object() {
                        sink.err(path, format!("a rule must be an object {{value, constraints}}, found {}", r.kind()));
                        continue;
                    }
                    let [value, label, refs, list] = r.fields(["value", "string", "segments", "constraints"]);
                    let value = rule_value(value, &path.key("value"), strings, sink);
                    let label = match label {
                        None => None,
                        Some(l) if l.is_null() => None,
                        Some(l) => match l.as_str() {
                            Some(s) => Some(Box::from(s)),
                            None => {
                                sink.err(path.key("string"), format!("must be a string label, found {}", l.kind()));
                                None
                            }
                        },
                    };
                    let cs = constraints(refs, list, &path, &variable, segments, strings, sink);
                    if let Some(value) = value {
                        rules.push(Rule { value, label, constraints: cs });
                    }
                }
            }
            None => sink.err("rollouts", format!("must be an array of rules, found {}", list.kind())),
        },
    }
    let default = match default {
        None => None,
        Some(d) if d.is_null() => None,
        Some(d) => Some(strings.value(d.to_value())),
    };
    sink.check_regex_weight();
    if !sink.problems.is_empty() {
        return None;
    }
    let salt = crate::hash::salt_prefix(&variable);
    Some(Rollout { variable, rules, default, enabled, fingerprint: fingerprint(v), salt })
}

fn compile_variable(
    v: J<'_, '_>,
    path: &Path<'_>,
    exp_name: &str,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<ExpVariable> {
    if !v.is_object() {
        sink.err(path, format!("an experiment variable must be an object, found {}", v.kind()));
        return None;
    }
    let before = sink.problems.len();
    let name = match v.get("name").and_then(J::as_str) {
        Some(s) if !s.is_empty() => s,
        _ => {
            sink.err(path.key("name"), "must be a non-empty string");
            ""
        }
    };
    let salt = match v.get("salt") {
        None => exp_name,
        Some(s) if s.is_null() => exp_name,
        Some(s) => match s.as_str() {
            Some(s) => s,
            None => {
                sink.err(path.key("salt"), format!("must be a string, found {}", s.kind()));
                ""
            }
        },
    };
    let mut facets: Vec<FacetKey> = Vec::new();
    let fpath = path.key("facets");
    match v.get("facets").and_then(J::elems) {
        Some(list) if !list.is_empty() => {
            for (i, f) in list.enumerate() {
                match f.as_str() {
                    Some(s) if !s.is_empty() => {
                        if facets.iter().any(|x| &**x == s) {
                            sink.err(fpath.index(i), format!("facet `{s}` is listed twice"));
                        }
                        facets.push(FacetKey::new(s));
                    }
                    _ => sink.err(fpath.index(i), "must be a non-empty facet name"),
                }
            }
        }
        _ => sink.err(fpath, "must be a non-empty array of facet names (the unit of assignment)"),
    }
    let strategy_name = match v.get("strategy") {
        None => "weighted",
        Some(s) if s.is_null() => "weighted",
        Some(s) => match s.as_str() {
            Some(s) => s,
            None => {
                sink.err(path.key("strategy"), format!("must be a string, found {}", s.kind()));
                "weighted"
            }
        },
    };
    let cspath = path.key("choices");
    let choices_raw: Vec<J<'_, '_>> = match v.get("choices").and_then(J::elems) {
        Some(list) if !list.is_empty() => list.collect(),
        _ => {
            sink.err(cspath, "must be a non-empty array of choices");
            Vec::new()
        }
    };
    let mut choices = Vec::with_capacity(choices_raw.len());
    let mut weights = Vec::with_capacity(choices_raw.len());
    let mut spans = Vec::with_capacity(choices_raw.len());
    for (i, c) in choices_raw.iter().enumerate() {
        let cpath = cspath.index(i);
        if !c.is_object() {
            sink.err(cpath, "a choice must be an object {value, weight?, span?}");
            continue;
        }
        if let Some(val) = rule_value(c.get("value"), &cpath.key("value"), strings, sink) {
            choices.push(val);
        }
        match c.get("weight") {
            None => weights.push(1.0),
            Some(w) if w.is_null() => weights.push(1.0),
            Some(w) => match w.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => weights.push(x),
                _ => sink.err(cpath.key("weight"), format!("must be a finite number >= 0, found {w}")),
            },
        }
        match c.get("span") {
            None => spans.push(None),
            Some(s) if s.is_null() => spans.push(None),
            Some(s) => match s.as_u64() {
                Some(x) if x >= 1 => spans.push(Some(x)),
                _ => sink.err(cpath.key("span"), format!("must be a whole number of seconds >= 1, found {s}")),
            },
        }
    }
    let strategy = match strategy_name {
        "weighted" => {
            let total: f64 = weights.iter().sum();
            if !choices_raw.is_empty() && total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                sink.err(cspath, "the weights must add up to more than 0");
            } else if !total.is_finite() {
                sink.err(cspath, format!("the weights add up to {total}: their sum must be a finite number"));
            }
            let mut acc = 0.0;
            let thresholds = weights
                .iter()
                .map(|w| {
                    acc += w;
                    acc / total
                })
                .collect();
            Strategy::Weighted { thresholds }
        }
        "timeSliceShuffle" => {
            if !facets.iter().any(|f| &**f == "ts") {
                sink.err(fpath, "a timeSliceShuffle variable must list the `ts` facet");
            }
            if choices_raw.len() > MAX_TIMESLICE_CHOICES {
                sink.err(cspath, format!("a timeSliceShuffle variable takes at most {MAX_TIMESLICE_CHOICES} choices"));
            }
            let mut period: u64 = 0;
            let mut out = Vec::with_capacity(spans.len());
            for (i, s) in spans.iter().enumerate() {
                match s {
                    Some(s) => {
                        period = period.saturating_add(*s);
                        out.push(*s);
                    }
                    None => sink.err(cspath.index(i).key("span"), "is required for timeSliceShuffle"),
                }
            }
            if period > MAX_TIMESLICE_PERIOD {
                sink.err(cspath, format!("the spans add up to {period} s, over the limit of {MAX_TIMESLICE_PERIOD}"));
            }
            Strategy::TimeSlice { spans: out, period }
        }
        other => {
            sink.err(path.key("strategy"), format!("unknown strategy `{other}` (known: weighted, timeSliceShuffle)"));
            return None;
        }
    };
    if sink.problems.len() != before {
        return None;
    }
    Some(ExpVariable { name: name.into(), prefix: crate::hash::salt_prefix(salt), facets, strategy, choices })
}

fn compile_experiment(
    v: J<'_, '_>,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Experiment> {
    if !v.is_object() {
        sink.err("", format!("an experiment document must be an object, found {}", v.kind()));
        return None;
    }
    let name: Arc<str> = Arc::from(str_field(v.get("name"), "name", sink)?);
    check_schema(v.get("schemaVersion"), "schemaVersion", sink);
    let domain = match v.get("domain") {
        None => None,
        Some(d) if d.is_null() => None,
        Some(d) => match d.as_str() {
            Some(s) if !s.is_empty() => Some(Box::<str>::from(s)),
            _ => {
                sink.err("domain", format!("must be a non-empty string, found {}", d.kind()));
                None
            }
        },
    };
    let state = str_field(v.get("state"), "state", sink).unwrap_or_default();
    let mut variables = Vec::new();
    match v.get("variables").and_then(J::elems) {
        Some(list) if !list.is_empty() => {
            let root = Path::Root;
            let vpath = root.key("variables");
            for (i, var) in list.enumerate() {
                if let Some(cv) = compile_variable(var, &vpath.index(i), &name, strings, sink) {
                    if variables.iter().any(|x: &ExpVariable| x.name == cv.name) {
                        sink.err(
                            vpath.index(i).key("name"),
                            format!("variable `{}` is defined twice in this experiment", cv.name),
                        );
                    }
                    variables.push(cv);
                }
            }
        }
        _ => sink.err("variables", "must be a non-empty array of variables"),
    }
    let cs = constraints(v.get("segments"), v.get("constraints"), &Path::Root, &name, segments, strings, sink);
    let slotting = match v.get("slotting") {
        None => None,
        Some(s) if s.is_null() => None,
        Some(s) if s.is_object() => {
            let w = s.get("byPercentage").and_then(J::as_f64);
            let o = match s.get("offset") {
                None => Some(0.0),
                Some(x) if x.is_null() => Some(0.0),
                Some(x) => x.as_f64(),
            };
            match (w, o) {
                (Some(w), Some(o)) if (0.0..=1.0).contains(&w) && o >= 0.0 && o + w <= 1.0 + 1e-9 => {
                    let unit = match s.get("facet") {
                        Some(f) if f.as_str().is_some_and(|f| !f.is_empty()) => {
                            Some(SlotUnit::Facet(FacetKey::new(f.as_str().unwrap_or_default())))
                        }
                        Some(f) if !f.is_null() => {
                            sink.err("slotting.facet", format!("must be a facet name, found {}", f.kind()));
                            None
                        }
                        _ => {
                            let first = variables.first();
                            match first.and_then(|v| v.facets.iter().find(|f| &***f != "ts")) {
                                Some(f) => Some(SlotUnit::Facet(f.clone())),
                                None => match first.map(|v| &v.strategy) {
                                    Some(Strategy::TimeSlice { .. }) => Some(SlotUnit::Window),
                                    Some(_) => {
                                        sink.err("slotting", "a time-only experiment's slot unit is the time window of its first variable, which must use timeSliceShuffle; set slotting.facet");
                                        None
                                    }
                                    None => None,
                                },
                            }
                        }
                    };
                    let salt = domain.clone().unwrap_or_else(|| Box::from(&*name));
                    // Boundaries are rounded to 12 decimals so that adjacent
                    // slots written as offset/byPercentage pairs (0.2 + 0.1)
                    // meet exactly (0.3) instead of overlapping by an ulp.
                    unit.map(|unit| Slotting {
                        lo: round12(o),
                        hi: round12(o + w).min(1.0),
                        unit,
                        prefix: crate::hash::salt_prefix(&salt),
                        salt,
                    })
                }
                _ => {
                    sink.err(
                        "slotting",
                        "byPercentage must be a number in [0, 1], offset a number >= 0, and offset + byPercentage <= 1",
                    );
                    None
                }
            }
        }
        Some(other) => {
            sink.err(
                "slotting",
                format!("must be an object {{byPercentage, offset?, facet?}}, found {}", other.kind()),
            );
            None
        }
    };
    sink.check_regex_weight();
    if !sink.problems.is_empty() {
        return None;
    }
    Some(Experiment {
        salt: crate::hash::salt_prefix(&name),
        name,
        domain,
        state: state.into(),
        variables,
        constraints: cs,
        slotting,
        fingerprint: fingerprint(v),
    })
}

/// Rounds a slot boundary to 12 decimal places (spec: slotting).
pub(crate) fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// Parses bundle bytes, with a clear error for non-UTF-8 or bad JSON (the
/// same error, word for word, as `serde_json::from_slice::<Value>` gives).
/// The result borrows its strings from `bytes`.
pub(crate) fn parse_json(bytes: &[u8], max_bytes: usize) -> Result<Tape<'_>, ConfigError> {
    if bytes.len() > max_bytes {
        return Err(ConfigError::Limit(LimitError::new(Limit::ConfigBytes, max_bytes, bytes.len())));
    }
    Tape::parse(bytes).map_err(|e| match e {
        FillError::Json(e) => ConfigError::Json(e.to_string()),
        FillError::Limit(l) => ConfigError::Limit(l),
    })
}

/// Compiles a bundle. With [`Isolation::PerDocument`], a rejected document
/// keeps its last good version from `prev` when there is one. Bundle-level
/// problems (not a bundle, duplicate names, overlapping slots), or every
/// document rejected, reject the whole update.
pub(crate) fn compile(
    root: &Tape<'_>,
    bytes: usize,
    prev: &Compiled,
    isolation: Isolation,
) -> Result<Outcome, ConfigError> {
    let raw = split_bundle(root.root()).map_err(ConfigError::Invalid)?;
    let mut all_problems = Vec::new();
    let mut strings = Strings::new(expanded_constraints_budget(bytes));
    let segments = compile_segments(raw.segments, &mut strings, &mut all_problems);
    let mut rejected = Vec::new();
    let mut bundle_problems = Vec::new();

    // Last good versions, by key (only looked up for rejected documents).
    let mut prev_rollouts: Option<HashMap<&str, &Arc<Rollout>>> = None;
    let mut prev_experiments: Option<HashMap<&str, &Arc<Experiment>>> = None;

    let total_docs = raw.rollouts.len() + raw.experiments.len();
    let mut compiled_docs = 0usize;
    let mut warnings = Vec::new();
    let mut rollouts: Vec<Arc<Rollout>> = Vec::with_capacity(raw.rollouts.len());
    let mut broken_vars: Vec<&str> = Vec::new();
    let mut seen_vars: FxHashSet<&str> = FxHashSet::default();
    seen_vars.reserve(raw.rollouts.len());
    for (i, doc) in raw.rollouts.enumerate() {
        let key = rollout_key(doc);
        let label = match key {
            Some(k) => Label::Named("rollout", k),
            None => Label::Indexed("rollouts", i),
        };
        if let Some(k) = key {
            if !seen_vars.insert(k) {
                bundle_problems.push(Problem {
                    document: label.render(),
                    field: "variable".into(),
                    message: format!("a second rollout document for `{k}`"),
                });
                continue;
            }
        }
        let mut sink = Sink::new(label);
        let result = compile_rollout(doc, &segments, &mut strings, &mut sink);
        warnings.append(&mut sink.warnings);
        match result {
            Some(r) => {
                compiled_docs += 1;
                rollouts.push(Arc::new(r));
            }
            None => {
                let prev_rollouts =
                    prev_rollouts.get_or_insert_with(|| prev.rollouts.iter().map(|r| (&*r.variable, r)).collect());
                let last = key.and_then(|k| prev_rollouts.get(k));
                let killed = doc.get("enabled").and_then(J::as_bool) == Some(false);
                match (key, last) {
                    // A kill switch is honoured even when the rest of its document is broken.
                    (Some(k), _) if killed => {
                        compiled_docs += 1;
                        rollouts.push(Arc::new(Rollout {
                            salt: crate::hash::salt_prefix(k),
                            variable: k.into(),
                            rules: Vec::new(),
                            default: None,
                            enabled: false,
                            fingerprint: fingerprint(doc),
                        }))
                    }
                    (_, Some(last)) => rollouts.push(Arc::clone(last)),
                    (Some(k), None) => broken_vars.push(k),
                    (None, None) => {}
                }
                rejected.push(Rejected {
                    problems: sink.problems.clone(),
                    kept_last_good: last.is_some() && !(killed && key.is_some()),
                    kill_switch: killed && key.is_some(),
                });
                all_problems.append(&mut sink.problems);
            }
        }
    }
    let mut experiments: Vec<Arc<Experiment>> = Vec::with_capacity(raw.experiments.len());
    let mut seen_exps: FxHashSet<&str> = FxHashSet::default();
    for (i, doc) in raw.experiments.enumerate() {
        let key = experiment_key(doc);
        let label = match key {
            Some(k) => Label::Named("experiment", k),
            None => Label::Indexed("experiments", i),
        };
        if let Some(k) = key {
            if !seen_exps.insert(k) {
                bundle_problems.push(Problem {
                    document: label.render(),
                    field: "name".into(),
                    message: format!("a second experiment named `{k}`"),
                });
                continue;
            }
        }
        let mut sink = Sink::new(label);
        let result = compile_experiment(doc, &segments, &mut strings, &mut sink);
        warnings.append(&mut sink.warnings);
        match result {
            Some(e) => {
                compiled_docs += 1;
                experiments.push(Arc::new(e));
            }
            None => {
                let prev_experiments =
                    prev_experiments.get_or_insert_with(|| prev.experiments.iter().map(|e| (&*e.name, e)).collect());
                let last = key.and_then(|k| prev_experiments.get(k));
                match last {
                    Some(last) => experiments.push(Arc::clone(last)),
                    // Its variables resolve with PARSE_ERROR unless something else defines them.
                    None => broken_vars.extend(
                        doc.get("variables")
                            .and_then(J::elems)
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.get("name").and_then(J::as_str)),
                    ),
                }
                rejected.push(Rejected {
                    problems: sink.problems.clone(),
                    kept_last_good: last.is_some(),
                    kill_switch: false,
                });
                all_problems.append(&mut sink.problems);
            }
        }
    }
    if strings.expanded > strings.budget {
        return Err(ConfigError::Limit(LimitError::new(Limit::ExpandedConstraints, strings.budget, strings.expanded)));
    }
    check_slot_overlaps(&experiments, &mut bundle_problems);

    if !bundle_problems.is_empty() {
        bundle_problems.extend(all_problems);
        return Err(ConfigError::Invalid(bundle_problems));
    }
    if !all_problems.is_empty()
        && (isolation == Isolation::Strict || (compiled_docs == 0 && total_docs > 0) || total_docs == 0)
    {
        return Err(ConfigError::Invalid(all_problems));
    }
    // Segment problems not attached to any document still count as rejections.
    let doc_problem_count: usize = rejected.iter().map(|r| r.problems.len()).sum();
    if all_problems.len() > doc_problem_count {
        let seg: Vec<Problem> = all_problems.iter().filter(|p| p.document.starts_with("segment ")).cloned().collect();
        if !seg.is_empty() {
            rejected.insert(0, Rejected { problems: seg, kept_last_good: false, kill_switch: false });
        }
    }

    let mut compiled = Compiled { version: raw.version, rollouts, experiments, ..Default::default() };
    index_variables(&mut compiled, &broken_vars);
    Ok(Outcome { compiled, rejected, warnings })
}

/// Checks the slots of each domain: at most [`MAX_EXPERIMENTS_PER_DOMAIN`]
/// slotted experiments, one slot unit (that of the domain's first experiment
/// in bundle order), and no two slots overlapping. O(n log n): the slots are
/// sorted by their start and swept once, each experiment that overlaps an
/// earlier-starting one reported once (naming the one it overlaps).
fn check_slot_overlaps(experiments: &[Arc<Experiment>], problems: &mut Vec<Problem>) {
    let mut by_domain: HashMap<&str, Vec<(&Experiment, &Slotting)>> = HashMap::new();
    for e in experiments {
        if let Some(s) = &e.slotting {
            if s.hi > s.lo {
                by_domain.entry(&s.salt).or_default().push((e, s));
            }
        }
    }
    let mut domains: Vec<_> = by_domain.into_iter().collect();
    domains.sort_by(|a, b| a.0.cmp(b.0));
    let unit = |e: &Experiment, u: &SlotUnit| match u {
        SlotUnit::Facet(f) => format!("facet `{f}`"),
        SlotUnit::Window => match e.variables.first().map(|v| &v.strategy) {
            Some(Strategy::TimeSlice { period, .. }) => format!("the {period} s time window"),
            _ => "the time window".to_string(),
        },
    };
    for (domain, mut list) in domains {
        if list.len() > MAX_EXPERIMENTS_PER_DOMAIN {
            problems.push(Problem {
                document: "bundle".into(),
                field: String::new(),
                message: format!(
                    "domain `{domain}`: {}",
                    LimitError::new(Limit::ExperimentsPerDomain, MAX_EXPERIMENTS_PER_DOMAIN, list.len())
                ),
            });
            continue;
        }
        let (first, first_slot) = list[0];
        let first_unit = unit(first, &first_slot.unit);
        for &(b, sb) in &list[1..] {
            let u = unit(b, &sb.unit);
            if u != first_unit {
                problems.push(Problem {
                    document: format!("experiment \"{}\"", b.name),
                    field: "slotting".into(),
                    message: format!(
                        "slots on {u} but experiment `{}` in domain `{domain}` slots on {first_unit}: the slots of one domain must share one unit to be exclusive",
                        first.name
                    ),
                });
            }
        }
        // Stable: equal starts keep bundle order.
        list.sort_by(|a, b| a.1.lo.total_cmp(&b.1.lo));
        let mut reach: Option<(&Experiment, &Slotting)> = None;
        for &(b, sb) in &list {
            if let Some((a, sa)) = reach {
                if sb.lo < sa.hi {
                    problems.push(Problem {
                        document: format!("experiment \"{}\"", b.name),
                        field: "slotting".into(),
                        message: format!(
                            "slot [{}, {}) overlaps experiment `{}` [{}, {}) in domain `{domain}`: a unit may be in at most one slotted experiment per domain",
                            sb.lo, sb.hi, a.name, sa.lo, sa.hi
                        ),
                    });
                }
            }
            match reach {
                Some((_, sa)) if sa.hi >= sb.hi => {}
                _ => reach = Some((b, sb)),
            }
        }
    }
}

fn index_variables(c: &mut Compiled, broken: &[&str]) {
    let mut plans: Vec<VarPlan> = Vec::with_capacity(c.rollouts.len());
    let mut index: HashMap<Arc<str>, u32, _> = HashMap::with_capacity_and_hasher(c.rollouts.len(), Default::default());
    let mut plan_for = |name: &Arc<str>, plans: &mut Vec<VarPlan>| -> usize {
        if let Some(&p) = index.get(&**name) {
            return p as usize;
        }
        plans.push(VarPlan { name: Arc::clone(name), experiments: vec![], rollout: None, broken: false });
        index.insert(Arc::clone(name), (plans.len() - 1) as u32);
        plans.len() - 1
    };
    for (ei, e) in c.experiments.iter().enumerate() {
        for (vi, v) in e.variables.iter().enumerate() {
            let p = plan_for(&v.name, &mut plans);
            plans[p].experiments.push((ei as u32, vi as u32));
        }
    }
    for (ri, r) in c.rollouts.iter().enumerate() {
        let p = plan_for(&r.variable, &mut plans);
        plans[p].rollout = Some(ri as u32);
    }
    for b in broken {
        let p = plan_for(&Arc::from(*b), &mut plans);
        if plans[p].rollout.is_none() && plans[p].experiments.is_empty() {
            plans[p].broken = true;
        }
    }
    c.vars = plans;
    c.index = index;
}
