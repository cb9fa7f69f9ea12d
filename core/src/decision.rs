//! The result of evaluating a variable.

use serde::Serialize;

/// Where a decision's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An experiment assigned the value.
    Experiment,
    /// A rollout rule matched.
    Rollout,
    /// No rule matched; the rollout document's `default` applies.
    Default,
    /// Nothing in the config decided: the caller's own default applies.
    Fallback,
}

impl Source {
    /// The lowercase wire name (`experiment`, `rollout`, `default`, `fallback`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Experiment => "experiment",
            Source::Rollout => "rollout",
            Source::Default => "default",
            Source::Fallback => "fallback",
        }
    }
}

/// Why a decision was taken, in the style of OpenFeature's resolution reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A rollout rule's constraints matched.
    TargetingMatch,
    /// An experiment split assigned the unit to a choice.
    Split,
    /// A default applied: the document's `default`, or (source `fallback`) the caller's.
    Default,
    /// The variable is switched off (kill switch): the caller's default applies.
    Disabled,
    /// Evaluation failed; see the error code. The caller's default applies.
    Error,
}

impl Reason {
    /// The wire name, e.g. `TARGETING_MATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// Error codes that accompany [`Reason::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No document defines the variable.
    FlagNotFound,
    /// The value's type is not the one asked for.
    TypeMismatch,
    /// The variable's document was rejected and had no last good version.
    ParseError,
    /// The context (facets) is over a limit of `docs/spec.md` section 17
    /// (too many facets, a name or value too long).
    InvalidContext,
}

impl ErrorCode {
    /// The wire name, e.g. `FLAG_NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
        }
    }
}

/// The JSON types a caller can ask a value for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// An integral number that fits `i64`.
    Int64,
    /// Any number.
    Float64,
    /// `true` / `false`.
    Bool,
    /// A JSON string.
    String,
}

/// A decision for one variable and one set of facets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The variable's name.
    pub variable: String,
    /// The value; `None` when the source is `fallback` (use your default).
    pub value: Option<serde_json::Value>,
    /// The matched rule's `string` label, if it has one.
    pub label: Option<String>,
    /// Where the value came from.
    pub source: Source,
    /// The experiment that assigned it, when the source is `experiment`.
    pub experiment: Option<String>,
    /// The matched rule's index (source `rollout`).
    pub rule: Option<u32>,
    /// The assigned choice's index (source `experiment`).
    pub choice: Option<u32>,
    /// Why.
    pub reason: Reason,
    /// Set when `reason` is `ERROR`.
    pub error: Option<ErrorCode>,
}

impl Decision {
    /// Whether the value has the asked type (`None` values never do).
    pub fn has_type(&self, t: ValueType) -> bool {
        match (&self.value, t) {
            (None, _) => false,
            (Some(v), ValueType::Int64) => crate::model::json_int(v).is_some(),
            (Some(v), ValueType::Float64) => v.is_number(),
            (Some(v), ValueType::Bool) => v.is_boolean(),
            (Some(v), ValueType::String) => v.is_string(),
        }
    }

    /// This decision as the caller of a typed accessor sees it: when the value
    /// is not of type `t`, the value is dropped and the reason becomes
    /// `ERROR` / `TYPE_MISMATCH` (the caller's default applies).
    pub fn checked(mut self, t: ValueType) -> Decision {
        if self.value.is_some() && !self.has_type(t) {
            self.value = None;
            self.reason = Reason::Error;
            self.error = Some(ErrorCode::TypeMismatch);
        }
        self
    }

    /// The value as `i64`, or `default` (fallback or TYPE_MISMATCH).
    pub fn int64(&self, default: i64) -> i64 {
        self.value.as_ref().and_then(crate::model::json_int).unwrap_or(default)
    }

    /// The value as `f64`, or `default`.
    pub fn float64(&self, default: f64) -> f64 {
        self.value.as_ref().and_then(serde_json::Value::as_f64).unwrap_or(default)
    }

    /// The value as `bool`, or `default`.
    pub fn bool(&self, default: bool) -> bool {
        self.value.as_ref().and_then(serde_json::Value::as_bool).unwrap_or(default)
    }

    /// The value as a string, or `default`.
    pub fn string(&self, default: &str) -> String {
        self.value.as_ref().and_then(serde_json::Value::as_str).unwrap_or(default).to_string()
    }

    /// The value as JSON (`None` for fallback).
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.value.as_ref()
    }

    /// The contract's JSON line, keys in contract order (what the CLI prints).
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            variable: &'a str,
            value: &'a Option<serde_json::Value>,
            source: &'static str,
            experiment: &'a Option<String>,
            rule: Option<u32>,
            choice: Option<u32>,
            reason: &'static str,
            #[serde(rename = "errorCode")]
            error_code: Option<&'static str>,
        }
        let line = Line {
            variable: &self.variable,
            value: &self.value,
            source: self.source.as_str(),
            experiment: &self.experiment,
            rule: self.rule,
            choice: self.choice,
            reason: self.reason.as_str(),
            error_code: self.error.map(ErrorCode::as_str),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// The contract's JSON form: `{variable, value, source, experiment, rule,
    /// choice, reason, errorCode}` (the CLI prints this; vectors compare it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "variable": self.variable,
            "value": self.value,
            "source": self.source.as_str(),
            "experiment": self.experiment,
            "rule": self.rule,
            "choice": self.choice,
            "reason": self.reason.as_str(),
            "errorCode": self.error.map(ErrorCode::as_str),
        })
    }
}
