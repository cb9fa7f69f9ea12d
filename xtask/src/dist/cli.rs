//! The `turnout` command line as release tarballs: static musl binaries for x86_64 and aarch64
//! Linux, each with a `.sha256` file (`sha256sum -c` reads it).
//!
//! `cli/turnout-<v>-<triple>.tar.gz` holds `turnout-<v>-<triple>/{turnout, README.md, LICENSE}`.
//! Both are linked by zig (cargo-zigbuild, [`super::native`]) against musl, statically: they run on
//! any Linux of that architecture, glibc or not. The consumer test unpacks the host's tarball
//! outside the repository, checks that the binary is static and reports the version, and its
//! `turnout eval` gives the reference decisions every other consumer test compares with.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::native::{ensure_target, strip_debug, tools_path};
use super::{consumer_command, copy_into, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{cargo, root, run as exec, step};

/// The CLI's targets: (Rust triple, ELF machine number).
const TARGETS: [(&str, u16); 2] = [("x86_64-unknown-linux-musl", 62), ("aarch64-unknown-linux-musl", 183)];

fn tarball_name(version: &str, triple: &str) -> String {
    format!("turnout-{version}-{triple}.tar.gz")
}

/// Builds both tarballs; the entry is the list of tarballs (relative to `target/dist/`).
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    let out = d.path("cli");
    fresh_dir(&out)?;
    let mut files = Vec::new();
    for (triple, _) in TARGETS {
        ensure_target(triple)?;
        step(&format!("cargo zigbuild --release -p turnout-cli --target {triple}"));
        exec(cargo().env("PATH", tools_path()?).args([
            "zigbuild",
            "--release",
            "--quiet",
            "-p",
            "turnout-cli",
            "--target",
            triple,
        ]))?;
        let bin = root().join("target").join(triple).join("release/turnout");
        strip_debug(&bin)?;
        let name = format!("turnout-{}-{triple}", d.version);
        let stage = root().join("target/dist-stage").join(&name);
        fresh_dir(&stage)?;
        for f in [bin, root().join("README.md"), root().join("LICENSE")] {
            copy_into(&f, &stage)?;
        }
        let tarball = out.join(tarball_name(&d.version, triple));
        exec(
            std::process::Command::new("tar")
                .args(["--owner=0", "--group=0", "--numeric-owner", "-czf"])
                .arg(&tarball)
                .arg("-C")
                .arg(stage.parent().ok_or("no parent")?)
                .arg(&name),
        )?;
        let bytes = std::fs::read(&tarball).map_err(|e| e.to_string())?;
        let sum = format!("{}  {}\n", super::sha256_hex(&bytes), tarball_name(&d.version, triple));
        std::fs::write(out.join(format!("{}.sha256", tarball_name(&d.version, triple))), sum)
            .map_err(|e| e.to_string())?;
        files.push(json!(format!("cli/{}", tarball_name(&d.version, triple))));
    }
    Ok(Value::Array(files))
}

/// The host tarball named by the manifest, unpacked into `dir`: the path of its `turnout`.
fn unpack_host(d: &Dist, entry: &Value, dir: &Path) -> Result<PathBuf, String> {
    let want = tarball_name(&d.version, host_triple());
    let rel = entry
        .as_array()
        .and_then(|a| a.iter().filter_map(Value::as_str).find(|f| f.ends_with(&want)))
        .ok_or_else(|| format!("MANIFEST.json: no cli tarball {want} (run `cargo xtask dist --only cli`)"))?;
    let tarball = copy_into(&d.path(rel), dir)?;
    exec(std::process::Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(dir))?;
    Ok(dir.join(format!("turnout-{}-{}", d.version, host_triple())).join("turnout"))
}

fn host_triple() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    }
}

/// `turnout eval` of the CLI artifact on the reference contexts: the int64 value of each.
pub(crate) fn eval_with_artifact(
    d: &Dist,
    manifest: &Map<String, Value>,
    config: &[u8],
    contexts: &[Value],
) -> Result<Vec<i64>, String> {
    let entry = manifest.get("cli").ok_or("MANIFEST.json has no cli entry (run `cargo xtask dist --only cli`)")?;
    let scratch = Scratch::new("reference")?;
    let turnout = unpack_host(d, entry, &scratch.0)?;
    std::fs::write(scratch.0.join("config.json"), config).map_err(|e| e.to_string())?;
    let lines: String = contexts.iter().map(|c| format!("{}\n", json!({"variable": VARIABLE, "facets": c}))).collect();
    std::fs::write(scratch.0.join("contexts.jsonl"), lines).map_err(|e| e.to_string())?;
    let out = output(consumer_command(&turnout, &scratch.0).args([
        "eval",
        "--config",
        "config.json",
        "--contexts",
        "contexts.jsonl",
    ]))?;
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("turnout eval printed {l}: {e}"))?;
            v.get("value").and_then(Value::as_i64).ok_or_else(|| format!("turnout eval: no integer value in {l}"))
        })
        .collect()
}

/// ELF facts: (machine, has a program interpreter = dynamically linked).
fn elf_facts(bytes: &[u8]) -> Result<(u16, bool), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let machine = u16_at(18);
    let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54) as usize, u16_at(56) as usize);
    let mut interp = false;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > bytes.len() {
            return Err("truncated program headers".into());
        }
        interp |= u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) == 3;
        // PT_INTERP
    }
    Ok((machine, interp))
}

/// Unpacks every tarball outside the repository: checksums match, binaries are static and of
/// the right architecture, the host one reports the version and decides like the reference.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let scratch = Scratch::new("cli")?;
    for (triple, machine) in TARGETS {
        let name = tarball_name(&d.version, triple);
        let tarball = copy_into(&d.path(&format!("cli/{name}")), &scratch.0)?;
        copy_into(&d.path(&format!("cli/{name}.sha256")), &scratch.0)?;
        output(consumer_command("sha256sum", &scratch.0).args(["-c", &format!("{name}.sha256")]))?;
        exec(std::process::Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&scratch.0))?;
        let bin = scratch.0.join(format!("turnout-{}-{triple}/turnout", d.version));
        let bytes = std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
        let (m, dynamic) = elf_facts(&bytes)?;
        if m != machine || dynamic {
            return Err(format!("{name}: ELF machine {m} (want {machine}), dynamically linked: {dynamic}"));
        }
        println!("{name}: static ELF for machine {m}, {} bytes", bytes.len());
    }
    let turnout = unpack_host(d, entry, &scratch.0)?;
    let version = output(consumer_command(&turnout, &scratch.0).arg("--version"))?;
    if version.trim() != format!("turnout {}", d.version) {
        return Err(format!("turnout --version printed {version:?}, want turnout {}", d.version));
    }
    r.write_inputs(&scratch.0)?;
    // One decision per context through the single-decision form of the command.
    let mut out = String::new();
    for c in &r.contexts {
        let mut cmd = consumer_command(&turnout, &scratch.0);
        cmd.args(["eval", "--config", "config.json", "--variable", VARIABLE]);
        for (k, v) in c.as_object().ok_or("context is not an object")? {
            cmd.arg("--facet").arg(format!("{k}={v}"));
        }
        let line = output(&mut cmd)?;
        let v: Value = serde_json::from_str(line.trim()).map_err(|e| format!("turnout eval printed {line}: {e}"))?;
        out.push_str(&format!("{}\n", v.get("value").cloned().unwrap_or(Value::Null)));
    }
    r.check("cli (turnout eval --facet)", &out)
}
