//! One constraint compiled: its target, its operator with the operand parsed
//! and canonicalised at load (numbers, `in` lists indexed past 16 entries,
//! semantic versions, regexes weighed and built), and its text for
//! `--explain`.

use std::sync::Arc;

use super::problems::{Path, Sink};
use super::strings::Strings;
use super::tape::{write_json, Tape, Tok, J};
use crate::decimal::DecBuf;
use crate::limits::{Limit, LimitError, MAX_IN_LIST, MAX_REGEX_WEIGHT, REGEX_SIZE_BACKSTOP};
use crate::model::{parse_semver, Constraint, FacetKey, InList, Op, Operand, SemverOp};
use crate::regex_weight::regex_weight;
use crate::value::{FacetValue, Num};

/// A constraint operand: strings, numbers and booleans (as `FacetValue::from_json`).
///
/// What evaluation reads (operands, targets, salts) gets its own allocation,
/// as before, rather than a shared string: measured, sharing them saves no
/// load time and made rollout decisions slower.
fn operand(v: J<'_, '_>) -> Option<Operand> {
    match v.tok() {
        // A string is its own canonical form.
        Tok::Str(s) => Some(Operand { canon: Box::from(&**s), num: Num::parse(s) }),
        Tok::Num(n) => match n.as_i64() {
            // An integer is `FacetValue::Int`: its decimal text, exactly.
            Some(i) => Some(Operand { canon: Box::from(DecBuf::new(i).as_str()), num: Some(Num::Int(i)) }),
            None => {
                let fv = FacetValue::from_json(&v.scalar()?)?;
                Some(Operand { canon: fv.canonical().into_boxed_str(), num: fv.num() })
            }
        },
        Tok::Bool(_) => {
            let fv = FacetValue::from_json(&v.scalar()?)?;
            Some(Operand { canon: fv.canonical().into_boxed_str(), num: fv.num() })
        }
        _ => None,
    }
}

/// The number of an ordering or `/` operand: a JSON number, or a string holding one.
fn num_value(v: J<'_, '_>) -> Option<Num> {
    match v.tok() {
        Tok::Num(n) => n.as_i64().map(Num::Int).or_else(|| n.as_f64().and_then(Num::from_f64)),
        Tok::Str(s) => Num::parse(s),
        _ => None,
    }
}

/// The text of a constraint for `--explain`: `target op value`, a string
/// value as is, any other value as compact JSON (as `Value` prints it).
/// Shared, like the other strings: most texts repeat across a big bundle.
fn constraint_text(target: &str, op_name: &str, value: J<'_, '_>, strings: &mut Strings) -> Arc<str> {
    let mut text = std::mem::take(&mut strings.scratch);
    text.clear();
    text.push_str(target);
    text.push(' ');
    text.push_str(op_name);
    text.push(' ');
    match value.tok() {
        Tok::Str(s) => text.push_str(s),
        _ => write_json(value, &mut text),
    }
    let shared = strings.get(&text);
    strings.scratch = text;
    shared
}

/// Compiles one constraint. `default_salt` is the variable's name (rollout)
/// or the experiment's name (experiment).
pub(super) fn constraint(
    v: J<'_, '_>,
    path: &Path<'_>,
    default_salt: &str,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Constraint> {
    if !v.is_object() {
        sink.err(path, format!("a constraint must be an object {{target, op, value}}, found {}", v.kind()));
        return None;
    }
    let [target, op, value, salt] = v.fields(["target", "op", "value", "salt"]);
    let target = match target.and_then(J::as_str) {
        Some(s) if !s.is_empty() => s,
        _ => {
            sink.err(path.key("target"), "must be a non-empty string naming a facet");
            return None;
        }
    };
    let Some(op_name) = op.and_then(J::as_str) else {
        sink.err(path.key("op"), "must be a string");
        return None;
    };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        sink.err(path.key("value"), "is required");
        return None;
    };
    let vpath = path.key("value");
    // `None`: the default salt.
    let salt = match salt {
        None => None,
        Some(s) if s.is_null() => None,
        Some(s) => match s.as_str() {
            Some(s) => Some(s),
            None => {
                sink.err(path.key("salt"), format!("must be a string, found {}", s.kind()));
                return None;
            }
        },
    };
    let scalar = |sink: &mut Sink<'_>| -> Option<Operand> {
        let o = operand(value);
        if o.is_none() {
            sink.err(vpath, format!("must be a string, number or boolean for `{op_name}`, found {}", value.kind()));
        }
        o
    };
    let text_of = |sink: &mut Sink<'_>| -> Option<Box<str>> { scalar(sink).map(|o| o.canon) };
    let semver_of = |sink: &mut Sink<'_>| -> Option<semver::Version> {
        let v = value.as_str().and_then(parse_semver);
        if v.is_none() {
            sink.err(vpath, format!("`{op_name}` needs a semantic version string like \"1.2.3\", found {value}"));
        }
        v
    };
    let op = match op_name {
        "=" | "==" => Op::Eq(scalar(sink)?),
        "!=" => Op::Ne(scalar(sink)?),
        "in" => Op::In(Arc::new(InList::new(operand_list(value, &vpath, op_name, sink)?))),
        "nin" | "!in" => Op::Nin(Arc::new(InList::new(operand_list(value, &vpath, op_name, sink)?))),
        // Spec rule 3: false when either side is not numeric (a non-numeric
        // value makes the constraint always false; it is not a load error).
        ">" | ">=" | "<" | "<=" => {
            let n = num_value(value);
            if n.is_none() {
                sink.warn(vpath, format!("`{op_name}` with the non-numeric value {value} is always false"));
            }
            match op_name {
                ">" => Op::Gt(n),
                ">=" => Op::Ge(n),
                "<" => Op::Lt(n),
                _ => Op::Le(n),
            }
        }
        "/" => {
            let Some(n) = num_value(value) else {
                sink.err(vpath, format!("`{op_name}` needs a number (or a string holding one), found {value}"));
                return None;
            };
            let p = n.as_f64();
            if !(0.0..=1.0).contains(&p) {
                sink.err(vpath, format!("`/` takes a fraction between 0 and 1, found {p}"));
                return None;
            }
            Op::Fraction {
                p,
                prefix: crate::hash::salt_prefix(salt.unwrap_or(default_salt)),
                explicit_salt: salt.is_some(),
            }
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
            // The weight is read from the pattern's text, so the limit is the
            // same on every platform; regex-lite's own (pointer-width
            // dependent) size limit is only a backstop far above it.
            let weight = regex_weight(pat);
            let over = |found| LimitError { limit: Limit::RegexWeight, max: MAX_REGEX_WEIGHT, found };
            if weight > MAX_REGEX_WEIGHT {
                sink.err(vpath, format!("{} (the pattern alone)", over(weight)));
                return None;
            }
            sink.regex_weight = sink.regex_weight.saturating_add(weight);
            match regex_lite::RegexBuilder::new(pat).size_limit(REGEX_SIZE_BACKSTOP).build() {
                Ok(r) => Op::Regex(Arc::new(r)),
                Err(e) if e.to_string().contains("size limit") => {
                    sink.err(vpath, format!("{} (the compiled pattern)", over(weight)));
                    return None;
                }
                Err(e) => {
                    sink.err(vpath, format!("invalid regex: {e}"));
                    return None;
                }
            }
        }
        other => {
            sink.err(
                path.key("op"),
                format!(
                    "unknown op `{other}` (known: = != in nin > >= < <= / semver= semver!= semver> semver>= semver< semver<= prefix suffix contains regex)"
                ),
            );
            return None;
        }
    };
    Some(Constraint { target: FacetKey::new(target), op, text: constraint_text(target, op_name, value, strings) })
}

/// The operands of `in` / `nin`: a JSON array, or a string holding one.
fn operand_list(value: J<'_, '_>, vpath: &Path<'_>, op_name: &str, sink: &mut Sink<'_>) -> Option<Vec<Operand>> {
    let parsed;
    let arr = match value.tok() {
        Tok::Arr { .. } => value,
        Tok::Str(s) => match Tape::parse_str(s) {
            Some(t) if matches!(t.toks.first(), Some(Tok::Arr { .. })) => {
                parsed = t;
                parsed.root()
            }
            _ => {
                sink.err(vpath, format!("`{op_name}` needs an array (or a string holding one), found {value}"));
                return None;
            }
        },
        _ => {
            sink.err(vpath, format!("`{op_name}` needs an array (or a string holding one), found {}", value.kind()));
            return None;
        }
    };
    let elems = arr.elems()?;
    if elems.len() > MAX_IN_LIST {
        sink.err(vpath, LimitError::new(Limit::InList, MAX_IN_LIST, elems.len()).to_string());
        return None;
    }
    let mut out = Vec::with_capacity(elems.len());
    for (i, e) in elems.enumerate() {
        match operand(e) {
            Some(o) => out.push(o),
            None => {
                sink.err(
                    vpath.index(i),
                    format!("list elements must be strings, numbers or booleans, found {}", e.kind()),
                );
                return None;
            }
        }
    }
    Some(out)
}
