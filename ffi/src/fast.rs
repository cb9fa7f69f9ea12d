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

use crate::uniffi_api::{Context, Variable};

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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::uniffi_api::{Client, FacetValue};

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
