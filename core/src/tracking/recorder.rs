//! The bounded event queue: folding, batching, ack/nack. Sans I/O: hosts take
//! batches of bytes and report back.

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;

use super::event::Event;
use super::wire::{encode_batch, BatchHeader};

/// Which decisions are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecisionEvents {
    /// Every decision that resolves through an experiment or a rollout (incl. its default).
    #[default]
    All,
    /// Only decisions taken by experiments.
    ExperimentsOnly,
    /// No decision events (`track()` still records).
    Off,
}

/// Tracking settings.
#[derive(Debug, Clone)]
pub struct TrackingOptions {
    /// Which decisions are recorded.
    pub decisions: DecisionEvents,
    /// Facet names never recorded (PII).
    pub exclude_facets: Vec<String>,
    /// The most events (folded records) waiting for a batch; the oldest are dropped beyond it.
    pub max_queue: usize,
    /// The most distinct fold keys tracked at once; beyond it repeats are queued unfolded.
    pub max_fold_keys: usize,
    /// The most batches taken but not yet acked (in flight or waiting for retry);
    /// beyond it the oldest is dropped and counted.
    pub max_unacked_batches: usize,
    /// Identifies this client instance in batch headers (de-duplication key with `seq`).
    pub client_id: String,
    /// SDK name written in batch headers.
    pub sdk: String,
    /// SDK version written in batch headers.
    pub sdk_version: String,
    /// Platform written in batch headers.
    pub platform: String,
}

impl Default for TrackingOptions {
    fn default() -> Self {
        TrackingOptions {
            decisions: DecisionEvents::All,
            exclude_facets: Vec::new(),
            max_queue: 10_000,
            max_fold_keys: 10_000,
            max_unacked_batches: 64,
            client_id: String::new(),
            sdk: "turnout-rust".into(),
            sdk_version: env!("CARGO_PKG_VERSION").into(),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// A batch handed to the host: upload `bytes`, then `ack(seq)` or `nack(seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Sequence number (unique per client).
    pub seq: u64,
    /// The encoded batch (docs/wire-format.md).
    pub bytes: Vec<u8>,
    /// How many events (folded records) it holds.
    pub events: usize,
}

/// Counters describing the queue; every loss is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TrackingStats {
    /// Occurrences recorded (decisions and tracks, including folded repeats).
    pub recorded: u64,
    /// Occurrences folded into an earlier identical event.
    pub folded: u64,
    /// Occurrences dropped because the queue was full or unacked batches were evicted.
    pub dropped: u64,
    /// Occurrences queued unfolded because the fold table was full.
    pub fold_overflow: u64,
    /// Events waiting for a batch.
    pub queued: usize,
    /// Batches taken and not yet acked or nacked.
    pub in_flight: usize,
    /// Nacked batches waiting to be taken again.
    pub retrying: usize,
}

struct Held {
    batch: Batch,
    occurrences: u64,
}

/// The queue state, behind the client's mutex.
pub(crate) struct Recorder {
    pub opts: TrackingOptions,
    pending: VecDeque<Event>,
    /// The fold key of each pending event (parallel to `pending`), so an
    /// event's fold entry leaves the table with it.
    keys: VecDeque<u64>,
    /// Absolute id of `pending[0]`.
    base: u64,
    fold: HashMap<u64, u64, FxBuildHasher>,
    in_flight: VecDeque<Held>,
    retry: VecDeque<Held>,
    next_seq: u64,
    unreported_dropped: u64,
    unreported_overflow: u64,
    stats: TrackingStats,
}

impl Recorder {
    pub(crate) fn new(opts: TrackingOptions) -> Recorder {
        Recorder {
            opts,
            pending: VecDeque::new(),
            keys: VecDeque::new(),
            base: 0,
            fold: HashMap::default(),
            in_flight: VecDeque::new(),
            retry: VecDeque::new(),
            next_seq: 1,
            unreported_dropped: 0,
            unreported_overflow: 0,
            stats: TrackingStats::default(),
        }
    }

    /// Folds into an earlier identical event of the pending batch; returns
    /// `false` when the caller must build and [`Recorder::push`] a new event.
    #[inline]
    pub(crate) fn fold(&mut self, key: u64) -> bool {
        if let Some(&id) = self.fold.get(&key) {
            if id >= self.base {
                if let Some(e) = self.pending.get_mut((id - self.base) as usize) {
                    e.count += 1;
                    self.stats.recorded += 1;
                    self.stats.folded += 1;
                    return true;
                }
            }
        }
        false
    }

    /// Queues a new event under fold key `key`.
    pub(crate) fn push(&mut self, key: u64, event: Event) {
        self.stats.recorded += event.count;
        if self.pending.len() >= self.opts.max_queue.max(1) {
            if let Some(old) = self.pending.pop_front() {
                if let Some(k) = self.keys.pop_front() {
                    self.forget(k, self.base);
                }
                self.base += 1;
                self.lose(old.count);
            }
        }
        let id = self.base + self.pending.len() as u64;
        // The table only holds entries of pending events: no scan is needed.
        if self.fold.len() < self.opts.max_fold_keys {
            self.fold.insert(key, id);
        } else {
            self.stats.fold_overflow += event.count;
            self.unreported_overflow += event.count;
        }
        self.keys.push_back(key);
        self.pending.push_back(event);
    }

    fn lose(&mut self, occurrences: u64) {
        self.stats.dropped += occurrences;
        self.unreported_dropped += occurrences;
    }

    /// Removes `key`'s entry if it still points at event `id`.
    #[inline]
    fn forget(&mut self, key: u64, id: u64) {
        if self.fold.get(&key) == Some(&id) {
            self.fold.remove(&key);
        }
    }

    /// The next batch: a nacked one first (same seq, same bytes), else up to
    /// `max_events` pending events. `None` when there is nothing to send.
    pub(crate) fn take_batch(&mut self, max_events: usize, now_ms: i64) -> Option<Batch> {
        if let Some(h) = self.retry.pop_front() {
            let b = h.batch.clone();
            self.in_flight.push_back(h);
            return Some(b);
        }
        if self.pending.is_empty() && self.unreported_dropped == 0 && self.unreported_overflow == 0 {
            return None;
        }
        let n = max_events.max(1).min(self.pending.len());
        let events: Vec<Event> = self.pending.drain(..n).collect();
        if self.pending.is_empty() {
            self.fold.clear();
            self.keys.clear();
        } else {
            for i in 0..n as u64 {
                if let Some(k) = self.keys.pop_front() {
                    self.forget(k, self.base + i);
                }
            }
        }
        self.base += n as u64;
        let header = BatchHeader {
            client_id: self.opts.client_id.clone(),
            seq: self.next_seq,
            created_at_ms: now_ms,
            sdk: self.opts.sdk.clone(),
            sdk_version: self.opts.sdk_version.clone(),
            platform: self.opts.platform.clone(),
            dropped: self.unreported_dropped,
            fold_overflow: self.unreported_overflow,
        };
        self.next_seq += 1;
        self.unreported_dropped = 0;
        self.unreported_overflow = 0;
        let occurrences = events.iter().map(|e| e.count).sum();
        let batch = Batch { seq: header.seq, bytes: encode_batch(&header, &events), events: events.len() };
        self.in_flight.push_back(Held { batch: batch.clone(), occurrences });
        self.bound_unacked();
        Some(batch)
    }

    fn bound_unacked(&mut self) {
        while self.in_flight.len() + self.retry.len() > self.opts.max_unacked_batches.max(1) {
            // Evict the oldest held batch (lowest seq) wherever it is.
            let oldest_retry = self.retry.iter().map(|h| h.batch.seq).min();
            let oldest_flight = self.in_flight.front().map(|h| h.batch.seq);
            let evicted = match (oldest_retry, oldest_flight) {
                (Some(r), Some(f)) if r < f => self.remove_retry(r),
                (_, Some(_)) => self.in_flight.pop_front(),
                (Some(r), None) => self.remove_retry(r),
                (None, None) => None,
            };
            match evicted {
                Some(h) => self.lose(h.occurrences),
                None => break,
            }
        }
    }

    fn remove_retry(&mut self, seq: u64) -> Option<Held> {
        let i = self.retry.iter().position(|h| h.batch.seq == seq)?;
        self.retry.remove(i)
    }

    /// The host delivered batch `seq`: forget it. `false` if unknown.
    pub(crate) fn ack(&mut self, seq: u64) -> bool {
        match self.in_flight.iter().position(|h| h.batch.seq == seq) {
            Some(i) => self.in_flight.remove(i).is_some(),
            None => self.remove_retry(seq).is_some(),
        }
    }

    /// The host failed to deliver batch `seq`: it is taken again first. `false` if unknown.
    pub(crate) fn nack(&mut self, seq: u64) -> bool {
        match self.in_flight.iter().position(|h| h.batch.seq == seq) {
            Some(i) => match self.in_flight.remove(i) {
                Some(h) => {
                    // Keep retries in seq order so the oldest goes first.
                    let at = self.retry.iter().position(|r| r.batch.seq > seq).unwrap_or(self.retry.len());
                    self.retry.insert(at, h);
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    pub(crate) fn stats(&self) -> TrackingStats {
        TrackingStats {
            queued: self.pending.len(),
            in_flight: self.in_flight.len(),
            retrying: self.retry.len(),
            ..self.stats
        }
    }
}

/// The fold key of a `track()` event: equal events get equal keys.
/// (A 64-bit hash: two different events collide with probability ~2^-64 per pair.)
pub(crate) fn track_fold_key(service: &str, name: &str, facets_fp: u64, value: f64) -> u64 {
    let mut kb = crate::hash::KeyBuf::new();
    kb.push(&facets_fp.to_le_bytes());
    kb.push(service.as_bytes());
    kb.push_byte(0);
    kb.push(name.as_bytes());
    kb.push_byte(0xFF);
    kb.push(&value.to_bits().to_le_bytes());
    kb.hash()
}
