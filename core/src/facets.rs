//! Facets: the named attributes of one unit or request (spec rule 1).
//!
//! A [`Facets`] value canonicalises each facet once, when it is set: its unit
//! string and its number are computed then, so evaluation only reads them.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::decimal::DecBuf;
use crate::error::FacetError;
use crate::limits::{Limit, LimitError, MAX_FACETS, MAX_FACET_NAME_BYTES, MAX_FACET_VALUE_BYTES};
use crate::value::{FacetValue, Num};

/// Well-known facet names, shared by every binding.
pub mod names {
    /// Passenger id (`int64`).
    pub const PASSENGER: &str = "pax";
    /// Driver id (`int64`).
    pub const DRIVER: &str = "drv";
    /// Service (vehicle type) id (`int64`).
    pub const SERVICE: &str = "svc";
    /// City id (`int64`).
    pub const CITY: &str = "city";
    /// Country code (string).
    pub const COUNTRY: &str = "country";
    /// Booking code (string).
    pub const BOOKING: &str = "booking";
    /// Location: geohash or coordinates (string).
    pub const LOCATION: &str = "loc";
    /// Session id (string).
    pub const SESSION: &str = "session";
    /// Request id (string).
    pub const REQUEST: &str = "req";
    /// Device id (string).
    pub const DEVICE: &str = "device";
    /// User-defined tag (string).
    pub const TAG: &str = "tag";
    /// Unix time in seconds; the engine's clock supplies it when absent.
    pub const TS: &str = "ts";

    /// The `'static` form of a well-known name (the decoder uses it to skip an allocation).
    pub(crate) fn well_known(name: &str) -> Option<&'static str> {
        [PASSENGER, DRIVER, SERVICE, CITY, COUNTRY, BOOKING, LOCATION, SESSION, REQUEST, DEVICE, TAG, TS]
            .into_iter()
            .find(|n| *n == name)
    }
}

/// Where a facet's canonical string lives: no heap copy for strings, booleans and integers.
#[derive(Debug, Clone, PartialEq)]
enum Canon {
    /// The value itself (strings) or a constant (booleans).
    Value,
    /// An integer's decimal form, inline.
    Int(DecBuf),
    /// A float's canonical form.
    Boxed(Box<str>),
}

/// The lookup word of a facet name: names of up to 7 bytes are held whole
/// (bytes little-endian, length in the top byte), so two such names are equal
/// exactly when their words are; longer names keep their first 7 bytes and a
/// top byte of `0xFF`, and equal words then need a full comparison.
#[inline]
pub(crate) fn key_word(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut w = 0u64;
    for (i, &c) in b.iter().take(7).enumerate() {
        w |= u64::from(c) << (8 * i);
    }
    let top = if b.len() <= 7 { b.len() as u64 } else { 0xFF };
    w | top << 56
}

/// A facet name prepared once (at config load) for fast lookups in [`Facets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FacetKey {
    name: Box<str>,
    word: u64,
}

impl FacetKey {
    /// Prepares `name`.
    pub(crate) fn new(name: &str) -> FacetKey {
        FacetKey { name: Box::from(name), word: key_word(name) }
    }
}

impl From<&str> for FacetKey {
    fn from(name: &str) -> FacetKey {
        FacetKey::new(name)
    }
}

impl std::ops::Deref for FacetKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for FacetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One canonicalised facet.
#[derive(Debug, Clone, PartialEq)]
pub struct Facet {
    key: Cow<'static, str>,
    /// [`key_word`] of `key`.
    word: u64,
    /// This facet's share of the set's fingerprint, computed once.
    digest: u64,
    value: FacetValue,
    canon: Canon,
    num: Option<Num>,
}

impl Facet {
    pub(crate) fn new(key: Cow<'static, str>, value: FacetValue) -> Facet {
        let canon = match &value {
            FacetValue::Str(_) | FacetValue::Bool(_) => Canon::Value,
            FacetValue::Int(i) => Canon::Int(DecBuf::new(*i)),
            v => Canon::Boxed(v.canonical().into_boxed_str()),
        };
        let num = value.num();
        let word = key_word(&key);
        let mut f = Facet { key, word, digest: 0, value, canon, num };
        let tag: u8 = match f.value {
            FacetValue::Str(_) => 0,
            FacetValue::Int(_) => 1,
            FacetValue::Float(_) => 2,
            FacetValue::Bool(_) => 3,
        };
        // salted_hash(key, [tag, canonical]) without a key buffer.
        let sep = [crate::hash::SALT_SEP, tag, crate::hash::UNIT_SEP];
        f.digest = crate::hash::hash_parts([f.key.as_bytes(), &sep, f.canonical().as_bytes()]);
        f
    }

    /// The facet's name.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The value as given.
    pub fn value(&self) -> &FacetValue {
        &self.value
    }
    /// The canonical unit string (spec rule 1).
    #[inline]
    pub fn canonical(&self) -> &str {
        match (&self.canon, &self.value) {
            (Canon::Int(d), _) => d.as_str(),
            (Canon::Boxed(b), _) => b,
            (Canon::Value, FacetValue::Str(s)) => s,
            (Canon::Value, FacetValue::Bool(true)) => "true",
            (Canon::Value, FacetValue::Bool(false)) => "false",
            (Canon::Value, _) => "",
        }
    }
    /// The value as a number, if numeric.
    #[inline]
    pub fn num(&self) -> Option<Num> {
        self.num
    }
}

/// A set of facets, in insertion order; setting a name again replaces its value.
///
/// Cloning is cheap (the facets are shared, copy-on-write): a recorded event
/// keeps the caller's facets without copying them.
#[derive(Debug, Clone, Default)]
pub struct Facets {
    items: Arc<Vec<Facet>>,
    /// Order-independent digest of the facets (used to fold repeated events).
    fingerprint: u64,
    /// A limit the caller's facets went over ([`Facets::set`] cannot fail):
    /// every decision on this set is then the caller's default with
    /// `INVALID_CONTEXT`.
    over: Option<LimitError>,
}

impl PartialEq for Facets {
    /// Two sets are equal when they hold the same facets, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.items.len() == other.items.len() && self.items.iter().all(|f| other.get(&f.key) == Some(f))
    }
}

macro_rules! int_builder {
    ($(#[$doc:meta] $fn:ident => $name:expr),* $(,)?) => {$(
        #[$doc]
        pub fn $fn(self, id: i64) -> Self { self.with_static($name, FacetValue::Int(id)) }
    )*};
}
macro_rules! str_builder {
    ($(#[$doc:meta] $fn:ident => $name:expr),* $(,)?) => {$(
        #[$doc]
        pub fn $fn(self, v: impl Into<String>) -> Self { self.with_static($name, FacetValue::Str(v.into())) }
    )*};
}

impl Facets {
    /// An empty set.
    pub fn new() -> Facets {
        Facets { items: Arc::new(Vec::new()), fingerprint: 0, over: None }
    }

    /// An identity of the shared facets: equal for clones of one set (the
    /// encoder uses it to skip re-encoding a set it has just written).
    pub(crate) fn share_id(&self) -> usize {
        Arc::as_ptr(&self.items) as usize
    }

    /// The fingerprint the set would have without the named facets.
    pub fn fingerprint_excluding(&self, names: &[String]) -> u64 {
        names.iter().filter_map(|n| self.get(n)).fold(self.fingerprint, |acc, f| acc.wrapping_sub(f.digest))
    }

    /// Builds a set from (name, value) pairs set in order (a later name
    /// replaces an earlier value), with one allocation for the facets: names
    /// are compared by lookup word first (small sets) or found through a hash
    /// index (sets of more than 16, so that a big set costs linear time), and
    /// well-known names are not copied. The limits of [`crate::limits`] on
    /// facets are checked here.
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, FacetValue)>) -> Result<Facets, FacetError> {
        const INDEX_FROM: usize = 16;
        let pairs = pairs.into_iter();
        let mut items: Vec<Facet> = Vec::with_capacity(pairs.size_hint().0.clamp(4, MAX_FACETS));
        // Name hash -> index of the first facet with that hash; a collision
        // (two names, one hash) falls back to the scan.
        let mut index: Option<FxHashMap<u64, usize>> = None;
        let name_hash = |name: &str| xxhash_rust::xxh3::xxh3_64(name.as_bytes());
        for (name, value) in pairs {
            check_facet(name, &value)?;
            let w = key_word(name);
            let scan = |items: &[Facet]| items.iter().position(|f| f.word == w && *f.key == *name);
            let h = index.as_ref().map(|_| name_hash(name));
            let found = match (&index, h) {
                (Some(ix), Some(h)) => match ix.get(&h) {
                    Some(&i) if *items[i].key == *name => Some(i),
                    Some(_) => scan(&items),
                    None => None,
                },
                _ => scan(&items),
            };
            match found {
                Some(i) => {
                    let slot = &mut items[i];
                    *slot = Facet::new(std::mem::take(&mut slot.key), value);
                }
                None => {
                    if items.len() >= MAX_FACETS {
                        return Err(FacetError::Limit(LimitError::new(Limit::Facets, MAX_FACETS, items.len() + 1)));
                    }
                    let key = names::well_known(name).map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed);
                    items.push(Facet::new(key, value));
                    match (&mut index, h) {
                        (Some(ix), Some(h)) => {
                            ix.entry(h).or_insert(items.len() - 1);
                        }
                        _ if items.len() > INDEX_FROM => {
                            let mut ix = FxHashMap::default();
                            for (i, f) in items.iter().enumerate() {
                                ix.entry(name_hash(&f.key)).or_insert(i);
                            }
                            index = Some(ix);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Facets::from_built(items))
    }

    /// Builds a set from facets already built, with distinct names (the batch
    /// decoder reuses the facets that repeat across a batch's sets).
    pub(crate) fn from_built(items: Vec<Facet>) -> Facets {
        let fingerprint = items.iter().fold(0u64, |acc, f| acc.wrapping_add(f.digest));
        Facets { items: Arc::new(items), fingerprint, over: None }
    }

    /// An order-independent 64-bit digest of the facets.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn with_static(mut self, key: &'static str, value: FacetValue) -> Self {
        self.insert(Cow::Borrowed(key), value);
        self
    }

    /// A set marked as over `limit` (a binding's facets that [`Facets::from_json`]
    /// or [`crate::host::facets_from_pairs`] refused where the call cannot
    /// fail): every decision on it is the caller's default with
    /// `INVALID_CONTEXT`.
    pub fn over_limit(limit: LimitError) -> Facets {
        Facets { over: Some(limit), ..Facets::new() }
    }

    /// The limit these facets went over, if any (see [`Facets::over_limit`]).
    pub fn limit_error(&self) -> Option<LimitError> {
        self.over
    }

    /// Sets a facet unless it is over a limit, which is returned (and the set left as it was).
    fn try_insert(&mut self, key: Cow<'static, str>, value: FacetValue) -> Result<(), LimitError> {
        match check_facet(&key, &value) {
            Err(FacetError::Limit(l)) => return Err(l),
            _ if self.items.len() >= MAX_FACETS && self.get(&key).is_none() => {
                return Err(LimitError::new(Limit::Facets, MAX_FACETS, self.items.len() + 1))
            }
            _ => {}
        }
        let f = Facet::new(key, value);
        self.fingerprint = self.fingerprint.wrapping_add(f.digest);
        let items = Arc::make_mut(&mut self.items);
        match items.iter_mut().find(|x| x.key == f.key) {
            Some(slot) => {
                self.fingerprint = self.fingerprint.wrapping_sub(slot.digest);
                *slot = f;
            }
            None => items.push(f),
        }
        Ok(())
    }

    /// The infallible builders: a facet over a limit is not set, and the set
    /// is marked (see `over`).
    fn insert(&mut self, key: Cow<'static, str>, value: FacetValue) {
        if let Err(l) = self.try_insert(key, value) {
            self.over = self.over.or(Some(l));
        }
    }

    /// Sets a facet by name (replacing any previous value).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<FacetValue>) -> &mut Self {
        self.insert(Cow::Owned(key.into()), value.into());
        self
    }

    /// Builder form of [`Facets::set`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<FacetValue>) -> Self {
        self.set(key, value);
        self
    }

    /// Removes a facet; returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(i) = self.items.iter().position(|f| f.key == key) else {
            return false;
        };
        let f = Arc::make_mut(&mut self.items).remove(i);
        self.fingerprint = self.fingerprint.wrapping_sub(f.digest);
        true
    }

    int_builder! {
        /// Sets `pax`, the passenger id.
        passenger => names::PASSENGER,
        /// Sets `drv`, the driver id.
        driver => names::DRIVER,
        /// Sets `svc`, the service (vehicle type) id.
        service => names::SERVICE,
        /// Sets `city`, the city id.
        city => names::CITY,
        /// Sets `ts`, unix time in seconds (otherwise the client's clock is used).
        ts => names::TS,
    }
    str_builder! {
        /// Sets `country`.
        country => names::COUNTRY,
        /// Sets `booking`, the booking code.
        booking => names::BOOKING,
        /// Sets `loc`, a geohash or coordinates.
        location => names::LOCATION,
        /// Sets `session`, the session id.
        session => names::SESSION,
        /// Sets `req`, the request id.
        request => names::REQUEST,
        /// Sets `device`, the device id.
        device => names::DEVICE,
        /// Sets `tag`, a user-defined tag.
        tag => names::TAG,
    }

    /// The facet with this name, if set.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Facet> {
        self.items.iter().find(|f| &*f.key == key)
    }

    /// [`Facets::get`] for a name prepared at load time: one word comparison
    /// per facet for names of up to 7 bytes (the hot path of evaluation).
    #[inline(always)]
    pub(crate) fn get_key(&self, key: &FacetKey) -> Option<&Facet> {
        let w = key.word;
        if w >> 56 != 0xFF {
            self.items.iter().find(|f| f.word == w)
        } else {
            self.items.iter().find(|f| f.word == w && *f.key == *key.name)
        }
    }

    /// Iterates over the facets in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Facet> {
        self.items.iter()
    }

    /// Number of facets.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no facet is set.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Builds facets from a JSON object; `null` members are absent facets.
    ///
    /// An integer may also be written `{"$int64": "<decimal>"}`, for writers
    /// whose JSON numbers are doubles (JavaScript) and ids above 2^53.
    /// Other arrays and objects are rejected with the offending name.
    pub fn from_json(v: &serde_json::Value) -> Result<Facets, FacetError> {
        let obj = v.as_object().ok_or(FacetError::NotAnObject)?;
        if obj.len() > MAX_FACETS {
            return Err(FacetError::Limit(LimitError::new(Limit::Facets, MAX_FACETS, obj.len())));
        }
        let mut pairs = Vec::with_capacity(obj.len());
        for (k, val) in obj {
            if val.is_null() {
                continue;
            }
            let bad = || FacetError::BadValue { name: k.clone(), found: json_kind(val) };
            let fv = match val.get(INT64_KEY) {
                Some(serde_json::Value::String(s)) if val.as_object().map(|o| o.len()) == Some(1) => {
                    FacetValue::Int(s.parse::<i64>().map_err(|_| bad())?)
                }
                _ => FacetValue::from_json(val).ok_or_else(bad)?,
            };
            pairs.push((k.as_str(), fv));
        }
        Facets::from_pairs(pairs)
    }

    /// Sets a facet, checking the limits of [`crate::limits`] (count, name and
    /// value size) first: the fallible form of [`Facets::set`], for names and
    /// values from untrusted input. Every binding builds facets this way.
    pub fn try_set(&mut self, key: impl Into<String>, value: impl Into<FacetValue>) -> Result<&mut Self, FacetError> {
        self.try_insert(Cow::Owned(key.into()), value.into()).map_err(FacetError::Limit)?;
        Ok(self)
    }

    /// Parses facets from JSON text (see [`Facets::from_json`]).
    pub fn from_json_str(s: &str) -> Result<Facets, FacetError> {
        let v: serde_json::Value = serde_json::from_str(s).map_err(|e| FacetError::Json(e.to_string()))?;
        Facets::from_json(&v)
    }

    /// The facets as a JSON object (values as given).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for f in self.items.iter() {
            let v = match &f.value {
                FacetValue::Str(s) => serde_json::Value::from(s.as_str()),
                FacetValue::Int(i) => serde_json::Value::from(*i),
                FacetValue::Float(x) => serde_json::Number::from_f64(*x)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| serde_json::Value::from(f.canonical())),
                FacetValue::Bool(b) => serde_json::Value::from(*b),
            };
            m.insert(f.key.to_string(), v);
        }
        serde_json::Value::Object(m)
    }
}

/// Checks one facet against the name and value size limits.
fn check_facet(name: &str, value: &FacetValue) -> Result<(), FacetError> {
    if name.len() > MAX_FACET_NAME_BYTES {
        return Err(FacetError::Limit(LimitError::new(Limit::FacetNameBytes, MAX_FACET_NAME_BYTES, name.len())));
    }
    if let FacetValue::Str(v) = value {
        if v.len() > MAX_FACET_VALUE_BYTES {
            return Err(FacetError::Limit(LimitError::new(Limit::FacetValueBytes, MAX_FACET_VALUE_BYTES, v.len())));
        }
    }
    Ok(())
}

/// The key of the exact-integer form `{"$int64": "<decimal>"}` in JSON facets.
pub const INT64_KEY: &str = "$int64";

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_replace() {
        let f = Facets::new().passenger(1).city(6).with("city", 10);
        assert_eq!(f.len(), 2);
        assert_eq!(f.get("city").unwrap().canonical(), "10");
        assert_eq!(f.get("pax").unwrap().num(), Some(Num::Int(1)));
    }

    #[test]
    fn from_json_rules() {
        let f = Facets::from_json_str(r#"{"pax": 9007199254740993, "x": null, "f": 6.0}"#).unwrap();
        assert_eq!(f.get("pax").unwrap().canonical(), "9007199254740993");
        assert!(f.get("x").is_none());
        assert_eq!(f.get("f").unwrap().canonical(), "6");
        let big = Facets::from_json_str(r#"{"pax": {"$int64": "-9007199254740993"}}"#).unwrap();
        assert_eq!(big.get("pax").unwrap().value(), &FacetValue::Int(-9007199254740993));
        assert!(Facets::from_json_str(r#"{"pax": {"$int64": "1.5"}}"#).is_err());
        assert!(Facets::from_json_str(r#"{"pax": {"$int64": "1", "x": 2}}"#).is_err());
        let e = Facets::from_json_str(r#"{"tags": [1]}"#).unwrap_err();
        assert!(e.to_string().contains("tags"));
        assert!(Facets::from_json_str("[1]").is_err());
    }
}
