//! Detailed internal errors. Each binding maps these to its own small public
//! error in one place.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

use crate::limits::LimitError;

/// A facet set could not be built.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FacetError {
    /// The facets were not a JSON object.
    #[error("facets must be a JSON object of name -> string, number or boolean")]
    NotAnObject,
    /// A facet value had a type facets cannot hold.
    #[error("facet `{name}` must be a string, number or boolean, found {found}")]
    BadValue {
        /// The facet's name.
        name: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// The facets text was not valid JSON.
    #[error("facets are not valid JSON: {0}")]
    Json(String),
    /// The facets exceed a limit (count, name or value size).
    #[error("facets rejected: {0}")]
    Limit(LimitError),
}

/// One problem found in a config: which document, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The document, e.g. `rollout "automatedMessageDelay"` or `experiments[2]`, or `bundle`.
    pub document: String,
    /// A JSON path inside the document, e.g. `rollouts[0].constraints[1].op`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.document, self.message)
        } else {
            write!(f, "{}: {}: {}", self.document, self.field, self.message)
        }
    }
}

/// A config update was rejected; the previous config stays in force.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    /// The bytes were not JSON (or not UTF-8).
    #[error("config is not valid JSON: {0}")]
    Json(String),
    /// The JSON was not a valid bundle or document; every problem is listed.
    #[error("config rejected ({} problem{}): {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, ProblemList(.0))]
    Invalid(Vec<Problem>),
    /// The config as a whole exceeds a limit (size, depth, string or array
    /// length, expanded constraints); nothing of it was compiled.
    #[error("config rejected: {0}")]
    Limit(LimitError),
}

impl ConfigError {
    /// Every problem (one synthetic problem for a JSON syntax error).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Json(m) => vec![Problem {
                document: "bundle".into(),
                field: String::new(),
                message: format!("not valid JSON: {m}"),
            }],
            ConfigError::Invalid(p) => p.clone(),
            ConfigError::Limit(l) => {
                vec![Problem { document: "bundle".into(), field: String::new(), message: l.to_string() }]
            }
        }
    }

    /// The limit exceeded, when this error is [`ConfigError::Limit`].
    pub fn limit(&self) -> Option<LimitError> {
        match self {
            ConfigError::Limit(l) => Some(*l),
            _ => None,
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Any error the engine returns.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A config was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Facets could not be built.
    #[error(transparent)]
    Facets(#[from] FacetError),
}

/// An error of the binding glue in [`crate::host`] (options, batch JSON).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HostError {
    /// Client options were not valid.
    #[error("invalid client options: {0}")]
    Options(String),
    /// The JSON form of a batch was not valid.
    #[error("invalid batch JSON: {0}")]
    Batch(String),
    /// Batch bytes could not be decoded.
    #[error(transparent)]
    Decode(#[from] crate::tracking::DecodeError),
}
