//! Runs every conformance vector file listed in `tests/conformance/index.json`
//! through the engine and compares with the expected decisions. Every
//! binding runs the same files the same way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use turnout_core::{Client, ClientOptions, Facets, FixedClock};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

fn load(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Merges one vector file's counts into `target/conformance/rust.json` (the
/// matrix of `cargo xtask conformance`; tests/bench/README.md). Both tests of
/// this file write to it, hence the lock.
fn record(file: &str, passed: usize, failed: usize) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/conformance");
    std::fs::create_dir_all(&dir).expect("target/conformance");
    let path = dir.join("rust.json");
    let mut report: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|v: &Value| v["files"].is_object())
        .unwrap_or_else(|| serde_json::json!({"platform": "rust", "files": {}}));
    report["files"][file] = serde_json::json!({"passed": passed, "failed": failed});
    std::fs::write(&path, serde_json::to_string_pretty(&report).expect("JSON") + "\n").expect("write rust.json");
}

#[test]
fn every_vector_file_passes() {
    let index = load(&dir().join("index.json"));
    assert_eq!(index["specVersion"], turnout_core::SPEC_VERSION);
    let files = index["files"].as_array().expect("index.files");
    assert!(!files.is_empty());
    let mut total = 0;
    let mut failures = Vec::new();
    for entry in files {
        if entry["kind"] != "decisions" {
            continue;
        }
        let path = dir().join(entry["path"].as_str().expect("path"));
        let file = load(&path);
        let default_now = file["nowMs"].as_i64().expect("nowMs");
        let clock = Arc::new(FixedClock::new(default_now));
        let opts = ClientOptions { clock: clock.clone(), ..Default::default() };
        let (client, _) = Client::with_config(file["config"].to_string().as_bytes(), opts)
            .unwrap_or_else(|e| panic!("{}: config: {e}", path.display()));
        let cases = file["cases"].as_array().expect("cases");
        assert_eq!(entry["cases"].as_u64(), Some(cases.len() as u64), "{}: index count", path.display());
        let failed_before = failures.len();
        for (i, case) in cases.iter().enumerate() {
            clock.set(case["nowMs"].as_i64().unwrap_or(default_now));
            let facets = Facets::from_json(&case["facets"]).expect("facets");
            let var = case["variable"].as_str().expect("variable");
            let mut got = client.get_variable(var, &facets).to_json();
            got.as_object_mut().expect("object").remove("variable");
            // The prepared path must agree with the one-shot path.
            let ctx = client.context(facets.clone());
            let mut prepared = ctx.decision(&client.variable(var)).to_json();
            prepared.as_object_mut().expect("object").remove("variable");
            if got != case["expected"] || prepared != got {
                failures.push(format!(
                    "{}#{i} {var} {}: expected {} got {got}",
                    entry["path"], case["facets"], case["expected"]
                ));
            }
            total += 1;
        }
        let failed = failures.len() - failed_before;
        record(entry["path"].as_str().expect("path"), cases.len() - failed, failed);
    }
    assert!(total >= 2000, "only {total} cases");
    assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
    println!("conformance: {total} passed, 0 failed");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn every_batch_vector_passes() {
    let index = load(&dir().join("index.json"));
    let mut total = 0;
    for entry in index["files"].as_array().expect("files") {
        if entry["kind"] != "batches" {
            continue;
        }
        let path = dir().join(entry["path"].as_str().expect("path"));
        let file = load(&path);
        for case in file["cases"].as_array().expect("cases") {
            let name = case["name"].as_str().unwrap_or("?");
            let header: turnout_core::BatchHeader = serde_json::from_value(case["header"].clone()).expect("header");
            let events: Vec<turnout_core::Event> = case["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| turnout_core::Event::from_json(e).expect("event"))
                .collect();
            let bytes = unhex(case["hex"].as_str().expect("hex"));
            // Encode: exactly these bytes.
            assert_eq!(turnout_core::encode_batch(&header, &events), bytes, "{name}: encoded bytes differ");
            // Decode: exactly these events and header.
            let decoded = turnout_core::decode_batch(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(decoded.header, header, "{name}");
            assert_eq!(decoded.events, events, "{name}");
            total += 1;
        }
        for case in file["invalid"].as_array().expect("invalid") {
            let name = case["name"].as_str().unwrap_or("?");
            let err = turnout_core::decode_batch(&unhex(case["hex"].as_str().expect("hex")))
                .expect_err(&format!("{name}: a corrupted batch was accepted"));
            let kind = match err {
                turnout_core::DecodeError::NotABatch => "not-a-batch",
                turnout_core::DecodeError::Version(_) => "version",
                turnout_core::DecodeError::Checksum => "checksum",
                turnout_core::DecodeError::Malformed { .. } => "malformed",
                turnout_core::DecodeError::Limit(_) => "limit",
            };
            assert_eq!(kind, case["error"], "{name}");
            total += 1;
        }
        assert_eq!(entry["cases"].as_u64(), Some(total as u64));
        // Any failure above panics first, so reaching here means every case passed.
        record(entry["path"].as_str().expect("path"), total, 0);
    }
    assert!(total >= 10, "only {total} batch vectors");
    println!("batch vectors: {total} passed, 0 failed");
}

#[test]
fn every_sync_script_passes() {
    let index = load(&dir().join("index.json"));
    let mut total = 0;
    for entry in index["files"].as_array().expect("files") {
        if entry["kind"] != "sync" {
            continue;
        }
        let path = dir().join(entry["path"].as_str().expect("path"));
        let file = load(&path);
        let scripts = file["scripts"].as_array().expect("scripts");
        assert_eq!(entry["cases"].as_u64(), Some(scripts.len() as u64), "{}: index count", path.display());
        let failures: Vec<String> =
            scripts.iter().filter_map(|s| turnout_core::sync::script::run_script(s, false).err()).collect();
        record(entry["path"].as_str().expect("path"), scripts.len() - failures.len(), failures.len());
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        total += scripts.len();
    }
    assert!(total >= 6, "only {total} sync scripts");
    println!("sync scripts: {total} passed, 0 failed");
}
