//! A fixed number of prepared decisions on the seed rollout, for instruction
//! counting with `valgrind --tool=callgrind` (repeatable on a shared machine,
//! unlike wall-clock time):
//!
//! ```text
//! cargo build --release -p turnout-core --example hotloop
//! valgrind --tool=callgrind target/release/examples/hotloop jakarta 100000 [off]
//! ```
//!
//! Cases: `singapore` (rule 0), `jakarta` (rule 1, inside the 25%),
//! `default` (no rule), `experiment` (a slotted weighted experiment).

use std::hint::black_box;
use std::sync::Arc;

use turnout_core::{Client, ClientOptions, DecisionEvents, Facets, FixedClock, TrackingOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map_or("jakarta", String::as_str);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let off = args.get(3).is_some_and(|s| s == "off");
    let mut opts = ClientOptions { clock: Arc::new(FixedClock::new(1_700_000_000_000)), ..ClientOptions::default() };
    if off {
        opts.tracking = TrackingOptions { decisions: DecisionEvents::Off, ..TrackingOptions::default() };
    }
    let bundle = serde_json::json!({"schema": 1, "version": 1,
        "rollouts": [serde_json::from_str::<serde_json::Value>(include_str!("../../examples/configs/seed-rollout.json")).unwrap()],
        "experiments": [{"domain": "pickup", "name": "pickup.etaModelV2", "state": "RUNNING",
            "slotting": {"byPercentage": 0.5},
            "variables": [{"name": "pickupEtaModel", "facets": ["pax"],
                "choices": [{"value": 1, "weight": 1}, {"value": 2, "weight": 1}, {"value": 3, "weight": 2}]}]}]});
    let (client, _) = Client::with_config(bundle.to_string().as_bytes(), opts).unwrap();
    let (var, want, base) = match case {
        "singapore" => ("automatedMessageDelay", 60, Facets::new().city(6).service(302)),
        "jakarta" => ("automatedMessageDelay", 90, Facets::new().city(10)),
        "default" => ("automatedMessageDelay", 30, Facets::new().city(10)),
        _ => ("pickupEtaModel", -1, Facets::new()),
    };
    let pax = (1..100_000)
        .find(|&p| {
            let d = client.get_variable(var, &base.clone().passenger(p));
            if want < 0 {
                d.source == turnout_core::Source::Experiment
            } else {
                d.int64(0) == want
            }
        })
        .unwrap();
    let ctx = client.context(base.passenger(pax));
    let v = client.variable(var);
    let mut sum = 0i64;
    for _ in 0..n {
        sum = sum.wrapping_add(ctx.int64(black_box(&v), 0));
    }
    println!("{case}: {n} decisions, sum {sum}");
}
