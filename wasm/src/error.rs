//! The one place where engine errors become JavaScript errors.
//!
//! Every error thrown across the boundary is an instance of the facade's
//! `TurnoutError` class (registered once by the facade through
//! [`crate::set_error_class`]) with a stable `code`, a message, and for
//! config errors the list of `problems` (`{document, field, message}`).
//! Before registration (someone using the raw glue directly) a plain
//! `Error` with the same `code` and `problems` properties is thrown.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Reflect};
use turnout_core::sync::SyncError;
use turnout_core::{ConfigError, DecodeError, FacetError, HostError, Problem};
use wasm_bindgen::JsValue;

thread_local! {
    static ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the constructor used for every thrown error:
/// `new Class(message, code, problems)`.
pub(crate) fn set_class(class: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// An error of this binding: a stable code, a message and, for configs, the problems.
#[derive(Debug)]
pub(crate) struct WasmError {
    code: &'static str,
    message: String,
    problems: Vec<Problem>,
}

impl WasmError {
    /// A misuse of the API (wrong argument, wrong state).
    pub(crate) fn usage(message: impl Into<String>) -> WasmError {
        WasmError { code: "INVALID_ARGUMENT", message: message.into(), problems: Vec::new() }
    }

    /// A facet value the engine cannot take.
    pub(crate) fn facets(message: impl Into<String>) -> WasmError {
        WasmError { code: "INVALID_FACETS", message: message.into(), problems: Vec::new() }
    }
}

/// The code of every error that is a limit of docs/spec.md section 17 (config,
/// facets or batch): one kind on every platform.
const LIMIT: &str = "LIMIT_EXCEEDED";

impl From<ConfigError> for WasmError {
    fn from(e: ConfigError) -> Self {
        let code = if e.limit().is_some() { LIMIT } else { "INVALID_CONFIG" };
        WasmError { code, message: e.to_string(), problems: e.problems() }
    }
}

impl From<FacetError> for WasmError {
    fn from(e: FacetError) -> Self {
        let code = if matches!(e, FacetError::Limit(_)) { LIMIT } else { "INVALID_FACETS" };
        WasmError { code, message: e.to_string(), problems: Vec::new() }
    }
}

impl From<SyncError> for WasmError {
    fn from(e: SyncError) -> Self {
        WasmError { code: e.kind().code(), message: e.to_string(), problems: Vec::new() }
    }
}

impl From<DecodeError> for WasmError {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::NotABatch => "NOT_A_BATCH",
            DecodeError::Version(_) => "BATCH_VERSION",
            DecodeError::Checksum => "BATCH_CHECKSUM",
            DecodeError::Malformed { .. } => "BATCH_MALFORMED",
            DecodeError::Limit(_) => LIMIT,
        };
        WasmError { code, message: e.to_string(), problems: Vec::new() }
    }
}

impl From<HostError> for WasmError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Options(_) => {
                WasmError { code: "INVALID_OPTIONS", message: e.to_string(), problems: Vec::new() }
            }
            HostError::Batch(_) => WasmError { code: "INVALID_BATCH", message: e.to_string(), problems: Vec::new() },
            HostError::Decode(d) => d.into(),
        }
    }
}

fn problems_array(problems: &[Problem]) -> Array {
    problems
        .iter()
        .map(|p| {
            let o = Object::new();
            let _ = Reflect::set(&o, &"document".into(), &p.document.as_str().into());
            let _ = Reflect::set(&o, &"field".into(), &p.field.as_str().into());
            let _ = Reflect::set(&o, &"message".into(), &p.message.as_str().into());
            JsValue::from(o)
        })
        .collect()
}

impl From<WasmError> for JsValue {
    fn from(e: WasmError) -> JsValue {
        let problems = problems_array(&e.problems);
        let class = ERROR_CLASS.with(|c| c.borrow().clone());
        if let Some(class) = class {
            let args = Array::of3(&e.message.as_str().into(), &e.code.into(), &problems);
            if let Ok(err) = Reflect::construct(&class, &args) {
                return err;
            }
        }
        let err = js_sys::Error::new(&e.message);
        err.set_name("TurnoutError");
        let _ = Reflect::set(&err, &"code".into(), &e.code.into());
        let _ = Reflect::set(&err, &"problems".into(), &problems);
        err.into()
    }
}

/// `Result` of a call that may throw into JavaScript.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// Converts any engine error into the thrown value.
pub(crate) fn js<E: Into<WasmError>>(e: E) -> JsValue {
    JsValue::from(e.into())
}
