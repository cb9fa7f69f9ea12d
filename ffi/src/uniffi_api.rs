//! UniFFI exports for Kotlin, Swift and Python (proc-macros, library mode).
//!
//! A thin shell over [`turnout_core`]: types are converted, errors are mapped
//! in one place ([`TurnoutError::from`]), and nothing is decided here.
//!
//! The shape follows the cost of a crossing. A call that carries a string or
//! a map pays for a `RustBuffer` (tens of microseconds through JNA), so the
//! hot path carries only object handles and numbers:
//!
//! ```text
//! let v   = client.variable("automatedMessageDelay")   // once
//! let ctx = client.context({"city": Int(10), "pax": Int(7)})   // once per unit
//! ctx.int64(v, 30)                                      // hot: handles + numbers
//! ```
//!
//! Everything else (`get_variable`, `string`, `json`, `decision`, batches)
//! carries buffers and is meant for the colder paths.

use std::collections::HashMap;
use std::sync::Arc;

use turnout_core as core;
use turnout_core::host::HostOptions;

/// The one public error of the UniFFI boundary. Every core error maps into
/// it in [`From`] impls below; no other place builds it.
#[derive(Debug, Clone, PartialEq, uniffi::Error)]
pub enum TurnoutError {
    /// A config was rejected; the previous config stays in force.
    Config {
        /// Every problem, one per line (`document: field: message`).
        message: String,
    },
    /// Facets could not be built (not an object, a value of the wrong type).
    Facets {
        /// What was wrong.
        message: String,
    },
    /// Client options were invalid.
    Options {
        /// What was wrong.
        message: String,
    },
    /// A batch could not be encoded or decoded (corrupted bytes are rejected whole).
    Batch {
        /// What was wrong.
        message: String,
    },
    /// The call is not possible in this state (e.g. moving a clock that is not fixed).
    State {
        /// What was wrong.
        message: String,
    },
    /// A limit of docs/spec.md section 17 was exceeded (config size or depth,
    /// a facet count or size, a batch's decoded size); the message names it.
    Limit {
        /// What was exceeded.
        message: String,
    },
}

impl std::fmt::Display for TurnoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, message) = match self {
            TurnoutError::Config { message } => ("config", message),
            TurnoutError::Facets { message } => ("facets", message),
            TurnoutError::Options { message } => ("options", message),
            TurnoutError::Batch { message } => ("batch", message),
            TurnoutError::State { message } => ("state", message),
            TurnoutError::Limit { message } => ("limit", message),
        };
        write!(f, "{kind}: {message}")
    }
}

impl std::error::Error for TurnoutError {}

impl From<core::ConfigError> for TurnoutError {
    fn from(e: core::ConfigError) -> Self {
        match e {
            core::ConfigError::Limit(_) => TurnoutError::Limit { message: e.to_string() },
            _ => TurnoutError::Config { message: e.to_string() },
        }
    }
}

impl From<core::FacetError> for TurnoutError {
    fn from(e: core::FacetError) -> Self {
        match e {
            core::FacetError::Limit(_) => TurnoutError::Limit { message: e.to_string() },
            _ => TurnoutError::Facets { message: e.to_string() },
        }
    }
}

impl From<core::HostError> for TurnoutError {
    fn from(e: core::HostError) -> Self {
        match e {
            core::HostError::Options(m) => TurnoutError::Options { message: m },
            core::HostError::Decode(core::DecodeError::Limit(_)) => TurnoutError::Limit { message: e.to_string() },
            other => TurnoutError::Batch { message: other.to_string() },
        }
    }
}

/// A facet value: the four kinds facets hold. Integers are 64-bit end to end
/// (ids above 2^53 bucket exactly as everywhere else).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FacetValue {
    /// A string.
    Str {
        /// The value.
        value: String,
    },
    /// A 64-bit signed integer.
    Int {
        /// The value.
        value: i64,
    },
    /// A double; integral doubles bucket like the integer.
    Float {
        /// The value.
        value: f64,
    },
    /// A boolean.
    Bool {
        /// The value.
        value: bool,
    },
}

/// The facets of a map; a map over a facet limit gives a set marked as such
/// (decisions on it are the default with `INVALID_CONTEXT`, as on every platform).
fn to_facets(map: HashMap<String, FacetValue>) -> core::Facets {
    let pairs = map.iter().map(|(k, v)| {
        let v = match v {
            FacetValue::Str { value } => core::FacetValue::Str(value.clone()),
            FacetValue::Int { value } => core::FacetValue::Int(*value),
            FacetValue::Float { value } => core::FacetValue::from(*value),
            FacetValue::Bool { value } => core::FacetValue::Bool(*value),
        };
        (k.as_str(), v)
    });
    match core::host::facets_from_pairs(pairs) {
        Ok(f) => f,
        Err(core::FacetError::Limit(l)) => core::Facets::over_limit(l),
        // Typed values: no other facet error can occur.
        Err(_) => core::Facets::new(),
    }
}

/// One decision, as every binding reports it (the JSON line of `turnout eval`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Decision {
    /// The variable's name.
    pub variable: String,
    /// The value as compact JSON text; `None` when the source is `fallback`.
    pub value_json: Option<String>,
    /// The matched rule's `string` label, if any.
    pub label: Option<String>,
    /// `experiment`, `rollout`, `default` or `fallback`.
    pub source: String,
    /// The experiment that assigned the value (source `experiment`).
    pub experiment: Option<String>,
    /// The matched rule's index (source `rollout`).
    pub rule: Option<u32>,
    /// The assigned choice's index (source `experiment`).
    pub choice: Option<u32>,
    /// `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED` or `ERROR`.
    pub reason: String,
    /// With reason `ERROR`: `FLAG_NOT_FOUND`, `TYPE_MISMATCH` or `PARSE_ERROR`.
    pub error_code: Option<String>,
}

impl From<core::Decision> for Decision {
    fn from(d: core::Decision) -> Self {
        Decision {
            value_json: d.value.as_ref().map(|v| v.to_string()),
            variable: d.variable,
            label: d.label,
            source: d.source.as_str().to_string(),
            experiment: d.experiment,
            rule: d.rule,
            choice: d.choice,
            reason: d.reason.as_str().to_string(),
            error_code: d.error.map(|e| e.as_str().to_string()),
        }
    }
}

/// What a config update changed.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UpdateReport {
    /// The bundle's `version`, if it has one.
    pub version: Option<i64>,
    /// Variables that did not exist before (sorted).
    pub added: Vec<String>,
    /// Variables that no longer exist (sorted).
    pub removed: Vec<String>,
    /// Variables whose documents changed (sorted).
    pub changed: Vec<String>,
    /// Documents rejected inside the accepted bundle, one line each (their
    /// last good version stays in force where there is one).
    pub rejected: Vec<String>,
    /// Things that load but are almost certainly mistakes.
    pub warnings: Vec<String>,
}

impl From<core::UpdateReport> for UpdateReport {
    fn from(r: core::UpdateReport) -> Self {
        let rejected = r
            .rejected
            .iter()
            .map(|j| {
                let problems: Vec<String> = j.problems.iter().map(ToString::to_string).collect();
                let kept = if j.kill_switch {
                    " (kill switch honoured)"
                } else if j.kept_last_good {
                    " (last good version kept)"
                } else {
                    ""
                };
                format!("{}{kept}", problems.join("; "))
            })
            .collect();
        UpdateReport {
            version: r.version,
            added: r.added,
            removed: r.removed,
            changed: r.changed,
            rejected,
            warnings: r.warnings.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A batch of events to upload; then `ack(seq)` or `nack(seq)`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Batch {
    /// Sequence number (with the client id, the collector's de-duplication key).
    pub seq: u64,
    /// The encoded batch (docs/wire-format.md), `application/octet-stream`.
    pub bytes: Vec<u8>,
    /// How many events (folded records) it holds.
    pub events: u64,
}

/// Queue counters; every loss is counted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TrackingStats {
    /// Occurrences recorded (decisions and tracks, folded repeats included).
    pub recorded: u64,
    /// Occurrences folded into an earlier identical event.
    pub folded: u64,
    /// Occurrences dropped (queue full, unacked batches evicted).
    pub dropped: u64,
    /// Occurrences queued unfolded because the fold table was full.
    pub fold_overflow: u64,
    /// Events waiting for a batch.
    pub queued: u64,
    /// Batches taken and not yet acked or nacked.
    pub in_flight: u64,
    /// Nacked batches waiting to be taken again.
    pub retrying: u64,
}

/// A decision with the steps that led to it (`turnout eval --explain`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// Human-readable steps, in evaluation order.
    pub steps: Vec<String>,
}

/// A turnout client: a compiled config swapped atomically on update, and the
/// event queue. Thread-safe; share one per process and service.
#[derive(Debug, uniffi::Object)]
pub struct Client {
    inner: core::Client,
    fixed_clock: Option<Arc<core::FixedClock>>,
}

#[uniffi::export]
impl Client {
    /// A client bootstrapped with `config` (a bundle or a single document, JSON
    /// bytes), so the first decision never waits for the network.
    /// `options_json` is the JSON of `turnout_core::host::HostOptions`
    /// (`{"service": "booking", "fixedTimeMs": ...}`; empty for defaults).
    #[uniffi::constructor]
    pub fn new(config: Vec<u8>, options_json: String) -> Result<Arc<Client>, TurnoutError> {
        let built = HostOptions::from_json(&options_json)?.build(None)?;
        let (inner, _) = core::Client::with_config(&config, built.options)?;
        Ok(Arc::new(Client { inner, fixed_clock: built.fixed_clock }))
    }

    /// A client with no config yet (every variable resolves to fallback until
    /// [`Client::update_config`]).
    #[uniffi::constructor]
    pub fn empty(options_json: String) -> Result<Arc<Client>, TurnoutError> {
        let built = HostOptions::from_json(&options_json)?.build(None)?;
        Ok(Arc::new(Client { inner: core::Client::new(built.options), fixed_clock: built.fixed_clock }))
    }

    /// Validates, compiles and atomically installs a config. On error the
    /// previous config stays in force, untouched.
    pub fn update_config(&self, config: Vec<u8>) -> Result<UpdateReport, TurnoutError> {
        Ok(self.inner.update_config(&config)?.into())
    }

    /// Checks a config without installing it.
    pub fn validate(&self, config: Vec<u8>) -> Result<UpdateReport, TurnoutError> {
        Ok(self.inner.validate(&config)?.into())
    }

    /// The `version` of the bundle in force.
    pub fn config_version(&self) -> Option<i64> {
        self.inner.config_version()
    }

    /// Names of every variable the config defines, sorted.
    pub fn variable_names(&self) -> Vec<String> {
        self.inner.variable_names()
    }

    /// A handle for a variable (resolved once per config version; survives updates).
    pub fn variable(&self, name: String) -> Arc<Variable> {
        Arc::new(Variable { inner: self.inner.variable(&name) })
    }

    /// A prepared context for one unit or request.
    pub fn context(&self, facets: HashMap<String, FacetValue>) -> Arc<Context> {
        Arc::new(Context { inner: self.inner.context(to_facets(facets)) })
    }

    /// A prepared context from facets as JSON text (`{"pax": 7, "drv":
    /// {"$int64": "9007199254740993"}}`, the conformance vectors' form).
    pub fn context_json(&self, facets_json: String) -> Result<Arc<Context>, TurnoutError> {
        let facets = core::Facets::from_json_str(&facets_json)?;
        Ok(Arc::new(Context { inner: self.inner.context(facets) }))
    }

    /// One decision (the convenient path; records a decision event).
    pub fn get_variable(&self, name: String, facets: HashMap<String, FacetValue>) -> Decision {
        self.inner.get_variable(&name, &to_facets(facets)).into()
    }

    /// Every variable assigned by the experiment, or by the experiments of the
    /// domain, called `name`.
    pub fn get_variables(&self, name: String, facets: HashMap<String, FacetValue>) -> Vec<Decision> {
        self.inner.get_variables(&name, &to_facets(facets)).into_iter().map(Decision::from).collect()
    }

    /// The decision with the steps that led to it.
    pub fn explain(&self, name: String, facets: HashMap<String, FacetValue>) -> Explanation {
        let e = self.inner.explain(&name, &to_facets(facets));
        Explanation { decision: e.decision.into(), steps: e.steps }
    }

    /// Records a metric `service.name` with `value` and the facets.
    pub fn track(&self, name: String, value: f64, facets: HashMap<String, FacetValue>) {
        self.inner.track(&name, value, &to_facets(facets));
    }

    /// The next batch of at most `max_events` events, or `None` when nothing waits.
    pub fn take_batch(&self, max_events: u32) -> Option<Batch> {
        self.inner.take_batch(max_events as usize).map(|b| Batch {
            seq: b.seq,
            bytes: b.bytes,
            events: b.events as u64,
        })
    }

    /// The batch `seq` was delivered: forget it. `false` if it is unknown.
    pub fn ack(&self, seq: u64) -> bool {
        self.inner.ack(seq)
    }

    /// The batch `seq` failed: it goes back to the front, to be taken again
    /// with the same bytes. `false` if it is unknown.
    pub fn nack(&self, seq: u64) -> bool {
        self.inner.nack(seq)
    }

    /// Queue counters.
    pub fn tracking_stats(&self) -> TrackingStats {
        let s = self.inner.tracking_stats();
        TrackingStats {
            recorded: s.recorded,
            folded: s.folded,
            dropped: s.dropped,
            fold_overflow: s.fold_overflow,
            queued: s.queued as u64,
            in_flight: s.in_flight as u64,
            retrying: s.retrying as u64,
        }
    }

    /// Moves the fixed clock (clients built with `fixedTimeMs` only).
    pub fn set_time_ms(&self, ms: i64) -> Result<(), TurnoutError> {
        match &self.fixed_clock {
            Some(c) => {
                c.set(ms);
                Ok(())
            }
            None => Err(TurnoutError::State {
                message: "set_time_ms needs a client built with the fixedTimeMs option".into(),
            }),
        }
    }
}

impl Client {
    /// The core client (for the plain-C fast paths in [`crate::fast`]).
    pub(crate) fn core(&self) -> &core::Client {
        &self.inner
    }
}

/// A variable handle: resolve the name once, use it with any context.
#[derive(Debug, uniffi::Object)]
pub struct Variable {
    inner: core::Variable,
}

#[uniffi::export]
impl Variable {
    /// The variable's name.
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }
}

/// The facets of one unit or request, prepared once. The typed getters are
/// the hot path: they take only handles and numbers.
#[derive(Debug, uniffi::Object)]
pub struct Context {
    inner: core::Context,
}

#[uniffi::export]
impl Context {
    /// The value as a 64-bit integer, or `default_value` (fallback or wrong type).
    /// (Not `default`: UniFFI copies parameter names into the C header the Swift package
    /// imports, where `default` is a keyword.)
    pub fn int64(&self, variable: &Variable, default_value: i64) -> i64 {
        self.inner.int64(&variable.inner, default_value)
    }

    /// The value as a double, or `default_value`.
    pub fn float64(&self, variable: &Variable, default_value: f64) -> f64 {
        self.inner.float64(&variable.inner, default_value)
    }

    /// The value as a boolean, or `default_value`.
    pub fn bool(&self, variable: &Variable, default_value: bool) -> bool {
        self.inner.bool(&variable.inner, default_value)
    }

    /// The value as a string, or `default_value`.
    pub fn string(&self, variable: &Variable, default_value: String) -> String {
        self.inner.string(&variable.inner, &default_value)
    }

    /// The value as compact JSON text, or `None` (fallback).
    pub fn json(&self, variable: &Variable) -> Option<String> {
        self.inner.json(&variable.inner).map(|v| v.to_string())
    }

    /// The full decision.
    pub fn decision(&self, variable: &Variable) -> Decision {
        self.inner.decision(&variable.inner).into()
    }

    /// Records a metric with this context's facets.
    pub fn track(&self, name: String, value: f64) {
        self.inner.track(&name, value);
    }

    /// The facets as JSON text (integers as exact JSON numbers).
    pub fn facets_json(&self) -> String {
        self.inner.facets().to_json().to_string()
    }
}

/// Encodes `{"header": {...}, "events": [...]}` (the batch vectors' JSON) into wire bytes.
#[uniffi::export]
pub fn encode_batch_json(json: String) -> Result<Vec<u8>, TurnoutError> {
    Ok(core::host::encode_batch_json(&json)?)
}

/// Decodes wire bytes into `{"header": {...}, "events": [...]}` JSON text.
#[uniffi::export]
pub fn decode_batch_json(bytes: Vec<u8>) -> Result<String, TurnoutError> {
    Ok(core::host::decode_batch_json(&bytes)?)
}

/// The evaluation contract version (docs/spec.md) this library implements.
#[uniffi::export]
pub fn spec_version() -> u32 {
    core::SPEC_VERSION
}

/// This library's version.
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
