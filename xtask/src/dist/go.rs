//! The Go module `github.com/turnout-dev/turnout-go` as a module proxy tree (`target/dist/goproxy/`,
//! what `GOPROXY=file://...` reads), carrying the prebuilt static library of every target.
//!
//! The module is `bindings/go` (the files git tracks or would track, without the `peers` module),
//! staged in `target/go-module/` with the real `include/turnout.h` (a symlink in the repository),
//! the repository's `LICENSE`, and `lib/<GOOS>_<GOARCH>/libturnout_ffi.a` for the four targets of
//! [`native::TARGETS`], which `native.go` picks by cgo build constraints. `xtask/gomodproxy` (a
//! small Go program using `golang.org/x/mod/zip`, the go command's own zip code) writes the
//! `.zip`, `.mod`, `.info` and `list` files. The published module is this exact tree, pushed as
//! tag `vX.Y.Z` of the mirror repository `github.com/turnout-dev/turnout-go` (bindings/go/README.md).
//!
//! The consumer test copies only the proxy tree to a fresh directory outside the repository,
//! `go get`s the module through it into an empty module cache, builds and runs a program that
//! decides the reference contexts, cross-builds it for linux/arm64 with Debian's aarch64 gcc
//! (checking the ELF machine), and checks that cgo resolves the darwin libraries of the module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use super::native::{self, Target};
use super::{consumer_command, copy_tree, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{rel, root, step, succeeds};

/// The module path (the mirror repository).
pub(crate) const MODULE: &str = "github.com/turnout-dev/turnout-go";

/// The proxy tree's directory for the module (no upper-case letters: the escaped path is the path).
fn module_dir(d: &Dist) -> PathBuf {
    d.path("goproxy").join(MODULE).join("@v")
}

/// Builds the module proxy tree and returns the manifest entry.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    let version = format!("v{}", d.version);
    let stage = root().join("target/go-module");
    fresh_dir(&stage)?;
    stage_sources(&stage)?;
    for t in &native::TARGETS {
        let libs = native::build(t)?;
        check_archive(&libs.staticlib, t)?;
        let dir = stage.join("lib").join(t.go);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        copy(&libs.staticlib, &dir.join("libturnout_ffi.a"))?;
    }
    let unzipped = tree_size(&stage)?;

    step(&format!("go module {MODULE}@{version} -> {} (golang.org/x/mod/zip)", rel(&d.path("goproxy"))));
    let proxy = d.path("goproxy");
    if proxy.exists() {
        std::fs::remove_dir_all(&proxy).map_err(|e| format!("{}: {e}", proxy.display()))?;
    }
    let sums = output(
        Command::new("go")
            .current_dir(root().join("xtask/gomodproxy"))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .args(["run", ".", "-module", MODULE, "-version", &version, "-dir"])
            .arg(&stage)
            .arg("-out")
            .arg(&proxy)
            .arg("-time")
            .arg(commit_time()?),
    )?;
    let vdir = module_dir(d);
    let mut files = Vec::new();
    for ext in ["zip", "mod", "info"] {
        files.push(d.file_entry(&vdir.join(format!("{version}.{ext}")))?);
    }
    let zipped = std::fs::metadata(vdir.join(format!("{version}.zip"))).map_err(|e| e.to_string())?.len();
    println!(
        "{version}.zip: {:.1} MB ({:.1} MB unzipped; the module proxy's limit is 500 MB unzipped)",
        mb(zipped),
        mb(unzipped)
    );
    print!("go.sum lines once published:\n{sums}");
    Ok(json!({"module": MODULE, "version": version, "proxy": "goproxy", "files": files}))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The module's sources: `bindings/go` as git sees it (tracked and untracked-not-ignored files),
/// without the `peers` module; symlinks (the header) copied as the files they point to.
fn stage_sources(stage: &Path) -> Result<(), String> {
    let list = output(Command::new("git").current_dir(root()).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        "bindings/go",
    ]))?;
    let mut n = 0;
    for file in list.split('\0').filter(|f| !f.is_empty()) {
        let Some(inner) = file.strip_prefix("bindings/go/") else { continue };
        let from = root().join(file);
        if inner.starts_with("peers/") || inner.ends_with(".a") || !from.exists() {
            continue;
        }
        let to = stage.join(inner);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        copy(&from, &to)?;
        n += 1;
    }
    let header = stage.join("include/turnout.h");
    if !header.is_file() {
        return Err("bindings/go/include/turnout.h (-> ffi/include/turnout.h) is missing".into());
    }
    copy(&root().join("LICENSE"), &stage.join("LICENSE"))?;
    println!("staged {} files of bindings/go (+ LICENSE) in {}", n, rel(stage));
    Ok(())
}

/// Copies a file (following symlinks).
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

fn tree_size(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let meta = e.metadata().map_err(|e| e.to_string())?;
        total += if meta.is_dir() { tree_size(&e.path())? } else { meta.len() };
    }
    Ok(total)
}

/// The time of the commit the module is built from (the `.info` time): the same tree gives the
/// same proxy files.
fn commit_time() -> Result<String, String> {
    let t = output(Command::new("git").current_dir(root()).args(["log", "-1", "--format=%cI", "HEAD"]))?;
    Ok(t.trim().to_string())
}

// ---- what a static library holds ----------------------------------------------------------------

/// The machine of an object file: ELF `e_machine` or Mach-O `cputype`, as a name.
fn object_machine(obj: &[u8]) -> Option<String> {
    let u16le = |i: usize| obj.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32le = |i: usize| obj.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if obj.starts_with(b"\x7fELF") {
        return Some(match u16le(18)? {
            62 => "elf x86_64".into(),
            183 => "elf aarch64".into(),
            m => format!("elf machine {m}"),
        });
    }
    if obj.starts_with(&[0xcf, 0xfa, 0xed, 0xfe]) {
        return Some(match u32le(4)? {
            0x0100_0007 => "mach-o x86_64".into(),
            0x0100_000c => "mach-o arm64".into(),
            m => format!("mach-o cputype {m:#x}"),
        });
    }
    None
}

/// The machines of the object files of an `ar` archive (GNU or BSD names).
fn archive_machines(ar: &[u8]) -> Result<(BTreeSet<String>, usize), String> {
    let body = ar.strip_prefix(b"!<arch>\n").ok_or("not an ar archive")?;
    let (mut machines, mut objects, mut at) = (BTreeSet::new(), 0, 0);
    while at + 60 <= body.len() {
        let header = &body[at..at + 60];
        let field = |r: std::ops::Range<usize>| String::from_utf8_lossy(&header[r]).trim().to_string();
        let size: usize = field(48..58).parse().map_err(|_| format!("bad member size at {at}"))?;
        let name = field(0..16);
        let mut data = body.get(at + 60..at + 60 + size).ok_or("truncated archive")?;
        if let Some(len) = name.strip_prefix("#1/").and_then(|l| l.parse::<usize>().ok()) {
            data = data.get(len.min(data.len())..).unwrap_or_default(); // BSD: the name comes first
        }
        if let Some(m) = object_machine(data) {
            machines.insert(m);
            objects += 1;
        }
        at += 60 + size + size % 2;
    }
    Ok((machines, objects))
}

/// The machine every object of `t`'s static library must be built for.
fn expected_machine(go: &str) -> &'static str {
    match go {
        "linux_amd64" => "elf x86_64",
        "linux_arm64" => "elf aarch64",
        "darwin_amd64" => "mach-o x86_64",
        _ => "mach-o arm64",
    }
}

/// Fails unless every object of the static library is built for `t`'s machine.
fn check_archive(lib: &Path, t: &Target) -> Result<(), String> {
    let bytes = std::fs::read(lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let (machines, objects) = archive_machines(&bytes).map_err(|e| format!("{}: {e}", lib.display()))?;
    let want = expected_machine(t.go);
    if objects == 0 || machines.len() != 1 || !machines.contains(want) {
        return Err(format!("{}: objects for {machines:?}, not only {want}", lib.display()));
    }
    println!("{}: {:.1} MB, {objects} objects, all {want}", t.go, mb(bytes.len() as u64));
    Ok(())
}

// ---- the consumer test ----------------------------------------------------------------------------

/// The consumer program: decides every context of `contexts.jsonl` with the seed rollout of
/// `config.json` (facets built with the package's setters), one integer per line.
const MAIN_GO: &str = r#"package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	turnout "github.com/turnout-dev/turnout-go"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(version string) error {
	if turnout.Version != version || turnout.LibraryVersion() != version {
		return fmt.Errorf("versions: package %s, library %s, want %s", turnout.Version, turnout.LibraryVersion(), version)
	}
	config, err := os.ReadFile("config.json")
	if err != nil {
		return err
	}
	client, err := turnout.New(config)
	if err != nil {
		return err
	}
	defer client.Close()
	file, err := os.Open("contexts.jsonl")
	if err != nil {
		return err
	}
	defer file.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		if len(bytes.TrimSpace(lines.Bytes())) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(lines.Bytes()))
		dec.UseNumber()
		var object map[string]any
		if err := dec.Decode(&object); err != nil {
			return err
		}
		names := make([]string, 0, len(object))
		for name := range object {
			names = append(names, name)
		}
		sort.Strings(names)
		facets := turnout.NewFacets()
		for _, name := range names {
			switch v := object[name].(type) {
			case json.Number:
				if i, err := v.Int64(); err == nil {
					facets.Int64(name, i)
				} else if f, err := v.Float64(); err == nil {
					facets.Float64(name, f)
				} else {
					return err
				}
			case string:
				facets.String(name, v)
			case bool:
				facets.Bool(name, v)
			default:
				return fmt.Errorf("facet %s: unsupported value %v", name, v)
			}
		}
		fmt.Fprintln(out, client.GetVariable(context.Background(), "VARIABLE", facets).Int64(0))
	}
	return lines.Err()
}
"#;

/// A `go` command in the consumer directory whose module cache is inside the scratch directory,
/// whose only module source is the copied proxy tree, and which ignores the user's go env file.
/// The build cache is the user's own (content-addressed: it cannot supply a module's source; it
/// only saves compiling the standard library again, about 30 s per target).
fn go(app: &Path, scratch: &Path) -> Command {
    let mut c = consumer_command("go", app);
    let proxy = scratch.join("goproxy");
    c.env("GOPROXY", format!("file://{}", proxy.display()))
        .env("GOSUMDB", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPATH", scratch.join("gopath"))
        .env("GOMODCACHE", scratch.join("gopath/pkg/mod"))
        .env("GOENV", "off")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOPRIVATE", "")
        .env("GONOPROXY", "")
        .env("CGO_ENABLED", "1");
    c
}

/// Installs the module from the proxy tree alone into a fresh project and checks its decisions.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let version = entry["version"].as_str().ok_or("go entry: no version")?.to_string();
    if version != format!("v{}", d.version) {
        return Err(format!("go entry: version {version}, the workspace is {}", d.version));
    }
    let scratch = Scratch::new("go")?;
    let result = consume_in(d, &version, &scratch.0, r);
    // The module cache is read-only: let the go command remove it before the scratch dir goes.
    let app = scratch.0.join("app");
    if app.exists() {
        let _ = succeeds(go(&app, &scratch.0).args(["clean", "-modcache"]));
    }
    result
}

fn consume_in(d: &Dist, version: &str, scratch: &Path, r: &Reference) -> Result<(), String> {
    copy_tree(&d.path("goproxy"), &scratch.join("goproxy"))?;
    let app = scratch.join("app");
    std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    r.write_inputs(&app)?;
    std::fs::write(app.join("go.mod"), "module consumer\n\ngo 1.24\n").map_err(|e| e.to_string())?;
    std::fs::write(app.join("main.go"), MAIN_GO.replace("\"VARIABLE\"", &format!("{VARIABLE:?}")))
        .map_err(|e| e.to_string())?;

    let t = Instant::now();
    output(go(&app, scratch).args(["get", &format!("{MODULE}@{version}")]))?;
    let got = t.elapsed().as_secs_f64();
    output(go(&app, scratch).args(["build", "-o", "consumer", "."]))?;
    println!("go get {:.1} s, go build {:.1} s (empty module cache)", got, t.elapsed().as_secs_f64() - got);
    let stdout = output(consumer_command(app.join("consumer"), &app).arg(&version[1..]))?;
    r.check("go", &stdout)?;

    cross_build_arm64(&app, scratch, r, &version[1..])?;
    darwin_flags(&app, scratch)
}

/// `GOOS=linux GOARCH=arm64` with Debian's aarch64 gcc: the module's linux_arm64 library links.
fn cross_build_arm64(app: &Path, scratch: &Path, r: &Reference, version: &str) -> Result<(), String> {
    let cc = "aarch64-linux-gnu-gcc";
    if !succeeds(Command::new(cc).arg("--version")) && !crate::go::apt_install("gcc-aarch64-linux-gnu") {
        return Err(format!("{cc} is missing and apt-get could not install gcc-aarch64-linux-gnu"));
    }
    step("consumer test: go: cross build GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc");
    let t = Instant::now();
    output(go(app, scratch).env("GOOS", "linux").env("GOARCH", "arm64").env("CC", cc).args([
        "build",
        "-o",
        "consumer-arm64",
        ".",
    ]))?;
    let bin = app.join("consumer-arm64");
    let head = std::fs::read(&bin).map_err(|e| e.to_string())?;
    let machine = head.get(..20).and_then(object_machine);
    if machine.as_deref() != Some("elf aarch64") || head.get(4) != Some(&2) {
        return Err(format!("{}: not a 64-bit aarch64 ELF ({machine:?})", bin.display()));
    }
    println!("consumer-arm64: aarch64 ELF, linked in {:.1} s", t.elapsed().as_secs_f64());
    if succeeds(Command::new("qemu-aarch64").arg("--version")) {
        let stdout = output(
            consumer_command("qemu-aarch64", app).args(["-L", "/usr/aarch64-linux-gnu"]).arg(&bin).arg(version),
        )?;
        r.check("go (linux/arm64 under qemu)", &stdout)?;
    } else {
        println!("qemu-aarch64 is not installed: the arm64 binary is linked and checked, not run");
    }
    Ok(())
}

/// darwin cannot be linked here: check that cgo's flags for darwin/amd64 and darwin/arm64 name
/// the module's library of that machine.
fn darwin_flags(app: &Path, scratch: &Path) -> Result<(), String> {
    for t in native::TARGETS.iter().filter(|t| !t.linux) {
        let (goos, goarch) = t.go.split_once('_').ok_or("bad target")?;
        let flags = output(go(app, scratch).env("GOOS", goos).env("GOARCH", goarch).args([
            "list",
            "-f",
            "{{.Dir}} {{join .CgoLDFLAGS \" \"}}",
            MODULE,
        ]))?;
        let mut words = flags.split_whitespace();
        let dir = words.next().ok_or("go list: no output")?;
        let lib = words.find(|w| w.ends_with(".a")).ok_or(format!("{}: no static library in {flags}", t.go))?;
        let lib = PathBuf::from(lib.replace("${SRCDIR}", dir));
        let bytes = std::fs::read(&lib).map_err(|e| format!("{}: {}: {e}", t.go, lib.display()))?;
        let (machines, _) = archive_machines(&bytes)?;
        if machines.len() != 1 || !machines.contains(expected_machine(t.go)) {
            return Err(format!("{}: cgo links {} holding {machines:?}", t.go, lib.display()));
        }
        println!(
            "{}: cgo links {} ({})",
            t.go,
            lib.strip_prefix(dir).unwrap_or(&lib).display(),
            expected_machine(t.go)
        );
    }
    Ok(())
}
