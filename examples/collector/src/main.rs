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

use clap::Parser;
use turnout_collector::{start, Collector, Options, DEFAULT_MAX_BODY_BYTES};

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
    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Do not log requests on stderr.
    #[arg(long, short)]
    quiet: bool,
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
    let running = match start(&args.listen, collector, args.workers) {
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
