//! Every row of the adversarial run's table, at the sizes it gives,
//! ends with a clear error naming the limit or a correct answer, within 50
//! times the input's size in memory (measured by a peak-tracking allocator)
//! and a time linear in it. Rows about the collector, the pollers and the
//! bindings are tested where they live (examples/collector, each binding).

#[path = "common/peak.rs"]
mod peak;

use peak::{assert_within, measure};
use serde_json::{json, Value};
use turnout_core::tracking::encode_batch;
use turnout_core::{
    decode_batch, BatchHeader, Client, ClientOptions, ConfigError, DecodeError, ErrorCode, Event, EventData,
    FacetError, Facets, Limit, Reason,
};

#[global_allocator]
static GLOBAL: peak::Peak = peak::Peak;

fn client() -> Client {
    Client::new(ClientOptions::default())
}

fn limit_of(e: &ConfigError) -> Option<Limit> {
    e.limit().map(|l| l.limit)
}

/// Every problem's text, for asserting that one names a limit.
fn problems(e: &ConfigError) -> String {
    e.problems().iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

/// A bundle whose one rule references a segment of `k` constraints `refs` times.
fn segment_blowup(k: usize, refs: usize) -> Vec<u8> {
    let cs: Vec<Value> = (0..k).map(|i| json!({"target": "city", "op": "=", "value": i})).collect();
    let names: Vec<&str> = vec!["s"; refs];
    serde_json::to_vec(&json!({
        "segments": {"s": {"constraints": cs}},
        "rollouts": [{"variable": "v", "rollouts": [{"value": 1, "segments": names}], "default": 0}],
    }))
    .unwrap()
}

#[test]
fn segment_references_cannot_blow_up_the_compiled_config() {
    // The run's 79 KB and 442 KB configs (1.6 GB / > 7.7 GB and an abort before).
    let c = client();
    c.update_config(br#"{"variable": "v", "default": 7}"#).unwrap();
    for (k, refs) in [(1_000, 20_000), (2_000, 110_000)] {
        let cfg = segment_blowup(k, refs);
        for validate in [false, true] {
            let (cost, r) = measure(|| if validate { c.validate(&cfg) } else { c.update_config(&cfg) });
            let e = r.expect_err("over the expansion budget");
            assert_eq!(limit_of(&e), Some(Limit::ExpandedConstraints), "{e}");
            assert!(e.to_string().contains("expanded_constraints"), "{e}");
            assert_within("segment blow-up", cfg.len(), cost);
        }
        // The previous config is untouched.
        assert_eq!(c.get_variable("v", &Facets::new()).int64(0), 7);
    }
    // Real reuse fits easily: a 20-constraint segment referenced by 1,000 rules.
    let cs: Vec<Value> = (0..20).map(|i| json!({"target": "city", "op": "!=", "value": i})).collect();
    let rules: Vec<Value> = (0..1_000).map(|i| json!({"value": i, "segments": ["s"]})).collect();
    let cfg = serde_json::to_vec(&json!({
        "segments": {"s": cs},
        "rollouts": [{"variable": "v", "rollouts": rules, "default": 0}],
    }))
    .unwrap();
    c.update_config(&cfg).unwrap();
    assert_eq!(c.get_variable("v", &Facets::new().city(99)).int64(-1), 0);
    assert_eq!(c.get_variable("v", &Facets::new().city(5)).int64(-1), 0);
}

#[test]
fn a_segment_fraction_keeps_each_documents_default_salt() {
    // Compiled once, a segment's `/` without a salt still hashes with the
    // salt of the document that references it (spec 5.2), as when it was
    // recompiled per reference.
    let seg = json!({"s": [{"target": "pax", "op": "/", "value": 0.5}]});
    let inline = |var: &str| json!({"variable": var, "rollouts": [{"value": 1, "constraints": [{"target": "pax", "op": "/", "value": 0.5}]}], "default": 0});
    let by_ref = |var: &str| json!({"variable": var, "rollouts": [{"value": 1, "segments": ["s"]}], "default": 0});
    let a = client();
    a.update_config(&serde_json::to_vec(&json!({"segments": seg, "rollouts": [by_ref("x"), by_ref("y")]})).unwrap())
        .unwrap();
    let b = client();
    b.update_config(&serde_json::to_vec(&json!({"rollouts": [inline("x"), inline("y")]})).unwrap()).unwrap();
    let mut differ = 0;
    for pax in 0..400 {
        let f = Facets::new().passenger(pax);
        for v in ["x", "y"] {
            assert_eq!(a.get_variable(v, &f).int64(-1), b.get_variable(v, &f).int64(-1), "{v} pax {pax}");
        }
        differ += usize::from(a.get_variable("x", &f).int64(-1) != a.get_variable("y", &f).int64(-1));
    }
    assert!(differ > 100, "x and y must hash with their own salts ({differ} of 400 differ)");
}

/// A batch of `events` events sharing one set of `facets` facets.
fn shared_set_batch(facets: usize, events: usize) -> Vec<u8> {
    let mut f = Facets::new();
    for i in 0..facets {
        f.set(format!("f{i}"), i as i64);
    }
    let h = BatchHeader { client_id: "c".into(), seq: 1, sdk: "t".into(), ..Default::default() };
    let evs: Vec<Event> = (0..events)
        .map(|i| Event {
            time_ms: i as i64,
            count: 1,
            service: "s".into(),
            name: "v".into(),
            data: EventData::Track { value: 1.0 },
            facets: f.clone(),
        })
        .collect();
    encode_batch(&h, &evs)
}

#[test]
fn a_shared_facet_set_cannot_amplify_decoded_output() {
    // The run's 57 KB and 507 KB batches (131 MB of output; 13.4 GB at 507 KB).
    for events in [10_000, 100_000] {
        let b = shared_set_batch(1_000, events);
        assert!(b.len() < 700_000, "{} bytes", b.len());
        let (cost, r) = measure(|| decode_batch(&b));
        match r {
            Err(DecodeError::Limit(l)) => {
                assert_eq!(l.limit, Limit::DecodeExpansion);
                assert_eq!(l.max, 128 * b.len() as u64 + 65_536);
            }
            other => panic!("expected the decode limit, got {:?}", other.map(|d| d.events.len())),
        }
        assert_within("shared-set batch", b.len(), cost);
    }
    // A real batch (a few facets per set) decodes, and its JSON Lines stay within 128x.
    let b = shared_set_batch(6, 2_000);
    let d = decode_batch(&b).unwrap();
    let mut out = 0usize;
    turnout_core::host::for_each_event_line(&d, |l| out += l.to_string().len() + 1);
    assert!(out <= 128 * b.len() + 65_536, "{out} bytes of output for {} bytes", b.len());
}

#[test]
fn regex_cost_is_bounded_by_the_program_and_input_limits() {
    let cfg = |pat: &str| {
        serde_json::to_vec(&json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [
            {"target": "s", "op": "regex", "value": pat}]}], "default": 0}))
        .unwrap()
    };
    // The run's `(a{100}){300}$` (42 s for one decision against 100 KB).
    let e = client().update_config(&cfg("(a{100}){300}$")).unwrap_err();
    assert!(problems(&e).contains("limit `regex_weight` exceeded: found 30302, the maximum is 64"), "{e}");
    // A pattern the weight misses cannot reach regex-lite's backstop, and a
    // heavy one is refused before it is compiled (so compiling costs nothing).
    for pat in ["(?x)(a{8}) # {1000}\n{7}", "[]a]{60}", r"\x{61}{62}", "(?i)[a-z]{62}"] {
        assert!(client().update_config(&cfg(pat)).is_ok(), "{pat}");
    }
    for pat in ["(?x)(a{8}) # {1000}\n{8}", "(?x)(a{8})\n\n{8}", r"\x{61}{64}", "((((a{2}){2}){2}){2}){2}{2}{2}"] {
        let e = client().update_config(&cfg(pat)).unwrap_err();
        assert!(problems(&e).contains("regex_weight"), "{pat}: {e}");
    }
    let (cost, r) = measure(|| client().update_config(&cfg("(((a{1000}){1000}){1000}){1000}")));
    assert!(problems(&r.unwrap_err()).contains("regex_weight"));
    assert!(cost.peak_bytes < 1 << 20, "{cost:?}");
    // A 100 KB facet is over the facet value limit, through JSON and the builder alike.
    let big = "a".repeat(100_000);
    let e = Facets::from_json(&json!({"s": big})).unwrap_err();
    assert!(matches!(e, FacetError::Limit(l) if l.limit == Limit::FacetValueBytes), "{e}");
    let c = client();
    c.update_config(&cfg("a+$")).unwrap();
    let d = c.get_variable("v", &Facets::new().with("s", big.clone()));
    assert_eq!((d.reason, d.error), (Reason::Error, Some(ErrorCode::InvalidContext)));
    // Values over the regex input limit (4 KiB) but within the facet limit do not match.
    assert_eq!(c.get_variable("v", &Facets::new().with("s", "a".repeat(4_096))).int64(-1), 1);
    assert_eq!(c.get_variable("v", &Facets::new().with("s", "a".repeat(4_097))).int64(-1), 0);
}

#[test]
fn many_facets_are_refused_and_building_them_is_linear() {
    // The run's 100,000-facet context (21-30 s; 1M facets > 9 min).
    let obj: serde_json::Map<String, Value> = (0..100_000).map(|i| (format!("f{i}"), json!(i))).collect();
    let text = serde_json::to_string(&obj).unwrap();
    let (cost, r) = measure(|| Facets::from_json_str(&text));
    assert!(matches!(r, Err(FacetError::Limit(l)) if l.limit == Limit::Facets));
    assert_within("100,000 facets", text.len(), cost);
    // At the limit, a set builds through the hash index: linear, not quadratic.
    let pairs = |n: usize| -> Vec<(String, turnout_core::FacetValue)> {
        (0..n).map(|i| (format!("facet_number_{i}"), turnout_core::FacetValue::Int(i as i64))).collect()
    };
    let time = |n: usize| {
        let p = pairs(n);
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                let f = turnout_core::host::facets_from_pairs(p.iter().map(|(k, v)| (k.as_str(), v.clone()))).unwrap();
                assert_eq!(f.len(), n);
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let (small, large) = (time(100), time(1_000));
    // Quadratic would be 100x; linear 10x.
    assert!(large < small * 40, "100 facets {small:?}, 1,000 facets {large:?}");
    // Replacing a name keeps one facet, in the index as in the scan.
    let mut p = pairs(50);
    p.push(("facet_number_7".into(), turnout_core::FacetValue::Int(-7)));
    let f = turnout_core::host::facets_from_pairs(p.iter().map(|(k, v)| (k.as_str(), v.clone()))).unwrap();
    assert_eq!(f.len(), 50);
    assert_eq!(f.get("facet_number_7").unwrap().canonical(), "-7");
    assert_eq!(f.iter().nth(7).unwrap().key(), "facet_number_7", "insertion order kept");
    // The builder marks an oversized set rather than failing.
    let mut f = Facets::new();
    for i in 0..1_025 {
        f.set(format!("f{i}"), i);
    }
    assert_eq!(f.limit_error().map(|l| l.limit), Some(Limit::Facets));
    assert_eq!(f.len(), 1_024);
}

/// `n` slotted experiments of `width` each in one domain (`overlap`: all at offset 0).
fn slotted(n: usize, overlap: bool) -> Vec<u8> {
    let w = 1.0 / n as f64;
    let exps: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("e{i}"), "domain": "d", "state": "RUNNING",
                   "slotting": {"byPercentage": w, "offset": if overlap { 0.0 } else { i as f64 * w }, "facet": "pax"},
                   "variables": [{"name": format!("v{i}"), "facets": ["pax"], "choices": [{"value": 0}, {"value": 1}]}]})
        })
        .collect();
    serde_json::to_vec(&json!({"experiments": exps})).unwrap()
}

#[test]
fn slotted_experiments_per_domain_are_limited_and_checked_by_sorting() {
    // The run's 20,000 slotted experiments in one domain (24-29 s to validate).
    let cfg = slotted(20_000, false);
    let (cost, r) = measure(|| client().validate(&cfg));
    let e = r.unwrap_err();
    assert!(problems(&e).contains("experiments_per_domain"), "{e}");
    assert_within("20,000 slotted experiments", cfg.len(), cost);
    // At the limit, disjoint slots load.
    client().update_config(&slotted(1_000, false)).unwrap();
    // 1,000 overlapping slots: one problem per experiment, not one per pair.
    let e = client().validate(&slotted(1_000, true)).unwrap_err();
    let overlaps = e.problems().iter().filter(|p| p.message.contains("overlaps experiment")).count();
    assert_eq!(overlaps, 999, "{}", e.problems().len());
}

#[test]
fn config_size_depth_and_array_length_are_limited() {
    // The run's 100 MB array of zeros (3.2 GB): refused before parsing.
    let zeros = {
        let mut v = b"[".to_vec();
        v.extend(std::iter::repeat_n(&b"0,"[..], 50_000_000).flatten());
        v.extend_from_slice(b"0]");
        v
    };
    let (cost, r) = measure(|| client().update_config(&zeros));
    let e = r.unwrap_err();
    assert_eq!(e.limit().map(|l| (l.limit, l.max, l.found)), Some((Limit::ConfigBytes, 16 << 20, zeros.len() as u64)));
    assert!(cost.peak_bytes < 1 << 20, "{cost:?}");
    // The limit is the host's to set.
    let roomy = Client::new(ClientOptions { max_config_bytes: 200 << 20, ..ClientOptions::default() });
    let ten_mb = &zeros[..10_000_001];
    let ten_mb = [ten_mb, b"0]"].concat();
    let (cost, r) = measure(|| roomy.update_config(&ten_mb));
    assert_eq!(r.unwrap_err().limit().map(|l| l.limit), Some(Limit::ArrayLen));
    assert_within("10 MB of zeros", ten_mb.len(), cost);
    // Depth.
    let deep = format!("{{\"variable\": \"v\", \"default\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let e = client().update_config(deep.as_bytes()).unwrap_err();
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::JsonDepth), "{e}");
    let ok = format!("{{\"variable\": \"v\", \"default\": {}1{}}}", "[".repeat(60), "]".repeat(60));
    client().update_config(ok.as_bytes()).unwrap();
    // String length.
    let long = format!("{{\"variable\": \"v\", \"default\": \"{}\"}}", "x".repeat((1 << 20) + 1));
    let e = client().update_config(long.as_bytes()).unwrap_err();
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::StringBytes), "{e}");
}

#[test]
fn in_lists_are_limited_and_large_ones_are_sets() {
    let cfg = |n: usize, op: &str| {
        let list: Vec<Value> = (0..n).map(|i| json!(i * 2)).collect();
        serde_json::to_vec(&json!({"variable": "v", "rollouts": [{"value": 1, "constraints": [
            {"target": "pax", "op": op, "value": list}]}], "default": 0}))
        .unwrap()
    };
    let e = client().update_config(&cfg(1_000_000, "in")).unwrap_err();
    assert!(problems(&e).contains("in_list"), "{e}");
    let c = client();
    c.update_config(&cfg(100_000, "in")).unwrap();
    let n = client();
    n.update_config(&cfg(100_000, "nin")).unwrap();
    for (pax, want) in [(0i64, 1), (2, 1), (199_998, 1), (3, 0), (200_000, 0), (-2, 0)] {
        assert_eq!(c.get_variable("v", &Facets::new().passenger(pax)).int64(-1), want, "in, pax {pax}");
        assert_eq!(n.get_variable("v", &Facets::new().passenger(pax)).int64(-1), 1 - want, "nin, pax {pax}");
    }
    // Numeric equality through the index: 4.0 is 4, "4" is 4, 4.5 is not in.
    assert_eq!(c.get_variable("v", &Facets::new().with("pax", 4.0)).int64(-1), 1);
    assert_eq!(c.get_variable("v", &Facets::new().with("pax", "4")).int64(-1), 1);
    assert_eq!(c.get_variable("v", &Facets::new().with("pax", 4.5)).int64(-1), 0);
}

#[test]
fn weight_sums_must_be_finite() {
    let cfg = json!({"experiments": [{"name": "e", "state": "RUNNING", "variables": [{"name": "v", "facets": ["pax"],
        "choices": [{"value": 0, "weight": 1.7e308}, {"value": 1, "weight": 1.7e308}]}]}]});
    let e = client().update_config(&serde_json::to_vec(&cfg).unwrap()).unwrap_err();
    assert!(problems(&e).contains("finite"), "{e}");
}
