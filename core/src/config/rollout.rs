//! A rollout document compiled: its rules (value, optional label,
//! constraints), its default and its kill switch (`enabled`).

use std::sync::Arc;

use super::fields::{check_schema, get_int, rule_value, str_field};
use super::fingerprint::fingerprint;
use super::problems::{Path, Sink};
use super::segments::{constraints, Segments};
use super::strings::Strings;
use super::tape::J;
use crate::model::{Rollout, Rule};

/// Document name for messages and the key used to keep its last good version.
pub(super) fn rollout_key<'t>(v: J<'t, '_>) -> Option<&'t str> {
    v.get("variable").and_then(J::as_str).filter(|s| !s.is_empty())
}

/// Compiles a rollout document; `None` when it has a problem (reported to `sink`).
pub(super) fn compile_rollout(
    v: J<'_, '_>,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<Rollout> {
    if !v.is_object() {
        sink.err("", format!("a rollout document must be an object, found {}", v.kind()));
        return None;
    }
    let [variable, schema, version, enabled, rollouts, default] =
        v.fields(["variable", "schema", "version", "enabled", "rollouts", "default"]);
    let variable: Arc<str> = Arc::from(str_field(variable, "variable", sink)?);
    check_schema(schema, "schema", sink);
    if let Some(ver) = version {
        if !ver.is_null() && get_int(ver).is_none() {
            sink.err("version", "must be an integer");
        }
    }
    let enabled = match enabled {
        None => true,
        Some(e) if e.is_null() => true,
        Some(e) => match e.as_bool() {
            Some(b) => b,
            None => {
                sink.err("enabled", format!("must be a boolean, found {}", e.kind()));
                true
            }
        },
    };
    let mut rules = Vec::new();
    match rollouts {
        None => {}
        Some(list) if list.is_null() => {}
        Some(list) => match list.elems() {
            Some(elems) => {
                let root = Path::Root;
                let rpath = root.key("rollouts");
                rules.reserve_exact(elems.len());
                for (i, r) in elems.enumerate() {
                    let path = rpath.index(i);
                    if !r.is_object() {
                        sink.err(path, format!("a rule must be an object {{value, constraints}}, found {}", r.kind()));
                        continue;
                    }
                    let [value, label, refs, list] = r.fields(["value", "string", "segments", "constraints"]);
                    let value = rule_value(value, &path.key("value"), strings, sink);
                    let label = match label {
                        None => None,
                        Some(l) if l.is_null() => None,
                        Some(l) => match l.as_str() {
                            Some(s) => Some(Box::from(s)),
                            None => {
                                sink.err(path.key("string"), format!("must be a string label, found {}", l.kind()));
                                None
                            }
                        },
                    };
                    let cs = constraints(refs, list, &path, &variable, segments, strings, sink);
                    if let Some(value) = value {
                        rules.push(Rule { value, label, constraints: cs });
                    }
                }
            }
            None => sink.err("rollouts", format!("must be an array of rules, found {}", list.kind())),
        },
    }
    let default = match default {
        None => None,
        Some(d) if d.is_null() => None,
        Some(d) => Some(strings.value(d.to_value())),
    };
    sink.check_regex_weight();
    if !sink.problems.is_empty() {
        return None;
    }
    let salt = crate::hash::salt_prefix(&variable);
    Some(Rollout { variable, rules, default, enabled, fingerprint: fingerprint(v), salt })
}
