//! Memory per loaded variable and per live context, natively (docs/benchmarks.md, "Memory"):
//! a bundle of 10,000 copies of the seed rollout (`examples/configs/seed-rollout.json`: two rules,
//! two constraints each, labels, a default) under distinct names, and 1,000 prepared contexts of
//! three facets (the facet set included). The bytes retained are counted by a tracking allocator (the live bytes after the
//! call minus before it, the call's temporaries freed). Run with `--nocapture` to see the numbers.

#[path = "common/peak.rs"]
#[allow(dead_code)] // this test uses the allocator and `live` only
mod peak;

use serde_json::{json, Value};
use turnout_core::{Client, ClientOptions, Facets};

#[global_allocator]
static ALLOC: peak::Peak = peak::Peak;

const VARIABLES: usize = 10_000;
const CONTEXTS: usize = 1_000;

/// The seed rollout, `n` times under distinct names, as one bundle.
fn bundle(n: usize) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/configs/seed-rollout.json");
    let seed: Value = serde_json::from_slice(&std::fs::read(path).expect("the seed rollout")).expect("JSON");
    let rollouts: Vec<Value> = (0..n)
        .map(|i| {
            let mut d = seed.clone();
            d["variable"] = json!(format!("automatedMessageDelay{i}"));
            if let Some(o) = d.as_object_mut() {
                o.remove("schema");
                o.remove("version");
            }
            d
        })
        .collect();
    serde_json::to_vec(&json!({"schema": 1, "version": 1, "rollouts": rollouts})).expect("JSON")
}

#[test]
fn a_loaded_variable_and_a_context_cost_what_docs_say() {
    let bytes = bundle(VARIABLES);
    let client = Client::new(ClientOptions::default());
    let before = peak::live();
    let report = client.update_config(&bytes).expect("the bundle loads");
    drop(report);
    let per_variable = (peak::live() - before) as f64 / VARIABLES as f64;
    assert_eq!(client.variable_names().len(), VARIABLES);

    let before = peak::live();
    let contexts: Vec<_> =
        (0..CONTEXTS as i64).map(|i| client.context(Facets::new().city(6).service(302).passenger(1_000 + i))).collect();
    let per_context = (peak::live() - before) as f64 / CONTEXTS as f64;
    let v = client.variable("automatedMessageDelay7");
    assert_eq!(contexts[0].int64(&v, 0), 60, "the copies answer as the seed");

    eprintln!(
        "memory: {per_variable:.0} bytes per loaded variable ({VARIABLES} seed rollouts, {} bytes of JSON each), \
         {per_context:.0} bytes per live context (3 facets, their set included)",
        bytes.len() / VARIABLES
    );
    // Issue 15's bound: no more than 2 KB per variable of a typical rollout.
    assert!(per_variable <= 2048.0, "{per_variable:.0} bytes per variable");
}
