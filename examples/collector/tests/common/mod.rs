//! The collector binary on an ephemeral port, and batches to send it.
#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use turnout_core::tracking::append_to_stream;
use turnout_core::{Client, ClientOptions, Facets, TrackingOptions};

/// A running `turnout-collector` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub stderr: Option<ChildStderr>,
}

impl Server {
    pub fn start(out: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_turnout-collector"))
            .args(["--listen", "127.0.0.1:0", "--quiet", "--out"])
            .arg(out)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("collector starts");
        let stderr = child.stderr.take();
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("first line");
        // "turnout-collector listening on http://127.0.0.1:PORT (events -> ...)"
        let addr = match first.split_whitespace().find_map(|w| w.strip_prefix("http://")) {
            Some(a) => a.to_string(),
            None => {
                let mut err = String::new();
                if let Some(mut e) = stderr {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("no address in {first:?}; stderr: {err}");
            }
        };
        Server { child, addr, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote on stderr (after it exited or was killed).
    pub fn take_stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// One request on a fresh connection; (status, headers lowercased, body).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
        request(&self.addr, method, path, headers, body).expect("request")
    }

    pub fn post(&self, body: &[u8]) -> (u16, Value) {
        let (status, _, body) = self.request("POST", "/events", &[("Content-Type", "application/octet-stream")], body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn stats(&self) -> Value {
        let (status, _, body) = self.request("GET", "/stats", &[], b"");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("stats JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection to `addr`; (status, headers lowercased, body).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP response"))
}

/// (status, headers lowercased, body) of the first response in `raw`.
pub fn parse_response(raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok())?;
    Some((status, head.to_ascii_lowercase(), raw[split + 4..].to_vec()))
}

pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turnout-collector-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/example.json")
}

fn client(client_id: &str, max_queue: usize) -> Client {
    let config = std::fs::read(example_config()).expect("example config");
    let options = ClientOptions {
        service: "test".into(),
        tracking: TrackingOptions {
            client_id: client_id.into(),
            max_queue,
            max_fold_keys: max_queue,
            ..TrackingOptions::default()
        },
        ..ClientOptions::default()
    };
    Client::with_config(&config, options).expect("config loads").0
}

/// A client on the example config that recorded `n` decisions and one metric.
pub fn client_with_events(client_id: &str, n: i64) -> Client {
    let client = client(client_id, 10_000);
    for pax in 0..n {
        client.get_variable("automatedMessageDelay", &Facets::new().city(10).passenger(pax));
    }
    client.track("pickupSeconds", 42.0, &Facets::new().passenger(1));
    client
}

/// A batch stream of `batches` batches of `events` distinct metric events
/// each from `client_id`; with each batch's (seq, events).
pub fn batch_stream(client_id: &str, batches: usize, events: usize) -> (Vec<u8>, Vec<(u64, usize)>) {
    let client = client(client_id, events.max(1));
    let facets = Facets::new().passenger(1);
    let mut stream = Vec::new();
    let mut keys = Vec::with_capacity(batches);
    let mut value = 0.0;
    for _ in 0..batches {
        for _ in 0..events {
            value += 1.0;
            client.track("pickupSeconds", value, &facets);
        }
        let batch = client.take_batch(events.max(1)).expect("a batch");
        client.ack(batch.seq);
        append_to_stream(&mut stream, &batch.bytes);
        keys.push((batch.seq, batch.events));
    }
    (stream, keys)
}

/// Every line of the output file, parsed (a torn line fails the test).
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("every output line is JSON ({e}): {l:.200}")))
        .collect()
}

/// A field of /proc/PID/status (Linux), e.g. `Threads` or `VmRSS` (kB).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
