//! Facets cross the boundary one value at a time, as numbers.
//!
//! The facade registers each facet name once ([`facet_key`], cached on the
//! JavaScript side) and then fills a scratch set with calls that carry only
//! a key id and a value: `facetsNumber(id, 7)`, `facetsBigInt(id, 9007199254740993n)`,
//! `facetsString(id, "ADR-1")`, `facetsBool(id, true)`. The next call that
//! takes facets (`context`, `decide`, `track`, `explain`, ...) consumes the
//! scratch set. No JSON and no objects are built on the way.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use turnout_core::host::facets_from_pairs;
use turnout_core::{FacetValue, Facets};
use wasm_bindgen::prelude::*;

use crate::error::{JsResult, WasmError};

/// The facet names registered by [`facet_key`]: id -> name and name -> id.
#[derive(Default)]
struct Keys {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

thread_local! {
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
    /// The facets of the next call, as (key id, value) pairs in call order.
    static SCRATCH: RefCell<Vec<(u32, FacetValue)>> = const { RefCell::new(Vec::new()) };
}

/// Registers a facet name and returns its id (the same id for the same name,
/// until [`facet_keys_reset`]). Constant time: names may come from untrusted input.
#[wasm_bindgen(js_name = facetKey)]
pub fn facet_key(name: &str) -> u32 {
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if let Some(&id) = k.ids.get(name) {
            return id;
        }
        let id = k.names.len() as u32;
        k.names.push(name.to_owned());
        k.ids.insert(name.to_owned(), id);
        id
    })
}

/// Forgets every registered name and empties the scratch set. The facade calls
/// it between calls once it has registered many names, so that facet names
/// from untrusted input (a new set of names on every call) cannot grow the
/// table without bound. Ids handed out before are invalid afterwards.
#[wasm_bindgen(js_name = facetKeysReset)]
pub fn facet_keys_reset() {
    KEYS.with(|k| *k.borrow_mut() = Keys::default());
    facets_clear();
}

fn set(id: u32, value: FacetValue) {
    SCRATCH.with(|s| s.borrow_mut().push((id, value)));
}

/// Empties the scratch set.
#[wasm_bindgen(js_name = facetsClear)]
pub fn facets_clear() {
    SCRATCH.with(|s| s.borrow_mut().clear());
}

/// Sets a number: integral values below 2^63 in magnitude are integers
/// (exactly as Rust's `Num::from_f64` treats them), others are floats. The
/// facade rejects NaN and infinities before calling.
#[wasm_bindgen(js_name = facetsNumber)]
pub fn facets_number(id: u32, x: f64) {
    let v = if x.fract() == 0.0 && x.abs() < 9_223_372_036_854_775_808.0 {
        FacetValue::Int(x as i64)
    } else {
        FacetValue::Float(x)
    };
    set(id, v);
}

/// Sets an exact 64-bit integer (a JavaScript `BigInt` in the i64 range).
#[wasm_bindgen(js_name = facetsBigInt)]
pub fn facets_bigint(id: u32, x: i64) {
    set(id, FacetValue::Int(x));
}

/// Sets an integer given as decimal text (the `{"$int64": "..."}` form).
#[wasm_bindgen(js_name = facetsInt64Text)]
pub fn facets_int64_text(id: u32, text: &str) -> JsResult<()> {
    let i = text.parse::<i64>().map_err(|_| {
        WasmError::facets(format!("facet `{}`: `{text}` is not a 64-bit integer ($int64)", key_name(id)))
    })?;
    set(id, FacetValue::Int(i));
    Ok(())
}

/// Sets a string.
#[wasm_bindgen(js_name = facetsString)]
pub fn facets_string(id: u32, s: String) {
    set(id, FacetValue::Str(s));
}

/// Sets a boolean.
#[wasm_bindgen(js_name = facetsBool)]
pub fn facets_bool(id: u32, b: bool) {
    set(id, FacetValue::Bool(b));
}

fn key_name(id: u32) -> String {
    KEYS.with(|k| k.borrow().names.get(id as usize).cloned()).unwrap_or_default()
}

/// Builds the facets of the scratch set (leaving it empty). Ids come from
/// [`facet_key`] only, so every id names a registered key.
pub(crate) fn take() -> Facets {
    SCRATCH.with(|s| {
        let mut pairs = s.borrow_mut();
        KEYS.with(|k| {
            let keys = k.borrow();
            let facets = facets_from_pairs(
                pairs.drain(..).filter_map(|(id, v)| keys.names.get(id as usize).map(|name| (name.as_str(), v))),
            );
            // Over a facet limit: a set marked as such (decisions give the
            // default with INVALID_CONTEXT, as on every platform).
            match facets {
                Ok(f) => f,
                Err(turnout_core::FacetError::Limit(l)) => Facets::over_limit(l),
                Err(_) => Facets::new(),
            }
        })
    })
}

/// Runs `f` on the scratch set and empties it.
pub(crate) fn with<R>(f: impl FnOnce(&Facets) -> R) -> R {
    let facets = take();
    f(&facets)
}
