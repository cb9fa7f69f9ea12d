//! `cargo xtask dist`: every package as a release artifact in `target/dist/`, and the consumer
//! tests that install each artifact, alone, into a fresh project outside the repository.
//!
//! ```text
//! cargo xtask dist                     build every artifact, write target/dist/MANIFEST.json
//! cargo xtask dist --test              ... then run every consumer test against them
//! cargo xtask dist --only npm,go       only these platforms (npm python go maven swift crates cli)
//! cargo xtask dist --test --reuse      consumer tests on the artifacts already in target/dist
//! ```
//!
//! Layout (paths relative to `target/dist/`, all listed in `MANIFEST.json` with their sha256):
//!
//! | platform | files |
//! |---|---|
//! | npm | `npm/turnout-<v>.tgz` |
//! | python | `python/turnout-<v>-py3-none-manylinux_2_17_{x86_64,aarch64}...whl`, `python/turnout-<v>.tar.gz` |
//! | go | `goproxy/` (what `GOPROXY=file://...` reads) |
//! | maven | `maven/` (a Maven repository: pom, jar, sources and javadoc jars, checksums) |
//! | swift | `swift/` (the package with generated sources, header, modulemap, Linux static library) |
//! | crates | `crates/turnout-core-<v>.crate`, `crates/turnout-cli-<v>.crate` |
//! | cli | `cli/turnout-<v>-<triple>.tar.gz` (+ `.sha256`) |
//!
//! The native library is built once per target triple ([`native`]) and shared by the Python
//! wheels, the jar, the Go module and the Swift package. The version comes from the workspace
//! `Cargo.toml` ([`crate::version`]). Each consumer test takes the seed rollout's decisions for
//! the fixed contexts of [`contexts`] and compares them with `turnout eval` of the CLI artifact.

mod cli;
mod crates;
mod go;
mod maven;
pub(crate) mod native;
mod npm;
pub(crate) mod python;
mod swift;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::{rel, root, step};

/// The platforms, in build order (the CLI first: its tarball is the reference of every consumer test).
pub(crate) const PLATFORMS: [&str; 7] = ["cli", "crates", "npm", "python", "go", "maven", "swift"];

/// What one run of `dist` works with.
pub(crate) struct Dist {
    /// `target/dist/`.
    pub dir: PathBuf,
    /// The one version of every package (workspace `Cargo.toml`).
    pub version: String,
    /// Reuse builds already made in this run of `cargo xtask test` (the bindings' own steps).
    pub reuse_builds: bool,
}

impl Dist {
    /// `target/dist/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A manifest file entry: the path relative to `target/dist/`, its sha256 and size.
    pub fn file_entry(&self, path: &Path) -> Result<Value, String> {
        let rel = path.strip_prefix(&self.dir).map_err(|_| format!("{} is not under target/dist", path.display()))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(json!({"file": rel.to_string_lossy(), "sha256": sha256_hex(&bytes), "bytes": bytes.len()}))
    }
}

/// Lower-case hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `target/dist/`.
pub(crate) fn dist_dir() -> PathBuf {
    root().join("target/dist")
}

struct Options {
    only: Vec<String>,
    test: bool,
    reuse: bool,
    reuse_builds: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        only: PLATFORMS.iter().map(|s| s.to_string()).collect(),
        test: false,
        reuse: false,
        reuse_builds: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--test" => o.test = true,
            "--reuse" => o.reuse = true,
            "--reuse-builds" => o.reuse_builds = true,
            "--only" => {
                let list = it.next().ok_or("--only needs a list, e.g. --only npm,go")?;
                o.only = list.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = o.only.iter().find(|p| !PLATFORMS.contains(&p.as_str())) {
                    return Err(format!("--only: unknown platform {bad} (use {})", PLATFORMS.join(",")));
                }
            }
            other => {
                return Err(format!(
                    "cargo xtask dist: unknown argument {other} (use --test, --reuse, --only {})",
                    PLATFORMS.join(",")
                ))
            }
        }
    }
    Ok(o)
}

/// Runs `cargo xtask dist [--test] [--reuse] [--only a,b]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let d = Dist { dir: dist_dir(), version: crate::version::workspace_version()?, reuse_builds: o.reuse_builds };
    let manifest_path = d.path("MANIFEST.json");
    let mut manifest = if o.reuse { read_manifest(&manifest_path)? } else { build(&d, &o.only, &manifest_path)? };
    if o.test {
        consume(&d, &o.only, &mut manifest)?;
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<Map<String, Value>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e} (run `cargo xtask dist` first)", rel(path)))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("{} is not a JSON object", rel(path))),
    }
}

/// Builds the platforms of `only` and writes the manifest (entries of platforms not built this
/// time are kept from the previous manifest when their files still exist).
fn build(d: &Dist, only: &[String], manifest_path: &Path) -> Result<Map<String, Value>, String> {
    std::fs::create_dir_all(&d.dir).map_err(|e| format!("{}: {e}", d.dir.display()))?;
    let mut manifest = read_manifest(manifest_path).unwrap_or_default();
    if manifest.get("version").and_then(Value::as_str) != Some(d.version.as_str()) {
        manifest.clear();
    }
    manifest.insert("version".into(), json!(d.version));
    for p in PLATFORMS.iter().filter(|p| only.iter().any(|o| o == *p)) {
        step(&format!("dist {p} (version {})", d.version));
        let entry = match *p {
            "cli" => cli::build(d)?,
            "crates" => crates::build(d)?,
            "npm" => npm::build(d)?,
            "python" => python::build(d)?,
            "go" => go::build(d)?,
            "maven" => maven::build(d)?,
            _ => swift::build(d)?,
        };
        manifest.insert(p.to_string(), entry);
        manifest.insert("files".into(), file_index(d)?);
        write_manifest(manifest_path, &manifest)?;
    }
    println!("\n{}:", rel(manifest_path));
    println!("{}", serde_json::to_string_pretty(&Value::Object(manifest.clone())).unwrap_or_default());
    Ok(manifest)
}

fn write_manifest(path: &Path, manifest: &Map<String, Value>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&Value::Object(manifest.clone())).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// The consumer tests of `only`, each in a fresh directory outside the repository.
fn consume(d: &Dist, only: &[String], manifest: &mut Map<String, Value>) -> Result<(), String> {
    let reference = Reference::new(d, manifest)?;
    let mut timings = Vec::new();
    check_files(d, manifest)?;
    for p in PLATFORMS.iter().filter(|p| only.iter().any(|o| o == *p)) {
        let entry = manifest.get(*p).cloned().ok_or_else(|| format!("MANIFEST.json has no {p} entry"))?;
        step(&format!("consumer test: {p} (installed from target/dist alone, outside the repository)"));
        let t = std::time::Instant::now();
        match *p {
            "cli" => cli::consume(d, &entry, &reference)?,
            "crates" => crates::consume(d, &entry, &reference)?,
            "npm" => npm::consume(d, &entry, &reference)?,
            "python" => python::consume(d, &entry, &reference)?,
            "go" => go::consume(d, &entry, &reference)?,
            "maven" => maven::consume(d, &entry, &reference)?,
            _ => swift::consume(d, &entry, &reference)?,
        }
        timings.push((p.to_string(), t.elapsed().as_secs_f64()));
    }
    println!("\nconsumer tests passed (install + decisions, seconds):");
    for (p, s) in &timings {
        println!("  {p:<8} {s:>6.1}");
    }
    Ok(())
}

/// Every file the manifest lists is there with its sha256 (what a release upload would verify).
fn check_files(d: &Dist, manifest: &Map<String, Value>) -> Result<(), String> {
    let files = manifest.get("files").and_then(Value::as_object).ok_or("MANIFEST.json has no files index")?;
    for (f, meta) in files {
        let bytes = std::fs::read(d.dir.join(f)).map_err(|e| format!("MANIFEST.json lists {f}: {e}"))?;
        if meta.get("sha256").and_then(Value::as_str) != Some(sha256_hex(&bytes).as_str()) {
            return Err(format!("{f}: sha256 differs from MANIFEST.json"));
        }
    }
    println!("MANIFEST.json: {} files, every sha256 matches", files.len());
    Ok(())
}

// ---- the reference every consumer test compares with ----------------------------------------------

/// The seed rollout, the fixed contexts and the decisions `turnout eval` (the CLI artifact)
/// takes on them: what every consumer must reproduce.
pub(crate) struct Reference {
    /// `examples/configs/seed-rollout.json` (its bytes; a consumer gets a copy).
    pub config: Vec<u8>,
    /// One JSON object of facets per context.
    pub contexts: Vec<Value>,
    /// The int64 value `turnout eval` gives for each context (`automatedMessageDelay`).
    pub values: Vec<i64>,
}

/// The variable of the seed rollout every consumer decides.
pub(crate) const VARIABLE: &str = "automatedMessageDelay";

impl Reference {
    fn new(d: &Dist, manifest: &Map<String, Value>) -> Result<Self, String> {
        let config = std::fs::read(root().join("examples/configs/seed-rollout.json")).map_err(|e| e.to_string())?;
        let contexts = contexts();
        let values = cli::eval_with_artifact(d, manifest, &config, &contexts)?;
        // The set must exercise every branch of the seed rollout, or agreement proves little.
        for want in [30, 60, 90] {
            if !values.contains(&want) {
                return Err(format!("the reference contexts never give {want}: the consumer tests would prove little"));
            }
        }
        Ok(Reference { config, contexts, values })
    }

    /// Writes `config.json` and `contexts.jsonl` (one facets object per line) into `dir`.
    pub fn write_inputs(&self, dir: &Path) -> Result<(), String> {
        std::fs::write(dir.join("config.json"), &self.config).map_err(|e| e.to_string())?;
        let lines: String = self.contexts.iter().map(|c| format!("{c}\n")).collect();
        std::fs::write(dir.join("contexts.jsonl"), lines).map_err(|e| e.to_string())
    }

    /// Compares a consumer's output (one integer per line, in context order) with the reference.
    pub fn check(&self, platform: &str, stdout: &str) -> Result<(), String> {
        let got: Vec<&str> = stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if got.len() != self.values.len() {
            return Err(format!(
                "{platform}: {} decisions for {} contexts; output:\n{stdout}",
                got.len(),
                self.values.len()
            ));
        }
        for (i, (g, want)) in got.iter().zip(&self.values).enumerate() {
            if g.parse::<i64>().ok() != Some(*want) {
                return Err(format!("{platform}: context {i} ({}) gave {g}, turnout eval {want}", self.contexts[i]));
            }
        }
        println!("{platform}: {} decisions identical to turnout eval", got.len());
        Ok(())
    }
}

/// The fixed contexts: cities 6, 10 and 3, services 302, 11 and 5, 16 passengers each.
pub(crate) fn contexts() -> Vec<Value> {
    let mut out = Vec::new();
    for city in [6, 10, 3] {
        for svc in [302, 11, 5] {
            for pax in 0..16u64 {
                out.push(json!({"city": city, "svc": svc, "pax": 1000 + pax * 7919 + city as u64}));
            }
        }
    }
    out
}

// ---- helpers for the platform modules -------------------------------------------------------------

/// A fresh, empty directory outside the repository (under the system temp dir), removed by the
/// caller's [`Scratch`] guard.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Result<Self, String> {
        let base = std::env::temp_dir().join(format!("turnout-consumer-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        if base.starts_with(root()) {
            return Err(format!("the scratch directory {} is inside the repository", base.display()));
        }
        Ok(Scratch(base))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("TURNOUT_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A command run in a consumer directory with an environment that points nowhere into the
/// repository: no `TURNOUT_*`, `CARGO_TARGET_DIR`, `GOFLAGS`, `PYTHONPATH`, or `jna.library.path`.
pub(crate) fn consumer_command(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("TURNOUT_")
            || (k.starts_with("CARGO") && k != "CARGO_HOME")
            || matches!(
                k.as_str(),
                "GOFLAGS" | "PYTHONPATH" | "VIRTUAL_ENV" | "RUSTFLAGS" | "JAVA_TOOL_OPTIONS" | "NODE_PATH"
            )
        {
            c.env_remove(&k);
        }
    }
    c
}

/// Runs `cmd` and returns its standard output (standard error is shown on failure).
pub(crate) fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Copies one file into `dir` (keeping its name) and returns the new path.
pub(crate) fn copy_into(file: &Path, dir: &Path) -> Result<PathBuf, String> {
    let to = dir.join(file.file_name().ok_or("no file name")?);
    std::fs::copy(file, &to).map_err(|e| format!("copy {} -> {}: {e}", file.display(), to.display()))?;
    Ok(to)
}

/// Copies the directory `from` to `to` (created), recursively.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let target = to.join(e.file_name());
        if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).map_err(|err| format!("{}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Recreates `dir` empty.
pub(crate) fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Every file under `dir`, sorted, as paths relative to `base`.
fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, base, out)?;
        } else if let Ok(r) = p.strip_prefix(base) {
            out.push(r.to_path_buf());
        }
    }
    Ok(())
}

/// `{"<path>": {"platform", "sha256", "bytes"}}` for every file of `target/dist/` but the manifest.
fn file_index(d: &Dist) -> Result<Value, String> {
    let mut files = Vec::new();
    walk(&d.dir, &d.dir, &mut files)?;
    let mut index = Map::new();
    for f in files.iter().filter(|f| f.as_os_str() != "MANIFEST.json") {
        let top = f.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        let platform = if top == "goproxy" { "go".to_string() } else { top };
        let bytes = std::fs::read(d.dir.join(f)).map_err(|e| format!("{}: {e}", f.display()))?;
        index.insert(
            f.to_string_lossy().into_owned(),
            json!({"platform": platform, "sha256": sha256_hex(&bytes), "bytes": bytes.len()}),
        );
    }
    Ok(Value::Object(index))
}
