//! `cargo xtask conformance`: the conformance matrix, platform x vector file.
//!
//! Every platform's conformance test writes `target/conformance/<platform>.json`
//! (`{"platform", "files": {"<file>": {"passed", "failed"}}}`, tests/bench/README.md). This
//! command reads them into one matrix against `tests/conformance/index.json` and fails when a
//! platform is missing, a file is missing from a platform, a case failed, a platform ran fewer
//! cases than the index lists, or a result is older than the vectors (stale).
//!
//! - `cargo xtask conformance`: runs the Rust conformance test (seconds), reads the others.
//! - `cargo xtask conformance --run`: first runs every platform's tests through its own xtask
//!   module (`cargo xtask wasm` for Node and Chromium, `python`, `kotlin`, `go`).
//! - `cargo xtask test` calls [`check`] at its end with its own start time, so only results
//!   written during that run count.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::{cargo, rel, root, run as exec, step};

/// The platforms that must report, in matrix order.
pub(crate) const PLATFORMS: [&str; 6] = ["rust", "node", "chromium", "python", "kotlin", "go"];

/// Runs `cargo xtask conformance [--run]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let all = match args {
        [] => false,
        [a] if a == "--run" => true,
        _ => return Err("usage: cargo xtask conformance [--run]".into()),
    };
    let since = SystemTime::now();
    step("cargo test -p turnout-core --test conformance (writes target/conformance/rust.json)");
    exec(cargo().args(["test", "--quiet", "-p", "turnout-core", "--test", "conformance"]))?;
    if all {
        let mut failed = Vec::new();
        type Step = fn() -> Result<(), String>;
        let runs: [(&str, Step); 4] = [
            ("wasm (node + chromium)", || crate::wasm::run(&[])),
            ("python", || crate::python::run(&[])),
            ("kotlin", || crate::kotlin::run(&[])),
            ("go", || crate::go::run(&[])),
        ];
        for (name, f) in runs {
            step(&format!("cargo xtask {name}"));
            if let Err(e) = f() {
                println!("cargo xtask {name} failed: {e}");
                failed.push(name);
            }
        }
        let r = check(Some(since));
        if !failed.is_empty() {
            return Err(format!("test runs failed: {}", failed.join(", ")));
        }
        return r;
    }
    check(None)
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Counts { passed: u64, failed: u64 },
    Missing,
}

/// Prints the matrix and fails on any failure, missing platform or file, short count or stale
/// result. Results older than `since` (when given) or than the newest vector file are stale.
pub(crate) fn check(since: Option<SystemTime>) -> Result<(), String> {
    let vectors = root().join("tests/conformance");
    let index: Value = read_json(&vectors.join("index.json"))?;
    let files: Vec<(String, u64)> = index["files"]
        .as_array()
        .ok_or("index.json: no files")?
        .iter()
        .filter_map(|f| Some((f["path"].as_str()?.to_string(), f["cases"].as_u64()?)))
        .collect();
    let newest_vector = std::fs::read_dir(&vectors)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    let cutoff = match (since, newest_vector) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let dir = root().join("target/conformance");
    let mut platforms: Vec<String> = PLATFORMS.iter().map(|s| s.to_string()).collect();
    // Extra platforms that report (c, swift, ...) are shown too.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut extra: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .filter(|p| !platforms.contains(p))
            .collect();
        extra.sort();
        platforms.extend(extra);
    }
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for p in &platforms {
        let path = dir.join(format!("{p}.json"));
        let report = match read_json(&path) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("{p}: no {} (its conformance tests did not run)", rel(&path)));
                rows.push((p.clone(), None, vec![Cell::Missing; files.len()]));
                continue;
            }
        };
        let stale = match (std::fs::metadata(&path).and_then(|m| m.modified()).ok(), cutoff) {
            (Some(written), Some(cut)) => written < cut,
            _ => false,
        };
        let required = PLATFORMS.contains(&p.as_str());
        if stale && !required {
            println!("note: {} is stale (an optional platform: not counted)", rel(&path));
        } else if stale {
            problems
                .push(format!("{p}: {} is older than this run or the vectors (stale): rerun its tests", rel(&path)));
        }
        if report["platform"].as_str().is_some_and(|name| name != p) {
            problems.push(format!("{p}: {} says platform {}", rel(&path), report["platform"]));
        }
        let cells: Vec<Cell> = files
            .iter()
            .map(|(f, cases)| {
                let c = &report["files"][f];
                match (c["passed"].as_u64(), c["failed"].as_u64()) {
                    (Some(passed), Some(failed)) => {
                        if failed > 0 {
                            problems.push(format!("{p}: {f}: {failed} failed"));
                        } else if passed < *cases {
                            problems.push(format!("{p}: {f}: {passed} of the index's {cases} cases ran"));
                        }
                        Cell::Counts { passed, failed }
                    }
                    _ => {
                        problems.push(format!("{p}: {f}: not reported"));
                        Cell::Missing
                    }
                }
            })
            .collect();
        rows.push((p.clone(), Some(stale), cells));
    }
    print_matrix(&files, &rows);
    if problems.is_empty() {
        let total: u64 = files.iter().map(|(_, c)| c).sum();
        println!("conformance: {} platforms x {} files ({total} cases each): all passed", rows.len(), files.len());
        Ok(())
    } else {
        for p in &problems {
            println!("  - {p}");
        }
        Err(format!("conformance matrix: {} problem(s)", problems.len()))
    }
}

fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

type Row = (String, Option<bool>, Vec<Cell>);

fn print_matrix(files: &[(String, u64)], rows: &[Row]) {
    let names: Vec<String> = files.iter().map(|(f, _)| f.trim_end_matches(".json").to_string()).collect();
    let widths: Vec<usize> = names.iter().map(|n| n.len().max(11)).collect();
    let mut header = format!("\n{:<10}", "platform");
    for (n, w) in names.iter().zip(&widths) {
        header.push_str(&format!(" {n:>w$}"));
    }
    println!("{header}  (passed/failed)");
    println!("{}", "-".repeat(header.len() + 14));
    for (p, stale, cells) in rows {
        let mut line = format!("{p:<10}");
        for (c, w) in cells.iter().zip(&widths) {
            let text = match c {
                Cell::Counts { passed, failed } => format!("{passed}/{failed}"),
                Cell::Missing => "missing".to_string(),
            };
            line.push_str(&format!(" {text:>w$}"));
        }
        match stale {
            Some(true) => line.push_str("  (stale)"),
            None => line.push_str("  (no results)"),
            Some(false) => {}
        }
        println!("{line}");
    }
    let mut cases = format!("{:<10}", "cases");
    for ((_, n), w) in files.iter().zip(&widths) {
        cases.push_str(&format!(" {n:>w$}"));
    }
    println!("{}\n{cases}", "-".repeat(header.len() + 14));
}
