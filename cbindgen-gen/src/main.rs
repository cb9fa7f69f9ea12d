//! `cbindgen-gen FFI_CRATE_DIR HEADER`: generates the C header of the
//! turnout C ABI from `FFI_CRATE_DIR/src/lib.rs` with the settings of
//! `FFI_CRATE_DIR/cbindgen.toml`, and writes it to `HEADER`.
//!
//! Exit status: 0 when the header was already up to date, 2 when it was
//! (re)written, 1 on error. `cargo xtask go` fails on 2, so CI catches a
//! committed header that does not match the code.
//!
//! A binary of the workspace (not a `build.rs` of turnout-ffi, not a
//! `cargo install`) so that the cbindgen version is pinned in Cargo.lock and
//! building the library never depends on it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [crate_dir, header] = args.as_slice() else {
        eprintln!("usage: cbindgen-gen FFI_CRATE_DIR HEADER");
        return ExitCode::FAILURE;
    };
    let crate_dir = PathBuf::from(crate_dir);
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cbindgen-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bindings = match cbindgen::Builder::new().with_config(config).with_src(crate_dir.join("src/lib.rs")).generate()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cbindgen-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if bindings.write_to_file(header) {
        println!("cbindgen-gen: wrote {header}");
        ExitCode::from(2)
    } else {
        println!("cbindgen-gen: {header} is up to date");
        ExitCode::SUCCESS
    }
}
