//! `cargo xtask`: the one place that orchestrates builds, tests and demos.
//!
//! - `demo`: build the CLI and take real decisions on the example config.
//! - `test`: everything CI runs (fmt, clippy, tests, vectors, anchors, fuzz).
//! - `vectors [--check]`: regenerate (or check) the conformance vectors.
//! - `bench`: run the criterion benchmarks.
//! - `fuzz [SECONDS]`: run each cargo-fuzz target for SECONDS (default 30).
//! - `wasm`, `kotlin`, `python`, `swift`, `go`: build and test one binding
//!   (one module each; `test` runs them all).

mod go;
mod kotlin;
mod python;
mod swift;
mod uniffi;
mod vectors;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args[args.len().min(1)..];
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("vectors") => vectors::run(&root(), rest.iter().any(|a| a == "--check")),
        Some("bench") => bench(rest),
        Some("fuzz") => fuzz(rest.first().and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("wasm") => wasm::run(rest),
        Some("kotlin") => kotlin::run(rest),
        Some("python") => python::run(rest),
        Some("swift") => swift::run(rest),
        Some("go") => go::run(rest),
        _ => Err("usage: cargo xtask <demo | test | vectors [--check] | bench [criterion args] | fuzz [SECONDS] \
                  | wasm | kotlin | python | swift | go>"
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

fn step(name: &str) {
    println!("\n==> {name}");
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

fn demo() -> Result<(), String> {
    let t0 = Instant::now();
    step("building the turnout CLI (release)");
    run(cargo().args(["build", "--release", "--quiet", "--bin", "turnout"]))?;
    let bin = root().join("target/release/turnout");
    let config = root().join("examples/configs/example.json");
    let contexts = root().join("examples/contexts.jsonl");
    step(&format!("turnout validate {}", rel(&config)));
    run(Command::new(&bin).arg("validate").arg(&config))?;
    step(&format!("turnout eval --config {} --contexts {}", rel(&config), rel(&contexts)));
    let out = Command::new(&bin)
        .args(["eval", "--now-ms", "1763800000000", "--config"])
        .arg(&config)
        .arg("--contexts")
        .arg(&contexts)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("turnout eval failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let inputs = std::fs::read_to_string(&contexts).map_err(|e| e.to_string())?;
    println!("{:<24} {:<44} {:<10} {:<11} {:<16} detail", "variable", "facets", "value", "source", "reason");
    println!("{}", "-".repeat(124));
    for (input, line) in
        inputs.lines().filter(|l| !l.trim().is_empty()).zip(String::from_utf8_lossy(&out.stdout).lines())
    {
        let i: serde_json::Value = serde_json::from_str(input).map_err(|e| e.to_string())?;
        let d: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let detail = match (&d["experiment"], &d["rule"]) {
            (serde_json::Value::String(e), _) => format!("{e} choice {}", d["choice"]),
            (_, serde_json::Value::Number(r)) => format!("rule {r}"),
            _ => d["errorCode"].as_str().unwrap_or("").to_string(),
        };
        println!(
            "{:<24} {:<44} {:<10} {:<11} {:<16} {detail}",
            d["variable"].as_str().unwrap_or(""),
            i["facets"].to_string(),
            d["value"].to_string(),
            d["source"].as_str().unwrap_or(""),
            d["reason"].as_str().unwrap_or("")
        );
    }
    step("why? turnout eval --explain (Jakarta passenger 7)");
    run(Command::new(&bin).args(["eval", "--config"]).arg(&config).args([
        "--variable",
        "automatedMessageDelay",
        "--facet",
        "city=10",
        "--facet",
        "pax=7",
        "--explain",
    ]))?;
    println!("\ndemo finished in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
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
    ensure_rust_components()?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy (warnings denied)");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    step("cargo test --workspace");
    run(cargo().args(["test", "--workspace"]))?;
    step("conformance vectors are up to date");
    vectors::run(&root(), true)?;
    step("spec anchors (independent Python reference)");
    anchors()?;
    go::run(&[])?;
    python::run(&[])?;
    swift::run(&[])?;
    wasm::run(&[])?;
    let secs = std::env::var("TURNOUT_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    fuzz(secs)?;
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

fn bench(args: &[String]) -> Result<(), String> {
    step("cargo bench -p turnout-core");
    let mut c = cargo();
    c.args(["bench", "-p", "turnout-core", "--bench", "engine", "--"]);
    if args.is_empty() {
        c.args(["--warm-up-time", "1", "--measurement-time", "3"]);
    } else {
        c.args(args);
    }
    run(&mut c)
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
