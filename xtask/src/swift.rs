//! `cargo xtask swift`: generate the Swift package (`bindings/swift`); build and test it where a
//! Swift toolchain exists (issue 5).
//!
//! 1. `crate::uniffi::generate("swift", target/uniffi-swift)`: the one release build of
//!    `turnout-ffi` and the generated `turnout_ffi.swift`, `turnout_ffiFFI.h` and module map.
//! 2. The Swift source goes to `Sources/TurnoutFFI/`, the header to `Sources/turnout_ffiFFI/`
//!    (both gitignored), next to the committed `module.modulemap` (which adds the hot-path header
//!    `turnout_fast.h` and `link "turnout_ffi"`). Checked: the generated module map names the
//!    module ours does, and every `turnout_fast_*` of `ffi/src/fast.rs` is declared in
//!    `turnout_fast.h` (and nothing else).
//! 3. With `swift` on PATH: `swift build` and `swift test` in `bindings/swift` (the native library
//!    from `TURNOUT_LIB_DIR` = target/release), then `swift build` of `examples/swift`. Without
//!    one (this machine), it says so and succeeds: the package is generated, not compiled.

use std::path::Path;
use std::process::Command;

use crate::{rel, root, run as exec, step, succeeds};

const MODULE: &str = "turnout_ffiFFI";

/// Runs `cargo xtask swift`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.first() {
        return Err(format!("cargo xtask swift: unknown argument {other}"));
    }
    let package = root().join("bindings/swift");
    let out = root().join("target/uniffi-swift");
    let lib = crate::uniffi::generate("swift", &out)?;

    let modulemap = read(&out.join(format!("{MODULE}.modulemap")))?;
    if !modulemap.contains(&format!("module {MODULE}")) {
        return Err(format!("the generated module map does not declare module {MODULE}:\n{modulemap}"));
    }
    let ffi_swift = package.join("Sources/TurnoutFFI");
    std::fs::create_dir_all(&ffi_swift).map_err(|e| format!("{}: {e}", ffi_swift.display()))?;
    copy(&out.join("turnout_ffi.swift"), &ffi_swift.join("turnout_ffi.swift"))?;
    copy(&out.join(format!("{MODULE}.h")), &package.join(format!("Sources/{MODULE}/{MODULE}.h")))?;
    check_fast_header(&package.join(format!("Sources/{MODULE}/turnout_fast.h")))?;
    step(&format!("Swift package generated in {}", rel(&package)));

    if !succeeds(Command::new("swift").arg("--version")) {
        println!(
            "no Swift toolchain on PATH: generated bindings/swift (sources, header, module map), \
             skipped `swift build` / `swift test`"
        );
        return Ok(());
    }
    let lib_dir = lib.parent().ok_or("library path has no parent")?;
    step("swift build && swift test (bindings/swift)");
    exec(Command::new("swift").arg("build").current_dir(&package).env("TURNOUT_LIB_DIR", lib_dir))?;
    exec(
        Command::new("swift")
            .arg("test")
            .current_dir(&package)
            .env("TURNOUT_LIB_DIR", lib_dir)
            .env("TURNOUT_ROOT", root()),
    )?;
    step("swift build (examples/swift)");
    exec(Command::new("swift").arg("build").current_dir(root().join("examples/swift")).env("TURNOUT_LIB_DIR", lib_dir))
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

/// `turnout_fast.h` declares exactly the `turnout_fast_*` functions of `ffi/src/fast.rs`.
fn check_fast_header(header: &Path) -> Result<(), String> {
    let names = |text: &str, marker: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .match_indices(marker)
            .map(|(i, _)| {
                text[i + marker.len() - "turnout_fast_".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let rust = names(&read(&root().join("ffi/src/fast.rs"))?, "extern \"C\" fn turnout_fast_");
    let c = names(&read(header)?, " turnout_fast_");
    if rust.is_empty() || rust != c {
        return Err(format!("{}: declares {c:?}, ffi/src/fast.rs exports {rust:?}", rel(header)));
    }
    Ok(())
}
