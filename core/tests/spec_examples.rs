//! The worked examples of docs/spec.md, checked against the engine.
//!
//! `tests/anchors/spec_examples.json` is written by an independent Python
//! reference (`tests/anchors/spec_examples.py`, xxh3 from PyPI `xxhash`, the
//! rest re-implemented from the spec). This test evaluates every case with
//! turnout-core and asserts the same decision, the same bucket values and the
//! same splitmix64 draws.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use turnout_core::{bucket, hash_to_unit_interval, Client, ClientOptions, Facets, FixedClock, SplitMix64};

fn load_cases() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/anchors/spec_examples.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("spec_examples.json is valid JSON");
    v.as_array().expect("spec_examples.json is an array of cases").clone()
}

fn client_for(case: &Value) -> Client {
    let name = case["name"].as_str().unwrap_or("?");
    let now_ms = case["now_ms"].as_i64().unwrap_or(0);
    let options = ClientOptions { clock: Arc::new(FixedClock::new(now_ms)), ..Default::default() };
    let config = serde_json::to_vec(&case["config"]).expect("config serialises");
    let (client, _report) =
        Client::with_config(&config, options).unwrap_or_else(|e| panic!("{name}: config rejected: {e}"));
    client
}

fn parse_hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex u64")
}

#[test]
fn there_are_enough_worked_examples() {
    let cases = load_cases();
    assert!(cases.len() >= 12, "docs/spec.md promises at least 12 worked examples, found {}", cases.len());
}

#[test]
fn decisions_match_the_reference() {
    let mut failures = Vec::new();
    for case in load_cases() {
        let name = case["name"].as_str().unwrap_or("?").to_string();
        let variable = case["variable"].as_str().expect("variable");
        let facets = Facets::from_json(&case["facets"]).unwrap_or_else(|e| panic!("{name}: facets: {e}"));
        let client = client_for(&case);
        let mut got = client.get_variable(variable, &facets).to_json();
        let obj = got.as_object_mut().expect("Decision::to_json is an object");
        assert_eq!(obj.remove("variable"), Some(Value::from(variable)), "{name}: variable echoed");
        if got != case["expected"] {
            failures.push(format!("{name}:\n  expected {}\n  engine   {}", case["expected"], got));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn buckets_match_the_reference() {
    let mut checked = 0;
    for case in load_cases() {
        let name = case["name"].as_str().unwrap_or("?");
        for b in case["buckets"].as_array().expect("buckets") {
            let salt = b["salt"].as_str().expect("salt");
            let unit = b["unit"].as_str().expect("unit");
            let want = b["bucket"].as_f64().expect("bucket");
            let have = bucket(salt, unit);
            assert_eq!(have.to_bits(), want.to_bits(), "{name}: bucket({salt:?}, {unit:?}) = {have}, reference {want}");
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} bucket values were checked");
}

#[test]
fn hashes_and_shuffles_match_the_reference() {
    let mut shuffles = 0;
    for case in load_cases() {
        let name = case["name"].as_str().unwrap_or("?");
        for step in case["steps"].as_array().expect("steps") {
            let Some(h) = step.get("hash") else { continue };
            // The bucket is the top 53 bits of the recorded xxh3_64.
            let x = parse_hex_u64(h["xxh3_64"].as_str().expect("xxh3_64"));
            assert_eq!(x >> 11, h["top53"].as_u64().expect("top53"), "{name}: top53");
            assert_eq!(hash_to_unit_interval(x), h["bucket"].as_f64().expect("bucket"), "{name}: bucket of hash");
            // The recorded bytes are salt ++ 0x00 ++ unit.
            let mut bytes = h["salt"].as_str().expect("salt").as_bytes().to_vec();
            bytes.push(0);
            bytes.extend_from_slice(h["unit"].as_str().expect("unit").as_bytes());
            let mut hex = String::with_capacity(bytes.len() * 2);
            for b in &bytes {
                hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
            assert_eq!(hex, h["bytes_hex"].as_str().expect("bytes_hex"), "{name}: bytes hashed");

            if step["strategy"] == "timeSliceShuffle" {
                let seed = parse_hex_u64(step["splitmix64_seed"].as_str().expect("seed"));
                assert_eq!(seed, x, "{name}: the splitmix64 seed is the key's xxh3_64");
                let mut rng = SplitMix64::new(seed);
                let n = step["order"].as_array().expect("order").len();
                let mut order: Vec<u64> = (0..n as u64).collect();
                for d in step["draws"].as_array().expect("draws") {
                    let i = d["i"].as_u64().expect("i");
                    let next = rng.next();
                    assert_eq!(next, parse_hex_u64(d["next"].as_str().expect("next")), "{name}: splitmix64 draw");
                    let j = next % (i + 1);
                    assert_eq!(j, d["j"].as_u64().expect("j"), "{name}: Fisher-Yates j");
                    order.swap(i as usize, j as usize);
                }
                let want: Vec<u64> = step["order"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                assert_eq!(order, want, "{name}: shuffled order");
                shuffles += 1;
            }
        }
    }
    assert!(shuffles >= 1, "no time-slice example was checked");
}
