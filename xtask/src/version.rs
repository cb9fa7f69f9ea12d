//! `cargo xtask version [--set X.Y.Z]`: the one version of every package.
//!
//! The version is set in one place, `[workspace.package] version` of the root `Cargo.toml`
//! (the crates, the native library's `turnout_version()`, the Python package through maturin,
//! and `turnout --version` take it from there). The few files a package manager needs a literal
//! in are listed in [`LITERALS`]; `cargo xtask version --set X.Y.Z` rewrites all of them, and
//! `cargo xtask version` (a step of `cargo xtask test`) fails when one of them disagrees. The
//! consumer tests of `cargo xtask dist --test` then check the version each installed artifact
//! reports at run time.

use std::path::Path;

use crate::root;

/// A file holding the version as a literal: the line that contains `before` has the version
/// right after it, up to `after`.
struct Literal {
    file: &'static str,
    before: &'static str,
    after: &'static str,
}

/// Every literal copy of the version outside `Cargo.toml`.
const LITERALS: &[Literal] = &[
    Literal { file: "Cargo.toml", before: "turnout-core = { path = \"core\", version = \"", after: "\"" },
    Literal { file: "wasm/js/package.json", before: "\"version\": \"", after: "\"" },
    Literal { file: "wasm/js/src/index.js", before: "export const VERSION = '", after: "'" },
    Literal { file: "bindings/kotlin/pom.xml", before: "<version>", after: "</version><!-- turnout.version -->" },
    Literal {
        file: "bindings/kotlin/src/main/kotlin/dev/turnout/ClientOptions.kt",
        before: "const val SDK_VERSION = \"",
        after: "\"",
    },
    Literal { file: "bindings/go/types.go", before: "const Version = \"", after: "\"" },
    Literal {
        file: "bindings/swift/Sources/Turnout/Client.swift",
        before: "public static let version = \"",
        after: "\"",
    },
];

/// The workspace version (`[workspace.package] version` of the root `Cargo.toml`).
pub(crate) fn workspace_version() -> Result<String, String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).map_err(|e| format!("Cargo.toml: {e}"))?;
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == "[workspace.package]";
        } else if in_section {
            if let Some(v) = t.strip_prefix("version").map(str::trim).and_then(|r| r.strip_prefix('=')) {
                return Ok(v.trim().trim_matches('"').to_string());
            }
        }
    }
    Err("Cargo.toml: no version in [workspace.package]".into())
}

/// Where `lit` puts the version in `text`: the byte range of the first match.
fn find(text: &str, lit: &Literal) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(i) = line.find(lit.before) {
            let start = i + lit.before.len();
            if let Some(len) = line[start..].find(lit.after) {
                return Some(offset + start..offset + start + len);
            }
        }
        offset += line.len();
    }
    None
}

/// Runs `cargo xtask version [--set X.Y.Z]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    match args {
        [] => check(),
        [flag, v] if flag == "--set" => set(v),
        _ => Err("usage: cargo xtask version [--set X.Y.Z]".into()),
    }
}

/// Fails unless every literal equals the workspace version.
pub(crate) fn check() -> Result<(), String> {
    let want = workspace_version()?;
    let mut wrong = Vec::new();
    for lit in LITERALS {
        let text = read(lit.file)?;
        match find(&text, lit) {
            Some(r) if text[r.clone()] == want => {}
            Some(r) => wrong.push(format!("{}: {} (Cargo.toml: {want})", lit.file, &text[r])),
            None => wrong.push(format!("{}: no `{}...{}`", lit.file, lit.before, lit.after)),
        }
    }
    if wrong.is_empty() {
        println!("version {want}: Cargo.toml and {} package files agree", LITERALS.len());
        Ok(())
    } else {
        Err(format!("versions disagree (fix with `cargo xtask version --set {want}`):\n  {}", wrong.join("\n  ")))
    }
}

fn set(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("--set {v}: expected MAJOR.MINOR.PATCH"));
    }
    let cargo = read("Cargo.toml")?;
    let old = workspace_version()?;
    let needle = format!("version = \"{old}\"");
    let at = cargo.find("[workspace.package]").and_then(|s| cargo[s..].find(&needle).map(|i| s + i));
    let at = at.ok_or("Cargo.toml: cannot find the workspace version line")?;
    write("Cargo.toml", &format!("{}version = \"{v}\"{}", &cargo[..at], &cargo[at + needle.len()..]))?;
    for lit in LITERALS {
        let text = read(lit.file)?;
        let r = find(&text, lit).ok_or_else(|| format!("{}: no `{}...{}`", lit.file, lit.before, lit.after))?;
        write(lit.file, &format!("{}{v}{}", &text[..r.start], &text[r.end..]))?;
    }
    println!("version {old} -> {v} in Cargo.toml and {} package files", LITERALS.len());
    Ok(())
}

fn read(file: &str) -> Result<String, String> {
    std::fs::read_to_string(root().join(file)).map_err(|e| format!("{file}: {e}"))
}

fn write(file: &str, text: &str) -> Result<(), String> {
    std::fs::write(Path::new(&root()).join(file), text).map_err(|e| format!("{file}: {e}"))
}
