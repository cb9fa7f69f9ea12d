//! The host protocol through UniFFI (docs/sync.md): [`SyncMachine`], a
//! thread-safe shell over [`turnout_core::sync::SyncMachine`] for the Python,
//! Kotlin and Swift drivers.
//!
//! A driver loops on [`SyncMachine::next`], performs the [`SyncAction`] (one
//! HTTP request under one deadline, or a wakeable sleep), reports it with
//! [`SyncMachine::on_fetch`] / [`SyncMachine::on_upload`], and drains
//! [`SyncMachine::take_notices_json`] into its logger and callbacks. Every
//! rule is the core's; nothing is decided here.

use std::sync::{Arc, Mutex, MutexGuard};

use turnout_core::sync::{self, Action, Outcome, SyncOptions};

use crate::uniffi_api::{Client, TurnoutError};

/// What a [`SyncAction`] asks the host to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncActionKind {
    /// `GET url` (`If-None-Match: etag` when set) under one deadline of
    /// `timeout_ms`, reading at most `max_bytes` of body; then `on_fetch`.
    Fetch,
    /// `POST url` of `bytes` (`application/octet-stream`) under one deadline
    /// of `timeout_ms`; then `on_upload` with `seq`.
    Upload,
    /// Sleep `wait_ms` (woken early by `poll_now`, `flush_now`, `stop`), then `next` again.
    Wait,
    /// The sync is over: end the loop.
    Stop,
}

/// What the host does next: the fields of its `kind` are set, the others
/// are `None`, 0 or empty.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncAction {
    /// Which action.
    pub kind: SyncActionKind,
    /// The config URL (fetch) or the events URL (upload).
    pub url: Option<String>,
    /// The `If-None-Match` value of a fetch, if any.
    pub etag: Option<String>,
    /// The request's deadline: connect, headers and body together (fetch, upload).
    pub timeout_ms: u64,
    /// The largest config body to read (fetch); more is a `TOO_LARGE` failure.
    pub max_bytes: u64,
    /// The batch's sequence number (upload).
    pub seq: u64,
    /// How many events the batch holds (upload).
    pub events: u64,
    /// The encoded batch, docs/wire-format.md (upload).
    pub bytes: Vec<u8>,
    /// How long to sleep (wait).
    pub wait_ms: u64,
}

impl From<Action> for SyncAction {
    fn from(a: Action) -> Self {
        let none = SyncAction {
            kind: SyncActionKind::Stop,
            url: None,
            etag: None,
            timeout_ms: 0,
            max_bytes: 0,
            seq: 0,
            events: 0,
            bytes: Vec::new(),
            wait_ms: 0,
        };
        match a {
            Action::Fetch { url, etag, timeout_ms, max_bytes } => {
                SyncAction { kind: SyncActionKind::Fetch, url: Some(url), etag, timeout_ms, max_bytes, ..none }
            }
            Action::Upload { url, seq, bytes, events, timeout_ms } => {
                SyncAction { kind: SyncActionKind::Upload, url: Some(url), seq, bytes, events, timeout_ms, ..none }
            }
            Action::Wait { ms } => SyncAction { kind: SyncActionKind::Wait, wait_ms: ms, ..none },
            Action::Stop => none,
        }
    }
}

/// Config sync and event upload of one [`Client`] (docs/sync.md). Thread-safe:
/// every call takes an internal lock, so `poll_now`, `flush_now` and `stop`
/// may come from any thread while the driver's loop runs.
#[derive(Debug, uniffi::Object)]
pub struct SyncMachine {
    inner: Mutex<sync::SyncMachine>,
}

impl SyncMachine {
    fn lock(&self) -> MutexGuard<'_, sync::SyncMachine> {
        // Nothing in the machine panics; a poisoned lock still holds a consistent machine.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[uniffi::export]
impl SyncMachine {
    /// A sync for `client` with `options_json` (docs/sync.md section 2:
    /// `{"configUrl": ..., "eventsUrl": ..., "pollIntervalMs": ...}`).
    /// Invalid options raise `TurnoutError::Options`.
    #[uniffi::constructor]
    pub fn new(client: Arc<Client>, options_json: String) -> Result<Arc<SyncMachine>, TurnoutError> {
        let machine = sync::SyncMachine::new(client.core(), SyncOptions::from_json(&options_json)?)?;
        Ok(Arc::new(SyncMachine { inner: Mutex::new(machine) }))
    }

    /// What to do next at host time `now_ms` (monotonic milliseconds).
    pub fn next(&self, now_ms: u64) -> SyncAction {
        self.lock().next(now_ms).into()
    }

    /// Reports the last fetch: a response (`status`, `etag`, `retry_after`,
    /// the whole `body`), or a failure when `failure` is an error-kind code
    /// (`NETWORK`, `TIMEOUT`, `TOO_LARGE`, `INCOMPLETE`, `ABORTED`; `message`
    /// says what happened).
    #[allow(clippy::too_many_arguments)]
    pub fn on_fetch(
        &self,
        now_ms: u64,
        status: u16,
        etag: Option<String>,
        retry_after: Option<String>,
        body: Vec<u8>,
        failure: Option<String>,
        message: String,
    ) {
        let outcome =
            Outcome::from_parts(status, etag.as_deref(), retry_after.as_deref(), &body, failure.as_deref(), &message);
        self.lock().on_fetch(now_ms, outcome);
    }

    /// Reports the upload of batch `seq`, as [`SyncMachine::on_fetch`] (no body).
    pub fn on_upload(
        &self,
        now_ms: u64,
        seq: u64,
        status: u16,
        retry_after: Option<String>,
        failure: Option<String>,
        message: String,
    ) {
        let outcome = Outcome::from_parts(status, None, retry_after.as_deref(), &[], failure.as_deref(), &message);
        self.lock().on_upload(now_ms, seq, outcome);
    }

    /// Makes a config fetch due now (wake the loop after calling it).
    pub fn poll_now(&self) {
        self.lock().poll_now();
    }

    /// Makes an upload round due now (wake the loop after calling it).
    pub fn flush_now(&self) {
        self.lock().flush_now();
    }

    /// Stops: with `flush`, what is queued is uploaded first (one attempt per
    /// batch), then `next` gives `Stop` (wake the loop after calling it).
    pub fn stop(&self, flush: bool) {
        self.lock().stop(flush);
    }

    /// The notices since the last call, oldest first, as a JSON array
    /// (docs/sync.md section 7: `[{"notice": "error", "channel": "config", ...}]`).
    pub fn take_notices_json(&self) -> String {
        let notices = self.lock().take_notices();
        serde_json::to_string(&notices).unwrap_or_else(|_| "[]".to_string())
    }

    /// The state as a JSON object (`turnout_core::sync::SyncState`: `ready`,
    /// `stale`, `etag`, `configFailures`, `batchesAcked`, ...).
    pub fn state_json(&self) -> String {
        let state = self.lock().state();
        serde_json::to_string(&state).unwrap_or_else(|_| "{}".to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_through_the_uniffi_surface() {
        let client = Client::empty(r#"{"fixedTimeMs": 0}"#.into()).unwrap();
        let bad = SyncMachine::new(client.clone(), r#"{"pollIntervalMs": 5}"#.into()).unwrap_err();
        assert!(matches!(bad, TurnoutError::Options { .. }), "{bad}");
        let opts = r#"{"configUrl": "u", "eventsUrl": "e", "pollIntervalMs": 100, "jitter": 0, "timeoutMs": 50}"#;
        let sync = SyncMachine::new(client.clone(), opts.into()).unwrap();
        let a = sync.next(0);
        assert_eq!(
            (a.kind, a.url.as_deref(), a.timeout_ms, a.max_bytes > 0),
            (SyncActionKind::Fetch, Some("u"), 50, true)
        );
        sync.on_fetch(1, 0, None, None, Vec::new(), Some("TIMEOUT".into()), "slow".into());
        assert!(sync.take_notices_json().contains(r#""kind":"TIMEOUT""#));
        let body = br#"{"schema": 1, "rollouts": [{"variable": "v", "rollouts": [], "default": 1}]}"#.to_vec();
        sync.poll_now();
        assert_eq!(sync.next(2).kind, SyncActionKind::Fetch);
        sync.on_fetch(3, 200, Some("\"e1\"".into()), None, body, None, String::new());
        assert!(sync.state_json().contains(r#""etag":"\"e1\"""#));
        client.track("t".into(), 1.0, Default::default());
        sync.stop(true);
        let up = sync.next(4);
        assert_eq!(
            (up.kind, up.url.as_deref(), up.events, up.bytes.is_empty()),
            (SyncActionKind::Upload, Some("e"), 1, false)
        );
        sync.on_upload(5, up.seq, 204, None, None, String::new());
        assert_eq!(sync.next(6).kind, SyncActionKind::Stop);
    }
}
