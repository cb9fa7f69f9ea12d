//! `uniffi-bindgen`, pinned to the uniffi version `turnout-ffi` is built with, so the generated
//! Kotlin, Swift and Python always match the library's scaffolding. It lives in this crate (behind
//! the default feature `bindgen-cli`) so that maturin finds it in the Python sdist too
//! (`cargo run --bin uniffi-bindgen`). Library mode:
//! `uniffi-bindgen generate --library <libturnout_ffi.so> --language kotlin --out-dir <dir> --no-format`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
