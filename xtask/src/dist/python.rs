//! The Python package: manylinux wheels for x86_64 and aarch64 and an sdist, built by maturin.
//!
//! Why maturin: it is the field's tool for Rust extensions in Python, it has a UniFFI mode that
//! runs our own pinned `uniffi-bindgen` (the `turnout-ffi` crate's binary), it cross-compiles and
//! links against glibc 2.17 with zig (`--zig`, PyPI `ziglang`), checks the library's symbol
//! versions before it tags the wheel manylinux2014, and its sdist carries the Rust workspace
//! crates the library needs so `pip install` can build from source. auditwheel (PyPA's checker)
//! then confirms each wheel's tag independently.
//!
//! Wheels are `py3-none-manylinux_2_17_<arch>.manylinux2014_<arch>`: the library is loaded with
//! ctypes, so one wheel serves every CPython 3.8+ on that platform.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::native::{ensure_target, tools, tools_path};
use super::{consumer_command, copy_into, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{rel, root, run as exec, step};

/// The wheels' targets.
const TARGETS: [&str; 2] = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

fn package_dir() -> PathBuf {
    root().join("bindings/python")
}

/// `maturin build` of the wheel for `triple` into `out` (zig, manylinux2014); returns the wheel.
pub(crate) fn build_wheel(triple: &str, out: &Path) -> Result<PathBuf, String> {
    ensure_target(triple)?;
    let bin = tools()?;
    step(&format!("maturin build --release --zig --target {triple} (manylinux2014 wheel) -> {}", rel(out)));
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    exec(
        Command::new(bin.join("maturin"))
            .env("PATH", tools_path()?)
            .current_dir(package_dir())
            .args(["build", "--release", "--zig", "--quiet", "--target", triple, "--compatibility", "manylinux2014"])
            .arg("--out")
            .arg(out),
    )?;
    let arch = triple.split('-').next().unwrap_or_default();
    let wheel = wheels(out)
        .into_iter()
        .find(|w| w.to_string_lossy().ends_with(&format!("{arch}.whl")))
        .ok_or_else(|| format!("maturin wrote no {arch} wheel into {}", out.display()))?;
    strip_wheel(&wheel, arch)
}

/// Removes the debug info the standard library brings into the wheel's native library (its
/// line tables, several MB), keeping the symbol table: `wheel unpack`, `llvm-strip
/// --strip-debug`, `wheel pack` (which rewrites RECORD with the new hash and size).
fn strip_wheel(wheel: &Path, arch: &str) -> Result<PathBuf, String> {
    let bin = tools()?;
    let work = root().join("target/wheel-strip");
    fresh_dir(&work)?;
    exec(Command::new(bin.join("python")).args(["-m", "wheel", "unpack", "--dest"]).arg(&work).arg(wheel))?;
    let unpacked = std::fs::read_dir(&work)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .next()
        .ok_or("wheel unpack wrote nothing")?;
    let lib = unpacked.join("turnout/_generated/libturnout_ffi.so");
    super::native::strip_debug(&lib)?;
    let dir = wheel.parent().ok_or("no parent")?;
    std::fs::remove_file(wheel).map_err(|e| e.to_string())?;
    exec(Command::new(bin.join("python")).args(["-m", "wheel", "pack", "--dest-dir"]).arg(dir).arg(&unpacked))?;
    wheels(dir)
        .into_iter()
        .find(|w| w.to_string_lossy().ends_with(&format!("{arch}.whl")))
        .ok_or_else(|| format!("wheel pack wrote no {arch} wheel into {}", dir.display()))
}

fn wheels(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "whl")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `auditwheel show`: the manylinux tag the wheel's contents are consistent with.
fn auditwheel(wheel: &Path) -> Result<String, String> {
    let out = output(Command::new(tools()?.join("auditwheel")).arg("show").arg(wheel))?;
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let tag = flat
        .split("consistent with the following platform tag: ")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .map(str::to_string)
        .ok_or_else(|| format!("auditwheel show {}: no platform tag in\n{out}", wheel.display()))?;
    if !tag.starts_with("manylinux_2_17_") && !tag.starts_with("manylinux2014_") {
        return Err(format!("{}: auditwheel says {tag}, want manylinux_2_17 (glibc 2.17)", wheel.display()));
    }
    println!("auditwheel show {}: {tag}", wheel.file_name().unwrap_or_default().to_string_lossy());
    Ok(tag)
}

/// Both wheels and the sdist into `target/dist/python/`; the entry lists them.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    let out = d.path("python");
    let previous = root().join("target/python-dist");
    let reusable = if d.reuse_builds { wheels(&previous) } else { Vec::new() };
    fresh_dir(&out)?;
    let mut built = Vec::new();
    for triple in TARGETS {
        let arch = triple.split('-').next().unwrap_or_default();
        let wheel = match reusable.iter().find(|w| w.to_string_lossy().ends_with(&format!("{arch}.whl"))) {
            Some(w) => {
                println!("reusing {} (built by cargo xtask python)", rel(w));
                copy_into(w, &out)?
            }
            None => build_wheel(triple, &out)?,
        };
        auditwheel(&wheel)?;
        built.push(wheel);
    }
    step("maturin sdist (the Rust sources of core/ and ffi/ with the package)");
    exec(
        Command::new(tools()?.join("maturin"))
            .env("PATH", tools_path()?)
            .current_dir(package_dir())
            .args(["sdist", "--out"])
            .arg(&out),
    )?;
    let sdist = std::fs::read_dir(&out)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .ok_or("maturin sdist wrote no .tar.gz")?;
    let name = |p: &Path| format!("python/{}", p.file_name().unwrap_or_default().to_string_lossy());
    for w in &built {
        if !w.file_name().unwrap_or_default().to_string_lossy().starts_with(&format!("turnout-{}-", d.version)) {
            return Err(format!("{} does not carry version {}", w.display(), d.version));
        }
    }
    Ok(json!({
        "name": "turnout",
        "wheels": built.iter().map(|w| name(w)).collect::<Vec<_>>(),
        "sdist": name(&sdist),
    }))
}

/// The consumer script: the decisions of the contexts, one integer per line.
const SCRIPT: &str = r#"
import json, sys, turnout
expected_version, variable = sys.argv[1], sys.argv[2]
assert turnout.__version__ == expected_version, (turnout.__version__, expected_version)
assert "site-packages" in turnout.__file__, turnout.__file__
with turnout.Client(open("config.json", "rb").read(), service="consumer") as client:
    for line in open("contexts.jsonl"):
        print(client.get_variable(variable, json.loads(line)).int64(0))
"#;

fn venv(dir: &Path) -> Result<PathBuf, String> {
    exec(consumer_command("python3", dir.parent().unwrap_or(dir)).args(["-m", "venv"]).arg(dir))?;
    Ok(dir.join("bin/python"))
}

/// Installs the wheel, then (in a second fresh venv) the sdist, with pip from the copied
/// artifacts alone, and takes the reference decisions with each.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let scratch = Scratch::new("python")?;
    r.write_inputs(&scratch.0)?;
    std::fs::write(scratch.0.join("consumer.py"), SCRIPT).map_err(|e| e.to_string())?;
    let wheels_dir = scratch.0.join("wheels");
    let sdist_dir = scratch.0.join("sdist");
    for dir in [&wheels_dir, &sdist_dir] {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    for w in entry.get("wheels").and_then(Value::as_array).ok_or("python entry: no wheels")? {
        copy_into(&d.path(w.as_str().unwrap_or_default()), &wheels_dir)?;
    }
    let sdist = entry.get("sdist").and_then(Value::as_str).ok_or("python entry: no sdist")?;
    copy_into(&d.path(sdist), &sdist_dir)?;

    step("python: pip install --no-index --find-links wheels/ turnout (fresh venv)");
    let t = std::time::Instant::now();
    let py = venv(&scratch.0.join("venv-wheel"))?;
    exec(
        consumer_command(&py, &scratch.0)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links"])
            .arg(&wheels_dir)
            .arg(format!("turnout=={}", d.version)),
    )?;
    println!("wheel installed in {:.1} s", t.elapsed().as_secs_f64());
    let out = output(consumer_command(&py, &scratch.0).args(["consumer.py", &d.version, VARIABLE]))?;
    r.check("python (manylinux wheel)", &out)?;

    step("python: pip install --no-binary turnout --find-links sdist/ (fresh venv, cargo builds the library)");
    let t = std::time::Instant::now();
    let py = venv(&scratch.0.join("venv-sdist"))?;
    // The build backend comes from PyPI like any build requirement; turnout only from the sdist.
    exec(consumer_command(&py, &scratch.0).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "maturin>=1.16,<2",
    ]))?;
    // As in an activated venv: the backend runs `maturin` from the venv's bin.
    let mut path = vec![scratch.0.join("venv-sdist/bin")];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let path = std::env::join_paths(path).map_err(|e| e.to_string())?;
    exec(
        consumer_command(&py, &scratch.0)
            .env("PATH", path)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index"])
            .args(["--no-build-isolation", "--no-binary", "turnout", "--find-links"])
            .arg(&sdist_dir)
            .arg(format!("turnout=={}", d.version)),
    )?;
    println!("sdist built and installed in {:.1} s", t.elapsed().as_secs_f64());
    let out = output(consumer_command(&py, &scratch.0).args(["consumer.py", &d.version, VARIABLE]))?;
    r.check("python (sdist built with cargo)", &out)
}
