//! `cargo xtask kotlin`: build the Kotlin/JVM package (`bindings/kotlin`) and run its tests.
//!
//! Steps:
//!
//! 1. `crate::uniffi::generate("kotlin", bindings/kotlin/target/generated-sources/uniffi)`: the one
//!    release build of `turnout-ffi` (UniFFI exports + the JNI fast path, `ffi/src/jni.rs`), then
//!    the generated Kotlin (package `dev.turnout.ffi`, settings in `ffi/uniffi.toml`). The
//!    library is copied to `bindings/kotlin/target/native-resources/<jna-prefix>/` (e.g.
//!    `linux-x86-64/libturnout_ffi.so`), a resource directory of the POM: the tests load it
//!    from the classpath exactly as users load it from the published jar (no `jna.library.path`).
//! 2. `mvn -B -q test` in `bindings/kotlin` (Maven and a JDK are installed with apt-get when
//!    missing; the first run downloads the Kotlin compiler and plugins from Maven Central):
//!    compiles the generated code with the facade (`src/main/kotlin`), the tests, the demo runner
//!    (`src/tools/kotlin`) and the example (`examples/kotlin`), and runs the JUnit tests with the
//!    native library from the classpath: every conformance vector through `index.json` (writes
//!    `target/conformance/kotlin.json`), the batch vectors, threads, bad input, the poller
//!    against local HTTP servers, the example. It also writes `bindings/kotlin/target/classpath.txt`.
//!
//! `cargo xtask kotlin --bench [JMH args]` builds the same way with the `bench` profile (JMH,
//! `src/bench/java`), skips the tests, and runs the JMH benchmarks of the shared scenario
//! (generated UniFFI path, JNA direct mapping, the facade's JNI path; prepared and one-shot).
//! Not part of `cargo xtask test`. Default JMH arguments: `-f 1 -wi 3 -i 5 -w 1 -r 1`.
//!
//! The demo runner (tests/bench/README.md) after a build, from the repository root:
//!
//! ```text
//! java -cp bindings/kotlin/target/classes:bindings/kotlin/target/test-classes:$(cat bindings/kotlin/target/classpath.txt) \
//!     dev.turnout.tools.Runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS \
//!     --out DECISIONS.jsonl --timing TIMING.json
//! ```
//!
//! ([`runner_command`] returns that command for `cargo xtask demo`; `target/classes` carries the
//! native library.) The release jar is built by `cargo xtask dist` (`dist/maven.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run as exec;
use crate::{root, step, succeeds};

/// The Maven project.
pub(crate) fn project_dir() -> PathBuf {
    root().join("bindings/kotlin")
}

/// JNA's resource prefix of this machine (`linux-x86-64`, ...), where the jar carries its library.
fn host_jna_prefix() -> Result<&'static str, String> {
    let os = if cfg!(target_os = "macos") { "darwin" } else { "linux" };
    let arch = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };
    crate::dist::native::TARGETS
        .iter()
        .find(|t| t.triple.starts_with(arch) && t.triple.contains(os))
        .map(|t| t.jna)
        .ok_or_else(|| format!("no JNA resource prefix for {arch}-{os}"))
}

/// Empties `target/native-resources` (the POM's resource directory of native libraries) and
/// removes every platform's copy from `target/classes` (Maven copies the resources again).
pub(crate) fn clear_natives() -> Result<(), String> {
    let dir = project_dir().join("target");
    crate::dist::fresh_dir(&dir.join("native-resources"))?;
    for t in &crate::dist::native::TARGETS {
        let stale = dir.join("classes").join(t.jna);
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| format!("{}: {e}", stale.display()))?;
        }
    }
    Ok(())
}

/// Adds `lib` as the native library of JNA's platform `prefix`, for the jar and the tests'
/// classpath: `target/native-resources/<prefix>/<file name>`; returns the copy.
pub(crate) fn add_native(prefix: &str, lib: &Path) -> Result<PathBuf, String> {
    let to = project_dir().join("target/native-resources").join(prefix);
    std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
    crate::dist::copy_into(lib, &to)
}

/// The generated bindings and this machine's library in the resources: what `mvn` needs.
fn prepare() -> Result<(), String> {
    let dir = project_dir();
    let lib = crate::uniffi::generate("kotlin", &dir.join("target/generated-sources/uniffi"))?;
    clear_natives()?;
    add_native(host_jna_prefix()?, &lib)?;
    ensure_maven()
}

/// Runs `cargo xtask kotlin [--bench [JMH args]]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let bench = args.first().map(String::as_str) == Some("--bench");
    if !bench {
        if let Some(other) = args.first() {
            return Err(format!("cargo xtask kotlin: unknown argument {other} (use --bench [JMH args])"));
        }
    }
    let dir = project_dir();
    prepare()?;
    if bench {
        step("mvn -Pbench test-compile (JMH benchmarks, tests skipped)");
        exec(mvn(&dir).args(["-Pbench", "-DskipTests", "test"]))?;
        return run_bench(&dir, &args[1..]);
    }
    step("mvn test (bindings/kotlin: facade, conformance vectors, threads, poller, example)");
    for reports in ["surefire-reports", "surefire-reports-uniffi"] {
        let _ = std::fs::remove_dir_all(dir.join("target").join(reports)); // no stale totals
    }
    let result = exec(mvn(&dir).arg("test"));
    summarise(&dir);
    result
}

/// Prints the totals of the surefire reports (`mvn -q` prints nothing on success).
fn summarise(dir: &Path) {
    let attr = |tag: &str, name: &str| -> u64 {
        let key = format!(" {name}=\"");
        tag.find(&key).and_then(|i| tag[i + key.len()..].split('"').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    // A fresh line: Maven 3.8 leaves colour resets without a newline. One word before the counts
    // (`kotlin-jni:` with the JNI fast path, `kotlin-uniffi:` with the generated bindings only).
    println!();
    for (reports, what) in [("surefire-reports", "kotlin-jni"), ("surefire-reports-uniffi", "kotlin-uniffi")] {
        let Ok(entries) = std::fs::read_dir(dir.join("target").join(reports)) else { continue };
        let (mut tests, mut failed, mut skipped) = (0, 0, 0);
        for e in entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".xml")) {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(tag) = text.find("<testsuite ").and_then(|i| text[i..].split('>').next()) {
                tests += attr(tag, "tests");
                failed += attr(tag, "failures") + attr(tag, "errors");
                skipped += attr(tag, "skipped");
            }
        }
        println!("{what}: {} passed, {failed} failed, {skipped} skipped", tests - failed - skipped);
    }
}

/// Builds without running the tests: the native library, the generated bindings, the classes
/// (facade, tests, demo runner, example) and `target/classpath.txt`; what [`runner_command`] needs.
pub(crate) fn build() -> Result<(), String> {
    prepare()?;
    step("mvn -DskipTests test (bindings/kotlin: compile only)");
    exec(mvn(&project_dir()).args(["-DskipTests", "test"]))
}

/// `mvn -B -q` in `dir`.
pub(crate) fn mvn(dir: &Path) -> Command {
    let mut c = Command::new("mvn");
    c.current_dir(dir).args(["-B", "-q", "-Dstyle.color=never"]);
    c
}

/// Maven and a JDK (17 or newer): preinstalled on the project's machines; apt-get otherwise.
pub(crate) fn ensure_maven() -> Result<(), String> {
    if succeeds(Command::new("mvn").arg("--version")) && succeeds(Command::new("javac").arg("--version")) {
        return Ok(());
    }
    step("installing Maven and a JDK (apt-get)");
    exec(Command::new("apt-get").arg("update").arg("-qq"))?;
    exec(Command::new("apt-get").args(["install", "-y", "-qq", "maven", "openjdk-17-jdk-headless"]))
}

/// The classpath of the compiled project (classes, test classes, every dependency jar).
fn classpath(dir: &Path) -> Result<String, String> {
    let deps = dir.join("target/classpath.txt");
    let deps = std::fs::read_to_string(&deps)
        .map_err(|e| format!("{}: {e} (run cargo xtask kotlin first)", deps.display()))?;
    Ok(format!(
        "{}:{}:{}",
        dir.join("target/classes").display(),
        dir.join("target/test-classes").display(),
        deps.trim()
    ))
}

/// `java` with the project's classpath (whose `target/classes` carries the native library),
/// running `main_class`.
fn java(dir: &Path, main_class: &str) -> Result<Command, String> {
    let mut c = Command::new("java");
    c.arg(format!("-Dturnout.repo.root={}", root().display()))
        .arg("-cp")
        .arg(classpath(dir)?)
        .arg(main_class)
        .current_dir(root());
    Ok(c)
}

fn run_bench(dir: &Path, jmh_args: &[String]) -> Result<(), String> {
    step("JMH: the shared scenario (tests/bench/scenario.json) through every Kotlin path");
    let results = dir.join("target/jmh-result.json");
    let mut c = java(dir, "org.openjdk.jmh.Main")?;
    c.arg("-rf").arg("json").arg("-rff").arg(&results);
    if jmh_args.is_empty() {
        c.args(["-f", "1", "-wi", "3", "-i", "5", "-w", "1", "-r", "1"]);
    } else {
        c.args(jmh_args);
    }
    exec(&mut c)?;
    print_medians(&results)
}

/// The median ns per decision of every benchmark, over all its measured iterations
/// (tests/bench/README.md reports medians; JMH's own table shows means).
fn print_medians(results: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(results).map_err(|e| format!("{}: {e}", results.display()))?;
    let runs: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", results.display()))?;
    println!("\nmedian ns per decision (all iterations of all forks):");
    for run in runs.as_array().into_iter().flatten() {
        let mut xs: Vec<f64> = run["primaryMetric"]["rawData"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        xs.sort_by(f64::total_cmp);
        let median = match xs.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => xs[n / 2],
            n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
        };
        let name = run["benchmark"].as_str().unwrap_or("?").rsplit('.').next().unwrap_or("?");
        println!("  {name:<20} {median:>12.1} ns  ({} iterations)", xs.len());
    }
    Ok(())
}

/// The demo runner (tests/bench/README.md); append its arguments. Needs a prior `cargo xtask kotlin`.
#[allow(dead_code)] // for `cargo xtask demo` (the cross-language identity check)
pub(crate) fn runner_command() -> Result<Command, String> {
    java(&project_dir(), "dev.turnout.tools.Runner")
}
