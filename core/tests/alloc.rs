//! The hot path allocates nothing: a counting global allocator
//! proves that a prepared decision (`Context` + `Variable`, facets already
//! built) performs zero heap allocations after a warm-up call.
//!
//! Counting is per thread (a `const`-initialised thread-local `Cell`, which
//! needs no destructor and never allocates), so the test harness's own
//! threads cannot disturb a measurement. Each measurement reads the counter
//! before and after the measured section only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use serde_json::{json, Value};
use turnout_core::{Client, ClientOptions, DecisionEvents, Facets, FixedClock, Source, TrackingOptions};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: during thread teardown the slot may be gone; never panic here.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations made by `f` on this thread.
fn count<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = allocs();
    let r = black_box(f());
    let after = allocs();
    (after - before, r)
}

const SEED_ROLLOUT: &str = include_str!("../../examples/configs/seed-rollout.json");
const SEED_EXPERIMENT: &str = include_str!("../../examples/configs/seed-experiment.json");
const ROLLOUT_VAR: &str = "automatedMessageDelay";
const EXP_VAR: &str = "pickupEtaModel";
const TS_VAR: &str = "timeSlicedShuffleTest1";

fn bundle() -> Vec<u8> {
    let rollout: Value = serde_json::from_str(SEED_ROLLOUT).unwrap();
    let mut timeslice: Value = serde_json::from_str(SEED_EXPERIMENT).unwrap();
    timeslice["state"] = json!("RUNNING");
    let weighted = json!({
        "domain": "pickup", "name": "pickup.etaModelV2", "state": "RUNNING",
        "slotting": {"byPercentage": 0.5},
        "variables": [
            {"name": EXP_VAR, "facets": ["pax"], "strategy": "weighted",
             "choices": [{"value": 1, "weight": 1}, {"value": 2, "weight": 1}, {"value": 3, "weight": 2}]},
            {"name": "pickupEtaBanner", "facets": ["pax"],
             "choices": [{"value": true}, {"value": false}]}
        ]
    });
    // Typed variables for float64 / bool, each with a `/` rule.
    let surge = json!({"variable": "surgeCap", "rollouts": [
        {"value": 1.75, "constraints": [{"target": "city", "op": "=", "value": 10},
                                        {"target": "pax", "op": "/", "value": 0.5}]}],
        "default": 1.5});
    let checkout = json!({"variable": "newCheckout", "rollouts": [
        {"value": true, "constraints": [{"target": "country", "op": "in", "value": ["SG", "ID"]},
                                        {"target": "pax", "op": "/", "value": 0.5}]}],
        "default": false});
    serde_json::to_vec(&json!({
        "schema": 1, "version": 1,
        "rollouts": [rollout, surge, checkout],
        "experiments": [weighted, timeslice]
    }))
    .unwrap()
}

/// A client with the default options (decision tracking on: `DecisionEvents::All`).
fn client() -> Client {
    client_with(DecisionEvents::All)
}

fn client_with(decisions: DecisionEvents) -> Client {
    let opts = ClientOptions {
        clock: Arc::new(FixedClock::new(1_528_720_000_000)),
        tracking: TrackingOptions { decisions, ..TrackingOptions::default() },
        ..ClientOptions::default()
    };
    Client::with_config(&bundle(), opts).unwrap().0
}

fn pax_where(c: &Client, var: &str, base: &Facets, f: impl Fn(&turnout_core::Decision) -> bool) -> i64 {
    (1..100_000).find(|&p| f(&c.get_variable(var, &base.clone().passenger(p)))).expect("a passenger id")
}

/// Warms up (first call may allocate thread-local state in arc-swap and the
/// variable handle's cache), then asserts the next calls allocate nothing.
fn assert_zero<R: PartialEq + std::fmt::Debug>(what: &str, want: R, mut f: impl FnMut() -> R) {
    assert_eq!(f(), want, "{what}: warm-up value");
    let (n, r) = count(|| {
        let mut last = None;
        for _ in 0..1000 {
            last = Some(f());
        }
        last
    });
    assert_eq!(r, Some(want), "{what}: value");
    assert_eq!(n, 0, "{what}: {n} allocations in 1000 prepared decisions (want 0)");
}

/// One test on purpose: every measurement runs on this thread, in sequence.
/// Default options (decision tracking on): a repeated decision folds into
/// the queued event, so after the warm-up nothing is allocated.
#[test]
fn prepared_decisions_allocate_nothing() {
    // The counter works at all.
    let (n, _) = count(|| vec![1u8; 16]);
    assert!(n >= 1, "the counting allocator is not installed");

    let c = client();
    let delay = c.variable(ROLLOUT_VAR);

    // Seed rollout: rule 0 (=, in), rule 1 (=, /), default (rule 1 fails on /).
    let sg = c.context(Facets::new().city(6).service(302).passenger(1));
    assert_zero("rollout rule 0", 60, || sg.int64(&delay, 0));
    let jk_in = pax_where(&c, ROLLOUT_VAR, &Facets::new().city(10), |d| d.rule == Some(1));
    let jk = c.context(Facets::new().city(10).service(302).passenger(jk_in));
    assert_zero("rollout rule 1 (/)", 90, || jk.int64(&delay, 0));
    let jk_out = pax_where(&c, ROLLOUT_VAR, &Facets::new().city(10), |d| d.source == Source::Default);
    let def = c.context(Facets::new().city(10).service(302).passenger(jk_out));
    assert_zero("rollout default", 30, || def.int64(&delay, 0));
    // String-valued facets take the same path.
    let sg_str = c.context(Facets::new().with("city", "6").with("svc", "11"));
    assert_zero("rollout rule 0, string facets", 60, || sg_str.int64(&delay, 0));

    // float64 and bool accessors.
    let surge = c.variable("surgeCap");
    let s_in = pax_where(&c, "surgeCap", &Facets::new().city(10), |d| d.rule == Some(0));
    let sctx = c.context(Facets::new().city(10).passenger(s_in));
    assert_zero("float64 rollout", 1.75, || sctx.float64(&surge, 0.0));
    let checkout = c.variable("newCheckout");
    let k_in = pax_where(&c, "newCheckout", &Facets::new().country("ID"), |d| d.rule == Some(0));
    let kctx = c.context(Facets::new().country("ID").passenger(k_in));
    assert_zero("bool rollout", true, || kctx.bool(&checkout, false));

    // Weighted, slotted experiment.
    let exp = c.variable(EXP_VAR);
    let e_pax = pax_where(&c, EXP_VAR, &Facets::new(), |d| d.source == Source::Experiment);
    let ectx = c.context(Facets::new().passenger(e_pax));
    let want = c.get_variable(EXP_VAR, &Facets::new().passenger(e_pax)).int64(-1);
    assert_zero("weighted experiment", want, || ectx.int64(&exp, -1));
    // A unit outside the slot (falls through to fallback).
    let o_pax = pax_where(&c, EXP_VAR, &Facets::new(), |d| d.source == Source::Fallback);
    let octx = c.context(Facets::new().passenger(o_pax));
    assert_zero("weighted experiment, outside the slot", -1, || octx.int64(&exp, -1));

    // Time-slice experiment, `ts` given.
    let ts_var = c.variable(TS_VAR);
    let ts = (1_528_714_602..1_528_724_602)
        .find(|&ts| c.get_variable(TS_VAR, &Facets::new().city(5).ts(ts)).source == Source::Experiment)
        .expect("a ts in the slot");
    let tctx = c.context(Facets::new().city(5).ts(ts));
    let want = c.get_variable(TS_VAR, &Facets::new().city(5).ts(ts)).int64(-1);
    assert_zero("time-slice experiment", want, || tctx.int64(&ts_var, -1));
    // Time-slice with `ts` from the injected clock.
    let cctx = c.context(Facets::new().city(5));
    let want = c.get_variable(TS_VAR, &Facets::new().city(5)).int64(-1);
    assert_zero("time-slice experiment, clock ts", want, || cctx.int64(&ts_var, -1));

    // Unknown variable: fallback, still nothing allocated.
    let missing = c.variable("noSuchVariable");
    assert_zero("unknown variable", 7, || sg.int64(&missing, 7));

    // After a config update the handle re-resolves once (may allocate), then
    // is allocation-free again.
    c.update_config(&bundle()).unwrap();
    assert_zero("rollout rule 0 after update", 60, || sg.int64(&delay, 0));
}

/// `get_variable` returns an owned `Decision` (variable name, label and
/// experiment name as `String`s), so it allocates a few times by design.
/// This bounds it so a regression (e.g. per-call facet copies) shows up.
#[test]
fn get_variable_allocations_are_bounded() {
    let c = client();
    let cases = [
        (ROLLOUT_VAR, Facets::new().city(6).service(302).passenger(1), 2), // name + label "60s delay"
        (ROLLOUT_VAR, Facets::new().city(7).passenger(1), 1),              // name (default, no label)
        ("noSuchVariable", Facets::new().city(6), 1),                      // name
    ];
    for (var, facets, bound) in &cases {
        let _ = c.get_variable(var, facets); // warm-up
        let (n, d) = count(|| c.get_variable(var, facets));
        eprintln!("get_variable({var}): {n} allocations");
        assert!(n <= *bound, "get_variable({var}) made {n} allocations, bound {bound}: {d:?}");
    }
    let e_pax = pax_where(&c, EXP_VAR, &Facets::new(), |d| d.source == Source::Experiment);
    let f = Facets::new().passenger(e_pax);
    let _ = c.get_variable(EXP_VAR, &f);
    let (n, _) = count(|| c.get_variable(EXP_VAR, &f));
    eprintln!("get_variable({EXP_VAR}) via experiment: {n} allocations");
    assert!(n <= 2, "experiment get_variable made {n} allocations (name + experiment name)");
}

/// Fresh contexts (one per request, built before the measured section), one
/// decision each. With decision tracking off, the very first decision of every
/// context allocates nothing (after one warm-up on this thread).
#[test]
fn first_decision_of_fresh_contexts_untracked_allocates_nothing() {
    let c = client_with(DecisionEvents::Off);
    let delay = c.variable(ROLLOUT_VAR);
    let exp = c.variable(EXP_VAR);
    let ts_var = c.variable(TS_VAR);
    let warm = c.context(Facets::new().city(10).passenger(0).ts(1_528_720_000));
    let _ = (warm.int64(&delay, 0), warm.int64(&exp, 0), warm.int64(&ts_var, 0));

    let ctxs: Vec<_> = (0..1000)
        .map(|p| {
            c.context(
                Facets::new().city(if p % 2 == 0 { 6 } else { 10 }).service(302).passenger(p).ts(1_528_720_000 + p),
            )
        })
        .collect();
    let (n, sum) =
        count(|| ctxs.iter().map(|x| x.int64(&delay, 0) + x.int64(&exp, 0) + x.int64(&ts_var, 0)).sum::<i64>());
    assert!(sum > 0);
    assert_eq!(n, 0, "{n} allocations in 3,000 first decisions of fresh contexts, tracking off (want 0)");
}

/// With decision tracking on (the default), the first decision of a new unit
/// queues an event: no per-event allocation (the event shares the context's
/// `Arc`s), only the queue's and fold map's amortised growth. Bounded here.
#[test]
fn first_decision_of_fresh_contexts_tracked_is_amortised() {
    let c = client();
    let delay = c.variable(ROLLOUT_VAR);
    let warm = c.context(Facets::new().city(10).passenger(0));
    let _ = warm.int64(&delay, 0);

    let ctxs: Vec<_> = (1..=1000).map(|p| c.context(Facets::new().city(6).service(302).passenger(p))).collect();
    let (n, sum) = count(|| ctxs.iter().map(|x| x.int64(&delay, 0)).sum::<i64>());
    assert_eq!(sum, 60_000);
    eprintln!("tracking on: {n} allocations in 1,000 first decisions of fresh contexts (queue/map growth)");
    assert!(n <= 100, "{n} allocations in 1,000 first decisions of fresh contexts with tracking on (bound 100)");
}
