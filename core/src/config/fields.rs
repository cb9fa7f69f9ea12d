//! Fields every document reads the same way: integers (`version`, the
//! schema), the schema check, required names, and rule and choice values;
//! each reader reports a problem where the field is wrong.

use serde_json::Value;

use super::problems::{Path, Sink};
use super::strings::Strings;
use super::tape::J;
use crate::model::{json_int, CValue};

/// The only bundle / document schema version this engine understands.
pub const SCHEMA_VERSION: i64 = 1;

/// `model::json_int` of the value (integers, and integral floats with |x| < 2^63).
pub(super) fn get_int(v: J<'_, '_>) -> Option<i64> {
    v.as_number().and_then(|n| json_int(&Value::Number(n.clone())))
}

/// Checks a `schema` / `schemaVersion` field, when present, against [`SCHEMA_VERSION`].
pub(super) fn check_schema(field: Option<J<'_, '_>>, key: &str, sink: &mut Sink<'_>) {
    if let Some(s) = field {
        match get_int(s) {
            Some(SCHEMA_VERSION) => {}
            _ => sink.err(key, format!("unsupported schema {s}; this engine reads schema {SCHEMA_VERSION}")),
        }
    }
}

/// A rule's or a choice's `value`: required, and not null.
pub(super) fn rule_value(
    v: Option<J<'_, '_>>,
    path: &Path<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Option<CValue> {
    match v {
        None => {
            sink.err(path, "is required");
            None
        }
        Some(v) if v.is_null() => {
            sink.err(path, "must not be null (omit the rule, or leave the variable without a value)");
            None
        }
        Some(v) => Some(strings.value(v.to_value())),
    }
}

/// A required non-empty string field (a document's name).
pub(super) fn str_field<'t>(field: Option<J<'t, '_>>, key: &str, sink: &mut Sink<'_>) -> Option<&'t str> {
    match field {
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                sink.err(key, format!("must be a non-empty string, found {}", v.kind()));
                None
            }
        },
        None => {
            sink.err(key, "is required");
            None
        }
    }
}
