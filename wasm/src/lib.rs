//! # turnout-wasm
//!
//! turnout compiled to WebAssembly with wasm-bindgen: a thin shell over
//! `turnout-core`, wrapped by the JavaScript facade in `wasm/js/src/` (the npm
//! package). This crate converts types and errors and nothing else; every
//! decision is taken by the core engine.
//!
//! Boundary rules:
//!
//! - The hot call, `ctx.getNumber(variable, default)`, takes two handles and
//!   a number and returns a number: no strings, no objects, no JSON.
//! - Facets arrive one value at a time into a scratch set ([`facets`]),
//!   keyed by an id the facade caches per name; integers above 2^53 arrive as
//!   `BigInt` (i64) or as decimal text, never as a rounded double.
//! - Full decisions come back as a packed code plus lazy reads ([`decision`]).
//! - Cold calls (config updates, reports, batches, explanations) use the
//!   shared JSON glue of `turnout_core::host`.
//! - `SystemTime::now()` panics on `wasm32-unknown-unknown`, so the client's
//!   clock reads `Date.now()` ([`JsClock`]).
//! - Errors are mapped in one place ([`error`]) to the facade's `TurnoutError`.

#![deny(missing_docs)]

mod decision;
mod error;
mod facets;
mod sync;

use std::sync::Arc;

use js_sys::{Function, Object, Reflect, Uint8Array};
use serde_json::{json, Value};
use turnout_core::host::{encode_batch_json, HostClient};
use turnout_core::{Clock, EventData, UpdateReport};
use wasm_bindgen::prelude::*;

use crate::error::{js, JsResult};

pub use decision::{last_choice, last_experiment, last_json, last_label, last_number, last_rule, last_string};
pub use facets::{
    facet_key, facets_bigint, facets_bool, facets_clear, facets_int64_text, facets_number, facets_string,
};
pub use sync::WasmSync;

/// Registers the facade's error class: every error thrown by this module is
/// `new Class(message, code, problems)`.
#[wasm_bindgen(js_name = setErrorClass)]
pub fn set_error_class(class: Function) {
    error::set_class(class);
}

/// The clock of a client without `fixedTimeMs`: JavaScript's `Date.now()`.
#[derive(Debug, Clone, Copy)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}

/// The engine's client (`turnout_core::Client`) as the facade's `Client` holds it.
#[wasm_bindgen]
pub struct WasmClient {
    client: HostClient,
}

#[wasm_bindgen]
impl WasmClient {
    /// A client with an empty config, from options in the JSON form of
    /// `turnout_core::host::HostOptions`.
    #[wasm_bindgen(constructor)]
    pub fn new(options_json: &str) -> JsResult<WasmClient> {
        Ok(WasmClient { client: HostClient::new(options_json, Some(Arc::new(JsClock))).map_err(js)? })
    }

    /// Validates, compiles and installs a config; returns the update report as
    /// JSON. A rejected config throws and leaves the previous one in force.
    #[wasm_bindgen(js_name = updateConfig)]
    pub fn update_config(&self, config: &[u8]) -> JsResult<String> {
        self.client.update_config(config).map(|r| report_json(&r)).map_err(js)
    }

    /// Checks a config strictly without installing it; returns the report an
    /// update would give, or throws with every problem.
    pub fn validate(&self, config: &[u8]) -> JsResult<String> {
        self.client.validate(config).map(|r| report_json(&r)).map_err(js)
    }

    /// A variable handle (resolved once per config version).
    pub fn variable(&self, name: &str) -> Variable {
        Variable(self.client.variable(name))
    }

    /// A prepared context from the scratch facets.
    pub fn context(&self) -> Context {
        Context(self.client.context(facets::take()))
    }

    /// One decision for the scratch facets; returns its code (see `decision`).
    pub fn decide(&self, var: &Variable) -> u32 {
        facets::with(|f| decision::store(self.client.get_variable(var.0.name(), f)))
    }

    /// Every variable assigned by the experiment or domain `name` for the
    /// scratch facets, as a JSON array of decisions.
    #[wasm_bindgen(js_name = getVariables)]
    pub fn get_variables(&self, name: &str) -> String {
        let ds = facets::with(|f| self.client.get_variables(name, f));
        Value::Array(ds.iter().map(decision::to_json).collect()).to_string()
    }

    /// The decision for the scratch facets with the steps that led to it, as
    /// JSON `{decision, steps}`. Records nothing.
    pub fn explain(&self, name: &str) -> String {
        let e = facets::with(|f| self.client.explain(name, f));
        json!({"decision": decision::to_json(&e.decision), "steps": e.steps}).to_string()
    }

    /// Records a metric with the scratch facets.
    pub fn track(&self, name: &str, value: f64) {
        facets::with(|f| self.client.track(name, value, f));
    }

    /// The next batch to upload as `{seq, bytes, events}`, or `null`.
    #[wasm_bindgen(js_name = takeBatch)]
    pub fn take_batch(&self, max_events: u32) -> JsResult<JsValue> {
        let Some(b) = self.client.take_batch(max_events.max(1) as usize) else {
            return Ok(JsValue::NULL);
        };
        let o = Object::new();
        Reflect::set(&o, &"seq".into(), &JsValue::from_f64(b.seq as f64))?;
        Reflect::set(&o, &"bytes".into(), &Uint8Array::from(&b.bytes[..]))?;
        Reflect::set(&o, &"events".into(), &JsValue::from_f64(b.events as f64))?;
        Ok(o.into())
    }

    /// Batch `seq` was delivered; `false` for an unknown seq.
    pub fn ack(&self, seq: f64) -> bool {
        self.client.ack(seq as u64)
    }

    /// Batch `seq` was not delivered (it is handed out again first); `false` for an unknown seq.
    pub fn nack(&self, seq: f64) -> bool {
        self.client.nack(seq as u64)
    }

    /// Queue counters as JSON.
    #[wasm_bindgen(js_name = trackingStats)]
    pub fn tracking_stats(&self) -> String {
        let s = self.client.tracking_stats();
        json!({"recorded": s.recorded, "folded": s.folded, "dropped": s.dropped, "foldOverflow": s.fold_overflow,
               "queued": s.queued, "inFlight": s.in_flight, "retrying": s.retrying})
        .to_string()
    }

    /// The `version` of the config in force.
    #[wasm_bindgen(getter, js_name = configVersion)]
    pub fn config_version(&self) -> Option<f64> {
        self.client.config_version().map(|v| v as f64)
    }

    /// Names of every variable the config defines, sorted.
    #[wasm_bindgen(js_name = variableNames)]
    pub fn variable_names(&self) -> Vec<String> {
        self.client.variable_names()
    }

    /// The client id written in batch headers.
    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> String {
        self.client.client_id()
    }

    /// Moves the fixed clock (clients created with `fixedTimeMs` only).
    #[wasm_bindgen(js_name = setNow)]
    pub fn set_now(&self, ms: f64) -> JsResult<()> {
        self.client.set_time_ms(ms as i64).map_err(js)
    }
}

impl WasmClient {
    /// The engine's client (for [`WasmSync`]).
    pub(crate) fn core(&self) -> &turnout_core::Client {
        &self.client
    }
}

/// A variable handle: a name whose index in the compiled config is cached
/// and re-resolved when the config changes. Use it with any context.
#[wasm_bindgen]
pub struct Variable(turnout_core::Variable);

#[wasm_bindgen]
impl Variable {
    /// The variable's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name().to_string()
    }
}

/// The facets of one unit or request, prepared once. Its getters take a
/// [`Variable`] and the caller's default and record a decision event.
#[wasm_bindgen]
pub struct Context(turnout_core::Context);

#[wasm_bindgen]
impl Context {
    /// The value as a number, or `default` (fallback or not a number).
    /// Integers above 2^53 lose precision here: use [`Context::get_bigint`].
    #[wasm_bindgen(js_name = getNumber)]
    pub fn get_number(&self, var: &Variable, default: f64) -> f64 {
        self.0.float64(&var.0, default)
    }

    /// The value as an exact 64-bit integer (`BigInt`), or `default`.
    #[wasm_bindgen(js_name = getBigInt)]
    pub fn get_bigint(&self, var: &Variable, default: i64) -> i64 {
        self.0.int64(&var.0, default)
    }

    /// The value as a boolean, or `default`.
    #[wasm_bindgen(js_name = getBoolean)]
    pub fn get_boolean(&self, var: &Variable, default: bool) -> bool {
        self.0.bool(&var.0, default)
    }

    /// The value as a string, or `default`.
    #[wasm_bindgen(js_name = getString)]
    pub fn get_string(&self, var: &Variable, default: &str) -> String {
        self.0.string(&var.0, default)
    }

    /// The full decision into the register; returns its code (the facade's
    /// `getDecision` and `getJSON` read it).
    pub fn decide(&self, var: &Variable) -> u32 {
        decision::store(self.0.decision(&var.0))
    }

    /// Records a metric with this context's facets.
    pub fn track(&self, name: &str, value: f64) {
        self.0.track(name, value);
    }

    /// The facets as JSON (integers beyond 2^53 in the `{"$int64": "..."}` form).
    #[wasm_bindgen(js_name = facetsJson)]
    pub fn facets_json(&self) -> String {
        let mut v = self.0.facets().to_json();
        exact_ints(&mut v);
        v.to_string()
    }
}

/// Encodes the JSON form of a batch (`{header, events}`, as in the batch
/// vectors and `turnout decode`) into wire bytes.
#[wasm_bindgen(js_name = encodeBatch)]
pub fn encode_batch(json: &str) -> JsResult<Vec<u8>> {
    encode_batch_json(json).map_err(js)
}

/// Decodes wire bytes into JSON `{header, events}`; decision events carry
/// `valueText` (the exact value text) and integers beyond 2^53 (facets,
/// times, counts, header fields) use the `{"$int64": "..."}` form. A
/// corrupted batch throws (`BATCH_CHECKSUM`, ...).
#[wasm_bindgen(js_name = decodeBatch)]
pub fn decode_batch(bytes: &[u8]) -> JsResult<String> {
    let batch = turnout_core::decode_batch(bytes).map_err(js)?;
    let events: Vec<Value> = batch
        .events
        .iter()
        .map(|e| {
            let mut v = e.to_json();
            if let (EventData::Decision { value, .. }, Some(o)) = (&e.data, v.as_object_mut()) {
                o.insert("valueText".into(), Value::from(&**value));
            }
            if let Some(f) = v.get_mut("facets") {
                exact_ints(f);
            }
            exact_ints(&mut v);
            v
        })
        .collect();
    let mut header = serde_json::to_value(&batch.header).unwrap_or(Value::Null);
    exact_ints(&mut header);
    Ok(json!({"header": header, "events": events}).to_string())
}

/// The version of the turnout engine and of the evaluation contract.
#[wasm_bindgen(js_name = engineInfo)]
pub fn engine_info() -> String {
    json!({"version": env!("CARGO_PKG_VERSION"), "specVersion": turnout_core::SPEC_VERSION}).to_string()
}

/// Rewrites the integers of an object's members that a JavaScript number
/// cannot hold exactly into `{"$int64": "<decimal>"}`.
fn exact_ints(v: &mut Value) {
    const SAFE: i64 = (1 << 53) - 1;
    if let Some(o) = v.as_object_mut() {
        for x in o.values_mut() {
            if let Some(i) = x.as_i64().filter(|i| !(-SAFE..=SAFE).contains(i)) {
                *x = json!({ "$int64": i.to_string() });
            }
        }
    }
}

/// An update report as the facade returns it (camelCase).
fn report_json(r: &UpdateReport) -> String {
    let problems = |ps: &[turnout_core::Problem]| -> Vec<Value> {
        ps.iter().map(|p| json!({"document": p.document, "field": p.field, "message": p.message})).collect()
    };
    json!({
        "version": r.version,
        "added": r.added,
        "removed": r.removed,
        "changed": r.changed,
        "rejected": r.rejected.iter().map(|x| json!({
            "problems": problems(&x.problems), "keptLastGood": x.kept_last_good, "killSwitch": x.kill_switch,
        })).collect::<Vec<_>>(),
        "warnings": problems(&r.warnings),
    })
    .to_string()
}
