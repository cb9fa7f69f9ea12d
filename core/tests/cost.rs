//! The cost fuzzer (docs/spec.md section 17): generated hostile-shaped configs, contexts and
//! batches, whose oracle is resource use. For every input of n bytes, loading
//! (or building, or decoding) it must succeed or fail with a clear error
//! within 50 n bytes of peak memory (plus 1 MiB) and time linear in n
//! (`common/peak.rs`). Each shape mixes the attacks of the adversarial run at
//! random sizes: segment references, `in` lists, nesting, long strings,
//! regexes, slotted experiments, facets, shared facet sets.
//!
//! CI runs `TURNOUT_COST_CASES` cases per shape (default 24); raise it to
//! search longer, e.g. `TURNOUT_COST_CASES=2000 cargo test --release -p turnout-core --test cost`.

#[path = "common/peak.rs"]
mod peak;

use peak::{assert_within, measure};
use proptest::prelude::*;
use serde_json::{json, Value};
use turnout_core::tracking::encode_batch;
use turnout_core::{decode_batch, BatchHeader, Client, ClientOptions, Event, EventData, Facets};

#[global_allocator]
static GLOBAL: peak::Peak = peak::Peak;

fn cases() -> u32 {
    std::env::var("TURNOUT_COST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24)
}

/// One part of a generated config.
#[derive(Debug, Clone)]
enum Part {
    /// A segment of `k` constraints referenced `refs` times by one rule.
    Segment { k: usize, refs: usize },
    /// An `in` list of `n` entries.
    InList { n: usize },
    /// A default value nested `depth` arrays deep.
    Deep { depth: usize },
    /// A string value of `len` bytes.
    Long { len: usize },
    /// A regex `(a{m}){n}$`.
    Regex { m: u32, n: u32 },
    /// `count` regexes `a{m}$` in one rule, directly or through a segment referenced `refs` times.
    Regexes { count: usize, m: u32, refs: usize },
    /// `n` slotted experiments in one domain, overlapping or not.
    Slots { n: usize, overlap: bool },
    /// Two weights of `w`.
    Weights { w: f64 },
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        (1usize..1_500, 1usize..15_000).prop_map(|(k, refs)| Part::Segment { k, refs }),
        (0usize..150_000).prop_map(|n| Part::InList { n }),
        (1usize..120).prop_map(|depth| Part::Deep { depth }),
        (0usize..1_500_000).prop_map(|len| Part::Long { len }),
        (1u32..200, 1u32..400).prop_map(|(m, n)| Part::Regex { m, n }),
        (1usize..40, 1u32..70, 0usize..30).prop_map(|(count, m, refs)| Part::Regexes { count, m, refs }),
        (1usize..2_500, any::<bool>()).prop_map(|(n, overlap)| Part::Slots { n, overlap }),
        prop_oneof![Just(1.7e308), Just(1.0), Just(f64::MAX)].prop_map(|w| Part::Weights { w }),
    ]
}

fn config(parts: &[Part]) -> Vec<u8> {
    let mut segments = serde_json::Map::new();
    let mut rollouts = Vec::new();
    let mut experiments = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let var = format!("v{i}");
        match p {
            Part::Segment { k, refs } => {
                let cs: Vec<Value> = (0..*k).map(|j| json!({"target": "city", "op": "!=", "value": j})).collect();
                let name = format!("s{i}");
                segments.insert(name.clone(), json!(cs));
                rollouts.push(json!({"variable": var, "rollouts": [{"value": 1, "segments": vec![name; *refs]}], "default": 0}));
            }
            Part::InList { n } => {
                let list: Vec<Value> = (0..*n).map(|j| json!(j)).collect();
                rollouts.push(json!({"variable": var, "rollouts": [{"value": 1, "constraints": [{"target": "pax", "op": "in", "value": list}]}]}));
            }
            Part::Deep { depth } => {
                let text = format!("{}1{}", "[".repeat(*depth), "]".repeat(*depth));
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                rollouts.push(json!({"variable": var, "default": v}));
            }
            Part::Long { len } => rollouts.push(json!({"variable": var, "default": "x".repeat(*len)})),
            Part::Regex { m, n } => rollouts.push(json!({"variable": var, "rollouts": [{"value": 1, "constraints": [
                {"target": "s", "op": "regex", "value": format!("(a{{{m}}}){{{n}}}$")}]}]})),
            Part::Regexes { count, m, refs } => {
                let cs: Vec<Value> =
                    (0..*count).map(|_| json!({"target": "s", "op": "regex", "value": format!("a{{{m}}}$")})).collect();
                let rule = if *refs == 0 {
                    json!({"value": 1, "constraints": cs})
                } else {
                    segments.insert(format!("r{i}"), json!(cs));
                    json!({"value": 1, "segments": vec![format!("r{i}"); *refs]})
                };
                rollouts.push(json!({"variable": var, "rollouts": [rule]}));
            }
            Part::Slots { n, overlap } => {
                let w = 1.0 / *n as f64;
                for j in 0..*n {
                    experiments.push(json!({"name": format!("e{i}_{j}"), "domain": format!("d{i}"), "state": "RUNNING",
                        "slotting": {"byPercentage": w, "offset": if *overlap { 0.0 } else { j as f64 * w }, "facet": "pax"},
                        "variables": [{"name": format!("{var}_{j}"), "facets": ["pax"], "choices": [{"value": 0}, {"value": 1}]}]}));
                }
            }
            Part::Weights { w } => experiments.push(json!({"name": format!("w{i}"), "state": "RUNNING",
                "variables": [{"name": var, "facets": ["pax"], "choices": [{"value": 0, "weight": w}, {"value": 1, "weight": w}]}]})),
        }
    }
    serde_json::to_vec(&json!({"segments": segments, "rollouts": rollouts, "experiments": experiments})).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loading_any_config_costs_at_most_its_size(parts in prop::collection::vec(part(), 1..4)) {
        let cfg = config(&parts);
        let c = Client::new(ClientOptions::default());
        let (cost, r) = measure(|| c.update_config(&cfg));
        assert_within(&format!("{parts:?}"), cfg.len(), cost);
        // Loaded or not, a decision is taken and never panics, within the same budget.
        let facets = Facets::new().passenger(7).city(3).with("s", "a".repeat(4_000));
        let (cost, _) = measure(|| {
            for i in 0..parts.len() {
                std::hint::black_box(c.get_variable(&format!("v{i}"), &facets));
            }
        });
        assert_within(&format!("decisions on {parts:?} ({})", r.is_ok()), cfg.len(), cost);
    }

    #[test]
    fn building_any_context_costs_at_most_its_size(n in 0usize..6_000, len in 0usize..20_000, dup in 0usize..4) {
        let mut obj = serde_json::Map::new();
        for i in 0..n {
            obj.insert(format!("f{}", i / (dup + 1) * (dup + 1) + i % (dup + 1)), json!(i));
        }
        obj.insert("s".into(), json!("y".repeat(len)));
        let text = serde_json::to_string(&obj).unwrap();
        let (cost, _) = measure(|| Facets::from_json_str(&text));
        assert_within("context", text.len(), cost);
    }

    #[test]
    fn decoding_any_batch_costs_at_most_its_size(facets in 0usize..1_500, events in 1usize..60_000, value_len in 0usize..200) {
        let mut f = Facets::new();
        for i in 0..facets {
            f.set(format!("f{i}"), "v".repeat(value_len % 50) + &i.to_string());
        }
        let h = BatchHeader { client_id: "c".repeat(value_len), seq: 1, ..Default::default() };
        let evs: Vec<Event> = (0..events)
            .map(|i| Event {
                time_ms: i as i64,
                count: 1,
                service: "svc".into(),
                name: "n".repeat(1 + value_len).into(),
                data: EventData::Track { value: i as f64 },
                facets: f.clone(),
            })
            .collect();
        let b = encode_batch(&h, &evs);
        drop(evs);
        let (cost, r) = measure(|| {
            decode_batch(&b).map(|d| {
                // A consumer writing the JSON Lines out, one line at a time.
                let mut out = 0usize;
                turnout_core::host::for_each_event_line(&d, |l| out += l.to_string().len() + 1);
                out
            })
        });
        assert_within("batch", b.len(), cost);
        if let Ok(out) = r {
            prop_assert!(out <= 128 * b.len() + 65_536, "{out} bytes of output from {} bytes", b.len());
        }
    }
}
