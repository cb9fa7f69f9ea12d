//! Generates the conformance vector files in `tests/conformance/`.
//!
//! Cases are drawn from a fixed-seed generator; expected results come from
//! the engine and are anchored to the spec by `tests/anchors/` (values
//! computed independently in Python) and by the hand-written cases here whose
//! answers follow from the spec alone (marked `anchor`).

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use turnout_core::{
    decode_batch, encode_batch, BatchHeader, Client, ClientOptions, Event, EventData, Facets, FixedClock, Source,
    SplitMix64, TrackingOptions,
};

/// Default clock of every vector file (unix ms), unless a case sets `nowMs`.
pub const DEFAULT_NOW_MS: i64 = 1_700_000_000_000;

const BIG: i64 = 9_007_199_254_740_993; // 2^53 + 1

struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn id(&mut self) -> i64 {
        match self.below(4) {
            0 => self.below(1000) as i64,
            1 => self.below(10_000_000) as i64,
            2 => BIG + self.below(1_000_000) as i64,
            _ => (self.0.next() >> 1) as i64,
        }
    }
}

/// A facet value as written in vector files: integers beyond +-2^53 are
/// `{"$int64": "<decimal>"}` so that every language reads them exactly.
fn int_facet(i: i64) -> Value {
    if i.unsigned_abs() > (1u64 << 53) {
        json!({"$int64": i.to_string()})
    } else {
        json!(i)
    }
}

/// Decodes vector facets (the core reads the `$int64` form natively).
fn facets_from_vector(v: &Value) -> Result<Facets, String> {
    Facets::from_json(v).map_err(|e| e.to_string())
}

struct File {
    name: &'static str,
    description: &'static str,
    config: Value,
    cases: Vec<(String, Value, Option<i64>)>,
}

impl File {
    fn new(name: &'static str, description: &'static str, config: Value) -> File {
        File { name, description, config, cases: Vec::new() }
    }
    fn case(&mut self, var: &str, facets: Value) {
        self.cases.push((var.to_string(), facets, None));
    }
    fn case_at(&mut self, var: &str, facets: Value, now_ms: i64) {
        self.cases.push((var.to_string(), facets, Some(now_ms)));
    }

    fn render(&self) -> Result<Value, String> {
        let mut cases = Vec::with_capacity(self.cases.len());
        let clock = Arc::new(FixedClock::new(DEFAULT_NOW_MS));
        let opts = ClientOptions { clock: clock.clone(), ..Default::default() };
        let (client, _) = Client::with_config(self.config.to_string().as_bytes(), opts)
            .map_err(|e| format!("{}: config does not load: {e}", self.name))?;
        for (var, facets, now) in &self.cases {
            clock.set(now.unwrap_or(DEFAULT_NOW_MS));
            let f = facets_from_vector(facets)?;
            let mut expected = client.get_variable(var, &f).to_json();
            if let Some(o) = expected.as_object_mut() {
                o.remove("variable");
            }
            let mut case = json!({"variable": var, "facets": facets, "expected": expected});
            if let Some(n) = now {
                case["nowMs"] = json!(n);
            }
            cases.push(case);
        }
        Ok(json!({
            "name": self.name,
            "description": self.description,
            "nowMs": DEFAULT_NOW_MS,
            "config": self.config,
            "cases": cases,
        }))
    }
}

fn seed_rollout(root: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(root.join("examples/configs/seed-rollout.json")).map_err(|e| e.to_string())?;
    let config: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut f = File::new(
        "seed-rollout",
        "The seed rollout document verbatim: Singapore 302/11 -> 60, Jakarta 25% of passengers -> 90, else 30.",
        config,
    );
    let mut r = Rng::new(1);
    let v = "automatedMessageDelay";
    for _ in 0..400 {
        let city = *r.pick(&[6, 10, 10, 10, 5, 3]);
        let mut facets = json!({"city": city});
        match r.below(4) {
            0 => {}
            1 => facets["svc"] = json!(*r.pick(&[302, 11, 7, 303])),
            _ => facets["svc"] = json!(*r.pick(&[302, 11])),
        }
        if r.below(5) != 0 {
            facets["pax"] = int_facet(r.id());
        }
        f.case(v, facets);
    }
    // Strings and integral floats behave as the integers they spell.
    for facets in
        [json!({"city": "6", "svc": "302"}), json!({"city": 6.0, "svc": 11.0}), json!({"city": "10", "pax": "1"})]
    {
        f.case(v, facets);
    }
    Ok(f)
}

fn operators() -> File {
    let ops: &[(&str, &str, Value)] = &[
        ("eq_num_string", "=", json!("6")),
        ("eq_num", "=", json!(6)),
        ("eq_float", "=", json!(0.5)),
        ("eq_big", "=", json!(BIG)),
        ("eq_str", "=", json!("Jakarta")),
        ("eq_bool", "=", json!(true)),
        ("eq_unicode", "=", json!("Zürich")),
        ("ne_num", "!=", json!(6)),
        ("ne_str", "!=", json!("Jakarta")),
        ("in_array", "in", json!([302, 11])),
        ("in_string", "in", json!("[302, 11]")),
        ("in_mixed", "in", json!(["a", 1, true, "中文"])),
        ("in_empty", "in", json!([])),
        ("nin_array", "nin", json!([302, 11])),
        ("gt", ">", json!("10")),
        ("ge", ">=", json!(10)),
        ("lt", "<", json!(-1.5)),
        ("le", "<=", json!(BIG)),
        ("fraction", "/", json!("0.25")),
        ("semver_lt", "semver<", json!("5.2.0")),
        ("semver_ge", "semver>=", json!("v2")),
        ("semver_eq", "semver=", json!("1.2.3")),
        ("gt_text", ">", json!("abc")),
        ("prefix", "prefix", json!("ADR-")),
        ("suffix", "suffix", json!("-001")),
        ("contains", "contains", json!("ü")),
        ("regex", "regex", json!("^ADR-[0-9]+-")),
    ];
    let mut rollouts: Vec<Value> = ops
        .iter()
        .map(|(name, op, value)| {
            json!({"variable": name, "rollouts": [{"value": "hit", "constraints": [{"target": "x", "op": op, "value": value}]}], "default": "miss"})
        })
        .collect();
    // Spec 17.1: the `regex_weight` limit (64) at its boundary, per pattern, per
    // document and per segment reference (weights computed by hand in the comments).
    let weights: &[(&str, &[&str], usize)] = &[
        ("regex_weight_64", &["a{62}$"], 0),                        // 62 + 1 + 1 = 64: loads
        ("regex_weight_65", &["a{63}$"], 0),                        // 65: the document is rejected
        ("regex_weight_sum_64", &["^a{30}", "a{30}$"], 0),          // 32 + 32
        ("regex_weight_sum_65", &["^a{30}", "a{31}$"], 0),          // 32 + 33
        ("regex_weight_verbose", &["(?x) a{61} # {1000}\n$"], 0),   // 61 + 1 + 1: the comment weighs nothing
        ("regex_weight_class_64", &["[abcdefghijklmnop]{31}$"], 0), // (1 + 16/16) x 31 + 2
        ("regex_weight_class_66", &["[abcdefghijklmnop]{32}$"], 0), // (1 + 1) x 32 + 2
        ("regex_weight_class_34", &["[abcdefghijklmno]{32}$"], 0),  // (1 + 15/16 = 1) x 32 + 2
        ("regex_weight_segment_x2", &[], 2),                        // segment `w32` (a{30}$: 32) twice
        ("regex_weight_segment_x3", &[], 3),                        // three times: 96
    ];
    for (name, pats, refs) in weights {
        let cs: Vec<Value> =
            pats.iter().map(|p| json!({"target": "x", "op": "regex", "value": p.replace("\\n", "\n")})).collect();
        rollouts.push(json!({"variable": name, "rollouts": [{"value": "hit", "constraints": cs, "segments": vec!["w32"; *refs]}], "default": "miss"}));
    }
    let mut f = File::new(
        "operators",
        "Every constraint op against a pool of facet values: numbers, numeric strings, integral floats, ids above 2^53, booleans, unicode, versions, missing facets; the regex weight limit at its boundary.",
        json!({"schema": 1, "rollouts": rollouts, "segments": {"w32": [{"target": "x", "op": "regex", "value": "a{30}$"}]}}),
    );
    for (name, _, _) in weights {
        for n in [29, 30, 62, 63] {
            f.case(name, json!({"x": "a".repeat(n)}));
        }
    }
    let pool: Vec<Value> = vec![
        json!(6),
        json!(6.0),
        json!("6"),
        json!("6.0"),
        json!(" 6"),
        json!(-0.0),
        json!(0),
        json!(7),
        json!(0.5),
        json!("0.5"),
        json!(10),
        json!(10.5),
        json!(11),
        json!(302),
        json!("302"),
        json!(303),
        json!(-2),
        json!(-1.5),
        json!(-1),
        int_facet(BIG),
        int_facet(BIG - 1),
        int_facet(BIG + 1),
        json!(BIG.to_string()),
        json!(1e300),
        json!("1e3"),
        json!("inf"),
        json!("NaN"),
        json!("Jakarta"),
        json!("jakarta"),
        json!("Zürich"),
        json!("Zu\u{308}rich"),
        json!("中文"),
        json!("😀"),
        json!(""),
        json!("a"),
        json!(true),
        json!(false),
        json!("true"),
        json!(1),
        json!("5.1.9"),
        json!("5.2.0"),
        json!("5.2.0-beta.1"),
        json!("5.10.0"),
        json!("v5.1"),
        json!("2"),
        json!("1.2.3"),
        json!("1.2.3+build"),
        json!("ADR-123-2-001"),
        json!("adr-123-2-001"),
        json!("XADR-1-001"),
        Value::Null,
    ];
    for (name, _, _) in ops {
        for x in &pool {
            let facets = if x.is_null() { json!({"y": 1}) } else { json!({"x": x}) };
            f.case(name, facets);
        }
    }
    f
}

fn fraction() -> File {
    let ps = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.999, 1.0];
    let mut rollouts: Vec<Value> = ps
        .iter()
        .map(|p| json!({"variable": format!("ramp_{p}"), "rollouts": [{"value": true, "constraints": [{"target": "pax", "op": "/", "value": p}]}], "default": false}))
        .collect();
    rollouts.push(json!({"variable": "salted", "rollouts": [{"value": true, "constraints": [{"target": "pax", "op": "/", "value": 0.5, "salt": "shared-salt"}]}], "default": false}));
    rollouts.push(json!({"variable": "by_booking", "rollouts": [{"value": true, "constraints": [{"target": "booking", "op": "/", "value": 0.3}]}], "default": false}));
    let mut f = File::new(
        "fraction",
        "Percentage (`/`) ramps at several fractions, default and explicit salts, numeric and string units.",
        json!({"rollouts": rollouts}),
    );
    let mut r = Rng::new(3);
    for _ in 0..40 {
        let pax = int_facet(r.id());
        for p in ps {
            f.case(&format!("ramp_{p}"), json!({"pax": pax}));
        }
        f.case("salted", json!({"pax": pax}));
        let booking = format!("ADR-{}-{}-{:03}", r.below(1000), r.below(9), r.below(1000));
        f.case("by_booking", json!({"booking": booking}));
    }
    f.case("ramp_0.5", json!({}));
    f.case("ramp_0.5", json!({"pax": "Zürich"}));
    f
}

fn experiments() -> File {
    let config = json!({
        "rollouts": [
            {"variable": "buttonColor", "rollouts": [], "default": "grey"},
            {"variable": "copy", "default": "Pay"}
        ],
        "experiments": [
            {"domain": "checkout", "name": "checkout.colors", "state": "RUNNING",
             "slotting": {"byPercentage": 0.4},
             "constraints": [{"target": "country", "op": "in", "value": ["SG", "ID"]}],
             "variables": [
                {"name": "buttonColor", "facets": ["pax"], "choices": [{"value": "blue", "weight": 1}, {"value": "orange", "weight": 3}]},
                {"name": "copy", "facets": ["pax", "city"], "salt": "copy-salt", "choices": [{"value": "Pay now"}, {"value": "Book now"}, {"value": "Go"}]}
             ]},
            {"domain": "fees", "name": "fees.display", "state": "RUNNING",
             "slotting": {"byPercentage": 0.3, "offset": 0.4, "facet": "device"},
             "variables": [{"name": "showFees", "facets": ["device"], "choices": [{"value": false, "weight": 0.5}, {"value": true, "weight": 0.5}]}]},
            {"domain": "checkout", "name": "checkout.old", "state": "COMPLETED",
             "slotting": {"byPercentage": 0.2, "offset": 0.8},
             "variables": [{"name": "oldThing", "facets": ["pax"], "choices": [{"value": 1}]}]},
            {"name": "unslotted.bookingTest", "state": "RUNNING",
             "variables": [{"name": "bookingFlow", "facets": ["booking"], "choices": [{"value": {"steps": 2}, "weight": 2}, {"value": {"steps": 3}, "weight": 1}]}]},
            {"name": "zeroWeights", "state": "RUNNING",
             "variables": [{"name": "onlyB", "facets": ["pax"], "choices": [{"value": "a", "weight": 0}, {"value": "b", "weight": 1}, {"value": "c", "weight": 0}]}]}
        ]
    });
    let mut f = File::new(
        "experiments",
        "Weighted experiments: multi-facet units, explicit salts, slotting within a domain (default and explicit slot facet), states, zero weights, experiment-over-rollout precedence, JSON values.",
        config,
    );
    let mut r = Rng::new(4);
    for _ in 0..90 {
        let pax = int_facet(r.id());
        let country = *r.pick(&["SG", "ID", "MY"]);
        let city = *r.pick(&[6, 10, 5]);
        let device = format!("dev-{:08x}", r.0.next() as u32);
        let booking = format!("ADR-{}-2-{:03}", r.below(1000), r.below(1000));
        f.case("buttonColor", json!({"pax": pax, "country": country}));
        f.case("copy", json!({"pax": pax, "country": country, "city": city}));
        f.case("showFees", json!({"device": device}));
        f.case("bookingFlow", json!({"booking": booking}));
        f.case("onlyB", json!({"pax": pax}));
    }
    f.case("copy", json!({"pax": 1, "country": "SG"}));
    f.case("oldThing", json!({"pax": 1}));
    f.case("buttonColor", json!({"country": "SG"}));
    f
}

fn timeslice(root: &Path) -> Result<File, String> {
    let text =
        std::fs::read_to_string(root.join("examples/configs/seed-experiment.json")).map_err(|e| e.to_string())?;
    let mut seed: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut completed = seed.clone();
    completed["name"] = json!("primary.completedCopy");
    completed["variables"][0]["name"] = json!("completedVariable");
    completed["slotting"] = Value::Null;
    seed["state"] = json!("RUNNING");
    let config = json!({"experiments": [
        seed,
        completed,
        {"domain": "pricing", "name": "pricing.surgeSwitchback", "state": "RUNNING",
         "constraints": [{"target": "city", "op": "in", "value": [6, 10]}],
         "variables": [{"name": "surge", "facets": ["city", "ts"], "strategy": "timeSliceShuffle",
            "choices": [{"value": 1.0, "span": 1800}, {"value": 1.2, "span": 1800}, {"value": 1.5, "span": 3600}]}]},
        {"name": "manyChoices", "state": "RUNNING",
         "variables": [{"name": "many", "facets": ["ts"], "strategy": "timeSliceShuffle",
            "choices": (0..12).map(|i| json!({"value": i, "span": 5 + i})).collect::<Vec<_>>()}]}
    ]});
    let mut f = File::new(
        "timeslice",
        "Switchback (timeSliceShuffle): the seed experiment made RUNNING (time-only slotting), a per-city switchback, many choices, ts from facets and from the clock, negative and float ts.",
        config,
    );
    let mut r = Rng::new(5);
    let start = 1_528_714_602i64;
    for _ in 0..120 {
        let ts = start + r.below(86_398) as i64;
        f.case("timeSlicedShuffleTest1", json!({"city": 5, "ts": ts}));
        f.case("surge", json!({"city": *r.pick(&[6, 10, 11]), "ts": 1_700_000_000 + r.below(1_000_000) as i64}));
        f.case("many", json!({"ts": r.below(10_000_000_000) as i64}));
    }
    for _ in 0..40 {
        // No ts facet: the clock decides.
        let now = (start + r.below(86_398) as i64) * 1000 + r.below(1000) as i64;
        f.case_at("timeSlicedShuffleTest1", json!({"city": 5}), now);
        f.case_at("surge", json!({"city": 6}), 1_700_000_000_000 + r.below(1_000_000_000) as i64);
    }
    for facets in [
        json!({"city": 5, "ts": 1_528_714_601}),
        json!({"city": 5, "ts": 1_528_801_001}),
        json!({"city": 6, "ts": 1_528_750_000}),
        json!({"city": 5, "ts": 1_528_750_000.75}),
        json!({"city": 5, "ts": "1528750000"}),
        json!({"city": 5, "ts": "soon"}),
    ] {
        f.case("timeSlicedShuffleTest1", facets);
    }
    f.case("many", json!({"ts": -1}));
    f.case("many", json!({"ts": -1_000_000_007}));
    f.case("surge", json!({"ts": 1_700_000_000}));
    f.case("completedVariable", json!({"city": 5, "ts": 1_528_750_000}));
    Ok(f)
}

fn resolution() -> File {
    let config = json!({
        "schema": 1,
        "version": 3,
        "segments": {
            "beta": {"constraints": [{"target": "employer", "op": "in", "value": ["acme", "globex"]}]},
            "quarter": {"constraints": [{"target": "pax", "op": "/", "value": 0.25}]}
        },
        "rollouts": [
            {"variable": "killed", "enabled": false, "rollouts": [{"value": 1, "constraints": []}], "default": 2},
            {"variable": "killedWithExperiment", "enabled": false, "default": 0},
            {"variable": "segmented", "rollouts": [
                {"value": "beta", "segments": ["beta"]},
                {"value": "quarter", "segments": ["quarter"], "constraints": [{"target": "country", "op": "=", "value": "SG"}]}
            ], "default": "ga"},
            {"variable": "noDefault", "rollouts": [{"value": 5, "constraints": [{"target": "city", "op": "=", "value": 6}]}]},
            {"variable": "typed", "rollouts": [
                {"value": "a string", "constraints": [{"target": "t", "op": "=", "value": "s"}]},
                {"value": true, "constraints": [{"target": "t", "op": "=", "value": "b"}]},
                {"value": 2.5, "constraints": [{"target": "t", "op": "=", "value": "f"}]},
                {"value": {"nested": [1, 2, {"x": null}]}, "constraints": [{"target": "t", "op": "=", "value": "j"}]},
                {"value": [], "constraints": [{"target": "t", "op": "=", "value": "a"}]}
            ], "default": 7},
            {"variable": "withExperiment", "default": "rollout"},
            {"variable": "broken", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "near", "value": 1}]}]},
            {"variable": "killedButBroken", "enabled": false, "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "near", "value": 1}]}]}
        ],
        "experiments": [
            {"name": "first", "state": "RUNNING", "constraints": [{"target": "city", "op": "=", "value": 6}],
             "variables": [{"name": "withExperiment", "facets": ["pax"], "choices": [{"value": "first"}]}]},
            {"name": "brokenExperiment", "state": "RUNNING",
             "variables": [{"name": "onlyInBrokenExperiment", "facets": ["pax"], "choices": "not a list"},
                           {"name": "sharedWithGood", "facets": ["pax"], "choices": [{"value": 1}]}]},
            {"name": "third", "state": "RUNNING", "constraints": [{"target": "city", "op": "=", "value": 6}],
             "variables": [{"name": "sharedWithGood", "facets": ["pax"], "choices": [{"value": "good"}]}]},
            {"name": "second", "state": "RUNNING",
             "variables": [{"name": "withExperiment", "facets": ["drv"], "choices": [{"value": "second"}]},
                           {"name": "killedWithExperiment", "facets": ["pax"], "choices": [{"value": 9}]}]}
        ]
    });
    let mut f = File::new(
        "resolution",
        "Resolution order and reasons: kill switches (also in a rejected document), segments, fallback without default, FLAG_NOT_FOUND, rejected rollout and experiment documents (PARSE_ERROR unless a good document defines the variable) beside good ones, experiments in bundle order before the rollout, values of every JSON type.",
        config,
    );
    let mut r = Rng::new(6);
    for _ in 0..40 {
        let pax = int_facet(r.id());
        f.case("segmented", json!({"pax": pax, "country": *r.pick(&["SG", "ID"]), "employer": *r.pick(&["acme", "initech", "globex", "x"])}));
        f.case("withExperiment", json!({"pax": pax, "city": *r.pick(&[6, 7]), "drv": r.id()}));
    }
    for facets in
        [json!({}), json!({"pax": 1}), json!({"city": 6}), json!({"drv": 3}), json!({"city": 6, "pax": 1, "drv": 3})]
    {
        f.case("withExperiment", facets.clone());
        f.case("killed", facets.clone());
        f.case("killedWithExperiment", facets.clone());
        f.case("broken", facets.clone());
        f.case("killedButBroken", facets.clone());
        f.case("onlyInBrokenExperiment", facets.clone());
        f.case("sharedWithGood", facets.clone());
        f.case("doesNotExist", facets.clone());
    }
    for t in ["s", "b", "f", "j", "a", "other"] {
        f.case("typed", json!({"t": t}));
    }
    f.case("noDefault", json!({"city": 6}));
    f.case("noDefault", json!({"city": 7}));
    f.case("noDefault", json!({}));
    f
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An event as vector JSON: integer facets beyond +-2^53 in the `$int64` form.
fn event_json(e: &Event) -> Value {
    let mut v = e.to_json();
    if let EventData::Decision { value, .. } = &e.data {
        v["valueText"] = json!(&**value);
    }
    if let Some(f) = v.get_mut("facets").and_then(Value::as_object_mut) {
        for (k, x) in f.iter_mut() {
            if let Some(turnout_core::FacetValue::Int(i)) = e.facets.get(k).map(|f| f.value().clone()) {
                *x = int_facet(i);
            }
        }
    }
    v
}

fn batch_case(name: &str, header: &BatchHeader, events: &[Event]) -> Value {
    let bytes = encode_batch(header, events);
    json!({"name": name, "header": header, "events": events.iter().map(event_json).collect::<Vec<_>>(), "hex": hex(&bytes)})
}

/// Event batch vectors: encoding must give exactly these bytes on every
/// platform, decoding must give back exactly these events, and the invalid
/// ones must be rejected.
fn batches() -> Result<Value, String> {
    let mut cases = Vec::new();
    let header = |seq: u64, dropped: u64| BatchHeader {
        client_id: "vector-client".into(),
        seq,
        created_at_ms: DEFAULT_NOW_MS,
        sdk: "turnout-vectors".into(),
        sdk_version: "1".into(),
        platform: "any".into(),
        dropped,
        fold_overflow: 0,
    };
    // 1. Decisions and tracks recorded by a real client over the example config.
    let clock = Arc::new(FixedClock::new(DEFAULT_NOW_MS));
    let opts = ClientOptions {
        service: "booking".into(),
        clock: clock.clone(),
        tracking: TrackingOptions {
            client_id: "vector-client".into(),
            sdk: "turnout-vectors".into(),
            sdk_version: "1".into(),
            platform: "any".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let config = std::fs::read(crate::root().join("examples/configs/example.json")).map_err(|e| e.to_string())?;
    let (client, _) = Client::with_config(&config, opts).map_err(|e| e.to_string())?;
    let mut r = Rng::new(7);
    let vars = [
        "automatedMessageDelay",
        "checkoutButtonColor",
        "checkoutCopy",
        "showFeeBreakdown",
        "rewardsFlow",
        "surgeMultiplier",
    ];
    for session in 0..12 {
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            r.0.next() as u32,
            r.below(1 << 16),
            r.below(1 << 12),
            r.below(1 << 12),
            r.0.next() & 0xFFFF_FFFF_FFFF
        );
        let f = Facets::new()
            .passenger(r.id())
            .driver(r.id())
            .city(*r.pick(&[6, 10, 5]))
            .service(*r.pick(&[302, 11]))
            .booking(format!("ADR-{}-2-{:03}", r.below(1000), r.below(1000)))
            .session(uuid)
            .country(*r.pick(&["SG", "ID"]));
        for i in 0..8 {
            clock.advance(r.below(2000) as i64);
            if i == 7 {
                client.track("pickupSeconds", (r.below(6000) as f64) / 10.0, &f);
            } else {
                client.get_variable(vars[(session + i) % vars.len()], &f);
            }
        }
        client.get_variable(vars[session % vars.len()], &f); // a repeat: folded
    }
    while let Some(b) = client.take_batch(40) {
        let d = decode_batch(&b.bytes).map_err(|e| e.to_string())?;
        client.ack(b.seq);
        cases.push(batch_case(&format!("recorded-stream-seq{}", d.header.seq), &d.header, &d.events));
    }
    // 2. Hand-built events: every flag combination, edge values.
    let f = Facets::new()
        .city(6)
        .with("vip", true)
        .with("score", -0.5)
        .with("name", "Zürich 中文 😀")
        .passenger(BIG)
        .with("neg", i64::MIN);
    let empty = Facets::new();
    let ev = |t: i64, count: u64, name: &str, data: EventData, facets: &Facets| Event {
        time_ms: t,
        count,
        service: Arc::from("svc"),
        name: Arc::from(name),
        data,
        facets: facets.clone(),
    };
    let dec = |value: &str, source: Source, experiment: Option<&str>, rule: Option<u32>, choice: Option<u32>| {
        EventData::Decision { value: Arc::from(value), source, experiment: experiment.map(Arc::from), rule, choice }
    };
    let events = vec![
        ev(DEFAULT_NOW_MS + 3, 4, "delay", dec("60", Source::Rollout, None, Some(0), None), &f),
        ev(DEFAULT_NOW_MS - 5, 1, "color", dec("\"blue\"", Source::Experiment, Some("exp"), None, Some(1)), &f),
        ev(DEFAULT_NOW_MS - 5, 1, "plain", dec("30", Source::Default, None, None, None), &empty),
        ev(DEFAULT_NOW_MS + 1_000_000, 300, "svc.fare", EventData::Track { value: 12.75 }, &empty),
        ev(DEFAULT_NOW_MS, 1, "svc.count", EventData::Track { value: -3.0 }, &f),
        ev(0, 2, "svc.big", EventData::Track { value: 1e300 }, &empty),
        ev(i64::MIN / 2, 1, "json", dec("{\"a\":[1,2]}", Source::Rollout, None, Some(7), None), &empty),
    ];
    cases.push(batch_case("edge-values", &header(1, 0), &events));
    cases.push(batch_case("empty-with-dropped", &header(2, 990_000), &[]));
    // 3. Corrupted batches every decoder must reject.
    let good = encode_batch(&header(3, 0), &events[..2]);
    let mut flipped = good.clone();
    flipped[20] ^= 0x10;
    let mut version = good.clone();
    version[4] = 2;
    let mut trailing = good[..good.len() - 4].to_vec();
    trailing.push(0);
    let crc = turnout_core::tracking::checksum(&trailing);
    trailing.extend_from_slice(&crc.to_le_bytes());
    let invalid = vec![
        json!({"name": "bit-flip", "hex": hex(&flipped), "error": "checksum"}),
        json!({"name": "truncated", "hex": hex(&good[..good.len() - 1]), "error": "checksum"}),
        json!({"name": "bad-magic", "hex": hex(&[b"XRNB".as_slice(), &good[4..]].concat()), "error": "not-a-batch"}),
        json!({"name": "future-version", "hex": hex(&version), "error": "version"}),
        json!({"name": "trailing-byte-with-valid-crc", "hex": hex(&trailing), "error": "malformed"}),
        json!({"name": "empty", "hex": "", "error": "not-a-batch"}),
    ];
    Ok(json!({
        "name": "batches",
        "description": "Event batch wire format v1: exact bytes for given events (encode), exact events for given bytes (decode), and corrupted batches that must be rejected.",
        "cases": cases,
        "invalid": invalid,
    }))
}

/// Builds every vector file and the index; returns (relative path, JSON) pairs.
pub fn build(root: &Path) -> Result<Vec<(String, Value)>, String> {
    let files = vec![seed_rollout(root)?, operators(), fraction(), experiments(), timeslice(root)?, resolution()];
    let mut out = Vec::new();
    let mut index = Vec::new();
    for f in &files {
        let v = f.render()?;
        let path = format!("{}.json", f.name);
        index.push(json!({"path": path, "kind": "decisions", "cases": f.cases.len()}));
        out.push((path, v));
    }
    let b = batches()?;
    let n = b["cases"].as_array().map_or(0, Vec::len) + b["invalid"].as_array().map_or(0, Vec::len);
    index.push(json!({"path": "batches.json", "kind": "batches", "cases": n}));
    out.push(("batches.json".to_string(), b));
    let s = crate::sync_vectors::build()?;
    index.push(json!({"path": "sync.json", "kind": "sync", "cases": s["scripts"].as_array().map_or(0, Vec::len)}));
    out.push(("sync.json".to_string(), s));
    out.push((
        "index.json".to_string(),
        json!({
            "specVersion": turnout_core::SPEC_VERSION,
            "schema": "schema.json",
            "files": index,
        }),
    ));
    Ok(out)
}

/// Writes (or, with `check`, compares) the vector files under `tests/conformance/`.
pub fn run(root: &Path, check: bool) -> Result<(), String> {
    let dir = root.join("tests/conformance");
    let mut stale = Vec::new();
    let mut total = 0usize;
    for (path, v) in build(root)? {
        for key in ["cases", "invalid", "scripts"] {
            if let Some(c) = v.get(key).and_then(Value::as_array) {
                total += c.len();
            }
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n";
        let full = dir.join(&path);
        if check {
            if std::fs::read_to_string(&full).ok().as_deref() != Some(text.as_str()) {
                stale.push(path);
            }
        } else {
            std::fs::write(&full, text).map_err(|e| format!("writing {}: {e}", full.display()))?;
        }
    }
    if !stale.is_empty() {
        return Err(format!(
            "conformance vectors differ from what the engine gives: {} (run `cargo xtask vectors` and review the diff)",
            stale.join(", ")
        ));
    }
    println!("{} {total} cases in tests/conformance/", if check { "checked" } else { "wrote" });
    Ok(())
}
