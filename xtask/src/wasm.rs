//! `cargo xtask wasm`: build the npm package into `wasm/pkg/` and run its Node and browser tests.
//!
//! - `cargo xtask wasm` (or `wasm test`): build, then run every test in `wasm/js/test/` with node's test
//!   runner (conformance in Node and headless Chromium, poller against a local server, the playground,
//!   the Node example, installing the `npm pack` tarball into a fresh project, the demo runner, the
//!   TypeScript declarations under `tsc --strict`).
//! - `cargo xtask wasm build`: only build `wasm/pkg/` (and print the `.wasm` size).
//! - `cargo xtask wasm bench`: build, then run the Node benchmark (`wasm/bench/`) with its peers.
//! - `cargo xtask wasm serve`: build, then serve the repository on localhost for the playground.
//! - `cargo xtask wasm size [N]`: build, then show where the bytes of the `.wasm` go: the same module
//!   with its function names kept (`target/wasm-size/named.wasm`), by crate and its N largest items
//!   (twiggy, installed from crates.io when missing; `twiggy dominators`/`paths` on that file dig further).
//!
//! Everything it needs is installed when missing: the `wasm32-unknown-unknown` target (rustup),
//! `wasm-bindgen-cli` of exactly the version in Cargo.lock and `wasm-pack` (cargo install), the dev
//! dependencies of `wasm/js` (`npm ci`: `binaryen` for `wasm-opt`, `esbuild` for the CommonJS entry,
//! `playwright-core`, `typescript`) and Debian's `chromium` (apt-get). wasm-pack runs with `--mode no-install`, so it downloads nothing itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::run as exec;
use crate::{cargo, root, step};

const TARGET: &str = "wasm32-unknown-unknown";
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

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
        Some("size") => {
            build()?;
            size(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(40))
        }
        Some(other) => Err(format!("cargo xtask wasm: unknown step `{other}` (use test, build, bench, serve or size)")),
    }
}

fn js_dir() -> PathBuf {
    root().join("wasm/js")
}

pub(crate) fn pkg_dir() -> PathBuf {
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
    crate::dist::native::ensure_target(TARGET)?;
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
        || !modules.join(".bin/esbuild").exists()
        || !modules.join("playwright-core/package.json").exists()
        || !modules.join("typescript/package.json").exists()
        || modified(&lock) > modified(&modules.join(".package-lock.json"));
    if stale {
        step("npm ci (wasm/js: binaryen for wasm-opt, esbuild, playwright-core, typescript)");
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
         [budget: {BUDGET_RAW} raw, {BUDGET_GZIP} gzipped; targets: 150 KB raw, 60 KB gzipped]",
        raw as f64 / 1024.0,
        gz as f64 / 1024.0
    );
    check_budget(raw, gz)
}

/// The size budget of the `.wasm` (bytes, raw and `gzip -9`): a ratchet a little above the module
/// of today (608,908 / 261,321 bytes on 2026-12-07), lowered as the module shrinks towards the
/// targets (150 KB / 60 KB, docs/benchmarks.md, "WebAssembly size"). Every build checks it, so CI
/// fails when the module grows past it.
const BUDGET_RAW: u64 = 640_000;
const BUDGET_GZIP: u64 = 275_000;

/// An error naming what grew, when `raw` or `gz` is over the budget.
fn check_budget(raw: u64, gz: u64) -> Result<(), String> {
    if raw > BUDGET_RAW || gz > BUDGET_GZIP {
        return Err(format!(
            "the .wasm is over its size budget: {raw} bytes raw (budget {BUDGET_RAW}), {gz} gzipped (budget \
             {BUDGET_GZIP}). See where the bytes go with `cargo xtask wasm size`; raise the budget in \
             xtask/src/wasm.rs only with a reason in docs/benchmarks.md"
        ));
    }
    Ok(())
}

/// Copies the facade next to the generated module, generates the CommonJS entry and its
/// declarations, and writes the package manifest.
///
/// The package (`wasm/pkg/`, packed as is by `cargo xtask dist`):
/// - `node.js` (ESM, Node and Deno), `web.js` (browsers and bundlers), `worker.js` (workerd: the
///   `.wasm` imported as a module), all over the facade `index.js` + `poller.js`;
/// - `index.cjs`: `require('turnout')`, esbuild's CommonJS bundle of `node.js` (the facade and the
///   glue inlined, the `.wasm` read and instantiated synchronously next to it), never hand-written;
/// - `index.d.ts`, and `index.d.cts` (the same declarations, for `require` under TypeScript's
///   `node16`/`nodenext` resolution).
fn assemble(pkg: &Path) -> Result<(), String> {
    let js = js_dir();
    let version = package_version()?;
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
    copy(&src.join("index.d.ts"), &pkg.join("index.d.cts"))?;
    // The glue's own declarations are internal (index.d.ts is the API).
    for f in ["wasm/turnout_wasm.d.ts", "wasm/turnout_wasm_bg.wasm.d.ts", "wasm/package.json", "wasm/README.md"] {
        let _ = std::fs::remove_file(pkg.join(f));
    }
    // `require('turnout')`: node.js bundled as CommonJS. `import.meta.url` (node.js locates the
    // .wasm with it) becomes the URL of index.cjs, which sits next to node.js.
    exec(
        tool("esbuild")
            .arg(pkg.join("node.js"))
            .args([
                "--bundle",
                "--platform=node",
                "--format=cjs",
                "--target=node18",
                "--legal-comments=none",
                "--log-level=warning",
                "--define:import.meta.url=__turnout_module_url",
                "--banner:js=// require('turnout'): generated from node.js by esbuild (cargo xtask wasm build).\n\
                 const __turnout_module_url = require('node:url').pathToFileURL(__filename).href;",
            ])
            .arg(format!("--outfile={}", pkg.join("index.cjs").display())),
    )?;
    // The published manifest: wasm/js/package.json without its dev parts. Node
    // writes it, keeping the key order (the order of `exports` conditions matters).
    let script = "const fs = require('fs'); const [src, dst, version] = process.argv.slice(1); \
                  const p = JSON.parse(fs.readFileSync(src, 'utf8')); \
                  delete p.devDependencies; delete p.scripts; delete p.private; \
                  if (p.version !== version) throw new Error(`package.json version ${p.version}, workspace ${version}`); \
                  fs.writeFileSync(dst, JSON.stringify(p, null, 2) + '\\n');";
    exec(node().arg("-e").arg(script).arg(js.join("package.json")).arg(pkg.join("package.json")).arg(&version))
}

/// The workspace version, once checked against the package's two literals (`version` of
/// `wasm/js/package.json` and `VERSION` of `src/index.js`, both kept by `cargo xtask version`).
fn package_version() -> Result<String, String> {
    let version = crate::version::workspace_version()?;
    let js = js_dir();
    let index = std::fs::read_to_string(js.join("src/index.js")).map_err(|e| format!("wasm/js/src/index.js: {e}"))?;
    if !index.contains(&format!("export const VERSION = '{version}';")) {
        return Err(format!(
            "wasm/js/src/index.js: VERSION is not the workspace version {version} (run `cargo xtask version --set {version}`)"
        ));
    }
    let manifest =
        std::fs::read_to_string(js.join("package.json")).map_err(|e| format!("wasm/js/package.json: {e}"))?;
    if !manifest.contains(&format!("\"version\": \"{version}\"")) {
        return Err(format!(
            "wasm/js/package.json: version is not the workspace version {version} (run `cargo xtask version --set {version}`)"
        ));
    }
    Ok(version)
}

fn gzipped_len(path: &Path) -> Result<u64, String> {
    let out = Command::new("gzip").arg("-9").arg("-c").arg(path).output().map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip {} failed", path.display()));
    }
    Ok(out.stdout.len() as u64)
}

/// Debian's Chromium for the browser tests (never a browser download of a test tool).
pub(crate) fn ensure_chromium() -> Result<(), String> {
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

/// The wasm-opt arguments of the package build (`wasm/Cargo.toml`), so that the analysis runs the same passes.
fn wasm_opt_args() -> Result<Vec<String>, String> {
    let manifest = root().join("wasm/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let list = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("wasm-opt = ["))
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| format!("{}: no `wasm-opt = [...]` line", manifest.display()))?;
    Ok(list.split(',').map(|a| a.trim().trim_matches('"').to_string()).filter(|a| !a.is_empty()).collect())
}

/// The crate (or kind) an item of `twiggy top` belongs to: `turnout_core::config::compile::h..` is
/// `turnout_core`, `<f64 as core::fmt::Display>::fmt` is `core`; exports' bodies (wasm-bindgen's
/// shims, which the engine code they call is often inlined into) and data segments are their own rows.
fn item_group(name: &str) -> String {
    if name.starts_with("data segment") {
        return "(data segments)".into();
    }
    if name.ends_with("multivalue shim") || !name.contains("::") {
        return "(exports with the code inlined into them, glue)".into();
    }
    let mut n = name;
    // `<T as path::Trait>::f`: T's crate, or the trait's for a primitive T (`<f64 as core::fmt::Display>`).
    if let Some((ty, tr)) = name.strip_prefix('<').and_then(|x| x.split_once(" as ")) {
        n = if ty.contains("::") { ty } else { tr };
    }
    for prefix in ["<", "&", "mut ", "dyn "] {
        n = n.strip_prefix(prefix).unwrap_or(n);
    }
    let end = n.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(n.len());
    n[..end].to_string()
}

/// `cargo xtask wasm size [N]`: the built `.wasm` again with function names kept, by crate and top items.
fn size(top: usize) -> Result<(), String> {
    if version_of("twiggy").is_none() {
        step("cargo install twiggy (wasm size analysis)");
        exec(cargo().args(["install", "twiggy", "--locked"]))?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let input = target.join(TARGET).join("wasm-release/turnout_wasm.wasm");
    let out = target.join("wasm-size");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    step("wasm-bindgen --keep-debug, wasm-opt -g with the package's passes (target/wasm-size/named.wasm)");
    exec(
        tool("wasm-bindgen")
            .arg("--target")
            .arg("web")
            .arg("--weak-refs")
            .arg("--keep-debug")
            .arg("--out-dir")
            .arg(&out)
            .arg(&input),
    )?;
    let named = out.join("named.wasm");
    exec(
        tool("wasm-opt").args(wasm_opt_args()?).arg("-g").arg(out.join("turnout_wasm_bg.wasm")).arg("-o").arg(&named),
    )?;
    let csv = tool("twiggy")
        .args(["top", "-n", "1000000", "-f", "csv"])
        .arg(&named)
        .output()
        .map_err(|e| format!("twiggy: {e}"))?;
    if !csv.status.success() {
        return Err(format!("twiggy top failed: {}", String::from_utf8_lossy(&csv.stderr)));
    }
    // Rows: "name",shallow bytes,shallow %,... (names with commas are quoted).
    let mut groups: Vec<(String, u64)> = Vec::new();
    let mut total = 0;
    for line in String::from_utf8_lossy(&csv.stdout).lines().skip(1) {
        let (name, rest) = match line.strip_prefix('"') {
            Some(q) => q.rsplit_once("\",").map(|(n, r)| (n.replace("\"\"", "\""), r)).unwrap_or_default(),
            None => line.split_once(',').map(|(n, r)| (n.to_string(), r)).unwrap_or_default(),
        };
        let Some(bytes) = rest.split(',').next().and_then(|b| b.parse::<u64>().ok()) else { continue };
        if name.contains("names\" subsection") {
            continue; // the name section itself: not in the shipped module
        }
        total += bytes;
        let g = item_group(&name);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some(slot) => slot.1 += bytes,
            None => groups.push((g, bytes)),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    println!("\nBy crate (shallow bytes of code and data, names excluded; total {total}):");
    for (g, bytes) in groups.iter().take(25) {
        println!("{bytes:>9}  {:>5.1}%  {g}", *bytes as f64 * 100.0 / total.max(1) as f64);
    }
    println!("\nLargest items:");
    exec(tool("twiggy").args(["top", "-n", &top.to_string()]).arg(&named))?;
    println!("\nFurther: twiggy dominators|paths {} (see docs/benchmarks.md, WebAssembly size)", crate::rel(&named));
    Ok(())
}
