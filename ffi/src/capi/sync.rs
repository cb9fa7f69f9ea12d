//! The host protocol (docs/sync.md): config sync and event upload as the
//! core's state machine ([`turnout_core::sync::SyncMachine`]) behind an opaque
//! handle. The host owns only the I/O: it asks `turnout_sync_next` what to
//! do, does it (an HTTP request, a sleep) and reports the outcome with
//! `turnout_sync_on_fetch` / `turnout_sync_on_upload`; after each step it
//! reads `turnout_sync_take_notices` to log and call back.

use std::ptr;
use std::sync::{Mutex, MutexGuard};

use turnout_core::sync::{Action, Outcome, SyncMachine, SyncOptions};

use super::client::TurnoutClient;
use super::error::{call, guard, Fail, TurnoutError, TurnoutStatus};
use super::{bytes_arg, clear, handle, put, str_arg, TurnoutBytes};

/// The host protocol of one client (opaque): see docs/sync.md. It shares the
/// client's engine, so it stays valid after its client is freed. Free with
/// `turnout_sync_free`. Thread-safe (a mutex inside).
pub struct TurnoutSync {
    machine: Mutex<SyncMachine>,
}

impl TurnoutSync {
    fn lock(&self) -> MutexGuard<'_, SyncMachine> {
        // A panic inside a call (reported as `PANIC`) leaves the machine usable.
        self.machine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the host does next (`TurnoutSyncAction.kind`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnoutSyncActionKind {
    /// Nothing more to do: the sync was stopped (and drained). End the loop.
    Stop = 0,
    /// Sleep `wait_ms` (less when woken by a poll, a flush or a stop), then ask again.
    Wait = 1,
    /// `GET url` (`If-None-Match: etag` unless empty) under one deadline of
    /// `timeout_ms` (connect, headers and body), reading at most `max_bytes`
    /// of body; then `turnout_sync_on_fetch`.
    Fetch = 2,
    /// `POST url` of `bytes` (`application/octet-stream`) under one deadline
    /// of `timeout_ms`; then `turnout_sync_on_upload` with `seq`.
    Upload = 3,
}

/// An action of `turnout_sync_next`: the fields its `kind` names are set,
/// the others are zero or empty. Free with `turnout_sync_action_free`.
#[repr(C)]
#[derive(Debug)]
pub struct TurnoutSyncAction {
    /// What to do.
    pub kind: TurnoutSyncActionKind,
    /// The URL (UTF-8) of a fetch or an upload.
    pub url: TurnoutBytes,
    /// A fetch's `If-None-Match` value; empty: send none.
    pub etag: TurnoutBytes,
    /// The deadline of a fetch or an upload, in ms.
    pub timeout_ms: u64,
    /// The largest body a fetch may read (more: report the failure `TOO_LARGE`).
    pub max_bytes: u64,
    /// An upload's batch sequence number (give it back to `turnout_sync_on_upload`).
    pub seq: u64,
    /// How many events an upload's batch holds.
    pub events: u64,
    /// An upload's body: the encoded batch (docs/wire-format.md).
    pub bytes: TurnoutBytes,
    /// How long a wait lasts, in ms (at least 1).
    pub wait_ms: u64,
}

const NO_ACTION: TurnoutSyncAction = TurnoutSyncAction {
    kind: TurnoutSyncActionKind::Stop,
    url: TurnoutBytes::EMPTY,
    etag: TurnoutBytes::EMPTY,
    timeout_ms: 0,
    max_bytes: 0,
    seq: 0,
    events: 0,
    bytes: TurnoutBytes::EMPTY,
    wait_ms: 0,
};

impl TurnoutSyncAction {
    fn of(action: Action) -> TurnoutSyncAction {
        match action {
            Action::Stop => NO_ACTION,
            Action::Wait { ms } => TurnoutSyncAction { kind: TurnoutSyncActionKind::Wait, wait_ms: ms, ..NO_ACTION },
            Action::Fetch { url, etag, timeout_ms, max_bytes } => TurnoutSyncAction {
                kind: TurnoutSyncActionKind::Fetch,
                url: TurnoutBytes::text(url),
                etag: TurnoutBytes::text(etag.unwrap_or_default()),
                timeout_ms,
                max_bytes,
                ..NO_ACTION
            },
            Action::Upload { url, seq, bytes, events, timeout_ms } => TurnoutSyncAction {
                kind: TurnoutSyncActionKind::Upload,
                url: TurnoutBytes::text(url),
                timeout_ms,
                seq,
                events,
                bytes: TurnoutBytes::new(bytes),
                ..NO_ACTION
            },
        }
    }

    /// # Safety
    /// The action must come from [`TurnoutSyncAction::of`] and not have been freed.
    unsafe fn release(self) {
        self.url.release();
        self.etag.release();
        self.bytes.release();
    }
}

impl super::Output for TurnoutSyncAction {
    unsafe fn discard(self) {
        self.release();
    }
}

/// An optional `(ptr, len)` string argument: empty is `None`.
///
/// # Safety
/// As [`str_arg`].
unsafe fn opt_str<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<Option<&'a str>, Fail> {
    Ok(Some(str_arg(ptr, len, what)?).filter(|s| !s.is_empty()))
}

/// Runs `f` on the machine of a live sync (for the calls without output).
///
/// # Safety
/// `sync` must be NULL or live; `error` NULL or writable.
unsafe fn with_sync(
    sync: *const TurnoutSync,
    error: *mut *mut TurnoutError,
    f: impl FnOnce(&mut SyncMachine) -> Result<(), Fail>,
) -> TurnoutStatus {
    call(error, || f(&mut handle(sync, "sync")?.lock()))
}

/// Creates the sync of `client` from options as JSON text (docs/sync.md,
/// section 2: `{"configUrl": "...", "eventsUrl": "...", "pollIntervalMs":
/// 30000, ...}`, camelCase, every field optional but a `configUrl` or an
/// `eventsUrl` is required). Nothing happens until `turnout_sync_next`.
///
/// Errors: `OPTIONS` (unknown field, wrong type, no URL, a zero interval, a
/// jitter outside [0, 1)), `INVALID_UTF8`, `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; pointers NULL or valid for the lengths
/// given; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_new(
    client: *const TurnoutClient,
    options: *const u8,
    options_len: usize,
    out_sync: *mut *mut TurnoutSync,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_sync, ptr::null_mut());
        let c = handle(client, "client")?;
        let options = str_arg(options, options_len, "options")?;
        let machine = SyncMachine::new(&c.client, SyncOptions::from_json(options)?)?;
        put(out_sync, super::boxed(TurnoutSync { machine: Mutex::new(machine) }), "out_sync")
    })
}

/// Frees a sync; NULL does nothing. Its client is not affected.
///
/// Not thread-safe with other calls on the same sync: call it last.
///
/// # Safety
/// `sync` must be NULL or a live sync, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_free(sync: *mut TurnoutSync) {
    guard((), || super::unbox(sync));
}

/// What to do next at host time `now_ms` (monotonic milliseconds, any
/// origin), in `*out_action` (free with `turnout_sync_action_free`). At most
/// one request is outstanding: after a fetch or an upload, report it before
/// asking again (a request not reported by its deadline counts as timed out).
///
/// Errors: `NULL_ARGUMENT` (the machine is not asked). Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_next(
    sync: *const TurnoutSync,
    now_ms: u64,
    out_action: *mut TurnoutSyncAction,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_action, NO_ACTION);
        let s = handle(sync, "sync")?;
        if out_action.is_null() {
            return Err(Fail::null("out_action"));
        }
        let action = s.lock().next(now_ms);
        put(out_action, TurnoutSyncAction::of(action), "out_action")
    })
}

/// Frees an action's strings and bytes; an empty action does nothing.
///
/// Thread-safe (each action is freed once, by its owner).
///
/// # Safety
/// `action` must come from `turnout_sync_next` and not be freed before.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_action_free(action: TurnoutSyncAction) {
    guard((), || action.release());
}

/// Reports the outcome of the last fetch at host time `now_ms`: either a
/// complete response (`status`, the `ETag` and `Retry-After` headers, empty
/// when absent, and the whole `body`), or, when `failure` is not empty, no
/// usable response: `failure` is an error kind code (`NETWORK`, `TIMEOUT`,
/// `TOO_LARGE`, `INCOMPLETE`, `ABORTED`; any other counts as `NETWORK`) and
/// `message` the host's description. A report with no fetch outstanding is
/// ignored.
///
/// Errors: `INVALID_UTF8`, `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; pointers NULL or valid for the lengths given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn turnout_sync_on_fetch(
    sync: *const TurnoutSync,
    now_ms: u64,
    status: u16,
    etag: *const u8,
    etag_len: usize,
    retry_after: *const u8,
    retry_after_len: usize,
    body: *const u8,
    body_len: usize,
    failure: *const u8,
    failure_len: usize,
    message: *const u8,
    message_len: usize,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    with_sync(sync, error, |m| {
        let outcome = Outcome::from_parts(
            status,
            opt_str(etag, etag_len, "etag")?,
            opt_str(retry_after, retry_after_len, "retry_after")?,
            bytes_arg(body, body_len, "body")?,
            opt_str(failure, failure_len, "failure")?,
            str_arg(message, message_len, "message")?,
        );
        m.on_fetch(now_ms, outcome);
        Ok(())
    })
}

/// Reports the outcome of the upload of batch `seq` at host time `now_ms`:
/// a response (`status`, `Retry-After` empty when absent) or, when `failure`
/// is not empty, a failure as for `turnout_sync_on_fetch`. A report for
/// another batch, or with no upload outstanding, is ignored.
///
/// Errors: `INVALID_UTF8`, `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; pointers NULL or valid for the lengths given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn turnout_sync_on_upload(
    sync: *const TurnoutSync,
    now_ms: u64,
    seq: u64,
    status: u16,
    retry_after: *const u8,
    retry_after_len: usize,
    failure: *const u8,
    failure_len: usize,
    message: *const u8,
    message_len: usize,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    with_sync(sync, error, |m| {
        let outcome = Outcome::from_parts(
            status,
            None,
            opt_str(retry_after, retry_after_len, "retry_after")?,
            &[],
            opt_str(failure, failure_len, "failure")?,
            str_arg(message, message_len, "message")?,
        );
        m.on_upload(now_ms, seq, outcome);
        Ok(())
    })
}

/// Makes a config fetch due now; wake the loop afterwards.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_poll_now(
    sync: *const TurnoutSync,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    with_sync(sync, error, |m| {
        m.poll_now();
        Ok(())
    })
}

/// Makes an upload round due now; wake the loop afterwards.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_flush_now(
    sync: *const TurnoutSync,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    with_sync(sync, error, |m| {
        m.flush_now();
        Ok(())
    })
}

/// Stops the sync: with `flush`, the next actions upload what is queued (one
/// attempt per batch) before `STOP`; without, `STOP` comes at once (after
/// the request outstanding, if any, is reported). Wake the loop afterwards.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_stop(
    sync: *const TurnoutSync,
    flush: bool,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    with_sync(sync, error, |m| {
        m.stop(flush);
        Ok(())
    })
}

/// Every notice since the last call, oldest first, as a JSON array in
/// `*out_json` (free with `turnout_bytes_free`): objects tagged by
/// `"notice"` (`ready`, `applied` with `report` and `etag`, `error` with
/// `channel`, `kind`, `status`, `message` and `repeat`, `recovered`,
/// `stale`, `fresh`, `dropped`; docs/sync.md, section 7). Log each one whose
/// `repeat` is not true and pass all of them to the user's callbacks.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_take_notices(
    sync: *const TurnoutSync,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let s = handle(sync, "sync")?;
        if out_json.is_null() {
            return Err(Fail::null("out_json"));
        }
        let notices = s.lock().take_notices();
        put(out_json, TurnoutBytes::text(serde_json::to_string(&notices).unwrap_or_default()), "out_json")
    })
}

/// The sync's state as a JSON object in `*out_json` (free with
/// `turnout_bytes_free`): `{"ready", "stale", "etag", "rejectedEtag",
/// "configFailures", "uploadFailures", "nextFetchMs", "nextFlushMs",
/// "batchesAcked", "batchesDropped", "stopped"}`.
///
/// Errors: `NULL_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `sync` must be NULL or live; out-parameters NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn turnout_sync_state(
    sync: *const TurnoutSync,
    out_json: *mut TurnoutBytes,
    error: *mut *mut TurnoutError,
) -> TurnoutStatus {
    call(error, || {
        clear(out_json, TurnoutBytes::EMPTY);
        let state = handle(sync, "sync")?.lock().state();
        put(out_json, TurnoutBytes::text(serde_json::to_string(&state).unwrap_or_default()), "out_json")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn text(b: &TurnoutBytes) -> String {
        if b.ptr.is_null() {
            return String::new();
        }
        // SAFETY: bytes from the library, not freed yet.
        String::from_utf8(unsafe { std::slice::from_raw_parts(b.ptr, b.len) }.to_vec()).unwrap()
    }

    /// A client (fixed clock) and its sync, through the ABI.
    unsafe fn setup(options: &str) -> (*mut TurnoutClient, *mut TurnoutSync) {
        let mut c = ptr::null_mut();
        let o = r#"{"fixedTimeMs": 1700000000000, "clientId": "t"}"#;
        let st = super::super::client::turnout_client_new(
            ptr::null(),
            0,
            o.as_ptr(),
            o.len(),
            &mut c,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(st, TurnoutStatus::Ok);
        let mut s = ptr::null_mut();
        assert_eq!(turnout_sync_new(c, options.as_ptr(), options.len(), &mut s, ptr::null_mut()), TurnoutStatus::Ok);
        (c, s)
    }

    unsafe fn next(s: *const TurnoutSync, now: u64) -> TurnoutSyncAction {
        let mut a = NO_ACTION;
        assert_eq!(turnout_sync_next(s, now, &mut a, ptr::null_mut()), TurnoutStatus::Ok);
        a
    }

    unsafe fn notices(s: *const TurnoutSync) -> String {
        let mut out = TurnoutBytes::EMPTY;
        assert_eq!(turnout_sync_take_notices(s, &mut out, ptr::null_mut()), TurnoutStatus::Ok);
        let t = text(&out);
        out.release();
        t
    }

    #[test]
    fn a_fetch_is_reported_and_installed() {
        unsafe {
            let (c, s) = setup(r#"{"configUrl": "http://u/c", "pollIntervalMs": 1000, "jitter": 0}"#);
            let a = next(s, 5);
            assert_eq!(
                (a.kind, text(&a.url), text(&a.etag), a.timeout_ms),
                (TurnoutSyncActionKind::Fetch, "http://u/c".into(), String::new(), 10_000)
            );
            assert_eq!(a.max_bytes, 16 << 20);
            turnout_sync_action_free(a);
            let body = br#"{"rollouts": [{"variable": "v", "default": 1}]}"#;
            let etag = "\"e1\"";
            let st = turnout_sync_on_fetch(
                s,
                7,
                200,
                etag.as_ptr(),
                etag.len(),
                ptr::null(),
                0,
                body.as_ptr(),
                body.len(),
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null_mut(),
            );
            assert_eq!(st, TurnoutStatus::Ok);
            let n = notices(s);
            assert!(n.starts_with(r#"[{"notice":"applied""#) && n.ends_with(r#"{"notice":"ready"}]"#), "{n}");
            assert_eq!(notices(s), "[]");
            let mut st_json = TurnoutBytes::EMPTY;
            assert_eq!(turnout_sync_state(s, &mut st_json, ptr::null_mut()), TurnoutStatus::Ok);
            assert!(text(&st_json).contains(r#""etag":"\"e1\"","rejectedEtag":null"#), "{}", text(&st_json));
            st_json.release();
            // The next fetch sends the ETag; a failure is a kind code.
            let a = next(s, 1007);
            assert_eq!((a.kind, text(&a.etag)), (TurnoutSyncActionKind::Fetch, etag.into()));
            turnout_sync_action_free(a);
            let (f, m) = ("TIMEOUT", "slow");
            let st = turnout_sync_on_fetch(
                s,
                1010,
                0,
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null(),
                0,
                f.as_ptr(),
                f.len(),
                m.as_ptr(),
                m.len(),
                ptr::null_mut(),
            );
            assert_eq!(st, TurnoutStatus::Ok);
            assert!(notices(s).contains(r#""kind":"TIMEOUT","status":null,"message":"slow","repeat":false"#));
            // Stopping without flush.
            assert_eq!(turnout_sync_stop(s, false, ptr::null_mut()), TurnoutStatus::Ok);
            let a = next(s, 1011);
            assert_eq!(a.kind, TurnoutSyncActionKind::Stop);
            turnout_sync_free(s);
            // The engine kept the fetched config.
            super::super::client::turnout_client_free(c);
        }
    }

    #[test]
    fn uploads_and_errors() {
        unsafe {
            let (c, s) = setup(r#"{"eventsUrl": "http://u/e", "flushIntervalMs": 10, "jitter": 0}"#);
            let name = "m";
            let st = super::super::client::turnout_client_track(
                c,
                name.as_ptr(),
                name.len(),
                1.0,
                ptr::null(),
                0,
                ptr::null_mut(),
            );
            assert_eq!(st, TurnoutStatus::Ok);
            let a = next(s, 0);
            assert_eq!((a.kind, a.wait_ms), (TurnoutSyncActionKind::Wait, 10));
            assert_eq!(turnout_sync_flush_now(s, ptr::null_mut()), TurnoutStatus::Ok);
            assert_eq!(turnout_sync_poll_now(s, ptr::null_mut()), TurnoutStatus::Ok);
            let a = next(s, 1);
            assert_eq!((a.kind, a.events, text(&a.url)), (TurnoutSyncActionKind::Upload, 1, "http://u/e".into()));
            assert!(a.bytes.len > 4 && std::slice::from_raw_parts(a.bytes.ptr, 4) == b"TRNB");
            let seq = a.seq;
            turnout_sync_action_free(a);
            let ra = "3";
            let st = turnout_sync_on_upload(
                s,
                2,
                seq,
                503,
                ra.as_ptr(),
                ra.len(),
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null_mut(),
            );
            assert_eq!(st, TurnoutStatus::Ok);
            assert!(notices(s).contains(r#""channel":"events","kind":"HTTP","status":503"#));
            // Errors: NULL handles and out-parameters, bad options, bad UTF-8.
            let (mut e, mut none) = (ptr::null_mut(), NO_ACTION);
            assert_eq!(turnout_sync_next(ptr::null(), 0, &mut none, &mut e), TurnoutStatus::NullArgument);
            super::super::error::turnout_error_free(e);
            assert_eq!(turnout_sync_next(s, 0, ptr::null_mut(), ptr::null_mut()), TurnoutStatus::NullArgument);
            let bad = [0xffu8];
            let st = turnout_sync_on_upload(
                s,
                3,
                seq,
                200,
                bad.as_ptr(),
                1,
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null_mut(),
            );
            assert_eq!(st, TurnoutStatus::InvalidUtf8);
            let mut s2 = ptr::null_mut();
            for o in ["{}", r#"{"eventsUrl": "u", "jitter": 2}"#, r#"{"eventsURL": "u"}"#, "[1"] {
                assert_eq!(
                    turnout_sync_new(c, o.as_ptr(), o.len(), &mut s2, ptr::null_mut()),
                    TurnoutStatus::Options,
                    "{o}"
                );
                assert!(s2.is_null());
            }
            assert_eq!(
                turnout_sync_new(ptr::null(), ptr::null(), 0, &mut s2, ptr::null_mut()),
                TurnoutStatus::NullArgument
            );
            // A sync outlives its client.
            super::super::client::turnout_client_free(c);
            assert_eq!(turnout_sync_stop(s, true, ptr::null_mut()), TurnoutStatus::Ok);
            let a = next(s, 4);
            assert_eq!((a.kind, a.seq), (TurnoutSyncActionKind::Upload, seq));
            turnout_sync_action_free(a);
            turnout_sync_free(s);
            turnout_sync_free(ptr::null_mut());
            turnout_sync_action_free(NO_ACTION);
        }
    }
}
