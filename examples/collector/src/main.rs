//! `turnout-collector`: receive turnout event batches over HTTP, de-duplicate
//! them and write the decoded events as JSON Lines (see the crate docs).
//!
//! ```text
//! turnout-collector --listen 127.0.0.1:8080 --out events.jsonl --config examples/configs/example.json
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use turnout_collector::{
    start_with, Collector, Limits, Options, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_MEMORY, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_WORKERS,
};

/// A tiny local collector for turnout event batches.
#[derive(Parser)]
#[command(name = "turnout-collector", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// JSON Lines output: one decoded event per line with its batch header fields.
    #[arg(long, default_value = "events.jsonl")]
    out: PathBuf,
    /// Start with an empty output file (default: append, and keep de-duplicating against it).
    #[arg(long)]
    truncate: bool,
    /// Config file served by `GET /config` with an ETag (pollers send If-None-Match).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Largest accepted request body in bytes (a larger declared Content-Length gets 413 unread).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Runtime threads; decoding and writing use at most as many more (config reads as many again).
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    workers: usize,
    /// Connections served at once; more wait in the accept backlog until one closes.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds for a request line and headers to arrive (else the connection is closed).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    header_timeout: Duration,
    /// Seconds for a whole request body to arrive after its headers (else 408, connection closed).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    body_timeout: Duration,
    /// Seconds a keep-alive connection may wait for its next request (or for its answer to be read).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    idle_timeout: Duration,
    /// Bytes of request bodies held in memory at once, all connections together.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_MEMORY)]
    max_body_memory: usize,
    /// Do not log requests on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(c) = &args.config {
        if let Err(e) = std::fs::metadata(c) {
            eprintln!("turnout-collector: --config {}: {e}", c.display());
            return ExitCode::from(2);
        }
    }
    let options = Options {
        out: args.out.clone(),
        truncate: args.truncate,
        config: args.config.clone(),
        max_body_bytes: args.max_body_bytes,
        log: !args.quiet,
    };
    let collector = match Collector::open(options) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("turnout-collector: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(note) = collector.recovery() {
        eprintln!("turnout-collector: {note}");
    }
    let limits = Limits {
        workers: args.workers,
        max_connections: args.max_connections,
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
        max_body_memory: args.max_body_memory,
    };
    let running = match start_with(&args.listen, collector, &limits) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("turnout-collector: {e}");
            return ExitCode::from(2);
        }
    };
    // The first line is machine-readable enough for scripts and tests that start it on port 0.
    // Write errors are ignored: whoever started us may have stopped reading stdout.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "turnout-collector listening on {} (events -> {})", running.url(""), args.out.display());
    let _ = writeln!(
        stdout,
        "  POST {}   GET {}   GET {}",
        running.url("/events"),
        running.url("/config"),
        running.url("/stats")
    );
    let _ = stdout.flush();
    running.wait();
    ExitCode::SUCCESS
}
