//! Criterion benchmarks of tracking (targets and results: docs/benchmarks.md, "Tracking"): batch size, encode
//! and decode cost of the wire format v1 against serde_json and protobuf
//! (prost), and the cost that recording adds to a decision.
//!
//! Run (short settings, as recorded in docs/benchmarks.md):
//!
//! ```text
//! cargo bench -p turnout-core --bench tracking -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Before criterion starts, the bench prints a size table (bytes per event for
//! batches of 100 and 1,000; not timed), and after the run a summary of the
//! medians read back from `target/criterion/.../new/estimates.json`.
//!
//! # The event stream
//!
//! [`Stream`] is deterministic (SplitMix64, fixed seed) and builds
//! `turnout_core::Event` values directly, sharing `Arc`s exactly the way a
//! `Client` does: one `Arc<str>` per service, variable name, decision value
//! text and experiment (the client's service and the compiled config's
//! strings), one shared `Facets` per session (a prepared `Context`), and a fresh
//! `Arc<str>` for every track name (`Client::track` formats `service.name`
//! on each call). Building the events directly (rather than recording them
//! through a `Client`) keeps the stream's mix under control and lets one
//! batch carry the ~5 services the issue asks for, which a single client (one
//! service) cannot produce; the recording path itself is measured separately
//! through a real `Client` (group `record`).
//!
//! - 40 concurrent sessions, each 4..=12 events long (mean 8); the next event
//!   comes from a random live session, 0..=100 ms after the previous one; a
//!   finished session is replaced by a new one, so any length can be drawn.
//! - A session has one service (5 names) and one facet set by service:
//!   `pax`/`drv` ids of 7..=12 digits (10% of sessions reuse a recent
//!   passenger), `city` and `svc` small ints, `session` a lowercase canonical
//!   UUID, `booking` codes like `ADR-123-2-001`.
//! - 85% decision events over 50 variables (10 per service, a session draws
//!   from its service's 10 and the next service's 10, without repeating a
//!   variable): 15 variables belong to 10 experiments (75% `experiment` with a
//!   choice index, else `default`), the other 35 are rollouts (60% `rollout`
//!   with a rule index, else `default`); values are small JSON (`60`,
//!   `"blue"`, `true`). 15% of decisions are folded repeats (count 2..=4).
//! - 15% track events: `service.metric` with fares (2-decimal floats),
//!   distances (3-decimal floats), ETAs and ratings (integral values).
//!
//! # Benchmark IDs
//!
//! - `batch/{turnout_encode,turnout_decode,json_encode,prost_encode,
//!   prost_build_encode,prost_decode}/{100,1000}`: per batch, throughput in
//!   events. `prost_encode` serialises prebuilt messages; `prost_build_encode`
//!   includes building them from the events (the fair comparison with
//!   `turnout_encode`, which starts from the same events). `json_encode`
//!   serialises borrowed views of the events (same fields and values as
//!   `Event::to_json`, the `turnout decode` form) with the batch header.
//! - `record/{get_variable,prepared}/{repeated,distinct}/{all,off}`: one
//!   decision of the seed rollout `automatedMessageDelay` with tracking
//!   `DecisionEvents::All` vs `Off`, on the same config and facets.
//!   `repeated`: one unit again and again (every recorded event folds).
//!   `distinct`: a pool of 100,000 prebuilt facet sets (contexts) cycled
//!   through, so every decision queues a new event; the timed loop runs in
//!   chunks of 1,000 decisions and the host's work (take_batch + ack) happens
//!   between chunks, outside the timing.
//! - `record/{get_variable,prepared}/distinct_hot/{all,off}`: as `distinct`
//!   with the pool's first 1,000 units (cache-resident: a server's facets for
//!   the request at hand are hot; the 100,000-unit pool is not). Each chunk
//!   still sees 1,000 different units, so every decision queues a new event.
//! - `record/prepared/distinct_systemclock/{all,off}`: as `distinct` with the
//!   real `SystemClock` (a new event reads the clock; FixedClock hides that).
//! - `record/prepared/distinct_undrained/all`: no host draining at all (an
//!   offline device): the queue stays full at its default 10,000 and every
//!   decision drops the oldest event.

use std::collections::{BTreeMap, HashSet};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};
use turnout_core::{
    decode_batch, encode_batch, BatchHeader, Client, ClientOptions, Clock, DecisionEvents, Event, EventData,
    FacetValue, Facets, FixedClock, Source, SplitMix64, SystemClock, TrackingOptions,
};

// ---- the event stream -------------------------------------------------------

const SEED: u64 = 0x7475_726e_6f75_7421; // "turnout!"
/// 2024-06-01T00:00:00Z.
const START_MS: i64 = 1_717_200_000_000;
const CONCURRENT_SESSIONS: usize = 40;

struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    fn u64(&mut self) -> u64 {
        self.0.next()
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.u64() >> 11) as f64) * (1.0 / 9_007_199_254_740_992.0) < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// An id of 7..=12 decimal digits.
    fn id(&mut self) -> i64 {
        let digits = 7 + self.below(6) as u32;
        let lo = 10i64.pow(digits - 1);
        lo + self.below(9 * lo as u64) as i64
    }
    /// A random (version 4) UUID, lowercase canonical.
    fn uuid(&mut self) -> String {
        let a = (self.u64() & !0xF000) | 0x4000;
        let b = (self.u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
    /// A booking code like `ADR-123-2-001`.
    fn booking(&mut self) -> String {
        let prefix = *self.pick(&["ADR", "IOS", "WEB", "GFD"]);
        format!("{prefix}-{:03}-{}-{:03}", self.below(1000), 1 + self.below(9), self.below(1000))
    }
}

const SERVICES: [&str; 5] = ["transport-api", "food-api", "driver-app", "pax-app", "payments"];
/// How often each service opens a session (out of 20).
const SERVICE_WEIGHTS: [u64; 5] = [7, 4, 4, 3, 2];
const PREFIXES: [&str; 10] = ["pickup", "dropoff", "surge", "promo", "chat", "eta", "map", "payment", "tip", "rating"];
const SUFFIXES: [&str; 5] = ["Enabled", "DelaySeconds", "ModelVersion", "BannerColor", "Threshold"];
const EXPERIMENTS: [&str; 10] = [
    "pickup.etaModelV2",
    "pricing.surgeCapV3",
    "promo.bannerTest",
    "chat.autoReplyV1",
    "eta.mlRankerV7",
    "map.routingV4",
    "payment.walletFirst",
    "tip.defaultTipV2",
    "rating.promptTiming",
    "dispatch.batchingV5",
];
const CITIES: [i64; 12] = [6, 6, 6, 10, 10, 10, 5, 2, 3, 7, 11, 13];
const VEHICLES: [i64; 8] = [1, 2, 4, 7, 11, 17, 23, 42];
/// (metric, kind): 0 = 2-decimal float, 1 = 3-decimal float, 2 = integral.
const METRICS: [(&str, u8); 5] =
    [("fare", 0), ("distance_km", 1), ("eta_seconds", 2), ("rating", 2), ("wait_seconds", 1)];

enum VarKind {
    /// Assigned by experiment `exp`; `default` when the unit is not in it.
    Experiment {
        exp: usize,
        choices: Vec<Arc<str>>,
        default: Arc<str>,
    },
    Rollout {
        rules: Vec<Arc<str>>,
        default: Arc<str>,
    },
}

struct Var {
    name: Arc<str>,
    kind: VarKind,
}

struct Session {
    service: usize,
    facets: Facets,
    left: u32,
    used: Vec<usize>,
}

/// The deterministic event stream.
struct Stream {
    rng: Rng,
    services: Vec<Arc<str>>,
    experiments: Vec<Arc<str>>,
    vars: Vec<Var>,
    /// Variables a session of service `s` draws from.
    pools: Vec<Vec<usize>>,
    sessions: Vec<Session>,
    recent_pax: Vec<i64>,
    now: i64,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        let mut rng = Rng::new(seed);
        let json_text = |v: Value| -> Arc<str> { Arc::from(v.to_string()) };
        let ints = [30, 60, 90, 120, 15, 5, 300, 1000];
        let strs = ["blue", "green", "control", "treatment", "variant-a", "v2", "fast", "legacy"];
        let mut vars = Vec::new();
        let mut exp_counter = 0;
        for i in 0..PREFIXES.len() * SUFFIXES.len() {
            let suffix = SUFFIXES[i % SUFFIXES.len()];
            let name: Arc<str> = Arc::from(format!("{}{suffix}", PREFIXES[i / SUFFIXES.len()]));
            let value = |k: u64| -> Arc<str> {
                match suffix {
                    "Enabled" => json_text(json!(k % 2 == 0)),
                    "DelaySeconds" | "Threshold" => json_text(json!(ints[k as usize % ints.len()])),
                    _ => json_text(json!(strs[k as usize % strs.len()])),
                }
            };
            let base = rng.below(8);
            let n = 2 + rng.below(2);
            let alts: Vec<Arc<str>> = (0..n).map(|k| value(base + k + 1)).collect();
            let default = value(base);
            let kind = if i % 10 < 3 {
                exp_counter += 1;
                VarKind::Experiment { exp: (exp_counter - 1) % EXPERIMENTS.len(), choices: alts, default }
            } else {
                VarKind::Rollout { rules: alts, default }
            };
            vars.push(Var { name, kind });
        }
        let home = |i: usize| (i + i / SUFFIXES.len()) % SERVICES.len();
        let pools = (0..SERVICES.len())
            .map(|s| (0..vars.len()).filter(|&i| home(i) == s || home(i) == (s + 1) % SERVICES.len()).collect())
            .collect();
        let mut st = Stream {
            rng,
            services: SERVICES.iter().map(|s| Arc::from(*s)).collect(),
            experiments: EXPERIMENTS.iter().map(|s| Arc::from(*s)).collect(),
            vars,
            pools,
            sessions: Vec::new(),
            recent_pax: Vec::new(),
            now: START_MS,
        };
        for _ in 0..CONCURRENT_SESSIONS {
            let mut s = st.new_session();
            // Stagger: the first sessions are already part-way through.
            s.left = 1 + st.rng.below(u64::from(s.left)) as u32;
            st.sessions.push(s);
        }
        st
    }

    fn pax(&mut self) -> i64 {
        if !self.recent_pax.is_empty() && self.rng.chance(0.1) {
            return *self.rng.pick(&self.recent_pax);
        }
        let p = self.rng.id();
        if self.recent_pax.len() < 256 {
            self.recent_pax.push(p);
        } else {
            let i = self.rng.below(256) as usize;
            self.recent_pax[i] = p;
        }
        p
    }

    /// The facets of a new session of service `service`, as a host sets them.
    fn session_facets(&mut self, service: usize) -> Facets {
        let city = *self.rng.pick(&CITIES);
        let svc = *self.rng.pick(&VEHICLES);
        let r = &mut self.rng;
        match SERVICES[service] {
            "transport-api" => {
                let session = r.uuid();
                let mut f = Facets::new().city(city).service(svc).session(session);
                if r.chance(0.6) {
                    f = f.booking(r.booking());
                    if r.chance(0.5) {
                        f = f.driver(r.id());
                    }
                }
                f.passenger(self.pax())
            }
            "food-api" => {
                let session = r.uuid();
                let mut f = Facets::new().city(city).session(session);
                if r.chance(0.5) {
                    f = f.booking(r.booking());
                }
                f.passenger(self.pax())
            }
            "driver-app" => Facets::new().driver(r.id()).city(city).service(svc).session(r.uuid()),
            "pax-app" => {
                let session = r.uuid();
                Facets::new().city(city).session(session).passenger(self.pax())
            }
            _ => {
                let booking = r.booking();
                Facets::new().city(city).booking(booking).passenger(self.pax())
            }
        }
    }

    fn new_session(&mut self) -> Session {
        let total: u64 = SERVICE_WEIGHTS.iter().sum();
        let mut x = self.rng.below(total);
        let mut service = 0;
        while x >= SERVICE_WEIGHTS[service] {
            x -= SERVICE_WEIGHTS[service];
            service += 1;
        }
        let facets = self.session_facets(service);
        Session { service, facets, left: 4 + self.rng.below(9) as u32, used: Vec::new() }
    }

    fn next_event(&mut self) -> Event {
        self.now += self.rng.below(101) as i64;
        let k = self.rng.below(CONCURRENT_SESSIONS as u64) as usize;
        let (service, facets) = {
            let s = &self.sessions[k];
            (s.service, s.facets.clone())
        };
        let service_name = Arc::clone(&self.services[service]);
        let event = if self.rng.chance(0.15) {
            let (metric, kind) = *self.rng.pick(&METRICS);
            let value = match kind {
                0 => (100 + self.rng.below(9_900)) as f64 / 100.0,
                1 => self.rng.below(40_000) as f64 / 1000.0,
                _ if metric == "rating" => (1 + self.rng.below(5)) as f64,
                _ => (30 + self.rng.below(1_200)) as f64,
            };
            Event {
                time_ms: self.now,
                count: 1,
                // A fresh Arc per call, as `Client::track` builds it.
                name: Arc::from(format!("{service_name}.{metric}")),
                service: service_name,
                data: EventData::Track { value },
                facets,
            }
        } else {
            let pool = &self.pools[service];
            let used = &self.sessions[k].used;
            let free: Vec<usize> = pool.iter().copied().filter(|v| !used.contains(v)).collect();
            let v = *self.rng.pick(&free);
            self.sessions[k].used.push(v);
            let var = &self.vars[v];
            let data = match &var.kind {
                VarKind::Experiment { exp, choices, default } => {
                    if self.rng.chance(0.75) {
                        let c = self.rng.below(choices.len() as u64) as usize;
                        EventData::Decision {
                            value: Arc::clone(&choices[c]),
                            source: Source::Experiment,
                            experiment: Some(Arc::clone(&self.experiments[*exp])),
                            rule: None,
                            choice: Some(c as u32),
                        }
                    } else {
                        default_data(default)
                    }
                }
                VarKind::Rollout { rules, default } => {
                    if self.rng.chance(0.6) {
                        let r = self.rng.below(rules.len() as u64) as usize;
                        EventData::Decision {
                            value: Arc::clone(&rules[r]),
                            source: Source::Rollout,
                            experiment: None,
                            rule: Some(r as u32),
                            choice: None,
                        }
                    } else {
                        default_data(default)
                    }
                }
            };
            let count = if self.rng.chance(0.15) { 2 + self.rng.below(3) } else { 1 };
            Event { time_ms: self.now, count, service: service_name, name: Arc::clone(&var.name), data, facets }
        };
        let s = &mut self.sessions[k];
        s.left -= 1;
        if s.left == 0 {
            self.sessions[k] = self.new_session();
        }
        event
    }

    fn take(&mut self, n: usize) -> Vec<Event> {
        (0..n).map(|_| self.next_event()).collect()
    }
}

fn default_data(default: &Arc<str>) -> EventData {
    EventData::Decision {
        value: Arc::clone(default),
        source: Source::Default,
        experiment: None,
        rule: None,
        choice: None,
    }
}

/// One batch as a client would assemble it.
struct TestBatch {
    header: BatchHeader,
    events: Vec<Event>,
    /// Decision values parsed (the engine holds them as JSON too); tracks: their number.
    json_values: Vec<Value>,
}

const CLIENT_ID: &str = "3f2b8c1e-9a4d-4e7b-b1c2-5d6e7f8a9b0c";

/// `count` consecutive batches of `size` events, after a warm-up of the stream.
fn batches(size: usize, count: usize) -> Vec<TestBatch> {
    let mut stream = Stream::new(SEED);
    stream.take(1_000);
    (0..count)
        .map(|i| {
            let events = stream.take(size);
            let header = BatchHeader {
                client_id: CLIENT_ID.into(),
                seq: i as u64 + 1,
                created_at_ms: events.last().map_or(START_MS, |e| e.time_ms) + 5,
                sdk: "turnout-rust".into(),
                sdk_version: "0.1.0".into(),
                platform: "linux-x86_64".into(),
                dropped: 0,
                fold_overflow: 0,
            };
            let json_values = events
                .iter()
                .map(|e| match &e.data {
                    EventData::Decision { value, .. } => serde_json::from_str(value).expect("decision values are JSON"),
                    EventData::Track { value } => json!(value),
                })
                .collect();
            TestBatch { header, events, json_values }
        })
        .collect()
}

// ---- serde_json: the same events as JSON objects ----------------------------

#[derive(Serialize)]
struct JsonBatch<'a> {
    header: &'a BatchHeader,
    events: Vec<JsonEvent<'a>>,
}

/// The fields of `Event::to_json` (the `turnout decode` line), borrowed.
#[derive(Serialize)]
struct JsonEvent<'a> {
    kind: &'static str,
    time: i64,
    count: u64,
    service: &'a str,
    name: &'a str,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    choice: Option<Option<u32>>,
    facets: JsonFacets<'a>,
}

struct JsonFacets<'a>(&'a Facets);

impl Serialize for JsonFacets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for f in self.0.iter() {
            match f.value() {
                FacetValue::Str(v) => m.serialize_entry(f.key(), v)?,
                FacetValue::Int(v) => m.serialize_entry(f.key(), v)?,
                FacetValue::Float(v) => m.serialize_entry(f.key(), v)?,
                FacetValue::Bool(v) => m.serialize_entry(f.key(), v)?,
            }
        }
        m.end()
    }
}

fn json_encode(b: &TestBatch) -> Vec<u8> {
    let events = b
        .events
        .iter()
        .zip(&b.json_values)
        .map(|(e, v)| {
            let (source, experiment, rule, choice) = match &e.data {
                EventData::Decision { source, experiment, rule, choice, .. } => {
                    (Some(source.as_str()), Some(experiment.as_deref()), Some(*rule), Some(*choice))
                }
                EventData::Track { .. } => (None, None, None, None),
            };
            JsonEvent {
                kind: e.kind(),
                time: e.time_ms,
                count: e.count,
                service: &e.service,
                name: &e.name,
                value: v,
                source,
                experiment,
                rule,
                choice,
                facets: JsonFacets(&e.facets),
            }
        })
        .collect();
    serde_json::to_vec(&JsonBatch { header: &b.header, events }).expect("serialises")
}

// ---- protobuf (prost): a natural schema ----------------------------------------
//
// message Batch {
//   string client_id = 1; uint64 seq = 2; int64 created_at_ms = 3; string sdk = 4;
//   string sdk_version = 5; string platform = 6; uint64 dropped = 7;
//   uint64 fold_overflow = 8; repeated Event events = 9;
// }
// message Event {
//   Kind kind = 1; int64 time_ms = 2; uint64 count = 3; string service = 4;
//   string name = 5; string value = 6; Source source = 7;
//   optional string experiment = 8; optional uint32 rule = 9;
//   optional uint32 choice = 10; optional double metric = 11;
//   map<string, FacetValue> facets = 12;
// }
// message FacetValue { oneof kind { string str = 1; int64 int = 2; double float = 3; bool bool = 4; } }
// enum Kind { KIND_UNSPECIFIED = 0; DECISION = 1; TRACK = 2; }
// enum Source { SOURCE_UNSPECIFIED = 0; EXPERIMENT = 1; ROLLOUT = 2; DEFAULT = 3; FALLBACK = 4; }

#[derive(Clone, PartialEq, prost::Message)]
struct PbBatch {
    #[prost(string, tag = "1")]
    client_id: String,
    #[prost(uint64, tag = "2")]
    seq: u64,
    #[prost(int64, tag = "3")]
    created_at_ms: i64,
    #[prost(string, tag = "4")]
    sdk: String,
    #[prost(string, tag = "5")]
    sdk_version: String,
    #[prost(string, tag = "6")]
    platform: String,
    #[prost(uint64, tag = "7")]
    dropped: u64,
    #[prost(uint64, tag = "8")]
    fold_overflow: u64,
    #[prost(message, repeated, tag = "9")]
    events: Vec<PbEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbEvent {
    #[prost(enumeration = "PbKind", tag = "1")]
    kind: i32,
    #[prost(int64, tag = "2")]
    time_ms: i64,
    #[prost(uint64, tag = "3")]
    count: u64,
    #[prost(string, tag = "4")]
    service: String,
    #[prost(string, tag = "5")]
    name: String,
    /// The decision value as JSON text (empty for tracks).
    #[prost(string, tag = "6")]
    value: String,
    #[prost(enumeration = "PbSource", tag = "7")]
    source: i32,
    #[prost(string, optional, tag = "8")]
    experiment: Option<String>,
    #[prost(uint32, optional, tag = "9")]
    rule: Option<u32>,
    #[prost(uint32, optional, tag = "10")]
    choice: Option<u32>,
    /// The track value.
    #[prost(double, optional, tag = "11")]
    metric: Option<f64>,
    #[prost(btree_map = "string, message", tag = "12")]
    facets: BTreeMap<String, PbFacetValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbFacetValue {
    #[prost(oneof = "PbFacetKind", tags = "1, 2, 3, 4")]
    kind: Option<PbFacetKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum PbFacetKind {
    #[prost(string, tag = "1")]
    Str(String),
    #[prost(int64, tag = "2")]
    Int(i64),
    #[prost(double, tag = "3")]
    Float(f64),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
enum PbKind {
    Unspecified = 0,
    Decision = 1,
    Track = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
enum PbSource {
    Unspecified = 0,
    Experiment = 1,
    Rollout = 2,
    Default = 3,
    Fallback = 4,
}

fn pb_batch(b: &TestBatch) -> PbBatch {
    let h = &b.header;
    PbBatch {
        client_id: h.client_id.clone(),
        seq: h.seq,
        created_at_ms: h.created_at_ms,
        sdk: h.sdk.clone(),
        sdk_version: h.sdk_version.clone(),
        platform: h.platform.clone(),
        dropped: h.dropped,
        fold_overflow: h.fold_overflow,
        events: b.events.iter().map(pb_event).collect(),
    }
}

fn pb_event(e: &Event) -> PbEvent {
    let facets = e
        .facets
        .iter()
        .map(|f| {
            let kind = match f.value() {
                FacetValue::Str(s) => PbFacetKind::Str(s.clone()),
                FacetValue::Int(i) => PbFacetKind::Int(*i),
                FacetValue::Float(x) => PbFacetKind::Float(*x),
                FacetValue::Bool(b) => PbFacetKind::Bool(*b),
            };
            (f.key().to_string(), PbFacetValue { kind: Some(kind) })
        })
        .collect();
    let mut pb = PbEvent {
        kind: PbKind::Decision as i32,
        time_ms: e.time_ms,
        count: e.count,
        service: e.service.to_string(),
        name: e.name.to_string(),
        value: String::new(),
        source: PbSource::Unspecified as i32,
        experiment: None,
        rule: None,
        choice: None,
        metric: None,
        facets,
    };
    match &e.data {
        EventData::Decision { value, source, experiment, rule, choice } => {
            pb.value = value.to_string();
            pb.source = match source {
                Source::Experiment => PbSource::Experiment,
                Source::Rollout => PbSource::Rollout,
                Source::Default => PbSource::Default,
                Source::Fallback => PbSource::Fallback,
            } as i32;
            pb.experiment = experiment.as_deref().map(str::to_string);
            pb.rule = *rule;
            pb.choice = *choice;
        }
        EventData::Track { value } => {
            pb.kind = PbKind::Track as i32;
            pb.metric = Some(*value);
        }
    }
    pb
}

// ---- sizes (printed, not timed) ---------------------------------------------------

struct SizeRow {
    batch: usize,
    batches: usize,
    turnout: f64,
    turnout_no_facets: f64,
    json: f64,
    prost: f64,
    sets: f64,
    strings: f64,
}

fn size_row(size: usize, count: usize) -> SizeRow {
    let bs = batches(size, count);
    let events = (size * count) as f64;
    let mut turnout = 0usize;
    let mut no_facets = 0usize;
    let mut json = 0usize;
    let mut prost_bytes = 0usize;
    let mut sets = 0usize;
    let mut strings = 0usize;
    let empty = Facets::new();
    for b in &bs {
        let bytes = encode_batch(&b.header, &b.events);
        let back = decode_batch(&bytes).expect("decodes");
        assert_eq!(back.events, b.events, "round trip");
        turnout += bytes.len();
        let stripped: Vec<Event> = b.events.iter().map(|e| Event { facets: empty.clone(), ..e.clone() }).collect();
        no_facets += encode_batch(&b.header, &stripped).len();
        let j = json_encode(b);
        json += j.len();
        let pb = prost::Message::encode_to_vec(&pb_batch(b));
        prost_bytes += pb.len();
        sets += b.events.iter().map(|e| e.facets.fingerprint()).collect::<HashSet<_>>().len();
        let mut texts: HashSet<String> = HashSet::new();
        for e in &b.events {
            texts.insert(e.service.to_string());
            texts.insert(e.name.to_string());
            if let EventData::Decision { value, experiment, .. } = &e.data {
                texts.insert(value.to_string());
                if let Some(x) = experiment {
                    texts.insert(x.to_string());
                }
            }
            for f in e.facets.iter() {
                texts.insert(f.key().to_string());
                if let FacetValue::Str(s) = f.value() {
                    texts.insert(s.clone());
                }
            }
        }
        strings += texts.len();
    }
    SizeRow {
        batch: size,
        batches: count,
        turnout: turnout as f64 / events,
        turnout_no_facets: no_facets as f64 / events,
        json: json as f64 / events,
        prost: prost_bytes as f64 / events,
        sets: sets as f64 / count as f64,
        strings: strings as f64 / count as f64,
    }
}

/// Checks that the JSON view writes exactly the bytes of `Event::to_json`
/// (modulo key order), so the JSON column measures the project's own form.
fn check_json_view() {
    let b = &batches(100, 1)[0];
    for (e, v) in b.events.iter().zip(&b.json_values) {
        let one = TestBatch { header: BatchHeader::default(), events: vec![e.clone()], json_values: vec![v.clone()] };
        let mine: Value = serde_json::from_slice(&json_encode(&one)).expect("parses");
        assert_eq!(mine["events"][0], e.to_json(), "JSON view differs from to_json");
        let own = serde_json::to_vec(&e.to_json()).expect("json").len();
        let view = serde_json::to_vec(&mine["events"][0]).expect("json").len();
        assert_eq!(own, view);
    }
}

fn print_sizes() -> Vec<SizeRow> {
    check_json_view();
    let rows = vec![size_row(100, 200), size_row(1_000, 20)];
    println!();
    println!("tracking: bytes per event (20,000 events of the stream; not timed)");
    println!(
        "| batch | turnout v1 | (of which facets) | serde_json | protobuf (prost) | facet sets/batch | distinct strings/batch |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} x {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.batches,
            r.batch,
            r.turnout,
            r.turnout - r.turnout_no_facets,
            r.json,
            r.prost,
            r.sets,
            r.strings
        );
    }
    println!();
    rows
}

// ---- encode / decode benches ---------------------------------------------------

fn batch_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    for (size, count) in [(100usize, 50usize), (1_000, 10)] {
        let bs = batches(size, count);
        let encoded: Vec<Vec<u8>> = bs.iter().map(|b| encode_batch(&b.header, &b.events)).collect();
        let pbs: Vec<PbBatch> = bs.iter().map(pb_batch).collect();
        let pb_bytes: Vec<Vec<u8>> = pbs.iter().map(prost::Message::encode_to_vec).collect();
        g.throughput(Throughput::Elements(size as u64));
        let mut i = 0usize;
        g.bench_function(format!("turnout_encode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % bs.len();
                let t = &bs[i];
                encode_batch(black_box(&t.header), black_box(&t.events))
            })
        });
        g.bench_function(format!("turnout_decode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % encoded.len();
                decode_batch(black_box(&encoded[i])).expect("decodes")
            })
        });
        g.bench_function(format!("json_encode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % bs.len();
                json_encode(black_box(&bs[i]))
            })
        });
        g.bench_function(format!("prost_encode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % pbs.len();
                prost::Message::encode_to_vec(black_box(&pbs[i]))
            })
        });
        g.bench_function(format!("prost_build_encode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % bs.len();
                prost::Message::encode_to_vec(&pb_batch(black_box(&bs[i])))
            })
        });
        g.bench_function(format!("prost_decode/{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % pb_bytes.len();
                <PbBatch as prost::Message>::decode(black_box(&pb_bytes[i][..])).expect("decodes")
            })
        });
    }
    g.finish();
}

// ---- the cost recording adds to a decision --------------------------------------

const SEED_ROLLOUT: &str = include_str!("../../examples/configs/seed-rollout.json");
const ROLLOUT_VAR: &str = "automatedMessageDelay";
const NOW_MS: i64 = 1_528_804_800_000;
const POOL: usize = 100_000;
/// Decisions per timed chunk in the `distinct` benches; the host drains between chunks.
const CHUNK: u64 = 1_000;

fn record_bundle() -> Vec<u8> {
    let rollout: Value = serde_json::from_str(SEED_ROLLOUT).expect("seed rollout parses");
    serde_json::to_vec(&json!({"schema": 1, "version": 1, "rollouts": [rollout]})).expect("serialises")
}

fn record_client(decisions: DecisionEvents, clock: Arc<dyn Clock>) -> Client {
    let options = ClientOptions {
        service: "transport-api".into(),
        clock,
        tracking: TrackingOptions { decisions, client_id: CLIENT_ID.into(), ..TrackingOptions::default() },
        ..ClientOptions::default()
    };
    Client::with_config(&record_bundle(), options).expect("bundle loads").0
}

/// 100,000 distinct units as a transport host sees them: pax, city, svc, session.
fn facet_pool() -> Vec<Facets> {
    let mut r = Rng::new(SEED ^ 0x5eed);
    let cities = [6, 10, 10, 5];
    let vehicles = [302, 11, 2, 4];
    (0..POOL)
        .map(|_| Facets::new().city(*r.pick(&cities)).service(*r.pick(&vehicles)).passenger(r.id()).session(r.uuid()))
        .collect()
}

/// The host's side: take every waiting batch and ack it.
fn drain(c: &Client) {
    while let Some(b) = c.take_batch(1_000) {
        c.ack(b.seq);
    }
}

/// Times `iters` calls of `step` in chunks of [`CHUNK`], draining the client
/// between chunks (outside the timing).
fn chunked(iters: u64, client: &Client, mut step: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let t = Instant::now();
        for _ in 0..n {
            step();
        }
        total += t.elapsed();
        left -= n;
        drain(client);
    }
    total
}

fn record_benches(c: &mut Criterion) {
    let pool = facet_pool();
    let fixed = || -> Arc<dyn Clock> { Arc::new(FixedClock::new(NOW_MS)) };
    let modes = [("all", DecisionEvents::All), ("off", DecisionEvents::Off)];
    let mut g = c.benchmark_group("record");

    // Every decision is recorded in the tracked mode (rollout rule or default).
    {
        let probe = record_client(DecisionEvents::All, fixed());
        for f in pool.iter().take(1_000) {
            probe.get_variable(ROLLOUT_VAR, f);
        }
        let s = probe.tracking_stats();
        assert_eq!(s.recorded, 1_000);
        assert_eq!(s.queued, 1_000, "distinct units never fold");
    }

    for (mode, decisions) in modes {
        let client = record_client(decisions, fixed());
        let unit = &pool[0];
        g.bench_function(format!("get_variable/repeated/{mode}"), |b| {
            b.iter(|| client.get_variable(black_box(ROLLOUT_VAR), black_box(unit)))
        });
        let var = client.variable(ROLLOUT_VAR);
        let ctx = client.context(unit.clone());
        g.bench_function(format!("prepared/repeated/{mode}"), |b| {
            b.iter(|| black_box(&ctx).int64(black_box(&var), black_box(0)))
        });
        // (Nothing is recorded when a filter skipped both benches above.)
        let s = client.tracking_stats();
        if decisions == DecisionEvents::All && s.recorded > 0 {
            assert_eq!(s.queued, 1, "a repeated unit folds into one event");
        }
    }

    // `distinct`: the 100,000-unit pool (cold in cache, as the issue asks);
    // `distinct_hot`: its first 1,000 units, cycled (cache-resident, like the
    // facets a server just built for the request at hand). Within a chunk of
    // 1,000 every unit is new, and the host drains after every chunk, so every
    // decision queues a new event in both.
    for (units, n) in [("distinct", POOL), ("distinct_hot", CHUNK as usize)] {
        let pool = &pool[..n];
        for (mode, decisions) in modes {
            let client = record_client(decisions, fixed());
            let mut k = 0usize;
            g.bench_function(format!("get_variable/{units}/{mode}"), |b| {
                b.iter_custom(|iters| {
                    chunked(iters, &client, || {
                        k = (k + 1) % n;
                        black_box(client.get_variable(black_box(ROLLOUT_VAR), &pool[k]));
                    })
                })
            });
            let var = client.variable(ROLLOUT_VAR);
            let ctxs: Vec<_> = pool.iter().map(|f| client.context(f.clone())).collect();
            g.bench_function(format!("prepared/{units}/{mode}"), |b| {
                b.iter_custom(|iters| {
                    chunked(iters, &client, || {
                        k = (k + 1) % n;
                        black_box(ctxs[k].int64(black_box(&var), 0));
                    })
                })
            });
        }
    }

    for (mode, decisions) in modes {
        let client = record_client(decisions, Arc::new(SystemClock));
        let var = client.variable(ROLLOUT_VAR);
        let ctxs: Vec<_> = pool.iter().map(|f| client.context(f.clone())).collect();
        let mut k = 0usize;
        g.bench_function(format!("prepared/distinct_systemclock/{mode}"), |b| {
            b.iter_custom(|iters| {
                chunked(iters, &client, || {
                    k = (k + 1) % POOL;
                    black_box(ctxs[k].int64(black_box(&var), 0));
                })
            })
        });
    }

    {
        // No host draining: the queue stays at its default bound (10,000) and
        // every new event drops the oldest.
        let client = record_client(DecisionEvents::All, fixed());
        let var = client.variable(ROLLOUT_VAR);
        let ctxs: Vec<_> = pool.iter().map(|f| client.context(f.clone())).collect();
        for c in ctxs.iter().take(20_000) {
            c.int64(&var, 0);
        }
        assert!(client.tracking_stats().dropped > 0);
        let mut k = 0usize;
        g.bench_function("prepared/distinct_undrained/all", |b| {
            b.iter(|| {
                k = (k + 1) % POOL;
                ctxs[k].int64(black_box(&var), 0)
            })
        });
    }
    g.finish();
}

// ---- summary ----------------------------------------------------------------------

/// The median (ns per iteration) of the last run of a benchmark, if any.
fn median_ns(id: &str) -> Option<f64> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    // Criterion stores `group/a/b` under `group/a_b`.
    let (group, function) = id.split_once('/')?;
    let path = root.join("criterion").join(group).join(function.replace('/', "_")).join("new/estimates.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn print_summary(rows: &[SizeRow]) {
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.1}"));
    println!();
    println!("tracking: medians of this run (ns per event; target/criterion/*/new/estimates.json)");
    println!(
        "| batch | turnout encode | turnout decode | json encode | prost encode | prost build+encode | prost decode |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [100usize, 1_000] {
        let per = |what: &str| median_ns(&format!("batch/{what}/{n}")).map(|x| x / n as f64);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            fmt(per("turnout_encode")),
            fmt(per("turnout_decode")),
            fmt(per("json_encode")),
            fmt(per("prost_encode")),
            fmt(per("prost_build_encode")),
            fmt(per("prost_decode")),
        );
    }
    println!();
    println!("tracking: what recording adds to one decision (medians, ns)");
    println!("| call | units | all | off | added |");
    println!("|---|---|---:|---:|---:|");
    for (call, units) in [
        ("get_variable", "repeated"),
        ("get_variable", "distinct"),
        ("get_variable", "distinct_hot"),
        ("prepared", "repeated"),
        ("prepared", "distinct"),
        ("prepared", "distinct_hot"),
        ("prepared", "distinct_systemclock"),
    ] {
        let all = median_ns(&format!("record/{call}/{units}/all"));
        let off = median_ns(&format!("record/{call}/{units}/off"));
        let added = all.zip(off).map(|(a, o)| a - o);
        println!("| {call} | {units} | {} | {} | {} |", fmt(all), fmt(off), fmt(added));
    }
    println!(
        "| prepared | distinct_undrained | {} | (prepared/distinct/off) {} | {} |",
        fmt(median_ns("record/prepared/distinct_undrained/all")),
        fmt(median_ns("record/prepared/distinct/off")),
        fmt(median_ns("record/prepared/distinct_undrained/all")
            .zip(median_ns("record/prepared/distinct/off"))
            .map(|(a, o)| a - o)),
    );
    println!();
    println!("tracking: targets");
    println!("| target | measured | met |");
    println!("|---|---:|---|");
    let line = |what: String, x: Option<f64>, limit: f64, unit: &str| {
        let met = x.map_or("n/a", |x| if x <= limit { "yes" } else { "no" });
        println!("| {what} <= {limit} {unit} | {} | {met} |", fmt(x));
    };
    for r in rows {
        let limit = if r.batch == 100 { 33.0 } else { 15.0 };
        line(format!("size, batch {}", r.batch), Some(r.turnout), limit, "B/event");
    }
    for n in [100usize, 1_000] {
        let per = |what: &str| median_ns(&format!("batch/{what}/{n}")).map(|x| x / n as f64);
        line(format!("encode, batch {n}"), per("turnout_encode"), 100.0, "ns/event");
        line(format!("decode, batch {n}"), per("turnout_decode"), 200.0, "ns/event");
    }
    for (call, units) in [
        ("get_variable", "repeated"),
        ("get_variable", "distinct"),
        ("get_variable", "distinct_hot"),
        ("prepared", "repeated"),
        ("prepared", "distinct"),
        ("prepared", "distinct_hot"),
    ] {
        let all = median_ns(&format!("record/{call}/{units}/all"));
        let off = median_ns(&format!("record/{call}/{units}/off"));
        line(format!("recording adds, {call} {units}"), all.zip(off).map(|(a, o)| a - o), 60.0, "ns");
    }
}

fn main() {
    let rows = print_sizes();
    let mut c = Criterion::default().configure_from_args();
    batch_benches(&mut c);
    record_benches(&mut c);
    c.final_summary();
    print_summary(&rows);
}
