//! # turnout-collector
//!
//! A tiny HTTP collector for turnout event batches, so that the whole loop
//! (decide, track, upload, decode) runs on one machine: every platform's
//! example and poller can be pointed at it.
//!
//! | request | answer |
//! |---|---|
//! | `POST /events` (`application/octet-stream`: one batch, or a batch stream as written by `turnout eval --events`) | `200` with `{"batches": [{"clientId", "seq", "events", "duplicate"}]}`; `400` with `{"error": "..."}` for a corrupted or foreign body (nothing of it is written); `413` over the size limit; `415` for another content type |
//! | `GET /config` (with `--config FILE`) | `200` with the file and a strong `ETag`; `304` when `If-None-Match` names the current one |
//! | `GET /stats` | `200` with counters (`batches`, `duplicates`, `rejected`, `events`, ...) |
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
//! The HTTP server is [`tiny_http`] (HTTP/1.1, keep-alive, chunked bodies and
//! `Expect: 100-continue`, which real SDK HTTP clients use); the decoding is
//! [`turnout_core::decode_batch`].

#![deny(missing_docs)]

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::{json, Value};
use turnout_core::tracking::{checksum, split_stream, MAGIC};
use turnout_core::{decode_batch, DecodedBatch};

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
    /// Request bodies refused (corrupted, foreign, too large, wrong type).
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

    fn error(status: u16, message: impl Into<String>) -> Reply {
        let message = message.into();
        Reply::json(status, json!({ "error": message }), message)
    }

    fn method_not_allowed(allow: &'static str) -> Reply {
        let mut r = Reply::error(405, format!("method not allowed (allowed: {allow})"));
        r.allow = Some(allow);
        r
    }
}

struct State {
    seen: HashSet<(String, u64)>,
    clients: HashSet<String>,
    out: File,
    stats: Stats,
}

/// The collector: output file, de-duplication keys and counters.
/// Thread-safe; [`start`] serves it over HTTP.
pub struct Collector {
    options: Options,
    state: Mutex<State>,
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

impl Collector {
    /// Opens (or creates) the output file. When it already holds lines, their
    /// `(clientId, seq)` keys are loaded, so batches written before a restart
    /// are still recognised as duplicates.
    pub fn open(options: Options) -> Result<Collector, String> {
        let path = &options.out;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut seen = HashSet::new();
        let mut clients = HashSet::new();
        if !options.truncate && path.exists() {
            let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line).map_err(|e| {
                    format!(
                        "{} line {}: not JSON ({e}); is it a collector output file? Use another --out or --truncate",
                        path.display(),
                        n + 1
                    )
                })?;
                if let (Some(client), Some(seq)) = (v["clientId"].as_str(), v["seq"].as_u64()) {
                    clients.insert(client.to_string());
                    seen.insert((client.to_string(), seq));
                }
            }
        }
        let out = OpenOptions::new()
            .create(true)
            .append(!options.truncate)
            .write(true)
            .truncate(options.truncate)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let stats = Stats { clients: clients.len() as u64, ..Stats::default() };
        Ok(Collector { options, state: Mutex::new(State { seen, clients, out, stats }) })
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than stopping would: keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        self.state().stats.clone()
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

    fn reject(&self, status: u16, message: String) -> Reply {
        self.state().stats.rejected += 1;
        Reply::error(status, message)
    }

    fn post_events(&self, req: &Request<'_>) -> Reply {
        if let Some(ct) = req.content_type {
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/octet-stream") {
                return self.reject(
                    415,
                    format!("unsupported content type `{ct}`: send the batch bytes as application/octet-stream"),
                );
            }
        }
        if req.body.len() > self.options.max_body_bytes {
            return self.reject(413, format!("body larger than {} bytes", self.options.max_body_bytes));
        }
        if req.body.is_empty() {
            return self.reject(400, "empty body: expected a turnout batch".into());
        }
        // Decode everything first: a body is accepted or refused whole.
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
        let mut st = self.state();
        let mut results = Vec::with_capacity(batches.len());
        let mut text = String::new();
        let mut fresh = Vec::new();
        for b in &batches {
            let key = (b.header.client_id.clone(), b.header.seq);
            let duplicate = st.seen.contains(&key) || fresh.contains(&key);
            if !duplicate {
                for line in event_lines(b) {
                    text.push_str(&line.to_string());
                    text.push('\n');
                }
                fresh.push(key);
            }
            results.push(json!({
                "clientId": b.header.client_id,
                "seq": b.header.seq,
                "events": b.events.len(),
                "duplicate": duplicate,
            }));
        }
        if let Err(e) = st.out.write_all(text.as_bytes()).and_then(|()| st.out.flush()) {
            // Not acknowledged: the SDK keeps the batch and retries.
            return Reply::error(500, format!("cannot write {}: {e}", self.options.out.display()));
        }
        for b in &batches {
            let key = (b.header.client_id.clone(), b.header.seq);
            if fresh.contains(&key) {
                st.stats.batches += 1;
                st.stats.events += b.events.len() as u64;
                st.stats.occurrences += b.events.iter().map(|e| e.count).sum::<u64>();
                st.stats.dropped += b.header.dropped;
                if st.clients.insert(key.0.clone()) {
                    st.stats.clients += 1;
                }
                st.seen.insert(key);
            } else {
                st.stats.duplicates += 1;
            }
        }
        drop(st);
        let summary = batches
            .iter()
            .zip(&results)
            .map(|(b, r)| {
                format!(
                    "client={} seq={} events={}{}",
                    b.header.client_id,
                    b.header.seq,
                    b.events.len(),
                    if r["duplicate"] == true { " (duplicate, not written again)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Reply::json(200, json!({ "batches": results }), summary)
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
            self.state().stats.config_not_modified += 1;
            return Reply {
                status: 304,
                content_type: "application/json",
                etag: Some(etag),
                allow: None,
                body: Vec::new(),
                summary: "not modified".into(),
            };
        }
        self.state().stats.config_served += 1;
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

/// A collector served on a socket by worker threads; [`Running::stop`] ends it.
pub struct Running {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    collector: Arc<Collector>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

impl Running {
    /// The address it listens on (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The collector behind the server.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// Blocks until the server stops (for the binary: forever).
    pub fn wait(mut self) {
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }

    /// Stops the workers and closes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Listens on `listen` (e.g. `127.0.0.1:8080`, or port 0 for any free port)
/// and serves `collector` with `workers` threads.
pub fn start(listen: &str, collector: Arc<Collector>, workers: usize) -> Result<Running, String> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = Arc::new(tiny_http::Server::from_listener(listener, None).map_err(|e| e.to_string())?);
    let stopping = Arc::new(AtomicBool::new(false));
    let workers = (0..workers.max(1))
        .map(|_| {
            let (server, stopping, collector) = (Arc::clone(&server), Arc::clone(&stopping), Arc::clone(&collector));
            std::thread::spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match server.recv() {
                        Ok(rq) => serve_one(&collector, rq),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    Ok(Running { addr, server, stopping, workers, collector })
}

fn header<'a>(rq: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    rq.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str())
}

fn serve_one(collector: &Collector, mut rq: tiny_http::Request) {
    let t0 = Instant::now();
    let limit = collector.options.max_body_bytes;
    let mut body = Vec::new();
    let too_large = rq.body_length().is_some_and(|n| n > limit) || {
        let read = rq.as_reader().take(limit as u64 + 1).read_to_end(&mut body);
        read.is_err() || body.len() > limit
    };
    let method = rq.method().as_str().to_string();
    let url = rq.url().to_string();
    let reply = if too_large && method == "POST" {
        collector.reject(413, format!("body larger than {limit} bytes"))
    } else {
        collector.handle(&Request {
            method: &method,
            path: &url,
            content_type: header(&rq, "Content-Type"),
            if_none_match: header(&rq, "If-None-Match"),
            body: &body,
        })
    };
    if collector.options.log {
        eprintln!(
            "{method} {url} {} {}{}({:.1} ms)",
            reply.status,
            reply.summary,
            if reply.summary.is_empty() { "" } else { " " },
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    // Local development tool: any origin may read it (browser examples on another port).
    add("Access-Control-Allow-Origin", "*");
    add("Access-Control-Expose-Headers", "ETag");
    if reply.status == 204 {
        add("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
        add("Access-Control-Allow-Headers", "Content-Type, If-None-Match");
        add("Access-Control-Max-Age", "600");
    }
    if let Some(etag) = &reply.etag {
        add("ETag", etag);
        add("Cache-Control", "no-cache");
    }
    if let Some(allow) = reply.allow {
        add("Allow", allow);
    }
    let _ = rq.respond(response);
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
