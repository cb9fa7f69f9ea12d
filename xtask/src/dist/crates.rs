//! The Rust crates: `turnout-core` (the engine) and `turnout-cli` (the `turnout` binary), as
//! `cargo package` writes them for crates.io.
//!
//! `cargo package -p turnout-core -p turnout-cli` packages both and verifies each by building it
//! from its packaged sources alone (the CLI against the packaged core, through cargo's local
//! overlay of the workspace's own crates). The consumer test unpacks the core crate outside the
//! repository and builds a program against it through `[patch.crates-io]`, exactly as a project
//! would use the crates.io release, and `cargo install --path cli` installs the binary.

use serde_json::{json, Value};

use super::{consumer_command, copy_into, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{cargo, root, run as exec, step};

const CRATES: [&str; 2] = ["turnout-core", "turnout-cli"];

/// `cargo package` of both crates into `target/dist/crates/`.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    let out = d.path("crates");
    fresh_dir(&out)?;
    step("cargo package -p turnout-core -p turnout-cli (each verified by a build of its packaged sources)");
    // --allow-dirty: a developer's tree may have uncommitted changes; the crate records that
    // in .cargo_vcs_info.json. CI packages a clean clone.
    forget_overlay_sources(&d.version)?;
    exec(cargo().args(["package", "--quiet", "--allow-dirty", "-p", "turnout-core", "-p", "turnout-cli"]))?;
    let mut files = Vec::new();
    for name in CRATES {
        let file = format!("{name}-{}.crate", d.version);
        copy_into(&root().join("target/package").join(&file), &out)?;
        files.push(json!(format!("crates/{file}")));
    }
    Ok(Value::Array(files))
}

/// Removes cargo's unpacked copies of our crates at this version from its local overlay
/// registries (`$CARGO_HOME/registry/src/-<hash>/turnout-core-<version>`). `cargo package`
/// verifies the CLI against the packaged core through such a registry, whose hash depends only
/// on the checkout's path, and reuses an unpacked copy it finds there: a second checkout at the
/// same path (a CI clone) would verify against the sources packaged last time at this version.
fn forget_overlay_sources(version: &str) -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else { return Ok(()) };
    let Ok(registries) = std::fs::read_dir(&src) else { return Ok(()) };
    for reg in registries.flatten() {
        // Overlay registries are named `-<hash>`; crates.io's `index.crates.io-<hash>` is left alone.
        if !reg.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in CRATES {
            let dir = reg.path().join(format!("{name}-{version}"));
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
        }
    }
    Ok(())
}

const MAIN_RS: &str = r#"//! A project using the turnout-core crate: the decision of every context, one per line.
use std::io::BufRead;
use turnout_core::{Client, ClientOptions, Facets};

fn main() {
    let variable = std::env::args().nth(1).expect("variable name");
    let config = std::fs::read("config.json").expect("config.json");
    let (client, _report) = Client::with_config(&config, ClientOptions::default()).expect("a valid config");
    let contexts = std::io::BufReader::new(std::fs::File::open("contexts.jsonl").expect("contexts.jsonl"));
    for line in contexts.lines() {
        let facets: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line.unwrap()).unwrap();
        let mut f = Facets::new();
        for (k, v) in facets {
            f.set(k, v.as_i64().expect("integer facets"));
        }
        println!("{}", client.get_variable(&variable, &f).int64(0));
    }
}
"#;

/// Builds a consumer of the packaged core crate outside the repository, and installs the CLI.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let scratch = Scratch::new("crates")?;
    let vendor = scratch.0.join("vendor");
    std::fs::create_dir_all(&vendor).map_err(|e| e.to_string())?;
    let files: Vec<&str> =
        entry.as_array().ok_or("crates entry is not a list")?.iter().filter_map(Value::as_str).collect();
    let core = files.iter().find(|f| f.contains("turnout-core-")).ok_or("no turnout-core crate in the manifest")?;
    let krate = copy_into(&d.path(core), &scratch.0)?;
    exec(std::process::Command::new("tar").arg("-xzf").arg(&krate).arg("-C").arg(&vendor))?;
    let app = scratch.0.join("app");
    std::fs::create_dir_all(app.join("src")).map_err(|e| e.to_string())?;
    r.write_inputs(&app)?;
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nturnout-core = \"{v}\"\nserde_json = \"1\"\n\n\
             # The crates.io release, from the packaged .crate file.\n\
             [patch.crates-io]\nturnout-core = {{ path = \"../vendor/turnout-core-{v}\" }}\n",
            v = d.version
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(app.join("src/main.rs"), MAIN_RS).map_err(|e| e.to_string())?;
    step("crates: cargo run in a fresh project depending on turnout-core from the packaged crate");
    let out = output(consumer_command("cargo", &app).args(["run", "--quiet", "--", VARIABLE]))?;
    r.check("rust (turnout-core crate)", &out)?;
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).map_err(|e| e.to_string())?;
    if !lock.contains(&format!("name = \"turnout-core\"\nversion = \"{}\"", d.version)) {
        return Err(format!("the consumer's Cargo.lock does not resolve turnout-core {}", d.version));
    }

    step("crates: cargo install --path cli (the binary, from the repository's workspace build)");
    let bin = scratch.0.join("installed");
    exec(cargo().args(["install", "--quiet", "--locked", "--path", "cli", "--root"]).arg(&bin))?;
    let version = output(consumer_command(bin.join("bin/turnout"), &scratch.0).arg("--version"))?;
    if version.trim() != format!("turnout {}", d.version) {
        return Err(format!("installed turnout --version printed {version:?}"));
    }
    println!("cargo install --path cli: {}", version.trim());
    Ok(())
}
