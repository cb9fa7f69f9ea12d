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
use turnout_core::{ErrorDetail, ErrorKind, Problem};
use wasm_bindgen::JsValue;

thread_local! {
    static ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the constructor used for every thrown error:
/// `new Class(message, code, problems)`.
pub(crate) fn set_class(class: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// An error of this binding: a stable code (core's [`ErrorKind::code`], mapped
/// once, below), a message and, for configs, the problems.
#[derive(Debug)]
pub(crate) struct WasmError {
    code: &'static str,
    message: String,
    problems: Vec<Problem>,
}

impl WasmError {
    /// A facet value the engine cannot take.
    pub(crate) fn facets(message: impl Into<String>) -> WasmError {
        ErrorDetail::new(ErrorKind::InvalidFacets, message).into()
    }
}

impl<E: Into<ErrorDetail>> From<E> for WasmError {
    fn from(e: E) -> Self {
        let d = e.into();
        WasmError { code: d.kind.code(), message: d.message, problems: d.problems }
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
