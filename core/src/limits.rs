//! The engine's limits on hostile or accidental input (docs/spec.md, section 17).
//!
//! Every limit is enforced here in core, so it is the same on every platform.
//! Exceeding one gives a [`LimitError`] naming the limit (wrapped in
//! [`crate::ConfigError::Limit`], [`crate::FacetError::Limit`] or
//! [`crate::DecodeError::Limit`]), or, for a limit of one document of a bundle, a
//! problem of that document whose message names the limit. Only the config
//! size is host-configurable ([`crate::ClientOptions::max_config_bytes`]).

use std::fmt;

use serde::Serialize;

/// The default largest config a client accepts, in bytes (16 MiB).
pub const DEFAULT_MAX_CONFIG_BYTES: usize = 16 << 20;
/// The deepest nesting of JSON arrays and objects in a config.
pub const MAX_JSON_DEPTH: usize = 64;
/// The longest string (key or value) in a config, in bytes (1 MiB).
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// The most elements of one JSON array in a config.
pub const MAX_ARRAY_LEN: usize = 1_000_000;
/// The most entries of one `in` / `nin` list.
pub const MAX_IN_LIST: usize = 100_000;
/// Constraints a config may hold once segment references are expanded:
/// this fixed allowance plus [`EXPANDED_CONSTRAINTS_PER_BYTE`] per config byte,
/// so that the compiled form stays within a fixed multiple of its input.
pub const EXPANDED_CONSTRAINTS_BASE: usize = 16_384;
/// Expanded constraints allowed per config byte (see [`EXPANDED_CONSTRAINTS_BASE`]): one per 4 bytes.
pub const EXPANDED_CONSTRAINTS_PER_BYTE: f64 = 0.25;
/// The heaviest `regex` pattern, and the most the regex constraints of one
/// document may weigh in all (each segment reference counted), in units of
/// [`crate::regex_weight::regex_weight`]: an upper bound on the matcher states
/// per input character, read from the pattern's text so the limit is the same
/// on every platform. At about 16 ns per state per byte here, 64 keeps a
/// decision's regexes within 1 s per MB of the matched value.
pub const MAX_REGEX_WEIGHT: u64 = 64;
/// regex-lite's own size limit (heap bytes of the compiled program, which
/// depend on the pointer width): a backstop against a pattern the weight
/// under-counts, far above what a pattern within [`MAX_REGEX_WEIGHT`] needs.
pub const REGEX_SIZE_BACKSTOP: usize = 256 << 10;
/// The longest facet value a `regex` constraint is matched against, in bytes;
/// against a longer value the constraint is false.
pub const MAX_REGEX_INPUT_BYTES: usize = 4 << 10;
/// The most facets one context (facet set) may hold.
pub const MAX_FACETS: usize = 1_024;
/// The longest facet name, in bytes.
pub const MAX_FACET_NAME_BYTES: usize = 1 << 10;
/// The longest facet value (a string, or a number's canonical form), in bytes.
pub const MAX_FACET_VALUE_BYTES: usize = 8 << 10;
/// The most slotted experiments in one domain.
pub const MAX_EXPERIMENTS_PER_DOMAIN: usize = 1_000;
/// A batch decodes to at most this many times its size (plus [`DECODE_ALLOWANCE`]),
/// counting every copy a consumer's output makes (docs/wire-format.md, section 10).
pub const DECODE_EXPANSION: usize = 128;
/// The fixed allowance of the decode budget, in bytes (64 KiB).
pub const DECODE_ALLOWANCE: usize = 64 << 10;

/// Which limit was exceeded: a stable name per limit, the same on every platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Config size in bytes.
    ConfigBytes,
    /// JSON nesting depth of a config.
    JsonDepth,
    /// Bytes of one string in a config.
    StringBytes,
    /// Elements of one JSON array in a config.
    ArrayLen,
    /// Entries of one `in` / `nin` list.
    InList,
    /// Constraints after segment expansion.
    ExpandedConstraints,
    /// Weight of a `regex` pattern, or of a document's regexes together.
    RegexWeight,
    /// Slotted experiments in one domain.
    ExperimentsPerDomain,
    /// Facets in one context.
    Facets,
    /// Bytes of one facet name.
    FacetNameBytes,
    /// Bytes of one facet value.
    FacetValueBytes,
    /// Decoded size of a batch.
    DecodeExpansion,
}

impl Limit {
    /// The limit's stable name, e.g. `config_bytes` (the first column of the spec's table).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::ConfigBytes => "config_bytes",
            Limit::JsonDepth => "json_depth",
            Limit::StringBytes => "string_bytes",
            Limit::ArrayLen => "array_len",
            Limit::InList => "in_list",
            Limit::ExpandedConstraints => "expanded_constraints",
            Limit::RegexWeight => "regex_weight",
            Limit::ExperimentsPerDomain => "experiments_per_domain",
            Limit::Facets => "facets",
            Limit::FacetNameBytes => "facet_name_bytes",
            Limit::FacetValueBytes => "facet_value_bytes",
            Limit::DecodeExpansion => "decode_expansion",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit was exceeded: which one, its maximum, and what was found (at least
/// `found`: counting may stop at the first unit over the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitError {
    /// The limit.
    pub limit: Limit,
    /// Its maximum.
    pub max: u64,
    /// What the input had (or needed).
    pub found: u64,
}

impl LimitError {
    /// A limit error; sizes are converted without loss (`usize` is at most 64 bits).
    pub fn new(limit: Limit, max: usize, found: usize) -> LimitError {
        LimitError { limit, max: max as u64, found: found as u64 }
    }
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "limit `{}` exceeded: found {}, the maximum is {}", self.limit, self.found, self.max)
    }
}

impl std::error::Error for LimitError {}

/// The expanded-constraint budget of a config of `bytes` bytes.
pub(crate) fn expanded_constraints_budget(bytes: usize) -> usize {
    EXPANDED_CONSTRAINTS_BASE.saturating_add((bytes as f64 * EXPANDED_CONSTRAINTS_PER_BYTE) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_message() {
        let e = LimitError::new(Limit::ConfigBytes, 16, 17);
        assert_eq!(e.to_string(), "limit `config_bytes` exceeded: found 17, the maximum is 16");
        assert_eq!(serde_json::to_value(Limit::InList).unwrap(), "in_list");
        assert_eq!(expanded_constraints_budget(0), 16_384);
        assert_eq!(expanded_constraints_budget(400), 16_484);
    }
}
