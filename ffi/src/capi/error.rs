//! Status codes, the error object, and the one place where core errors and
//! panics become C ABI errors ([`Fail`], [`call`], [`guard`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use turnout_core::{ErrorDetail, ErrorKind};

use super::TurnoutStr;

/// The result of every fallible call. Stable numbers: new codes are only ever added.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnoutStatus {
    /// Success.
    Ok = 0,
    /// A required handle, pointer or out-parameter was NULL (or a NULL pointer with a non-zero length).
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// A config was rejected (not JSON, or invalid); the previous config stays in force.
    Config = 3,
    /// Facets could not be read (bad JSON, a value of the wrong type, a malformed binary buffer).
    Facets = 4,
    /// Client options were invalid.
    Options = 5,
    /// The JSON given to `turnout_encode_batch_json` was not a valid batch.
    BatchJson = 6,
    /// Batch bytes: not a turnout batch (bad magic or too short).
    NotABatch = 7,
    /// Batch bytes: a wire version this library does not read.
    BatchVersion = 8,
    /// Batch bytes: the CRC-32C trailer does not match (corrupted).
    BatchChecksum = 9,
    /// Batch bytes: structurally inconsistent.
    BatchMalformed = 10,
    /// The call needs a fixed clock (`"fixedTimeMs"` in the client options).
    NoFixedClock = 11,
    /// The library panicked; the call had no effect that can be relied on. Please report it.
    Panic = 12,
    /// A limit of docs/spec.md section 17 was exceeded (config size or depth, a
    /// facet count or size, a batch's decoded size); the message names it.
    Limit = 13,
}

/// Details of a failed call: a status, the engine's stable error kind and a
/// message. Read with `turnout_error_status` / `turnout_error_kind` /
/// `turnout_error_message`; free with `turnout_error_free`.
#[derive(Debug)]
pub struct TurnoutError {
    status: TurnoutStatus,
    kind: ErrorKind,
    message: String,
}

/// A failed call inside the library (becomes a status and a [`TurnoutError`]).
#[derive(Debug)]
pub(crate) struct Fail {
    status: TurnoutStatus,
    kind: ErrorKind,
    message: String,
}

impl Fail {
    pub(crate) fn null(what: &str) -> Fail {
        Fail {
            status: TurnoutStatus::NullArgument,
            kind: ErrorKind::InvalidArgument,
            message: format!("`{what}` is NULL"),
        }
    }
    pub(crate) fn utf8(what: &str, e: &std::str::Utf8Error) -> Fail {
        let message = format!("`{what}` is not valid UTF-8: {e}");
        Fail { status: TurnoutStatus::InvalidUtf8, kind: ErrorKind::InvalidArgument, message }
    }
    pub(crate) fn facets(message: impl Into<String>) -> Fail {
        ErrorDetail::new(ErrorKind::InvalidFacets, message).into()
    }
    fn panic(payload: &(dyn std::any::Any + Send)) -> Fail {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let message = format!("internal error (panic) in turnout: {what}");
        Fail { status: TurnoutStatus::Panic, kind: ErrorKind::Internal, message }
    }
}

impl TurnoutStatus {
    /// The status of an engine error kind: the one mapping of
    /// [`ErrorKind`] onto this boundary's codes.
    pub(crate) fn of(kind: ErrorKind) -> TurnoutStatus {
        match kind {
            ErrorKind::InvalidConfig => TurnoutStatus::Config,
            ErrorKind::InvalidFacets => TurnoutStatus::Facets,
            ErrorKind::InvalidOptions | ErrorKind::InvalidArgument => TurnoutStatus::Options,
            ErrorKind::InvalidBatch => TurnoutStatus::BatchJson,
            ErrorKind::NotABatch => TurnoutStatus::NotABatch,
            ErrorKind::BatchVersion => TurnoutStatus::BatchVersion,
            ErrorKind::BatchChecksum => TurnoutStatus::BatchChecksum,
            ErrorKind::BatchMalformed => TurnoutStatus::BatchMalformed,
            ErrorKind::LimitExceeded | ErrorKind::TooLarge => TurnoutStatus::Limit,
            ErrorKind::NoFixedClock => TurnoutStatus::NoFixedClock,
            // Closed handles are NULL or freed pointers at this boundary, and the
            // host-protocol kinds travel in sync notices, never as a call's status.
            ErrorKind::Closed => TurnoutStatus::NullArgument,
            ErrorKind::Network
            | ErrorKind::Http
            | ErrorKind::Timeout
            | ErrorKind::Incomplete
            | ErrorKind::Aborted
            | ErrorKind::Internal => TurnoutStatus::Panic,
        }
    }
}

impl<E: Into<ErrorDetail>> From<E> for Fail {
    fn from(e: E) -> Fail {
        let d = e.into();
        Fail { status: TurnoutStatus::of(d.kind), kind: d.kind, message: d.message }
    }
}

/// Runs a fallible export: clears `*error`, catches panics, and turns a
/// failure into its status (and a new error object when `error` is not NULL).
pub(crate) fn call(error: *mut *mut TurnoutError, f: impl FnOnce() -> Result<(), Fail>) -> TurnoutStatus {
    // SAFETY: the caller passes NULL or a writable `TurnoutError *` (the contract of every export).
    unsafe { super::clear(error, ptr::null_mut()) };
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(Fail::panic(&*payload)));
    match result {
        Ok(()) => TurnoutStatus::Ok,
        Err(fail) => {
            let status = fail.status;
            if !error.is_null() {
                let e = super::boxed(TurnoutError { status, kind: fail.kind, message: fail.message });
                // SAFETY: checked non-NULL above; writable by contract.
                unsafe { error.write(e) };
            }
            status
        }
    }
}

/// Runs an infallible export: a panic gives `fallback`.
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The status of a failed call (`TURNOUT_STATUS_NULL_ARGUMENT` for a NULL error).
///
/// Thread-safe.
///
/// # Safety
/// `error` must be NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn turnout_error_status(error: *const TurnoutError) -> TurnoutStatus {
    guard(TurnoutStatus::Panic, || error.as_ref().map_or(TurnoutStatus::NullArgument, |e| e.status))
}

/// The stable error kind of a failed call (`INVALID_CONFIG`, `BATCH_CHECKSUM`,
/// `LIMIT_EXCEEDED`, ...: docs/sync.md section 8, the same codes on every
/// platform): a static string, valid for the life of the library (empty for
/// a NULL error). A NULL or non-UTF-8 argument is `INVALID_ARGUMENT`, a
/// caught panic `INTERNAL`.
///
/// Thread-safe.
///
/// # Safety
/// `error` must be NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn turnout_error_kind(error: *const TurnoutError) -> TurnoutStr {
    guard(TurnoutStr::of(""), || error.as_ref().map_or(TurnoutStr::of(""), |e| TurnoutStr::of(e.kind.code())))
}

/// The message of a failed call: a view valid until `turnout_error_free`
/// (empty for a NULL error). For a rejected config it lists every problem
/// (`document: field: message`, separated by `; `).
///
/// Thread-safe.
///
/// # Safety
/// `error` must be NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn turnout_error_message(error: *const TurnoutError) -> TurnoutStr {
    guard(TurnoutStr::of(""), || error.as_ref().map_or(TurnoutStr::of(""), |e| TurnoutStr::of(&e.message)))
}

/// Frees an error object; NULL does nothing.
///
/// Thread-safe (each error is freed once, by its owner).
///
/// # Safety
/// `error` must be NULL or an error object not yet freed.
#[no_mangle]
pub unsafe extern "C" fn turnout_error_free(error: *mut TurnoutError) {
    guard((), || super::unbox(error));
}

/// Panics inside the library and returns `TURNOUT_STATUS_PANIC`: lets a
/// binding's test suite prove that a panic never unwinds into the host.
/// (Rust's panic hook prints one line to stderr.)
///
/// Thread-safe.
///
/// # Safety
/// `error` must be NULL or writable.
#[no_mangle]
#[allow(clippy::panic)] // the point of this function
pub unsafe extern "C" fn turnout_selftest_panic(error: *mut *mut TurnoutError) -> TurnoutStatus {
    call(error, || panic!("turnout_selftest_panic was called"))
}

#[cfg(test)]
impl Fail {
    pub(crate) fn status_for_tests(&self) -> TurnoutStatus {
        self.status
    }
    pub(crate) fn kind_for_tests(&self) -> ErrorKind {
        self.kind
    }
    pub(crate) fn message_for_tests(&self) -> &str {
        &self.message
    }
}
