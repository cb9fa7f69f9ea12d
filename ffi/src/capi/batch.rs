//! Tracking: batches out of the queue, ack/nack, counters, and the batch
//! codec over its JSON form (conformance vectors, `turnout decode`).

use turnout_core::host::{decode_batch_json, encode_batch_json};

use super::client::TurnoutClient;
use super::error::{call, guard, TurnoutError, TurnoutStatus};
use super::{bytes_arg, clear, handle, put, str_arg, TurnoutBytes};

/// A batch of events to upload: POST `bytes` (`application/octet-stream`),
/// then `turnout_client_ack(seq)` on success or `turnout_client_nack(seq)`.
/// Free with `turnout_batch_free`.
#[repr(C)]
#[derive(Debug)]
pub struct TurnoutBatch {
    /// Sequence number, unique per client (with the client id: the collector's de-duplication key).
    pub seq: u64,
    /// How many events (folded records) it holds.
    pub events: u64,
    /// The encoded batch (docs/wire-format.md); empty when no batch was waiting.
    pub bytes: TurnoutBytes,
}

impl super::Output for TurnoutBatch {
    unsafe fn discard(self) {
        self.bytes.release();
    }
}

impl super::Output for TurnoutTrackingStats {
    unsafe fn discard(self) {}
}

const NO_BATCH: TurnoutBatch = TurnoutBatch { seq: 0, events: 0, bytes: TurnoutBytes::EMPTY };

/// Queue counters. Every loss is counted.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnoutTrackingStats {
    /// Occurrences recorded (decisions and tracks, including folded repeats).
    pub recorded: u64,
    /// Occurrences folded into an earlier identical event.
    pub folded: u64,
    /// Occurrences dropped (queue full, or unacked batches evicted).
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

/// Takes the next batch of at most `max_events` events (a nacked batch comes
/// back first, with the same seq and bytes). When nothing is waiting, returns
/// `TURNOUT_STATUS_OK` with `out_batch->bytes` empty.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_take_batch(
    client: *const TurnoutClient,
    max_events: usize,
    out_batch: *mut TurnoutBatch,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_batch, NO_BATCH);
        let c = handle(client, "client")?;
        let batch = c.client.take_batch(max_events).map_or(NO_BATCH, |b| TurnoutBatch {
            seq: b.seq,
            events: b.events as u64,
            bytes: TurnoutBytes::new(b.bytes),
        });
        put(out_batch, batch, "out_batch")
    })
}

/// Frees a batch's bytes; an empty batch does nothing.
///
/// Thread-safe (each batch is freed once, by its owner).
///
/// # Safety
/// `batch` must come from `turnout_client_take_batch` and not be freed before.
#[no_mangle]
pub unsafe extern "C" fn turnout_batch_free(batch: TurnoutBatch) {
    guard((), || batch.bytes.release());
}

/// Batch `seq` was delivered: forget it. Returns `false` for an unknown seq or a NULL client.
///
/// Thread-safe.
///
/// # Safety
/// `client` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_ack(client: *const TurnoutClient, seq: u64) -> bool {
    guard(false, || client.as_ref().is_some_and(|c| c.client.ack(seq)))
}

/// Batch `seq` was not delivered: it is handed out again first. Returns
/// `false` for an unknown seq or a NULL client.
///
/// Thread-safe.
///
/// # Safety
/// `client` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_nack(client: *const TurnoutClient, seq: u64) -> bool {
    guard(false, || client.as_ref().is_some_and(|c| c.client.nack(seq)))
}

/// The queue counters, written to `*out_stats`.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_client_tracking_stats(
    client: *const TurnoutClient,
    out_stats: *mut TurnoutTrackingStats,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_stats, TurnoutTrackingStats::default());
        let s = handle(client, "client")?.client.tracking_stats();
        let stats = TurnoutTrackingStats {
            recorded: s.recorded,
            folded: s.folded,
            dropped: s.dropped,
            fold_overflow: s.fold_overflow,
            queued: s.queued as u64,
            in_flight: s.in_flight as u64,
            retrying: s.retrying as u64,
        };
        put(out_stats, stats, "out_stats")
    })
}

/// Encodes a batch from its JSON form `{"header": {...}, "events": [...]}`
/// (the form of the batch conformance vectors and of
/// `turnout_decode_batch_json`) into wire bytes in `*out_bytes`.
///
/// Errors: `BATCH_JSON`, `INVALID_UTF8`, `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_encode_batch_json(
    json: *const u8,
    json_len: usize,
    out_bytes: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_bytes, TurnoutBytes::EMPTY);
        let bytes = encode_batch_json(str_arg(json, json_len, "json")?)?;
        put(out_bytes, TurnoutBytes::new(bytes), "out_bytes")
    })
}

/// Decodes wire bytes into the JSON form `{"header": {...}, "events": [...]}`
/// in `*out_json`. A corrupted batch is rejected whole, never mis-decoded.
///
/// Errors: `NOT_A_BATCH`, `BATCH_VERSION`, `BATCH_CHECKSUM`, `BATCH_MALFORMED`,
/// `LIMIT` (the batch would decode to more than its expansion limit),
/// `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// Pointers must be NULL or valid for the lengths given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_decode_batch_json(
    bytes: *const u8,
    bytes_len: usize,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let json = decode_batch_json(bytes_arg(bytes, bytes_len, "bytes")?)?;
        put(out_json, TurnoutBytes::text(json), "out_json")
    })
}
