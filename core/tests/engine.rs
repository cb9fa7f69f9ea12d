//! Behaviour tests of the engine, one group per spec rule.

use std::sync::Arc;

use serde_json::json;
use turnout_core::*;

fn client(cfg: serde_json::Value) -> Client {
    client_at(cfg, 1_700_000_000_000)
}

fn client_at(cfg: serde_json::Value, now_ms: i64) -> Client {
    let opts = ClientOptions { clock: Arc::new(FixedClock::new(now_ms)), ..Default::default() };
    Client::with_config(cfg.to_string().as_bytes(), opts).expect("config loads").0
}

fn seed_rollout() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/configs/seed-rollout.json")).unwrap()
}

fn seed_experiment() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/configs/seed-experiment.json")).unwrap()
}

fn rule(op: &str, value: serde_json::Value) -> Client {
    client(
        json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": op, "value": value}]}], "default": 0}),
    )
}

fn hit(c: &Client, x: impl Into<FacetValue>) -> bool {
    c.get_variable("v", &Facets::new().with("x", x)).int64(-1) == 1
}

// ---- the seed documents ----------------------------------------------------

#[test]
fn seed_rollout_singapore_gets_60() {
    let (c, report) = Client::with_config(&seed_rollout(), ClientOptions::default()).unwrap();
    assert_eq!(report.added, vec!["automatedMessageDelay"]);
    for svc in [302, 11] {
        let d = c.get_variable("automatedMessageDelay", &Facets::new().city(6).service(svc));
        assert_eq!(d.int64(0), 60);
        assert_eq!((d.source, d.rule, d.reason), (Source::Rollout, Some(0), Reason::TargetingMatch));
        assert_eq!(d.label.as_deref(), Some("60s delay"));
    }
    // Singapore with another service falls through to the default.
    let d = c.get_variable("automatedMessageDelay", &Facets::new().city(6).service(7));
    assert_eq!((d.int64(0), d.source), (30, Source::Default));
}

#[test]
fn seed_rollout_jakarta_quarter_of_passengers_gets_90() {
    let (c, _) = Client::with_config(&seed_rollout(), ClientOptions::default()).unwrap();
    let n = 100_000;
    let mut ninety = 0;
    for pax in 0..n {
        let d = c.get_variable("automatedMessageDelay", &Facets::new().city(10).passenger(pax));
        match d.int64(0) {
            90 => {
                ninety += 1;
                assert_eq!(d.rule, Some(1));
                // Membership is exactly bucket(variable name, pax) < 0.25.
                assert!(bucket("automatedMessageDelay", &pax.to_string()) < 0.25);
            }
            30 => assert!(bucket("automatedMessageDelay", &pax.to_string()) >= 0.25),
            other => panic!("unexpected value {other}"),
        }
    }
    let share = ninety as f64 / n as f64;
    assert!((share - 0.25).abs() < 0.005, "share {share}");
    // Everyone else: 30; no pax in Jakarta: the `/` constraint is false -> 30.
    assert_eq!(c.get_variable("automatedMessageDelay", &Facets::new().city(3).passenger(1)).int64(0), 30);
    assert_eq!(c.get_variable("automatedMessageDelay", &Facets::new().city(10)).int64(0), 30);
}

#[test]
fn seed_experiment_loads_and_is_inert_while_completed() {
    let opts = ClientOptions { clock: Arc::new(FixedClock::new(1_528_750_000_000)), ..Default::default() };
    let (c, report) = Client::with_config(&seed_experiment(), opts).unwrap();
    assert_eq!(report.added, vec!["timeSlicedShuffleTest1"]);
    let d = c.get_variable("timeSlicedShuffleTest1", &Facets::new().city(5));
    assert_eq!((d.source, d.reason), (Source::Fallback, Reason::Default));
}

#[test]
fn seed_experiment_running_switches_every_30_seconds() {
    let text = String::from_utf8(seed_experiment()).unwrap().replace("COMPLETED", "RUNNING");
    let clock = Arc::new(FixedClock::new(0));
    let opts = ClientOptions { clock: clock.clone(), ..Default::default() };
    let (c, _) = Client::with_config(text.as_bytes(), opts).unwrap();
    let var = c.variable("timeSlicedShuffleTest1");
    let ctx = c.context(Facets::new().city(5));
    let (mut seen0, mut seen1, mut in_slot) = (0, 0, 0);
    // Walk a window of 60 s periods inside the experiment's time range.
    for k in 25_478_577i64..25_478_577 + 200 {
        let start = k * 60;
        clock.set(start * 1000);
        let d = ctx.decision(&var);
        if d.source != Source::Experiment {
            continue; // not in the 50% slot for this window
        }
        in_slot += 1;
        let first = d.int64(-1);
        // Within a window, each 30 s half has one value and the two halves differ.
        clock.set((start + 29) * 1000);
        assert_eq!(ctx.int64(&var, -1), first);
        clock.set((start + 30) * 1000);
        let second = ctx.int64(&var, -1);
        clock.set((start + 59) * 1000);
        assert_eq!(ctx.int64(&var, -1), second);
        assert_ne!(first, second, "both choices appear once per period");
        if first == 0 {
            seen0 += 1
        } else {
            seen1 += 1
        }
    }
    assert!((60..140).contains(&in_slot), "about half of the windows are in the slot: {in_slot}");
    assert!(seen0 > 10 && seen1 > 10, "shuffle order varies: {seen0}/{seen1}");
    // Outside the constraint window the experiment does not apply.
    clock.set(1_600_000_000_000);
    assert_eq!(ctx.decision(&var).source, Source::Fallback);
    // Wrong city: does not apply.
    clock.set(25_478_600 * 60 * 1000);
    let other = c.context(Facets::new().city(6));
    assert_eq!(other.decision(&var).source, Source::Fallback);
}

// ---- rule 1: canonical units -------------------------------------------------

#[test]
fn integral_floats_bucket_like_integers() {
    let c = client(
        json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "pax", "op": "/", "value": 0.5}]}], "default": 0}),
    );
    for id in 0..2000i64 {
        let a = c.get_variable("v", &Facets::new().passenger(id)).int64(-1);
        let b = c.get_variable("v", &Facets::new().with("pax", id as f64)).int64(-1);
        let s = c.get_variable("v", &Facets::new().with("pax", id.to_string())).int64(-1);
        assert_eq!(a, b);
        assert_eq!(a, s);
    }
}

#[test]
fn ids_above_2_pow_53_stay_distinct() {
    let c = rule("=", json!(9007199254740993i64));
    assert!(hit(&c, 9007199254740993i64));
    assert!(!hit(&c, 9007199254740992i64));
    assert!(hit(&c, "9007199254740993"));
    assert_ne!(bucket("s", "9007199254740993"), bucket("s", "9007199254740992"));
}

// ---- rule 3: constraints -----------------------------------------------------

#[test]
fn equality_is_numeric_when_both_sides_are() {
    let c = rule("=", json!("6"));
    assert!(hit(&c, 6));
    assert!(hit(&c, 6.0));
    assert!(hit(&c, "6.0"));
    assert!(hit(&c, "6"));
    assert!(!hit(&c, 7));
    assert!(!hit(&c, "six"));
    let s = rule("=", json!("Jakarta"));
    assert!(hit(&s, "Jakarta"));
    assert!(!hit(&s, "jakarta"));
    let b = rule("=", json!(true));
    assert!(hit(&b, true));
    assert!(hit(&b, "true"));
    assert!(!hit(&b, false));
    let ne = rule("!=", json!(6));
    assert!(!hit(&ne, 6.0));
    assert!(hit(&ne, 5));
    // Absent facet: false whatever the op, including !=.
    assert_eq!(ne.get_variable("v", &Facets::new()).int64(-1), 0);
}

#[test]
fn in_and_nin_accept_arrays_and_strings_holding_arrays() {
    for value in [json!([302, 11]), json!("[302, 11]"), json!(["302", "11.0"])] {
        let c = rule("in", value.clone());
        assert!(hit(&c, 302) && hit(&c, 11) && !hit(&c, 12), "{value}");
        let n = rule("nin", value.clone());
        assert!(!hit(&n, 302) && hit(&n, 12), "{value}");
    }
    let empty = rule("in", json!([]));
    assert!(!hit(&empty, 1));
    let mixed = rule("in", json!(["a", 1, true]));
    assert!(hit(&mixed, "a") && hit(&mixed, 1) && hit(&mixed, true) && !hit(&mixed, "b"));
}

#[test]
fn ordering_ops_are_numeric_only() {
    let gt = rule(">", json!("10"));
    assert!(hit(&gt, 11) && hit(&gt, 10.5) && hit(&gt, "11") && !hit(&gt, 10) && !hit(&gt, "abc") && !hit(&gt, true));
    let ge = rule(">=", json!(10));
    assert!(hit(&ge, 10) && !hit(&ge, 9.99));
    let lt = rule("<", json!(-1.5));
    assert!(hit(&lt, -2) && !hit(&lt, -1.5));
    let le = rule("<=", json!(9007199254740993i64));
    assert!(hit(&le, 9007199254740993i64) && !hit(&le, 9007199254740994i64));
}

#[test]
fn string_and_semver_ops() {
    assert!(hit(&rule("prefix", json!("ADR-")), "ADR-123"));
    assert!(!hit(&rule("prefix", json!("ADR-")), "XADR-"));
    assert!(hit(&rule("suffix", json!("-001")), "ADR-123-2-001"));
    assert!(hit(&rule("contains", json!("23-2")), "ADR-123-2-001"));
    assert!(hit(&rule("contains", json!("ü")), "Zürich"));
    let re = rule("regex", json!("^ADR-[0-9]+-"));
    assert!(hit(&re, "ADR-123-2") && !hit(&re, "adr-123-2"));
    let lt = rule("semver<", json!("5.2.0"));
    assert!(hit(&lt, "5.1.9") && hit(&lt, "5.2.0-beta.1") && !hit(&lt, "5.2.0") && !hit(&lt, "5.10.0"));
    assert!(hit(&lt, "v5.1") && !hit(&lt, "not a version"));
    assert!(hit(&rule("semver>=", json!("v2")), "2.0.0"));
    assert!(hit(&rule("semver=", json!("1.2.3")), "1.2.3"));
    assert!(hit(&rule("semver!=", json!("1.2.3")), "1.2.4"));
}

#[test]
fn fraction_ramp_only_adds_units() {
    let ids: Vec<i64> = (0..20_000).collect();
    let mut prev: Vec<bool> = vec![false; ids.len()];
    for p in [0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0] {
        let c = rule("/", json!(p));
        let cur: Vec<bool> = ids.iter().map(|i| hit(&c, *i)).collect();
        for (a, b) in prev.iter().zip(&cur) {
            assert!(!a || *b, "a unit left the ramp when raising to {p}");
        }
        let share = cur.iter().filter(|x| **x).count() as f64 / ids.len() as f64;
        assert!((share - p).abs() < 0.015, "p={p} share={share}");
        prev = cur;
    }
}

#[test]
fn fraction_salt_defaults_to_variable_and_can_be_overridden() {
    let a = client(
        json!({"variable": "a", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "/", "value": 0.5}]}], "default": 0}),
    );
    let b = client(
        json!({"variable": "a", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "/", "value": 0.5, "salt": "other"}]}], "default": 0}),
    );
    for x in 0..500 {
        let fa = a.get_variable("a", &Facets::new().with("x", x)).int64(0) == 1;
        let fb = b.get_variable("a", &Facets::new().with("x", x)).int64(0) == 1;
        assert_eq!(fa, bucket("a", &x.to_string()) < 0.5);
        assert_eq!(fb, bucket("other", &x.to_string()) < 0.5);
    }
}

#[test]
fn unknown_op_is_a_load_error_naming_document_and_op() {
    let cfg =
        json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "~=", "value": 1}]}]});
    let e = Client::with_config(cfg.to_string().as_bytes(), ClientOptions::default()).unwrap_err();
    let p = &e.problems()[0];
    assert_eq!(p.document, "rollout \"v\"");
    assert_eq!(p.field, "rollouts[0].constraints[0].op");
    assert!(p.message.contains("unknown op `~=`"), "{}", p.message);
}

#[test]
fn validation_reports_every_problem() {
    let cfg = json!({"rollouts": [
        {"variable": "a", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "/", "value": "abc"}]}]},
        {"variable": "b", "rollouts": [{"constraints": []}]}
    ], "experiments": [{"name": "e", "state": "RUNNING", "variables": [{"name": "c", "facets": [], "choices": []}]}]});
    let c = Client::new(ClientOptions::default());
    let e = c.validate(cfg.to_string().as_bytes()).unwrap_err();
    let fields: Vec<String> = e.problems().iter().map(|p| format!("{} {}", p.document, p.field)).collect();
    assert!(fields.contains(&"rollout \"a\" rollouts[0].constraints[0].value".to_string()), "{fields:?}");
    assert!(fields.contains(&"rollout \"b\" rollouts[0].value".to_string()), "{fields:?}");
    assert!(fields.contains(&"experiment \"e\" variables[0].facets".to_string()), "{fields:?}");
    assert!(fields.contains(&"experiment \"e\" variables[0].choices".to_string()), "{fields:?}");
}

// ---- rule 4: rollouts --------------------------------------------------------

#[test]
fn first_matching_rule_wins_and_empty_constraints_hold() {
    let c = client(json!({"variable": "v", "rollouts": [
        {"value": "a", "constraints": [{"target": "city", "op": "=", "value": 1}]},
        {"value": "b", "constraints": []},
        {"value": "c", "constraints": []}
    ]}));
    assert_eq!(c.get_variable("v", &Facets::new().city(1)).string("?"), "a");
    let d = c.get_variable("v", &Facets::new().city(2));
    assert_eq!((d.string("?"), d.rule), ("b".to_string(), Some(1)));
}

#[test]
fn no_default_means_fallback() {
    let c = client(
        json!({"variable": "v", "rollouts": [{"value": 5, "constraints": [{"target": "city", "op": "=", "value": 1}]}]}),
    );
    let d = c.get_variable("v", &Facets::new().city(2));
    assert_eq!((d.source, d.reason, d.value.clone()), (Source::Fallback, Reason::Default, None));
    assert_eq!(d.int64(42), 42);
}

#[test]
fn kill_switch_wins_over_everything() {
    let c = client(json!({
        "rollouts": [{"variable": "v", "enabled": false, "rollouts": [{"value": 1, "constraints": []}], "default": 2}],
        "experiments": [{"name": "e", "state": "RUNNING", "variables": [{"name": "v", "facets": ["pax"], "choices": [{"value": 3}]}]}]
    }));
    let d = c.get_variable("v", &Facets::new().passenger(1));
    assert_eq!((d.source, d.reason, d.int64(9)), (Source::Fallback, Reason::Disabled, 9));
}

#[test]
fn segments_are_reusable_constraint_lists() {
    let c = client(json!({
        "segments": {"beta": {"constraints": [{"target": "employer", "op": "in", "value": ["acme", "globex"]}]}},
        "rollouts": [{"variable": "v", "rollouts": [
            {"value": "beta", "segments": ["beta"], "constraints": [{"target": "country", "op": "=", "value": "SG"}]}
        ], "default": "ga"}]
    }));
    assert_eq!(c.get_variable("v", &Facets::new().with("employer", "acme").country("SG")).string(""), "beta");
    assert_eq!(c.get_variable("v", &Facets::new().with("employer", "acme").country("ID")).string(""), "ga");
    assert_eq!(c.get_variable("v", &Facets::new().with("employer", "other").country("SG")).string(""), "ga");
    let bad =
        json!({"segments": {}, "rollouts": [{"variable": "v", "rollouts": [{"value": 1, "segments": ["nope"]}]}]});
    let e = Client::with_config(bad.to_string().as_bytes(), ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("unknown segment `nope`"), "{e}");
}

// ---- rule 5: experiments -----------------------------------------------------

fn weighted_experiment(state: &str, weights: [f64; 3]) -> serde_json::Value {
    json!({"experiments": [{"name": "exp", "state": state, "variables": [{"name": "v", "facets": ["pax", "city"],
        "choices": [{"value": "a", "weight": weights[0]}, {"value": "b", "weight": weights[1]}, {"value": "c", "weight": weights[2]}]}]}]})
}

#[test]
fn weighted_split_follows_weights_and_multi_facet_unit() {
    let c = client(weighted_experiment("RUNNING", [1.0, 2.0, 1.0]));
    let mut counts = [0usize; 3];
    for pax in 0..40_000i64 {
        let d = c.get_variable("v", &Facets::new().passenger(pax).city(6));
        let i = d.choice.unwrap() as usize;
        counts[i] += 1;
        // The unit is "pax\x1Fcity", salted with the experiment name.
        let b = bucket("exp", &format!("{pax}\u{1f}6"));
        let expected = if b < 0.25 {
            0
        } else if b < 0.75 {
            1
        } else {
            2
        };
        assert_eq!(i, expected);
        assert_eq!(d.reason, Reason::Split);
        assert_eq!(d.experiment.as_deref(), Some("exp"));
    }
    let shares: Vec<f64> = counts.iter().map(|c| *c as f64 / 40_000.0).collect();
    assert!((shares[0] - 0.25).abs() < 0.01 && (shares[1] - 0.5).abs() < 0.01, "{shares:?}");
    // Missing a unit facet: the experiment does not apply.
    assert_eq!(c.get_variable("v", &Facets::new().passenger(1)).source, Source::Fallback);
}

#[test]
fn experiments_apply_only_when_running() {
    for state in ["COMPLETED", "running", "PAUSED", "DRAFT"] {
        let c = client(weighted_experiment(state, [1.0, 1.0, 1.0]));
        assert_eq!(c.get_variable("v", &Facets::new().passenger(1).city(1)).source, Source::Fallback, "{state}");
    }
}

#[test]
fn zero_weight_choices_are_never_picked() {
    let c = client(weighted_experiment("RUNNING", [0.0, 1.0, 0.0]));
    for pax in 0..2000 {
        assert_eq!(c.get_variable("v", &Facets::new().passenger(pax).city(1)).string(""), "b");
    }
}

#[test]
fn experiment_takes_precedence_and_falls_back_to_rollout() {
    let c = client(json!({
        "rollouts": [{"variable": "v", "rollouts": [], "default": "rollout-default"}],
        "experiments": [{"name": "e", "state": "RUNNING", "constraints": [{"target": "city", "op": "=", "value": 6}],
            "variables": [{"name": "v", "facets": ["pax"], "choices": [{"value": "exp"}]}]}]
    }));
    assert_eq!(c.get_variable("v", &Facets::new().passenger(1).city(6)).string(""), "exp");
    assert_eq!(c.get_variable("v", &Facets::new().passenger(1).city(7)).string(""), "rollout-default");
    assert_eq!(c.get_variable("v", &Facets::new().city(6)).string(""), "rollout-default");
}

#[test]
fn slotting_splits_a_domain_without_overlap() {
    let cfg = json!({"experiments": [
        {"domain": "d", "name": "e1", "state": "RUNNING", "slotting": {"byPercentage": 0.3},
         "variables": [{"name": "v1", "facets": ["pax"], "choices": [{"value": 1}]}]},
        {"domain": "d", "name": "e2", "state": "RUNNING", "slotting": {"byPercentage": 0.5, "offset": 0.3},
         "variables": [{"name": "v2", "facets": ["pax"], "choices": [{"value": 2}]}]}
    ]});
    let c = client(cfg);
    let (mut n1, mut n2) = (0, 0);
    for pax in 0..20_000i64 {
        let f = Facets::new().passenger(pax);
        let in1 = c.get_variable("v1", &f).source == Source::Experiment;
        let in2 = c.get_variable("v2", &f).source == Source::Experiment;
        assert!(!(in1 && in2), "pax {pax} is in two slotted experiments of one domain");
        let b = bucket("d", &pax.to_string());
        assert_eq!(in1, b < 0.3);
        assert_eq!(in2, (0.3..0.8).contains(&b));
        n1 += usize::from(in1);
        n2 += usize::from(in2);
        let all = c.get_variables("d", &f);
        assert_eq!(all.len(), usize::from(in1) + usize::from(in2));
    }
    assert!((n1 as f64 / 20_000.0 - 0.3).abs() < 0.015);
    assert!((n2 as f64 / 20_000.0 - 0.5).abs() < 0.015);
}

#[test]
fn overlapping_slots_are_rejected() {
    let cfg = json!({"experiments": [
        {"domain": "d", "name": "e1", "state": "RUNNING", "slotting": {"byPercentage": 0.5},
         "variables": [{"name": "v1", "facets": ["pax"], "choices": [{"value": 1}]}]},
        {"domain": "d", "name": "e2", "state": "RUNNING", "slotting": {"byPercentage": 0.5, "offset": 0.4},
         "variables": [{"name": "v2", "facets": ["pax"], "choices": [{"value": 2}]}]}
    ]});
    let e = Client::with_config(cfg.to_string().as_bytes(), ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("overlaps experiment `e1`"), "{e}");
}

#[test]
fn get_variables_by_experiment_name_and_domain() {
    let c = client(json!({"experiments": [{"domain": "checkout", "name": "checkout.t", "state": "RUNNING",
        "variables": [{"name": "a", "facets": ["pax"], "choices": [{"value": 1}]}, {"name": "b", "facets": ["pax"], "choices": [{"value": 2}]}]}]}));
    let f = Facets::new().passenger(5);
    let by_domain: Vec<String> = c.get_variables("checkout", &f).into_iter().map(|d| d.variable).collect();
    assert_eq!(by_domain, vec!["a", "b"]);
    assert_eq!(c.get_variables("checkout.t", &f).len(), 2);
    assert!(c.get_variables("nope", &f).is_empty());
}

// ---- rule 6/7, typed access, clock -------------------------------------------

#[test]
fn typed_accessors_and_type_mismatch() {
    let c = client(json!({"rollouts": [
        {"variable": "n", "default": 60}, {"variable": "f", "default": 1.5}, {"variable": "i", "default": 6.0},
        {"variable": "s", "default": "x"}, {"variable": "b", "default": true}, {"variable": "j", "default": {"a": [1]}}
    ]}));
    let f = Facets::new();
    assert_eq!(c.get_variable("n", &f).int64(0), 60);
    assert_eq!(c.get_variable("i", &f).int64(0), 6);
    assert_eq!(c.get_variable("f", &f).int64(7), 7);
    assert_eq!(c.get_variable("n", &f).float64(0.0), 60.0);
    assert_eq!(c.get_variable("s", &f).int64(7), 7);
    assert!(c.get_variable("b", &f).bool(false));
    assert_eq!(c.get_variable("j", &f).json(), Some(&json!({"a": [1]})));
    let m = c.get_variable("s", &f).checked(ValueType::Int64);
    assert_eq!((m.reason, m.error, m.int64(3)), (Reason::Error, Some(ErrorCode::TypeMismatch), 3));
    let ok = c.get_variable("n", &f).checked(ValueType::Int64);
    assert_eq!(ok.reason, Reason::Default);
    let nf = c.get_variable("missing", &f);
    assert_eq!((nf.reason, nf.error), (Reason::Error, Some(ErrorCode::FlagNotFound)));
}

#[test]
fn ts_comes_from_the_injected_clock_unless_given() {
    let clock = Arc::new(FixedClock::new(1_000_500));
    let opts = ClientOptions { clock: clock.clone(), ..Default::default() };
    let cfg = json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "ts", "op": ">=", "value": 1000}]}], "default": 0});
    let (c, _) = Client::with_config(cfg.to_string().as_bytes(), opts).unwrap();
    assert_eq!(c.get_variable("v", &Facets::new()).int64(-1), 1);
    clock.set(999_999);
    assert_eq!(c.get_variable("v", &Facets::new()).int64(-1), 0);
    assert_eq!(c.get_variable("v", &Facets::new().ts(5000)).int64(-1), 1);
}

// ---- updates -----------------------------------------------------------------

#[test]
fn bad_config_never_replaces_a_good_one() {
    let (c, _) = Client::with_config(&seed_rollout(), ClientOptions::default()).unwrap();
    for bad in [&b"not json"[..], b"[]", b"{}", b"{\"schema\": 2, \"rollouts\": []}", b"\xff\xfe"] {
        assert!(c.update_config(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        assert_eq!(c.get_variable("automatedMessageDelay", &Facets::new().city(6).service(11)).int64(0), 60);
    }
}

#[test]
fn broken_document_keeps_its_last_good_version() {
    let good = json!({"rollouts": [
        {"variable": "a", "default": 1},
        {"variable": "b", "default": 2}
    ]});
    let c = client(good);
    let half_bad = json!({"rollouts": [
        {"variable": "a", "default": 10},
        {"variable": "b", "rollouts": [{"value": 3, "constraints": [{"target": "x", "op": "???", "value": 1}]}]},
        {"variable": "c", "rollouts": "oops"}
    ]});
    let r = c.update_config(half_bad.to_string().as_bytes()).unwrap();
    assert_eq!(r.changed, vec!["a"]);
    assert_eq!(r.added, vec!["c"]);
    assert_eq!(r.rejected.len(), 2);
    assert!(r.rejected[0].kept_last_good && !r.rejected[1].kept_last_good);
    let f = Facets::new();
    assert_eq!(c.get_variable("a", &f).int64(0), 10);
    assert_eq!(c.get_variable("b", &f).int64(0), 2, "b keeps its last good version");
    let d = c.get_variable("c", &f);
    assert_eq!((d.reason, d.error), (Reason::Error, Some(ErrorCode::ParseError)));
    // Strict isolation rejects the same bundle whole.
    let strict = ClientOptions { isolation: Isolation::Strict, ..Default::default() };
    let s = Client::with_config(json!({"rollouts": [{"variable": "a", "default": 1}]}).to_string().as_bytes(), strict)
        .unwrap()
        .0;
    assert!(s.update_config(half_bad.to_string().as_bytes()).is_err());
    assert_eq!(s.get_variable("a", &f).int64(0), 1);
}

#[test]
fn update_report_lists_changes() {
    let c = client(json!({"rollouts": [{"variable": "a", "default": 1}, {"variable": "b", "default": 2}]}));
    let r = c
        .update_config(
            json!({"version": 7, "rollouts": [{"variable": "a", "default": 1}, {"variable": "c", "default": 3}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(
        (r.added, r.removed, r.changed, r.version),
        (vec!["c".to_string()], vec!["b".to_string()], vec![], Some(7))
    );
    assert_eq!(c.config_version(), Some(7));
    assert_eq!(c.variable_names(), vec!["a", "c"]);
}

#[test]
fn variable_handles_survive_updates() {
    let c = client(json!({"rollouts": [{"variable": "a", "default": 1}]}));
    let var = c.variable("b");
    let ctx = c.context(Facets::new());
    assert_eq!(ctx.int64(&var, -1), -1);
    c.update_config(
        json!({"rollouts": [{"variable": "a", "default": 1}, {"variable": "b", "default": 2}]}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(ctx.int64(&var, -1), 2);
    c.update_config(json!({"rollouts": [{"variable": "b", "default": 3}]}).to_string().as_bytes()).unwrap();
    assert_eq!(ctx.int64(&var, -1), 3);
    // A handle made by one client works with another client's context.
    let other = client(json!({"rollouts": [{"variable": "x", "default": 0}, {"variable": "b", "default": 9}]}));
    assert_eq!(other.context(Facets::new()).int64(&var, -1), 9);
    assert_eq!(ctx.int64(&var, -1), 3);
}

#[test]
fn contexts_made_before_and_after_updates_decide_alike() {
    // A context pins the snapshot current at its creation and must notice
    // every later update (and ignore rejected ones).
    let c = client(json!({"rollouts": [{"variable": "v", "default": 1}]}));
    let var = c.variable("v");
    let old = c.context(Facets::new().city(6));
    assert_eq!(old.int64(&var, -1), 1);
    for i in 2..5 {
        c.update_config(json!({"rollouts": [{"variable": "v", "default": i}]}).to_string().as_bytes()).unwrap();
        let new = c.context(Facets::new().city(6));
        assert_eq!((old.int64(&var, -1), new.int64(&var, -1)), (i, i));
        assert!(c.update_config(b"{not json").is_err());
        assert_eq!((old.int64(&var, -1), new.int64(&var, -1)), (i, i), "a rejected update changes nothing");
    }
}

#[test]
fn readers_see_whole_configs_during_concurrent_updates() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let c = client(json!({"rollouts": [{"variable": "a", "default": 0}, {"variable": "b", "default": 0}]}));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(std::sync::Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (c, stop, reads, start) = (c.clone(), stop.clone(), reads.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let (va, vb) = (c.variable("a"), c.variable("b"));
                let ctx = c.context(Facets::new());
                let mut n = 0u64;
                loop {
                    // Both variables always come from the same or a later version: a <= b.
                    let a = ctx.int64(&va, -1);
                    let b = ctx.int64(&vb, -1);
                    assert!(a <= b, "torn read {a} > {b}");
                    n += 1;
                    reads.fetch_add(1, Relaxed);
                    if stop.load(Relaxed) {
                        return n;
                    }
                }
            })
        })
        .collect();
    start.wait();
    for i in 1..=300 {
        let cfg = json!({"rollouts": [{"variable": "a", "default": i}, {"variable": "b", "default": i}]});
        c.update_config(cfg.to_string().as_bytes()).unwrap();
        // Let the readers run between updates (bounded, so a loaded machine
        // slows the test down instead of failing it).
        let seen = reads.load(Relaxed);
        let t = std::time::Instant::now();
        while reads.load(Relaxed) == seen && t.elapsed() < std::time::Duration::from_millis(20) {
            std::thread::yield_now();
        }
    }
    stop.store(true, Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(reads.load(Relaxed) >= 2);
}

#[test]
fn client_and_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<Context>();
    assert_send_sync::<Variable>();
}

#[test]
fn explain_names_the_failing_constraint() {
    let (c, _) = Client::with_config(&seed_rollout(), ClientOptions::default()).unwrap();
    let ex = c.explain("automatedMessageDelay", &Facets::new().city(6).service(7));
    assert_eq!(ex.decision.source, Source::Default);
    assert!(ex.steps[0].contains("svc in [302, 11]"), "{:?}", ex.steps);
    assert!(ex.steps[1].contains("city = 10"), "{:?}", ex.steps);
}

#[test]
fn adjacent_slots_written_as_sums_do_not_overlap() {
    // 0.2 + 0.1 is 0.30000000000000004 in f64; boundaries are rounded to 12 decimals.
    let cfg = json!({"experiments": [
        {"domain": "d", "name": "e1", "state": "RUNNING", "slotting": {"byPercentage": 0.1, "offset": 0.2},
         "variables": [{"name": "v1", "facets": ["pax"], "choices": [{"value": 1}]}]},
        {"domain": "d", "name": "e2", "state": "RUNNING", "slotting": {"byPercentage": 0.1, "offset": 0.3},
         "variables": [{"name": "v2", "facets": ["pax"], "choices": [{"value": 2}]}]}
    ]});
    let c = client(cfg);
    assert!(c.get_variable("v1", &Facets::new().passenger(1)).reason != Reason::Error);
}

#[test]
fn ordering_against_a_non_numeric_value_is_false_not_an_error() {
    let c = rule(">", json!("abc"));
    assert!(!hit(&c, 5) && !hit(&c, "zzz"));
}

#[test]
fn semver_ignores_build_metadata() {
    assert!(hit(&rule("semver=", json!("1.2.3")), "1.2.3+build5"));
    assert!(!hit(&rule("semver>", json!("1.2.3")), "1.2.3+build5"));
}

#[test]
fn a_rejected_experiment_without_last_good_gives_parse_error() {
    let cfg = json!({"rollouts": [{"variable": "ok", "default": 1}],
        "experiments": [{"name": "e", "state": "RUNNING", "variables": [{"name": "v", "facets": ["pax"], "choices": "oops"}]}]});
    let c = client(cfg);
    let d = c.get_variable("v", &Facets::new().passenger(1));
    assert_eq!((d.reason, d.error), (Reason::Error, Some(ErrorCode::ParseError)));
}

#[test]
fn a_broken_document_still_honours_its_kill_switch() {
    let c = client(json!({"rollouts": [{"variable": "v", "default": 1}, {"variable": "w", "default": 2}]}));
    assert_eq!(c.get_variable("v", &Facets::new()).int64(0), 1);
    let r = c
        .update_config(json!({"rollouts": [{"variable": "v", "enabled": false, "rollouts": [{"value": 1, "constraints": [{"op": "?"}]}]}, {"variable": "w", "default": 2}]}).to_string().as_bytes())
        .unwrap();
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(c.get_variable("v", &Facets::new()).reason, Reason::Disabled);
}

#[test]
fn get_variables_skips_killed_variables() {
    let c = client(json!({
        "rollouts": [{"variable": "a", "enabled": false}],
        "experiments": [{"domain": "d", "name": "e", "state": "RUNNING",
            "variables": [{"name": "a", "facets": ["pax"], "choices": [{"value": 1}]}, {"name": "b", "facets": ["pax"], "choices": [{"value": 2}]}]}]
    }));
    let names: Vec<String> =
        c.get_variables("d", &Facets::new().passenger(1)).into_iter().map(|d| d.variable).collect();
    assert_eq!(names, vec!["b"]);
}

#[test]
fn slots_of_one_domain_must_share_a_unit() {
    let cfg = json!({"experiments": [
        {"domain": "d", "name": "e1", "state": "RUNNING", "slotting": {"byPercentage": 0.5},
         "variables": [{"name": "v1", "facets": ["pax"], "choices": [{"value": 1}]}]},
        {"domain": "d", "name": "e2", "state": "RUNNING", "slotting": {"byPercentage": 0.5, "offset": 0.5},
         "variables": [{"name": "v2", "facets": ["device"], "choices": [{"value": 2}]}]}
    ]});
    let e = Client::with_config(cfg.to_string().as_bytes(), ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("must share one unit"), "{e}");
}

#[test]
fn non_numeric_ordering_values_are_reported_as_warnings() {
    let cfg = json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": ">", "value": "1O"}]}]});
    let r = Client::new(ClientOptions::default()).update_config(cfg.to_string().as_bytes()).unwrap();
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].field, "rollouts[0].constraints[0].value");
    assert!(r.warnings[0].message.contains("always false"));
}

#[test]
fn a_broken_kill_switch_alone_still_takes_effect() {
    let c = client(json!({"variable": "v", "default": 1}));
    let r = c
        .update_config(json!({"variable": "v", "enabled": false, "rollouts": [{"value": 2, "constraints": [{"target": "x", "op": "?", "value": 1}]}]}).to_string().as_bytes())
        .unwrap();
    assert!(r.rejected[0].kill_switch && !r.rejected[0].kept_last_good);
    assert_eq!(c.get_variable("v", &Facets::new()).reason, Reason::Disabled);
}

#[test]
fn a_broken_experiment_does_not_break_a_variable_another_experiment_defines() {
    let cfg = json!({"experiments": [
        {"name": "bad", "state": "RUNNING", "variables": [{"name": "v", "facets": ["pax"], "choices": "oops"}]},
        {"name": "good", "state": "RUNNING", "constraints": [{"target": "city", "op": "=", "value": 6}],
         "variables": [{"name": "v", "facets": ["pax"], "choices": [{"value": 1}]}]}
    ]});
    let c = client(cfg);
    assert_eq!(c.get_variable("v", &Facets::new().passenger(1).city(6)).int64(0), 1);
    let d = c.get_variable("v", &Facets::new().passenger(1).city(7));
    assert_eq!((d.source, d.reason, d.error), (Source::Fallback, Reason::Default, None));
}

#[test]
fn time_window_slots_of_different_periods_are_rejected() {
    let exp = |name: &str, offset: f64, span: u64| {
        json!({"domain": "d", "name": name, "state": "RUNNING",
        "slotting": {"byPercentage": 0.5, "offset": offset},
        "variables": [{"name": name, "facets": ["ts"], "strategy": "timeSliceShuffle", "choices": [{"value": 0, "span": span}]}]})
    };
    let same = json!({"experiments": [exp("a", 0.0, 60), exp("b", 0.5, 60)]});
    assert!(Client::with_config(same.to_string().as_bytes(), ClientOptions::default()).is_ok());
    let different = json!({"experiments": [exp("a", 0.0, 60), exp("b", 0.5, 90)]});
    let e = Client::with_config(different.to_string().as_bytes(), ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("60 s time window"), "{e}");
}
