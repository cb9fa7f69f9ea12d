//! The prepared path: variable handles, contexts, and the hot getters that
//! take and return only handles and numbers.

use std::ptr;

use turnout_core::{Context, Variable};

use super::client::{decision_json, TurnoutClient};
use super::error::{call, guard, TurnoutError, TurnoutStatus};
use super::{bytes_arg, clear, facets, handle, put, str_arg, TurnoutBytes};

/// A variable name resolved once per config version (opaque). Thread-safe;
/// usable with any context of the client it came from; survives config updates.
///
/// The one variable handle of every fast path (C, Go, JNI, Python's ctypes,
/// Swift): UniFFI's `Variable.fast_handle()` gives one too.
pub struct TurnoutVariable(pub(crate) Variable);

/// The facets of one unit or request, prepared once (opaque). Thread-safe.
///
/// The one context handle of every fast path, like [`TurnoutVariable`].
pub struct TurnoutContext(pub(crate) Context);

/// Creates a variable handle for `name` (it need not exist in the config
/// yet: it resolves again after every update). Free with `turnout_variable_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_variable(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    out_variable: *mut *mut TurnoutVariable,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_variable, ptr::null_mut());
        let c = handle(client, "client")?;
        let v = c.client.variable(str_arg(name, name_len, "name")?);
        put(out_variable, super::boxed(TurnoutVariable(v)), "out_variable")
    })
}

/// Frees a variable handle; NULL does nothing.
///
/// Not thread-safe with other calls on the same handle: call it last.
///
/// # Safety
/// `variable` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn turnout_variable_free(variable: *mut TurnoutVariable) {
    guard((), || super::unbox(variable));
}

/// Creates a prepared context from `facets` (see "Facets" above), canonicalised
/// once. Free with `turnout_context_free`; it stays valid after its client is freed.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_context(
    client: *const TurnoutClient,
    facets: *const u8,
    facets_len: usize,
    out_context: *mut *mut TurnoutContext,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_context, ptr::null_mut());
        let c = handle(client, "client")?;
        let f = facets::parse(bytes_arg(facets, facets_len, "facets")?)?;
        put(out_context, super::boxed(TurnoutContext(c.client.context(f))), "out_context")
    })
}

/// The context's facets as JSON text (integers as exact JSON numbers), into
/// `*out_json` (free with `turnout_bytes_free`).
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `context` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_facets_json(
    context: *const TurnoutContext,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let c = handle(context, "context")?;
        put(out_json, TurnoutBytes::text(c.0.facets().to_json().to_string()), "out_json")
    })
}

/// Frees a context; NULL does nothing.
///
/// Not thread-safe with other calls on the same handle: call it last.
///
/// # Safety
/// `context` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_free(context: *mut TurnoutContext) {
    guard((), || super::unbox(context));
}

/// Runs a hot getter: NULL handles (or a panic) give the default.
///
/// # Safety
/// Handles must be NULL or live.
#[inline(always)]
unsafe fn hot<T: Copy>(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    default_value: T,
    get: impl FnOnce(&Context, &Variable) -> T,
) -> T {
    guard(default_value, || match (context.as_ref(), variable.as_ref()) {
        (Some(c), Some(v)) => get(&c.0, &v.0),
        _ => default_value,
    })
}

/// The hot call: the value of `variable` for `context` as `int64_t`, or
/// `default_value` (not an integer, fallback, or a NULL handle). Records the
/// decision event; allocates nothing once the decision repeats.
///
/// Thread-safe.
///
/// # Safety
/// Handles must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_int64(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    default_value: i64,
) -> i64 {
    hot(context, variable, default_value, |c, v| c.int64(v, default_value))
}

/// The hot call as `double` (any number); see `turnout_context_int64`.
///
/// Thread-safe.
///
/// # Safety
/// Handles must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_float64(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    default_value: f64,
) -> f64 {
    hot(context, variable, default_value, |c, v| c.float64(v, default_value))
}

/// The hot call as `bool`; see `turnout_context_int64`.
///
/// Thread-safe.
///
/// # Safety
/// Handles must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_bool(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    default_value: bool,
) -> bool {
    hot(context, variable, default_value, |c, v| c.bool(v, default_value))
}

/// The value as a string: `*out` receives it, or a copy of `default_value`
/// when the value is not a string (free with `turnout_bytes_free`).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`. Thread-safe.
///
/// # Safety
/// Handles must be NULL or live; pointers valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_string(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    default_value: *const u8,
    default_len: usize,
    out: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out, TurnoutBytes::EMPTY);
        let (c, v) = (handle(context, "context")?, handle(variable, "variable")?);
        let d = str_arg(default_value, default_len, "default_value")?;
        put(out, TurnoutBytes::text(c.0.string(&v.0, d)), "out")
    })
}

/// The value as JSON text in `*out_json`, or empty (`{NULL, 0}`) when nothing
/// decided (fallback).
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// Handles must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_json(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let (c, v) = (handle(context, "context")?, handle(variable, "variable")?);
        let json = c.0.json(&v.0).map(|j| TurnoutBytes::text(j.to_string()));
        put(out_json, json.unwrap_or(TurnoutBytes::EMPTY), "out_json")
    })
}

/// The full decision as JSON in `*out_json` (keys as `turnout_client_get_decision`).
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// Handles must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_decision(
    context: *const TurnoutContext,
    variable: *const TurnoutVariable,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let (c, v) = (handle(context, "context")?, handle(variable, "variable")?);
        put(out_json, decision_json(&c.0.decision(&v.0)), "out_json")
    })
}

/// Records a metric `name` with `value` and this context's facets (see
/// `turnout_client_track`).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`. Thread-safe.
///
/// # Safety
/// `context` must be NULL or live; pointers valid for the lengths given; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_context_track(
    context: *const TurnoutContext,
    name: *const u8,
    name_len: usize,
    value: f64,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        let c = handle(context, "context")?;
        c.0.track(str_arg(name, name_len, "name")?, value);
        Ok(())
    })
}
