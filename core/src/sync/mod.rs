//! The host protocol, sans I/O: config sync and event upload as one state
//! machine (docs/sync.md is its specification).
//!
//! A binding owns only the I/O: it asks [`SyncMachine::next`] what to do, does it
//! (an HTTP request, a sleep), and reports what happened with
//! [`SyncMachine::on_fetch`] / [`SyncMachine::on_upload`]. Every rule lives here once: the
//! poll interval, backoff with jitter from an injected seed, `Retry-After`,
//! the ETag rules and what a rejected config does, upload scheduling with
//! ack/nack, staleness and readiness. What the host should tell its user
//! (log lines, callbacks) comes out as [`Notice`]s from [`SyncMachine::take_notices`].
//!
//! Time is whatever monotonic milliseconds the host passes in; nothing here
//! reads a clock or a random source, so a scripted sequence of calls gives
//! the same actions on every platform (the `sync` conformance vectors).

use serde::{Deserialize, Serialize};

#[doc(hidden)]
pub mod script;

use crate::client::{Client, UpdateReport};
use crate::error::ErrorKind;
use crate::hash::SplitMix64;

/// Default time between config polls (30 s).
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 30_000;
/// Default cap of the delay after failures (5 min).
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 300_000;
/// Default deadline of one request, connect to last body byte (10 s).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default events per uploaded batch.
pub const DEFAULT_MAX_BATCH_EVENTS: u64 = 1_000;
/// Default jitter: every delay is spread over +-10 %.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default polls without a confirmed config before the client is stale.
pub const DEFAULT_STALE_AFTER_POLLS: u64 = 5;
/// The largest backoff exponent (the delay is capped long before it).
const MAX_EXPONENT: u32 = 30;

/// Options of the host protocol, in the JSON form every binding accepts
/// (camelCase; every field optional except that a sync needs a `configUrl`,
/// an `eventsUrl` or both).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncOptions {
    /// Where the config is served (`None`: events only).
    pub config_url: Option<String>,
    /// Where batches are POSTed (`None`: no upload).
    pub events_url: Option<String>,
    /// Time between config polls (default 30,000 ms).
    pub poll_interval_ms: Option<u64>,
    /// Time between uploads (default: the poll interval).
    pub flush_interval_ms: Option<u64>,
    /// Cap of the delay after failures (default 300,000 ms).
    pub max_backoff_ms: Option<u64>,
    /// Deadline of each request, connect to last byte (default 10,000 ms).
    pub timeout_ms: Option<u64>,
    /// Fraction of randomisation of every delay, in [0, 1) (default 0.1).
    pub jitter: Option<f64>,
    /// Seed of the jitter's generator (the host passes a random one; tests a fixed one).
    pub seed: Option<u64>,
    /// Events per uploaded batch (default 1,000).
    pub max_batch_events: Option<u64>,
    /// Polls without a confirmed config after which the client is stale (default 5).
    pub stale_after_polls: Option<u64>,
}

impl SyncOptions {
    /// Options from their JSON form.
    pub fn from_json(text: &str) -> Result<SyncOptions, SyncError> {
        if text.trim().is_empty() {
            return Ok(SyncOptions::default());
        }
        serde_json::from_str(text).map_err(|e| SyncError::Options(e.to_string()))
    }
}

/// A sync could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    /// The options were not valid.
    #[error("invalid sync options: {0}")]
    Options(String),
}

impl SyncError {
    /// Always [`ErrorKind::InvalidOptions`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidOptions
    }
}

impl From<SyncError> for crate::ErrorDetail {
    fn from(e: SyncError) -> Self {
        crate::ErrorDetail::new(e.kind(), e.to_string())
    }
}

/// What the host does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// `GET url` with `If-None-Match: etag` when given, under one deadline of
    /// `timeout_ms`, reading at most `max_bytes` of body; then [`SyncMachine::on_fetch`].
    #[serde(rename_all = "camelCase")]
    Fetch {
        /// The config URL.
        url: String,
        /// The `If-None-Match` value, if any.
        etag: Option<String>,
        /// The request's deadline.
        timeout_ms: u64,
        /// The largest body to read (more: report [`Failure::TooLarge`]).
        max_bytes: u64,
    },
    /// `POST url` of `bytes` (`application/octet-stream`) under one deadline
    /// of `timeout_ms`; then [`SyncMachine::on_upload`] with `seq`.
    #[serde(rename_all = "camelCase")]
    Upload {
        /// The events URL.
        url: String,
        /// The batch's sequence number.
        seq: u64,
        /// The encoded batch (docs/wire-format.md).
        #[serde(skip)]
        bytes: Vec<u8>,
        /// How many events the batch holds.
        events: u64,
        /// The request's deadline.
        timeout_ms: u64,
    },
    /// Sleep `ms` (or until the host wakes the loop: a poll or flush asked
    /// for, a stop), then call [`SyncMachine::next`] again.
    Wait {
        /// How long.
        ms: u64,
    },
    /// Nothing more to do: the sync was stopped (and drained).
    Stop,
}

/// A request that got no usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Failure {
    /// No HTTP response: refused, reset, DNS, TLS.
    Network,
    /// The deadline passed.
    Timeout,
    /// The body was over `max_bytes`.
    TooLarge,
    /// The body ended before its `Content-Length` (or a chunked body was cut).
    Incomplete,
    /// The host abandoned the request (stopping).
    Aborted,
}

impl Failure {
    /// The failure whose [`ErrorKind::code`] is `code` (`NETWORK`, `TIMEOUT`,
    /// `TOO_LARGE`, `INCOMPLETE`, `ABORTED`).
    pub fn from_code(code: &str) -> Option<Failure> {
        [Failure::Network, Failure::Timeout, Failure::TooLarge, Failure::Incomplete, Failure::Aborted]
            .into_iter()
            .find(|f| f.kind().code() == code)
    }

    /// The matching [`ErrorKind`].
    pub fn kind(self) -> ErrorKind {
        match self {
            Failure::Network => ErrorKind::Network,
            Failure::Timeout => ErrorKind::Timeout,
            Failure::TooLarge => ErrorKind::TooLarge,
            Failure::Incomplete => ErrorKind::Incomplete,
            Failure::Aborted => ErrorKind::Aborted,
        }
    }
}

/// What a request gave: an HTTP response (its whole body read), or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A complete response.
    Response {
        /// The HTTP status.
        status: u16,
        /// The `ETag` header, if any.
        etag: Option<&'a str>,
        /// The `Retry-After` header, if any (delta-seconds or an HTTP date).
        retry_after: Option<&'a str>,
        /// The body (empty for uploads and 304).
        body: &'a [u8],
    },
    /// No usable response.
    Failed {
        /// Why.
        failure: Failure,
        /// The host's description (logged).
        message: &'a str,
    },
}

impl<'a> Outcome<'a> {
    /// An outcome from the flat form the bindings pass: `failure` (an
    /// [`ErrorKind`] code of a [`Failure`]) when the request failed, else
    /// `status` and the rest. An unknown failure code counts as `NETWORK`.
    pub fn from_parts(
        status: u16,
        etag: Option<&'a str>,
        retry_after: Option<&'a str>,
        body: &'a [u8],
        failure: Option<&'a str>,
        message: &'a str,
    ) -> Outcome<'a> {
        match failure {
            Some(code) => Outcome::Failed { failure: Failure::from_code(code).unwrap_or(Failure::Network), message },
            None => Outcome::Response { status, etag, retry_after, body },
        }
    }
}

/// Where a notice comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Channel {
    /// Config sync.
    Config,
    /// Event upload.
    Events,
}

/// Something the host should tell its user: log it (unless `repeat`) and
/// pass it to the callback the user installed, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "notice", rename_all = "camelCase")]
pub enum Notice {
    /// The first config is in force (a bootstrap counts): waiters on
    /// readiness wake up. Level info.
    Ready,
    /// A fetched config was installed. Level info when it changed variables,
    /// debug otherwise.
    #[serde(rename_all = "camelCase")]
    Applied {
        /// The update's report.
        report: UpdateReport,
        /// The ETag it came with.
        etag: Option<String>,
    },
    /// Something failed. Level warn; `repeat` when it is the same kind as the
    /// previous failure of its channel (log it only once).
    #[serde(rename_all = "camelCase")]
    Error {
        /// Config or events.
        channel: Channel,
        /// The stable kind.
        kind: ErrorKind,
        /// The HTTP status, for [`ErrorKind::Http`] and rejected configs.
        status: Option<u16>,
        /// A description.
        message: String,
        /// The same kind failed just before on this channel.
        repeat: bool,
        /// For a config the engine rejected: every problem (absent when none,
        /// and on the notice of the same rejected config fetched again).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        problems: Vec<crate::Problem>,
        /// For a config over a limit: which limit, its maximum, what was found.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<crate::LimitError>,
    },
    /// A channel works again after `failures` failures. Level info.
    #[serde(rename_all = "camelCase")]
    Recovered {
        /// Config or events.
        channel: Channel,
        /// How many attempts failed in a row before.
        failures: u64,
    },
    /// No config has been confirmed current for `stale_after_polls` polls. Level warn.
    #[serde(rename_all = "camelCase")]
    Stale {
        /// When the config in force was last confirmed (host ms).
        since_ms: u64,
    },
    /// A stale client confirmed its config again. Level info.
    Fresh,
    /// A batch the collector refused for good (400, 413, 422) was dropped. Level error.
    #[serde(rename_all = "camelCase")]
    Dropped {
        /// Its sequence number.
        seq: u64,
        /// How many events it held.
        events: u64,
        /// The status.
        status: u16,
    },
}

/// The state of a sync, for hosts and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    /// A config is in force (bootstrap or fetched).
    pub ready: bool,
    /// No config was confirmed current for `stale_after_polls` polls.
    pub stale: bool,
    /// The ETag of the config in force.
    pub etag: Option<String>,
    /// The ETag of the last rejected config, sent until the server has another.
    pub rejected_etag: Option<String>,
    /// Consecutive failed config requests.
    pub config_failures: u64,
    /// Consecutive failed uploads.
    pub upload_failures: u64,
    /// When the next config fetch is due (host ms).
    pub next_fetch_ms: Option<u64>,
    /// When the next upload is due (host ms).
    pub next_flush_ms: Option<u64>,
    /// Batches acknowledged by the collector.
    pub batches_acked: u64,
    /// Batches the collector refused for good and that were dropped.
    pub batches_dropped: u64,
    /// Stopped (and, when asked, drained).
    pub stopped: bool,
}

/// The request in flight, if any.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Fetch { sent_etag: Option<String>, deadline: u64 },
    Upload { seq: u64, events: u64, deadline: u64 },
}

/// The host protocol of one client (see the module documentation).
#[derive(Debug)]
pub struct SyncMachine {
    client: Client,
    config_url: Option<String>,
    events_url: Option<String>,
    poll_ms: u64,
    flush_ms: u64,
    max_backoff_ms: u64,
    timeout_ms: u64,
    jitter: f64,
    rng: SplitMix64,
    max_batch_events: u64,
    stale_after_polls: u64,

    started: bool,
    pending: Option<Pending>,
    next_fetch: u64,
    next_flush: u64,
    /// An upload round is running: batches go one after another until the queue is empty.
    flushing: bool,
    etag: Option<String>,
    rejected_etag: Option<String>,
    /// xxh3 of the last installed body and of the last rejected one.
    applied_hash: Option<u64>,
    /// The last rejected body: its hash, its error kind, and whether it was
    /// complete JSON (only then is its ETag remembered).
    rejected_hash: Option<(u64, ErrorKind, bool)>,
    config_failures: u64,
    upload_failures: u64,
    last_config_error: Option<ErrorKind>,
    last_upload_error: Option<ErrorKind>,
    ready: bool,
    stale: bool,
    confirmed_at: u64,
    batches_acked: u64,
    batches_dropped: u64,
    stopping: Option<bool>,
    stopped: bool,
    notices: Vec<Notice>,
}

impl SyncMachine {
    /// A sync for `client` (it holds a clone: the same client).
    pub fn new(client: &Client, options: SyncOptions) -> Result<SyncMachine, SyncError> {
        let bad = |m: &str| Err(SyncError::Options(m.to_string()));
        if options.config_url.is_none() && options.events_url.is_none() {
            return bad("a sync needs a configUrl, an eventsUrl or both");
        }
        let poll_ms = options.poll_interval_ms.unwrap_or(DEFAULT_POLL_INTERVAL_MS);
        let flush_ms = options.flush_interval_ms.unwrap_or(poll_ms);
        let max_backoff_ms = options.max_backoff_ms.unwrap_or(DEFAULT_MAX_BACKOFF_MS);
        let timeout_ms = options.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let jitter = options.jitter.unwrap_or(DEFAULT_JITTER);
        let max_batch_events = options.max_batch_events.unwrap_or(DEFAULT_MAX_BATCH_EVENTS);
        let stale_after_polls = options.stale_after_polls.unwrap_or(DEFAULT_STALE_AFTER_POLLS);
        if poll_ms == 0 || flush_ms == 0 || max_backoff_ms == 0 || timeout_ms == 0 {
            return bad("pollIntervalMs, flushIntervalMs, maxBackoffMs and timeoutMs must be positive");
        }
        if !(0.0..1.0).contains(&jitter) {
            return bad("jitter is a fraction in [0, 1)");
        }
        if max_batch_events == 0 || stale_after_polls == 0 {
            return bad("maxBatchEvents and staleAfterPolls must be positive");
        }
        let ready = client.has_config();
        Ok(SyncMachine {
            client: client.clone(),
            config_url: options.config_url,
            events_url: options.events_url,
            poll_ms,
            flush_ms,
            max_backoff_ms,
            timeout_ms,
            jitter,
            rng: SplitMix64::new(options.seed.unwrap_or(0)),
            max_batch_events,
            stale_after_polls,
            started: false,
            pending: None,
            // Set by the first `next()`, unless `poll_now` / `flush_now` came first.
            next_fetch: u64::MAX,
            next_flush: u64::MAX,
            flushing: false,
            etag: None,
            rejected_etag: None,
            applied_hash: None,
            rejected_hash: None,
            config_failures: 0,
            upload_failures: 0,
            last_config_error: None,
            last_upload_error: None,
            ready,
            stale: false,
            confirmed_at: 0,
            batches_acked: 0,
            batches_dropped: 0,
            stopping: None,
            stopped: false,
            notices: if ready { vec![Notice::Ready] } else { Vec::new() },
        })
    }

    /// What the host does next, at host time `now_ms` (monotonic milliseconds).
    pub fn next(&mut self, now_ms: u64) -> Action {
        let now = now_ms;
        if !self.started {
            self.started = true;
            self.next_fetch = now;
            if self.next_flush != 0 {
                self.next_flush = now.saturating_add(self.flush_ms);
            }
            self.confirmed_at = now;
        }
        if let Some(deadline) = self.pending_deadline() {
            if now < deadline {
                return Action::Wait { ms: deadline - now };
            }
            // The host never reported: the request timed out.
            self.expire(now);
        }
        if self.stopped {
            return Action::Stop;
        }
        if let Some(flush) = self.stopping {
            if flush {
                if let Some(a) = self.upload(now) {
                    return a;
                }
            }
            self.stopped = true;
            return Action::Stop;
        }
        self.check_stale(now);
        if self.config_url.is_some() && now >= self.next_fetch {
            let url = self.config_url.clone().expect("checked");
            let sent = self.rejected_etag.clone().or_else(|| self.etag.clone());
            self.pending =
                Some(Pending::Fetch { sent_etag: sent.clone(), deadline: now.saturating_add(self.timeout_ms) });
            return Action::Fetch {
                url,
                etag: sent,
                timeout_ms: self.timeout_ms,
                max_bytes: self.client.options().max_config_bytes as u64,
            };
        }
        if self.events_url.is_some() && (self.flushing || now >= self.next_flush) {
            self.flushing = true;
            if let Some(a) = self.upload(now) {
                return a;
            }
            // The queue is empty: the round is over.
            self.flushing = false;
            self.next_flush = now.saturating_add(self.delay(self.flush_ms, 0, None));
        }
        let mut wake = u64::MAX;
        if self.config_url.is_some() {
            wake = wake.min(self.next_fetch);
        }
        if self.events_url.is_some() {
            wake = wake.min(self.next_flush);
        }
        if self.config_url.is_some() && !self.stale {
            wake = wake.min(self.stale_at());
        }
        Action::Wait { ms: wake.saturating_sub(now).max(1) }
    }

    /// Reports the outcome of the last [`Action::Fetch`]. A report with no
    /// fetch outstanding (a late answer after its deadline) is ignored.
    pub fn on_fetch(&mut self, now_ms: u64, outcome: Outcome<'_>) {
        let Some(Pending::Fetch { sent_etag, .. }) = self.pending.clone() else { return };
        self.pending = None;
        let now = now_ms;
        match outcome {
            Outcome::Response { status: status @ 200..=299, etag, body, .. } => {
                self.config_answered();
                let h = xxhash_rust::xxh3::xxh3_64(body);
                if self.applied_hash == Some(h) {
                    // The same bytes as the config in force: nothing to compile.
                    self.etag = etag.map(str::to_string);
                    self.rejected_etag = None;
                    self.confirm(now);
                } else if let Some((_, kind, json)) = self.rejected_hash.filter(|(r, ..)| *r == h) {
                    self.rejected_etag = etag.filter(|_| json).map(str::to_string);
                    self.config_error(kind, Some(status), "the same rejected config again".into(), None);
                } else {
                    match self.client.update_config(body) {
                        Ok(report) => {
                            self.applied_hash = Some(h);
                            self.rejected_hash = None;
                            self.etag = etag.map(str::to_string);
                            self.rejected_etag = None;
                            self.notices.push(Notice::Applied { report, etag: self.etag.clone() });
                            if !self.ready {
                                self.ready = true;
                                self.notices.push(Notice::Ready);
                            }
                            self.confirm(now);
                        }
                        Err(e) => {
                            // Not JSON may be a body cut short (a close-delimited
                            // response cannot tell): its ETag is not remembered,
                            // so the next poll fetches it again.
                            let json = !matches!(e, crate::ConfigError::Json(_));
                            self.rejected_hash = Some((h, e.kind(), json));
                            self.rejected_etag = etag.filter(|_| json).map(str::to_string);
                            self.config_error(e.kind(), Some(status), e.to_string(), Some(e.into()));
                        }
                    }
                }
                self.next_fetch = now.saturating_add(self.delay(self.poll_ms, 0, None));
            }
            Outcome::Response { status: 304, .. } if sent_etag.is_some() => {
                self.config_answered();
                if self.rejected_etag.is_none() {
                    self.confirm(now);
                }
                self.next_fetch = now.saturating_add(self.delay(self.poll_ms, 0, None));
            }
            Outcome::Response { status, retry_after, .. } => {
                let message = if status == 304 {
                    "304 Not Modified to a request without If-None-Match".to_string()
                } else {
                    format!("HTTP {status}")
                };
                self.config_failed(now, ErrorKind::Http, Some(status), message, retry_after);
            }
            // The host abandoned the request because it is stopping: not a fault.
            Outcome::Failed { failure: Failure::Aborted, .. } if self.stopping.is_some() => {}
            Outcome::Failed { failure, message } => {
                self.config_failed(now, failure.kind(), None, message.to_string(), None);
            }
        }
    }

    /// Reports the outcome of the last [`Action::Upload`] (`seq` is its
    /// batch). A report for another batch, or with no upload outstanding, is
    /// ignored.
    pub fn on_upload(&mut self, now_ms: u64, seq: u64, outcome: Outcome<'_>) {
        let Some(Pending::Upload { seq: want, events, .. }) = self.pending.clone() else { return };
        if want != seq {
            return;
        }
        self.pending = None;
        let now = now_ms;
        match outcome {
            Outcome::Response { status: 200..=299, .. } => {
                self.client.ack(seq);
                self.batches_acked += 1;
                self.upload_answered();
            }
            Outcome::Response { status: status @ (400 | 413 | 422), .. } => {
                // Refused for good: sending it again would be refused again.
                self.client.ack(seq);
                self.batches_dropped += 1;
                self.upload_answered();
                self.notices.push(Notice::Dropped { seq, events, status });
            }
            Outcome::Response { status, retry_after, .. } => {
                self.client.nack(seq);
                self.upload_failed(now, ErrorKind::Http, Some(status), format!("HTTP {status}"), retry_after);
            }
            Outcome::Failed { failure: Failure::Aborted, .. } if self.stopping.is_some() => {
                self.client.nack(seq);
                self.stopping = Some(false);
            }
            Outcome::Failed { failure, message } => {
                self.client.nack(seq);
                self.upload_failed(now, failure.kind(), None, message.to_string(), None);
            }
        }
    }

    /// Fetch the config at the next [`SyncMachine::next`] (the host wakes its loop).
    pub fn poll_now(&mut self) {
        self.next_fetch = 0;
    }

    /// Upload the queue at the next [`SyncMachine::next`] (the host wakes its loop).
    pub fn flush_now(&mut self) {
        self.next_flush = 0;
    }

    /// Stop: with `flush`, the next calls upload what is queued (one attempt
    /// per batch, no retry) before [`Action::Stop`]; without, `Stop` at once.
    /// A request outstanding is still reported (or expires) first.
    pub fn stop(&mut self, flush: bool) {
        if self.stopping.is_none() && !self.stopped {
            self.stopping = Some(flush && self.events_url.is_some());
            self.flushing = false;
        }
    }

    /// Every notice since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The state (see [`SyncState`]).
    pub fn state(&self) -> SyncState {
        SyncState {
            ready: self.ready,
            stale: self.stale,
            etag: self.etag.clone(),
            rejected_etag: self.rejected_etag.clone(),
            config_failures: self.config_failures,
            upload_failures: self.upload_failures,
            next_fetch_ms: (self.started && self.config_url.is_some()).then_some(self.next_fetch),
            next_flush_ms: (self.started && self.events_url.is_some()).then_some(self.next_flush),
            batches_acked: self.batches_acked,
            batches_dropped: self.batches_dropped,
            stopped: self.stopped,
        }
    }

    /// The client this sync keeps up to date.
    pub fn client(&self) -> &Client {
        &self.client
    }

    // ---- internals ------------------------------------------------------

    fn pending_deadline(&self) -> Option<u64> {
        match &self.pending {
            Some(Pending::Fetch { deadline, .. } | Pending::Upload { deadline, .. }) => Some(*deadline),
            None => None,
        }
    }

    /// The outstanding request passed its deadline without a report.
    fn expire(&mut self, now: u64) {
        let message = format!("no report within {} ms", self.timeout_ms);
        match self.pending.clone() {
            Some(Pending::Fetch { .. }) => {
                self.on_fetch(now, Outcome::Failed { failure: Failure::Timeout, message: &message })
            }
            Some(Pending::Upload { seq, .. }) => {
                self.on_upload(now, seq, Outcome::Failed { failure: Failure::Timeout, message: &message })
            }
            None => {}
        }
    }

    /// The next batch as an upload, or `None` when the queue is empty.
    fn upload(&mut self, now: u64) -> Option<Action> {
        let url = self.events_url.clone()?;
        let max = usize::try_from(self.max_batch_events).unwrap_or(usize::MAX);
        let batch = self.client.take_batch(max)?;
        let events = batch.events as u64;
        self.pending = Some(Pending::Upload { seq: batch.seq, events, deadline: now.saturating_add(self.timeout_ms) });
        Some(Action::Upload { url, seq: batch.seq, bytes: batch.bytes, events, timeout_ms: self.timeout_ms })
    }

    /// `base` doubled per failure, capped, spread by the jitter; never less
    /// than a `Retry-After`.
    fn delay(&mut self, base: u64, failures: u64, retry_after: Option<&str>) -> u64 {
        let mut d = base as f64;
        if failures > 0 {
            let exp = failures.min(u64::from(MAX_EXPONENT)) as i32;
            d = (d * 2f64.powi(exp)).min(self.max_backoff_ms.max(base) as f64);
        }
        if self.jitter > 0.0 {
            let u = (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            d *= 1.0 + self.jitter * (2.0 * u - 1.0);
        }
        let mut ms = d as u64;
        if let Some(ra) = retry_after.and_then(|v| retry_after_ms(v, self.client.options().clock.now_ms())) {
            ms = ms.max(ra.min(self.max_backoff_ms.max(base)));
        }
        ms.max(1)
    }

    fn stale_at(&self) -> u64 {
        self.confirmed_at.saturating_add(self.poll_ms.saturating_mul(self.stale_after_polls))
    }

    fn check_stale(&mut self, now: u64) {
        if self.config_url.is_some() && !self.stale && now >= self.stale_at() {
            self.stale = true;
            self.notices.push(Notice::Stale { since_ms: self.confirmed_at });
        }
    }

    /// The config in force is what the server serves.
    fn confirm(&mut self, now: u64) {
        self.confirmed_at = now;
        self.last_config_error = None;
        if self.stale {
            self.stale = false;
            self.notices.push(Notice::Fresh);
        }
    }

    /// The server answered (2xx or 304): the failure run, if any, is over.
    fn config_answered(&mut self) {
        if self.config_failures > 0 {
            self.notices.push(Notice::Recovered { channel: Channel::Config, failures: self.config_failures });
        }
        self.config_failures = 0;
        // An answer ends a run of transport failures; only a confirmed config
        // ends a rejection (the server may still serve the rejected one).
        if !matches!(self.last_config_error, Some(ErrorKind::InvalidConfig | ErrorKind::LimitExceeded)) {
            self.last_config_error = None;
        }
    }

    fn upload_answered(&mut self) {
        if self.upload_failures > 0 {
            self.notices.push(Notice::Recovered { channel: Channel::Events, failures: self.upload_failures });
        }
        self.upload_failures = 0;
        self.last_upload_error = None;
    }

    /// A config the engine rejected: reported, never a backoff (the server works).
    fn config_error(
        &mut self,
        kind: ErrorKind,
        status: Option<u16>,
        message: String,
        detail: Option<crate::ErrorDetail>,
    ) {
        let (problems, limit) = detail.map_or((Vec::new(), None), |d| (d.problems, d.limit));
        let repeat = self.last_config_error == Some(kind);
        self.last_config_error = Some(kind);
        self.notices.push(Notice::Error { channel: Channel::Config, kind, status, message, repeat, problems, limit });
    }

    fn config_failed(&mut self, now: u64, kind: ErrorKind, status: Option<u16>, message: String, ra: Option<&str>) {
        self.config_failures += 1;
        self.config_error(kind, status, message, None);
        let d = self.delay(self.poll_ms, self.config_failures, ra);
        self.next_fetch = now.saturating_add(d);
    }

    fn upload_failed(&mut self, now: u64, kind: ErrorKind, status: Option<u16>, message: String, ra: Option<&str>) {
        self.upload_failures += 1;
        let repeat = self.last_upload_error == Some(kind);
        self.last_upload_error = Some(kind);
        let (problems, limit) = (Vec::new(), None);
        self.notices.push(Notice::Error { channel: Channel::Events, kind, status, message, repeat, problems, limit });
        self.flushing = false;
        if self.stopping == Some(true) {
            // Draining makes one attempt per batch: stop at the first failure.
            self.stopping = Some(false);
        }
        let d = self.delay(self.flush_ms, self.upload_failures, ra);
        self.next_flush = now.saturating_add(d);
    }
}

/// A `Retry-After` value in ms: delta-seconds, or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110) less `unix_now_ms` (the
/// client's clock; a date in the past is 0). `None` when unreadable.
fn retry_after_ms(value: &str, unix_now_ms: i64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(v.parse::<u64>().unwrap_or(u64::MAX / 1000).saturating_mul(1000));
    }
    let at = imf_fixdate_ms(v)?;
    Some(u64::try_from(at.saturating_sub(unix_now_ms)).unwrap_or(0))
}

/// Unix ms of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate_ms(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = v.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| v.get(8..11) == Some(*m))? as i64 + 1;
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (h, m, s) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(opts: &str) -> (Client, SyncMachine) {
        let client = Client::new(crate::ClientOptions::default());
        let m = SyncMachine::new(&client, SyncOptions::from_json(opts).unwrap()).unwrap();
        (client, m)
    }

    #[test]
    fn options_are_checked() {
        let c = Client::new(crate::ClientOptions::default());
        let err = |o: &str| SyncMachine::new(&c, SyncOptions::from_json(o).unwrap()).unwrap_err().to_string();
        assert!(err("{}").contains("configUrl, an eventsUrl or both"));
        assert!(err(r#"{"configUrl": "u", "jitter": 1}"#).contains("jitter"));
        assert!(err(r#"{"configUrl": "u", "pollIntervalMs": 0}"#).contains("positive"));
        assert!(err(r#"{"eventsUrl": "u", "maxBatchEvents": 0}"#).contains("positive"));
        assert!(SyncOptions::from_json(r#"{"configURL": "u"}"#).unwrap_err().to_string().contains("unknown field"));
        assert_eq!(SyncOptions::from_json("").unwrap(), SyncOptions::default());
    }

    #[test]
    fn the_backoff_is_capped_and_never_below_the_interval() {
        // An interval above the cap is not shortened by it.
        let (_, mut m) = machine(r#"{"configUrl": "u", "pollIntervalMs": 60000, "maxBackoffMs": 1000, "jitter": 0}"#);
        assert!(matches!(m.next(0), Action::Fetch { .. }));
        m.on_fetch(0, Outcome::Failed { failure: Failure::Network, message: "x" });
        assert_eq!(m.state().next_fetch_ms, Some(60_000));
        // Many failures: the exponent stops, nothing overflows.
        let (_, mut m) = machine(r#"{"configUrl": "u", "pollIntervalMs": 1000, "maxBackoffMs": 4000, "jitter": 0}"#);
        let mut now = 0;
        for _ in 0..100 {
            assert!(matches!(m.next(now), Action::Fetch { .. }), "{now}");
            m.on_fetch(now, Outcome::Failed { failure: Failure::Timeout, message: "x" });
            now = m.state().next_fetch_ms.unwrap();
        }
        assert_eq!(m.state().config_failures, 100);
        assert_eq!(now, 2_000 + 4_000 + 98 * 4_000);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let (_, mut m) = machine(r#"{"configUrl": "u", "pollIntervalMs": 10000, "jitter": 0.2, "seed": 7}"#);
        for _ in 0..1000 {
            let d = m.delay(10_000, 0, None);
            assert!((8_000..=12_000).contains(&d), "{d}");
        }
    }

    #[test]
    fn late_and_foreign_reports_are_ignored() {
        let (client, mut m) = machine(r#"{"eventsUrl": "u", "flushIntervalMs": 10, "jitter": 0}"#);
        client.track("e", 1.0, &crate::Facets::new());
        assert_eq!(m.next(0), Action::Wait { ms: 10 });
        let Action::Upload { seq, .. } = m.next(10) else { panic!("an upload") };
        // Another seq: ignored, the upload stays outstanding.
        m.on_upload(11, seq + 1, Outcome::Response { status: 200, etag: None, retry_after: None, body: b"" });
        assert_eq!(m.next(11), Action::Wait { ms: m.timeout_ms - 1 });
        // A fetch report without a fetch: ignored.
        m.on_fetch(12, Outcome::Response { status: 200, etag: None, retry_after: None, body: b"{}" });
        assert!(!client.has_config());
        m.on_upload(12, seq, Outcome::Response { status: 200, etag: None, retry_after: None, body: b"" });
        assert_eq!(m.state().batches_acked, 1);
        assert_eq!(client.tracking_stats().in_flight, 0);
    }

    #[test]
    fn a_flush_asked_before_the_first_step_happens_at_once() {
        let (client, mut m) = machine(r#"{"eventsUrl": "u", "flushIntervalMs": 60000}"#);
        client.track("e", 1.0, &crate::Facets::new());
        m.flush_now();
        assert!(matches!(m.next(5), Action::Upload { .. }));
        let (_, mut m) = machine(r#"{"eventsUrl": "u", "flushIntervalMs": 60000}"#);
        assert_eq!(m.next(5), Action::Wait { ms: 60_000 });
    }

    #[test]
    fn unknown_failure_codes_count_as_network() {
        assert_eq!(
            Outcome::from_parts(0, None, None, b"", Some("WHATEVER"), "m"),
            Outcome::Failed { failure: Failure::Network, message: "m" }
        );
        for f in [Failure::Network, Failure::Timeout, Failure::TooLarge, Failure::Incomplete, Failure::Aborted] {
            assert_eq!(Failure::from_code(f.kind().code()), Some(f));
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after_ms("120", 0), Some(120_000));
        assert_eq!(retry_after_ms(" 0 ", 0), Some(0));
        assert_eq!(retry_after_ms("-1", 0), None);
        assert_eq!(retry_after_ms("soon", 0), None);
        // RFC 9110's example date is 784111777 s after the epoch.
        assert_eq!(imf_fixdate_ms("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770_000), Some(7_000));
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_787_000), Some(0));
        assert_eq!(imf_fixdate_ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(imf_fixdate_ms("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600_000));
        assert_eq!(imf_fixdate_ms("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }
}
