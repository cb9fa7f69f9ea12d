//! The fast paths' one handle type, and the two record-returning calls of the
//! Python and Swift facades.
//!
//! A UniFFI-generated call pays for its machinery on every crossing: a call
//! status structure (a JNA `Structure` with a `Cleaner` in Kotlin, a ctypes
//! structure in Python), a handle clone per object argument and a checked
//! return. For the decision hot path that machinery costs more than the
//! decision itself, so the facades take the hot calls through plain C (or
//! JNI) functions instead.
//!
//! **One handle type.** Every fast path takes the C ABI's handles
//! ([`TurnoutClient`], [`TurnoutContext`], [`TurnoutVariable`]: `Box`
//! pointers of our own, passed as 64-bit numbers where a language has no
//! pointers): Go through cgo, the JNI functions of [`crate::jni`], Python's
//! `ctypes` and Swift's C module. A facade gets one from a generated object
//! with its public `fast_handle()` method (or creates it with the C ABI:
//! `turnout_client_context`, `turnout_client_variable`), owns it, and frees
//! it with `turnout_client_free` / `turnout_context_free` /
//! `turnout_variable_free`. No fast path reads UniFFI's own handles, so none
//! depends on how UniFFI lays them out.
//!
//! The typed getters are the C ABI's (`turnout_context_int64`, `_float64`,
//! `_bool`); this module adds the two calls that answer UniFFI's serialised
//! `Decision` record (which the Python facade reads with the generated reader).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::capi::{TurnoutClient, TurnoutContext, TurnoutVariable};
use crate::uniffi_api::Decision;

/// A new owned handle: the `Box` pointer of `v` as a number (what every
/// `fast_handle()` returns: a signed 64-bit number, the JVM's `long`; freed by
/// the C ABI's free function of its type).
pub(crate) fn handle<T>(v: T) -> i64 {
    Box::into_raw(Box::new(v)) as usize as i64
}

/// Writes UniFFI's serialised record of the decision `f` gives into `out`:
/// its length, nothing written when it is larger than `out_cap`; -1 when `f`
/// gives nothing (or panics).
///
/// # Safety
/// `out` points at `out_cap` writable bytes (or is null with `out_cap` 0).
unsafe fn record(out: *mut u8, out_cap: usize, f: impl FnOnce() -> Option<turnout_core::Decision>) -> i64 {
    let bytes = catch_unwind(AssertUnwindSafe(|| {
        let d: Decision = f()?.into();
        let mut buf = Vec::with_capacity(64);
        <Decision as uniffi::Lower<crate::UniFfiTag>>::write(d, &mut buf);
        Some(buf)
    }));
    match bytes {
        Ok(Some(buf)) => {
            if buf.len() <= out_cap && !out.is_null() {
                // SAFETY: `out` has `out_cap >= buf.len()` writable bytes.
                unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), out, buf.len()) };
            }
            i64::try_from(buf.len()).unwrap_or(-1)
        }
        _ => -1,
    }
}

/// The full decision of `var` for `ctx` (recorded like any other), written
/// into `out` as UniFFI's serialised `Decision` record, exactly the bytes the
/// generated `Context.decision` returns. Returns the record's length (nothing
/// written when it is larger than `out_cap`: the caller retries with room),
/// or -1 for a null handle.
///
/// # Safety
/// `ctx`/`var` are 0 or live handles (module docs), kept alive by the caller
/// for the call; `out` points at `out_cap` writable bytes (or is null with
/// `out_cap` 0). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_decision(
    ctx: *const TurnoutContext,
    var: *const TurnoutVariable,
    out: *mut u8,
    out_cap: usize,
) -> i64 {
    // SAFETY: per the contract above.
    unsafe { record(out, out_cap, || Some(ctx.as_ref()?.0.decision(&var.as_ref()?.0))) }
}

/// A one-shot decision from facets given as JSON text (the conformance
/// form: `{"pax": 7, "drv": {"$int64": "..."}}`), written into `out` as in
/// [`turnout_fast_decision`]: one crossing instead of a context's creation,
/// use and release (the cold one-shot path of the Python facade). Returns -1
/// when the name or the facets are not valid (not UTF-8, not a JSON object of
/// scalars): the caller takes its general path, which reports the error.
///
/// # Safety
/// `client` is 0 or a live handle, kept alive by the caller; `name`/`facets`
/// point at `name_len`/`facets_len` readable bytes; `out` at `out_cap`
/// writable bytes (or is null with `out_cap` 0). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_get_variable_json(
    client: *const TurnoutClient,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out: *mut u8,
    out_cap: usize,
) -> i64 {
    if name.is_null() || facets.is_null() {
        return -1;
    }
    // SAFETY: per the contract above.
    unsafe {
        let (name, facets) =
            (std::slice::from_raw_parts(name, name_len), std::slice::from_raw_parts(facets, facets_len));
        record(out, out_cap, || {
            let name = std::str::from_utf8(name).ok()?;
            let facets = turnout_core::Facets::from_json_str(std::str::from_utf8(facets).ok()?).ok()?;
            Some(client.as_ref()?.client.get_variable(name, &facets))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::capi::client::turnout_client_free;
    use crate::capi::prepared::{
        turnout_context_bool, turnout_context_free, turnout_context_int64, turnout_variable_free,
    };
    use crate::capi::{TurnoutContext as C, TurnoutVariable as V};
    use crate::uniffi_api::{Client, FacetValue};

    const CONFIG: &[u8] = br#"{"variable": "d", "rollouts": [{"value": 60, "constraints":
            [{"target": "city", "op": "=", "value": 6}]}], "default": 30}"#;

    fn record_of(d: Decision) -> Vec<u8> {
        let mut expected = Vec::new();
        <Decision as uniffi::Lower<crate::UniFfiTag>>::write(d, &mut expected);
        expected
    }

    #[test]
    fn one_shot_json_gives_the_decision_record() {
        let client = Client::new(CONFIG.to_vec(), String::new()).unwrap_or_else(|e| unreachable!("{e}"));
        let h = client.fast_handle() as usize as *const TurnoutClient;
        let call = |name: &str, facets: &str, cap: usize| {
            let mut out = vec![0u8; cap];
            // SAFETY: the handle is alive; the slices are valid for the call.
            let n = unsafe {
                turnout_fast_get_variable_json(
                    h,
                    name.as_ptr(),
                    name.len(),
                    facets.as_ptr(),
                    facets.len(),
                    out.as_mut_ptr(),
                    out.len(),
                )
            };
            (n, out)
        };
        let expected =
            record_of(client.get_variable("d".into(), HashMap::from([("city".into(), FacetValue::Int { value: 6 })])));
        let (n, out) = call("d", r#"{"city": 6}"#, 256);
        assert_eq!(n as usize, expected.len());
        assert_eq!(&out[..expected.len()], &expected[..]);
        // Too small a buffer: the length, nothing written.
        let (n, out) = call("d", r#"{"city": 6}"#, 4);
        assert_eq!((n as usize, &out[..]), (expected.len(), &[0u8; 4][..]));
        // Bad facets or name: -1.
        assert_eq!(call("d", r#"{"city": [6]}"#, 256).0, -1);
        assert_eq!(call("d", "not json", 256).0, -1);
        // SAFETY: null pointers are rejected before any read; the handle is freed once.
        unsafe {
            let null = std::ptr::null();
            assert_eq!(
                turnout_fast_get_variable_json(null, [].as_ptr(), 0, [].as_ptr(), 0, std::ptr::null_mut(), 0),
                -1
            );
            turnout_client_free(h.cast_mut());
        }
    }

    #[test]
    fn fast_handles_answer_as_the_generated_objects() {
        let client = Client::new(CONFIG.to_vec(), String::new()).unwrap_or_else(|e| unreachable!("{e}"));
        let var = client.variable("d".into());
        let vh = var.fast_handle() as usize as *mut V;
        for city in [5, 6] {
            let ctx = client.context(HashMap::from([("city".to_string(), FacetValue::Int { value: city })]));
            let ch = ctx.fast_handle() as usize as *mut C;
            drop(ctx.clone()); // the handle holds its own context: the generated object may go
            let mut out = vec![0u8; 256];
            // SAFETY: both handles are alive until freed below, once.
            unsafe {
                assert_eq!(turnout_context_int64(ch, vh, -1), ctx.int64(&var, -1));
                assert!(turnout_context_bool(ch, vh, true), "not a boolean: the default");
                assert_eq!(turnout_context_int64(std::ptr::null(), vh, -7), -7, "null handle: the default");
                let n = turnout_fast_decision(ch, vh, out.as_mut_ptr(), out.len());
                assert_eq!(&out[..n as usize], &record_of(ctx.decision(&var))[..]);
                assert_eq!(turnout_fast_decision(std::ptr::null(), vh, out.as_mut_ptr(), out.len()), -1);
                // The generated object of a handle answers as the handle does; a null handle is an error.
                let again = crate::uniffi_api::Context::from_fast_handle(ch as usize as i64)
                    .unwrap_or_else(|e| unreachable!("{e}"));
                assert_eq!(again.decision(&var), ctx.decision(&var));
                assert!(crate::uniffi_api::Context::from_fast_handle(0).is_err());
                turnout_context_free(ch);
            }
        }
        // SAFETY: freed once.
        unsafe { turnout_variable_free(vh) };
    }
}
