//! `cargo xtask swift`: generate the Swift package (`bindings/swift`); build and test it where a
//! Swift toolchain exists.
//!
//! 1. `crate::uniffi::generate("swift", target/uniffi-swift)`: the one release build of
//!    `turnout-ffi` and the generated `turnout_ffi.swift`, `turnout_ffiFFI.h` and module map.
//! 2. The Swift source goes to `Sources/TurnoutFFI/`, the header to `Sources/turnout_ffiFFI/`
//!    (both gitignored) with the C ABI's `ffi/include/turnout.h`, next to the committed
//!    `module.modulemap` (which adds the hot-path header `turnout_fast.h`, including `turnout.h`,
//!    and `link "turnout_ffi"`). Checked: the generated module map names the
//!    module ours does, and every `turnout_fast_*` of `ffi/src/fast.rs` is declared in
//!    `turnout_fast.h` (and nothing else).
//! 3. With `swift` on PATH: `swift build` and `swift test` in `bindings/swift`, then `swift build`
//!    of `examples/swift`. On Linux the system-library target `turnout_ffiFFI` finds
//!    the host's static library (`cargo xtask dist`'s build) through `target/swift-pkgconfig/turnout_ffi.pc`
//!    (PKG_CONFIG_PATH); on macOS the binary target needs the XCFramework, built first by
//!    `bindings/swift/scripts/build-xcframework.sh`. Without a Swift toolchain (this machine), it
//!    says so and succeeds: the package is generated, not compiled.

use std::path::Path;
use std::process::Command;

use crate::{rel, root, run as exec, step, succeeds};

const MODULE: &str = "turnout_ffiFFI";

/// Generates the Swift sources and header into the package at `package` (the repository's
/// `bindings/swift`, or the copy `cargo xtask dist` archives); returns the native library.
pub(crate) fn generate(package: &Path) -> Result<std::path::PathBuf, String> {
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
    // The C ABI, whose handles are the fast paths' (included by turnout_fast.h).
    copy(&root().join("ffi/include/turnout.h"), &package.join(format!("Sources/{MODULE}/turnout.h")))?;
    check_fast_header(&package.join(format!("Sources/{MODULE}/turnout_fast.h")))?;
    check_c_module(&package.join(format!("Sources/{MODULE}")))?;
    step(&format!("Swift package generated in {}", rel(package)));
    Ok(lib)
}

/// A pkg-config file for the Linux system-library target: `-L<dir> -lturnout_ffi` and what the
/// static library needs from the C library. `dir` may be `${pcfiledir}` (relative to the file).
pub(crate) fn pkg_config(dir: &str, version: &str) -> String {
    format!(
        "Name: turnout_ffi\nDescription: turnout's native library (UniFFI + C ABI), static\n\
         Version: {version}\nCflags:\nLibs: -L{dir} -lturnout_ffi -lm -ldl -lpthread\n"
    )
}

/// Runs `cargo xtask swift`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.first() {
        return Err(format!("cargo xtask swift: unknown argument {other}"));
    }
    let package = root().join("bindings/swift");
    let lib = generate(&package)?;

    if !succeeds(Command::new("swift").arg("--version")) {
        println!(
            "no Swift toolchain on PATH: generated bindings/swift (sources, header, module map), \
             skipped `swift build` / `swift test`"
        );
        return Ok(());
    }
    // Linux: the system-library target finds the library through pkg-config. macOS: the
    // binary target needs turnout_ffiFFI.xcframework (scripts/build-xcframework.sh) first.
    // The static library alone in its directory (next to the .so, the linker would take the .so).
    let pc_dir = root().join("target/swift-pkgconfig");
    let lib_dir = pc_dir.join("lib");
    std::fs::create_dir_all(&lib_dir).map_err(|e| e.to_string())?;
    copy(&lib.with_file_name("libturnout_ffi.a"), &lib_dir.join("libturnout_ffi.a"))?;
    let version = crate::version::workspace_version()?;
    std::fs::write(pc_dir.join("turnout_ffi.pc"), pkg_config(&lib_dir.to_string_lossy(), &version))
        .map_err(|e| e.to_string())?;
    if cfg!(target_os = "macos") && !package.join("turnout_ffiFFI.xcframework").exists() {
        step("bindings/swift/scripts/build-xcframework.sh (the binary target on macOS)");
        exec(&mut Command::new(package.join("scripts/build-xcframework.sh")))?;
    }
    let swift = |dir: &Path, args: &[&str]| {
        let mut c = Command::new("swift");
        c.args(args).current_dir(dir).env("PKG_CONFIG_PATH", &pc_dir).env("TURNOUT_ROOT", root());
        c
    };
    step("swift build && swift test (bindings/swift)");
    exec(&mut swift(&package, &["build"]))?;
    exec(&mut swift(&package, &["test"]))?;
    step("swift build (examples/swift)");
    exec(&mut swift(&root().join("examples/swift"), &["build"]))
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

/// The C module's headers parse as C11 (what Swift's clang importer reads; without a Swift
/// toolchain, the one check of them here). Clang's nullability qualifiers (`_Nonnull`,
/// `_Nullable`) are defined away for gcc. This caught a parameter named `default`, a C keyword.
pub(crate) fn check_c_module(dir: &Path) -> Result<(), String> {
    let probe = root().join("target/swift-header-check.c");
    std::fs::write(&probe, format!("#include \"{MODULE}.h\"\n#include \"turnout_fast.h\"\n"))
        .map_err(|e| e.to_string())?;
    exec(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Werror", "-fsyntax-only", "-D_Nonnull=", "-D_Nullable=", "-I"])
            .arg(dir)
            .arg(&probe),
    )
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
