//! The hot typed getters over UniFFI object handles, as plain C functions.
//!
//! A UniFFI-generated call pays for its machinery on every crossing: a call
//! status structure (a JNA `Structure` with a `Cleaner` in Kotlin, a ctypes
//! structure in Python), a handle clone per object argument and a checked
//! return. For the decision hot path that machinery costs more than the
//! decision itself, so the facades may call these instead: they take the
//! handles UniFFI already hands out ([`Context`] and [`Variable`] objects)
//! and numbers, and return a number. No status: they cannot fail (any
//! internal panic is caught and the caller's default returned).
//!
//! A UniFFI handle of an object is `Arc::into_raw` of it as a `u64`
//! (uniffi_core's `Handle`). These functions only *borrow* it: the caller must
//! keep its own reference alive for the duration of the call (the facades
//! hold a cloned handle for the life of their wrapper and release it with
//! the generated `free` function).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::uniffi_api::{Client, Context, Decision, Variable};

/// Borrows the objects behind two handles for the duration of `f`.
///
/// # Safety
/// `ctx` and `var` must be live UniFFI handles of a [`Context`] and a
/// [`Variable`] (non-null, not yet freed).
#[inline]
unsafe fn with<R>(ctx: u64, var: u64, default: R, f: impl FnOnce(&Context, &Variable) -> R) -> R
where
    R: Copy,
{
    if ctx == 0 || var == 0 {
        return default;
    }
    // SAFETY: per the contract above, both handles point at live `Arc`
    // allocations of these types; we borrow without touching the counts.
    let (c, v) = unsafe { (&*(ctx as usize as *const Context), &*(var as usize as *const Variable)) };
    catch_unwind(AssertUnwindSafe(|| f(c, v))).unwrap_or(default)
}

/// The value of `var` for `ctx` as an `i64`, or `default`.
///
/// # Safety
/// `ctx`/`var` are live UniFFI handles of a `Context` and a `Variable`, kept
/// alive by the caller for the duration of the call. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_int64(ctx: u64, var: u64, default: i64) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { with(ctx, var, default, |c, v| c.int64(v, default)) }
}

/// The value of `var` for `ctx` as an `f64`, or `default`.
///
/// # Safety
/// As [`turnout_fast_int64`].
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_float64(ctx: u64, var: u64, default: f64) -> f64 {
    // SAFETY: forwarded contract.
    unsafe { with(ctx, var, default, |c, v| c.float64(v, default)) }
}

/// The value of `var` for `ctx` as a boolean (0/1), or `default`.
///
/// # Safety
/// As [`turnout_fast_int64`].
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_bool(ctx: u64, var: u64, default: i8) -> i8 {
    // SAFETY: forwarded contract.
    unsafe { with(ctx, var, default, |c, v| i8::from(c.bool(v, default != 0))) }
}

/// A one-shot decision from facets given as JSON text (the conformance
/// form: `{"pax": 7, "drv": {"$int64": "..."}}`), written into `out` as
/// UniFFI's serialised `Decision` record, exactly the bytes the generated
/// `Context.decision` returns (so facades read it with the generated
/// reader). One crossing instead of the generated path's context creation,
/// handle clones and frees: the cold one-shot path of the Python facade.
///
/// Returns the record's length. When it is larger than `out_cap`, nothing is
/// written and the caller retries with a buffer of that size. Returns -1 when
/// the name or the facets are not valid (not UTF-8, not a JSON object of
/// scalars): the caller takes its general path, which reports the error.
///
/// # Safety
/// `client` is a live UniFFI handle of a `Client`, kept alive by the caller;
/// `name`/`facets` point at `name_len`/`facets_len` readable bytes; `out`
/// at `out_cap` writable bytes (or is null with `out_cap` 0). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn turnout_fast_get_variable_json(
    client: u64,
    name: *const u8,
    name_len: usize,
    facets: *const u8,
    facets_len: usize,
    out: *mut u8,
    out_cap: usize,
) -> i64 {
    if client == 0 || name.is_null() || facets.is_null() {
        return -1;
    }
    // SAFETY: per the contract above.
    let (c, name, facets) = unsafe {
        (
            &*(client as usize as *const Client),
            std::slice::from_raw_parts(name, name_len),
            std::slice::from_raw_parts(facets, facets_len),
        )
    };
    let record = catch_unwind(AssertUnwindSafe(|| {
        let name = std::str::from_utf8(name).ok()?;
        let facets = turnout_core::Facets::from_json_str(std::str::from_utf8(facets).ok()?).ok()?;
        let d: Decision = c.core().get_variable(name, &facets).into();
        let mut buf = Vec::with_capacity(64);
        <Decision as uniffi::Lower<crate::UniFfiTag>>::write(d, &mut buf);
        Some(buf)
    }));
    match record {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::uniffi_api::{Client, FacetValue};

    #[test]
    fn one_shot_json_gives_the_decision_record() {
        let config = br#"{"variable": "d", "rollouts": [{"value": 60, "constraints":
            [{"target": "city", "op": "=", "value": 6}]}], "default": 30}"#;
        let client = Client::new(config.to_vec(), String::new()).unwrap_or_else(|e| unreachable!("{e}"));
        let h = Arc::as_ptr(&client) as usize as u64;
        let call = |name: &str, facets: &str, cap: usize| {
            let mut out = vec![0u8; cap];
            // SAFETY: the client is alive; the slices are valid for the call.
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
        let want = client.get_variable("d".into(), HashMap::from([("city".into(), FacetValue::Int { value: 6 })]));
        let mut expected = Vec::new();
        <Decision as uniffi::Lower<crate::UniFfiTag>>::write(want, &mut expected);
        let (n, out) = call("d", r#"{"city": 6}"#, 256);
        assert_eq!(n as usize, expected.len());
        assert_eq!(&out[..expected.len()], &expected[..]);
        // Too small a buffer: the length, nothing written.
        let (n, out) = call("d", r#"{"city": 6}"#, 4);
        assert_eq!((n as usize, &out[..]), (expected.len(), &[0u8; 4][..]));
        // Bad facets or name: -1.
        assert_eq!(call("d", r#"{"city": [6]}"#, 256).0, -1);
        assert_eq!(call("d", "not json", 256).0, -1);
        // SAFETY: a null client is rejected before any read.
        assert_eq!(
            unsafe { turnout_fast_get_variable_json(0, [].as_ptr(), 0, [].as_ptr(), 0, std::ptr::null_mut(), 0) },
            -1
        );
    }

    #[test]
    fn fast_getters_agree_with_the_uniffi_methods() {
        let config = br#"{"variable": "d", "rollouts": [{"value": 60, "constraints":
            [{"target": "city", "op": "=", "value": 6}]}], "default": 30}"#;
        let client = Client::new(config.to_vec(), String::new()).unwrap_or_else(|e| unreachable!("{e}"));
        let var = client.variable("d".into());
        for city in [5, 6] {
            let ctx = client.context(HashMap::from([("city".to_string(), FacetValue::Int { value: city })]));
            let (ch, vh) = (Arc::as_ptr(&ctx) as usize as u64, Arc::as_ptr(&var) as usize as u64);
            // SAFETY: both Arcs are alive for the whole block.
            unsafe {
                assert_eq!(turnout_fast_int64(ch, vh, -1), ctx.int64(&var, -1));
                assert_eq!(turnout_fast_float64(ch, vh, -1.0), ctx.float64(&var, -1.0));
                assert_eq!(turnout_fast_bool(ch, vh, 1), 1, "not a boolean: the default");
                assert_eq!(turnout_fast_int64(0, vh, -7), -7, "null handle: the default");
            }
        }
    }
}
