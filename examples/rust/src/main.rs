//! turnout from Rust in one page: load the example config, decide for a
//! passenger (one-shot and prepared), track an event, and flush the recorded
//! events as a batch to a collector.
//!
//! ```text
//! cargo run -p turnout-collector -- --listen 127.0.0.1:8080 --out /tmp/events.jsonl &
//! cargo run -p turnout-example -- http://127.0.0.1:8080/events
//! ```
//!
//! The upload is a plain HTTP/1.1 POST over `std::net::TcpStream` (the
//! engine does no I/O; the host moves the bytes however it likes: use your
//! HTTP client of choice in a real service).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use turnout_core::{Client, ClientOptions, Facets};

const USAGE: &str = "usage: turnout-example [--config FILE] COLLECTOR_URL   (e.g. http://127.0.0.1:8080/events)";

fn main() -> ExitCode {
    let mut config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/example.json");
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(c) => config = c.into(),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ if url.is_none() && !a.starts_with('-') => url = Some(a),
            _ => return usage(),
        }
    }
    let Some(url) = url else { return usage() };
    match run(&config, &url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turnout-example: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn run(config: &std::path::Path, url: &str) -> Result<(), String> {
    let bytes = std::fs::read(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let options = ClientOptions { service: "booking".into(), ..ClientOptions::default() };
    let (client, report) = Client::with_config(&bytes, options).map_err(|e| format!("{}: {e}", config.display()))?;
    println!("loaded {} (version {:?}, {} variables)", config.display(), client.config_version(), report.added.len());

    // One-shot: a Jakarta passenger.
    let pax = Facets::new().passenger(7).city(10);
    let delay = client.get_variable("automatedMessageDelay", &pax);
    println!(
        "automatedMessageDelay for passenger 7 in city 10: {} s ({}, {}, rule {:?})",
        delay.int64(30),
        delay.source.as_str(),
        delay.reason.as_str(),
        delay.rule
    );

    // Prepared: one context per unit, one handle per variable, then the hot call.
    let color = client.variable("checkoutButtonColor");
    let shopper = client.context(Facets::new().passenger(1003).with("country", "SG"));
    let d = shopper.decision(&color);
    println!(
        "checkoutButtonColor for passenger 1003 in SG: {} (source {}, experiment {:?}, choice {:?})",
        shopper.string(&color, "blue"),
        d.source.as_str(),
        d.experiment,
        d.choice
    );

    // A metric, with its facets.
    client.track("pickupSeconds", 42.0, &pax.clone().booking("ADR-123-2-001"));

    // Upload: take a batch, POST it, ack on success; nack keeps it for a retry.
    let mut sent = 0;
    while let Some(batch) = client.take_batch(1000) {
        match post(url, &batch.bytes) {
            Ok(status) if (200..300).contains(&status) => {
                client.ack(batch.seq);
                sent += batch.events;
                println!(
                    "batch {}: {} events, {} bytes -> {url} ({status})",
                    batch.seq,
                    batch.events,
                    batch.bytes.len()
                );
            }
            Ok(status) => {
                client.nack(batch.seq);
                return Err(format!("{url} answered {status}; batch {} kept for a retry", batch.seq));
            }
            Err(e) => {
                client.nack(batch.seq);
                return Err(format!("upload to {url} failed ({e}); batch {} kept for a retry", batch.seq));
            }
        }
    }
    let stats = client.tracking_stats();
    println!("{sent} events delivered; {} still queued, {} dropped", stats.queued, stats.dropped);
    Ok(())
}

/// POSTs `body` as `application/octet-stream` to an `http://host:port/path`
/// URL; returns the status code.
fn post(url: &str, body: &[u8]) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported by this example")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let mut stream = TcpStream::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or("");
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))
}
