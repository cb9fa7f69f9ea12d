//! The client handle: creation from config bytes and options JSON, config
//! updates, the one-shot calls (name + facets per call), `track`, the clock.

use std::ptr;

use turnout_core::host::HostClient;
use turnout_core::{Client, Decision, Facets, UpdateReport};

use super::error::{call, guard, Fail, TurnoutError, TurnoutStatus};
use super::{bytes_arg, clear, facets, handle, put, put_opt, str_arg, TurnoutBytes};

/// A feature-flag client (opaque). Thread-safe.
pub struct TurnoutClient {
    pub(crate) client: HostClient,
}

/// The JSON text of an [`UpdateReport`]:
/// `{"version", "added", "removed", "changed", "rejected", "warnings"}`.
fn report_json(r: &UpdateReport) -> TurnoutBytes {
    TurnoutBytes::text(serde_json::to_string(r).unwrap_or_default())
}

/// The JSON object of a decision: the keys of `turnout eval` plus `label`.
pub(crate) fn decision_value(d: &Decision) -> serde_json::Value {
    let mut v = d.to_json();
    if let Some(o) = v.as_object_mut() {
        o.insert("label".into(), d.label.clone().into());
    }
    v
}

pub(crate) fn decision_json(d: &Decision) -> TurnoutBytes {
    TurnoutBytes::text(decision_value(d).to_string())
}

/// The arguments of every one-shot call.
///
/// # Safety
/// As every export: NULL or valid pointers.
unsafe fn one_shot<'a>(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets_ptr: *const u8,
    facets_len: usize,
) -> Result<(&'a Client, &'a str, Facets), Fail> {
    let c = handle(client, "client")?;
    let name = str_arg(name, name_len, "name")?;
    let f = facets::parse(bytes_arg(facets_ptr, facets_len, "facets")?)?;
    Ok((&c.client, name, f))
}

/// Runs a typed one-shot getter: any invalid argument (or a panic) gives the default.
///
/// # Safety
/// As every export: NULL or valid pointers.
unsafe fn typed<T: Copy>(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets_ptr: *const u8,
    facets_len: usize,
    default_value: T,
    get: impl FnOnce(&Decision, T) -> T,
) -> T {
    guard(default_value, || match one_shot(client, name, name_len, facets_ptr, facets_len) {
        Ok((c, name, f)) => get(&c.get_variable(name, &f), default_value),
        Err(_) => default_value,
    })
}

/// Runs a one-shot call that answers bytes in `*out` (`what` names it in errors).
///
/// # Safety
/// As every export: NULL or valid pointers; `out` and `error` NULL or writable.
#[allow(clippy::too_many_arguments)]
unsafe fn answer(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets_ptr: *const u8,
    facets_len: usize,
    (out, what): (*mut TurnoutBytes, &'static str),
    error: *mut *mut TurnoutError,
    f: impl FnOnce(&Client, &str, &Facets) -> Result<TurnoutBytes, Fail>,
) -> TurnoutStatus {
    call(error, || {
        clear(out, TurnoutBytes::EMPTY);
        let (c, name, facets) = one_shot(client, name, name_len, facets_ptr, facets_len)?;
        put(out, f(c, name, &facets)?, what)
    })
}

/// Creates a client from a config bundle (or a single document) and options.
///
/// - `config`: JSON bytes; `(NULL, 0)` starts with an empty config (every
///   variable falls back to the caller's default until `turnout_client_update_config`).
/// - `options`: JSON text such as `{"service": "booking", "decisionEvents":
///   "experiments", "fixedTimeMs": 1700000000000}` (every field optional;
///   see core's `HostOptions`); `(NULL, 0)` gives the defaults.
/// - `*out_client`: the new client, to free with `turnout_client_free`.
/// - `out_report` (may be NULL): the update report JSON, as for
///   `turnout_client_update_config`; free with `turnout_bytes_free`.
///
/// Errors: `CONFIG` (rejected config, every problem in the message),
/// `LIMIT` (a config over `"maxConfigBytes"` or another limit on configs),
/// `OPTIONS`, `INVALID_UTF8`, `NULL_ARGUMENT`.
///
/// Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_new(
    config: *const u8,
    config_len: usize,
    options: *const u8,
    options_len: usize,
    out_client: *mut *mut TurnoutClient,
    out_report: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_client, ptr::null_mut());
        clear(out_report, TurnoutBytes::EMPTY);
        if out_client.is_null() {
            return Err(Fail::null("out_client"));
        }
        let config = bytes_arg(config, config_len, "config")?;
        let options = str_arg(options, options_len, "options")?;
        let (client, report) = match config {
            [] => (HostClient::new(options, None)?, UpdateReport::default()),
            _ => HostClient::with_config(config, options, None)?,
        };
        put_opt(out_report, || report_json(&report));
        put(out_client, super::boxed(TurnoutClient { client }), "out_client")
    })
}

/// Frees a client; NULL does nothing. Contexts and variables made from it stay valid.
///
/// Not thread-safe with other calls on the same client: call it last.
///
/// # Safety
/// `client` must be NULL or a live client, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_free(client: *mut TurnoutClient) {
    guard((), || super::unbox(client));
}

/// Validates, compiles and atomically installs a new config. On error the
/// previous config stays in force, untouched. `out_report` (may be NULL)
/// receives the JSON report `{"version": 7 | null, "added": [...],
/// "removed": [...], "changed": [...], "rejected": [{"problems": [{"document",
/// "field", "message"}], "kept_last_good", "kill_switch"}], "warnings":
/// [{"document", "field", "message"}]}` (variable names sorted).
///
/// Errors: `CONFIG`, `LIMIT`, `NULL_ARGUMENT`.
///
/// Thread-safe: concurrent decisions see the old or the new config, never a mix.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_update_config(
    client: *const TurnoutClient,
    config: *const u8,
    config_len: usize,
    out_report: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_report, TurnoutBytes::EMPTY);
        let c = handle(client, "client")?;
        let report = c.client.update_config(bytes_arg(config, config_len, "config")?)?;
        put_opt(out_report, || report_json(&report));
        Ok(())
    })
}

/// Checks a config without installing it (strictly: any problem is an
/// error); `out_report` (may be NULL) receives the report an update would give.
///
/// Errors: `CONFIG`, `LIMIT`, `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_validate(
    client: *const TurnoutClient,
    config: *const u8,
    config_len: usize,
    out_report: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_report, TurnoutBytes::EMPTY);
        let c = handle(client, "client")?;
        let report = c.client.validate(bytes_arg(config, config_len, "config")?)?;
        put_opt(out_report, || report_json(&report));
        Ok(())
    })
}

/// The `version` of the config in force: returns `true` and writes it to
/// `*out_version`, or `false` (no version, NULL client or NULL out-parameter).
///
/// Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `out_version` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_config_version(client: *const TurnoutClient, out_version: *mut i64) -> bool {
    guard(false, || match (client.as_ref().and_then(|c| c.client.config_version()), out_version.is_null()) {
        (Some(v), false) => {
            out_version.write(v);
            true
        }
        _ => false,
    })
}

/// The names of every variable the config defines, as a sorted JSON array of
/// strings in `*out_json` (free with `turnout_bytes_free`).
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_variable_names(
    client: *const TurnoutClient,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let names = handle(client, "client")?.client.variable_names();
        put(out_json, TurnoutBytes::text(serde_json::Value::from(names).to_string()), "out_json")
    })
}

/// One-shot decision as `int64_t`: evaluates `name` for `facets` (see
/// "Facets" above) and records the decision event. Returns `default_value`
/// when the value is not an integer, nothing decided (fallback), or an
/// argument is invalid (NULL client, bad UTF-8, bad facets).
///
/// Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_int64(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    default_value: i64,
) -> i64 {
    typed(client, name, name_len, facets, facets_len, default_value, Decision::int64)
}

/// One-shot decision as `double` (any number); see `turnout_client_get_int64`.
///
/// Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_float64(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    default_value: f64,
) -> f64 {
    typed(client, name, name_len, facets, facets_len, default_value, Decision::float64)
}

/// One-shot decision as `bool`; see `turnout_client_get_int64`.
///
/// Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_bool(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    default_value: bool,
) -> bool {
    typed(client, name, name_len, facets, facets_len, default_value, Decision::bool)
}

/// One-shot decision as a string: `*out` receives the value, or a copy of
/// `default_value` when the value is not a string (free with `turnout_bytes_free`).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_string(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    default_value: *const u8,
    default_len: usize,
    out: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    answer(client, name, name_len, facets, facets_len, (out, "out"), error, |c, name, f| {
        let default_value = str_arg(default_value, default_len, "default_value")?;
        Ok(TurnoutBytes::text(c.get_variable(name, f).string(default_value)))
    })
}

/// One-shot decision as JSON: `*out_json` receives the value's JSON text, or
/// stays empty (`{NULL, 0}`) when nothing decided (fallback).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_json(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    answer(client, name, name_len, facets, facets_len, (out_json, "out_json"), error, |c, name, f| {
        Ok(c.get_variable(name, f).value.map_or(TurnoutBytes::EMPTY, |v| TurnoutBytes::text(v.to_string())))
    })
}

/// One-shot full decision: `*out_json` receives `{"variable", "value",
/// "source", "experiment", "rule", "choice", "reason", "errorCode", "label"}`
/// (`value` is null for source `fallback`).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_decision(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    answer(client, name, name_len, facets, facets_len, (out_json, "out_json"), error, |c, name, f| {
        Ok(decision_json(&c.get_variable(name, f)))
    })
}

/// Every variable assigned by the experiments named `name`, or of domain
/// `name`, that apply to `facets`: a JSON array of decisions (as
/// `turnout_client_get_decision`) in `*out_json`. Records their decision events.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_get_variables(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    answer(client, name, name_len, facets, facets_len, (out_json, "out_json"), error, |c, name, f| {
        let all: Vec<serde_json::Value> = c.get_variables(name, f).iter().map(decision_value).collect();
        Ok(TurnoutBytes::text(serde_json::Value::from(all).to_string()))
    })
}

/// The decision for `name` and `facets` with the steps that led to it:
/// `{"decision": {...}, "steps": ["...", ...]}` in `*out_json`. Records nothing.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_explain(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    answer(client, name, name_len, facets, facets_len, (out_json, "out_json"), error, |c, name, f| {
        let e = c.explain(name, f);
        Ok(TurnoutBytes::text(
            serde_json::json!({"decision": decision_value(&e.decision), "steps": e.steps}).to_string(),
        ))
    })
}

/// Records a metric `name` (prefixed with the service as `service.name`)
/// with `value` and `facets`; identical repeats fold into one event.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_UTF8`, `FACETS`, `LIMIT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_track(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    value: f64,
    facets: *const u8,
    facets_len: usize,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        let (c, name, f) = one_shot(client, name, name_len, facets, facets_len)?;
        c.track(name, value, &f);
        Ok(())
    })
}

/// Moves the client's fixed clock to `ms` (unix milliseconds): the time used
/// when facets have no `ts`, and for event times. For tests and conformance runs.
///
/// Errors: `NO_FIXED_CLOCK` (the options had no `fixedTimeMs`), `NULL_ARGUMENT`.
/// Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_set_time_ms(
    client: *const TurnoutClient,
    ms: i64,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || Ok(handle(client, "client")?.client.set_time_ms(ms)?))
}
