//! # turnout-collector
//!
//! A tiny HTTP collector for turnout event batches, so that the whole loop
//! (decide, track, upload, decode) runs on one machine: every platform's
//! example and poller can be pointed at it.
//!
//! | request | answer |
//! |---|---|
//! | `POST /events` (`application/octet-stream`: one batch, or a batch stream as written by `turnout eval --events`) | `200` with `{"batches": [{"clientId", "seq", "events", "duplicate"}]}` once the new batches are on disk; `400` with `{"error": "..."}` for a corrupted or foreign body (nothing of it is written); `413` over the size limit; `415` for another content type; `408` for a body slower than the body timeout |
//! | `GET /config` (with `--config FILE`) | `200` with the file and a strong `ETag`; `304` when `If-None-Match` names the current one |
//! | `GET /stats` | `200` with counters (`batches`, `duplicates`, `rejected`, `events`, ..., `timeouts`, `openConnections`) |
//! | `GET /` | a short text describing these endpoints |
//! | `OPTIONS *` | `204`: CORS preflight (every answer allows any origin, so a page served from another local port can poll and upload) |
//!
//! Batches are de-duplicated by `(clientId, seq)` from the batch header: a
//! retried batch (the SDK did not see the first ack) is acknowledged again but
//! written once. Decoded events are appended to the output file as JSON Lines,
//! one event per line with the batch header fields, exactly as `turnout decode`
//! prints them (an empty batch, which still carries loss counters, is one line
//! with `"kind": "batch"`). Restarting on the same output file reloads the
//! keys already written, so de-duplication survives a restart.
//!
//! Appends are atomic and durable: the new batches of one request are one
//! record group, written, `fsync`ed and recorded in a commit log beside the
//! output (`events.jsonl.commit`, the file's committed length) before the
//! `200`. A crash never leaves a torn record that matters: on start, bytes
//! after the last committed length (a group cut by a crash, never
//! acknowledged) are truncated, so restart always works and the client's
//! retry is written, not taken for a duplicate. A batch's key counts as seen
//! only once its lines are durable. (A file from an older collector, without
//! a commit log, is checked line by line instead: an invalid tail is cut.)
//!
//! ## Server
//!
//! HTTP/1.1 by [`hyper`] 1.x (keep-alive, chunked bodies, `Expect:
//! 100-continue`, which real SDK HTTP clients use) on a [`tokio`] runtime:
//! connections are tasks, so slow clients cost memory, not threads. The
//! limits ([`Limits`], each a command-line option):
//!
//! | limit | default | what happens |
//! |---|---|---|
//! | `--max-body-bytes` | 16 MiB | a larger declared `Content-Length` is answered `413` before any of the body is read (no `100 Continue`), then the connection is closed; a chunked body is refused the same way as soon as it passes the limit |
//! | `--header-timeout` | 10 s | the request line and headers, from the connection's opening (or the request's first byte on a keep-alive connection): else the connection is closed |
//! | `--body-timeout` | 30 s | the whole body, from the end of the headers: else `408` and the connection is closed |
//! | `--idle-timeout` | 30 s | a keep-alive connection with no request in progress (or a client that does not read its answer) is closed |
//! | `--max-connections` | 1,024 | connections served at once; more wait in the kernel's accept backlog (1,024, or the kernel's `somaxconn` if lower) until one closes; they are not refused, and past the backlog the kernel drops their SYNs, which clients retry |
//! | `--max-body-memory` | 256 MiB | request bodies held at once over all connections; reading more waits (under the body timeout) |
//! | `--workers` | 4 | runtime threads; decoding and writing run on at most as many more, config reads on as many again: `1 + 3 × workers` threads at most |
//!
//! hyper rather than a higher framework: the collector has five routes and
//! needs per-connection control (a deadline per connection phase, a
//! connection cap, `413` without reading, closing after a refusal) that
//! `axum::serve` does not expose; tower-http's body limit would only replace
//! the few lines that compare `Content-Length`. hyper is what axum, reqwest and
//! tonic build on, maintained by the tokio project.
//!
//! Decoding is [`turnout_core::decode_batch`]; it runs with no lock held. The
//! duplicate check is a hash lookup (client id, then seq: linear in the
//! batches of a body, also when reloading the keys on start). One writer lock
//! serialises the appends: the new batches' lines are serialised straight into
//! the file through a 1 MiB buffer, then the two `fsync`s. Duplicates and
//! `GET /stats` never wait for it.
//!
//! Memory: a body being decoded holds its decoded events (about 200 bytes
//! each: a 16 MiB body of the most compact events is 2.2 million events and
//! peaks near 470 MiB); at most `--workers` bodies are decoded at once, so
//! lower `--max-body-bytes` or `--workers` on a small machine. Run one
//! collector per output file.

#![deny(missing_docs)]

mod server;
mod store;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use turnout_core::tracking::{checksum, split_stream, MAGIC};
use turnout_core::{decode_batch, DecodedBatch};

pub use server::{
    start, start_with, Limits, Running, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_MEMORY, DEFAULT_MAX_CONNECTIONS, DEFAULT_WORKERS,
};
pub use store::commit_log_path;
use store::{Seen, Store};

/// The default limit on a request body (16 MiB: far above any SDK batch).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

/// How the collector stores and serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// JSON Lines output file; created if missing, appended to otherwise.
    pub out: PathBuf,
    /// Start with an empty output file instead of appending (and forget the
    /// keys it held).
    pub truncate: bool,
    /// The config served by `GET /config` (read on every request, so editing
    /// the file changes the ETag).
    pub config: Option<PathBuf>,
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Print one line per request on stderr.
    pub log: bool,
}

impl Options {
    /// Options writing to `out`, appending, no config, the default body limit, no request log.
    pub fn new(out: impl Into<PathBuf>) -> Options {
        Options { out: out.into(), truncate: false, config: None, max_body_bytes: DEFAULT_MAX_BODY_BYTES, log: false }
    }
}

/// Counters served by `GET /stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// New batches written.
    pub batches: u64,
    /// Batches received again (same client id and seq) and not written again.
    pub duplicates: u64,
    /// Request bodies refused (corrupted, foreign, too large, wrong type, too slow).
    pub rejected: u64,
    /// Events written (lines of event kinds; empty batches not counted).
    pub events: u64,
    /// Occurrences those events stand for (sum of their `count`).
    pub occurrences: u64,
    /// Occurrences the clients reported as dropped (batch headers' `dropped`).
    pub dropped: u64,
    /// Distinct client ids seen.
    pub clients: u64,
    /// `GET /config` answered with the file.
    pub config_served: u64,
    /// `GET /config` answered `304 Not Modified`.
    pub config_not_modified: u64,
    /// Connections closed or requests refused (`408`) because a header, body
    /// or idle timeout passed.
    pub timeouts: u64,
    /// Connections open now.
    pub open_connections: u64,
}

impl Stats {
    /// The JSON served by `GET /stats`.
    pub fn to_json(&self) -> Value {
        json!({
            "batches": self.batches,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "events": self.events,
            "occurrences": self.occurrences,
            "dropped": self.dropped,
            "clients": self.clients,
            "configServed": self.config_served,
            "configNotModified": self.config_not_modified,
            "timeouts": self.timeouts,
            "openConnections": self.open_connections,
        })
    }
}

/// One HTTP request as the collector sees it (transport independent, so the
/// logic is testable without a socket).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target; a query string is ignored.
    pub path: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `If-None-Match` header, if any.
    pub if_none_match: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// The collector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// `ETag` header (`GET /config`).
    pub etag: Option<String>,
    /// `Allow` header (405 answers).
    pub allow: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
    /// A short summary for the request log.
    pub summary: String,
}

impl Reply {
    fn json(status: u16, body: Value, summary: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            etag: None,
            allow: None,
            body: body.to_string().into_bytes(),
            summary,
        }
    }

    pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
        let message = message.into();
        Reply::json(status, json!({ "error": message }), message)
    }

    fn method_not_allowed(allow: &'static str) -> Reply {
        let mut r = Reply::error(405, format!("method not allowed (allowed: {allow})"));
        r.allow = Some(allow);
        r
    }
}

/// The collector: output file, de-duplication keys and counters.
/// Thread-safe; [`start`] serves it over HTTP.
pub struct Collector {
    options: Options,
    /// Keys of the batches written (durable). Only a writer holding `store`
    /// inserts; anyone looks up.
    seen: Mutex<Seen>,
    /// The writer lock: held for one append and its `fsync`s.
    store: Mutex<Store>,
    stats: Mutex<Stats>,
    recovery: Option<String>,
    open_connections: AtomicU64,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("options", &self.options).finish()
    }
}

const HELP: &str = "turnout-collector\n\
    POST /events   application/octet-stream: a turnout batch (or a batch stream); decoded, de-duplicated by \
    (clientId, seq), appended as JSON Lines\n\
    GET  /config   the config file given with --config, with an ETag (If-None-Match -> 304)\n\
    GET  /stats    counters as JSON\n";

/// Locks, going on after a panic elsewhere: every critical section leaves
/// its data consistent (keys are inserted after the append, counters are
/// plain additions).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_seen(seen: &Seen, b: &DecodedBatch) -> bool {
    seen.get(b.header.client_id.as_str()).is_some_and(|seqs| seqs.contains(&b.header.seq))
}

impl Collector {
    /// Opens (or creates) the output file. When it already holds lines, their
    /// `(clientId, seq)` keys are loaded, so batches written before a restart
    /// are still recognised as duplicates; a group an earlier run was writing
    /// when it crashed (never acknowledged) is removed first
    /// ([`Collector::recovery`] says so).
    pub fn open(options: Options) -> Result<Collector, String> {
        let opened = Store::open(&options.out, options.truncate)?;
        let stats = Stats { clients: opened.seen.len() as u64, ..Stats::default() };
        Ok(Collector {
            options,
            seen: Mutex::new(opened.seen),
            store: Mutex::new(opened.store),
            stats: Mutex::new(stats),
            recovery: opened.recovery,
            open_connections: AtomicU64::new(0),
        })
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What [`Collector::open`] repaired in the output file, if anything
    /// (bytes of an append cut by a crash).
    pub fn recovery(&self) -> Option<&str> {
        self.recovery.as_deref()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        let mut stats = lock(&self.stats).clone();
        stats.open_connections = self.open_connections.load(Ordering::Relaxed);
        stats
    }

    pub(crate) fn count_timeout(&self) {
        lock(&self.stats).timeouts += 1;
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request<'_>) -> Reply {
        let path = req.path.split('?').next().unwrap_or("");
        match (path, req.method) {
            (_, "OPTIONS") => Reply {
                status: 204,
                content_type: "text/plain",
                etag: None,
                allow: Some("GET, HEAD, POST, OPTIONS"),
                body: Vec::new(),
                summary: "CORS preflight".into(),
            },
            ("/events", "POST") => self.post_events(req),
            ("/events", _) => Reply::method_not_allowed("POST"),
            ("/config", "GET" | "HEAD") => self.get_config(req),
            ("/config", _) => Reply::method_not_allowed("GET, HEAD"),
            ("/stats", "GET") => Reply::json(200, self.stats().to_json(), String::new()),
            ("/stats", _) => Reply::method_not_allowed("GET"),
            ("/", "GET") => Reply {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                etag: None,
                allow: None,
                body: HELP.as_bytes().to_vec(),
                summary: String::new(),
            },
            _ => Reply::error(404, format!("no such endpoint: {path} (see GET /)")),
        }
    }

    pub(crate) fn reject(&self, status: u16, message: String) -> Reply {
        lock(&self.stats).rejected += 1;
        Reply::error(status, message)
    }

    /// `415` (counted) for a `POST /events` content type other than
    /// `application/octet-stream`; `None` when acceptable (or absent).
    pub(crate) fn refuse_content_type(&self, content_type: Option<&str>) -> Option<Reply> {
        let ct = content_type?;
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/octet-stream") {
            return None;
        }
        Some(
            self.reject(
                415,
                format!("unsupported content type `{ct}`: send the batch bytes as application/octet-stream"),
            ),
        )
    }

    fn post_events(&self, req: &Request<'_>) -> Reply {
        if let Some(refused) = self.refuse_content_type(req.content_type) {
            return refused;
        }
        if req.body.len() > self.options.max_body_bytes {
            return self.reject(413, format!("body larger than {} bytes", self.options.max_body_bytes));
        }
        if req.body.is_empty() {
            return self.reject(400, "empty body: expected a turnout batch".into());
        }
        // Decode everything first, with no lock held: a body is accepted or refused whole.
        let raw = if req.body.starts_with(MAGIC) {
            vec![req.body]
        } else {
            match split_stream(req.body) {
                Ok(b) => b,
                Err(e) => return self.reject(400, format!("not a turnout batch (nor a batch stream): {e}")),
            }
        };
        let mut batches = Vec::with_capacity(raw.len());
        for (i, bytes) in raw.iter().enumerate() {
            match decode_batch(bytes) {
                Ok(b) => batches.push(b),
                Err(e) if raw.len() == 1 => return self.reject(400, format!("corrupt batch: {e}")),
                Err(e) => return self.reject(400, format!("corrupt batch {i} of {}: {e}", raw.len())),
            }
        }
        drop(raw);

        // New: not repeated earlier in this body, and not written before.
        let mut in_body: HashSet<(&str, u64)> = HashSet::with_capacity(batches.len());
        let mut fresh: Vec<bool> =
            batches.iter().map(|b| in_body.insert((b.header.client_id.as_str(), b.header.seq))).collect();
        drop(in_body);
        {
            let seen = lock(&self.seen);
            for (f, b) in fresh.iter_mut().zip(&batches) {
                *f = *f && !is_seen(&seen, b);
            }
        }
        let mut new_clients = 0u64;
        if fresh.contains(&true) {
            let mut store = lock(&self.store);
            // Again under the writer lock: a concurrent request may have
            // written some of them since (keys are inserted only here).
            {
                let seen = lock(&self.seen);
                for (f, b) in fresh.iter_mut().zip(&batches) {
                    *f = *f && !is_seen(&seen, b);
                }
            }
            let appended = store.append(|w| {
                for (b, _) in batches.iter().zip(&fresh).filter(|(_, f)| **f) {
                    for line in event_lines(b) {
                        serde_json::to_writer(&mut *w, &line)?;
                        w.write_all(b"\n")?;
                    }
                }
                Ok(())
            });
            if let Err(e) = appended {
                // Not acknowledged, not recorded as seen: the SDK keeps the batch and retries.
                return Reply::error(500, format!("cannot write {}: {e}", store.path().display()));
            }
            // Durable now: only from here on do these keys count as written.
            let mut seen = lock(&self.seen);
            for (b, _) in batches.iter().zip(&fresh).filter(|(_, f)| **f) {
                let seqs = match seen.get_mut(b.header.client_id.as_str()) {
                    Some(seqs) => seqs,
                    None => {
                        new_clients += 1;
                        seen.entry(b.header.client_id.clone()).or_default()
                    }
                };
                seqs.insert(b.header.seq);
            }
        }
        {
            let mut st = lock(&self.stats);
            st.clients += new_clients;
            for (b, f) in batches.iter().zip(&fresh) {
                if *f {
                    st.batches += 1;
                    st.events += b.events.len() as u64;
                    st.occurrences += b.events.iter().map(|e| e.count).sum::<u64>();
                    st.dropped += b.header.dropped;
                } else {
                    st.duplicates += 1;
                }
            }
        }
        // The acks, serialised straight from the batches (a `Value` per ack
        // would cost several times the bytes for a body of many batches).
        // Fields in the order `json!` gives them (sorted), as before.
        #[derive(serde::Serialize)]
        struct Ack<'a> {
            #[serde(rename = "clientId")]
            client_id: &'a str,
            duplicate: bool,
            events: usize,
            seq: u64,
        }
        #[derive(serde::Serialize)]
        struct Acks<'a> {
            batches: Vec<Ack<'a>>,
        }
        let acks = Acks {
            batches: batches
                .iter()
                .zip(&fresh)
                .map(|(b, f)| Ack {
                    client_id: &b.header.client_id,
                    duplicate: !*f,
                    events: b.events.len(),
                    seq: b.header.seq,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&acks).unwrap_or_default();
        drop(acks);
        let summary = if batches.len() <= 8 {
            batches
                .iter()
                .zip(&fresh)
                .map(|(b, f)| {
                    format!(
                        "client={} seq={} events={}{}",
                        b.header.client_id,
                        b.header.seq,
                        b.events.len(),
                        if *f { "" } else { " (duplicate, not written again)" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            let new = fresh.iter().filter(|f| **f).count();
            format!(
                "{} batches ({new} new, {} duplicates), {} events",
                batches.len(),
                batches.len() - new,
                batches.iter().map(|b| b.events.len()).sum::<usize>()
            )
        };
        Reply { status: 200, content_type: "application/json", etag: None, allow: None, body, summary }
    }

    fn get_config(&self, req: &Request<'_>) -> Reply {
        let Some(path) = &self.options.config else {
            return Reply::error(404, "no config: start the collector with --config FILE");
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return Reply::error(500, format!("cannot read {}: {e}", path.display())),
        };
        let etag = etag_of(&bytes);
        if req.if_none_match.is_some_and(|h| etag_matches(h, &etag)) {
            lock(&self.stats).config_not_modified += 1;
            return Reply {
                status: 304,
                content_type: "application/json",
                etag: Some(etag),
                allow: None,
                body: Vec::new(),
                summary: "not modified".into(),
            };
        }
        lock(&self.stats).config_served += 1;
        let summary = format!("{} bytes, ETag {etag}", bytes.len());
        Reply {
            status: 200,
            content_type: "application/json",
            etag: Some(etag),
            allow: None,
            body: if req.method == "HEAD" { Vec::new() } else { bytes },
            summary,
        }
    }
}

/// The lines `turnout decode` prints for a batch: one per event with the
/// header fields; an empty batch is one `"kind": "batch"` line.
pub fn event_lines(batch: &DecodedBatch) -> Vec<Value> {
    turnout_core::host::batch_event_lines(batch)
}

/// A strong ETag for a config's bytes (CRC-32C and length).
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:08x}-{:x}\"", checksum(bytes), bytes.len())
}

/// Whether an `If-None-Match` header value names `etag` (a list, weak
/// validators and `*` included, as RFC 9110 says for GET).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let tag = "\"0badf00d-2a\"";
        assert!(etag_matches(tag, tag));
        assert!(etag_matches(&format!("W/{tag}"), tag));
        assert!(etag_matches(&format!("\"other\", {tag}"), tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"other\"", tag));
        assert!(!etag_matches("", tag));
    }

    #[test]
    fn etag_changes_with_content() {
        assert_eq!(etag_of(b"{}"), etag_of(b"{}"));
        assert_ne!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":2}"));
    }
}
