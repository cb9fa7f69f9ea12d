//! The `turnout` CLI contract, exercised through the real binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn turnout(args: &[&str], stdin: &str) -> Output {
    turnout_bytes(args, stdin.as_bytes())
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

const SEED: &str = "examples/configs/seed-rollout.json";

#[test]
fn eval_json_lines_in_order_and_continues_after_bad_lines() {
    let input = concat!(
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 6, \"svc\": 302}}\n",
        "this is not json\n",
        "\n",
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 4}}\n",
        "{\"facets\": {}}\n",
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": [1]}}\n",
        "{\"variable\": \"nope\"}\n",
    );
    let o = turnout(&["eval", "--config", SEED, "--contexts", "-"], input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = lines(&o);
    assert_eq!(out.len(), 6);
    assert_eq!(
        out[0],
        serde_json::json!({"variable": "automatedMessageDelay", "value": 60, "source": "rollout", "experiment": null,
            "rule": 0, "choice": null, "reason": "TARGETING_MATCH", "errorCode": null})
    );
    assert_eq!(out[1]["line"], 2);
    assert!(out[1]["error"].as_str().unwrap().contains("not valid JSON"));
    assert_eq!(
        (out[2]["value"].clone(), out[2]["source"].clone()),
        (serde_json::json!(30), serde_json::json!("default"))
    );
    assert!(out[3]["error"].as_str().unwrap().contains("variable"));
    assert!(out[4]["error"].as_str().unwrap().contains("facet `city`"));
    assert_eq!(out[5]["value"], serde_json::Value::Null);
    assert_eq!(out[5]["errorCode"], "FLAG_NOT_FOUND");
    // The keys come in contract order.
    let first = String::from_utf8_lossy(&o.stdout).lines().next().unwrap().to_string();
    assert!(first.starts_with("{\"variable\":\"automatedMessageDelay\",\"value\":60,\"source\""), "{first}");
}

#[test]
fn eval_reads_a_contexts_file() {
    let o =
        turnout(&["eval", "--config", "examples/configs/example.json", "--contexts", "examples/contexts.jsonl"], "");
    assert!(o.status.success());
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/contexts.jsonl")).unwrap();
    assert_eq!(lines(&o).len(), expected.lines().filter(|l| !l.trim().is_empty()).count());
}

#[test]
fn eval_single_variable_with_facet_flags() {
    let o = turnout(
        &["eval", "--config", SEED, "--variable", "automatedMessageDelay", "--facet", "city=6", "--facet", "svc=11"],
        "",
    );
    assert!(o.status.success());
    assert_eq!(lines(&o)[0]["value"], 60);
    // A quoted value stays a string, and a string "6" still equals 6.
    let o = turnout(
        &[
            "eval",
            "--config",
            SEED,
            "--variable",
            "automatedMessageDelay",
            "--facet",
            "city=\"6\"",
            "--facet",
            "svc=11",
        ],
        "",
    );
    assert_eq!(lines(&o)[0]["value"], 60);
    let bad = turnout(&["eval", "--config", SEED, "--variable", "automatedMessageDelay", "--facet", "city"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME=VALUE"));
}

#[test]
fn explain_says_why() {
    let o = turnout(
        &[
            "eval",
            "--config",
            SEED,
            "--variable",
            "automatedMessageDelay",
            "--facet",
            "city=6",
            "--facet",
            "svc=7",
            "--explain",
        ],
        "",
    );
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("value      30"), "{text}");
    assert!(text.contains("constraint 1 `svc in [302, 11]` does not hold (svc is \"7\")"), "{text}");
    assert!(text.contains("rule 1: constraint 0 `city = 10` does not hold"), "{text}");
}

#[test]
fn eval_with_a_broken_config_exits_2() {
    let dir = std::env::temp_dir().join(format!("turnout-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "~", "value": 1}]}]}"#,
    )
    .unwrap();
    let o = turnout(&["eval", "--config", path.to_str().unwrap(), "--contexts", "-"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown op `~`"));
    let v = turnout(&["validate", path.to_str().unwrap(), SEED], "");
    assert_eq!(v.status.code(), Some(1));
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text.contains("rollout \"v\": rollouts[0].constraints[0].op: unknown op `~`"), "{text}");
    assert!(text.contains("seed-rollout.json: ok"), "{text}");
}

#[test]
fn validate_accepts_the_examples() {
    let o = turnout(&["validate", SEED, "examples/configs/seed-experiment.json", "examples/configs/example.json"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn eval_events_then_decode_shows_what_the_config_would_report() {
    let dir = std::env::temp_dir().join(format!("turnout-cli-ev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.trnb");
    let input = concat!(
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 6, \"svc\": 302, \"pax\": 1}}\n",
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 6, \"svc\": 302, \"pax\": 1}}\n",
        "{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 4}}\n",
        "{\"variable\": \"unknown\", \"facets\": {\"city\": 4}}\n",
    );
    let o = turnout(
        &[
            "eval",
            "--config",
            SEED,
            "--contexts",
            "-",
            "--now-ms",
            "1700000000000",
            "--service",
            "pricing",
            "--events",
            events.to_str().unwrap(),
        ],
        input,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = turnout(&["decode", events.to_str().unwrap()], "");
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let out = lines(&d);
    assert_eq!(out.len(), 2, "two distinct decisions; the repeat is folded; the fallback is not recorded");
    assert_eq!(out[0]["count"], 2);
    assert_eq!(out[0]["value"], 60);
    assert_eq!(out[0]["service"], "pricing");
    assert_eq!(out[0]["seq"], 1);
    assert_eq!(out[0]["clientId"], "turnout-cli");
    assert_eq!(out[0]["time"], 1_700_000_000_000i64);
    assert_eq!(out[0]["facets"], serde_json::json!({"city": 6, "svc": 302, "pax": 1}));
    assert_eq!((out[1]["source"].as_str(), out[1]["value"].as_i64()), (Some("default"), Some(30)));
    // A corrupted file is rejected with a clear error and a non-zero exit.
    let mut bytes = std::fs::read(&events).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&events, &bytes).unwrap();
    let bad = turnout(&["decode", events.to_str().unwrap()], "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("checksum mismatch"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `turnout` with raw bytes on stdin.
fn turnout_bytes(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnout"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn turnout");
    let mut stdin_pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    // Written from another thread: a big input must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin_pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

#[test]
fn eval_reports_invalid_utf8_and_overlong_lines_and_goes_on() {
    // An invalid UTF-8 line used to stop the run (exit 2), losing the
    // later lines and the --events file (spec section 14).
    let dir = std::env::temp_dir().join(format!("turnout-cli-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.bin");
    let good = b"{\"variable\": \"automatedMessageDelay\", \"facets\": {\"city\": 6, \"svc\": 302}}\n";
    let mut input = good.to_vec();
    input.extend_from_slice(b"{\"variable\": \"automatedMessageDelay\", \"facets\": {\"x\": \"\xff\xfe\"}}\n");
    input.extend_from_slice(good);
    input.extend_from_slice(b"\xc3\r\n");
    // Over the 16 MiB line limit: an error line, not 16 MiB held twice over.
    input.extend(std::iter::repeat_n(b'x', (16 << 20) + 10));
    input.push(b'\n');
    input.extend_from_slice(good);
    let o = turnout_bytes(&["eval", "--config", SEED, "--contexts", "-", "--events", events.to_str().unwrap()], &input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = lines(&o);
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(out[0]["value"], 60);
    assert_eq!(out[1]["line"], 2);
    assert!(out[1]["error"].as_str().unwrap().contains("UTF-8"), "{}", out[1]);
    assert_eq!(out[2]["value"], 60);
    assert_eq!(out[3]["line"], 4);
    assert!(out[3]["error"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(out[4]["line"], 5);
    assert!(out[4]["error"].as_str().unwrap().contains("longer than"), "{}", out[4]);
    assert_eq!(out[5]["value"], 60);
    // The events file was written, with the three decisions.
    let d = turnout(&["decode", events.to_str().unwrap()], "");
    assert!(d.status.success());
    let recorded: u64 = lines(&d).iter().map(|l| l["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(recorded, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limits_are_clear_errors_in_validate_eval_and_decode() {
    let dir = std::env::temp_dir().join(format!("turnout-cli-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A segment of 1,000 constraints referenced 20,000 times (1.6 GB before).
    let cs: Vec<serde_json::Value> =
        (0..1_000).map(|i| serde_json::json!({"target": "city", "op": "=", "value": i})).collect();
    let cfg = serde_json::json!({"segments": {"s": cs},
        "rollouts": [{"variable": "v", "rollouts": [{"value": 1, "segments": vec!["s"; 20_000]}]}]});
    let path = dir.join("blowup.json");
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let v = turnout(&["validate", p], "");
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).contains("expanded_constraints"), "{v:?}");
    let e = turnout(&["eval", "--config", p, "--variable", "v"], "");
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("expanded_constraints"));
    // The config size limit is the caller's to set.
    let e = turnout(&["eval", "--config", SEED, "--variable", "x", "--max-config-bytes", "100"], "");
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("config_bytes"));
    let _ = std::fs::remove_dir_all(&dir);
}
