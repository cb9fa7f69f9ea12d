//! `turnout`: evaluate, explain and validate turnout configs from the shell.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use turnout_core::tracking::{append_to_stream, split_stream};
use turnout_core::{
    decode_batch, Client, ClientOptions, FacetValue, Facets, FixedClock, Isolation, SystemClock, TrackingOptions,
};

/// turnout: a deterministic feature-flag and experimentation engine.
#[derive(Parser)]
#[command(name = "turnout", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate variables: JSON Lines in, one JSON decision per line out; or
    /// one decision with --variable and --facet.
    Eval(EvalArgs),
    /// Decode event batch files (raw batches or batch streams) to JSON Lines,
    /// one event per line with the batch header fields.
    Decode {
        /// Files written by `eval --events` or uploaded by an SDK.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check config files; print every problem with its document and field.
    Validate {
        /// Bundle or document files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The config: a bundle, or a single rollout or experiment document.
    #[arg(long)]
    config: PathBuf,
    /// JSON Lines of {"variable": "...", "facets": {...}}; `-` reads stdin.
    #[arg(long, conflicts_with = "variable")]
    contexts: Option<String>,
    /// One variable to evaluate.
    #[arg(long, required_unless_present = "contexts")]
    variable: Option<String>,
    /// A facet as name=value (value read as JSON if it parses, else a string). Repeatable.
    #[arg(long = "facet", value_name = "NAME=VALUE")]
    facets: Vec<String>,
    /// Explain which rule or experiment matched and why the others did not.
    #[arg(long, requires = "variable")]
    explain: bool,
    /// Pin the clock (unix milliseconds) used when no `ts` facet is given.
    #[arg(long, value_name = "UNIX_MS")]
    now_ms: Option<i64>,
    /// Reject the whole config if any document is broken (default: per-document isolation).
    #[arg(long)]
    strict: bool,
    /// Write the event batches this evaluation recorded to FILE (a batch stream; see `decode`).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// The service name recorded in events.
    #[arg(long, default_value = "turnout-cli")]
    service: String,
    /// The largest config accepted, in bytes (docs/spec.md section 17).
    #[arg(long, value_name = "BYTES", default_value_t = turnout_core::limits::DEFAULT_MAX_CONFIG_BYTES)]
    max_config_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval(args),
        Command::Validate { files } => validate(&files),
        Command::Decode { files } => decode(&files),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("turnout: {msg}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Parses `name=value`: the value is a JSON scalar if it parses as one, else a
/// string; `name=null` leaves the facet absent (`None`).
fn parse_facet(s: &str) -> Result<Option<(String, FacetValue)>, String> {
    let (name, raw) = s.split_once('=').ok_or_else(|| format!("--facet `{s}`: expected NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("--facet `{s}`: the name is empty"));
    }
    let value = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Null) => return Ok(None),
        Ok(v) => FacetValue::from_json(&v).unwrap_or_else(|| FacetValue::Str(raw.to_string())),
        Err(_) => FacetValue::Str(raw.to_string()),
    };
    Ok(Some((name.to_string(), value)))
}

fn eval(args: EvalArgs) -> Result<ExitCode, String> {
    let options = ClientOptions {
        clock: match args.now_ms {
            Some(ms) => Arc::new(FixedClock::new(ms)),
            None => Arc::new(SystemClock),
        },
        isolation: if args.strict { Isolation::Strict } else { Isolation::PerDocument },
        service: args.service.clone(),
        tracking: TrackingOptions {
            client_id: "turnout-cli".into(),
            sdk: "turnout-cli".into(),
            ..TrackingOptions::default()
        },
        max_config_bytes: args.max_config_bytes,
    };
    let config = read(&args.config)?;
    let (client, report) =
        Client::with_config(&config, options).map_err(|e| format!("{}: {e}", args.config.display()))?;
    for r in &report.rejected {
        for p in &r.problems {
            let kept = if r.kill_switch {
                "its kill switch (\"enabled\": false) took effect"
            } else if r.kept_last_good {
                "kept last good version"
            } else {
                "dropped"
            };
            eprintln!("turnout: warning: {p} ({kept})");
        }
    }
    for w in &report.warnings {
        eprintln!("turnout: warning: {w}");
    }
    if let Some(name) = &args.variable {
        let mut facets = Facets::new();
        for f in &args.facets {
            if let Some((k, v)) = parse_facet(f)? {
                facets.set(k, v);
            }
        }
        if args.explain {
            let ex = client.explain(name, &facets);
            let d = &ex.decision;
            println!("variable   {}", d.variable);
            println!("facets     {}", facets.to_json());
            match &d.value {
                Some(v) => println!("value      {v}"),
                None => println!("value      (none: the caller's default applies)"),
            }
            println!("source     {}", d.source.as_str());
            println!(
                "reason     {}{}",
                d.reason.as_str(),
                d.error.map(|e| format!(" ({})", e.as_str())).unwrap_or_default()
            );
            if let Some(e) = &d.experiment {
                println!("experiment {e} (choice {})", d.choice.unwrap_or(0));
            }
            if let Some(r) = d.rule {
                println!("rule       {r}{}", d.label.as_ref().map(|l| format!(" ({l})")).unwrap_or_default());
            }
            println!("steps:");
            for s in &ex.steps {
                println!("  - {s}");
            }
        } else {
            println!("{}", client.get_variable(name, &facets).to_json_line());
        }
        write_events(&client, args.events.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let source = args.contexts.as_deref().unwrap_or("-");
    let input: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(source).map_err(|e| format!("cannot read {source}: {e}"))?,
        ))
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut stream = Vec::new();
    let mut input = input;
    let mut buf = Vec::new();
    let mut n = 0usize;
    // Spec section 14: every bad line (not UTF-8, not JSON, too long, bad
    // facets) gives an error line, and the next line is read.
    while let Some(fits) =
        read_line(&mut input, &mut buf, MAX_LINE_BYTES).map_err(|e| format!("reading {source}: {e}"))?
    {
        n += 1;
        let text = if !fits {
            Some(Err(format!("the line is longer than {MAX_LINE_BYTES} bytes")))
        } else {
            match std::str::from_utf8(&buf) {
                Err(e) => Some(Err(format!("not valid UTF-8: {e}"))),
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => Some(eval_line(&client, line)),
            }
        };
        let text = match text {
            None => continue,
            Some(Ok(d)) => d,
            Some(Err(e)) => serde_json::json!({"line": n, "error": e}).to_string(),
        };
        writeln!(out, "{text}").map_err(|e| e.to_string())?;
        if args.events.is_some() && client.tracking_stats().queued >= EVENTS_PER_BATCH {
            take_batches(&client, &mut stream);
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    if let Some(path) = &args.events {
        take_batches(&client, &mut stream);
        std::fs::write(path, &stream).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest context line `eval --contexts` reads (a context of 1,024
/// facets of 8 KiB each fits); a longer one is an error line.
const MAX_LINE_BYTES: usize = 16 << 20;

/// Reads one line (without its `\n` or `\r\n`) into `buf`, holding at most
/// `max` bytes of it: `Some(true)` a line, `Some(false)` a line longer than
/// `max` (the rest of it skipped), `None` at the end of the input.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if take - usize::from(done) > room {
            fits = false;
        }
        if fits {
            buf.extend_from_slice(&chunk[..take - usize::from(done)]);
        }
        input.consume(take);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(fits))
}

/// Batch size used by `eval --events`.
const EVENTS_PER_BATCH: usize = 1000;

/// Moves every waiting batch into `stream` (the CLI "uploads" by writing).
fn take_batches(client: &Client, stream: &mut Vec<u8>) {
    while let Some(b) = client.take_batch(EVENTS_PER_BATCH) {
        append_to_stream(stream, &b.bytes);
        client.ack(b.seq);
    }
}

fn write_events(client: &Client, path: Option<&Path>) -> Result<(), String> {
    if let Some(path) = path {
        let mut stream = Vec::new();
        take_batches(client, &mut stream);
        std::fs::write(path, &stream).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn decode(files: &[PathBuf]) -> Result<ExitCode, String> {
    let mut failed = false;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for path in files {
        let bytes = read(path)?;
        let batches = match split_stream(&bytes) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("turnout: {}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        for (i, raw) in batches.iter().enumerate() {
            let batch = match decode_batch(raw) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("turnout: {} batch {i}: {e}", path.display());
                    failed = true;
                    continue;
                }
            };
            // An empty batch still prints one line: it carries loss counters.
            // One line at a time: the output is never held whole.
            let mut err = None;
            turnout_core::host::for_each_event_line(&batch, |line| {
                if err.is_none() {
                    err = writeln!(out, "{line}").err();
                }
            });
            if let Some(e) = err {
                return Err(e.to_string());
            }
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn eval_line(client: &Client, line: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let name =
        v.get("variable").and_then(|x| x.as_str()).ok_or_else(|| "missing string field `variable`".to_string())?;
    let facets = match v.get("facets") {
        None | Some(serde_json::Value::Null) => Facets::new(),
        Some(f) => Facets::from_json(f).map_err(|e| e.to_string())?,
    };
    Ok(client.get_variable(name, &facets).to_json_line())
}

fn validate(files: &[PathBuf]) -> Result<ExitCode, String> {
    let mut failed = false;
    for path in files {
        let bytes = read(path)?;
        let client = Client::new(ClientOptions::default());
        match client.validate(&bytes) {
            Ok(report) => {
                let vars = report.added.len();
                println!("{}: ok ({vars} variables, {} warnings)", path.display(), report.warnings.len());
                for w in &report.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(e) => {
                failed = true;
                let problems = e.problems();
                println!(
                    "{}: {} problem{}",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                for p in problems {
                    println!("  {p}");
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
