//! Shared by `cargo xtask kotlin | python | swift | go`: builds the native library
//! once (`cargo build --release -p turnout-ffi --lib --no-default-features`) and runs
//! the version-pinned `uniffi-bindgen` (the `turnout-ffi` crate's own binary, built in the
//! dev profile that `cargo test --workspace` builds anyway) in library mode.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root, run, step};

/// The release target of this machine among the artifacts' targets (Linux x86_64 or aarch64):
/// on those hosts every binding's tests use the very library the release artifacts ship.
fn host_target() -> Option<&'static crate::dist::native::Target> {
    let arch = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };
    crate::dist::native::TARGETS.iter().find(|t| cfg!(target_os = "linux") && t.linux && t.triple.starts_with(arch))
}

/// The directory of the native library built by [`build_library`].
fn library_dir() -> PathBuf {
    match host_target() {
        Some(t) => crate::dist::native::output_dir(t.triple),
        None => root().join("target/release"),
    }
}

/// The shared library built by [`build_library`] (`.so` on Linux, `.dylib` on macOS).
pub(crate) fn library_path() -> PathBuf {
    let name = if cfg!(target_os = "macos") { "libturnout_ffi.dylib" } else { "libturnout_ffi.so" };
    library_dir().join(name)
}

/// The static library built by [`build_library`] (what Go links).
pub(crate) fn static_library_path() -> PathBuf {
    library_dir().join("libturnout_ffi.a")
}

/// Builds `turnout-ffi` (cdylib + staticlib), release, without the generator's dependencies.
/// On Linux x86_64/aarch64 this is the release artifacts' build (zig, glibc 2.17, debug info
/// stripped: `dist::native`), so tests and artifacts share one library; elsewhere a plain
/// `cargo build --release`. Cargo makes the second call of a session a no-op.
pub(crate) fn build_library() -> Result<PathBuf, String> {
    match host_target() {
        Some(t) => {
            crate::dist::native::build(t)?;
        }
        None => {
            step("cargo build --release -p turnout-ffi --lib --no-default-features");
            run(cargo().args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "turnout-ffi",
                "--lib",
                "--no-default-features",
            ]))?;
        }
    }
    Ok(library_path())
}

/// Builds the pinned `uniffi-bindgen` (dev profile) and returns its path.
pub(crate) fn build_bindgen() -> Result<PathBuf, String> {
    step("cargo build -p turnout-ffi --bin uniffi-bindgen");
    run(cargo().args(["build", "--quiet", "-p", "turnout-ffi", "--bin", "uniffi-bindgen"]))?;
    Ok(root().join("target/debug/uniffi-bindgen"))
}

/// Generates the bindings for `language` (`kotlin`, `python` or `swift`) into
/// `out_dir` (emptied first: generated code is never committed) and returns
/// the library they load.
pub(crate) fn generate(language: &str, out_dir: &Path) -> Result<PathBuf, String> {
    let lib = build_library()?;
    let bindgen = build_bindgen()?;
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    }
    step(&format!("uniffi-bindgen generate --language {language} -> {}", crate::rel(out_dir)));
    run(Command::new(bindgen)
        .args(["generate", "--library"])
        .arg(&lib)
        .args(["--language", language, "--no-format", "--out-dir"])
        .arg(out_dir))?;
    Ok(lib)
}
