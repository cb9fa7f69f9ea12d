// The package as a user gets it: `npm pack` of wasm/pkg, installed into a
// fresh project, imported by name (ESM `import`, CommonJS `require`, and from
// CommonJS by dynamic import), and the Node example (examples/node/main.mjs)
// run from that project against a local collector. (`cargo xtask dist --test`
// also runs the browser bundle in Chromium and the Worker in workerd.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile, readFile, readdir, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { decodeBatch } from '../../pkg/node.js';
import { PKG, ROOT } from './support/paths.mjs';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work;
let project;
let tarball;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'turnout-pack-'));
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: PKG });
  tarball = path.join(work, JSON.parse(stdout)[0].filename);
  project = path.join(work, 'app');
  await mkdir(project);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project });
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the tarball holds the package and nothing else', async () => {
  const installed = path.join(project, 'node_modules/turnout');
  const files = (await readdir(installed, { recursive: true })).filter((f) => !f.endsWith('wasm')).sort();
  assert.deepEqual(files, [
    'README.md',
    'index.cjs',
    'index.d.cts',
    'index.d.ts',
    'index.js',
    'node.js',
    'package.json',
    'poller.js',
    'wasm/turnout_wasm.js',
    'web.js',
    'worker.js',
  ]);
  const wasm = await readFile(path.join(installed, 'wasm/turnout_wasm_bg.wasm'));
  assert.ok(wasm.length > 1000);
  const sections = WebAssembly.Module.customSections;
  const mod = new WebAssembly.Module(wasm);
  for (const name of ['name', '.debug_info', '.debug_line', 'sourceMappingURL']) {
    assert.equal(sections(mod, name).length, 0, `no ${name} section (debug information) in the shipped module`);
  }
  const manifest = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'turnout');
  assert.equal(manifest.main, './index.cjs');
  // Condition order matters: the first matching one wins. `types` first (index.d.cts for
  // require); `workerd` before the rest (Workers import the .wasm as a module); `require`
  // before `node` (CommonJS gets the synchronous CJS bundle); `node`/`deno` read the .wasm
  // from disk; everything else (browsers, bundlers) fetches it.
  assert.deepEqual(JSON.parse(JSON.stringify(Object.entries(manifest.exports['.']))), [
    ['types', { require: './index.d.cts', default: './index.d.ts' }],
    ['workerd', './worker.js'],
    ['require', './index.cjs'],
    ['node', './node.js'],
    ['deno', './node.js'],
    ['default', './web.js'],
  ]);
  assert.deepEqual(Object.keys(manifest.exports['.'].types), ['require', 'default']);
  assert.equal(
    await readFile(path.join(installed, 'index.d.cts'), 'utf8'),
    await readFile(path.join(installed, 'index.d.ts'), 'utf8'),
    'the CommonJS declarations are the ESM ones',
  );
  assert.equal(manifest.devDependencies, undefined);
  assert.equal(manifest.dependencies, undefined, 'no runtime dependencies');
});

test('a fresh project imports it by name (ESM and CommonJS) and decides', async () => {
  await writeFile(
    path.join(project, 'esm.mjs'),
    `import { Client } from 'turnout';
     const c = new Client({ config: { variable: 'v', rollouts: [{ value: 60, constraints: [{ target: 'city', op: '=', value: '6' }] }], default: 30 } });
     console.log(JSON.stringify([c.getVariable('v', { city: 6 }).value, c.context({ city: 7, pax: 9007199254740993n }).getNumber(c.variable('v'), 0)]));`,
  );
  const esm = await run(process.execPath, ['esm.mjs'], { cwd: project });
  assert.deepEqual(JSON.parse(esm.stdout), [60, 30]);
  await writeFile(
    path.join(project, 'cjs.cjs'),
    `const { Client, VERSION, TurnoutError } = require('turnout');
     const c = new Client({ config: '{"variable":"v","rollouts":[],"default":1}' });
     let code;
     try { c.updateConfig('{'); } catch (e) { code = e instanceof TurnoutError && e.code; }
     console.log(require.resolve('turnout').endsWith('index.cjs'), VERSION, c.getVariable('v', {}).value, code);`,
  );
  const cjs = await run(process.execPath, ['cjs.cjs'], { cwd: project });
  assert.match(cjs.stdout, /^true \d+\.\d+\.\d+ 1 INVALID_CONFIG\n$/, 'require() is synchronous and decides');
  await writeFile(
    path.join(project, 'dynamic.cjs'),
    `import('turnout').then(({ Client, VERSION }) => console.log(VERSION, new Client({ config: '{"variable":"v","rollouts":[],"default":1}' }).getVariable('v', {}).value));`,
  );
  const dynamic = await run(process.execPath, ['dynamic.cjs'], { cwd: project });
  assert.match(dynamic.stdout, /^\d+\.\d+\.\d+ 1\n$/);
});

test('the Node example runs from the installed package and delivers its events to a collector', async () => {
  const received = [];
  const collector = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    received.push({ method: req.method, type: req.headers['content-type'], bytes: new Uint8Array(Buffer.concat(chunks)) });
    res.writeHead(202).end();
  });
  await new Promise((r) => collector.listen(0, '127.0.0.1', r));
  try {
    const dir = path.join(project, 'examples/node');
    await mkdir(dir, { recursive: true });
    await mkdir(path.join(project, 'examples/configs'), { recursive: true });
    await copyFile(path.join(ROOT, 'examples/node/main.mjs'), path.join(dir, 'main.mjs'));
    await copyFile(path.join(ROOT, 'examples/configs/example.json'), path.join(project, 'examples/configs/example.json'));
    const url = `http://127.0.0.1:${collector.address().port}/events`;
    const { stdout } = await run(process.execPath, [path.join(dir, 'main.mjs'), '--collector', url, '--pax', '9007199254740993', '--city', '6'], {
      cwd: project,
    });
    assert.match(stdout, /automatedMessageDelay for pax 9007199254740993 in city 6: \d+ s/);
    assert.match(stdout, /uploaded \d+ events/);
    assert.equal(received.length, 1);
    assert.equal(received[0].method, 'POST');
    assert.equal(received[0].type, 'application/octet-stream');
    const batch = decodeBatch(received[0].bytes);
    const track = batch.events.find((e) => e.kind === 'track');
    assert.equal(track.name, 'example.pickupSeconds');
    assert.equal(track.value, 42);
    assert.equal(track.facets.pax, 9007199254740993n);
    assert.ok(batch.events.some((e) => e.kind === 'decision' && e.name === 'automatedMessageDelay'));
    // A failing collector: the example reports it and exits non-zero.
    const down = `http://127.0.0.1:${collector.address().port}/`;
    collector.close();
    collector.closeAllConnections();
    await assert.rejects(run(process.execPath, [path.join(dir, 'main.mjs'), '--collector', down], { cwd: project }), (e) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /upload failed/);
      return true;
    });
  } finally {
    collector.close();
  }
});
