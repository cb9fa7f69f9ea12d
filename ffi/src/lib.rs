//! # turnout-ffi
//!
//! The native library every non-Rust, non-WASM host links: thin shells over
//! [`turnout_core`], with no logic of their own.
//!
//! - [`uniffi_api`]: the UniFFI exports (proc-macros, library mode) from which
//!   the Kotlin, Swift and Python bindings are generated (`bindings/`).
//! - [`capi`]: the C ABI (`turnout_*` symbols, `include/turnout.h` generated
//!   by cbindgen) that the Go package wraps with cgo.
//! - [`uniffi_sync`]: the host protocol's state machine through UniFFI.
//! - [`fast`]: the hot typed getters over UniFFI handles as plain C functions,
//!   for facades whose generated call path costs more than the decision.
//! - [`jni`]: the JNI fast path of the Kotlin facade.
//!
//! All are built into one `cdylib`/`staticlib` by
//! `cargo build --release -p turnout-ffi`.

uniffi::setup_scaffolding!();

pub mod capi;
pub mod fast;
pub mod jni;
pub mod uniffi_api;
pub mod uniffi_sync;
