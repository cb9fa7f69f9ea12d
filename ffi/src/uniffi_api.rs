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
use turnout_core::host::HostClient;
use turnout_core::{ErrorKind, Problem, Rejected};

// The stable kind of an error (core's `ErrorKind`, docs/sync.md section 8)
// crosses as its code (`INVALID_CONFIG`, `BATCH_CHECKSUM`, ...): a string in
// every facade, the same text as JavaScript's `TurnoutError.code` and the C
// ABI's `turnout_error_kind`.
uniffi::custom_type!(ErrorKind, String, {
    remote,
    lower: |kind| kind.code().to_string(),
    try_lift: |code| ErrorKind::from_code(&code).ok_or_else(|| uniffi::deps::anyhow::anyhow!("unknown error kind {code}")),
});

/// One problem found in a config: which document, which field, why.
#[uniffi::remote(Record)]
pub struct Problem {
    /// The document, e.g. `rollout "automatedMessageDelay"`, or `bundle`.
    pub document: String,
    /// A JSON path inside the document (empty for the document as a whole).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A document rejected inside an accepted bundle, and what happened to it.
#[uniffi::remote(Record)]
pub struct Rejected {
    /// The problems found in it.
    pub problems: Vec<Problem>,
    /// Its last good version stays in force.
    pub kept_last_good: bool,
    /// It said `"enabled": false`: the kill switch took effect anyway.
    pub kill_switch: bool,
}

/// The one public error of the UniFFI boundary: a variant per exception
/// class of the facades, each carrying the stable [`ErrorKind`] and the
/// structured detail (never to be recovered from the message). Every core
/// error maps into it in one place, [`From<core::ErrorDetail>`].
#[derive(Debug, Clone, PartialEq, uniffi::Error)]
pub enum TurnoutError {
    /// A config was rejected; the previous config stays in force.
    Config {
        /// [`ErrorKind::InvalidConfig`].
        kind: ErrorKind,
        /// Every problem, `; `-separated (`document: field: message`).
        message: String,
        /// Every problem (one `bundle` problem for a JSON syntax error).
        problems: Vec<Problem>,
    },
    /// Facets could not be built (not an object, a value of the wrong type).
    Facets {
        /// [`ErrorKind::InvalidFacets`].
        kind: ErrorKind,
        /// What was wrong.
        message: String,
    },
    /// Options (client or sync) or an argument were invalid.
    Options {
        /// [`ErrorKind::InvalidOptions`] or [`ErrorKind::InvalidArgument`].
        kind: ErrorKind,
        /// What was wrong.
        message: String,
    },
    /// A batch could not be encoded or decoded (corrupted bytes are rejected whole).
    Batch {
        /// [`ErrorKind::InvalidBatch`] (JSON form), [`ErrorKind::NotABatch`],
        /// [`ErrorKind::BatchVersion`], [`ErrorKind::BatchChecksum`] or
        /// [`ErrorKind::BatchMalformed`].
        kind: ErrorKind,
        /// What was wrong.
        message: String,
    },
    /// The call is not possible in this state (e.g. moving a clock that is not fixed).
    State {
        /// [`ErrorKind::NoFixedClock`], [`ErrorKind::Closed`], ...
        kind: ErrorKind,
        /// What was wrong.
        message: String,
    },
    /// A limit of docs/spec.md section 17 was exceeded (config size or depth,
    /// a batch's decoded size).
    Limit {
        /// [`ErrorKind::LimitExceeded`].
        kind: ErrorKind,
        /// What was exceeded, in words.
        message: String,
        /// The limit's name (`config_bytes`, `json_depth`, `decode_expansion`, ...).
        limit: String,
        /// What the input had (at least).
        found: u64,
        /// The limit's maximum.
        maximum: u64,
    },
}

impl TurnoutError {
    /// The stable kind.
    pub fn kind(&self) -> core::ErrorKind {
        match self {
            TurnoutError::Config { kind, .. }
            | TurnoutError::Facets { kind, .. }
            | TurnoutError::Options { kind, .. }
            | TurnoutError::Batch { kind, .. }
            | TurnoutError::State { kind, .. }
            | TurnoutError::Limit { kind, .. } => *kind,
        }
    }

    fn message(&self) -> &str {
        match self {
            TurnoutError::Config { message, .. }
            | TurnoutError::Facets { message, .. }
            | TurnoutError::Options { message, .. }
            | TurnoutError::Batch { message, .. }
            | TurnoutError::State { message, .. }
            | TurnoutError::Limit { message, .. } => message,
        }
    }
}

impl std::fmt::Display for TurnoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind().code(), self.message())
    }
}

impl std::error::Error for TurnoutError {}

impl<E: Into<core::ErrorDetail>> From<E> for TurnoutError {
    fn from(e: E) -> Self {
        use core::ErrorKind as K;
        let core::ErrorDetail { kind, message, problems, limit } = e.into();
        match (kind, limit) {
            (_, Some(l)) => {
                TurnoutError::Limit { kind, message, limit: l.limit.to_string(), found: l.found, maximum: l.max }
            }
            (K::InvalidConfig, None) => TurnoutError::Config { kind, message, problems },
            (K::InvalidFacets, None) => TurnoutError::Facets { kind, message },
            (K::InvalidOptions | K::InvalidArgument, None) => TurnoutError::Options { kind, message },
            (K::InvalidBatch | K::NotABatch | K::BatchVersion | K::BatchChecksum | K::BatchMalformed, None) => {
                TurnoutError::Batch { kind, message }
            }
            _ => TurnoutError::State { kind, message },
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

/// What a config update changed (the shape of core's [`core::UpdateReport`],
/// as in the C ABI's and the WebAssembly package's JSON).
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
    /// Documents rejected inside the accepted bundle (their last good version
    /// stays in force where there is one).
    pub rejected: Vec<Rejected>,
    /// Things that load but are almost certainly mistakes.
    pub warnings: Vec<Problem>,
}

impl From<core::UpdateReport> for UpdateReport {
    fn from(r: core::UpdateReport) -> Self {
        let core::UpdateReport { version, added, removed, changed, rejected, warnings } = r;
        UpdateReport { version, added, removed, changed, rejected, warnings }
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
    inner: HostClient,
}

#[uniffi::export]
impl Client {
    /// A client bootstrapped with `config` (a bundle or a single document, JSON
    /// bytes), so the first decision never waits for the network.
    /// `options_json` is the JSON of `turnout_core::host::HostOptions`
    /// (`{"service": "booking", "fixedTimeMs": ...}`; empty for defaults).
    #[uniffi::constructor]
    pub fn new(config: Vec<u8>, options_json: String) -> Result<Arc<Client>, TurnoutError> {
        let (inner, _) = HostClient::with_config(&config, &options_json, None)?;
        Ok(Arc::new(Client { inner }))
    }

    /// A client with no config yet (every variable resolves to fallback until
    /// [`Client::update_config`]).
    #[uniffi::constructor]
    pub fn empty(options_json: String) -> Result<Arc<Client>, TurnoutError> {
        Ok(Arc::new(Client { inner: HostClient::new(&options_json, None)? }))
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
        Ok(self.inner.set_time_ms(ms)?)
    }

    /// The client id written in batch headers.
    pub fn client_id(&self) -> String {
        self.inner.client_id()
    }

    /// Call in the child of a `fork()` (Python's `os.register_at_fork`): the
    /// inherited events and batches are the parent's to deliver, so they are
    /// forgotten, and the child's batches carry `client_id` (drawn fresh by the host).
    pub fn forked_child(&self, client_id: String) {
        self.inner.forked_child(&client_id);
    }

    /// A new handle of this client for the fast paths: the C ABI's
    /// `TurnoutClient *` as a number, sharing this client's engine, owned by
    /// the caller and freed with `turnout_client_free` (see [`crate::fast`]).
    pub fn fast_handle(&self) -> i64 {
        crate::fast::handle(crate::capi::TurnoutClient { client: self.inner.clone() })
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

    /// A new handle of this variable for the fast paths: the C ABI's
    /// `TurnoutVariable *` as a number, owned by the caller and freed with
    /// `turnout_variable_free` (see [`crate::fast`]).
    pub fn fast_handle(&self) -> i64 {
        crate::fast::handle(crate::capi::TurnoutVariable(self.inner.clone()))
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

    /// The generated object of a context fast handle (a context the Kotlin
    /// facade created through JNI, once one of its cold methods needs the
    /// generated API): a new `Context` with the handle's facets. `handle`
    /// must be 0 (an error) or a live `TurnoutContext *`, which stays the
    /// caller's.
    #[uniffi::constructor]
    pub fn from_fast_handle(handle: i64) -> Result<Arc<Context>, TurnoutError> {
        // SAFETY: per the contract above (a fast path's handle, kept alive by its owner).
        let ctx = unsafe { (handle as usize as *const crate::capi::TurnoutContext).as_ref() };
        let ctx = ctx.ok_or_else(|| core::ErrorDetail::new(ErrorKind::InvalidArgument, "a null context handle"))?;
        Ok(Arc::new(Context { inner: ctx.0.clone() }))
    }

    /// A new handle of this context for the fast paths: the C ABI's
    /// `TurnoutContext *` as a number, owned by the caller and freed with
    /// `turnout_context_free` (see [`crate::fast`]).
    pub fn fast_handle(&self) -> i64 {
        crate::fast::handle(crate::capi::TurnoutContext(self.inner.clone()))
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
