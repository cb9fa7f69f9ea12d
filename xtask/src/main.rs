//! `cargo xtask`: the one place that orchestrates builds, tests and demos.
//!
//! - `demo`: build every platform and check that all take the same 10,000 decisions (`demo.rs`).
//! - `test`: everything CI runs (fmt, clippy, tests, vectors, anchors, bindings, fuzz, the demo's
//!   identity check, the conformance matrix).
//! - `vectors [--check]`: regenerate (or check) the conformance vectors.
//! - `conformance [--run]`: the platform x vector file matrix (`conformance.rs`).
//! - `bench`: every platform's benchmark of the shared scenario; regenerates the matrix in
//!   docs/benchmarks.md (`benchmatrix.rs`).
//! - `fuzz [SECONDS]`: run each cargo-fuzz target for SECONDS (default 30).
//! - `wasm`, `kotlin`, `python`, `swift`, `go`: build and test one binding
//!   (one module each; `test` runs them all).
//! - `dist [--test] [--only a,b]`: every package as a release artifact in `target/dist/` with
//!   `MANIFEST.json`, and the consumer tests that install each one outside the repository (`dist/`).
//! - `version [--set X.Y.Z]`: check (or set) the one version of every package (`version.rs`).

mod benchmatrix;
mod conformance;
mod contexts;
mod demo;
mod dist;
mod go;
mod kotlin;
mod python;
mod swift;
mod sync_vectors;
mod uniffi;
mod vectors;
mod version;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn main() -> ExitCode {
    START.get_or_init(Instant::now);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args[args.len().min(1)..];
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(rest),
        Some("test") => test(),
        Some("vectors") => vectors::run(&root(), rest.iter().any(|a| a == "--check")),
        Some("conformance") => conformance::run(rest),
        Some("bench") => benchmatrix::run(rest),
        Some("fuzz") => fuzz(rest.first().and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("wasm") => wasm::run(rest),
        Some("kotlin") => kotlin::run(rest),
        Some("python") => python::run(rest),
        Some("swift") => swift::run(rest),
        Some("go") => go::run(rest),
        Some("dist") => dist::run(rest),
        Some("version") => version::run(rest),
        _ => Err("usage: cargo xtask <demo | test | vectors [--check] | conformance [--run] | bench [--quick] | fuzz [SECONDS] \
                  | wasm | kotlin | python | swift | go | dist [--test] [--only a,b] | version [--set X.Y.Z]>"
            .to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// When this xtask process started (step lines show the time since, for CI budgeting).
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn step(name: &str) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs();
    println!("\n==> [{:02}:{:02}] {name}", t / 60, t % 60);
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// `cargo` of the nightly toolchain (through rustup, since `$CARGO` is stable's).
fn nightly_cargo() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"]).current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn ensure_rust_components() -> Result<(), String> {
    if !succeeds(cargo().args(["fmt", "--version"])) || !succeeds(cargo().args(["clippy", "--version"])) {
        step("installing rustfmt and clippy");
        run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    ensure_rust_components()?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("one version for every package (cargo xtask version)");
    version::check()?;
    step("cargo clippy (warnings denied)");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    // cbindgen-gen has no tests and heavy dependencies: it is built by the step that runs it.
    // (turnout-ffi's uniffi-bindgen binary is built here, in the dev profile the bindings reuse.)
    step("cargo test --workspace (except the header generator)");
    run(cargo().args(["test", "--workspace", "--exclude", "cbindgen-gen"]))?;
    step("conformance vectors are up to date");
    vectors::run(&root(), true)?;
    step("spec anchors (independent Python reference)");
    anchors()?;
    go::run(&[])?;
    python::run(&[])?;
    kotlin::run(&[])?;
    swift::run(&[])?;
    wasm::run(&[])?;
    step("release artifacts and their consumer tests (cargo xtask dist --test, reusing the builds above)");
    dist::run(&["--test".to_string(), "--reuse-builds".to_string()])?;
    let secs = std::env::var("TURNOUT_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    fuzz(secs)?;
    step("cross-language identity check (cargo xtask demo --prebuilt)");
    demo::run(&["--prebuilt".to_string()])?;
    step("conformance matrix (results written by this run only)");
    conformance::check(Some(started))?;
    println!("\nxtask test: all steps passed in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// A Python virtualenv under target/ with the anchor script's dependencies.
fn python_env() -> Result<PathBuf, String> {
    let venv = root().join("target/py-venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    if !succeeds(Command::new(&py).args(["-c", "import xxhash, jsonschema"])) {
        run(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "xxhash",
            "jsonschema",
        ]))?;
    }
    Ok(py)
}

fn anchors() -> Result<(), String> {
    let py = python_env()?;
    run(Command::new(&py).arg(root().join("tests/anchors/spec_examples.py")).arg("--check"))?;
    let reference = root().join("tests/anchors/reference.py");
    run(Command::new(&py).arg(&reference))?;
    run(Command::new(&py).arg(&reference).arg("--self-test"))?;
    Ok(())
}

fn fuzz(seconds: u64) -> Result<(), String> {
    let targets = ["config_loader", "facets", "batch_decoder"];
    let mut nightly = succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]));
    if !nightly {
        step("installing the nightly toolchain for cargo-fuzz");
        nightly = succeeds(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]));
    }
    let mut cargo_fuzz = nightly && succeeds(nightly_cargo().args(["fuzz", "--version"]));
    if nightly && !cargo_fuzz {
        step("installing cargo-fuzz");
        cargo_fuzz = succeeds(cargo().args(["install", "cargo-fuzz", "--locked"]));
    }
    if !cargo_fuzz {
        step("nightly or cargo-fuzz unavailable: proptest fuzz of the same entry points, 100,000 cases");
        return run(cargo().env("TURNOUT_FUZZ_CASES", "100000").args([
            "test",
            "--release",
            "-p",
            "turnout-core",
            "--test",
            "fuzz_fallback",
        ]));
    }
    for t in targets {
        step(&format!("cargo +nightly fuzz run {t} ({seconds} s)"));
        let corpus = root().join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let mut c = nightly_cargo();
        c.args(["fuzz", "run", t]).arg(&corpus).arg(root().join("fuzz/seeds").join(t)).arg("--");
        c.arg(format!("-max_total_time={seconds}"));
        if t == "config_loader" {
            c.arg(format!("-dict={}", root().join("fuzz/config.dict").display()));
        }
        run(&mut c)?;
    }
    Ok(())
}
