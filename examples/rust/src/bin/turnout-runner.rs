//! `turnout-runner`: the Rust demo runner of `tests/bench/README.md` ("The
//! runner contract"), used by `cargo xtask demo`.
//!
//! ```text
//! turnout-runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS \
//!     --out DECISIONS.jsonl --timing TIMING.json
//! ```
//!
//! For every context line, in order: a prepared [`Context`] from the facets,
//! the [`Variable`] handle (one per name), the full decision written as the
//! JSON line `turnout eval` prints. Then passes of the typed getter (`int64`
//! for integer values, else `string`) over all contexts for about one second;
//! the median ns per decision over the passes goes to TIMING.json as
//! `{"platform": "rust", "decisions": N, "nsPerDecisionMedian": X}`.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use turnout_core::{Client, ClientOptions, Context, Facets, FixedClock, Variable};

const USAGE: &str = "usage: turnout-runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS \
                     --out DECISIONS.jsonl --timing TIMING.json";

/// The parsed command line.
struct Args {
    config: String,
    contexts: String,
    now_ms: i64,
    out: String,
    timing: String,
}

fn parse_args() -> Result<Args, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument `{flag}`"))?;
        if !matches!(name, "config" | "contexts" | "now-ms" | "out" | "timing") {
            return Err(format!("unknown option --{name}"));
        }
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_string(), value);
    }
    let mut take = |k: &str| map.remove(k).ok_or_else(|| format!("--{k} is required"));
    Ok(Args {
        config: take("config")?,
        contexts: take("contexts")?,
        now_ms: take("now-ms")?.parse().map_err(|e| format!("--now-ms: {e}"))?,
        out: take("out")?,
        timing: take("timing")?,
    })
}

/// One context line, prepared for the timing loop.
struct Unit {
    ctx: Context,
    var: usize,
    integer: bool,
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turnout-runner: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let config = std::fs::read(&a.config).map_err(|e| format!("{}: {e}", a.config))?;
    let options = ClientOptions { clock: Arc::new(FixedClock::new(a.now_ms)), ..ClientOptions::default() };
    let (client, _report) = Client::with_config(&config, options).map_err(|e| format!("{}: {e}", a.config))?;
    let input = std::fs::File::open(&a.contexts).map_err(|e| format!("{}: {e}", a.contexts))?;
    let out_file = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out))?;
    let mut out = BufWriter::new(out_file);

    let mut names: HashMap<String, usize> = HashMap::new();
    let mut vars: Vec<Variable> = Vec::new();
    let mut units = Vec::new();
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", a.contexts))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("{}:{}: {e}", a.contexts, n + 1);
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        let name = v["variable"].as_str().ok_or_else(|| at("missing string field `variable`".into()))?;
        let facets = match v.get("facets") {
            None | Some(serde_json::Value::Null) => Facets::new(),
            Some(f) => Facets::from_json(f).map_err(|e| at(e.to_string()))?,
        };
        let var = *names.entry(name.to_string()).or_insert_with(|| {
            vars.push(client.variable(name));
            vars.len() - 1
        });
        let ctx = client.context(facets);
        let d = ctx.decision(&vars[var]);
        writeln!(out, "{}", d.to_json_line()).map_err(|e| format!("{}: {e}", a.out))?;
        let integer = d.value.as_ref().is_some_and(|v| v.as_i64().is_some() || v.as_u64().is_some());
        units.push(Unit { ctx, var, integer });
    }
    out.flush().map_err(|e| format!("{}: {e}", a.out))?;

    let median = time_prepared(&client, &vars, &units);
    let timing = serde_json::json!({"platform": "rust", "decisions": units.len(), "nsPerDecisionMedian": median});
    std::fs::write(&a.timing, format!("{timing}\n")).map_err(|e| format!("{}: {e}", a.timing))
}

/// Passes of the typed getter over every unit for about a second (at least 3);
/// the median ns per decision. The event queue is drained between passes,
/// outside the timing.
fn time_prepared(client: &Client, vars: &[Variable], units: &[Unit]) -> f64 {
    if units.is_empty() {
        return 0.0;
    }
    let mut per_pass = Vec::new();
    let start = Instant::now();
    let mut sink = 0i64;
    while per_pass.len() < 3 || start.elapsed() < Duration::from_secs(1) {
        let t = Instant::now();
        for u in units {
            let var = &vars[u.var];
            sink = sink.wrapping_add(if u.integer { u.ctx.int64(var, 0) } else { u.ctx.string(var, "").len() as i64 });
        }
        per_pass.push(t.elapsed().as_nanos() as f64 / units.len() as f64);
        while let Some(b) = client.take_batch(100_000) {
            client.ack(b.seq);
        }
    }
    std::hint::black_box(sink);
    per_pass.sort_by(f64::total_cmp);
    per_pass[per_pass.len() / 2]
}
