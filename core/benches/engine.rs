//! Criterion benchmarks of the turnout engine (results: docs/benchmarks.md, "The Rust engine").
//!
//! Run (short settings, as recorded in docs/benchmarks.md):
//!
//! ```text
//! cargo bench -p turnout-core --bench engine -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Benchmark IDs:
//! - `rollout/get_variable/{singapore_rule0,jakarta_rule1,default}` and
//!   `rollout/prepared/{...}`: the seed rollout `automatedMessageDelay`.
//!   Every decision group is measured twice: with the default client options
//!   (decision tracking on, repeats folding into one queued event) and, under
//!   `*_untracked`, with `DecisionEvents::Off` (the evaluation alone).
//!   Rule indices are the engine's 0-based ones: rule 0 is Singapore
//!   (city 6, svc in [302, 11]), rule 1 is Jakarta (city 10, pax / 0.25).
//! - `experiment/{prepared,get_variable}`: a RUNNING, slotted 2-variable
//!   weighted experiment on facet `pax`.
//! - `timeslice/{prepared,get_variable}`: the seed time-slice experiment made
//!   RUNNING, with `ts` given as a facet.
//! - `load/10k_variables`: `Client::with_config` on a generated bundle of
//!   10,000 rollout documents plus 64 experiments (128 more variables).
//! - `load/10k_variables_json_value_floor`: only `serde_json::from_slice`
//!   into a `Value` tree (and its drop) for the same bytes: the part of
//!   loading that the current loader design cannot go below.
//! - `baseline/if_else/...`: the seed rollout hand-written as if/else (with
//!   the same xxh3 bucket for the `/` rule), for scale.
//! - `scenario/{prepared_1000,get_variable_1000}`: the shared cross-language
//!   scenario of tests/bench/scenario.json (one iteration = 1,000 decisions).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use turnout_core::{Client, ClientOptions, DecisionEvents, Facets, FixedClock, Source, TrackingOptions};

const SEED_ROLLOUT: &str = include_str!("../../examples/configs/seed-rollout.json");
const SEED_EXPERIMENT: &str = include_str!("../../examples/configs/seed-experiment.json");

const ROLLOUT_VAR: &str = "automatedMessageDelay";
const EXP_VAR: &str = "pickupEtaModel";
const TS_VAR: &str = "timeSlicedShuffleTest1";

/// 2018-06-12T12:00:00Z, inside the seed experiment's `ts` constraints.
const NOW_MS: i64 = 1_528_804_800_000 - 86_400_000;

/// The default options (decision tracking on, as a user gets them) with a fixed clock.
fn options() -> ClientOptions {
    ClientOptions { clock: Arc::new(FixedClock::new(NOW_MS)), ..ClientOptions::default() }
}

/// Decision tracking off: the evaluation alone.
fn untracked() -> ClientOptions {
    ClientOptions {
        tracking: TrackingOptions { decisions: DecisionEvents::Off, ..TrackingOptions::default() },
        ..options()
    }
}

/// The default client and an untracked one on the same bundle.
fn clients() -> (Client, Client) {
    let load = |o| Client::with_config(&bench_bundle(), o).expect("bundle loads").0;
    (load(options()), load(untracked()))
}

/// A slotted, RUNNING experiment with two weighted variables on `pax`.
fn weighted_experiment() -> Value {
    json!({
        "domain": "pickup",
        "name": "pickup.etaModelV2",
        "variables": [
            {"name": EXP_VAR, "facets": ["pax"], "strategy": "weighted",
             "choices": [{"value": 1, "weight": 1}, {"value": 2, "weight": 1}, {"value": 3, "weight": 2}]},
            {"name": "pickupEtaBanner", "facets": ["pax"], "strategy": "weighted",
             "choices": [{"value": true, "weight": 1}, {"value": false, "weight": 1}]}
        ],
        "state": "RUNNING",
        "slotting": {"byPercentage": 0.5},
        "schemaVersion": 1
    })
}

/// The seed time-slice experiment with its state set to RUNNING.
fn running_timeslice() -> Value {
    let mut e: Value = serde_json::from_str(SEED_EXPERIMENT).expect("seed experiment parses");
    e["state"] = json!("RUNNING");
    e
}

fn bench_bundle() -> Vec<u8> {
    let rollout: Value = serde_json::from_str(SEED_ROLLOUT).expect("seed rollout parses");
    let bundle = json!({
        "schema": 1,
        "version": 1,
        "rollouts": [rollout],
        "experiments": [weighted_experiment(), running_timeslice()]
    });
    serde_json::to_vec(&bundle).expect("serialises")
}

/// The first `pax` in `range` for which `f(decision)` holds.
fn find_pax(client: &Client, var: &str, base: Facets, f: impl Fn(&turnout_core::Decision) -> bool) -> i64 {
    (1..100_000)
        .find(|&p| f(&client.get_variable(var, &base.clone().passenger(p))))
        .expect("a passenger id with the wanted decision")
}

/// A `ts` inside the seed experiment's window whose time window is in the slot.
fn find_ts(client: &Client) -> i64 {
    let start = 1_528_714_601 + 1;
    (start..start + 10_000)
        .find(|&ts| {
            let d = client.get_variable(TS_VAR, &Facets::new().city(5).ts(ts));
            d.source == Source::Experiment
        })
        .expect("a ts in the slot")
}

fn rollout(c: &mut Criterion) {
    let (client, plain) = clients();
    let jakarta_in = find_pax(&client, ROLLOUT_VAR, Facets::new().city(10), |d| d.rule == Some(1));
    let jakarta_out = find_pax(&client, ROLLOUT_VAR, Facets::new().city(10), |d| d.source == Source::Default);
    let cases = [
        ("singapore_rule0", Facets::new().city(6).service(302).passenger(1234), 60),
        ("jakarta_rule1", Facets::new().city(10).service(302).passenger(jakarta_in), 90),
        ("default", Facets::new().city(10).service(302).passenger(jakarta_out), 30),
    ];
    for (_, f, want) in &cases {
        assert_eq!(client.get_variable(ROLLOUT_VAR, f).int64(0), *want);
    }

    let mut g = c.benchmark_group("rollout");
    for (id, facets, _) in &cases {
        g.bench_function(format!("get_variable/{id}"), |b| {
            b.iter(|| client.get_variable(black_box(ROLLOUT_VAR), black_box(facets)))
        });
    }
    let var = client.variable(ROLLOUT_VAR);
    for (id, facets, want) in &cases {
        let ctx = client.context(facets.clone());
        assert_eq!(ctx.int64(&var, 0), *want);
        g.bench_function(format!("prepared/{id}"), |b| b.iter(|| black_box(&ctx).int64(black_box(&var), black_box(0))));
    }
    let var = plain.variable(ROLLOUT_VAR);
    for (id, facets, want) in &cases {
        let ctx = plain.context(facets.clone());
        assert_eq!(ctx.int64(&var, 0), *want);
        g.bench_function(format!("prepared_untracked/{id}"), |b| {
            b.iter(|| black_box(&ctx).int64(black_box(&var), black_box(0)))
        });
    }
    for (id, facets, _) in &cases {
        g.bench_function(format!("get_variable_untracked/{id}"), |b| {
            b.iter(|| plain.get_variable(black_box(ROLLOUT_VAR), black_box(facets)))
        });
    }
    g.finish();
}

fn experiment(c: &mut Criterion) {
    let (client, plain) = clients();
    let pax = find_pax(&client, EXP_VAR, Facets::new(), |d| d.source == Source::Experiment);
    let facets = Facets::new().passenger(pax);
    let d = client.get_variable(EXP_VAR, &facets);
    assert_eq!(d.source, Source::Experiment);

    let mut g = c.benchmark_group("experiment");
    let var = client.variable(EXP_VAR);
    let ctx = client.context(facets.clone());
    assert_eq!(ctx.int64(&var, 0), d.int64(-1));
    g.bench_function("prepared", |b| b.iter(|| black_box(&ctx).int64(black_box(&var), black_box(0))));
    g.bench_function("get_variable", |b| b.iter(|| client.get_variable(black_box(EXP_VAR), black_box(&facets))));
    let pvar = plain.variable(EXP_VAR);
    let pctx = plain.context(facets.clone());
    assert_eq!(pctx.int64(&pvar, 0), ctx.int64(&var, 0));
    g.bench_function("prepared_untracked", |b| b.iter(|| black_box(&pctx).int64(black_box(&pvar), black_box(0))));
    g.bench_function("get_variable_untracked", |b| {
        b.iter(|| plain.get_variable(black_box(EXP_VAR), black_box(&facets)))
    });
    g.finish();
}

fn timeslice(c: &mut Criterion) {
    let (client, plain) = clients();
    let ts = find_ts(&client);
    let facets = Facets::new().city(5).ts(ts);
    let d = client.get_variable(TS_VAR, &facets);
    assert_eq!(d.source, Source::Experiment);

    let mut g = c.benchmark_group("timeslice");
    let var = client.variable(TS_VAR);
    let ctx = client.context(facets.clone());
    assert_eq!(ctx.int64(&var, -1), d.int64(-2));
    g.bench_function("prepared", |b| b.iter(|| black_box(&ctx).int64(black_box(&var), black_box(-1))));
    g.bench_function("get_variable", |b| b.iter(|| client.get_variable(black_box(TS_VAR), black_box(&facets))));
    let pvar = plain.variable(TS_VAR);
    let pctx = plain.context(facets.clone());
    assert_eq!(pctx.int64(&pvar, -1), ctx.int64(&var, -1));
    g.bench_function("prepared_untracked", |b| b.iter(|| black_box(&pctx).int64(black_box(&pvar), black_box(-1))));
    g.bench_function("get_variable_untracked", |b| {
        b.iter(|| plain.get_variable(black_box(TS_VAR), black_box(&facets)))
    });
    g.finish();
}

/// A realistic 10,000-variable bundle: each rollout document has 2 or 3 rules
/// mixing `=`, `in` and `/`, a default, a version; 64 slotted experiments
/// (8 domains x 8 non-overlapping slots of 1/8) add two variables each.
pub fn big_bundle(n: usize) -> Vec<u8> {
    let cities = [6, 10, 5, 2, 3, 7, 11, 13];
    let mut rollouts = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("svc.feature_{i:05}");
        let city = cities[i % cities.len()];
        let value = |k: usize| -> Value {
            match i % 4 {
                0 => json!(30 + 10 * k as i64),
                1 => json!(k % 2 == 0),
                2 => json!(format!("variant-{k}")),
                _ => json!(0.5 + k as f64 / 4.0),
            }
        };
        let mut rules = vec![
            json!({"value": value(1), "string": format!("rule a of {i}"), "constraints": [
                {"target": "city", "op": "=", "value": city.to_string()},
                {"target": "svc", "op": "in", "value": format!("[{}, {}]", 300 + i % 7, 11 + i % 3)}
            ]}),
            json!({"value": value(2), "constraints": [
                {"target": "city", "op": "in", "value": [city + 1, city + 2, city + 3]},
                {"target": "pax", "op": "/", "value": format!("{}", (i % 100) as f64 / 100.0)}
            ]}),
        ];
        if i % 3 == 0 {
            rules.push(json!({"value": value(3), "constraints": [
                {"target": "country", "op": "=", "value": "SG"},
                {"target": "drv", "op": "/", "value": 0.1, "salt": format!("drv-ramp-{i}")},
                {"target": "svc", "op": "=", "value": 302}
            ]}));
        }
        rollouts.push(json!({
            "variable": name, "rolloutBy": "city", "rollouts": rules,
            "default": value(0), "version": 1_515_051_871 + i as i64, "schema": 1
        }));
    }
    let mut experiments = Vec::new();
    for d in 0..8 {
        for s in 0..8 {
            let name = format!("domain{d}.exp{s}");
            experiments.push(json!({
                "domain": format!("domain{d}"), "name": name,
                "variables": [
                    {"name": format!("{name}.a"), "facets": ["pax"], "strategy": "weighted",
                     "choices": [{"value": 1, "weight": 1}, {"value": 2, "weight": 3}]},
                    {"name": format!("{name}.b"), "facets": ["pax", "city"],
                     "choices": [{"value": "x"}, {"value": "y"}, {"value": "z"}]}
                ],
                "constraints": [{"target": "city", "op": "in", "value": "[6, 10]"}],
                "state": if s % 2 == 0 { "RUNNING" } else { "COMPLETED" },
                "slotting": {"byPercentage": 0.125, "offset": s as f64 * 0.125},
                "schemaVersion": 1
            }));
        }
    }
    serde_json::to_vec(&json!({"schema": 1, "version": 7, "rollouts": rollouts, "experiments": experiments}))
        .expect("serialises")
}

fn load(c: &mut Criterion) {
    let bytes = big_bundle(10_000);
    let (client, report) = Client::with_config(&bytes, options()).expect("big bundle loads");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    assert_eq!(client.variable_names().len(), 10_000 + 128);
    drop(client);
    eprintln!("load: the generated bundle is {} bytes", bytes.len());

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    // Dropping the client is not part of loading.
    g.bench_function("10k_variables", |b| {
        b.iter_with_large_drop(|| Client::with_config(black_box(&bytes), options()).expect("loads"))
    });
    // The floor of the current design: parsing the bytes into a
    // `serde_json::Value` tree and dropping it, which `update_config` does
    // before compiling anything.
    g.bench_function("10k_variables_json_value_floor", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("parses"))
    });
    g.finish();
}

/// The seed rollout hand-written: the cost floor of any engine.
#[inline(never)]
fn if_else(city: i64, svc: i64, pax: i64) -> i64 {
    if city == 6 && (svc == 302 || svc == 11) {
        60
    } else if city == 10 && pax_bucket(pax) < 0.25 {
        90
    } else {
        30
    }
}

fn pax_bucket(pax: i64) -> f64 {
    const SALT: &[u8] = b"automatedMessageDelay\0";
    let mut buf = [0u8; SALT.len() + 20];
    buf[..SALT.len()].copy_from_slice(SALT);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut u = pax.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    let mut len = SALT.len();
    if pax < 0 {
        buf[len] = b'-';
        len += 1;
    }
    let d = &digits[i..];
    buf[len..len + d.len()].copy_from_slice(d);
    len += d.len();
    let h = xxhash_rust::xxh3::xxh3_64(&buf[..len]);
    (h >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

fn baseline(c: &mut Criterion) {
    let (client, _) = Client::with_config(&bench_bundle(), options()).expect("bundle loads");
    let jakarta_in = find_pax(&client, ROLLOUT_VAR, Facets::new().city(10), |d| d.rule == Some(1));
    assert_eq!(if_else(6, 302, 1234), 60);
    assert_eq!(if_else(10, 302, jakarta_in), 90);
    let mut g = c.benchmark_group("baseline");
    g.bench_function("if_else/singapore_rule0", |b| b.iter(|| if_else(black_box(6), black_box(302), black_box(1234))));
    g.bench_function("if_else/jakarta_rule1", |b| {
        b.iter(|| if_else(black_box(10), black_box(302), black_box(jakarta_in)))
    });
    g.finish();
}

/// The shared cross-language scenario (tests/bench/scenario.json): the seed
/// rollout over 1,000 pre-generated contexts; one iteration is one pass (1,000
/// decisions), so criterion's time / 1,000 is the ns per decision every
/// binding reports for the same scenario.
fn scenario(c: &mut Criterion) {
    let doc: Value = serde_json::from_str(include_str!("../../tests/bench/scenario.json")).expect("scenario parses");
    let (client, _) = Client::with_config(SEED_ROLLOUT.as_bytes(), options()).expect("seed rollout loads");
    let facets: Vec<Facets> =
        doc["contexts"].as_array().expect("contexts").iter().map(|f| Facets::from_json(f).expect("facets")).collect();
    let want = doc["expectedSum"].as_i64().expect("expectedSum");
    let var = client.variable(ROLLOUT_VAR);
    let ctxs: Vec<_> = facets.iter().map(|f| client.context(f.clone())).collect();
    let pass = || ctxs.iter().map(|ctx| ctx.int64(black_box(&var), 0)).sum::<i64>();
    assert_eq!(pass(), want, "scenario sum");
    let one_shot = || facets.iter().map(|f| client.get_variable(black_box(ROLLOUT_VAR), f).int64(0)).sum::<i64>();
    assert_eq!(one_shot(), want, "scenario sum (one-shot)");
    let mut g = c.benchmark_group("scenario");
    g.throughput(criterion::Throughput::Elements(ctxs.len() as u64));
    // The host drains the event queue outside the timing, as every binding's benchmark does.
    g.bench_function("prepared_1000", |b| {
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            for _ in 0..iters {
                black_box(pass());
            }
            let e = t.elapsed();
            while let Some(batch) = client.take_batch(10_000) {
                client.ack(batch.seq);
            }
            e
        })
    });
    g.bench_function("get_variable_1000", |b| {
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            for _ in 0..iters {
                black_box(one_shot());
            }
            let e = t.elapsed();
            while let Some(batch) = client.take_batch(10_000) {
                client.ack(batch.seq);
            }
            e
        })
    });
    g.finish();
}

/// The many-users steady state (issue 15): the seed rollout over 100,000
/// distinct passengers, the system clock, the queue never drained (full
/// after the first 10,000 events: every new event evicts the oldest), as
/// between two flushes of a busy service. One iteration is one pass (100,000
/// decisions); `*_untracked` is the same with decision events off, so the
/// difference is what recording costs when the queue is saturated.
fn many_users(c: &mut Criterion) {
    const USERS: i64 = 100_000;
    let load = |o| Client::with_config(SEED_ROLLOUT.as_bytes(), o).expect("seed rollout loads").0;
    let off = TrackingOptions { decisions: DecisionEvents::Off, ..TrackingOptions::default() };
    let (tracked, untracked) =
        (load(ClientOptions::default()), load(ClientOptions { tracking: off, ..ClientOptions::default() }));
    let facets: Vec<Facets> =
        (0..USERS).map(|i| Facets::new().city([6, 10, 5][(i % 3) as usize]).service(302).passenger(i)).collect();
    let mut g = c.benchmark_group("many_users");
    g.throughput(criterion::Throughput::Elements(USERS as u64));
    g.sample_size(10);
    for (name, client) in [("", &tracked), ("_untracked", &untracked)] {
        let var = client.variable(ROLLOUT_VAR);
        let ctxs: Vec<_> = facets.iter().map(|f| client.context(f.clone())).collect();
        g.bench_function(format!("prepared_100k{name}"), |b| {
            b.iter(|| ctxs.iter().map(|ctx| ctx.int64(black_box(&var), 0)).sum::<i64>())
        });
        g.bench_function(format!("get_variable_100k{name}"), |b| {
            b.iter(|| facets.iter().map(|f| client.get_variable(black_box(ROLLOUT_VAR), f).int64(0)).sum::<i64>())
        });
    }
    let stats = tracked.tracking_stats();
    assert!(stats.queued == TrackingOptions::default().max_queue && stats.dropped > 0, "{stats:?}");
    g.finish();
}

criterion_group!(benches, rollout, experiment, timeslice, load, baseline, scenario, many_users);
criterion_main!(benches);
