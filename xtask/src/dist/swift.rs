//! The Swift package as a release archive: `swift/turnout-swift-<v>.tar.gz`.
//!
//! It holds the package of `bindings/swift` (no `unsafeFlags`) with its generated sources
//! (`Sources/TurnoutFFI/turnout_ffi.swift`, `Sources/turnout_ffiFFI/turnout_ffiFFI.h`), and for
//! Linux the static library per architecture with a pkg-config file
//! (`linux/<arch>/libturnout_ffi.a`, `linux/<arch>/turnout_ffi.pc`, found through
//! `PKG_CONFIG_PATH` by the system-library target). The Apple XCFramework needs Xcode:
//! `bindings/swift/scripts/build-xcframework.sh` builds it on macOS; it is not built here.
//!
//! What the consumer test can check without a Swift toolchain: the archive's layout, that the
//! manifest has no unsafe flags, and that a C program compiled against the package's C module
//! headers and linked through its pkg-config file takes real decisions with the library
//! (the same symbols the generated Swift calls). With `swift` on PATH it also runs `swift build`.

use std::process::Command;

use serde_json::{json, Value};

use super::native::{self, TARGETS};
use super::{consumer_command, copy_into, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{root, run as exec, step, succeeds};

fn archive_name(version: &str) -> String {
    format!("turnout-swift-{version}")
}

/// Stages the package with its generated sources and Linux libraries, and archives it.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    let name = archive_name(&d.version);
    let stage = root().join("target/dist-stage").join(&name);
    fresh_dir(&stage)?;
    // The package's own files, as git sees them (committed or new, never ignored build output).
    let files = output(
        Command::new("git")
            .args(["ls-files", "--cached", "--others", "--exclude-standard", "bindings/swift"])
            .current_dir(root()),
    )?;
    for f in files.lines().filter(|f| !f.is_empty()) {
        let from = root().join(f);
        if !from.is_file() {
            continue; // deleted in the work tree
        }
        let to = stage.join(f.trim_start_matches("bindings/swift/"));
        std::fs::create_dir_all(to.parent().ok_or("no parent")?).map_err(|e| e.to_string())?;
        std::fs::copy(&from, &to).map_err(|e| format!("{f}: {e}"))?;
    }
    copy_into(&root().join("LICENSE"), &stage)?;
    crate::swift::generate(&stage)?;
    let mut archs = Vec::new();
    for t in TARGETS.iter().filter(|t| t.linux) {
        let libs = native::build(t)?;
        let arch = t.triple.split('-').next().unwrap_or_default();
        let dir = stage.join("linux").join(arch);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        copy_into(&libs.staticlib, &dir)?;
        std::fs::write(dir.join("turnout_ffi.pc"), crate::swift::pkg_config("${pcfiledir}", &d.version))
            .map_err(|e| e.to_string())?;
        archs.push(arch.to_string());
    }
    let out = d.path("swift");
    fresh_dir(&out)?;
    let file = format!("swift/{name}.tar.gz");
    exec(
        Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-czf"])
            .arg(d.path(&file))
            .arg("-C")
            .arg(stage.parent().ok_or("no parent")?)
            .arg(&name),
    )?;
    Ok(json!({
        "package": "Turnout",
        "file": file,
        "linux": archs,
        "apple": "turnout_ffiFFI.xcframework: bindings/swift/scripts/build-xcframework.sh on macOS (not built here)",
    }))
}

/// A C program over the package's C module: the same UniFFI symbols the generated Swift calls.
/// It creates a client from config.json and takes one decision per line of contexts.jsonl with
/// `turnout_fast_get_variable_json`, printing the value it finds in the serialised decision.
const SMOKE_C: &str = include_str!("swift_smoke.c");

/// Unpacks the archive outside the repository and checks what can be checked without Swift.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let scratch = Scratch::new("swift")?;
    let file = entry.get("file").and_then(Value::as_str).ok_or("swift entry: no file")?;
    let archive = copy_into(&d.path(file), &scratch.0)?;
    exec(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&scratch.0))?;
    let pkg = scratch.0.join(archive_name(&d.version));
    for f in [
        "Package.swift",
        "Sources/TurnoutFFI/turnout_ffi.swift",
        "Sources/turnout_ffiFFI/turnout_ffiFFI.h",
        "Sources/turnout_ffiFFI/turnout_fast.h",
        "Sources/turnout_ffiFFI/turnout.h",
        "Sources/turnout_ffiFFI/module.modulemap",
        "Sources/Turnout/Client.swift",
        "scripts/build-xcframework.sh",
        "linux/x86_64/libturnout_ffi.a",
        "linux/x86_64/turnout_ffi.pc",
        "linux/aarch64/libturnout_ffi.a",
        "linux/aarch64/turnout_ffi.pc",
    ] {
        if !pkg.join(f).is_file() {
            return Err(format!("the Swift archive lacks {f}"));
        }
    }
    let manifest = std::fs::read_to_string(pkg.join("Package.swift")).map_err(|e| e.to_string())?;
    if manifest.contains(".unsafeFlags(") {
        return Err("Package.swift uses unsafeFlags, which SwiftPM refuses in a dependency".into());
    }
    let client_swift = std::fs::read_to_string(pkg.join("Sources/Turnout/Client.swift")).map_err(|e| e.to_string())?;
    if !client_swift.contains(&format!("public static let version = \"{}\"", d.version)) {
        return Err(format!("Sources/Turnout/Client.swift does not carry version {}", d.version));
    }

    step("swift: a C program over the package's C module, linked through linux/x86_64/turnout_ffi.pc");
    r.write_inputs(&scratch.0)?;
    std::fs::write(scratch.0.join("smoke.c"), SMOKE_C).map_err(|e| e.to_string())?;
    let arch = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };
    let pc_path = pkg.join("linux").join(arch);
    if !succeeds(Command::new("pkg-config").arg("--version")) {
        step("apt-get install pkg-config");
        let _ = succeeds(Command::new("apt-get").args(["update", "-qq"]));
        exec(Command::new("apt-get").args(["install", "-y", "-qq", "pkg-config"]))?;
    }
    let libs = output(
        consumer_command("pkg-config", &scratch.0).env("PKG_CONFIG_PATH", &pc_path).args(["--libs", "turnout_ffi"]),
    )?;
    let mut cc = consumer_command("cc", &scratch.0);
    // Clang's nullability qualifiers in UniFFI's header, defined away for gcc.
    cc.args(["-std=c11", "-Wall", "-Werror", "-O1", "-D_Nonnull=", "-D_Nullable=", "-o", "smoke", "smoke.c", "-I"])
        .arg(pkg.join("Sources/turnout_ffiFFI"));
    cc.args(libs.split_whitespace());
    exec(&mut cc)?;
    let out = output(consumer_command(scratch.0.join("smoke"), &scratch.0).args([VARIABLE, &d.version]))?;
    r.check("swift package C module (Linux static library via pkg-config)", &out)?;

    if succeeds(Command::new("swift").arg("--version")) {
        step("swift build (the unpacked package)");
        exec(consumer_command("swift", &pkg).arg("build").env("PKG_CONFIG_PATH", &pc_path))?;
    } else {
        println!("no Swift toolchain here: `swift build` of the package is not run (see docs/distribution.md)");
    }
    Ok(())
}
