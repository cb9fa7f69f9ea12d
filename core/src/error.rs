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

/// One stable kind per failure, the same on every platform (docs/sync.md,
/// section 8): each binding maps it once, to its C status, its UniFFI
/// error variant, its JavaScript `TurnoutError.code`, its Go sentinel error.
/// [`ErrorKind::code`] is the stable text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// A config was rejected (not JSON, or invalid): [`ConfigError`].
    InvalidConfig,
    /// Facets could not be built: [`FacetError`].
    InvalidFacets,
    /// Client or sync options were not valid.
    InvalidOptions,
    /// A call's argument was not valid (wrong type, out of range, wrong state).
    InvalidArgument,
    /// The JSON form of a batch was not valid.
    InvalidBatch,
    /// Bytes are not an event batch (bad magic, too short).
    NotABatch,
    /// A batch version this decoder does not read.
    BatchVersion,
    /// A batch's checksum does not match.
    BatchChecksum,
    /// A batch's structure is inconsistent.
    BatchMalformed,
    /// A limit on hostile input was exceeded (docs/spec.md, section 17).
    LimitExceeded,
    /// The client (or sync) was closed.
    Closed,
    /// A fixed-clock call on a client without a fixed clock.
    NoFixedClock,
    /// Host protocol: no HTTP response (refused, reset, DNS, TLS).
    Network,
    /// Host protocol: an HTTP status that is a failure.
    Http,
    /// Host protocol: a request did not finish within its deadline.
    Timeout,
    /// Host protocol: a config body over the size limit.
    TooLarge,
    /// Host protocol: a body shorter than announced, or cut short.
    Incomplete,
    /// Host protocol: the request was abandoned because the host stopped.
    Aborted,
    /// A bug inside the library (a caught panic); never expected.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 19] = [
        ErrorKind::InvalidConfig,
        ErrorKind::InvalidFacets,
        ErrorKind::InvalidOptions,
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidBatch,
        ErrorKind::NotABatch,
        ErrorKind::BatchVersion,
        ErrorKind::BatchChecksum,
        ErrorKind::BatchMalformed,
        ErrorKind::LimitExceeded,
        ErrorKind::Closed,
        ErrorKind::NoFixedClock,
        ErrorKind::Network,
        ErrorKind::Http,
        ErrorKind::Timeout,
        ErrorKind::TooLarge,
        ErrorKind::Incomplete,
        ErrorKind::Aborted,
        ErrorKind::Internal,
    ];

    /// The stable code, e.g. `INVALID_CONFIG` (JavaScript's `TurnoutError.code`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::InvalidFacets => "INVALID_FACETS",
            ErrorKind::InvalidOptions => "INVALID_OPTIONS",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::InvalidBatch => "INVALID_BATCH",
            ErrorKind::NotABatch => "NOT_A_BATCH",
            ErrorKind::BatchVersion => "BATCH_VERSION",
            ErrorKind::BatchChecksum => "BATCH_CHECKSUM",
            ErrorKind::BatchMalformed => "BATCH_MALFORMED",
            ErrorKind::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::NoFixedClock => "NO_FIXED_CLOCK",
            ErrorKind::Network => "NETWORK",
            ErrorKind::Http => "HTTP",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::TooLarge => "TOO_LARGE",
            ErrorKind::Incomplete => "INCOMPLETE",
            ErrorKind::Aborted => "ABORTED",
            ErrorKind::Internal => "INTERNAL",
        }
    }

    /// The kind whose [`code`](ErrorKind::code) is `code`.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl ConfigError {
    /// [`ErrorKind::LimitExceeded`] for a limit, else [`ErrorKind::InvalidConfig`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Limit(_) => ErrorKind::LimitExceeded,
            _ => ErrorKind::InvalidConfig,
        }
    }
}

impl FacetError {
    /// [`ErrorKind::LimitExceeded`] for a limit, else [`ErrorKind::InvalidFacets`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            FacetError::Limit(_) => ErrorKind::LimitExceeded,
            _ => ErrorKind::InvalidFacets,
        }
    }
}

impl crate::tracking::DecodeError {
    /// The batch error's kind.
    pub fn kind(&self) -> ErrorKind {
        use crate::tracking::DecodeError as D;
        match self {
            D::NotABatch => ErrorKind::NotABatch,
            D::Version(_) => ErrorKind::BatchVersion,
            D::Checksum => ErrorKind::BatchChecksum,
            D::Malformed { .. } => ErrorKind::BatchMalformed,
            D::Limit(_) => ErrorKind::LimitExceeded,
        }
    }
}

impl HostError {
    /// The kind of this glue error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HostError::Options(_) => ErrorKind::InvalidOptions,
            HostError::Batch(_) => ErrorKind::InvalidBatch,
            HostError::Decode(d) => d.kind(),
        }
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(e) => e.kind(),
            Error::Facets(e) => e.kind(),
        }
    }
}

/// What every boundary carries of an error, taken in one place: its stable
/// [`ErrorKind`], its text, and the structured detail a host can act on
/// without reading the text (a config's problems, the limit exceeded).
/// Each binding maps this once ([`From`] on its own error type); none of
/// them matches message text.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    /// The stable kind.
    pub kind: ErrorKind,
    /// The English text (for people; never parsed).
    pub message: String,
    /// For a rejected config: every problem (one synthetic `bundle` problem for
    /// a JSON syntax error or a whole-config limit); empty otherwise.
    pub problems: Vec<Problem>,
    /// The limit exceeded, for [`ErrorKind::LimitExceeded`].
    pub limit: Option<LimitError>,
}

impl ErrorDetail {
    /// A detail with no structured part.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail { kind, message: message.into(), problems: Vec::new(), limit: None }
    }
}

impl From<ConfigError> for ErrorDetail {
    fn from(e: ConfigError) -> Self {
        ErrorDetail { kind: e.kind(), message: e.to_string(), problems: e.problems(), limit: e.limit() }
    }
}

impl From<FacetError> for ErrorDetail {
    fn from(e: FacetError) -> Self {
        let limit = match &e {
            FacetError::Limit(l) => Some(*l),
            _ => None,
        };
        ErrorDetail { kind: e.kind(), message: e.to_string(), problems: Vec::new(), limit }
    }
}

impl From<crate::tracking::DecodeError> for ErrorDetail {
    fn from(e: crate::tracking::DecodeError) -> Self {
        let limit = match &e {
            crate::tracking::DecodeError::Limit(l) => Some(*l),
            _ => None,
        };
        ErrorDetail { kind: e.kind(), message: e.to_string(), problems: Vec::new(), limit }
    }
}

impl From<HostError> for ErrorDetail {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Decode(d) => d.into(),
            other => ErrorDetail::new(other.kind(), other.to_string()),
        }
    }
}

impl From<Error> for ErrorDetail {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(c) => c.into(),
            Error::Facets(f) => f.into(),
        }
    }
}

#[cfg(test)]
mod detail_tests {
    use super::*;
    use crate::limits::Limit;
    use crate::tracking::DecodeError;

    #[test]
    fn detail_carries_kind_problems_and_limit() {
        let d = ErrorDetail::from(ConfigError::Json("eof".into()));
        assert_eq!((d.kind, d.problems.len(), d.limit), (ErrorKind::InvalidConfig, 1, None));
        assert_eq!(d.problems[0].document, "bundle");
        let l = LimitError::new(Limit::ConfigBytes, 10, 20);
        let d = ErrorDetail::from(ConfigError::Limit(l));
        assert_eq!((d.kind, d.limit), (ErrorKind::LimitExceeded, Some(l)));
        assert!(d.message.contains("config_bytes"), "{}", d.message);
        let d = ErrorDetail::from(HostError::Decode(DecodeError::Checksum));
        assert_eq!((d.kind, d.limit, d.problems.is_empty()), (ErrorKind::BatchChecksum, None, true));
        let d = ErrorDetail::from(HostError::Options("x".into()));
        assert_eq!(d.kind, ErrorKind::InvalidOptions);
        let d = ErrorDetail::from(Error::Facets(FacetError::Limit(l)));
        assert_eq!((d.kind, d.limit), (ErrorKind::LimitExceeded, Some(l)));
    }
}
