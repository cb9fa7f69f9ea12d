//! Shared by the fuzz targets: a fixed config that exercises every op, both
//! strategies, slotting and segments, and an evaluation sweep that touches
//! every public decision entry point.

#![allow(dead_code)]

use std::sync::Arc;

use turnout_core::{Client, ClientOptions, Facets, FixedClock, ValueType};

/// A bundle using every operator, both strategies, slotting, segments and a
/// kill switch.
pub const FIXED_CONFIG: &str = r#"{
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
      {"value": 9, "constraints": [{"target": "s", "op": "contains", "value": "\u00e9\u1F600"}]},
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

/// Variables asked of every config (present or not).
pub const PROBE_VARIABLES: &[&str] = &[
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
    "timeSlicedShuffleTest1",
    "",
    "missing",
];

pub fn client() -> Client {
    Client::new(ClientOptions {
        clock: Arc::new(FixedClock::new(1_528_720_000_123)),
        ..ClientOptions::default()
    })
}

/// A few facet sets, including awkward values.
pub fn probe_facets() -> Vec<Facets> {
    vec![
        Facets::new(),
        Facets::new().city(6).service(302).passenger(1234),
        Facets::new()
            .city(10)
            .passenger(i64::MAX)
            .driver(i64::MIN)
            .ts(-1),
        Facets::new()
            .with("city", "10")
            .with("pax", "9007199254740993")
            .with("a", f64::NAN)
            .with("v", "1.5.0"),
        Facets::new()
            .with("a", f64::INFINITY)
            .with("s", "ab\u{e9}\u{1F600}yz")
            .with("ts", 1.0e300)
            .with("pax", -0.0),
        Facets::new()
            .with("a", 1e3 + 0.5)
            .with("s", "ab12")
            .with("ts", i64::MAX)
            .with("country", "ID")
            .with("v", ""),
    ]
}

/// Every decision entry point, on one facet set. Must never panic.
pub fn evaluate(client: &Client, names: &[String], facets: &Facets) {
    for name in names
        .iter()
        .map(String::as_str)
        .chain(PROBE_VARIABLES.iter().copied())
    {
        let d = client.get_variable(name, facets);
        let _ = d.to_json();
        let _ = d.clone().checked(ValueType::Int64);
        let _ = (d.int64(0), d.float64(0.0), d.bool(false), d.string(""));
        let _ = client.explain(name, facets);
        let ctx = client.context(facets.clone());
        let var = client.variable(name);
        let _ = (
            ctx.int64(&var, 0),
            ctx.float64(&var, 0.0),
            ctx.bool(&var, false),
            ctx.string(&var, ""),
        );
        let _ = (
            ctx.json(&var),
            ctx.decision(&var),
            ctx.decision_as(&var, ValueType::String),
        );
        let _ = client.get_variables(name, facets);
    }
}

/// Names from the config, capped so a huge fuzz input cannot make one run slow.
pub fn names(client: &Client) -> Vec<String> {
    let mut v = client.variable_names();
    v.truncate(32);
    v
}
