//! The client: an atomically swapped compiled config, prepared contexts and
//! variable handles.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Isolation, Rejected};
use crate::decision::Source;
use crate::decision::{Decision, ValueType};
use crate::error::{ConfigError, Problem};
use crate::eval::{self, Env, NoTrace, Resolved, Steps};
use crate::facets::Facets;
use crate::model::{CValue, Compiled};
use crate::tracking::event::{without, Event, EventData};
use crate::tracking::recorder::{track_fold_key, Recorder};
use crate::tracking::{Batch, DecisionEvents, TrackingOptions, TrackingStats};
use std::hash::BuildHasher;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The service this client runs in (prefixes tracked event names).
    pub service: String,
    /// What happens to a broken document inside an otherwise good bundle.
    pub isolation: Isolation,
    /// The clock used when a call gives no `ts` facet, and for event times.
    pub clock: Arc<dyn Clock>,
    /// Decision events, `track()`, queue limits and batch headers.
    pub tracking: TrackingOptions,
    /// The largest config accepted, in bytes (default
    /// [`DEFAULT_MAX_CONFIG_BYTES`](crate::limits::DEFAULT_MAX_CONFIG_BYTES), 16 MiB);
    /// a larger one is refused with [`ConfigError::Limit`] before it is parsed.
    pub max_config_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            service: String::new(),
            isolation: Isolation::default(),
            clock: Arc::new(SystemClock),
            tracking: TrackingOptions::default(),
            max_config_bytes: crate::limits::DEFAULT_MAX_CONFIG_BYTES,
        }
    }
}

/// What a config update changed, for hosts to notify on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpdateReport {
    /// The bundle's `version`, if it has one.
    pub version: Option<i64>,
    /// Variables that did not exist before (sorted).
    pub added: Vec<String>,
    /// Variables that no longer exist (sorted).
    pub removed: Vec<String>,
    /// Variables whose documents changed (sorted).
    pub changed: Vec<String>,
    /// Documents rejected inside an accepted bundle (per-document isolation).
    pub rejected: Vec<Rejected>,
    /// Things that load but are almost certainly mistakes (e.g. `>` against a
    /// non-numeric value, which is always false).
    pub warnings: Vec<Problem>,
}

impl UpdateReport {
    /// Whether any variable was added, removed or changed.
    pub fn has_changes(&self) -> bool {
        !(self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty())
    }
}

/// Snapshot generations are unique across all clients, so a [`Variable`]'s
/// cached index can never be mistaken for another client's.
static GENERATION: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Snapshot {
    pub generation: u64,
    pub compiled: Compiled,
}

pub(crate) struct Inner {
    pub snapshot: ArcSwap<Snapshot>,
    /// The generation of `snapshot`, stored after it (Release): a prepared
    /// [`Context`] compares it with the snapshot it pinned, which is far
    /// cheaper than an `ArcSwap` load (one plain atomic load against about
    /// 13 ns of debt bookkeeping, measured on this project's machine).
    current: AtomicU64,
    pub options: ClientOptions,
    update_lock: Mutex<()>,
    service: Arc<str>,
    recorder: Mutex<Recorder>,
    /// Whether a config was ever installed (see [`Client::has_config`]).
    loaded: AtomicBool,
}

/// The fold key of a decision, without hashing any string.
///
/// Inside one snapshot (`generation` is unique across all clients and never
/// reused) the compiled value's address identifies the variable and the exact
/// rule, default or choice that produced it, so (generation, facets, value
/// address, source, experiment, rule, choice) identifies the event. The key
/// only decides which events fold together in memory; it is never written
/// out. Repeats after a config update start a new fold (one more event per
/// unit and variable), which is harmless.
#[inline]
fn decision_fold_key(generation: u64, facets_fp: u64, value: &CValue, r: &Resolved<'_>) -> u64 {
    #[inline(always)]
    fn mix(h: u64, x: u64) -> u64 {
        let m = (h ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        m ^ (m >> 29)
    }
    let mut h = mix(facets_fp, generation);
    h = mix(h, value as *const CValue as usize as u64);
    h = mix(h, r.experiment.map_or(0, |e| Arc::as_ptr(e) as *const u8 as usize as u64));
    h = mix(
        h,
        (r.source as u64) << 56 ^ u64::from(r.rule.unwrap_or(u32::MAX)) << 24 ^ u64::from(r.choice.unwrap_or(u32::MAX)),
    );
    crate::hash::SplitMix64::new(h).next()
}

impl Inner {
    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a decision event if the tracking mode wants it; folds repeats.
    #[inline]
    fn record(&self, generation: u64, r: &Resolved<'_>, facets_fp: u64, facets: impl FnOnce() -> Facets) {
        let (Some(name), Some(value)) = (r.var, r.value) else {
            return;
        };
        let wanted = match self.options.tracking.decisions {
            DecisionEvents::Off => false,
            DecisionEvents::ExperimentsOnly => r.source == Source::Experiment,
            DecisionEvents::All => r.source != Source::Fallback,
        };
        if !wanted {
            return;
        }
        let key = decision_fold_key(generation, facets_fp, value, r);
        self.fold_or_push(
            key,
            || Arc::clone(name),
            || EventData::Decision {
                value: Arc::clone(&value.text),
                source: r.source,
                experiment: r.experiment.cloned(),
                rule: r.rule,
                choice: r.choice,
            },
            facets,
        );
    }

    fn track(&self, name: &str, value: f64, facets_fp: u64, facets: impl FnOnce() -> Facets) {
        // The key uses the bare name (the service is part of every key), so a
        // folded repeat allocates nothing.
        let key = track_fold_key(&self.service, name, facets_fp, value);
        let full = || -> Arc<str> {
            if self.service.is_empty() {
                Arc::from(name)
            } else {
                Arc::from(format!("{}.{name}", self.service))
            }
        };
        self.fold_or_push(key, full, || EventData::Track { value }, facets);
    }

    /// Folds into an identical pending event, or builds and queues a new one.
    fn fold_or_push(
        &self,
        key: u64,
        name: impl FnOnce() -> Arc<str>,
        data: impl FnOnce() -> EventData,
        facets: impl FnOnce() -> Facets,
    ) {
        let mut rec = self.recorder();
        if rec.fold(key) {
            return;
        }
        let event = Event {
            time_ms: self.options.clock.now_ms(),
            count: 1,
            service: Arc::clone(&self.service),
            name: name(),
            data: data(),
            facets: facets(),
        };
        rec.push(key, event);
    }

    /// The fingerprint of `f` as recorded (excluded facets left out), so both
    /// call paths fold the same events together.
    fn recorded_fingerprint(&self, f: &Facets) -> u64 {
        f.fingerprint_excluding(&self.options.tracking.exclude_facets)
    }

    fn recorded_facets(&self, f: &Facets) -> Facets {
        without(f, &self.options.tracking.exclude_facets)
    }
}

/// A feature-flag client. Cheap to clone (shared state); `Send + Sync`.
///
/// Readers never block: the compiled config is an immutable snapshot swapped
/// atomically by [`Client::update_config`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.snapshot.load();
        f.debug_struct("Client")
            .field("service", &self.inner.options.service)
            .field("version", &s.compiled.version)
            .field("variables", &s.compiled.vars.len())
            .finish()
    }
}

impl Client {
    /// A client with an empty config (every variable resolves to fallback).
    pub fn new(mut options: ClientOptions) -> Client {
        let snap = Snapshot { generation: GENERATION.fetch_add(1, Ordering::Relaxed), compiled: Compiled::default() };
        let current = AtomicU64::new(snap.generation);
        if options.tracking.client_id.is_empty() {
            // Hosts should pass their own id; this fallback is unique enough per process.
            let h = std::collections::hash_map::RandomState::new().hash_one(options.clock.now_ms());
            options.tracking.client_id = format!("{h:016x}");
        }
        let recorder = Mutex::new(Recorder::new(options.tracking.clone()));
        let service = Arc::from(options.service.as_str());
        let inner = Inner {
            snapshot: ArcSwap::from_pointee(snap),
            current,
            options,
            update_lock: Mutex::new(()),
            service,
            recorder,
            loaded: AtomicBool::new(false),
        };
        Client { inner: Arc::new(inner) }
    }

    /// A client bootstrapped with a config, so the first decision never waits.
    pub fn with_config(config: &[u8], options: ClientOptions) -> Result<(Client, UpdateReport), ConfigError> {
        let c = Client::new(options);
        let report = c.update_config(config)?;
        Ok((c, report))
    }

    /// Validates, compiles and atomically installs a bundle.
    ///
    /// On error the previous config stays in force, untouched. With
    /// per-document isolation, a broken document inside a good bundle keeps its
    /// last good version and is listed in [`UpdateReport::rejected`].
    pub fn update_config(&self, config: &[u8]) -> Result<UpdateReport, ConfigError> {
        let root = config::parse_json(config, self.inner.options.max_config_bytes)?;
        // One updater at a time, so "previous" is well defined; readers never wait.
        let _guard = self.inner.update_lock.lock().unwrap_or_else(|p| p.into_inner());
        let prev = self.inner.snapshot.load_full();
        let outcome = config::compile(&root, config.len(), &prev.compiled, self.inner.options.isolation)?;
        let report = diff(&prev.compiled, &outcome.compiled, outcome.rejected, outcome.warnings);
        let snap = Snapshot { generation: GENERATION.fetch_add(1, Ordering::Relaxed), compiled: outcome.compiled };
        let generation = snap.generation;
        self.inner.snapshot.store(Arc::new(snap));
        self.inner.current.store(generation, Ordering::Release);
        self.inner.loaded.store(true, Ordering::Release);
        Ok(report)
    }

    /// Whether a config was ever installed (a bootstrap or an update): the
    /// host protocol's "ready" ([`crate::sync`]).
    pub fn has_config(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// Checks a bundle without installing it: every problem, or the report an
    /// update would give against the current config.
    pub fn validate(&self, config: &[u8]) -> Result<UpdateReport, ConfigError> {
        let root = config::parse_json(config, self.inner.options.max_config_bytes)?;
        let prev = self.inner.snapshot.load_full();
        let outcome = config::compile(&root, config.len(), &prev.compiled, Isolation::Strict)?;
        Ok(diff(&prev.compiled, &outcome.compiled, outcome.rejected, outcome.warnings))
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The `version` of the bundle in force.
    pub fn config_version(&self) -> Option<i64> {
        self.inner.snapshot.load().compiled.version
    }

    /// Names of every variable the config defines, sorted.
    pub fn variable_names(&self) -> Vec<String> {
        let s = self.inner.snapshot.load();
        let mut v: Vec<String> = s.compiled.vars.iter().map(|p| p.name.to_string()).collect();
        v.sort();
        v
    }

    /// A handle for a variable, resolved once per config version.
    pub fn variable(&self, name: &str) -> Variable {
        Variable { name: Arc::from(name), cache: AtomicU64::new(0) }
    }

    /// A prepared context for one unit or request.
    pub fn context(&self, facets: Facets) -> Context {
        let recorded = without(&facets, &self.inner.options.tracking.exclude_facets);
        let pinned = self.inner.snapshot.load_full();
        Context { inner: Arc::clone(&self.inner), facets, recorded, pinned }
    }

    /// One decision (the convenient path; see [`Context`] for the prepared one).
    /// Records a decision event (see [`TrackingOptions`]).
    pub fn get_variable(&self, name: &str, facets: &Facets) -> Decision {
        let snap = self.inner.snapshot.load();
        let env = Env::new(facets, &*self.inner.options.clock);
        let var = snap.compiled.var_index(name);
        let r = eval::resolve(&snap.compiled, var, &env, &mut NoTrace);
        self.inner.record(snap.generation, &r, self.inner.recorded_fingerprint(facets), || {
            self.inner.recorded_facets(facets)
        });
        r.to_decision(name)
    }

    /// Records a metric: `name` is prefixed with the service as `service.name`.
    pub fn track(&self, name: &str, value: f64, facets: &Facets) {
        self.inner.track(name, value, self.inner.recorded_fingerprint(facets), || self.inner.recorded_facets(facets));
    }

    /// The next batch of events to upload, at most `max_events` events (a
    /// nacked batch comes back first, with the same seq and bytes). `None`
    /// when nothing is waiting.
    pub fn take_batch(&self, max_events: usize) -> Option<Batch> {
        let now = self.inner.options.clock.now_ms();
        self.inner.recorder().take_batch(max_events, now)
    }

    /// Batch `seq` was delivered: forget it. Returns `false` for an unknown seq.
    pub fn ack(&self, seq: u64) -> bool {
        self.inner.recorder().ack(seq)
    }

    /// Batch `seq` was not delivered: it is handed out again first. Returns `false` for an unknown seq.
    pub fn nack(&self, seq: u64) -> bool {
        self.inner.recorder().nack(seq)
    }

    /// Queue counters (recorded, folded, dropped, queued, in flight).
    pub fn tracking_stats(&self) -> TrackingStats {
        self.inner.recorder().stats()
    }

    /// The client id written in batch headers (with `seq`, the collector's
    /// de-duplication key).
    pub fn client_id(&self) -> String {
        self.inner.recorder().opts.client_id.clone()
    }

    /// Call in the child of a `fork()`: the events, batches and counters the
    /// child inherited are the parent's (the parent delivers them), so they
    /// are forgotten, and the child's own batches carry `client_id` (which the
    /// host draws fresh: a copy of the parent's id would make the collector
    /// drop one process's batches as duplicates of the other's). The config
    /// and every handle stay as they are.
    pub fn forked_child(&self, client_id: &str) {
        let mut rec = self.inner.recorder();
        let mut opts = rec.opts.clone();
        opts.client_id = client_id.to_owned();
        *rec = Recorder::new(opts);
    }

    /// Every variable assigned by the experiments named `name`, or in domain
    /// `name`, that apply to these facets (first experiment wins per variable).
    pub fn get_variables(&self, name: &str, facets: &Facets) -> Vec<Decision> {
        let snap = self.inner.snapshot.load();
        let env = Env::new(facets, &*self.inner.options.clock);
        let resolved = eval::resolve_experiments(&snap.compiled, name, &env, &mut NoTrace);
        resolved
            .into_iter()
            .map(|(variable, r)| {
                self.inner.record(snap.generation, &r, self.inner.recorded_fingerprint(facets), || {
                    self.inner.recorded_facets(facets)
                });
                r.to_decision(variable)
            })
            .collect()
    }

    /// The decision plus a step-by-step account of how it was reached.
    pub fn explain(&self, name: &str, facets: &Facets) -> Explanation {
        let snap = self.inner.snapshot.load();
        let env = Env::new(facets, &*self.inner.options.clock);
        let mut steps = Steps::default();
        let var = snap.compiled.var_index(name);
        let d = eval::resolve(&snap.compiled, var, &env, &mut steps).to_decision(name);
        Explanation { decision: d, steps: steps.0 }
    }
}

/// A decision with the steps that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// Human-readable steps, in evaluation order.
    pub steps: Vec<String>,
}

fn diff(old: &Compiled, new: &Compiled, rejected: Vec<Rejected>, warnings: Vec<Problem>) -> UpdateReport {
    let mut r = UpdateReport { version: new.version, rejected, warnings, ..Default::default() };
    for plan in &new.vars {
        match old.var_index(&plan.name).and_then(|i| old.vars.get(i as usize)) {
            None => r.added.push(plan.name.to_string()),
            Some(op) => {
                if old.signature(op) != new.signature(plan) {
                    r.changed.push(plan.name.to_string());
                }
            }
        }
    }
    for plan in &old.vars {
        if new.var_index(&plan.name).is_none() {
            r.removed.push(plan.name.to_string());
        }
    }
    r.added.sort();
    r.removed.sort();
    r.changed.sort();
    r
}

/// A variable name resolved once per config version; survives updates.
///
/// Use it with any [`Context`]: the index into the compiled config is cached
/// and re-resolved only when the config changes.
#[derive(Debug)]
pub struct Variable {
    name: Arc<str>,
    /// `generation << 24 | slot` (generation truncated to 40 bits, about a
    /// trillion updates); slot 0 = not cached, `NOT_FOUND` = not in that config.
    cache: AtomicU64,
}

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const NOT_FOUND: u64 = SLOT_MASK;

impl Clone for Variable {
    fn clone(&self) -> Self {
        Variable { name: Arc::clone(&self.name), cache: AtomicU64::new(self.cache.load(Ordering::Relaxed)) }
    }
}

impl Variable {
    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn index(&self, snap: &Snapshot) -> Option<u32> {
        let gen = snap.generation & ((1 << (64 - SLOT_BITS)) - 1);
        let c = self.cache.load(Ordering::Relaxed);
        if c >> SLOT_BITS == gen && c & SLOT_MASK != 0 {
            let slot = c & SLOT_MASK;
            return if slot == NOT_FOUND { None } else { Some((slot - 1) as u32) };
        }
        let idx = snap.compiled.var_index(&self.name);
        let slot = match idx {
            Some(i) if u64::from(i) + 1 < NOT_FOUND => u64::from(i) + 1,
            Some(_) => return idx, // beyond 16M variables: not cached
            None => NOT_FOUND,
        };
        self.cache.store(gen << SLOT_BITS | slot, Ordering::Relaxed);
        idx
    }
}

/// The facets of one unit or request, prepared once, bound to a client.
///
/// The hot calls ([`Context::int64`] and friends) take a [`Variable`] handle
/// and allocate nothing.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
    facets: Facets,
    /// The facets as events record them (excluded names removed), built once.
    recorded: Facets,
    /// The snapshot in force when the context was made. While it is still the
    /// current one, decisions read it directly; after an update they load the
    /// new one (an `ArcSwap` load per call, about 13 ns more). A context that
    /// outlives updates keeps this old snapshot's memory until it is dropped.
    pinned: Arc<Snapshot>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("facets", &self.facets).finish()
    }
}

impl Context {
    /// The facets.
    pub fn facets(&self) -> &Facets {
        &self.facets
    }

    #[inline]
    fn with<R>(&self, var: &Variable, f: impl FnOnce(Resolved<'_>) -> R) -> R {
        if self.inner.current.load(Ordering::Acquire) == self.pinned.generation {
            self.with_snapshot(&self.pinned, var, f)
        } else {
            self.with_snapshot(&self.inner.snapshot.load(), var, f)
        }
    }

    #[inline(always)]
    fn with_snapshot<R>(&self, snap: &Snapshot, var: &Variable, f: impl FnOnce(Resolved<'_>) -> R) -> R {
        let env = Env::new(&self.facets, &*self.inner.options.clock);
        let idx = var.index(snap);
        let r = eval::resolve(&snap.compiled, idx, &env, &mut NoTrace);
        self.inner.record(snap.generation, &r, self.recorded.fingerprint(), || self.recorded.clone());
        f(r)
    }

    /// Records a metric with this context's facets (see [`Client::track`]).
    pub fn track(&self, name: &str, value: f64) {
        self.inner.track(name, value, self.recorded.fingerprint(), || self.recorded.clone());
    }

    #[inline]
    fn typed<R>(&self, var: &Variable, default: R, get: impl FnOnce(&CValue) -> Option<R>) -> R {
        self.with(var, |r| r.value.and_then(get).unwrap_or(default))
    }

    /// The value as `i64`, or `default` (fallback or wrong type).
    pub fn int64(&self, var: &Variable, default: i64) -> i64 {
        self.typed(var, default, |v| v.int)
    }

    /// The value as `f64`, or `default`.
    pub fn float64(&self, var: &Variable, default: f64) -> f64 {
        self.typed(var, default, |v| v.float)
    }

    /// The value as `bool`, or `default`.
    pub fn bool(&self, var: &Variable, default: bool) -> bool {
        self.typed(var, default, |v| v.boolean)
    }

    /// The value as a string, or `default`.
    pub fn string(&self, var: &Variable, default: &str) -> String {
        self.with(var, |r| r.value.and_then(|v| v.string.as_deref()).unwrap_or(default).to_string())
    }

    /// The value as JSON, or `None` for fallback.
    pub fn json(&self, var: &Variable) -> Option<serde_json::Value> {
        self.with(var, |r| r.value.map(|v| v.json.clone()))
    }

    /// The full decision.
    pub fn decision(&self, var: &Variable) -> Decision {
        self.with(var, |r| r.to_decision(&var.name))
    }

    /// The full decision, checked against a type (see [`Decision::checked`]).
    pub fn decision_as(&self, var: &Variable, t: ValueType) -> Decision {
        self.decision(var).checked(t)
    }
}
