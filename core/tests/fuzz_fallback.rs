//! Proptest fuzz of the untrusted entry points: the config loader, the facet
//! parser and the event batch decoder. The stable-toolchain fallback of the cargo-fuzz targets in
//! `fuzz/` (same entry points, same fixed config).
//!
//! Cases per property: `TURNOUT_FUZZ_CASES` (default 2,000 so a normal test
//! run stays fast; CI may set 100,000):
//!
//! ```text
//! TURNOUT_FUZZ_CASES=100000 cargo test --release -p turnout-core --test fuzz_fallback
//! ```
//!
//! Properties: nothing panics, whatever the bytes or JSON; a rejected update
//! leaves the previous config in force; evaluation is deterministic.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{json, Map, Value};
use turnout_core::{Client, ClientOptions, Facets, FixedClock, ValueType};

/// A bundle using every operator, both strategies, slotting, segments and a
/// kill switch (the same one as `fuzz/fuzz_targets/common.rs`).
const FIXED_CONFIG: &str = r#"{
  "schema": 1, "version": 3,
  "segments": {"jakarta": {"constraints": [{"target": "city", "op": "=", "value": "10"}]}},
  "rollouts": [
    {"variable": "automatedMessageDelay", "rollouts": [
      {"value": 60, "string": "60s delay", "constraints": [
        {"target": "city", "op": "=", "value": "6"}, {"target": "svc", "op": "in", "value": "[302, 11]"}]},
      {"value": 90, "string": "90s delay", "constraints": [
        {"target": "city", "op": "=", "value": "10"}, {"target": "pax", "op": "/", "value": "0.25"}]}],
     "default": 30},
    {"variable": "ops", "rollouts": [
      {"value": 1, "constraints": [{"target": "a", "op": "!=", "value": 3}]},
      {"value": 2, "constraints": [{"target": "a", "op": "nin", "value": [1, "x", true, 2.5]}]},
      {"value": 3, "constraints": [{"target": "a", "op": ">", "value": "1e3"}, {"target": "a", "op": "<=", "value": 1e18}]},
      {"value": 4, "constraints": [{"target": "a", "op": ">=", "value": -5}, {"target": "a", "op": "<", "value": "0.5"}]},
      {"value": 5, "constraints": [{"target": "v", "op": "semver>=", "value": "1.2"}, {"target": "v", "op": "semver<", "value": "v2.0.0-rc.1"}]},
      {"value": 6, "constraints": [{"target": "v", "op": "semver=", "value": "3"}]},
      {"value": 7, "constraints": [{"target": "v", "op": "semver!=", "value": "0.0.1"}, {"target": "v", "op": "semver>", "value": "0.0.1"}, {"target": "v", "op": "semver<=", "value": "9.9.9"}]},
      {"value": 8, "constraints": [{"target": "s", "op": "prefix", "value": "ab"}, {"target": "s", "op": "suffix", "value": "yz"}]},
      {"value": 9, "constraints": [{"target": "s", "op": "contains", "value": "\u00e9"}]},
      {"value": 10, "constraints": [{"target": "s", "op": "regex", "value": "^(a|b)+[0-9]{2,}$"}]},
      {"value": 11, "segments": ["jakarta"], "constraints": [{"target": "pax", "op": "/", "value": 0.5, "salt": "s2"}]}],
     "default": "zero"},
    {"variable": "floaty", "rollouts": [{"value": 1.5, "constraints": [{"target": "pax", "op": "/", "value": 1}]}]},
    {"variable": "flag", "rollouts": [{"value": true, "constraints": [{"target": "country", "op": "in", "value": ["SG", "ID"]}]}], "default": false},
    {"variable": "killed", "enabled": false, "rollouts": [{"value": 1, "constraints": []}], "default": 2},
    {"variable": "obj", "rollouts": [{"value": {"a": [1, 2]}, "constraints": []}]}
  ],
  "experiments": [
    {"domain": "d", "name": "exp.weighted", "state": "RUNNING", "slotting": {"byPercentage": 0.5},
     "constraints": [{"target": "city", "op": "in", "value": [6, 10]}],
     "variables": [
       {"name": "w1", "facets": ["pax"], "choices": [{"value": 1, "weight": 1}, {"value": 2, "weight": 0}, {"value": 3, "weight": 2.5}]},
       {"name": "w2", "salt": "other", "facets": ["pax", "city"], "strategy": "weighted", "choices": [{"value": "a"}, {"value": "b"}]}]},
    {"domain": "d", "name": "exp.other", "state": "RUNNING", "slotting": {"byPercentage": 0.25, "offset": 0.5, "facet": "pax"},
     "variables": [{"name": "w1", "facets": ["drv"], "choices": [{"value": 7}]}]},
    {"domain": "primary", "name": "exp.timeslice", "state": "RUNNING", "slotting": {"byPercentage": 0.5},
     "variables": [{"name": "ts1", "facets": ["ts"], "strategy": "timeSliceShuffle",
                    "choices": [{"value": 0, "span": 30}, {"value": 1, "span": 45}, {"value": 2, "span": 1}]}]},
    {"name": "exp.timeslice2", "state": "RUNNING",
     "variables": [{"name": "ts2", "facets": ["city", "ts"], "strategy": "timeSliceShuffle",
                    "choices": [{"value": "x", "span": 3600}, {"value": "y", "span": 60}]}]},
    {"name": "exp.completed", "state": "COMPLETED", "variables": [{"name": "automatedMessageDelay", "facets": ["pax"], "choices": [{"value": 1}]}]}
  ]
}"#;

const PROBE_VARIABLES: &[&str] = &[
    "automatedMessageDelay",
    "ops",
    "floaty",
    "flag",
    "killed",
    "obj",
    "w1",
    "w2",
    "ts1",
    "ts2",
    "v0",
    "v1",
    "",
    "missing",
];

fn cases() -> u32 {
    std::env::var("TURNOUT_FUZZ_CASES").ok().and_then(|s| s.trim().replace('_', "").parse().ok()).unwrap_or(2_000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        // Keep failures out of the source tree; proptest prints the minimal input.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

fn new_client() -> Client {
    Client::new(ClientOptions { clock: Arc::new(FixedClock::new(1_528_720_000_123)), ..ClientOptions::default() })
}

fn fixed() -> &'static Client {
    static C: OnceLock<Client> = OnceLock::new();
    C.get_or_init(|| {
        let c = new_client();
        c.update_config(FIXED_CONFIG.as_bytes()).expect("the fixed config loads");
        c
    })
}

fn probe_facets() -> Vec<Facets> {
    vec![
        Facets::new().city(6).service(302).passenger(1234),
        Facets::new().city(10).passenger(i64::MAX).driver(i64::MIN).ts(-1),
        Facets::new().with("city", "10").with("pax", "9007199254740993").with("a", f64::NAN).with("v", "1.5.0"),
        Facets::new().with("a", f64::INFINITY).with("s", "ab\u{e9}\u{1F600}yz").with("ts", 1.0e300).with("pax", -0.0),
    ]
}

/// Every decision entry point for `name`; returns the contract JSON of the
/// decision so callers can check determinism.
fn evaluate_one(client: &Client, name: &str, facets: &Facets) -> Value {
    let d = client.get_variable(name, facets);
    let _ = (d.int64(0), d.float64(0.0), d.bool(false), d.string(""));
    let _ = d.clone().checked(ValueType::Int64);
    let e = client.explain(name, facets);
    assert_eq!(e.decision, d, "explain and get_variable disagree for `{name}`");
    let ctx = client.context(facets.clone());
    let var = client.variable(name);
    let _ = (ctx.float64(&var, 0.0), ctx.bool(&var, false), ctx.string(&var, ""), ctx.json(&var));
    assert_eq!(ctx.int64(&var, i64::MIN), d.int64(i64::MIN), "prepared and get_variable disagree for `{name}`");
    assert_eq!(ctx.decision(&var), d, "prepared decision differs for `{name}`");
    let _ = ctx.decision_as(&var, ValueType::String);
    let _ = client.get_variables(name, facets);
    d.to_json()
}

fn evaluate(client: &Client, facets: &[Facets]) {
    let mut names = client.variable_names();
    names.truncate(16);
    for f in facets {
        for name in names.iter().map(String::as_str).chain(PROBE_VARIABLES.iter().copied()) {
            let a = evaluate_one(client, name, f);
            let b = client.get_variable(name, f).to_json();
            assert_eq!(a, b, "non-deterministic decision for `{name}`");
        }
    }
}

/// A small previous config for the loader properties (cheaper than the fixed
/// one to compile for every case): the seed rollout and a v0 rollout.
const PREVIOUS: &str = r#"{"schema": 1, "rollouts": [
  {"variable": "automatedMessageDelay", "rollouts": [
    {"value": 60, "constraints": [{"target": "city", "op": "=", "value": "6"}, {"target": "svc", "op": "in", "value": "[302, 11]"}]},
    {"value": 90, "constraints": [{"target": "city", "op": "=", "value": "10"}, {"target": "pax", "op": "/", "value": "0.25"}]}],
   "default": 30},
  {"variable": "v0", "rollouts": [{"value": "x", "constraints": []}]}]}"#;

/// Loads `bytes` into a client holding a previous config. On error the
/// previous config must stay in force; on success evaluate what loaded.
fn load_and_evaluate(bytes: &[u8]) {
    let client = new_client();
    client.update_config(PREVIOUS.as_bytes()).expect("the previous config loads");
    let before = client.variable_names();
    let validated = client.validate(bytes);
    match client.update_config(bytes) {
        Err(_) => {
            assert_eq!(client.variable_names(), before, "a rejected update changed the config");
            assert!(validated.is_err(), "validate accepted what update_config rejected");
        }
        Ok(_) => {
            evaluate(&client, &probe_facets()[..2]);
            // Swap back and forth: last-good bookkeeping and diffs.
            let _ = client.update_config(PREVIOUS.as_bytes());
            let _ = client.update_config(bytes);
        }
    }
    // Also as a fresh client (no previous config to fall back on).
    let fresh = new_client();
    if fresh.update_config(bytes).is_ok() {
        evaluate(&fresh, &probe_facets()[2..]);
    }
}

// ---------------------------------------------------------------- strategies

const KEYS: &[&str] = &[
    "schema",
    "version",
    "segments",
    "rollouts",
    "experiments",
    "variable",
    "value",
    "string",
    "constraints",
    "default",
    "enabled",
    "target",
    "op",
    "salt",
    "domain",
    "name",
    "variables",
    "facets",
    "strategy",
    "choices",
    "weight",
    "span",
    "state",
    "slotting",
    "byPercentage",
    "offset",
    "facet",
    "schemaVersion",
    "rolloutBy",
];
const WORDS: &[&str] = &[
    "RUNNING",
    "COMPLETED",
    "weighted",
    "timeSliceShuffle",
    "ts",
    "pax",
    "city",
    "svc",
    "drv",
    "country",
    "a",
    "s",
    "v",
    "=",
    "==",
    "!=",
    "in",
    "nin",
    "!in",
    ">",
    ">=",
    "<",
    "<=",
    "/",
    "semver=",
    "semver>=",
    "semver<",
    "prefix",
    "suffix",
    "contains",
    "regex",
    "6",
    "10",
    "0.25",
    "[302, 11]",
    "[]",
    "[1, \"x\"]",
    "1.2.3",
    "v1",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "",
    "\u{0}",
    "\u{1F}",
    "é",
    "\u{1F600}",
    "(a|b)*c",
    "[",
    "\\",
    "9223372036854775808",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..20).prop_map(Value::from),
        prop_oneof![Just(0.0), Just(-0.0), Just(0.25), Just(0.5), Just(1.0), Just(1.5), Just(1e-300), Just(1e300)]
            .prop_map(|f: f64| json!(f)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ]
}

/// Arbitrary JSON, biased towards the config format's words and numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), word().prop_map(Value::String),];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (prop_oneof![3 => proptest::sample::select(KEYS).prop_map(str::to_string), 1 => word()], inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly well-formed values for a field, sometimes arbitrary JSON.
fn or_junk<S: Strategy<Value = Value> + 'static>(good: S) -> BoxedStrategy<Value> {
    prop_oneof![6 => good, 1 => json_value()].boxed()
}

fn constraint() -> impl Strategy<Value = Value> {
    (
        or_junk(
            proptest::sample::select(&["city", "svc", "pax", "ts", "a", "s", "v", "country"][..]).prop_map(Value::from),
        ),
        or_junk(
            proptest::sample::select(
                &[
                    "=", "!=", "in", "nin", ">", ">=", "<", "<=", "/", "semver>=", "semver<", "prefix", "suffix",
                    "contains", "regex",
                ][..],
            )
            .prop_map(Value::from),
        ),
        or_junk(prop_oneof![
            number(),
            word().prop_map(Value::from),
            proptest::collection::vec(prop_oneof![number(), word().prop_map(Value::from)], 0..4).prop_map(Value::Array),
            (0.0f64..=1.0).prop_map(|p| json!(p)),
        ]),
        proptest::option::of(or_junk(word().prop_map(Value::from))),
    )
        .prop_map(|(t, op, v, salt)| {
            let mut m = Map::new();
            m.insert("target".into(), t);
            m.insert("op".into(), op);
            m.insert("value".into(), v);
            if let Some(s) = salt {
                m.insert("salt".into(), s);
            }
            Value::Object(m)
        })
}

fn rollout_doc() -> impl Strategy<Value = Value> {
    (
        or_junk(
            proptest::sample::select(&["v0", "v1", "v2", "automatedMessageDelay", "ops"][..]).prop_map(Value::from),
        ),
        proptest::collection::vec(
            (
                or_junk(prop_oneof![number(), any::<bool>().prop_map(Value::from), word().prop_map(Value::from)]),
                proptest::collection::vec(constraint(), 0..4),
                proptest::option::of(proptest::collection::vec(
                    prop_oneof![Just(json!("seg")), word().prop_map(Value::from)],
                    0..2,
                )),
            )
                .prop_map(|(value, cs, segs)| {
                    let mut m = json!({"value": value, "constraints": cs});
                    if let Some(s) = segs {
                        m["segments"] = json!(s);
                    }
                    m
                }),
            0..4,
        ),
        proptest::option::of(or_junk(number())),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(var, rules, default, enabled)| {
            let mut d = json!({"variable": var, "rollouts": rules});
            if let Some(x) = default {
                d["default"] = x;
            }
            if let Some(e) = enabled {
                d["enabled"] = json!(e);
            }
            d
        })
}

fn experiment_doc() -> impl Strategy<Value = Value> {
    let choice = (or_junk(number()), proptest::option::of(or_junk(number())), proptest::option::of(or_junk(number())))
        .prop_map(|(v, w, s)| {
            let mut c = json!({"value": v});
            if let Some(w) = w {
                c["weight"] = w;
            }
            if let Some(s) = s {
                c["span"] = s;
            }
            c
        });
    let variable = (
        or_junk(proptest::sample::select(&["v0", "v1", "w1", "ts1"][..]).prop_map(Value::from)),
        or_junk(
            proptest::collection::vec(
                proptest::sample::select(&["pax", "ts", "city", "drv"][..]).prop_map(Value::from),
                0..3,
            )
            .prop_map(Value::Array),
        ),
        or_junk(proptest::sample::select(&["weighted", "timeSliceShuffle"][..]).prop_map(Value::from)),
        proptest::collection::vec(choice, 0..5),
    )
        .prop_map(|(n, f, s, c)| json!({"name": n, "facets": f, "strategy": s, "choices": c}));
    (
        or_junk(proptest::sample::select(&["e0", "e1", "e2"][..]).prop_map(Value::from)),
        proptest::option::of(or_junk(proptest::sample::select(&["d", "primary"][..]).prop_map(Value::from))),
        or_junk(proptest::sample::select(&["RUNNING", "COMPLETED"][..]).prop_map(Value::from)),
        proptest::collection::vec(variable, 0..3),
        proptest::collection::vec(constraint(), 0..3),
        proptest::option::of(or_junk(
            (0.0f64..=1.0, proptest::option::of(0.0f64..=1.0), proptest::option::of(word()))
                .prop_map(|(w, o, f)| json!({"byPercentage": w, "offset": o, "facet": f})),
        )),
    )
        .prop_map(|(name, domain, state, vars, cs, slot)| {
            let mut e = json!({"name": name, "state": state, "variables": vars, "constraints": cs});
            if let Some(d) = domain {
                e["domain"] = d;
            }
            if let Some(s) = slot {
                e["slotting"] = s;
            }
            e
        })
}

/// Bundles that are mostly the right shape, so generation reaches compilation
/// and evaluation, with junk mixed in at every level.
fn bundle() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(rollout_doc(), 0..4),
        proptest::collection::vec(experiment_doc(), 0..3),
        proptest::option::of(or_junk(
            proptest::collection::vec(constraint(), 0..3).prop_map(|cs| json!({"seg": {"constraints": cs}})),
        )),
        proptest::option::of(or_junk(Just(json!(1)))),
    )
        .prop_map(|(r, e, segs, schema)| {
            let mut b = json!({"rollouts": r, "experiments": e});
            if let Some(s) = segs {
                b["segments"] = s;
            }
            if let Some(s) = schema {
                b["schema"] = s;
            }
            b
        })
}

/// A facets object: known and arbitrary names, every JSON kind as value.
fn facet_object() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        4 => proptest::sample::select(&["pax", "city", "svc", "drv", "ts", "country", "a", "s", "v"][..]).prop_map(str::to_string),
        1 => ".{0,8}",
    ];
    let value = prop_oneof![
        8 => prop_oneof![number(), any::<bool>().prop_map(Value::from), word().prop_map(Value::from), Just(Value::Null)],
        1 => json_value(),
    ];
    proptest::collection::vec((key, value), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_loader_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_and_evaluate(&bytes);
    }

    #[test]
    fn config_loader_arbitrary_json(v in json_value()) {
        load_and_evaluate(v.to_string().as_bytes());
    }

    #[test]
    fn config_loader_structured(b in bundle()) {
        let text = b.to_string();
        load_and_evaluate(text.as_bytes());
        // A single document also loads as a bundle of one (alternating kinds,
        // chosen by the bundle's size, to keep the case cheap).
        let kind = if text.len() % 2 == 0 { "rollouts" } else { "experiments" };
        if let Some(first) = b[kind].get(0) {
            load_and_evaluate(first.to_string().as_bytes());
        }
    }

    #[test]
    fn batch_decoder_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), fix in any::<bool>()) {
        let mut b = bytes;
        if fix && b.len() >= 9 {
            // Valid magic, version and checksum: reach the parser behind the CRC check.
            b[..5].copy_from_slice(b"TRNB\x01");
            let n = b.len() - 4;
            let crc = turnout_core::tracking::checksum(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
        }
        if let Ok(d) = turnout_core::decode_batch(&b) {
            let again = turnout_core::encode_batch(&d.header, &d.events);
            prop_assert_eq!(turnout_core::decode_batch(&again).expect("re-encoded batch decodes").events.len(), d.events.len());
        }
        if let Ok(parts) = turnout_core::tracking::split_stream(&b) {
            for p in parts {
                let _ = turnout_core::decode_batch(p);
            }
        }
    }

    #[test]
    fn facets_arbitrary_text(s in ".{0,64}") {
        if let Ok(f) = Facets::from_json_str(&s) {
            evaluate(fixed(), std::slice::from_ref(&f));
        }
    }

    #[test]
    fn facets_arbitrary_objects(v in facet_object()) {
        let text = v.to_string();
        let parsed = Facets::from_json_str(&text);
        prop_assert_eq!(parsed.is_ok(), Facets::from_json(&v).is_ok());
        if let Ok(f) = parsed {
            // Round trip through to_json keeps the canonical strings.
            let back = Facets::from_json(&f.to_json()).expect("to_json output parses");
            for x in f.iter() {
                let y = back.get(x.key()).expect("round trip keeps every facet");
                prop_assert_eq!(x.canonical(), y.canonical());
            }
            evaluate(fixed(), std::slice::from_ref(&f));
        }
    }
}
