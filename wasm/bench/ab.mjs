#!/usr/bin/env node
// A/B comparison of builds of the package on the shared scenario: turnout's
// prepared path (ctx.getNumber) and one-shot path (client.getVariable), as in
// bench.mjs, for two or more package directories (copies of wasm/pkg built
// with different profiles or code). The builds run in one process and take
// turns (rounds x passes each), so that a loaded machine slows them alike;
// the figure is the median ns per decision over all passes, queue drained
// between passes outside the timing.
//
//   cargo xtask wasm build && cp -r wasm/pkg /tmp/pkg-a
//   (change the profile or the code) && cargo xtask wasm build
//   node wasm/bench/ab.mjs /tmp/pkg-a wasm/pkg [--rounds 12] [--passes 10]
//
// Run it twice with the directories in another order: the first module
// loaded is sometimes a few percent faster or slower.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args, positionals: dirs } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string' }, passes: { type: 'string' } },
});
if (dirs.length < 2) throw new Error('usage: node wasm/bench/ab.mjs PKG_DIR PKG_DIR... [--rounds N] [--passes N]');
const rounds = Number(args.rounds ?? 12);
const passes = Number(args.passes ?? 10);
const scenario = JSON.parse(readFileSync(path.join(ROOT, 'tests/bench/scenario.json'), 'utf8'));
const config = readFileSync(path.join(ROOT, scenario.config));
const NAME = scenario.variable;
const contexts = scenario.contexts;

const builds = [];
for (const dir of dirs) {
  const { Client } = await import(pathToFileURL(path.resolve(dir, 'node.js')).href);
  const client = new Client({ config });
  const variable = client.variable(NAME);
  const prepared = contexts.map((f) => client.context(f));
  const drain = () => {
    for (let b = client.takeBatch(100000); b !== null; b = client.takeBatch(100000)) client.ack(b.seq);
  };
  const cases = {
    prepared: () => {
      let s = 0;
      for (let i = 0; i < prepared.length; i++) s += prepared[i].getNumber(variable, 0);
      return s;
    },
    oneShot: () => {
      let s = 0;
      for (let i = 0; i < contexts.length; i++) s += client.getVariable(NAME, contexts[i]).value;
      return s;
    },
  };
  const wasm = path.resolve(dir, 'wasm/turnout_wasm_bg.wasm');
  builds.push({ dir, bytes: readFileSync(wasm).length, cases, drain, ns: { prepared: [], oneShot: [] } });
}

for (const b of builds) {
  for (const fn of Object.values(b.cases)) for (let w = 0; w < 50; w++) fn(); // warm up the JIT
  b.drain();
}
for (let r = 0; r < rounds; r++) {
  for (const b of builds) {
    for (const [name, fn] of Object.entries(b.cases)) {
      for (let p = 0; p < passes; p++) {
        const t0 = process.hrtime.bigint();
        const sum = fn();
        const dt = Number(process.hrtime.bigint() - t0);
        if (sum !== scenario.expectedSum) throw new Error(`${b.dir}: sum ${sum} != ${scenario.expectedSum}`);
        b.ns[name].push(dt / contexts.length);
        b.drain();
      }
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${rounds} rounds x ${passes} passes x ${contexts.length} decisions per build and path, node ${process.version}`);
for (const b of builds) {
  console.log(
    `${b.dir.padEnd(32)} ${String(b.bytes).padStart(8)} B   prepared ${median(b.ns.prepared).toFixed(1).padStart(6)} ns   one-shot ${median(b.ns.oneShot).toFixed(1).padStart(6)} ns`,
  );
}
