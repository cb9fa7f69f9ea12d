//! Property tests (proptest) and bucket-quality statistics.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};
use turnout_core::*;

// ---- generators -------------------------------------------------------------

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        "[a-z0-9.\\[\\], \u{e9}\u{4e2d}-]{0,12}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        prop::collection::vec(any::<i16>().prop_map(Value::from), 0..4).prop_map(Value::from),
    ]
}

fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "=", "!=", "in", "nin", ">", ">=", "<", "<=", "/", "semver<", "semver>=", "prefix", "suffix", "contains",
        "regex", "bogus",
    ])
}

fn facet_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["pax", "city", "svc", "ts", "x", "appVersion"]).prop_map(String::from)
}

fn constraint() -> impl Strategy<Value = Value> {
    (facet_name(), op(), scalar(), prop::option::of("[a-z]{0,4}")).prop_map(|(t, o, v, s)| match s {
        Some(s) => json!({"target": t, "op": o, "value": v, "salt": s}),
        None => json!({"target": t, "op": o, "value": v}),
    })
}

fn rollout_doc() -> impl Strategy<Value = Value> {
    (
        "[a-d]",
        prop::collection::vec((scalar(), prop::collection::vec(constraint(), 0..3)), 0..4),
        prop::option::of(scalar()),
        any::<bool>(),
    )
        .prop_map(|(name, rules, default, enabled)| {
            let rules: Vec<Value> = rules.into_iter().map(|(v, c)| json!({"value": v, "constraints": c})).collect();
            json!({"variable": name, "rollouts": rules, "default": default, "enabled": enabled})
        })
}

fn experiment_doc() -> impl Strategy<Value = Value> {
    (
        "[e-g]",
        prop::sample::select(vec!["RUNNING", "COMPLETED"]),
        prop::collection::vec(facet_name(), 0..3),
        prop::sample::select(vec!["weighted", "timeSliceShuffle", "other"]),
        prop::collection::vec((scalar(), -1.0f64..5.0, 0u64..100), 0..4),
        prop::option::of((0.0f64..1.2, 0.0f64..1.0)),
        prop::collection::vec(constraint(), 0..2),
    )
        .prop_map(|(name, state, facets, strategy, choices, slot, cons)| {
            let choices: Vec<Value> =
                choices.into_iter().map(|(v, w, s)| json!({"value": v, "weight": w, "span": s})).collect();
            let mut e = json!({"name": name, "domain": "d", "state": state, "constraints": cons,
                "variables": [{"name": "a", "facets": facets, "strategy": strategy, "choices": choices}]});
            if let Some((w, o)) = slot {
                e["slotting"] = json!({"byPercentage": w, "offset": o});
            }
            e
        })
}

fn bundle() -> impl Strategy<Value = Value> {
    (prop::collection::vec(rollout_doc(), 0..4), prop::collection::vec(experiment_doc(), 0..3))
        .prop_map(|(r, e)| json!({"schema": 1, "rollouts": r, "experiments": e}))
}

fn facets() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(facet_name(), scalar(), 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn fixed_client() -> Client {
    let opts = ClientOptions { clock: Arc::new(FixedClock::new(1_528_750_000_000)), ..Default::default() };
    Client::new(opts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Loading and evaluating arbitrary configs and facets never panics, and a
    /// rejected update leaves the previous config in force.
    #[test]
    fn never_panics_and_bad_updates_change_nothing(cfg in bundle(), f in facets()) {
        let c = fixed_client();
        let facets = Facets::from_json(&f).unwrap_or_default();
        let before: Vec<Decision> = ["a", "b", "e", "x"].iter().map(|v| c.get_variable(v, &facets)).collect();
        match c.update_config(cfg.to_string().as_bytes()) {
            Ok(_) => {
                for v in ["a", "b", "c", "d", "e", "zzz"] {
                    let d = c.get_variable(v, &facets);
                    let ctx = c.context(facets.clone());
                    let var = c.variable(v);
                    prop_assert_eq!(ctx.decision(&var), d.clone());
                    let _ = (ctx.int64(&var, 0), ctx.float64(&var, 0.0), ctx.bool(&var, false), ctx.string(&var, ""));
                    let _ = c.explain(v, &facets);
                }
                let _ = c.get_variables("d", &facets);
            }
            Err(e) => {
                prop_assert!(!e.problems().is_empty());
                let after: Vec<Decision> = ["a", "b", "e", "x"].iter().map(|v| c.get_variable(v, &facets)).collect();
                prop_assert_eq!(before, after);
            }
        }
    }

    /// Raising a `/` fraction only ever adds units.
    #[test]
    fn ramp_is_monotonic(salt in "[a-zA-Z0-9]{0,16}", unit in ".{0,24}", p1 in 0.0f64..=1.0, p2 in 0.0f64..=1.0) {
        let (lo, hi) = if p1 <= p2 { (p1, p2) } else { (p2, p1) };
        let cfg = |p: f64| json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [{"target": "u", "op": "/", "value": p, "salt": salt}]}], "default": 0});
        let a = Client::with_config(cfg(lo).to_string().as_bytes(), ClientOptions::default()).unwrap().0;
        let b = Client::with_config(cfg(hi).to_string().as_bytes(), ClientOptions::default()).unwrap().0;
        let f = Facets::new().with("u", unit.as_str());
        let in_lo = a.get_variable("v", &f).int64(0) == 1;
        let in_hi = b.get_variable("v", &f).int64(0) == 1;
        prop_assert!(!in_lo || in_hi);
        prop_assert_eq!(in_lo, bucket(&salt, &unit) < lo);
    }

    /// Non-overlapping slots of one domain never both contain a unit.
    #[test]
    fn slots_are_mutually_exclusive(cuts in prop::collection::vec((0u32..=1_000_000).prop_map(|c| f64::from(c) / 1e6), 2..6), pax in any::<i64>(), domain in "[a-z]{1,8}") {
        let mut cuts = cuts;
        cuts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        cuts.dedup();
        prop_assume!(cuts.len() >= 2);
        let exps: Vec<Value> = cuts.windows(2).enumerate().map(|(i, w)| json!({
            "domain": domain, "name": format!("e{i}"), "state": "RUNNING",
            "slotting": {"byPercentage": w[1] - w[0], "offset": w[0]},
            "variables": [{"name": format!("v{i}"), "facets": ["pax"], "choices": [{"value": i}]}]
        })).collect();
        let c = Client::with_config(json!({"experiments": exps}).to_string().as_bytes(), ClientOptions::default()).unwrap().0;
        let f = Facets::new().passenger(pax);
        let hits = (0..cuts.len() - 1).filter(|i| c.get_variable(&format!("v{i}"), &f).source == Source::Experiment).count();
        prop_assert!(hits <= 1);
        let b = bucket(&domain, &pax.to_string());
        let expected = cuts.windows(2).filter(|w| w[0] <= b && b < w[1]).count();
        prop_assert_eq!(hits, expected);
    }

    /// Two clients built from the same bytes decide identically, whatever the
    /// order the facets were given in.
    #[test]
    fn deterministic(cfg in bundle(), f in facets()) {
        let bytes = cfg.to_string();
        let a = fixed_client();
        let b = fixed_client();
        if a.update_config(bytes.as_bytes()).is_ok() {
            b.update_config(bytes.as_bytes()).unwrap();
            let fa = Facets::from_json(&f).unwrap_or_default();
            let mut fb = Facets::new();
            for x in fa.iter().collect::<Vec<_>>().into_iter().rev() {
                fb.set(x.key(), x.value().clone());
            }
            for v in ["a", "b", "c", "d"] {
                prop_assert_eq!(a.get_variable(v, &fa), b.get_variable(v, &fb));
            }
        }
    }
}

// ---- bucket quality -----------------------------------------------------------

#[test]
fn quarter_of_a_million_sequential_ids() {
    let n = 1_000_000u32;
    let hits = (0..n).filter(|i| bucket("automatedMessageDelay", &i.to_string()) < 0.25).count();
    let share = hits as f64 / f64::from(n);
    assert!((share - 0.25).abs() <= 0.003, "share {share}");
}

#[test]
fn chi_square_over_100_buckets() {
    let n = 1_000_000u32;
    let mut counts = [0u64; 100];
    for i in 0..n {
        let b = bucket("chi-square", &i.to_string());
        counts[(b * 100.0) as usize] += 1;
    }
    let expected = f64::from(n) / 100.0;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    // Critical value of chi-square with 99 degrees of freedom at p = 0.001.
    assert!(chi2 < 148.23, "chi2 = {chi2}");
}

#[test]
fn two_salts_assign_independently() {
    let n = 200_000u32;
    let mut table = [[0u64; 2]; 2];
    for i in 0..n {
        let u = i.to_string();
        let a = usize::from(bucket("salt-a", &u) < 0.5);
        let b = usize::from(bucket("salt-b", &u) < 0.5);
        table[a][b] += 1;
    }
    let total = f64::from(n);
    let mut chi2 = 0.0;
    for a in 0..2 {
        for b in 0..2 {
            let row: f64 = table[a].iter().sum::<u64>() as f64;
            let col: f64 = (table[0][b] + table[1][b]) as f64;
            let e = row * col / total;
            chi2 += (table[a][b] as f64 - e).powi(2) / e;
        }
    }
    // Critical value with 1 degree of freedom at p = 0.001.
    assert!(chi2 < 10.83, "chi2 = {chi2}, table {table:?}");
}
