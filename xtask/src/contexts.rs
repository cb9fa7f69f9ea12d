//! The demo's context generator: `CONTEXTS.jsonl` lines (`{"variable", "facets"}`,
//! tests/bench/README.md) derived from a config, deterministic for a seed
//! (turnout-core's [`SplitMix64`]).
//!
//! It reads the config to know what to exercise:
//!
//! - every variable (rollouts and experiment variables) is asked for; the first
//!   lines take each once, so even a short file covers them all; about 1% of
//!   lines ask for a variable the config does not have (the fallback path);
//! - every facet the config looks at (constraint targets, `rolloutBy`,
//!   experiment unit facets), with values drawn from the config's own
//!   constraint values and their neighbours (so rules match and miss), numeric
//!   values sometimes written as strings or integral floats, semver values
//!   around each threshold;
//! - unit ids (targets of `/` and experiment unit facets) mostly small, 10%
//!   above 2^53 written `{"$int64": "..."}`, some negative, some strings;
//! - `ts` mostly inside the windows the config's `ts` constraints bound (the
//!   switchbacks' running windows), sometimes just outside, sometimes a float,
//!   sometimes absent (the runner's fixed clock supplies it);
//! - rarely a `null` facet (absent, as in the conformance vectors).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use turnout_core::SplitMix64;

/// A variable no config defines: its lines exercise the not-found fallback.
pub(crate) const UNKNOWN_VARIABLE: &str = "demo.notInConfig";

#[derive(Default, Debug)]
struct Target {
    /// Values from `=`, `in`, `!=`, ... (numbers, strings, booleans).
    values: Vec<Value>,
    /// Numeric thresholds from ordering operators.
    bounds: Vec<f64>,
    /// Versions from `semver*` operators.
    versions: Vec<String>,
    /// Hashed as a unit (`/` target or experiment facet).
    unit: bool,
}

/// What the generator learned from a config.
#[derive(Debug)]
pub(crate) struct Model {
    /// Every variable, in the config's order.
    pub(crate) variables: Vec<String>,
    targets: BTreeMap<String, Target>,
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        // The seed documents write lists as strings: "[302, 11]".
        Value::String(s) if s.trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<Value>>(s).unwrap_or_else(|_| vec![v.clone()])
        }
        other => vec![other.clone()],
    }
}

/// A numeric string as a number (facets compare numerically either way).
fn normalise(v: Value) -> Value {
    if let Value::String(s) = &v {
        if let Ok(i) = s.trim().parse::<i64>() {
            return json!(i);
        }
        if let Ok(f) = s.trim().parse::<f64>() {
            if f.is_finite() {
                return json!(f);
            }
        }
    }
    v
}

impl Model {
    /// Reads a bundle, or a single rollout or experiment document.
    pub(crate) fn from_config(config: &Value) -> Model {
        let mut m = Model { variables: Vec::new(), targets: BTreeMap::new() };
        let single = [config.clone()];
        let list = |key: &str| config.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        let (rollouts, experiments) = if config.get("variable").is_some() {
            (single.to_vec(), Vec::new())
        } else if config.get("variables").is_some() {
            (Vec::new(), single.to_vec())
        } else {
            (list("rollouts"), list("experiments"))
        };
        if let Some(segments) = config.get("segments").and_then(Value::as_object) {
            for s in segments.values() {
                m.constraints(s.get("constraints"));
            }
        }
        for r in &rollouts {
            if let Some(name) = r["variable"].as_str() {
                m.variable(name);
            }
            if let Some(by) = r["rolloutBy"].as_str() {
                m.targets.entry(by.to_string()).or_default();
            }
            for rule in r["rollouts"].as_array().into_iter().flatten() {
                m.constraints(rule.get("constraints"));
            }
        }
        for e in &experiments {
            m.constraints(e.get("constraints"));
            for v in e["variables"].as_array().into_iter().flatten() {
                if let Some(name) = v["name"].as_str() {
                    m.variable(name);
                }
                for f in v["facets"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    m.targets.entry(f.to_string()).or_default().unit = true;
                }
            }
        }
        m
    }

    fn variable(&mut self, name: &str) {
        if !self.variables.iter().any(|v| v == name) {
            self.variables.push(name.to_string());
        }
    }

    fn constraints(&mut self, list: Option<&Value>) {
        for c in list.and_then(Value::as_array).into_iter().flatten() {
            let (Some(target), Some(op)) = (c["target"].as_str(), c["op"].as_str()) else { continue };
            let t = self.targets.entry(target.to_string()).or_default();
            let value = &c["value"];
            match op {
                "/" => t.unit = true,
                "<" | "<=" | ">" | ">=" => {
                    if let Some(x) = normalise(value.clone()).as_f64() {
                        t.bounds.push(x);
                    }
                }
                op if op.starts_with("semver") => t.versions.extend(value.as_str().map(str::to_string)),
                _ => t.values.extend(as_list(value).into_iter().map(normalise).filter(|v| !v.is_null())),
            }
        }
    }

    /// The facet names the generator sets.
    pub(crate) fn facet_names(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }
}

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A number, sometimes written as a numeric string or an integral float.
fn vary_number(rng: &mut Rng, v: Value) -> Value {
    match rng.below(10) {
        0 => Value::String(match &v {
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        }),
        1 if v.as_i64().is_some_and(|i| i.unsigned_abs() < 1 << 53) => json!(v.as_i64().unwrap_or(0) as f64),
        _ => v,
    }
}

fn unit_id(rng: &mut Rng) -> Value {
    match rng.below(100) {
        0..=69 => json!(rng.below(100_000)),
        70..=79 => {
            // Above 2^53: exactly representable only as a 64-bit integer.
            let id = (1u64 << 53) + 1 + rng.below(i64::MAX as u64 - (1 << 53));
            json!({ "$int64": id.to_string() })
        }
        80..=84 => json!(-(rng.below(1_000_000) as i64) - 1),
        85..=89 => json!(rng.below(100_000).to_string()),
        90..=94 => json!(rng.below(100_000) as f64),
        _ => json!(format!("u-{:x}", rng.0.next())),
    }
}

fn semver_near(rng: &mut Rng, v: &str) -> Value {
    let parts: Vec<u64> = v.split(['.', '-', '+']).take(3).map(|p| p.parse().unwrap_or(0)).collect();
    let (a, b, c) = (parts.first().copied().unwrap_or(0), parts.get(1).copied().unwrap_or(0), parts.get(2).copied());
    let c = c.unwrap_or(0);
    let s = match rng.below(7) {
        0 => v.to_string(),
        1 => format!("{a}.{b}.{}", c + 1),
        2 => format!("{a}.{}.{}", b.saturating_sub(1), c + rng.below(20)),
        3 => format!("{a}.{}.0", b + 1 + rng.below(10)),
        4 => format!("{}.0.0", a + 1),
        5 => format!("{a}.{b}.{c}-beta.{}", rng.below(3)),
        _ => format!("{}.{}", a.saturating_sub(1), rng.below(30)),
    };
    Value::String(s)
}

fn ts_value(rng: &mut Rng, bounds: &[f64], now_s: i64) -> Value {
    let (lo, hi) = if bounds.is_empty() {
        (now_s as f64 - 86_400.0, now_s as f64 + 86_400.0)
    } else {
        (bounds.iter().copied().fold(f64::INFINITY, f64::min), bounds.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let (lo, hi) = (lo.floor() as i64, hi.ceil() as i64);
    let span = (hi - lo).max(1) as u64;
    let t = match rng.below(100) {
        0..=84 => lo + 1 + rng.below(span.saturating_sub(1).max(1)) as i64,
        85..=91 => lo - rng.below(86_400) as i64,
        _ => hi + rng.below(86_400) as i64,
    };
    if rng.chance(5) {
        json!(t as f64 + 0.5)
    } else {
        json!(t)
    }
}

fn facet_value(rng: &mut Rng, name: &str, t: &Target, now_s: i64) -> Value {
    if name == "ts" {
        return ts_value(rng, &t.bounds, now_s);
    }
    if !t.versions.is_empty() {
        let v = rng.pick(&t.versions).clone();
        return semver_near(rng, &v);
    }
    if !t.values.is_empty() && (rng.chance(75) || !t.unit) && rng.chance(85) {
        let v = rng.pick(&t.values).clone();
        return if v.is_number() { vary_number(rng, v) } else { v };
    }
    if !t.bounds.is_empty() && rng.chance(80) {
        let b = *rng.pick(&t.bounds);
        let v = b + [-1.0, 0.0, 1.0][rng.below(3) as usize];
        return if v.fract() == 0.0 { json!(v as i64) } else { json!(v) };
    }
    if t.unit {
        return unit_id(rng);
    }
    // A value the config does not name: a miss of the same kind.
    match t.values.first() {
        Some(Value::String(_)) => json!(format!("x{}", rng.below(1000))),
        Some(Value::Bool(_)) => json!(rng.chance(50)),
        _ => {
            let n = rng.below(500);
            vary_number(rng, json!(n))
        }
    }
}

/// `n` context lines (JSON text, no newline) for `config`, from `seed`.
/// `now_ms` is the runners' fixed clock (the `ts` range when the config bounds none).
pub(crate) fn generate(config: &Value, n: usize, seed: u64, now_ms: i64) -> Vec<String> {
    let model = Model::from_config(config);
    let mut rng = Rng(SplitMix64::new(seed));
    let now_s = now_ms.div_euclid(1000);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let variable = if i < model.variables.len() {
            model.variables[i].clone()
        } else if rng.chance(1) || model.variables.is_empty() {
            UNKNOWN_VARIABLE.to_string()
        } else {
            rng.pick(&model.variables).clone()
        };
        let mut facets = serde_json::Map::new();
        for (name, t) in &model.targets {
            if !rng.chance(if name == "ts" { 70 } else { 80 }) {
                continue;
            }
            let v = if rng.chance(1) { Value::Null } else { facet_value(&mut rng, name, t, now_s) };
            facets.insert(name.clone(), v);
        }
        out.push(json!({ "variable": variable, "facets": facets }).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn example() -> Value {
        let text =
            std::fs::read_to_string(crate::root().join("examples/configs/example.json")).expect("example config");
        serde_json::from_str(&text).expect("JSON")
    }

    const NOW: i64 = 1_763_800_000_000;

    #[test]
    fn the_same_seed_gives_the_same_file_and_another_seed_another() {
        let c = example();
        let a = generate(&c, 2000, 7, NOW);
        assert_eq!(a, generate(&c, 2000, 7, NOW));
        assert_ne!(a, generate(&c, 2000, 8, NOW));
        // A prefix does not depend on the length asked for.
        assert_eq!(generate(&c, 100, 7, NOW), a[..100]);
    }

    #[test]
    fn every_variable_facet_and_form_is_covered() {
        let c = example();
        let model = Model::from_config(&c);
        for v in ["automatedMessageDelay", "timeSlicedShuffleTest1", "checkoutButtonColor", "surgeMultiplier"] {
            assert!(model.variables.iter().any(|x| x == v), "{v} in {:?}", model.variables);
        }
        let lines: Vec<Value> =
            generate(&c, 10_000, 1, NOW).iter().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        for v in model.variables.iter().map(String::as_str).chain([UNKNOWN_VARIABLE]) {
            assert!(lines.iter().any(|l| l["variable"] == v), "variable {v} never asked");
        }
        for f in model.facet_names() {
            assert!(lines.iter().any(|l| !l["facets"][f].is_null()), "facet {f} never set");
        }
        // Ids above 2^53 as {"$int64": ...}, and they parse as facets.
        let big = lines.iter().filter(|l| l["facets"]["pax"].get("$int64").is_some()).count();
        assert!(big > 100, "{big} ids above 2^53");
        for l in &lines {
            turnout_core::Facets::from_json(&l["facets"]).expect("valid facets");
        }
        // ts mostly inside the switchback window of the seed experiment.
        let inside = lines
            .iter()
            .filter_map(|l| l["facets"]["ts"].as_f64())
            .filter(|t| *t > 1_528_714_601.0 && *t < 1_528_801_001.0)
            .count();
        assert!(inside > 3000, "{inside} ts inside the window");
        assert!(lines.iter().any(|l| l["facets"]["appVersion"].is_string()));
        assert!(lines.iter().any(|l| l["facets"]["city"].is_string()), "numbers sometimes as strings");
    }

    #[test]
    fn the_generated_contexts_reach_every_decision_source() {
        let c = example();
        let (client, _) =
            turnout_core::Client::with_config(c.to_string().as_bytes(), turnout_core::ClientOptions::default())
                .expect("config loads");
        let mut seen = BTreeSet::new();
        for l in generate(&c, 10_000, 1, NOW) {
            let l: Value = serde_json::from_str(&l).expect("JSON");
            let f = turnout_core::Facets::from_json(&l["facets"]).expect("facets");
            let d = client.get_variable(l["variable"].as_str().expect("name"), &f);
            seen.insert((d.source.as_str(), d.reason.as_str()));
        }
        let sources: BTreeSet<&str> = seen.iter().map(|(s, _)| *s).collect();
        for s in ["rollout", "experiment", "default", "fallback"] {
            assert!(sources.contains(s), "source {s} never reached: {seen:?}");
        }
        assert!(seen.len() >= 5, "{seen:?}");
    }
}
