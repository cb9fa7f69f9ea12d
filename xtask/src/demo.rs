//! `cargo xtask demo`: the cross-language identity check, the README's first command.
//!
//! 1. Builds the engine and every binding, installing what is missing, through each language's own
//!    xtask module (`wasm`, `python`, `kotlin`, `uniffi`), plus the Rust runner and CLI
//!    (`examples/rust`, `cli`) and the Go runner (`go build ./cmd/turnout-runner` in `bindings/go`).
//! 2. Generates 10,000 contexts (fixed seed, [`crate::contexts`]) over `examples/configs/example.json`
//!    into `target/demo/CONTEXTS.jsonl`.
//! 3. Takes the reference decisions with `turnout eval` (the Rust CLI's one-shot path), then runs
//!    every platform's demo runner (the contract of tests/bench/README.md) on the same contexts with
//!    the same fixed clock: Rust (prepared path), Node (WebAssembly), Python, Kotlin/JVM, Go.
//! 4. Compares every platform's DECISIONS.jsonl with the reference as JSON values (numbers by
//!    value), and prints one table: platform, decisions, identical to Rust, median ns per decision on
//!    the prepared path (from each runner's TIMING.json). Exits non-zero if any platform differs,
//!    fails, or has no runner.
//!
//! `--prebuilt` skips the binding builds (`cargo xtask test` runs the language steps first, which
//! build them); the Rust and Go runners are still built (cargo and go make that a no-op when fresh).
//! `--contexts N`, `--seed S` and `--only rust,go,...` change the run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{cargo, rel, root, run as exec, step};

/// The runners' fixed clock (`--now-ms`): 2025-11-22T08:26:40Z.
pub(crate) const NOW_MS: i64 = 1_763_800_000_000;
const DEFAULT_CONTEXTS: usize = 10_000;
const DEFAULT_SEED: u64 = 20_261_122;
/// A runner that takes longer than this is stopped and reported as failed.
const RUNNER_TIMEOUT: Duration = Duration::from_secs(300);

/// One platform of the identity check.
struct Platform {
    /// Key used in `--only`, directory names and TIMING.json.
    key: &'static str,
    /// Shown in the table.
    label: &'static str,
    /// Builds the binding and its runner (skipped with `--prebuilt` unless `always_build`, which
    /// then gets `true`).
    build: fn(bool) -> Result<(), String>,
    /// Whether `build` runs even with `--prebuilt` (cheap, incremental builds).
    always_build: bool,
    /// The runner command, arguments of the contract to be appended; `Err` = not built.
    runner: fn() -> Result<Command, String>,
}

fn platforms() -> Vec<Platform> {
    vec![
        Platform { key: "rust", label: "Rust", build: build_rust, always_build: true, runner: rust_runner },
        Platform { key: "node", label: "Node (WASM)", build: build_node, always_build: false, runner: node_runner },
        Platform { key: "python", label: "Python", build: build_python, always_build: false, runner: python_runner },
        Platform {
            key: "kotlin",
            label: "Kotlin/JVM",
            build: build_kotlin,
            always_build: false,
            runner: kotlin_runner,
        },
        Platform { key: "go", label: "Go", build: build_go, always_build: true, runner: go_runner },
    ]
}

// ---- builds: each language's own xtask entry point ---------------------------------------------

fn build_rust(_prebuilt: bool) -> Result<(), String> {
    exec(cargo().args(["build", "--release", "--quiet", "-p", "turnout-cli", "-p", "turnout-example"]))
}

fn build_node(_prebuilt: bool) -> Result<(), String> {
    crate::wasm::run(&["build".to_string()])
}

fn build_python(_prebuilt: bool) -> Result<(), String> {
    crate::python::build().map(|_| ())
}

/// A missing or stale Kotlin runner is built by `kotlin::build()` (compile only, no tests: it
/// compiles the runner and writes the classpath).
fn build_kotlin(_prebuilt: bool) -> Result<(), String> {
    let class = root().join("bindings/kotlin/target/test-classes/dev/turnout/tools/Runner.class");
    let sources = ["bindings/kotlin/src", "bindings/kotlin/pom.xml", "examples/kotlin", "ffi/src", "core/src"];
    let fresh = kotlin_runner().is_ok()
        && modified(&class).is_some_and(|built| sources.iter().all(|s| newest(&root().join(s)) <= Some(built)));
    if fresh {
        println!("    bindings/kotlin is built and newer than its sources: reused");
        return Ok(());
    }
    crate::kotlin::build()
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file or of any file under a directory.
fn newest(p: &Path) -> Option<std::time::SystemTime> {
    if p.is_file() {
        return modified(p);
    }
    std::fs::read_dir(p).ok()?.flatten().filter_map(|e| newest(&e.path())).max()
}

fn go_runner_path() -> PathBuf {
    root().join("target/demo/bin/turnout-runner-go")
}

/// The Go runner is the Go package's own command (`bindings/go/cmd/turnout-runner`), built here with `go build` against
/// THE native library build (`crate::uniffi::build_library`, also used by Kotlin and Python;
/// with `--prebuilt` the language steps built it).
fn build_go(prebuilt: bool) -> Result<(), String> {
    if !prebuilt || !crate::uniffi::static_library_path().exists() {
        crate::uniffi::build_library()?;
    }
    crate::go::place_host_library()?;
    let out = go_runner_path();
    exec(
        Command::new("go")
            .current_dir(root().join("bindings/go"))
            .env("CGO_ENABLED", "1")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/turnout-runner"),
    )
}

// ---- runners ----------------------------------------------------------------------------------

fn rust_runner() -> Result<Command, String> {
    existing(root().join("target/release/turnout-runner")).map(Command::new)
}

fn node_runner() -> Result<Command, String> {
    existing(root().join("wasm/pkg/node.js"))?;
    let script = existing(root().join("wasm/js/runner.mjs"))?;
    let mut c = Command::new("node");
    c.arg(script);
    Ok(c)
}

fn python_runner() -> Result<Command, String> {
    existing(root().join("target/py-venv-bindings/bin/python"))?;
    existing(root().join("bindings/python/src/turnout/runner.py"))?;
    Ok(crate::python::runner_command())
}

fn kotlin_runner() -> Result<Command, String> {
    crate::kotlin::runner_command()
}

fn go_runner() -> Result<Command, String> {
    existing(go_runner_path()).map(Command::new)
}

fn existing(p: PathBuf) -> Result<PathBuf, String> {
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{} is missing", rel(&p)))
    }
}

// ---- the run ----------------------------------------------------------------------------------

struct Options {
    prebuilt: bool,
    contexts: usize,
    seed: u64,
    only: Option<Vec<String>>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { prebuilt: false, contexts: DEFAULT_CONTEXTS, seed: DEFAULT_SEED, only: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--prebuilt" => o.prebuilt = true,
            "--contexts" => o.contexts = value(a)?.parse().map_err(|e| format!("--contexts: {e}"))?,
            "--seed" => o.seed = value(a)?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--only" => o.only = Some(value(a)?.split(',').map(|s| s.trim().to_string()).collect()),
            other => {
                return Err(format!(
                    "cargo xtask demo: unknown argument {other} \
                     (use --prebuilt, --contexts N, --seed S, --only rust,node,python,kotlin,go)"
                ))
            }
        }
    }
    Ok(o)
}

/// What happened to one platform.
enum Outcome {
    /// The runner is not there (or its build failed).
    NotBuilt(String),
    /// The runner failed or wrote something unreadable.
    Failed(String),
    /// It ran: its decisions compared with the reference.
    Ran { decisions: usize, differences: Vec<String>, ns: Option<f64> },
}

/// Runs `cargo xtask demo [--prebuilt] [--contexts N] [--seed S] [--only LIST]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let t0 = Instant::now();
    let o = parse(args)?;
    let mut plats = platforms();
    if let Some(only) = &o.only {
        if let Some(bad) = only.iter().find(|k| !plats.iter().any(|p| p.key == k.as_str())) {
            return Err(format!("--only: unknown platform {bad}"));
        }
        plats.retain(|p| only.iter().any(|k| k == p.key));
    }

    // 1. Builds.
    let mut build_errors: Vec<(&str, String)> = Vec::new();
    let count = plats.iter().filter(|p| p.always_build || !o.prebuilt).count();
    let mut i = 0;
    for p in &plats {
        if o.prebuilt && !p.always_build {
            continue;
        }
        i += 1;
        step(&format!("[{i}/{count}] building {} (elapsed {:.0} s)", p.label, t0.elapsed().as_secs_f64()));
        let tb = Instant::now();
        match (p.build)(o.prebuilt) {
            Ok(()) => println!("    {} built in {:.1} s", p.label, tb.elapsed().as_secs_f64()),
            Err(e) => {
                println!("    {} build FAILED: {e}", p.label);
                build_errors.push((p.key, e));
            }
        }
    }

    // 2. Contexts.
    let dir = root().join("target/demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config_path = root().join("examples/configs/example.json");
    let config_text = std::fs::read_to_string(&config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let config: Value = serde_json::from_str(&config_text).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let contexts_path = dir.join("CONTEXTS.jsonl");
    let lines = crate::contexts::generate(&config, o.contexts, o.seed, NOW_MS);
    std::fs::write(&contexts_path, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    let model = crate::contexts::Model::from_config(&config);
    step(&format!(
        "{} contexts (seed {}) over {}: {} variables, facets {}",
        lines.len(),
        o.seed,
        rel(&config_path),
        model.variables.len(),
        model.facet_names().collect::<Vec<_>>().join(", ")
    ));

    // 3. Reference: `turnout eval` (built by the Rust build; built here when --only skipped it).
    let cli = root().join("target/release/turnout");
    if !cli.exists() {
        build_rust(o.prebuilt)?;
    }
    let reference_path = dir.join("REFERENCE.jsonl");
    let out = Command::new(&cli)
        .args(["eval", "--now-ms", &NOW_MS.to_string(), "--config"])
        .arg(&config_path)
        .arg("--contexts")
        .arg(&contexts_path)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if !out.status.success() {
        return Err(format!("turnout eval failed ({})", out.status));
    }
    std::fs::write(&reference_path, &out.stdout).map_err(|e| e.to_string())?;
    let reference = parse_lines(&String::from_utf8_lossy(&out.stdout))?;
    if reference.len() != lines.len() {
        return Err(format!("turnout eval printed {} lines for {} contexts", reference.len(), lines.len()));
    }
    println!("reference: target/release/turnout eval --now-ms {NOW_MS} -> {}", rel(&reference_path));
    print_sample(&lines, &reference);

    // 4. Runners.
    let mut rows = Vec::new();
    for p in &plats {
        let outcome = match build_errors.iter().find(|(k, _)| *k == p.key) {
            Some((_, e)) => Outcome::NotBuilt(format!("build failed: {e}")),
            None => match (p.runner)() {
                Err(e) => Outcome::NotBuilt(e),
                Ok(cmd) => {
                    step(&format!("running the {} runner", p.label));
                    run_platform(p.key, cmd, &config_path, &contexts_path, &dir, &reference, &lines)
                }
            },
        };
        rows.push((p, outcome));
    }

    // 5. The table.
    let ok = print_table(&rows, t0);
    if ok {
        Ok(())
    } else {
        Err("not every platform agreed with Rust (see the table above)".into())
    }
}

fn parse_lines(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}: {l}", i + 1)))
        .collect()
}

fn run_platform(
    key: &str,
    mut cmd: Command,
    config: &Path,
    contexts: &Path,
    dir: &Path,
    reference: &[Value],
    inputs: &[String],
) -> Outcome {
    let pdir = dir.join(key);
    let _ = std::fs::remove_dir_all(&pdir);
    if let Err(e) = std::fs::create_dir_all(&pdir) {
        return Outcome::Failed(format!("{}: {e}", pdir.display()));
    }
    let (out, timing, log) = (pdir.join("DECISIONS.jsonl"), pdir.join("TIMING.json"), pdir.join("runner.log"));
    cmd.arg("--config")
        .arg(config)
        .arg("--contexts")
        .arg(contexts)
        .args(["--now-ms", &NOW_MS.to_string()])
        .arg("--out")
        .arg(&out)
        .arg("--timing")
        .arg(&timing);
    let t = Instant::now();
    if let Err(e) = run_with_timeout(&mut cmd, &log) {
        return Outcome::Failed(e);
    }
    println!("    done in {:.1} s", t.elapsed().as_secs_f64());
    let text = match std::fs::read_to_string(&out) {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("{}: {e}", rel(&out))),
    };
    let got = match parse_lines(&text) {
        Ok(g) => g,
        Err(e) => return Outcome::Failed(format!("{}: {e}", rel(&out))),
    };
    let ns = std::fs::read_to_string(&timing)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|t| t["nsPerDecisionMedian"].as_f64());
    Outcome::Ran { decisions: got.len(), differences: differences(reference, &got, inputs), ns }
}

/// Runs `cmd` with stdout and stderr to `log`; fails on a non-zero exit or after [`RUNNER_TIMEOUT`].
fn run_with_timeout(cmd: &mut Command, log: &Path) -> Result<(), String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let t = Instant::now();
    let tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("runner exited with {status}; {}:\n{}", rel(log), tail())),
            Ok(None) if t.elapsed() > RUNNER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("runner still running after {} s: stopped", RUNNER_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// JSON equality with numbers compared by value (`1` == `1.0`; integers exactly, beyond 2^53 too).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Every line that differs from the reference (described with its input), and a count mismatch.
fn differences(reference: &[Value], got: &[Value], inputs: &[String]) -> Vec<String> {
    let mut d = Vec::new();
    if got.len() != reference.len() {
        d.push(format!("{} decisions for {} contexts", got.len(), reference.len()));
    }
    for (i, (want, have)) in reference.iter().zip(got).enumerate() {
        if !json_eq(want, have) {
            d.push(format!(
                "line {}: {}\n        rust: {want}\n        got:  {have}",
                i + 1,
                inputs.get(i).map(String::as_str).unwrap_or("")
            ));
        }
    }
    d
}

/// A few decisions of the reference, one per kind of source.
fn print_sample(inputs: &[String], reference: &[Value]) {
    let mut shown: Vec<String> = Vec::new();
    println!("\n  {:<24} {:<12} {:<16} {:<12} facets", "variable", "value", "reason", "source");
    for (input, d) in inputs.iter().zip(reference) {
        let kind = format!("{}/{}", d["source"], d["reason"]);
        if shown.contains(&kind) || shown.len() >= 6 {
            continue;
        }
        shown.push(kind);
        let facets = serde_json::from_str::<Value>(input).map(|v| v["facets"].to_string()).unwrap_or_default();
        println!(
            "  {:<24} {:<12} {:<16} {:<12} {}",
            d["variable"].as_str().unwrap_or(""),
            d["value"].to_string(),
            d["reason"].as_str().unwrap_or(""),
            d["source"].as_str().unwrap_or(""),
            facets
        );
    }
}

fn print_table(rows: &[(&Platform, Outcome)], t0: Instant) -> bool {
    let rust_ns = rows.iter().find_map(|(p, o)| match o {
        Outcome::Ran { ns: Some(ns), .. } if p.key == "rust" => Some(*ns),
        _ => None,
    });
    let mut all_ok = true;
    println!(
        "\n{:<13} {:>9}  {:<18} {:>28}  {:>7}",
        "platform", "decisions", "identical to Rust", "median ns/decision (prepared)", "vs Rust"
    );
    println!("{}", "-".repeat(82));
    let mut notes = Vec::new();
    for (p, o) in rows {
        match o {
            Outcome::Ran { decisions, differences, ns } => {
                let same = differences.is_empty();
                all_ok &= same;
                let ratio = match (ns, rust_ns) {
                    (Some(n), Some(r)) if r > 0.0 => format!("{:.1}x", n / r),
                    _ => "-".into(),
                };
                let ns = ns.map_or("-".into(), |n| format!("{n:.0}"));
                let verdict = if same { "yes".to_string() } else { format!("NO ({} differ)", differences.len()) };
                println!("{:<13} {:>9}  {:<18} {:>28}  {:>7}", p.label, decisions, verdict, ns, ratio);
                if !same {
                    notes.push(format!(
                        "{}: first differences (target/demo/{}/DECISIONS.jsonl vs target/demo/REFERENCE.jsonl):\n    {}",
                        p.label,
                        p.key,
                        differences.iter().take(3).cloned().collect::<Vec<_>>().join("\n    ")
                    ));
                }
            }
            Outcome::NotBuilt(why) => {
                all_ok = false;
                println!("{:<13} {:>9}  {:<18} {:>28}  {:>7}", p.label, "-", "not built", "-", "-");
                notes.push(format!("{}: not built: {why}", p.label));
            }
            Outcome::Failed(why) => {
                all_ok = false;
                println!("{:<13} {:>9}  {:<18} {:>28}  {:>7}", p.label, "-", "FAILED", "-", "-");
                notes.push(format!("{}: {why}", p.label));
            }
        }
    }
    println!("{}", "-".repeat(82));
    println!(
        "reference: `turnout eval` (Rust, one-shot path); JSON values compared, numbers by value; \
         timings from each runner's TIMING.json"
    );
    for n in &notes {
        println!("\n{n}");
    }
    println!(
        "\ndemo {} in {:.0} s: {}",
        if all_ok { "passed" } else { "FAILED" },
        t0.elapsed().as_secs_f64(),
        if all_ok { "every platform took the same decisions" } else { "see above" }
    );
    all_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_big_ints_exactly() {
        assert!(json_eq(&json!({"v": 1, "r": null}), &json!({"r": null, "v": 1.0})));
        assert!(json_eq(&json!(9007199254740993i64), &json!(9007199254740993i64)));
        assert!(!json_eq(&json!(9007199254740993i64), &json!(9007199254740992i64)));
        assert!(!json_eq(&json!({"v": 1}), &json!({"v": 1, "x": null})));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(json_eq(&json!([1.5, "a"]), &json!([1.5, "a"])));
    }

    #[test]
    fn differences_name_the_line_and_a_count_mismatch() {
        let r = vec![json!({"value": 1}), json!({"value": 2})];
        let inputs = vec!["a".to_string(), "b".to_string()];
        assert!(differences(&r, &[json!({"value": 1.0}), json!({"value": 2})], &inputs).is_empty());
        let d = differences(&r, &[json!({"value": 1}), json!({"value": 3})], &inputs);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("line 2: b"));
        assert_eq!(differences(&r, &[json!({"value": 1})], &inputs).len(), 1);
    }
}
