//! An experiment document compiled: its variables (unit facets, salt,
//! weighted or time-slice strategy, choices), its constraints and its
//! slotting (the slot, its unit and its domain salt).

use std::sync::Arc;

use super::fields::{check_schema, rule_value, str_field};
use super::fingerprint::fingerprint;
use super::problems::{Path, Sink};
use super::segments::{constraints, Segments};
use super::strings::Strings;
use super::tape::J;
use crate::model::{
    ExpVariable, Experiment, FacetKey, SlotUnit, Slotting, Strategy, MAX_TIMESLICE_CHOICES, MAX_TIMESLICE_PERIOD,
};

/// Document name for messages and the key used to keep its last good version.
pub(super) fn experiment_key<'t>(v: J<'t, '_>) -> Option<&'t str> {
    v.get("name").and_then(J::as_str).filter(|s| !s.is_empty())
}

/// Compiles one variable of experiment `exp_name` (its default salt); `None` when it has a problem.
fn compile_variable(
    v: J<'_, '_>,
    path: &Path<'_>,
    exp_name: &str,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<ExpVariable> {
    if !v.is_object() {
        sink.err(path, format!("an experiment variable must be an object, found {}", v.kind()));
        return None;
    }
    let before = sink.problems.len();
    let name = match v.get("name").and_then(J::as_str) {
        Some(s) if !s.is_empty() => s,
        _ => {
            sink.err(path.key("name"), "must be a non-empty string");
            ""
        }
    };
    let salt = match v.get("salt") {
        None => exp_name,
        Some(s) if s.is_null() => exp_name,
        Some(s) => match s.as_str() {
            Some(s) => s,
            None => {
                sink.err(path.key("salt"), format!("must be a string, found {}", s.kind()));
                ""
            }
        },
    };
    let mut facets: Vec<FacetKey> = Vec::new();
    let fpath = path.key("facets");
    match v.get("facets").and_then(J::elems) {
        Some(list) if !list.is_empty() => {
            for (i, f) in list.enumerate() {
                match f.as_str() {
                    Some(s) if !s.is_empty() => {
                        if facets.iter().any(|x| &**x == s) {
                            sink.err(fpath.index(i), format!("facet `{s}` is listed twice"));
                        }
                        facets.push(FacetKey::new(s));
                    }
                    _ => sink.err(fpath.index(i), "must be a non-empty facet name"),
                }
            }
        }
        _ => sink.err(fpath, "must be a non-empty array of facet names (the unit of assignment)"),
    }
    let strategy_name = match v.get("strategy") {
        None => "weighted",
        Some(s) if s.is_null() => "weighted",
        Some(s) => match s.as_str() {
            Some(s) => s,
            None => {
                sink.err(path.key("strategy"), format!("must be a string, found {}", s.kind()));
                "weighted"
            }
        },
    };
    let cspath = path.key("choices");
    let choices_raw: Vec<J<'_, '_>> = match v.get("choices").and_then(J::elems) {
        Some(list) if !list.is_empty() => list.collect(),
        _ => {
            sink.err(cspath, "must be a non-empty array of choices");
            Vec::new()
        }
    };
    let mut choices = Vec::with_capacity(choices_raw.len());
    let mut weights = Vec::with_capacity(choices_raw.len());
    let mut spans = Vec::with_capacity(choices_raw.len());
    for (i, c) in choices_raw.iter().enumerate() {
        let cpath = cspath.index(i);
        if !c.is_object() {
            sink.err(cpath, "a choice must be an object {value, weight?, span?}");
            continue;
        }
        if let Some(val) = rule_value(c.get("value"), &cpath.key("value"), strings, sink) {
            choices.push(val);
        }
        match c.get("weight") {
            None => weights.push(1.0),
            Some(w) if w.is_null() => weights.push(1.0),
            Some(w) => match w.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => weights.push(x),
                _ => sink.err(cpath.key("weight"), format!("must be a finite number >= 0, found {w}")),
            },
        }
        match c.get("span") {
            None => spans.push(None),
            Some(s) if s.is_null() => spans.push(None),
            Some(s) => match s.as_u64() {
                Some(x) if x >= 1 => spans.push(Some(x)),
                _ => sink.err(cpath.key("span"), format!("must be a whole number of seconds >= 1, found {s}")),
            },
        }
    }
    let strategy = match strategy_name {
        "weighted" => {
            let total: f64 = weights.iter().sum();
            if !choices_raw.is_empty() && total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                sink.err(cspath, "the weights must add up to more than 0");
            } else if !total.is_finite() {
                sink.err(cspath, format!("the weights add up to {total}: their sum must be a finite number"));
            }
            let mut acc = 0.0;
            let thresholds = weights
                .iter()
                .map(|w| {
                    acc += w;
                    acc / total
                })
                .collect();
            Strategy::Weighted { thresholds }
        }
        "timeSliceShuffle" => {
            if !facets.iter().any(|f| &**f == "ts") {
                sink.err(fpath, "a timeSliceShuffle variable must list the `ts` facet");
            }
            if choices_raw.len() > MAX_TIMESLICE_CHOICES {
                sink.err(cspath, format!("a timeSliceShuffle variable takes at most {MAX_TIMESLICE_CHOICES} choices"));
            }
            let mut period: u64 = 0;
            let mut out = Vec::with_capacity(spans.len());
            for (i, s) in spans.iter().enumerate() {
                match s {
                    Some(s) => {
                        period = period.saturating_add(*s);
                        out.push(*s);
                    }
                    None => sink.err(cspath.index(i).key("span"), "is required for timeSliceShuffle"),
                }
            }
            if period > MAX_TIMESLICE_PERIOD {
                sink.err(cspath, format!("the spans add up to {period} s, over the limit of {MAX_TIMESLICE_PERIOD}"));
            }
            Strategy::TimeSlice { spans: out, period }
        }
        other => {
            sink.err(path.key("strategy"), format!("unknown strategy `{other}` (known: weighted, timeSliceShuffle)"));
            return None;
        }
    };
    if sink.problems.len() != before {
        return None;
    }
    Some(ExpVariable { name: name.into(), prefix: crate::hash::salt_prefix(salt), facets, strategy, choices })
}

/// Compiles an experiment document; `None` when it has a problem (reported to `sink`).
pub(super) fn compile_experiment(
    v: J<'_, '_>,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Experiment> {
    if !v.is_object() {
        sink.err("", format!("an experiment document must be an object, found {}", v.kind()));
        return None;
    }
    let name: Arc<str> = Arc::from(str_field(v.get("name"), "name", sink)?);
    check_schema(v.get("schemaVersion"), "schemaVersion", sink);
    let domain = match v.get("domain") {
        None => None,
        Some(d) if d.is_null() => None,
        Some(d) => match d.as_str() {
            Some(s) if !s.is_empty() => Some(Box::<str>::from(s)),
            _ => {
                sink.err("domain", format!("must be a non-empty string, found {}", d.kind()));
                None
            }
        },
    };
    let state = str_field(v.get("state"), "state", sink).unwrap_or_default();
    let mut variables = Vec::new();
    match v.get("variables").and_then(J::elems) {
        Some(list) if !list.is_empty() => {
            let root = Path::Root;
            let vpath = root.key("variables");
            for (i, var) in list.enumerate() {
                if let Some(cv) = compile_variable(var, &vpath.index(i), &name, strings, sink) {
                    if variables.iter().any(|x: &ExpVariable| x.name == cv.name) {
                        sink.err(
                            vpath.index(i).key("name"),
                            format!("variable `{}` is defined twice in this experiment", cv.name),
                        );
                    }
                    variables.push(cv);
                }
            }
        }
        _ => sink.err("variables", "must be a non-empty array of variables"),
    }
    let cs = constraints(v.get("segments"), v.get("constraints"), &Path::Root, &name, segments, strings, sink);
    let slotting = match v.get("slotting") {
        None => None,
        Some(s) if s.is_null() => None,
        Some(s) if s.is_object() => {
            let w = s.get("byPercentage").and_then(J::as_f64);
            let o = match s.get("offset") {
                None => Some(0.0),
                Some(x) if x.is_null() => Some(0.0),
                Some(x) => x.as_f64(),
            };
            match (w, o) {
                (Some(w), Some(o)) if (0.0..=1.0).contains(&w) && o >= 0.0 && o + w <= 1.0 + 1e-9 => {
                    let unit = match s.get("facet") {
                        Some(f) if f.as_str().is_some_and(|f| !f.is_empty()) => {
                            Some(SlotUnit::Facet(FacetKey::new(f.as_str().unwrap_or_default())))
                        }
                        Some(f) if !f.is_null() => {
                            sink.err("slotting.facet", format!("must be a facet name, found {}", f.kind()));
                            None
                        }
                        _ => {
                            let first = variables.first();
                            match first.and_then(|v| v.facets.iter().find(|f| &***f != "ts")) {
                                Some(f) => Some(SlotUnit::Facet(f.clone())),
                                None => match first.map(|v| &v.strategy) {
                                    Some(Strategy::TimeSlice { .. }) => Some(SlotUnit::Window),
                                    Some(_) => {
                                        sink.err("slotting", "a time-only experiment's slot unit is the time window of its first variable, which must use timeSliceShuffle; set slotting.facet");
                                        None
                                    }
                                    None => None,
                                },
                            }
                        }
                    };
                    let salt = domain.clone().unwrap_or_else(|| Box::from(&*name));
                    // Boundaries are rounded to 12 decimals so that adjacent
                    // slots written as offset/byPercentage pairs (0.2 + 0.1)
                    // meet exactly (0.3) instead of overlapping by an ulp.
                    unit.map(|unit| Slotting {
                        lo: round12(o),
                        hi: round12(o + w).min(1.0),
                        unit,
                        prefix: crate::hash::salt_prefix(&salt),
                        salt,
                    })
                }
                _ => {
                    sink.err(
                        "slotting",
                        "byPercentage must be a number in [0, 1], offset a number >= 0, and offset + byPercentage <= 1",
                    );
                    None
                }
            }
        }
        Some(other) => {
            sink.err(
                "slotting",
                format!("must be an object {{byPercentage, offset?, facet?}}, found {}", other.kind()),
            );
            None
        }
    };
    sink.check_regex_weight();
    if !sink.problems.is_empty() {
        return None;
    }
    Some(Experiment {
        salt: crate::hash::salt_prefix(&name),
        name,
        domain,
        state: state.into(),
        variables,
        constraints: cs,
        slotting,
        fingerprint: fingerprint(v),
    })
}

/// Rounds a slot boundary to 12 decimal places (spec: slotting).
fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}
