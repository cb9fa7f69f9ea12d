//! `uniffi-bindgen`, pinned to the same uniffi version as `turnout-ffi`, so
//! the generated Kotlin/Swift/Python always match the library's scaffolding.
//! Run in library mode: `uniffi-bindgen generate --library <libturnout_ffi.so>
//! --language kotlin --out-dir <dir> --no-format`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
