//! The Rust demo runner keeps the runner contract of tests/bench/README.md,
//! and the example program delivers its events to the collector.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use turnout_core::{Client, ClientOptions, Facets, FixedClock};

const NOW_MS: i64 = 1_763_800_000_000;

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/example.json")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turnout-example-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn runner_writes_the_contract_lines_and_timing() {
    let dir = temp("runner");
    let contexts = [
        r#"{"variable": "automatedMessageDelay", "facets": {"city": 6, "svc": 302, "pax": 1001}}"#,
        r#"{"variable": "automatedMessageDelay", "facets": {"city": 10, "pax": {"$int64": "9007199254740993"}}}"#,
        r#"{"variable": "checkoutButtonColor", "facets": {"pax": 1003, "country": "SG"}}"#,
        r#"{"variable": "timeSlicedShuffleTest1", "facets": {"city": 5, "ts": 1528714700}}"#,
        r#"{"variable": "surgeMultiplier", "facets": {"city": 10}}"#,
        r#"{"variable": "noSuchVariable", "facets": {}}"#,
        r#"{"variable": "automatedMessageDelay", "facets": {"city": 10, "pax": 8}}"#,
    ];
    let input = dir.join("CONTEXTS.jsonl");
    std::fs::write(&input, contexts.join("\n") + "\n\n").expect("write contexts");
    let (out, timing) = (dir.join("DECISIONS.jsonl"), dir.join("TIMING.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_turnout-runner"))
        .arg("--config")
        .arg(example_config())
        .arg("--contexts")
        .arg(&input)
        .args(["--now-ms", &NOW_MS.to_string()])
        .arg("--out")
        .arg(&out)
        .arg("--timing")
        .arg(&timing)
        .status()
        .expect("runner starts");
    assert!(status.success());

    // The expected lines: the one-shot path (what `turnout eval` prints), same fixed clock.
    let config = std::fs::read(example_config()).expect("config");
    let options = ClientOptions { clock: Arc::new(FixedClock::new(NOW_MS)), ..ClientOptions::default() };
    let (client, _) = Client::with_config(&config, options).expect("config loads");
    let text = std::fs::read_to_string(&out).expect("decisions");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), contexts.len());
    for (line, input) in got.iter().zip(contexts) {
        let input: Value = serde_json::from_str(input).expect("input");
        let facets = Facets::from_json(&input["facets"]).expect("facets");
        let want = client.get_variable(input["variable"].as_str().expect("name"), &facets).to_json_line();
        assert_eq!(*line, want, "exactly the line `turnout eval` prints");
        let v: Value = serde_json::from_str(line).expect("JSON line");
        let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        let mut want_keys = vec!["variable", "value", "source", "experiment", "rule", "choice", "reason", "errorCode"];
        want_keys.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, want_keys);
    }
    assert!(got[5].contains("\"errorCode\":\"FLAG_NOT_FOUND\""), "{}", got[5]);

    let t: Value = serde_json::from_str(&std::fs::read_to_string(&timing).expect("timing")).expect("timing JSON");
    assert_eq!(t["platform"], "rust");
    assert_eq!(t["decisions"], contexts.len());
    let ns = t["nsPerDecisionMedian"].as_f64().expect("a number");
    assert!(ns > 0.0 && ns < 1e6, "{ns}");
}

#[test]
fn runner_reports_bad_input_with_the_line_number() {
    let dir = temp("runner-bad");
    let input = dir.join("CONTEXTS.jsonl");
    std::fs::write(&input, "{\"variable\": \"automatedMessageDelay\", \"facets\": {}}\n{\"facets\": {}}\n")
        .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_turnout-runner"))
        .arg("--config")
        .arg(example_config())
        .arg("--contexts")
        .arg(&input)
        .args(["--now-ms", "0", "--out"])
        .arg(dir.join("d.jsonl"))
        .arg("--timing")
        .arg(dir.join("t.json"))
        .output()
        .expect("runner starts");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CONTEXTS.jsonl:2") && err.contains("variable"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_turnout-runner")).args(["--config"]).output().expect("starts");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

#[test]
fn example_delivers_its_decisions_and_metric_to_the_collector() {
    let dir = temp("example");
    let out = dir.join("events.jsonl");
    let collector =
        Arc::new(turnout_collector::Collector::open(turnout_collector::Options::new(&out)).expect("collector"));
    let running = turnout_collector::start("127.0.0.1:0", collector, 2).expect("listen");
    let result =
        Command::new(env!("CARGO_BIN_EXE_turnout-example")).arg(running.url("/events")).output().expect("starts");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
    assert!(stdout.contains("automatedMessageDelay for passenger 7 in city 10: 90 s"), "{stdout}");

    let events: Vec<Value> = std::fs::read_to_string(&out)
        .expect("events written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(running.collector().stats().batches, 1);
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"automatedMessageDelay"), "{names:?}");
    assert!(names.contains(&"checkoutButtonColor"), "{names:?}");
    assert!(names.contains(&"booking.pickupSeconds"), "{names:?}");
    assert!(events.iter().all(|e| e["sdk"] == "turnout-rust" && e["service"] == "booking"));
    running.stop();

    // Nothing listening: the example fails clearly (and keeps the batch).
    let result =
        Command::new(env!("CARGO_BIN_EXE_turnout-example")).arg("http://127.0.0.1:9/events").output().expect("starts");
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("kept for a retry"));
}
