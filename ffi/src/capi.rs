//! The C ABI (`include/turnout.h`, generated from this module by cbindgen):
//! what the Go package wraps with cgo, usable from any C host.
//!
//! A thin shell over [`turnout_core`]: it checks pointers and UTF-8, converts
//! types, maps errors in one place ([`error`]) and decides nothing itself.
//!
//! # The contract (copied into the header)
//!
//! - **Names.** Every symbol starts with `turnout_`, every type with `Turnout`.
//! - **Handles.** `TurnoutClient`, `TurnoutContext`, `TurnoutVariable` and
//!   `TurnoutSync` are opaque. A context, a variable and a sync stay valid
//!   after their client is freed (they share the engine state), so handles
//!   can be freed in any order.
//! - **Arguments.** Every string or byte argument is a pointer and an explicit
//!   length: UTF-8, *not* NUL-terminated. `(NULL, 0)` is the empty string;
//!   `NULL` with a non-zero length is an error. The library never keeps a
//!   pointer you pass beyond the call.
//! - **Ownership: you free what you receive through an out-parameter, and
//!   nothing else.** Every new object the library hands you comes through an
//!   out-parameter (`TurnoutClient **`, `TurnoutContext **`,
//!   `TurnoutVariable **`, `TurnoutSync **`, `TurnoutBytes *`, `TurnoutBatch *`,
//!   `TurnoutSyncAction *`, `TurnoutError **`) and is released by its one
//!   matching free: `turnout_client_free`, `turnout_context_free`,
//!   `turnout_variable_free`, `turnout_sync_free`, `turnout_bytes_free`,
//!   `turnout_batch_free`, `turnout_sync_action_free`, `turnout_error_free`. Every
//!   free accepts NULL (or empty) and does nothing. Values returned directly
//!   (numbers, `bool`, `TurnoutStatus`, `TurnoutStr` views) are never freed;
//!   a `TurnoutStr` borrows from the object it was read from and is valid
//!   until that object is freed (or forever, for `turnout_version`).
//!   Out-parameters are cleared (NULL / empty) on entry, so they hold nothing
//!   to free after a failed call.
//! - **Errors.** Every fallible call returns a `TurnoutStatus`
//!   (`TURNOUT_STATUS_OK` = 0) and takes a last `TurnoutError **error`
//!   out-parameter: pass NULL if the status is enough, or the address of a
//!   `TurnoutError *` to receive the details on failure
//!   (`turnout_error_status`, `turnout_error_message`; free it with
//!   `turnout_error_free`). An out-parameter rather than a thread-local "last
//!   error", because hosts such as Go move their threads between calls.
//! - **Panics.** Every export runs inside `catch_unwind`: nothing unwinds
//!   into the host. A panic becomes `TURNOUT_STATUS_PANIC`, or the caller's
//!   default for the calls that return a number.
//! - **The hot calls** `turnout_context_int64` / `_float64` / `_bool` take
//!   and return only handles and numbers, never fail (NULL handles give the
//!   default) and allocate nothing once the decision repeats.
//! - **Threads.** Clients, contexts, variables and syncs are thread-safe: any call
//!   may be made from any thread, concurrently, on the same handle, except
//!   that a handle's free must not race with (or precede) another call on it.
//!   Errors, bytes, batches and sync actions belong to the caller who received them.
//!
//! # Facets
//!
//! Calls that take facets take them as `(facets, facets_len)` bytes in one of
//! two forms, told apart by the first byte:
//!
//! - **JSON text**: an object of name -> string, number or boolean (`null` =
//!   absent; `{"$int64": "9007199254740993"}` for exact 64-bit integers).
//! - **Binary** (what the Go package builds; no JSON parsing): the byte
//!   `TURNOUT_FACETS_BINARY` (0xF1, never the first byte of JSON text), then
//!   entries until the end, each a tag byte:
//!   - `TURNOUT_FACET_INT64` name, then 8 bytes (little-endian `int64_t`);
//!   - `TURNOUT_FACET_FLOAT64` name, then 8 bytes (little-endian IEEE 754 `double`);
//!   - `TURNOUT_FACET_BOOL` name, then 1 byte (0 or 1);
//!   - `TURNOUT_FACET_STRING` name, then a string;
//!   - `TURNOUT_FACET_JSON` a string holding a JSON object as above, whose
//!     members are set in order.
//!
//!   A name or string is an unsigned LEB128 varint byte length followed by
//!   that many UTF-8 bytes. Setting a name again replaces its value.
//!
//! An empty buffer is the empty facet set. Facets over a limit (more than
//! 1,024, a name over 1 KiB, a value over 8 KiB: docs/spec.md, section 17)
//! fail with `TURNOUT_STATUS_LIMIT` (the calls returning a number give the default).

pub mod error;

mod batch;
pub(crate) mod client;
pub(crate) mod facets;
pub(crate) mod prepared;
mod sync;

use std::ptr;

pub use client::TurnoutClient;
pub use error::{TurnoutError, TurnoutStatus};
pub use facets::{
    TURNOUT_FACETS_BINARY, TURNOUT_FACET_BOOL, TURNOUT_FACET_FLOAT64, TURNOUT_FACET_INT64, TURNOUT_FACET_JSON,
    TURNOUT_FACET_STRING,
};
pub use prepared::{TurnoutContext, TurnoutVariable};

use error::Fail;

/// A borrowed UTF-8 view (not NUL-terminated). Never freed: it lives as long
/// as the object it was read from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TurnoutStr {
    /// The first byte (NULL when `len` is 0).
    pub ptr: *const u8,
    /// The length in bytes.
    pub len: usize,
}

impl TurnoutStr {
    fn of(s: &str) -> TurnoutStr {
        if s.is_empty() {
            TurnoutStr { ptr: ptr::null(), len: 0 }
        } else {
            TurnoutStr { ptr: s.as_ptr(), len: s.len() }
        }
    }
}

/// Bytes owned by the caller: text (UTF-8, not NUL-terminated) or binary, as
/// each function says. Free with `turnout_bytes_free`. `{NULL, 0}` is empty
/// and holds nothing to free.
#[repr(C)]
#[derive(Debug)]
pub struct TurnoutBytes {
    /// The first byte (NULL when empty).
    pub ptr: *mut u8,
    /// The length in bytes.
    pub len: usize,
}

impl TurnoutBytes {
    const EMPTY: TurnoutBytes = TurnoutBytes { ptr: ptr::null_mut(), len: 0 };

    fn new(v: Vec<u8>) -> TurnoutBytes {
        if v.is_empty() {
            return TurnoutBytes::EMPTY;
        }
        let b = v.into_boxed_slice();
        let len = b.len();
        TurnoutBytes { ptr: Box::into_raw(b).cast::<u8>(), len }
    }

    fn text(s: String) -> TurnoutBytes {
        TurnoutBytes::new(s.into_bytes())
    }

    /// Releases the bytes.
    ///
    /// # Safety
    /// `self` must come from [`TurnoutBytes::new`] and not have been freed.
    unsafe fn release(self) {
        if !self.ptr.is_null() {
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(self.ptr, self.len)));
        }
    }
}

// ---- argument helpers (every export goes through these) -----------------------

/// A `(ptr, len)` byte argument.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes for the call.
unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// A `(ptr, len)` UTF-8 string argument.
///
/// # Safety
/// As [`bytes_arg`].
unsafe fn str_arg<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<&'a str, Fail> {
    std::str::from_utf8(bytes_arg(ptr, len, what)?).map_err(|e| Fail::utf8(what, &e))
}

/// A handle argument.
///
/// # Safety
/// `p` must be NULL or a live handle of type `T`.
unsafe fn handle<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Fail> {
    p.as_ref().ok_or_else(|| Fail::null(what))
}

/// Clears an out-parameter on entry, so that it holds nothing after a failure.
///
/// # Safety
/// `p` must be NULL or valid for writes.
unsafe fn clear<T>(p: *mut T, empty: T) {
    if !p.is_null() {
        p.write(empty);
    }
}

/// A value written to an out-parameter: what to release when the
/// out-parameter turns out to be NULL (so a caller's mistake leaks nothing).
trait Output {
    /// Releases what the value owns.
    ///
    /// # Safety
    /// The value must not have been handed out.
    unsafe fn discard(self);
}

impl Output for TurnoutBytes {
    unsafe fn discard(self) {
        self.release();
    }
}

impl<T> Output for *mut T {
    unsafe fn discard(self) {
        unbox(self);
    }
}

/// Writes a required out-parameter; a NULL one is an error and the value is released.
///
/// # Safety
/// `p` must be NULL or valid for writes.
unsafe fn put<T: Output>(p: *mut T, v: T, what: &'static str) -> Result<(), Fail> {
    if p.is_null() {
        v.discard();
        return Err(Fail::null(what));
    }
    p.write(v);
    Ok(())
}

/// Writes an optional out-parameter (NULL: the caller does not want it).
///
/// # Safety
/// `p` must be NULL or valid for writes.
unsafe fn put_opt<T>(p: *mut T, v: impl FnOnce() -> T) {
    if !p.is_null() {
        p.write(v());
    }
}

/// Moves a value into a new handle.
fn boxed<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Frees a handle made by [`boxed`]; NULL does nothing.
///
/// # Safety
/// `p` must be NULL or a live handle of type `T`, not used afterwards.
unsafe fn unbox<T>(p: *mut T) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

// ---- exports shared by everything ----------------------------------------------

/// The library's version, e.g. `0.1.0`: a static view, never freed.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn turnout_version() -> TurnoutStr {
    error::guard(TurnoutStr::of(""), || TurnoutStr::of(env!("CARGO_PKG_VERSION")))
}

/// The version of the evaluation contract (docs/spec.md) this library implements.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn turnout_spec_version() -> u32 {
    error::guard(0, || turnout_core::SPEC_VERSION)
}

/// Frees bytes the library returned. `{NULL, 0}` does nothing.
///
/// Thread-safe (each `TurnoutBytes` is freed once, by its owner).
///
/// # Safety
/// `bytes` must have been returned by this library and not freed before.
#[no_mangle]
pub unsafe extern "C" fn turnout_bytes_free(bytes: TurnoutBytes) {
    error::guard((), || bytes.release());
}
