//! `cargo xtask wasm`: build the npm package into `wasm/pkg/` and run its Node and browser tests (issue 4).
//!
//! - `cargo xtask wasm` (or `wasm test`): build, then run every test in `wasm/js/test/` with node's test
//!   runner (conformance in Node and headless Chromium, poller against a local server, the playground,
//!   the Node example, installing the `npm pack` tarball into a fresh project, the demo runner, the
//!   TypeScript declarations under `tsc --strict`).
//! - `cargo xtask wasm build`: only build `wasm/pkg/` (and print the `.wasm` size).
//! - `cargo xtask wasm bench`: build, then run the Node benchmark (`wasm/bench/`) with its peers.
//! - `cargo xtask wasm serve`: build, then serve the repository on localhost for the playground.
//!
//! Everything it needs is installed when missing: the `wasm32-unknown-unknown` target (rustup),
//! `wasm-bindgen-cli` of exactly the version in Cargo.lock and `wasm-pack` (cargo install), the dev
//! dependencies of `wasm/js` (`npm ci`: `binaryen` for `wasm-opt`, `playwright-core`, `typescript`) and Debian's
//! `chromium` (apt-get). wasm-pack runs with `--mode no-install`, so it downloads nothing itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::run as exec;
use crate::{cargo, root, step};

const TARGET: &str = "wasm32-unknown-unknown";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs `cargo xtask wasm [test | build | bench | serve]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        None | Some("test") => {
            build()?;
            test()
        }
        Some("build") => build(),
        Some("bench") => {
            build()?;
            bench(&args[1..])
        }
        Some("serve") => {
            build()?;
            exec(node().arg(root().join("wasm/js/tools/serve.mjs")))
        }
        Some(other) => Err(format!("cargo xtask wasm: unknown step `{other}` (use test, build, bench or serve)")),
    }
}

fn js_dir() -> PathBuf {
    root().join("wasm/js")
}

fn pkg_dir() -> PathBuf {
    root().join("wasm/pkg")
}

/// `PATH` with the npm tools of `wasm/js` (wasm-opt) and cargo's bin directory first.
fn tool_path() -> String {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|p| p.join("bin"))
        .unwrap_or_default();
    let mut parts = vec![js_dir().join("node_modules/.bin"), cargo_bin];
    parts.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(parts).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.env("PATH", tool_path()).current_dir(root());
    c
}

fn node() -> Command {
    tool("node")
}

/// The first line a tool prints for `--version`, if it runs.
fn version_of(name: &str) -> Option<String> {
    let out = tool(name).arg("--version").stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The version of the `wasm-bindgen` crate that Cargo.lock pins.
fn locked_wasm_bindgen() -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = ")) {
                return Ok(v.trim_matches('"').to_string());
            }
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

/// Installs what the build needs, only when it is missing or of the wrong version.
fn ensure_tools() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == TARGET))
        .unwrap_or(false);
    if !installed {
        step(&format!("rustup target add {TARGET}"));
        exec(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    let want = locked_wasm_bindgen()?;
    if version_of("wasm-bindgen") != Some(format!("wasm-bindgen {want}")) {
        step(&format!("cargo install wasm-bindgen-cli --version {want} (the crate's version in Cargo.lock)"));
        exec(cargo().args(["install", "wasm-bindgen-cli", "--force", "--version", &want]))?;
    }
    if version_of("wasm-pack").is_none() {
        step("cargo install wasm-pack");
        exec(cargo().args(["install", "wasm-pack", "--locked"]))?;
    }
    let js = js_dir();
    let modules = js.join("node_modules");
    let lock = js.join("package-lock.json");
    let stale = !modules.join(".bin/wasm-opt").exists()
        || !modules.join("playwright-core/package.json").exists()
        || !modules.join("typescript/package.json").exists()
        || modified(&lock) > modified(&modules.join(".package-lock.json"));
    if stale {
        step("npm ci (wasm/js: binaryen for wasm-opt, playwright-core, typescript)");
        exec(tool("npm").current_dir(&js).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH)
}

/// Builds `wasm/pkg/`: the wasm-bindgen module (wasm-pack, size-tuned profile,
/// wasm-opt), the facade, the type declarations, README and package.json.
fn build() -> Result<(), String> {
    ensure_tools()?;
    step("wasm-pack build (profile wasm-release, target web, wasm-opt from binaryen)");
    let pkg = pkg_dir();
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("{}: {e}", pkg.display()))?;
    }
    exec(tool("wasm-pack").args([
        "build",
        "wasm",
        "--target",
        "web",
        "--out-dir",
        "pkg/wasm",
        "--out-name",
        "turnout_wasm",
        "--mode",
        "no-install",
        "--no-pack",
        "--no-gitignore",
        "--weak-refs",
        "--profile",
        "wasm-release",
    ]))?;
    assemble(&pkg)?;
    let wasm = pkg.join("wasm/turnout_wasm_bg.wasm");
    let raw = std::fs::metadata(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?.len();
    let gz = gzipped_len(&wasm)?;
    println!(
        "wasm/pkg/wasm/turnout_wasm_bg.wasm: {raw} bytes ({:.1} KiB), gzip -9 {gz} bytes ({:.1} KiB) \
         [targets: 150 KB raw, 60 KB gzipped]",
        raw as f64 / 1024.0,
        gz as f64 / 1024.0
    );
    Ok(())
}

/// Copies the facade next to the generated module and writes the package manifest.
fn assemble(pkg: &Path) -> Result<(), String> {
    let js = js_dir();
    let copy =
        |from: &Path, to: &Path| std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("{}: {e}", from.display()));
    let src = js.join("src");
    for entry in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() {
            copy(&path, &pkg.join(path.file_name().unwrap_or_default()))?;
        }
    }
    copy(&js.join("README.md"), &pkg.join("README.md"))?;
    // The glue's own declarations are internal (index.d.ts is the API).
    for f in ["wasm/turnout_wasm.d.ts", "wasm/turnout_wasm_bg.wasm.d.ts", "wasm/package.json", "wasm/README.md"] {
        let _ = std::fs::remove_file(pkg.join(f));
    }
    // The published manifest: wasm/js/package.json without its dev parts. Node
    // writes it, keeping the key order (the order of `exports` conditions matters).
    let script = "const fs = require('fs'); const [src, dst] = process.argv.slice(1); \
                  const p = JSON.parse(fs.readFileSync(src, 'utf8')); \
                  delete p.devDependencies; delete p.scripts; delete p.private; \
                  fs.writeFileSync(dst, JSON.stringify(p, null, 2) + '\\n');";
    exec(node().arg("-e").arg(script).arg(js.join("package.json")).arg(pkg.join("package.json")))
}

fn gzipped_len(path: &Path) -> Result<u64, String> {
    let out = Command::new("gzip").arg("-9").arg("-c").arg(path).output().map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip {} failed", path.display()));
    }
    Ok(out.stdout.len() as u64)
}

/// Debian's Chromium for the browser tests (never a browser download of a test tool).
fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    step("apt-get install chromium (browser tests)");
    let _ = exec(Command::new("apt-get").arg("update").arg("-qq"));
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Every `*.test.mjs` under `wasm/js/test/`, through node's test runner.
fn test() -> Result<(), String> {
    ensure_chromium()?;
    let dir = js_dir().join("test");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no tests in {}", dir.display()));
    }
    step("node --test wasm/js/test (Node, headless Chromium, poller, playground, example, npm pack)");
    std::fs::create_dir_all(root().join("target/conformance")).map_err(|e| e.to_string())?;
    exec(node().env("TURNOUT_CHROMIUM", CHROMIUM).arg("--test").arg("--test-concurrency=1").args(&files))
}

/// The Node benchmark and its peers (dev dependencies of `wasm/bench` only).
fn bench(args: &[String]) -> Result<(), String> {
    let dir = root().join("wasm/bench");
    if !dir.join("node_modules/@growthbook/growthbook/package.json").exists()
        || !dir.join("node_modules/@openfeature/flagd-core/package.json").exists()
    {
        step("npm ci (wasm/bench: @openfeature/flagd-core, @growthbook/growthbook)");
        exec(tool("npm").current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    step("node wasm/bench/bench.mjs");
    exec(node().arg(dir.join("bench.mjs")).args(args))
}
