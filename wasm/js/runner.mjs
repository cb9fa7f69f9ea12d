#!/usr/bin/env node
// The demo runner of tests/bench/README.md for Node (the built package in wasm/pkg/):
//
//   node wasm/js/runner.mjs --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS \
//       --out DECISIONS.jsonl --timing TIMING.json
//
// For every context line: a prepared Context, the variable's handle (one per
// name), the full decision as one JSON line with the keys of `turnout eval`.
// Then about one second of passes of the typed getter over all contexts;
// the median ns per decision goes to TIMING.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client } from '../pkg/node.js';

const { values: a } = parseArgs({
  options: {
    config: { type: 'string' },
    contexts: { type: 'string' },
    'now-ms': { type: 'string' },
    out: { type: 'string' },
    timing: { type: 'string' },
  },
});
for (const k of ['config', 'contexts', 'now-ms', 'out', 'timing']) {
  if (a[k] === undefined) {
    console.error(`runner: --${k} is required`);
    process.exit(2);
  }
}

const client = new Client({ config: readFileSync(a.config), fixedTimeMs: Number(a['now-ms']), platform: 'node' });
const handles = new Map();
const handle = (name) => {
  let v = handles.get(name);
  if (v === undefined) handles.set(name, (v = client.variable(name)));
  return v;
};

const lines = readFileSync(a.contexts, 'utf8').split('\n').filter((l) => l.trim() !== '');
const work = [];
const out = [];
for (const line of lines) {
  const { variable, facets } = JSON.parse(line); // ids beyond 2^53 arrive as {"$int64": "..."}
  const ctx = client.context(facets);
  const v = handle(variable);
  const d = ctx.getDecision(v);
  out.push(
    JSON.stringify({
      variable,
      value: d.value,
      source: d.source,
      experiment: d.experiment,
      rule: d.rule,
      choice: d.choice,
      reason: d.reason,
      errorCode: d.errorCode,
    }),
  );
  // The typed getter for this value: numbers, strings, booleans, else JSON.
  const get =
    typeof d.value === 'number' ? () => ctx.getNumber(v, 0)
      : typeof d.value === 'string' ? () => ctx.getString(v, '')
        : typeof d.value === 'boolean' ? () => ctx.getBoolean(v, false)
          : () => ctx.getJSON(v, null);
  work.push(get);
}
writeFileSync(a.out, out.map((l) => l + '\n').join(''));

const drain = () => {
  for (let b = client.takeBatch(100000); b !== null; b = client.takeBatch(100000)) client.ack(b.seq);
};
const passes = [];
const until = performance.now() + 1000;
while (work.length > 0 && (performance.now() < until || passes.length < 5)) {
  const t = performance.now();
  for (let i = 0; i < work.length; i++) work[i]();
  passes.push(((performance.now() - t) * 1e6) / work.length);
  drain();
}
passes.sort((x, y) => x - y);
const median = passes.length ? passes[passes.length >> 1] : 0;
writeFileSync(a.timing, JSON.stringify({ platform: 'node', decisions: work.length, nsPerDecisionMedian: median }) + '\n');
