//! Decisions cross the boundary as one packed number plus lazy reads.
//!
//! A call that takes a full decision stores it in a one-slot register and
//! returns a code (below); the facade then reads only the parts it needs
//! (`lastNumber`, `lastString`, ... are calls returning plain values) and
//! builds its `Decision` object. Strings cross only when the decision has
//! them (an experiment name, a string value).
//!
//! Code bits: 0-1 source, 2-4 reason, 5-7 error code, 8-10 value kind,
//! 11 has experiment, 12 has label, 13 has rule, 14 has choice. The facade
//! keeps the same tables (`wasm/js/src/index.js`: `lastValue`, `readDecision`).

use std::cell::RefCell;

use serde_json::{json, Value};
use turnout_core::{Decision, ErrorCode, Reason, Source};
use wasm_bindgen::prelude::*;

thread_local! {
    static LAST: RefCell<Option<Decision>> = const { RefCell::new(None) };
}

/// Value kinds in the code (bits 8-10).
const KIND_NONE: u32 = 0;
const KIND_NUMBER: u32 = 1;
const KIND_TRUE: u32 = 2;
const KIND_FALSE: u32 = 3;
const KIND_STRING: u32 = 4;
const KIND_JSON: u32 = 5;

/// Packs a decision into its code.
pub(crate) fn code(d: &Decision) -> u32 {
    let source = match d.source {
        Source::Experiment => 0,
        Source::Rollout => 1,
        Source::Default => 2,
        Source::Fallback => 3,
    };
    let reason = match d.reason {
        Reason::TargetingMatch => 0,
        Reason::Split => 1,
        Reason::Default => 2,
        Reason::Disabled => 3,
        Reason::Error => 4,
    };
    let error = match d.error {
        None => 0,
        Some(ErrorCode::FlagNotFound) => 1,
        Some(ErrorCode::TypeMismatch) => 2,
        Some(ErrorCode::ParseError) => 3,
        Some(ErrorCode::InvalidContext) => 4,
    };
    let kind = match &d.value {
        None => KIND_NONE,
        Some(Value::Number(_)) => KIND_NUMBER,
        Some(Value::Bool(true)) => KIND_TRUE,
        Some(Value::Bool(false)) => KIND_FALSE,
        Some(Value::String(_)) => KIND_STRING,
        Some(_) => KIND_JSON,
    };
    source
        | reason << 2
        | error << 5
        | kind << 8
        | u32::from(d.experiment.is_some()) << 11
        | u32::from(d.label.is_some()) << 12
        | u32::from(d.rule.is_some()) << 13
        | u32::from(d.choice.is_some()) << 14
}

/// Stores `d` as the last decision and returns its code.
pub(crate) fn store(d: Decision) -> u32 {
    let c = code(&d);
    LAST.with(|l| *l.borrow_mut() = Some(d));
    c
}

fn read<R>(f: impl FnOnce(&Decision) -> Option<R>) -> Option<R> {
    LAST.with(|l| l.borrow().as_ref().and_then(f))
}

/// The last decision's value as a number (NaN when it is not one).
#[wasm_bindgen(js_name = lastNumber)]
pub fn last_number() -> f64 {
    read(|d| d.value.as_ref().and_then(Value::as_f64)).unwrap_or(f64::NAN)
}

/// The last decision's value as a string (empty when it is not one).
#[wasm_bindgen(js_name = lastString)]
pub fn last_string() -> String {
    read(|d| d.value.as_ref().and_then(Value::as_str).map(str::to_string)).unwrap_or_default()
}

/// The last decision's value as JSON text (`null` for fallback).
#[wasm_bindgen(js_name = lastJson)]
pub fn last_json() -> String {
    read(|d| d.value.as_ref().map(Value::to_string)).unwrap_or_else(|| "null".into())
}

/// The experiment of the last decision (empty when none).
#[wasm_bindgen(js_name = lastExperiment)]
pub fn last_experiment() -> String {
    read(|d| d.experiment.clone()).unwrap_or_default()
}

/// The label (`string`) of the rule of the last decision (empty when none).
#[wasm_bindgen(js_name = lastLabel)]
pub fn last_label() -> String {
    read(|d| d.label.clone()).unwrap_or_default()
}

/// The rule index of the last decision.
#[wasm_bindgen(js_name = lastRule)]
pub fn last_rule() -> u32 {
    read(|d| d.rule).unwrap_or(0)
}

/// The choice index of the last decision.
#[wasm_bindgen(js_name = lastChoice)]
pub fn last_choice() -> u32 {
    read(|d| d.choice).unwrap_or(0)
}

/// A decision as the JSON object the facade turns into a `Decision`
/// (the contract's fields plus `label`).
pub(crate) fn to_json(d: &Decision) -> Value {
    let mut v = d.to_json();
    if let Some(o) = v.as_object_mut() {
        o.insert("label".into(), json!(d.label));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field keeps to its bits: the largest error code leaves the value kind alone.
    #[test]
    fn code_fields_do_not_overlap() {
        for (error, n) in [
            (None, 0),
            (Some(ErrorCode::FlagNotFound), 1),
            (Some(ErrorCode::TypeMismatch), 2),
            (Some(ErrorCode::ParseError), 3),
            (Some(ErrorCode::InvalidContext), 4),
        ] {
            let d = Decision {
                variable: "v".into(),
                value: None,
                label: None,
                source: Source::Fallback,
                experiment: None,
                rule: None,
                choice: None,
                reason: Reason::Error,
                error,
            };
            let c = code(&d);
            assert_eq!(c & 3, 3, "source");
            assert_eq!((c >> 2) & 7, 4, "reason");
            assert_eq!((c >> 5) & 7, n, "error code");
            assert_eq!((c >> 8) & 7, KIND_NONE, "value kind");
            assert_eq!(c >> 11, 0, "presence bits");
        }
        let d = Decision {
            variable: "v".into(),
            value: Some(json!({"a": 1})),
            label: Some("l".into()),
            source: Source::Experiment,
            experiment: Some("e".into()),
            rule: Some(0),
            choice: Some(1),
            reason: Reason::Split,
            error: None,
        };
        assert_eq!(code(&d), 1 << 2 | KIND_JSON << 8 | 0b1111 << 11);
    }
}
