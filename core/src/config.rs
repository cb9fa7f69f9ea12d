//! Loading a config bundle: JSON -> validated, compiled [`Compiled`].
//!
//! Every problem is collected with its document and field path. Problems in
//! one document do not stop the others from loading: see [`compile`] for the
//! isolation rule.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{ConfigError, Problem};
use crate::facets::json_kind;
use crate::model::*;
use crate::value::{FacetValue, Num};

/// The only bundle / document schema version this engine understands.
pub const SCHEMA_VERSION: i64 = 1;
/// The largest number of choices a time-slice variable may have.
pub const MAX_TIMESLICE_CHOICES: usize = 256;
/// The largest total period of a time-slice variable, in seconds (about 31,700 years).
pub const MAX_TIMESLICE_PERIOD: u64 = 1_000_000_000_000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a rejected document is handled when the rest of the bundle is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A broken document keeps its last good version (or, with none, its
    /// variable resolves to fallback with `PARSE_ERROR`); the others update.
    #[default]
    PerDocument,
    /// Any problem rejects the whole update.
    Strict,
}

/// A rejected document and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The problems found in it.
    pub problems: Vec<Problem>,
    /// `true` when its last good version stays in force.
    pub kept_last_good: bool,
    /// `true` when the document said `"enabled": false`: the kill switch took
    /// effect although the rest of the document was rejected.
    pub kill_switch: bool,
}

/// The result of compiling a bundle against the previous config.
pub(crate) struct Outcome {
    pub compiled: Compiled,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<Problem>,
}

struct Sink {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    document: String,
}

impl Sink {
    fn new(document: String) -> Sink {
        Sink { problems: Vec::new(), warnings: Vec::new(), document }
    }
    /// Something that loads but is almost certainly a mistake.
    fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem { document: self.document.clone(), field: field.into(), message: message.into() });
    }
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { document: self.document.clone(), field: field.into(), message: message.into() });
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn fingerprint(v: &Value) -> u64 {
    xxh3_64(serde_json::to_string(v).unwrap_or_default().as_bytes())
}

fn bundle_problem(message: impl Into<String>) -> Problem {
    Problem { document: "bundle".into(), field: String::new(), message: message.into() }
}

fn get_int(v: &Value) -> Option<i64> {
    json_int(v)
}

fn check_schema(obj: &Map<String, Value>, key: &str, path: &str, sink: &mut Sink) {
    if let Some(s) = obj.get(key) {
        match get_int(s) {
            Some(SCHEMA_VERSION) => {}
            _ => {
                sink.err(join(path, key), format!("unsupported schema {s}; this engine reads schema {SCHEMA_VERSION}"))
            }
        }
    }
}

/// The raw documents of a bundle, before compilation.
struct RawBundle<'a> {
    version: Option<i64>,
    segments: Option<&'a Map<String, Value>>,
    rollouts: Vec<&'a Value>,
    experiments: Vec<&'a Value>,
}

fn split_bundle(root: &Value) -> Result<RawBundle<'_>, Vec<Problem>> {
    let Some(obj) = root.as_object() else {
        return Err(vec![bundle_problem(format!(
            "expected a JSON object (a bundle, a rollout document or an experiment document), found {}",
            json_kind(root)
        ))]);
    };
    // A single seed document loads as a bundle of one.
    if obj.contains_key("variable") {
        return Ok(RawBundle { version: None, segments: None, rollouts: vec![root], experiments: vec![] });
    }
    if obj.contains_key("variables") && obj.contains_key("name") {
        return Ok(RawBundle { version: None, segments: None, rollouts: vec![], experiments: vec![root] });
    }
    let mut sink = Sink::new("bundle".into());
    check_schema(obj, "schema", "", &mut sink);
    let version = match obj.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => match get_int(v) {
            Some(i) => Some(i),
            None => {
                sink.err("version", "must be an integer");
                None
            }
        },
    };
    let mut list = |key: &str| -> Vec<&Value> {
        match obj.get(key) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.iter().collect(),
            Some(other) => {
                sink.err(key, format!("must be an array of documents, found {}", json_kind(other)));
                vec![]
            }
        }
    };
    let rollouts = list("rollouts");
    let experiments = list("experiments");
    let segments = match obj.get("segments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            sink.err("segments", format!("must be an object of name -> segment, found {}", json_kind(other)));
            None
        }
    };
    if !obj.contains_key("rollouts") && !obj.contains_key("experiments") {
        sink.err("", "no `rollouts` or `experiments`: this is not a turnout bundle or document");
    }
    if sink.problems.is_empty() {
        Ok(RawBundle { version, segments, rollouts, experiments })
    } else {
        Err(sink.problems)
    }
}

/// Lenient semver parse: optional leading `v`, missing minor/patch read as 0.
pub(crate) fn parse_semver(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let cut = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(cut);
    let parts = core.split('.').count();
    if core.is_empty() || parts >= 3 {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok()
}

fn operand(v: &Value) -> Option<Operand> {
    let fv = FacetValue::from_json(v)?;
    Some(Operand { canon: fv.canonical().into_boxed_str(), num: fv.num() })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num_value(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => n.as_i64().map(Num::Int).or_else(|| n.as_f64().and_then(Num::from_f64)),
        Value::String(s) => Num::parse(s),
        _ => None,
    }
}

/// Compiles one constraint. `default_salt` is the variable's name (rollout)
/// or the experiment's name (experiment).
fn constraint(v: &Value, path: &str, default_salt: &str, sink: &mut Sink) -> Option<Constraint> {
    let Some(obj) = v.as_object() else {
        sink.err(path, format!("a constraint must be an object {{target, op, value}}, found {}", json_kind(v)));
        return None;
    };
    let target = match obj.get("target") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            sink.err(join(path, "target"), "must be a non-empty string naming a facet");
            return None;
        }
    };
    let op_name = match obj.get("op") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            sink.err(join(path, "op"), "must be a string");
            return None;
        }
    };
    let Some(value) = obj.get("value").filter(|v| !v.is_null()) else {
        sink.err(join(path, "value"), "is required");
        return None;
    };
    let vpath = join(path, "value");
    let scalar = |sink: &mut Sink| -> Option<Operand> {
        let o = operand(value);
        if o.is_none() {
            sink.err(
                vpath.clone(),
                format!("must be a string, number or boolean for `{op_name}`, found {}", json_kind(value)),
            );
        }
        o
    };
    let text_of = |sink: &mut Sink| -> Option<Box<str>> { scalar(sink).map(|o| o.canon) };
    let number = |sink: &mut Sink| -> Option<Num> {
        let n = num_value(value);
        if n.is_none() {
            sink.err(vpath.clone(), format!("`{op_name}` needs a number (or a string holding one), found {value}"));
        }
        n
    };
    let semver_of = |sink: &mut Sink| -> Option<semver::Version> {
        let v = value.as_str().and_then(parse_semver);
        if v.is_none() {
            sink.err(
                vpath.clone(),
                format!("`{op_name}` needs a semantic version string like \"1.2.3\", found {value}"),
            );
        }
        v
    };
    let list = |sink: &mut Sink| -> Option<Vec<Operand>> {
        let parsed;
        let arr = match value {
            Value::Array(a) => a,
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(a)) => {
                    parsed = a;
                    &parsed
                }
                _ => {
                    sink.err(
                        vpath.clone(),
                        format!("`{op_name}` needs an array (or a string holding one), found {value}"),
                    );
                    return None;
                }
            },
            other => {
                sink.err(
                    vpath.clone(),
                    format!("`{op_name}` needs an array (or a string holding one), found {}", json_kind(other)),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(arr.len());
        for (i, e) in arr.iter().enumerate() {
            match operand(e) {
                Some(o) => out.push(o),
                None => {
                    sink.err(
                        format!("{vpath}[{i}]"),
                        format!("list elements must be strings, numbers or booleans, found {}", json_kind(e)),
                    );
                    return None;
                }
            }
        }
        Some(out)
    };
    let salt = match obj.get("salt") {
        None | Some(Value::Null) => default_salt.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            sink.err(join(path, "salt"), format!("must be a string, found {}", json_kind(other)));
            return None;
        }
    };
    let op = match op_name.as_str() {
        "=" | "==" => Op::Eq(scalar(sink)?),
        "!=" => Op::Ne(scalar(sink)?),
        "in" => Op::In(list(sink)?),
        "nin" | "!in" => Op::Nin(list(sink)?),
        // Spec rule 3: false when either side is not numeric (a non-numeric
        // value makes the constraint always false; it is not a load error).
        ">" | ">=" | "<" | "<=" => {
            let n = num_value(value);
            if n.is_none() {
                sink.warn(vpath, format!("`{op_name}` with the non-numeric value {value} is always false"));
            }
            match op_name.as_str() {
                ">" => Op::Gt(n),
                ">=" => Op::Ge(n),
                "<" => Op::Lt(n),
                _ => Op::Le(n),
            }
        }
        "/" => {
            let p = number(sink)?.as_f64();
            if !(0.0..=1.0).contains(&p) {
                sink.err(vpath, format!("`/` takes a fraction between 0 and 1, found {p}"));
                return None;
            }
            Op::Fraction { p, salt: salt.into_boxed_str() }
        }
        "semver=" | "semver==" => Op::Semver(SemverOp::Eq, semver_of(sink)?),
        "semver!=" => Op::Semver(SemverOp::Ne, semver_of(sink)?),
        "semver>" => Op::Semver(SemverOp::Gt, semver_of(sink)?),
        "semver>=" => Op::Semver(SemverOp::Ge, semver_of(sink)?),
        "semver<" => Op::Semver(SemverOp::Lt, semver_of(sink)?),
        "semver<=" => Op::Semver(SemverOp::Le, semver_of(sink)?),
        "prefix" => Op::Prefix(text_of(sink)?),
        "suffix" => Op::Suffix(text_of(sink)?),
        "contains" => Op::Contains(text_of(sink)?),
        "regex" => {
            let Some(pat) = value.as_str() else {
                sink.err(vpath, "`regex` needs a string pattern");
                return None;
            };
            match regex::RegexBuilder::new(pat).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(r) => Op::Regex(r),
                Err(e) => {
                    sink.err(vpath, format!("invalid regex: {e}"));
                    return None;
                }
            }
        }
        other => {
            sink.err(
                join(path, "op"),
                format!(
                    "unknown op `{other}` (known: = != in nin > >= < <= / semver= semver!= semver> semver>= semver< semver<= prefix suffix contains regex)"
                ),
            );
            return None;
        }
    };
    let text = format!("{target} {op_name} {}", value_text(value)).into_boxed_str();
    Some(Constraint { target: target.into_boxed_str(), op, text })
}

/// Compiles a constraint list plus its segment references.
fn constraints(
    obj: &Map<String, Value>,
    path: &str,
    default_salt: &str,
    segments: &Segments<'_>,
    sink: &mut Sink,
) -> Vec<Constraint> {
    let mut out = Vec::new();
    match obj.get("segments") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            for (i, n) in names.iter().enumerate() {
                let field = format!("{}[{i}]", join(path, "segments"));
                let Some(name) = n.as_str() else {
                    sink.err(field, "segment references must be strings");
                    continue;
                };
                match segments.get(name) {
                    Some(Ok(list)) => {
                        for (j, c) in list.iter().enumerate() {
                            let cpath = format!("segments.{name}.constraints[{j}]");
                            if let Some(c) = constraint(c, &cpath, default_salt, sink) {
                                out.push(c);
                            }
                        }
                    }
                    Some(Err(())) => sink.err(field, format!("segment `{name}` is invalid (see its own problems)")),
                    None => sink.err(field, format!("unknown segment `{name}`")),
                }
            }
        }
        Some(other) => {
            sink.err(join(path, "segments"), format!("must be an array of segment names, found {}", json_kind(other)))
        }
    }
    match obj.get("constraints") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                if let Some(c) = constraint(c, &format!("{}[{i}]", join(path, "constraints")), default_salt, sink) {
                    out.push(c);
                }
            }
        }
        Some(other) => sink.err(join(path, "constraints"), format!("must be an array, found {}", json_kind(other))),
    }
    out
}

/// Segment name -> its raw constraint list, or `Err` when it is invalid.
type Segments<'a> = HashMap<&'a str, Result<&'a Vec<Value>, ()>>;

fn compile_segments<'a>(raw: Option<&'a Map<String, Value>>, problems: &mut Vec<Problem>) -> Segments<'a> {
    let mut out = HashMap::new();
    let Some(raw) = raw else { return out };
    for (name, seg) in raw {
        let mut sink = Sink::new(format!("segment \"{name}\""));
        let list = match seg {
            Value::Object(o) => match o.get("constraints") {
                Some(Value::Array(a)) => Some(a),
                _ => {
                    sink.err(format!("segments.{name}.constraints"), "must be an array of constraints");
                    None
                }
            },
            Value::Array(a) => Some(a),
            other => {
                sink.err(
                    format!("segments.{name}"),
                    format!("must be an object {{constraints: [...]}}, found {}", json_kind(other)),
                );
                None
            }
        };
        if let Some(list) = list {
            // Validate once with a placeholder salt; references recompile with their own.
            for (i, c) in list.iter().enumerate() {
                constraint(c, &format!("segments.{name}.constraints[{i}]"), "", &mut sink);
            }
        }
        let ok = sink.problems.is_empty();
        problems.append(&mut sink.problems);
        out.insert(
            name.as_str(),
            match (ok, list) {
                (true, Some(l)) => Ok(l),
                _ => Err(()),
            },
        );
    }
    out
}

fn rule_value(v: Option<&Value>, path: &str, sink: &mut Sink) -> Option<CValue> {
    match v {
        None => {
            sink.err(path, "is required");
            None
        }
        Some(Value::Null) => {
            sink.err(path, "must not be null (omit the rule, or leave the variable without a value)");
            None
        }
        Some(v) => Some(CValue::new(v.clone())),
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str, sink: &mut Sink) -> Option<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(other) => {
            sink.err(key, format!("must be a non-empty string, found {}", json_kind(other)));
            None
        }
        None => {
            sink.err(key, "is required");
            None
        }
    }
}

/// Document name for messages and the key used to keep its last good version.
fn rollout_key(v: &Value) -> Option<&str> {
    v.get("variable").and_then(Value::as_str).filter(|s| !s.is_empty())
}
fn experiment_key(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn compile_rollout(v: &Value, segments: &Segments<'_>, sink: &mut Sink) -> Option<Rollout> {
    let Some(obj) = v.as_object() else {
        sink.err("", format!("a rollout document must be an object, found {}", json_kind(v)));
        return None;
    };
    let variable = str_field(obj, "variable", sink)?.to_string();
    check_schema(obj, "schema", "", sink);
    if let Some(ver) = obj.get("version") {
        if !ver.is_null() && get_int(ver).is_none() {
            sink.err("version", "must be an integer");
        }
    }
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            sink.err("enabled", format!("must be a boolean, found {}", json_kind(other)));
            true
        }
    };
    let mut rules = Vec::new();
    match obj.get("rollouts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, r) in list.iter().enumerate() {
                let path = format!("rollouts[{i}]");
                let Some(robj) = r.as_object() else {
                    sink.err(path, format!("a rule must be an object {{value, constraints}}, found {}", json_kind(r)));
                    continue;
                };
                let value = rule_value(robj.get("value"), &join(&path, "value"), sink);
                let label = match robj.get("string") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone().into_boxed_str()),
                    Some(other) => {
                        sink.err(join(&path, "string"), format!("must be a string label, found {}", json_kind(other)));
                        None
                    }
                };
                let cs = constraints(robj, &path, &variable, segments, sink);
                if let Some(value) = value {
                    rules.push(Rule { value, label, constraints: cs });
                }
            }
        }
        Some(other) => sink.err("rollouts", format!("must be an array of rules, found {}", json_kind(other))),
    }
    let default = match obj.get("default") {
        None | Some(Value::Null) => None,
        Some(v) => Some(CValue::new(v.clone())),
    };
    if !sink.problems.is_empty() {
        return None;
    }
    Some(Rollout { variable: variable.into_boxed_str(), rules, default, enabled, fingerprint: fingerprint(v) })
}

fn compile_variable(v: &Value, path: &str, exp_name: &str, sink: &mut Sink) -> Option<ExpVariable> {
    let Some(obj) = v.as_object() else {
        sink.err(path, format!("an experiment variable must be an object, found {}", json_kind(v)));
        return None;
    };
    let before = sink.problems.len();
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            sink.err(join(path, "name"), "must be a non-empty string");
            String::new()
        }
    };
    let salt = match obj.get("salt") {
        None | Some(Value::Null) => exp_name.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            sink.err(join(path, "salt"), format!("must be a string, found {}", json_kind(other)));
            String::new()
        }
    };
    let mut facets: Vec<Box<str>> = Vec::new();
    match obj.get("facets") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, f) in list.iter().enumerate() {
                match f.as_str() {
                    Some(s) if !s.is_empty() => {
                        if facets.iter().any(|x| &**x == s) {
                            sink.err(format!("{path}.facets[{i}]"), format!("facet `{s}` is listed twice"));
                        }
                        facets.push(s.into());
                    }
                    _ => sink.err(format!("{path}.facets[{i}]"), "must be a non-empty facet name"),
                }
            }
        }
        _ => sink.err(join(path, "facets"), "must be a non-empty array of facet names (the unit of assignment)"),
    }
    let strategy_name = match obj.get("strategy") {
        None | Some(Value::Null) => "weighted",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            sink.err(join(path, "strategy"), format!("must be a string, found {}", json_kind(other)));
            "weighted"
        }
    };
    let empty = Vec::new();
    let choices_raw = match obj.get("choices") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            sink.err(join(path, "choices"), "must be a non-empty array of choices");
            &empty
        }
    };
    let mut choices = Vec::with_capacity(choices_raw.len());
    let mut weights = Vec::with_capacity(choices_raw.len());
    let mut spans = Vec::with_capacity(choices_raw.len());
    for (i, c) in choices_raw.iter().enumerate() {
        let cpath = format!("{path}.choices[{i}]");
        let Some(cobj) = c.as_object() else {
            sink.err(cpath, "a choice must be an object {value, weight?, span?}");
            continue;
        };
        if let Some(val) = rule_value(cobj.get("value"), &join(&cpath, "value"), sink) {
            choices.push(val);
        }
        match cobj.get("weight") {
            None | Some(Value::Null) => weights.push(1.0),
            Some(w) => match w.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => weights.push(x),
                _ => sink.err(join(&cpath, "weight"), format!("must be a finite number >= 0, found {w}")),
            },
        }
        match cobj.get("span") {
            None | Some(Value::Null) => spans.push(None),
            Some(s) => match s.as_u64() {
                Some(x) if x >= 1 => spans.push(Some(x)),
                _ => sink.err(join(&cpath, "span"), format!("must be a whole number of seconds >= 1, found {s}")),
            },
        }
    }
    let strategy = match strategy_name {
        "weighted" => {
            let total: f64 = weights.iter().sum();
            if !choices_raw.is_empty() && total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                sink.err(join(path, "choices"), "the weights must add up to more than 0");
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
                sink.err(join(path, "facets"), "a timeSliceShuffle variable must list the `ts` facet");
            }
            if choices_raw.len() > MAX_TIMESLICE_CHOICES {
                sink.err(
                    join(path, "choices"),
                    format!("a timeSliceShuffle variable takes at most {MAX_TIMESLICE_CHOICES} choices"),
                );
            }
            let mut period: u64 = 0;
            let mut out = Vec::with_capacity(spans.len());
            for (i, s) in spans.iter().enumerate() {
                match s {
                    Some(s) => {
                        period = period.saturating_add(*s);
                        out.push(*s);
                    }
                    None => sink.err(format!("{path}.choices[{i}].span"), "is required for timeSliceShuffle"),
                }
            }
            if period > MAX_TIMESLICE_PERIOD {
                sink.err(
                    join(path, "choices"),
                    format!("the spans add up to {period} s, over the limit of {MAX_TIMESLICE_PERIOD}"),
                );
            }
            Strategy::TimeSlice { spans: out, period }
        }
        other => {
            sink.err(join(path, "strategy"), format!("unknown strategy `{other}` (known: weighted, timeSliceShuffle)"));
            return None;
        }
    };
    if sink.problems.len() != before {
        return None;
    }
    Some(ExpVariable { name: name.into_boxed_str(), salt: salt.into_boxed_str(), facets, strategy, choices })
}

fn compile_experiment(v: &Value, segments: &Segments<'_>, sink: &mut Sink) -> Option<Experiment> {
    let Some(obj) = v.as_object() else {
        sink.err("", format!("an experiment document must be an object, found {}", json_kind(v)));
        return None;
    };
    let name = str_field(obj, "name", sink)?.to_string();
    check_schema(obj, "schemaVersion", "", sink);
    let domain = match obj.get("domain") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone().into_boxed_str()),
        Some(other) => {
            sink.err("domain", format!("must be a non-empty string, found {}", json_kind(other)));
            None
        }
    };
    let state = str_field(obj, "state", sink).unwrap_or_default().to_string();
    let mut variables = Vec::new();
    match obj.get("variables") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, var) in list.iter().enumerate() {
                if let Some(cv) = compile_variable(var, &format!("variables[{i}]"), &name, sink) {
                    if variables.iter().any(|x: &ExpVariable| x.name == cv.name) {
                        sink.err(
                            format!("variables[{i}].name"),
                            format!("variable `{}` is defined twice in this experiment", cv.name),
                        );
                    }
                    variables.push(cv);
                }
            }
        }
        _ => sink.err("variables", "must be a non-empty array of variables"),
    }
    let cs = constraints(obj, "", &name, segments, sink);
    let slotting = match obj.get("slotting") {
        None | Some(Value::Null) => None,
        Some(Value::Object(s)) => {
            let w = s.get("byPercentage").and_then(Value::as_f64);
            let o = match s.get("offset") {
                None | Some(Value::Null) => Some(0.0),
                Some(x) => x.as_f64(),
            };
            match (w, o) {
                (Some(w), Some(o)) if (0.0..=1.0).contains(&w) && o >= 0.0 && o + w <= 1.0 + 1e-9 => {
                    let unit = match s.get("facet") {
                        Some(Value::String(f)) if !f.is_empty() => Some(SlotUnit::Facet(f.clone().into_boxed_str())),
                        None | Some(Value::Null) => {
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
                        Some(other) => {
                            sink.err("slotting.facet", format!("must be a facet name, found {}", json_kind(other)));
                            None
                        }
                    };
                    let salt = domain.clone().unwrap_or_else(|| name.clone().into_boxed_str());
                    // Boundaries are rounded to 12 decimals so that adjacent
                    // slots written as offset/byPercentage pairs (0.2 + 0.1)
                    // meet exactly (0.3) instead of overlapping by an ulp.
                    unit.map(|unit| Slotting { lo: round12(o), hi: round12(o + w).min(1.0), unit, salt })
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
                format!("must be an object {{byPercentage, offset?, facet?}}, found {}", json_kind(other)),
            );
            None
        }
    };
    if !sink.problems.is_empty() {
        return None;
    }
    Some(Experiment {
        name: Arc::from(name),
        domain,
        state: state.into_boxed_str(),
        variables,
        constraints: cs,
        slotting,
        fingerprint: fingerprint(v),
    })
}

/// Rounds a slot boundary to 12 decimal places (spec: slotting).
pub(crate) fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// Parses bundle bytes into JSON, with a clear error for non-UTF-8 or bad JSON.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ConfigError> {
    serde_json::from_slice(bytes).map_err(|e| ConfigError::Json(e.to_string()))
}

/// Compiles a bundle. With [`Isolation::PerDocument`], a rejected document
/// keeps its last good version from `prev` when there is one. Bundle-level
/// problems (not a bundle, duplicate names, overlapping slots), or every
/// document rejected, reject the whole update.
pub(crate) fn compile(root: &Value, prev: &Compiled, isolation: Isolation) -> Result<Outcome, ConfigError> {
    let raw = split_bundle(root).map_err(ConfigError::Invalid)?;
    let mut all_problems = Vec::new();
    let segments = compile_segments(raw.segments, &mut all_problems);
    let mut rejected = Vec::new();
    let mut bundle_problems = Vec::new();

    // Last good versions, by key.
    let prev_rollouts: HashMap<&str, &Arc<Rollout>> = prev.rollouts.iter().map(|r| (&*r.variable, r)).collect();
    let prev_experiments: HashMap<&str, &Arc<Experiment>> = prev.experiments.iter().map(|e| (&*e.name, e)).collect();

    let total_docs = raw.rollouts.len() + raw.experiments.len();
    let mut compiled_docs = 0usize;
    let mut warnings = Vec::new();
    let mut rollouts: Vec<Arc<Rollout>> = Vec::with_capacity(raw.rollouts.len());
    let mut broken_vars: Vec<String> = Vec::new();
    let mut seen_vars: HashSet<String> = HashSet::with_capacity(raw.rollouts.len());
    for (i, doc) in raw.rollouts.iter().enumerate() {
        let key = rollout_key(doc);
        let label = match key {
            Some(k) => format!("rollout \"{k}\""),
            None => format!("rollouts[{i}]"),
        };
        if let Some(k) = key {
            if !seen_vars.insert(k.to_string()) {
                bundle_problems.push(Problem {
                    document: label,
                    field: "variable".into(),
                    message: format!("a second rollout document for `{k}`"),
                });
                continue;
            }
        }
        let mut sink = Sink::new(label);
        let result = compile_rollout(doc, &segments, &mut sink);
        warnings.append(&mut sink.warnings);
        match result {
            Some(r) => {
                compiled_docs += 1;
                rollouts.push(Arc::new(r));
            }
            None => {
                let last = key.and_then(|k| prev_rollouts.get(k));
                let killed = doc.get("enabled") == Some(&Value::Bool(false));
                match (key, last) {
                    // A kill switch is honoured even when the rest of its document is broken.
                    (Some(k), _) if killed => {
                        compiled_docs += 1;
                        rollouts.push(Arc::new(Rollout {
                            variable: k.into(),
                            rules: Vec::new(),
                            default: None,
                            enabled: false,
                            fingerprint: fingerprint(doc),
                        }))
                    }
                    (_, Some(last)) => rollouts.push(Arc::clone(last)),
                    (Some(k), None) => broken_vars.push(k.to_string()),
                    (None, None) => {}
                }
                rejected.push(Rejected {
                    problems: sink.problems.clone(),
                    kept_last_good: last.is_some() && !(killed && key.is_some()),
                    kill_switch: killed && key.is_some(),
                });
                all_problems.append(&mut sink.problems);
            }
        }
    }
    let mut experiments: Vec<Arc<Experiment>> = Vec::with_capacity(raw.experiments.len());
    let mut seen_exps: HashSet<String> = HashSet::new();
    for (i, doc) in raw.experiments.iter().enumerate() {
        let key = experiment_key(doc);
        let label = match key {
            Some(k) => format!("experiment \"{k}\""),
            None => format!("experiments[{i}]"),
        };
        if let Some(k) = key {
            if !seen_exps.insert(k.to_string()) {
                bundle_problems.push(Problem {
                    document: label,
                    field: "name".into(),
                    message: format!("a second experiment named `{k}`"),
                });
                continue;
            }
        }
        let mut sink = Sink::new(label);
        let result = compile_experiment(doc, &segments, &mut sink);
        warnings.append(&mut sink.warnings);
        match result {
            Some(e) => {
                compiled_docs += 1;
                experiments.push(Arc::new(e));
            }
            None => {
                let last = key.and_then(|k| prev_experiments.get(k));
                match last {
                    Some(last) => experiments.push(Arc::clone(last)),
                    // Its variables resolve with PARSE_ERROR unless something else defines them.
                    None => broken_vars.extend(
                        doc.get("variables")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.get("name").and_then(Value::as_str))
                            .map(str::to_string),
                    ),
                }
                rejected.push(Rejected {
                    problems: sink.problems.clone(),
                    kept_last_good: last.is_some(),
                    kill_switch: false,
                });
                all_problems.append(&mut sink.problems);
            }
        }
    }
    check_slot_overlaps(&experiments, &mut bundle_problems);

    if !bundle_problems.is_empty() {
        bundle_problems.extend(all_problems);
        return Err(ConfigError::Invalid(bundle_problems));
    }
    if !all_problems.is_empty()
        && (isolation == Isolation::Strict || (compiled_docs == 0 && total_docs > 0) || total_docs == 0)
    {
        return Err(ConfigError::Invalid(all_problems));
    }
    // Segment problems not attached to any document still count as rejections.
    let doc_problem_count: usize = rejected.iter().map(|r| r.problems.len()).sum();
    if all_problems.len() > doc_problem_count {
        let seg: Vec<Problem> = all_problems.iter().filter(|p| p.document.starts_with("segment ")).cloned().collect();
        if !seg.is_empty() {
            rejected.insert(0, Rejected { problems: seg, kept_last_good: false, kill_switch: false });
        }
    }

    let mut compiled = Compiled { version: raw.version, rollouts, experiments, ..Default::default() };
    index_variables(&mut compiled, &broken_vars);
    Ok(Outcome { compiled, rejected, warnings })
}

fn check_slot_overlaps(experiments: &[Arc<Experiment>], problems: &mut Vec<Problem>) {
    let mut by_domain: HashMap<&str, Vec<&Experiment>> = HashMap::new();
    for e in experiments {
        if let Some(s) = &e.slotting {
            if s.hi > s.lo {
                by_domain.entry(&s.salt).or_default().push(e);
            }
        }
    }
    let mut domains: Vec<_> = by_domain.into_iter().collect();
    domains.sort_by(|a, b| a.0.cmp(b.0));
    for (domain, list) in domains {
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                let (sa, sb) = match (&a.slotting, &b.slotting) {
                    (Some(x), Some(y)) => (x, y),
                    _ => continue,
                };
                let unit = |e: &Experiment, u: &SlotUnit| match u {
                    SlotUnit::Facet(f) => format!("facet `{f}`"),
                    SlotUnit::Window => match e.variables.first().map(|v| &v.strategy) {
                        Some(Strategy::TimeSlice { period, .. }) => {
                            format!("the {period} s time window")
                        }
                        _ => "the time window".to_string(),
                    },
                };
                if unit(a, &sa.unit) != unit(b, &sb.unit) {
                    problems.push(Problem {
                        document: format!("experiment \"{}\"", b.name),
                        field: "slotting".into(),
                        message: format!(
                            "slots on {} but experiment `{}` in domain `{domain}` slots on {}: the slots of one domain must share one unit to be exclusive",
                            unit(b, &sb.unit), a.name, unit(a, &sa.unit)
                        ),
                    });
                    continue;
                }
                if sa.lo < sb.hi && sb.lo < sa.hi {
                    problems.push(Problem {
                        document: format!("experiment \"{}\"", b.name),
                        field: "slotting".into(),
                        message: format!(
                            "slot [{}, {}) overlaps experiment `{}` [{}, {}) in domain `{domain}`: a unit may be in at most one slotted experiment per domain",
                            sb.lo, sb.hi, a.name, sa.lo, sa.hi
                        ),
                    });
                }
            }
        }
    }
}

fn index_variables(c: &mut Compiled, broken: &[String]) {
    let mut plans: Vec<VarPlan> = Vec::with_capacity(c.rollouts.len());
    let mut index = HashMap::with_capacity_and_hasher(c.rollouts.len(), Default::default());
    let mut plan_for = |name: &str, plans: &mut Vec<VarPlan>| -> usize {
        *index.entry(Box::<str>::from(name)).or_insert_with(|| {
            plans.push(VarPlan { name: name.into(), experiments: vec![], rollout: None, broken: false });
            (plans.len() - 1) as u32
        }) as usize
    };
    for (ei, e) in c.experiments.iter().enumerate() {
        for (vi, v) in e.variables.iter().enumerate() {
            let p = plan_for(&v.name, &mut plans);
            plans[p].experiments.push((ei as u32, vi as u32));
        }
    }
    for (ri, r) in c.rollouts.iter().enumerate() {
        let p = plan_for(&r.variable, &mut plans);
        plans[p].rollout = Some(ri as u32);
    }
    for b in broken {
        let p = plan_for(b, &mut plans);
        if plans[p].rollout.is_none() && plans[p].experiments.is_empty() {
            plans[p].broken = true;
        }
    }
    c.vars = plans;
    c.index = index;
}
