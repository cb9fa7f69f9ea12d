//! The host protocol (docs/sync.md) for the JavaScript driver: the core's
//! `turnout_core::sync::SyncMachine` as the class `WasmSync`, which the
//! facade's `Sync` and `Poller` (`wasm/js/src/poller.js`) drive with `fetch`
//! and timers. Every rule is the core's; this file only converts.
//!
//! Cheap to cross: `next(now)` returns the kind of the action as a small
//! integer and keeps the action; its fields are read with getters only when
//! the driver needs them (a `Wait` costs one more call, for `waitMs`), and an
//! upload's bytes are moved out once with `takeBytes()`. Outcomes arrive as
//! flat arguments (`turnout_core::sync::Outcome::from_parts`); notices and
//! state leave as JSON (cold: a few per request).

use turnout_core::sync::{Action, Outcome, SyncError, SyncMachine, SyncOptions};
use wasm_bindgen::prelude::*;

use crate::error::{js, JsResult};
use crate::WasmClient;

/// The kinds `WasmSync::next` returns.
const WAIT: u32 = 0;
const FETCH: u32 = 1;
const UPLOAD: u32 = 2;
const STOP: u32 = 3;

/// The sync state machine of one client: what to do next, and what happened.
#[wasm_bindgen]
pub struct WasmSync {
    machine: SyncMachine,
    /// The last action `next` returned (read by the getters).
    action: Action,
}

/// Host milliseconds as the machine takes them (negative and NaN: 0).
fn ms(v: f64) -> u64 {
    v as u64
}

#[wasm_bindgen]
impl WasmSync {
    /// A sync for `client`, from options as a JSON object in the form of
    /// `turnout_core::sync::SyncOptions`; bad options throw `INVALID_OPTIONS`.
    #[wasm_bindgen(constructor)]
    pub fn new(client: &WasmClient, options_json: &str) -> JsResult<WasmSync> {
        // The byte reader, as everywhere on the cold paths of this module:
        // `SyncOptions::from_json` reads a `&str`, which links a second one.
        let options: SyncOptions =
            serde_json::from_slice(options_json.as_bytes()).map_err(|e| js(SyncError::Options(e.to_string())))?;
        let machine = SyncMachine::new(client.core(), options).map_err(js)?;
        Ok(WasmSync { machine, action: Action::Stop })
    }

    /// The next action at host time `now_ms` (monotonic ms): 0 wait
    /// (`waitMs`), 1 fetch (`url`, `etag`, `timeoutMs`, `maxBytes`), 2 upload
    /// (`url`, `seq`, `events`, `timeoutMs`, `takeBytes()`), 3 stop.
    pub fn next(&mut self, now_ms: f64) -> u32 {
        self.action = self.machine.next(ms(now_ms));
        match self.action {
            Action::Wait { .. } => WAIT,
            Action::Fetch { .. } => FETCH,
            Action::Upload { .. } => UPLOAD,
            Action::Stop => STOP,
        }
    }

    /// The URL of the last fetch or upload.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> Option<String> {
        match &self.action {
            Action::Fetch { url, .. } | Action::Upload { url, .. } => Some(url.clone()),
            _ => None,
        }
    }

    /// The `If-None-Match` value of the last fetch, if any.
    #[wasm_bindgen(getter)]
    pub fn etag(&self) -> Option<String> {
        match &self.action {
            Action::Fetch { etag, .. } => etag.clone(),
            _ => None,
        }
    }

    /// The deadline of the last fetch or upload (ms).
    #[wasm_bindgen(getter, js_name = timeoutMs)]
    pub fn timeout_ms(&self) -> f64 {
        match self.action {
            Action::Fetch { timeout_ms, .. } | Action::Upload { timeout_ms, .. } => timeout_ms as f64,
            _ => 0.0,
        }
    }

    /// The largest body the last fetch may read.
    #[wasm_bindgen(getter, js_name = maxBytes)]
    pub fn max_bytes(&self) -> f64 {
        match self.action {
            Action::Fetch { max_bytes, .. } => max_bytes as f64,
            _ => 0.0,
        }
    }

    /// The batch of the last upload.
    #[wasm_bindgen(getter)]
    pub fn seq(&self) -> f64 {
        match self.action {
            Action::Upload { seq, .. } => seq as f64,
            _ => 0.0,
        }
    }

    /// How many events the last upload holds.
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> f64 {
        match self.action {
            Action::Upload { events, .. } => events as f64,
            _ => 0.0,
        }
    }

    /// How long the last wait is (ms).
    #[wasm_bindgen(getter, js_name = waitMs)]
    pub fn wait_ms(&self) -> f64 {
        match self.action {
            Action::Wait { ms } => ms as f64,
            _ => 0.0,
        }
    }

    /// The bytes of the last upload, moved out (a second call gives none).
    #[wasm_bindgen(js_name = takeBytes)]
    pub fn take_bytes(&mut self) -> Vec<u8> {
        match &mut self.action {
            Action::Upload { bytes, .. } => std::mem::take(bytes),
            _ => Vec::new(),
        }
    }

    /// Reports the last fetch: `failure` (`NETWORK`, `TIMEOUT`, `TOO_LARGE`,
    /// `INCOMPLETE`, `ABORTED`) and `message` when it got no usable response,
    /// else `status`, the `ETag` and `Retry-After` headers and the whole body.
    #[wasm_bindgen(js_name = onFetch)]
    #[allow(clippy::too_many_arguments)]
    pub fn on_fetch(
        &mut self,
        now_ms: f64,
        status: u16,
        etag: Option<String>,
        retry_after: Option<String>,
        body: &[u8],
        failure: Option<String>,
        message: &str,
    ) {
        let outcome =
            Outcome::from_parts(status, etag.as_deref(), retry_after.as_deref(), body, failure.as_deref(), message);
        self.machine.on_fetch(ms(now_ms), outcome);
    }

    /// Reports the upload of batch `seq`, as [`WasmSync::on_fetch`] without a body.
    #[wasm_bindgen(js_name = onUpload)]
    pub fn on_upload(
        &mut self,
        now_ms: f64,
        seq: f64,
        status: u16,
        retry_after: Option<String>,
        failure: Option<String>,
        message: &str,
    ) {
        let outcome = Outcome::from_parts(status, None, retry_after.as_deref(), &[], failure.as_deref(), message);
        self.machine.on_upload(ms(now_ms), seq as u64, outcome);
    }

    /// Fetch the config at the next `next` (the driver wakes its loop).
    #[wasm_bindgen(js_name = pollNow)]
    pub fn poll_now(&mut self) {
        self.machine.poll_now();
    }

    /// Upload the queue at the next `next` (the driver wakes its loop).
    #[wasm_bindgen(js_name = flushNow)]
    pub fn flush_now(&mut self) {
        self.machine.flush_now();
    }

    /// Stop; with `flush`, upload what is queued first (one attempt per batch).
    pub fn stop(&mut self, flush: bool) {
        self.machine.stop(flush);
    }

    /// The notices since the last call, oldest first, as a JSON array
    /// (docs/sync.md section 7).
    #[wasm_bindgen(js_name = takeNoticesJson)]
    pub fn take_notices_json(&mut self) -> String {
        serde_json::to_string(&self.machine.take_notices()).unwrap_or_default()
    }

    /// The state (`turnout_core::sync::SyncState`) as JSON.
    #[wasm_bindgen(js_name = stateJson)]
    pub fn state_json(&self) -> String {
        serde_json::to_string(&self.machine.state()).unwrap_or_default()
    }
}
