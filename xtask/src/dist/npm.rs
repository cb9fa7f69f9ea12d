//! The npm package as a release tarball: `npm/turnout-<v>.tgz`, `npm pack` of `wasm/pkg/`
//! (built by `cargo xtask wasm build`, see [`crate::wasm`]).
//!
//! The package has one entry per kind of consumer, chosen by its `exports` conditions (the
//! first matching one wins): `types` (`index.d.cts` for `require`, `index.d.ts` otherwise),
//! `workerd` (`worker.js`: the `.wasm` imported as a precompiled module, as Workers require),
//! `require` (`index.cjs`: esbuild's CommonJS bundle of `node.js`, synchronous), `node` and
//! `deno` (`node.js`: ESM, the `.wasm` read from disk), `default` (`web.js`: browsers and
//! bundlers, the `.wasm` fetched next to the module).
//!
//! The consumer test installs the tarball alone into a fresh project outside the repository,
//! with the tools a user would add from the registry (esbuild, TypeScript, workerd; pinned),
//! and takes the reference decisions through every entry: an ESM script, a CommonJS script,
//! an esbuild browser bundle in headless Chromium, and a fetch handler in `workerd`; the
//! declarations are checked by `tsc --strict` for `import` and for `require`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use super::{consumer_command, copy_into, fresh_dir, output, Dist, Reference, Scratch, VARIABLE};
use crate::{root, step};

/// The workerd release the consumer test runs the Worker in (npm `workerd`, its binary comes in
/// `@cloudflare/workerd-linux-64`).
const WORKERD: &str = "1.20261123.1";

/// The tarball must stay under this size.
const MAX_BYTES: u64 = 1_000_000;

/// Every file of the package: anything else in the tarball (a test, a map, the glue's own
/// declarations) is an error.
const FILES: [&str; 12] = [
    "README.md",
    "index.cjs",
    "index.d.cts",
    "index.d.ts",
    "index.js",
    "node.js",
    "package.json",
    "poller.js",
    "wasm/turnout_wasm.js",
    "wasm/turnout_wasm_bg.wasm",
    "web.js",
    "worker.js",
];

/// Builds `wasm/pkg/` (unless this run of `cargo xtask test` just did) and packs it.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    if !d.reuse_builds {
        crate::wasm::run(&["build".into()])?;
    }
    let pkg = crate::wasm::pkg_dir();
    let manifest: Value = read_json(&pkg.join("package.json"))?;
    if manifest["version"].as_str() != Some(d.version.as_str()) {
        return Err(format!("wasm/pkg/package.json has version {}, the workspace {}", manifest["version"], d.version));
    }
    check_wasm(&pkg.join("wasm/turnout_wasm_bg.wasm"))?;
    let out = d.path("npm");
    fresh_dir(&out)?;
    step("npm pack wasm/pkg");
    let packed =
        output(Command::new("npm").current_dir(&pkg).args(["pack", "--json", "--pack-destination"]).arg(&out))?;
    let packed: Value = serde_json::from_str(&packed).map_err(|e| format!("npm pack --json: {e}\n{packed}"))?;
    let mut files: Vec<&str> = packed[0]["files"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["path"].as_str()).collect())
        .unwrap_or_default();
    files.sort_unstable();
    if files != FILES {
        return Err(format!("npm pack: the tarball holds {files:?}, expected exactly {FILES:?}"));
    }
    let name = format!("turnout-{}.tgz", d.version);
    if packed[0]["filename"].as_str() != Some(name.as_str()) {
        return Err(format!("npm pack wrote {}, expected {name}", packed[0]["filename"]));
    }
    let tgz = out.join(&name);
    let bytes = std::fs::metadata(&tgz).map_err(|e| format!("{}: {e}", tgz.display()))?.len();
    if bytes >= MAX_BYTES {
        return Err(format!("{name} is {bytes} bytes (limit {MAX_BYTES})"));
    }
    println!("target/dist/npm/{name}: {bytes} bytes, {} unpacked, {} files", packed[0]["unpackedSize"], files.len());
    let mut entry = d.file_entry(&tgz)?;
    entry["name"] = json!("turnout");
    Ok(entry)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The shipped module carries no debug information: no `name`, `.debug_*` or source map section.
fn check_wasm(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(format!("{} is not a WebAssembly module", path.display()));
    }
    let leb = |at: &mut usize| -> Result<usize, String> {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let b = *bytes.get(*at).ok_or("truncated WebAssembly module")?;
            *at += 1;
            v |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    };
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let len = leb(&mut at)?;
        let end = at + len;
        if id == 0 {
            let mut p = at;
            let n = leb(&mut p)?;
            let name = String::from_utf8_lossy(bytes.get(p..p + n).ok_or("truncated WebAssembly module")?);
            if name == "name" || name.starts_with(".debug") || name == "sourceMappingURL" {
                return Err(format!("{} carries debug information (custom section `{name}`)", path.display()));
            }
        }
        at = end;
    }
    Ok(())
}

/// A dev dependency's pinned version in `wasm/js/package.json` (the consumer installs the same).
fn pinned(name: &str) -> Result<String, String> {
    let manifest = read_json(&root().join("wasm/js/package.json"))?;
    manifest["devDependencies"][name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("wasm/js/package.json has no devDependency {name}"))
}

/// Installs the tarball into a fresh project and takes the reference decisions through every entry.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let file = entry["file"].as_str().ok_or("the npm entry has no file")?;
    let scratch = Scratch::new("npm")?;
    let dir = &scratch.0;
    let tgz = copy_into(&d.path(file), dir)?;
    r.write_inputs(dir)?;
    for (name, text) in CONSUMER {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text.replace("VARIABLE", VARIABLE)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let node = |args: &[&str]| {
        let mut c = consumer_command("node", dir);
        c.args(args);
        c
    };

    let t = Instant::now();
    let tgz_arg = format!("./{}", tgz.file_name().unwrap_or_default().to_string_lossy());
    output(consumer_command("npm", dir).args(["install", "--no-audit", "--no-fund", "--prefer-offline", &tgz_arg]))?;
    let install = t.elapsed().as_secs_f64();
    let tools = [
        format!("esbuild@{}", pinned("esbuild")?),
        format!("typescript@{}", pinned("typescript")?),
        format!("workerd@{WORKERD}"),
    ];
    output(
        consumer_command("npm", dir)
            .args(["install", "--save-dev", "--save-exact", "--no-audit", "--no-fund", "--prefer-offline"])
            .args(&tools),
    )?;
    println!(
        "npm install {tgz_arg}: {install:.1} s; tools ({}): {:.1} s",
        tools.join(", "),
        t.elapsed().as_secs_f64() - install
    );

    // The version the package reports, and which file each kind of import resolves to.
    let cjs = output(&mut node(&[
        "-e",
        "console.log(require('path').basename(require.resolve('turnout')), require('turnout').VERSION)",
    ]))?;
    let esm = output(&mut node(&[
        "--input-type=module",
        "-e",
        "import { VERSION } from 'turnout'; console.log(import.meta.resolve('turnout').split('/').pop(), VERSION)",
    ]))?;
    for (got, want) in
        [(cjs.trim(), format!("index.cjs {}", d.version)), (esm.trim(), format!("node.js {}", d.version))]
    {
        if got != want {
            return Err(format!("the installed package reports `{got}`, expected `{want}`"));
        }
    }
    println!("npm: require resolves index.cjs, import node.js; VERSION {}", d.version);

    r.check("npm-esm", &output(&mut node(&["esm.mjs"]))?)?;
    r.check("npm-cjs", &output(&mut node(&["cjs.cjs"]))?)?;

    // The declarations, for `import` (index.d.ts) and for `require` (index.d.cts).
    let tsc = output(&mut node(&["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--explainFiles"]))?;
    for decl in ["node_modules/turnout/index.d.ts", "node_modules/turnout/index.d.cts"] {
        if !tsc.lines().any(|l| l.ends_with(decl)) {
            return Err(format!("tsc did not read {decl}:\n{tsc}"));
        }
    }
    println!("npm-types: tsc --strict accepts esm.mts (index.d.ts) and cjs.cts (index.d.cts)");

    // A browser bundle by esbuild (the `default` entry, web.js), with the .wasm next to it as
    // web.js expects; served on localhost and run in headless Chromium.
    let esbuild = |args: &[&str]| {
        let mut c = consumer_command(dir.join("node_modules/.bin/esbuild"), dir);
        c.args(args).args(["--bundle", "--format=esm", "--log-level=warning"]);
        c
    };
    output(&mut esbuild(&["browser.mjs", "--platform=browser", "--outfile=public/app.js"]))?;
    std::fs::copy(dir.join("node_modules/turnout/wasm/turnout_wasm_bg.wasm"), dir.join("public/turnout_wasm_bg.wasm"))
        .map_err(|e| format!("copy the .wasm next to the bundle: {e}"))?;
    crate::wasm::ensure_chromium()?;
    r.check("npm-browser", &output(&mut node(&["run-browser.mjs", crate::wasm::CHROMIUM]))?)?;

    // A Worker: bundled as wrangler does (conditions workerd, worker, browser; the .wasm as a
    // module of its own), run by workerd, asked over HTTP.
    output(&mut esbuild(&[
        "worker.mjs",
        "--platform=neutral",
        "--conditions=workerd,worker,browser",
        "--loader:.wasm=copy",
        "--loader:.json=text",
        "--asset-names=[name]",
        "--outdir=worker-out",
    ]))?;
    r.check("npm-workerd", &output(&mut node(&["run-workerd.mjs", &d.version]))?)?;
    Ok(())
}

/// The consumer project's files (`VARIABLE` is replaced by the decided variable).
const CONSUMER: [(&str, &str); 10] = [
    (
        "esm.mjs",
        r#"import { readFileSync } from 'node:fs';
import { Client } from 'turnout';

const client = new Client({ config: readFileSync('config.json', 'utf8') });
for (const line of readFileSync('contexts.jsonl', 'utf8').split('\n')) {
  if (line.trim()) console.log(client.getVariable('VARIABLE', JSON.parse(line)).number(0));
}
"#,
    ),
    (
        "cjs.cjs",
        r#"const { readFileSync } = require('node:fs');
const { Client } = require('turnout');

const client = new Client({ config: readFileSync('config.json') });
for (const line of readFileSync('contexts.jsonl', 'utf8').split('\n')) {
  if (line.trim()) console.log(client.getVariable('VARIABLE', JSON.parse(line)).number(0));
}
"#,
    ),
    (
        "tsconfig.json",
        r#"{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "lib": ["ES2022", "DOM", "ESNext.Disposable"],
    "types": [],
    "skipLibCheck": false
  },
  "files": ["esm.mts", "cjs.cts"]
}
"#,
    ),
    (
        "esm.mts",
        r#"import { Client, TurnoutError, VERSION, type Decision, type Facets } from 'turnout';

const client: Client = new Client({ config: '{"variable":"v","rollouts":[],"default":1}', service: 'app' });
const facets: Facets = { city: 6, pax: 9007199254740993n };
const d: Decision = client.getVariable('v', facets);
const n: number = d.number(0);
const version: string = VERSION;
const isError = (e: unknown): e is TurnoutError => e instanceof TurnoutError;
export { n, version, isError };
"#,
    ),
    (
        "cjs.cts",
        r#"import turnout = require('turnout');

const client: turnout.Client = new turnout.Client({ config: '{}' });
const n: number = client.getVariable('v', { city: 6 }).number(0);
const version: string = turnout.VERSION;
export = { n, version };
"#,
    ),
    (
        "browser.mjs",
        r#"import { Client } from 'turnout';

const [config, contexts] = await Promise.all(['config.json', 'contexts.jsonl'].map((f) => fetch(f).then((r) => r.text())));
const client = new Client({ config });
const out = contexts
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => client.getVariable('VARIABLE', JSON.parse(l)).number(0));
await fetch('/result', { method: 'POST', body: out.join('\n') + '\n' });
"#,
    ),
    (
        "public/index.html",
        r#"<!doctype html>
<meta charset="utf-8">
<script>
  const fail = (what) => fetch('/error', { method: 'POST', body: String(what) });
  addEventListener('error', (e) => fail(e.error?.stack ?? e.message));
  addEventListener('unhandledrejection', (e) => fail(e.reason?.stack ?? e.reason));
</script>
<script type="module" src="app.js"></script>
"#,
    ),
    (
        "run-browser.mjs",
        r#"// Serves public/ (and the inputs) on localhost, opens it in headless Chromium, prints what the page posts.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const chromium = process.argv[2];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
let settle;
const result = new Promise((resolve, reject) => (settle = { resolve, reject }));
const server = http.createServer(async (req, res) => {
  if (req.method === 'POST') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    res.writeHead(204).end();
    const body = Buffer.concat(chunks).toString();
    if (req.url === '/result') settle.resolve(body);
    else settle.reject(new Error(`the page failed: ${body}`));
    return;
  }
  const name = req.url === '/' ? 'index.html' : req.url.slice(1);
  const file = ['config.json', 'contexts.jsonl'].includes(name) ? name : path.join('public', path.basename(name));
  try {
    const data = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[path.extname(name)] ?? 'application/octet-stream' }).end(data);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = spawn(
  chromium,
  ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
   '--disable-component-update', '--disable-sync', `--user-data-dir=${path.resolve('chromium-profile')}`, url],
  { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
);
let log = '';
browser.stderr.on('data', (c) => (log += c));
browser.on('exit', (code) => settle.reject(new Error(`chromium exited (${code}) before the page answered:\n${log}`)));
const timer = setTimeout(() => settle.reject(new Error(`no answer from the page in 60 s:\n${log}`)), 60_000);
try {
  process.stdout.write(await result);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  browser.removeAllListeners('exit');
  try {
    process.kill(-browser.pid, 'SIGKILL');
  } catch {}
  server.closeAllConnections();
  server.close();
}
"#,
    ),
    (
        "worker.mjs",
        r#"// A Worker's fetch handler: one decision per line of facets in the request body.
import { Client, VERSION } from 'turnout';
import config from './config.json';

export default {
  async fetch(request) {
    const client = new Client({ config });
    const out = (await request.text())
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => client.getVariable('VARIABLE', JSON.parse(l)).number(0));
    return new Response(out.join('\n') + '\n', { headers: { 'x-turnout-version': VERSION } });
  },
};
"#,
    ),
    (
        "run-workerd.mjs",
        r#"// Runs the bundled Worker (worker-out/) in workerd on a free port, posts contexts.jsonl, prints the answer.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';

const version = process.argv[2];
const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
await writeFile(
  'worker.capnp',
  `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .consumer)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);

const consumer :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker-out/worker.js"),
    (name = "turnout_wasm_bg.wasm", wasm = embed "worker-out/turnout_wasm_bg.wasm"),
  ],
  compatibilityDate = "2025-01-01",
);
`,
);
const workerd = spawn('node_modules/.bin/workerd', ['serve', 'worker.capnp'], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
workerd.stderr.on('data', (c) => (log += c));
let exited = null;
workerd.on('exit', (code) => (exited = code));
const body = await readFile('contexts.jsonl');
try {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== null) throw new Error(`workerd exited (${exited}):\n${log}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`workerd answered ${res.status}: ${text}\n${log}`);
      if (res.headers.get('x-turnout-version') !== version) {
        throw new Error(`the Worker reports VERSION ${res.headers.get('x-turnout-version')}, expected ${version}`);
      }
      process.stdout.write(text);
      break;
    } catch (e) {
      if (e.cause?.code !== 'ECONNREFUSED' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
} catch (e) {
  console.error(e.message ?? e, log);
  process.exitCode = 1;
} finally {
  workerd.kill('SIGKILL');
}
"#,
    ),
];
