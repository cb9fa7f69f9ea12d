//! Problems: where they are ([`Path`], a field path inside a document) and in
//! which document ([`Label`]), both formatted only when a problem is
//! reported, and the [`Sink`] that collects a document's problems and
//! warnings.

use std::fmt::Write as _;

use crate::error::Problem;
use crate::limits::{Limit, LimitError, MAX_REGEX_WEIGHT};

/// A field path inside a document, formatted only when a problem is reported
/// (`rollouts[0].constraints[1].value`).
#[derive(Clone, Copy)]
pub(super) enum Path<'p> {
    Root,
    /// `parent.key` (just `key` at the root).
    Key(&'p Path<'p>, &'p str),
    /// `parent[i]`.
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    pub(super) fn key(&'p self, key: &'p str) -> Path<'p> {
        Path::Key(self, key)
    }
    pub(super) fn index(&'p self, i: usize) -> Path<'p> {
        Path::Index(self, i)
    }
    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

/// Something that names a field in a [`Problem`].
pub(super) trait Field {
    fn render(self) -> String;
}

impl Field for &Path<'_> {
    fn render(self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

impl Field for Path<'_> {
    fn render(self) -> String {
        (&self).render()
    }
}

impl Field for &str {
    fn render(self) -> String {
        self.to_string()
    }
}

/// A document's name in problems, formatted only when one is reported.
#[derive(Clone, Copy)]
pub(super) enum Label<'a> {
    /// `bundle`.
    Bundle,
    /// `rollout "name"`, `experiment "name"`, `segment "name"`.
    Named(&'static str, &'a str),
    /// `rollouts[3]`, `experiments[0]`.
    Indexed(&'static str, usize),
}

impl Label<'_> {
    pub(super) fn render(self) -> String {
        match self {
            Label::Bundle => "bundle".to_string(),
            Label::Named(kind, name) => format!("{kind} \"{name}\""),
            Label::Indexed(list, i) => format!("{list}[{i}]"),
        }
    }
}

/// Collects the problems and warnings of one document (or of the bundle).
pub(super) struct Sink<'a> {
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
    label: Label<'a>,
    /// The summed [`regex_weight`](crate::regex_weight::regex_weight) of the document's regex constraints, each
    /// segment reference counted (limit `regex_weight`).
    pub(super) regex_weight: u64,
}

impl<'a> Sink<'a> {
    pub(super) fn new(label: Label<'a>) -> Sink<'a> {
        Sink { problems: Vec::new(), warnings: Vec::new(), label, regex_weight: 0 }
    }
    /// A problem when the document's regexes weigh more than [`MAX_REGEX_WEIGHT`] in all.
    pub(super) fn check_regex_weight(&mut self) {
        if self.regex_weight > MAX_REGEX_WEIGHT {
            let e = LimitError { limit: Limit::RegexWeight, max: MAX_REGEX_WEIGHT, found: self.regex_weight };
            self.err(
                Path::Root,
                format!("{e} (the regex constraints of this document, each segment reference counted)"),
            );
        }
    }
    /// Something that loads but is almost certainly a mistake.
    pub(super) fn warn(&mut self, field: impl Field, message: impl Into<String>) {
        self.warnings.push(Problem { document: self.label.render(), field: field.render(), message: message.into() });
    }
    pub(super) fn err(&mut self, field: impl Field, message: impl Into<String>) {
        self.problems.push(Problem { document: self.label.render(), field: field.render(), message: message.into() });
    }
}

/// A problem of the bundle as a whole (no field).
pub(super) fn bundle_problem(message: impl Into<String>) -> Problem {
    Problem { document: "bundle".into(), field: String::new(), message: message.into() }
}
