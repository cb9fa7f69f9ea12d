//! `cargo xtask bench`: every platform's benchmark of the shared scenario (tests/bench/README.md)
//! and the peers each binding compares with, in one run; regenerates the tables of
//! `docs/benchmarks.md` between `<!-- bench:matrix:start -->` and `<!-- bench:matrix:end -->`
//! with the machine description and the date.
//!
//! Each platform runs through its own benchmark entry point:
//!
//! | platform | command | results read from |
//! |---|---|---|
//! | Rust | `cargo bench -p turnout-core --bench engine -- scenario` (criterion) | `target/criterion/scenario/*/new/estimates.json` (median) |
//! | Node | `cargo xtask wasm bench --json target/bench/node.json` | that file |
//! | Python | `cargo xtask python --bench` | `target/bench/python.json` |
//! | Kotlin | `cargo xtask kotlin --bench -f 1 -wi 3 -i 5 -w 1 -r 1` (JMH) | `bindings/kotlin/target/jmh-result.json` (median of the raw iterations) |
//! | Go | `go test -bench` in `bindings/go` and `bindings/go/peers` | their output |
//!
//! Peers are shown as ratios to turnout on the same platform, measured in the same run.
//!
//! `--quick` makes every run short (a smoke test; the docs are not written). `--only rust,go`
//! runs some platforms (the docs are not written: the tables hold one run of all of them).
//! `--no-write` prints the tables without writing the docs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::{cargo, rel, root, run as exec, step};

const START: &str = "<!-- bench:matrix:start -->";
const END: &str = "<!-- bench:matrix:end -->";
const PLATFORMS: [&str; 5] = ["rust", "node", "python", "kotlin", "go"];

/// One platform's results, ns per decision.
#[derive(Debug, Default)]
struct Results {
    /// The command that produced them.
    command: String,
    /// turnout's paths (label, ns).
    turnout: Vec<(String, f64)>,
    /// Labels of the prepared and one-shot paths of the shared scenario among `turnout`.
    prepared: Option<String>,
    one_shot: Option<String>,
    /// Other libraries on the same scenario (label, ns).
    peers: Vec<(String, f64)>,
}

impl Results {
    fn ns(&self, label: &Option<String>) -> Option<f64> {
        let l = label.as_ref()?;
        self.turnout.iter().find(|(k, _)| k == l).map(|(_, v)| *v)
    }

    /// The turnout row a peer is compared with: the same path measured in the same process
    /// (`growthbook/prepared` -> `turnout/prepared`) when there is one, else the scenario's
    /// prepared path for prepared-style peers (`prepared`, `scoped`) and its one-shot path for
    /// the others.
    fn baseline(&self, peer: &str) -> Option<(String, f64)> {
        if let Some((_, path)) = peer.split_once('/') {
            let same = format!("turnout/{path}");
            if let Some(row) = self.turnout.iter().find(|(k, _)| *k == same) {
                return Some(row.clone());
            }
        }
        let lower = peer.to_ascii_lowercase();
        let label =
            if lower.contains("prepared") || lower.contains("scoped") { &self.prepared } else { &self.one_shot };
        let l = label.as_ref()?;
        self.turnout.iter().find(|(k, _)| k == l).cloned()
    }
}

struct Options {
    quick: bool,
    write: bool,
    only: Vec<String>,
}

/// Runs `cargo xtask bench [--quick] [--only LIST] [--no-write]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let t0 = Instant::now();
    let mut o = Options { quick: false, write: true, only: PLATFORMS.iter().map(|s| s.to_string()).collect() };
    let mut it = args.iter();
    let mut partial = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-write" => o.write = false,
            "--only" => {
                let list = it.next().ok_or("--only needs a list")?;
                o.only = list.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = o.only.iter().find(|p| !PLATFORMS.contains(&p.as_str())) {
                    return Err(format!("--only: unknown platform {bad} (use {})", PLATFORMS.join(",")));
                }
                partial = true;
            }
            other => {
                return Err(format!(
                    "cargo xtask bench: unknown argument {other} (use --quick, --only LIST, --no-write)"
                ))
            }
        }
    }
    let machine = machine();
    let date = capture(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    let commit =
        capture(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(root())).unwrap_or_default();
    let dirty =
        !capture(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).current_dir(root()))
            .unwrap_or_default()
            .is_empty();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();

    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut all: Vec<(&str, Result<Results, String>)> = Vec::new();
    for p in PLATFORMS.iter().filter(|p| o.only.iter().any(|x| x == *p)) {
        step(&format!("benchmark: {p} (elapsed {:.0} s)", t0.elapsed().as_secs_f64()));
        let r = match *p {
            "rust" => rust(o.quick),
            "node" => node(o.quick, &dir),
            "python" => python(o.quick),
            "kotlin" => kotlin(o.quick),
            _ => go(o.quick),
        };
        if let Err(e) = &r {
            println!("{p}: benchmark FAILED: {e}");
        }
        all.push((p, r));
    }

    let tables = render(&all);
    println!("\n{tables}");
    let failed: Vec<&str> = all.iter().filter(|(_, r)| r.is_err()).map(|(p, _)| *p).collect();
    if o.write && !o.quick && !partial {
        let header = format!(
            "Generated by `cargo xtask bench` on {date}, commit `{commit}`{}; load average at the start {load}. \
             Everything between the markers is rewritten by that command: edit the command, not the text.\n",
            if dirty { " with uncommitted changes" } else { "" }
        );
        write_docs(&format!("{header}\n{machine}\n{tables}"))?;
        println!("docs/benchmarks.md: tables regenerated");
    } else {
        println!("(docs/benchmarks.md not written: {})", if o.quick { "--quick" } else { "partial run" });
    }
    println!("bench finished in {:.0} s", t0.elapsed().as_secs_f64());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("benchmarks failed: {}", failed.join(", ")))
    }
}

// ---- per platform ---------------------------------------------------------------------------

fn rust(quick: bool) -> Result<Results, String> {
    let (warm, measure) = if quick { ("0.5", "1") } else { ("1", "3") };
    let args = ["bench", "-p", "turnout-core", "--bench", "engine", "--", "scenario", "--warm-up-time", warm];
    exec(cargo().args(args).args(["--measurement-time", measure]))?;
    let mut r = Results {
        command: format!(
            "cargo bench -p turnout-core --bench engine -- scenario --warm-up-time {warm} --measurement-time {measure}"
        ),
        ..Results::default()
    };
    for (id, label) in [
        ("prepared_1000", "prepared: ctx.int64(&var, 0)"),
        ("get_variable_1000", "one-shot: client.get_variable(name, &facets)"),
    ] {
        let path = root().join("target/criterion/scenario").join(id).join("new/estimates.json");
        let v = read_json(&path)?;
        // One iteration is one pass over the 1,000 contexts.
        let ns = v["median"]["point_estimate"].as_f64().ok_or_else(|| format!("{}: no median", rel(&path)))? / 1000.0;
        r.turnout.push((label.to_string(), ns));
    }
    r.prepared = Some(r.turnout[0].0.clone());
    r.one_shot = Some(r.turnout[1].0.clone());
    Ok(r)
}

fn node(quick: bool, dir: &Path) -> Result<Results, String> {
    let out = dir.join("node.json");
    let _ = std::fs::remove_file(&out);
    let mut args = vec!["bench".to_string(), "--json".to_string(), out.display().to_string()];
    if quick {
        args.extend(["--passes".to_string(), "50".to_string()]);
    }
    crate::wasm::run(&args)?;
    let v = read_json(&out)?;
    let results = v["results"].as_object().ok_or_else(|| format!("{}: no results", rel(&out)))?;
    let rows: Vec<(String, f64)> =
        results.iter().filter_map(|(k, r)| Some((k.clone(), r["median"].as_f64()?))).collect();
    Ok(split(
        format!("cargo xtask wasm bench{}", if quick { " --passes 50" } else { "" }),
        rows,
        |k| k.starts_with("turnout"),
        &["turnout prepared (ctx.getNumber)"],
        &["turnout one-shot (getVariable)"],
    ))
}

fn python(quick: bool) -> Result<Results, String> {
    let out = root().join("target/bench/python.json");
    let _ = std::fs::remove_file(&out);
    let mut args = vec!["--bench".to_string()];
    if quick {
        args.push("--quick".to_string());
    }
    crate::python::run(&args)?;
    let v = read_json(&out)?;
    let map = v["nsPerDecisionMedian"].as_object().ok_or_else(|| format!("{}: no nsPerDecisionMedian", rel(&out)))?;
    let rows: Vec<(String, f64)> = map.iter().filter_map(|(k, n)| Some((k.clone(), n.as_f64()?))).collect();
    Ok(split(
        format!("cargo xtask python --bench{}", if quick { " --quick" } else { "" }),
        rows,
        |k| k.starts_with("turnout") || k.starts_with("generated"),
        &["turnout prepared: ctx.int64(var, 0)"],
        &["turnout one-shot: client.get_variable(name, dict).int64(0)"],
    ))
}

/// Kotlin's JMH run writes `bindings/kotlin/target/jmh-result.json` (`cargo xtask kotlin --bench`);
/// the median of every benchmark's measured iterations is taken from its raw data (JMH's score
/// is a mean).
fn kotlin(quick: bool) -> Result<Results, String> {
    let out = root().join("bindings/kotlin/target/jmh-result.json");
    let _ = std::fs::remove_file(&out);
    let jmh: &[&str] = if quick {
        &["-f", "1", "-wi", "1", "-i", "2", "-w", "1", "-r", "1"]
    } else {
        &["-f", "1", "-wi", "3", "-i", "5", "-w", "1", "-r", "1"]
    };
    let mut args: Vec<String> = vec!["--bench".into()];
    args.extend(jmh.iter().map(|s| s.to_string()));
    crate::kotlin::run(&args)?;
    let v = read_json(&out)?;
    let mut rows = Vec::new();
    for b in v.as_array().ok_or_else(|| format!("{}: not a JMH result list", rel(&out)))? {
        let name = b["benchmark"].as_str().unwrap_or("?");
        let short = name.rsplit('.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".");
        let metric = &b["primaryMetric"];
        let mut raw: Vec<f64> = metric["rawData"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        raw.sort_by(f64::total_cmp);
        let score = match raw.len() {
            0 => metric["score"].as_f64().ok_or_else(|| format!("{name}: no score"))?,
            n => raw[n / 2],
        };
        let ns = match metric["scoreUnit"].as_str().unwrap_or("") {
            "ns/op" => score,
            "us/op" => score * 1e3,
            "ms/op" => score * 1e6,
            other => return Err(format!("{name}: unexpected JMH unit {other}")),
        };
        rows.push((short, ns));
    }
    Ok(split(
        format!("cargo xtask kotlin --bench {}", jmh.join(" ")),
        rows,
        |k| k.starts_with("ScenarioBench."),
        &["ScenarioBench.preparedJni"],
        &["ScenarioBench.oneShotJni"],
    ))
}

/// `cargo xtask go --bench` runs the Go benchmarks with inherited output (and every Go test);
/// the matrix needs their numbers, so the same `go test -bench` commands run here with their
/// output captured and parsed. The peers'
/// `BenchmarkScenario` is the benchmark behind go.rs's `TestRatios`.
fn go(quick: bool) -> Result<Results, String> {
    if !crate::uniffi::static_library_path().exists() {
        crate::uniffi::build_library()?;
    }
    let (benchtime, count) = if quick { ("100000x", "1") } else { ("1000000x", "3") };
    let bench = |dir: &str, pattern: &str| -> Result<Vec<(String, f64)>, String> {
        let mut c = Command::new("go");
        c.current_dir(root().join(dir)).env("CGO_ENABLED", "1");
        c.args(["test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", count]);
        let out = c.stderr(Stdio::inherit()).output().map_err(|e| format!("go test in {dir}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{text}");
        if !out.status.success() {
            return Err(format!("go test -bench in {dir} failed ({})", out.status));
        }
        Ok(parse_go_bench(&text))
    };
    let mut rows = bench("bindings/go", ".")?;
    let peers = bench("bindings/go/peers", "Scenario")?;
    rows.extend(peers.into_iter().map(|(k, v)| (k.trim_start_matches("Scenario/").to_string(), v)));
    Ok(split(
        format!("go test -bench . -benchtime {benchtime} -count {count} (bindings/go, bindings/go/peers)"),
        rows,
        |k| !k.contains('/') || k.starts_with("turnout/"),
        &["Prepared"],
        &["OneShotBuilder"],
    ))
}

/// `go test -bench` lines -> (name without `Benchmark` and `-N`, median ns/op over `-count` runs).
fn parse_go_bench(text: &str) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some(name) = parts.next().and_then(|n| n.strip_prefix("Benchmark")) else { continue };
        let fields: Vec<&str> = parts.collect();
        let Some(ns) = fields.windows(2).find(|w| w[1] == "ns/op").and_then(|w| w[0].parse::<f64>().ok()) else {
            continue;
        };
        let name = match name.rsplit_once('-') {
            Some((base, procs)) if procs.chars().all(|c| c.is_ascii_digit()) => base,
            _ => name,
        };
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(ns),
            None => by_name.push((name.to_string(), vec![ns])),
        }
    }
    by_name
        .into_iter()
        .map(|(n, mut v)| {
            v.sort_by(f64::total_cmp);
            (n, v[v.len() / 2])
        })
        .collect()
}

/// Sorts rows into turnout's and peers', and names the scenario's prepared and one-shot paths.
fn split(
    command: String,
    rows: Vec<(String, f64)>,
    is_turnout: impl Fn(&str) -> bool,
    prepared: &[&str],
    one_shot: &[&str],
) -> Results {
    let (turnout, peers): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(k, _)| is_turnout(k));
    let find = |names: &[&str]| names.iter().find(|n| turnout.iter().any(|(k, _)| k == *n)).map(|n| n.to_string());
    Results { command, prepared: find(prepared), one_shot: find(one_shot), turnout, peers }
}

// ---- output ---------------------------------------------------------------------------------

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn label(p: &str) -> &'static str {
    match p {
        "rust" => "Rust",
        "node" => "Node (WASM)",
        "python" => "Python",
        "kotlin" => "Kotlin/JVM",
        _ => "Go",
    }
}

fn render(all: &[(&str, Result<Results, String>)]) -> String {
    let rust = all.iter().find(|(p, _)| *p == "rust").and_then(|(_, r)| r.as_ref().ok());
    let (rust_prep, rust_one) = (rust.and_then(|r| r.ns(&r.prepared)), rust.and_then(|r| r.ns(&r.one_shot)));
    let mut s = String::new();
    s.push_str(
        "### The shared scenario, every platform\n\n\
         Seed rollout over 1,000 contexts (tests/bench/scenario.json), default options (decision events on, the \
         queue drained outside the timing); median ns per decision.\n\n\
         | platform | prepared | one-shot | prepared vs Rust | one-shot vs Rust | command |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    for (p, r) in all {
        match r {
            Ok(r) => {
                let (prep, one) = (r.ns(&r.prepared), r.ns(&r.one_shot));
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} | `{}` |\n",
                    label(p),
                    prep.map_or("-".into(), fmt_ns),
                    one.map_or("-".into(), fmt_ns),
                    ratio(prep, rust_prep),
                    ratio(one, rust_one),
                    r.command
                ));
            }
            Err(e) => {
                s.push_str(&format!("| {} | failed | | | | {} |\n", label(p), e.replace('|', "/").replace('\n', " ")))
            }
        }
    }
    s.push_str(
        "\n### Peers, measured in the same run\n\n\
         Each peer against turnout on the same platform, same path style, same run (> 1: the peer is \
         slower).\n\n\
         | platform | peer | ns/decision | compared with | turnout ns/decision | peer / turnout |\n\
         |---|---|---:|---|---:|---:|\n",
    );
    let mut any_peer = false;
    for (p, r) in all {
        let Ok(r) = r else { continue };
        for (name, ns) in &r.peers {
            any_peer = true;
            let base = r.baseline(name);
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                label(p),
                name,
                fmt_ns(*ns),
                base.as_ref().map_or("-", |(k, _)| k.as_str()),
                base.as_ref().map_or("-".into(), |(_, v)| fmt_ns(*v)),
                ratio(Some(*ns), base.as_ref().map(|(_, v)| *v))
            ));
        }
    }
    if !any_peer {
        s.push_str("| - | no peer measured | | | | |\n");
    }
    s.push_str("\n### Every turnout path measured\n\n| platform | path | ns/decision |\n|---|---|---:|\n");
    for (p, r) in all {
        let Ok(r) = r else { continue };
        for (name, ns) in &r.turnout {
            s.push_str(&format!("| {} | {} | {} |\n", label(p), name, fmt_ns(*ns)));
        }
    }
    s
}

fn capture(c: &mut Command) -> Option<String> {
    let out = c.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first line a tool prints for its version (java prints on stderr).
fn version(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().map(str::to_string)
        })
        .unwrap_or_else(|| "not found".into())
}

/// The machine table: CPU, memory, OS, toolchains.
fn machine() -> String {
    let lscpu = capture(&mut Command::new("lscpu")).unwrap_or_default();
    let field = |name: &str| {
        lscpu.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_string()))
    };
    let cpu = format!(
        "{}, {} CPUs ({} thread(s) per core){}{}",
        field("Model name").unwrap_or_else(|| "unknown CPU".into()),
        field("CPU(s)").unwrap_or_default(),
        field("Thread(s) per core").unwrap_or_default(),
        field("Hypervisor vendor").map(|h| format!(", {h} guest")).unwrap_or_default(),
        field("L3 cache").map(|c| format!(", L3 {c}")).unwrap_or_default(),
    );
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .map_or("unknown".into(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_default();
    let kernel = capture(Command::new("uname").args(["-sr"])).unwrap_or_default();
    let tools = [
        version("rustc", "--version"),
        version("node", "--version").replace('v', "node "),
        version("python3", "--version"),
        version("java", "-version"),
        version("go", "version"),
    ]
    .join("; ");
    format!(
        "| | |\n|---|---|\n| CPU | {cpu} |\n| Memory | {mem} |\n| OS | {os}, {kernel} |\n| Toolchains | {tools} |\n"
    )
}

/// Replaces the text between the markers (inserting the section before the first `## ` heading
/// after the title when the markers are not there yet).
fn write_docs(body: &str) -> Result<(), String> {
    let path: PathBuf = root().join("docs/benchmarks.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = format!("{START}\n{body}{END}");
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &text[..a], &text[b + END.len()..]),
        _ => {
            let section = format!(
                "## Cross-platform matrix (`cargo xtask bench`)\n\nEvery platform on the shared scenario in one \
                 run, regenerated by `cargo xtask bench`. The per-platform sections below explain each \
                 platform's numbers and paths.\n\n{block}\n\n"
            );
            match text.find("\n## ") {
                Some(i) => format!("{}{section}{}", &text[..i + 1], &text[i + 1..]),
                None => format!("{text}\n{section}"),
            }
        }
    };
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", rel(p)))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", rel(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bench_lines_give_the_median_per_name() {
        let text = "goos: linux\nBenchmarkPrepared-2   \t 1000000\t       143.0 ns/op\t       0 B/op\n\
                    BenchmarkPrepared-2   \t 1000000\t       150.5 ns/op\nBenchmarkPrepared-2 1000000 141 ns/op\n\
                    BenchmarkScenario/growthbook/prepared-2  1000000  356.2 ns/op  4 allocs/op\nPASS\n";
        let rows = parse_go_bench(text);
        assert_eq!(rows, vec![("Prepared".to_string(), 143.0), ("Scenario/growthbook/prepared".to_string(), 356.2)]);
    }

    #[test]
    fn rows_split_into_turnout_and_peers() {
        let rows = vec![
            ("Prepared".to_string(), 150.0),
            ("OneShot".to_string(), 500.0),
            ("turnout/prepared".to_string(), 100.0),
            ("growthbook/prepared".to_string(), 300.0),
            ("flagd one-shot".to_string(), 1000.0),
        ];
        let r = split("c".into(), rows, |k| !k.contains(' ') && !k.starts_with("growth"), &["Prepared"], &["OneShot"]);
        assert_eq!(r.ns(&r.prepared), Some(150.0));
        assert_eq!(r.peers.len(), 2);
        let table = render(&[("go", Ok(r))]);
        // Same path in the same process first, else the scenario's path of the same style.
        assert!(table.contains("| Go | growthbook/prepared | 300 | turnout/prepared | 100 | 3.00x |"), "{table}");
        assert!(table.contains("| Go | flagd one-shot | 1000 | OneShot | 500 | 2.00x |"), "{table}");
    }
}
