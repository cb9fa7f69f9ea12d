//! The token tape: a JSON text parsed once into a flat sequence of tokens
//! ([`Tape`], one allocation for the whole text, strings without escapes
//! borrowed from the input) instead of a `serde_json::Value` tree, and [`J`],
//! the read-only view of a value on it that the compilers work with.
//!
//! The tape is filled by the same `serde_json` parser calls that build a
//! `Value` (every value through `deserialize_any`, with its depth limit), so
//! exactly the same inputs are accepted, with exactly the same error
//! messages. The limits on depth, string and array length
//! ([`crate::limits`]) are enforced while parsing, so nothing over them is
//! ever held. A value is turned into a `Value` only where the compiled model
//! keeps one or an error message prints it; [`write_json`] writes the same
//! text without building one.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::decimal::DecBuf;
use crate::limits::{Limit, LimitError, MAX_ARRAY_LEN, MAX_JSON_DEPTH, MAX_STRING_BYTES};

/// One token of a [`Tape`].
#[derive(Debug)]
pub(super) enum Tok<'a> {
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
    pub(super) toks: Vec<Tok<'a>>,
}

impl<'a> Tape<'a> {
    /// Parses a whole JSON text: the same parser calls, the same checks and
    /// the same errors as `serde_json::from_slice::<Value>` (the tape is filled
    /// through `deserialize_any` exactly like a `Value` is).
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Tape<'a>, FillError> {
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
    pub(super) fn parse_str(s: &'a str) -> Option<Tape<'a>> {
        let mut toks = Vec::with_capacity((s.len() / 2).min(64) + 2);
        fill_str(s, &mut toks).ok()?;
        Some(Tape { toks })
    }

    pub(super) fn root(&self) -> J<'_, 'a> {
        J { toks: &self.toks, at: 0 }
    }
}

/// Puts the whole text of `de` on `toks` (one value, then the end of input).
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
pub(super) struct J<'t, 'a> {
    pub(super) toks: &'t [Tok<'a>],
    pub(super) at: usize,
}

impl<'t, 'a> J<'t, 'a> {
    pub(super) fn tok(self) -> &'t Tok<'a> {
        &self.toks[self.at]
    }
    /// The index just past this value.
    fn end(self) -> usize {
        match self.tok() {
            Tok::Arr { end, .. } | Tok::Obj(end) => *end,
            _ => self.at + 1,
        }
    }
    pub(super) fn is_null(self) -> bool {
        matches!(self.tok(), Tok::Null)
    }
    pub(super) fn is_object(self) -> bool {
        matches!(self.tok(), Tok::Obj(_))
    }
    pub(super) fn as_str(self) -> Option<&'t str> {
        match self.tok() {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(super) fn as_bool(self) -> Option<bool> {
        match self.tok() {
            Tok::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub(super) fn as_number(self) -> Option<&'t Number> {
        match self.tok() {
            Tok::Num(n) => Some(n),
            _ => None,
        }
    }
    pub(super) fn as_f64(self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }
    pub(super) fn as_u64(self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }
    /// The elements, if this is an array.
    pub(super) fn elems(self) -> Option<Elems<'t, 'a>> {
        match self.tok() {
            Tok::Arr { end, len } => Some(Elems { toks: self.toks, at: self.at + 1, end: *end, len: *len }),
            _ => None,
        }
    }
    /// This value alone, as if it were the one element of an array.
    pub(super) fn alone(self) -> Elems<'t, 'a> {
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
    pub(super) fn get(self, key: &str) -> Option<J<'t, 'a>> {
        let mut found = None;
        for (k, v) in self.entries() {
            if k == key {
                found = Some(v);
            }
        }
        found
    }
    /// `get` for several keys in one pass over the entries.
    pub(super) fn fields<const N: usize>(self, keys: [&str; N]) -> [Option<J<'t, 'a>>; N] {
        let mut out = [None; N];
        for (k, v) in self.entries() {
            if let Some(i) = keys.iter().position(|key| *key == k) {
                out[i] = Some(v);
            }
        }
        out
    }
    pub(super) fn contains_key(self, key: &str) -> bool {
        self.entries().any(|(k, _)| k == key)
    }
    /// The entries as a `Value::Object` iterates them: sorted by key, the
    /// last of duplicate keys.
    pub(super) fn sorted_entries(self) -> Vec<(&'t str, J<'t, 'a>)> {
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
    pub(super) fn kind(self) -> &'static str {
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
    pub(super) fn to_value(self) -> Value {
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
    pub(super) fn scalar(self) -> Option<Value> {
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
pub(super) struct Elems<'t, 'a> {
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
    pub(super) fn none() -> Self {
        Elems { toks: &[], at: 0, end: 0, len: 0 }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The entries of an object: (key, value) in text order.
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

/// Writes a value exactly as `Value`'s `Display` does (compact JSON, object
/// keys sorted); scalars and arrays without building a `Value`.
pub(super) fn write_json(v: J<'_, '_>, out: &mut String) {
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
