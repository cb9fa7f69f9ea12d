#!/usr/bin/env node
// The Node benchmark on the shared scenario (tests/bench/scenario.json): the
// seed rollout over 1,000 pre-generated contexts, 1,000,000 decisions (1,000
// passes), median ns per decision over the passes. turnout's prepared path
// (context and handle built once, ctx.getNumber) and one-shot path
// (client.getVariable(name, facetsObject)), and the same rollout written for
// @openfeature/flagd-core and @growthbook/growthbook, with the ratios.
//
//   cargo xtask wasm bench            (builds wasm/pkg/, installs the peers, runs this)
//   node wasm/bench/bench.mjs [--passes N] [--json FILE]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FlagdCore } from '@openfeature/flagd-core';
import { GrowthBookClient } from '@growthbook/growthbook';
import { Client, engineInfo } from '../pkg/node.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({ options: { passes: { type: 'string' }, json: { type: 'string' } } });
const scenario = JSON.parse(readFileSync(path.join(ROOT, 'tests/bench/scenario.json'), 'utf8'));
const config = readFileSync(path.join(ROOT, scenario.config));
const NAME = scenario.variable;
const contexts = scenario.contexts;
const passes = Number(args.passes ?? scenario.decisions / contexts.length);

// ---- the contenders ------------------------------------------------------------

const turnout = new Client({ config });
const untracked = new Client({ config, decisionEvents: 'off' });
const drain = () => {
  for (const c of [turnout, untracked]) for (let b = c.takeBatch(100000); b !== null; b = c.takeBatch(100000)) c.ack(b.seq);
};

// flagd: the same rules in JsonLogic (fractional: 25% of passengers in city 10).
const flagd = new FlagdCore();
flagd.setConfigurations(
  JSON.stringify({
    flags: {
      [NAME]: {
        state: 'ENABLED',
        variants: { d60: 60, d90: 90, d30: 30 },
        defaultVariant: 'd30',
        targeting: {
          if: [
            { and: [{ '==': [{ var: 'city' }, 6] }, { in: [{ var: 'svc' }, [302, 11]] }] },
            'd60',
            { '==': [{ var: 'city' }, 10] },
            { fractional: [{ cat: [{ var: 'pax' }] }, ['d90', 25], ['d30', 75]] },
            'd30',
          ],
        },
      },
    },
  }),
);

// GrowthBook: a forced rule and a 25% coverage rule hashed on pax.
const growthbook = new GrowthBookClient().initSync({
  payload: {
    features: {
      [NAME]: {
        defaultValue: 30,
        rules: [
          { condition: { city: 6, svc: { $in: [302, 11] } }, force: 60 },
          { condition: { city: 10 }, force: 90, coverage: 0.25, hashAttribute: 'pax' },
        ],
      },
    },
  },
});

const variable = turnout.variable(NAME);
const prepared = contexts.map((f) => turnout.context(f));
const variableUntracked = untracked.variable(NAME);
const preparedUntracked = contexts.map((f) => untracked.context(f));
const gbScoped = contexts.map((attributes) => growthbook.createScopedInstance({ attributes }));
const gbUser = contexts.map((attributes) => ({ attributes }));

const cases = [
  ['turnout prepared (ctx.getNumber)', () => { let s = 0; for (let i = 0; i < prepared.length; i++) s += prepared[i].getNumber(variable, 0); return s; }],
  ['turnout one-shot (getVariable)', () => { let s = 0; for (let i = 0; i < contexts.length; i++) s += turnout.getVariable(NAME, contexts[i]).value; return s; }],
  ['turnout prepared, tracking off', () => { let s = 0; for (let i = 0; i < preparedUntracked.length; i++) s += preparedUntracked[i].getNumber(variableUntracked, 0); return s; }],
  ['turnout one-shot, tracking off', () => { let s = 0; for (let i = 0; i < contexts.length; i++) s += untracked.getVariable(NAME, contexts[i]).value; return s; }],
  ['flagd-core one-shot', () => { let s = 0; for (let i = 0; i < contexts.length; i++) s += flagd.resolveNumberEvaluation(NAME, 0, contexts[i]).value; return s; }],
  ['growthbook one-shot (evalFeature)', () => { let s = 0; for (let i = 0; i < contexts.length; i++) s += growthbook.evalFeature(NAME, gbUser[i]).value; return s; }],
  ['growthbook scoped instance', () => { let s = 0; for (let i = 0; i < gbScoped.length; i++) s += gbScoped[i].evalFeature(NAME).value; return s; }],
];

// ---- checks: every contender decides the scenario --------------------------------

function counts(fn) {
  const c = {};
  for (let i = 0; i < contexts.length; i++) {
    const v = fn(i);
    c[v] = (c[v] ?? 0) + 1;
  }
  return c;
}
const expected = scenario.expectedCounts;
const turnoutCounts = counts((i) => turnout.getVariable(NAME, contexts[i]).value);
for (const [k, n] of Object.entries(expected)) {
  if (turnoutCounts[k] !== n) throw new Error(`turnout counts ${JSON.stringify(turnoutCounts)} != ${JSON.stringify(expected)}`);
}
for (const [name, fn] of [
  ['flagd-core', (i) => flagd.resolveNumberEvaluation(NAME, 0, contexts[i]).value],
  ['growthbook', (i) => growthbook.evalFeature(NAME, gbUser[i]).value],
]) {
  // Same rules, different hash functions: rule 0 is exact, the 25% split is statistical.
  const c = counts(fn);
  const ok = c[60] === expected[60] && Math.abs((c[90] ?? 0) - expected[90]) < 40 && c[60] + c[90] + c[30] === contexts.length;
  if (!ok) throw new Error(`${name} does not implement the scenario: ${JSON.stringify(c)}`);
}

// ---- timing ---------------------------------------------------------------------

function measure(fn, isTurnout) {
  for (let w = 0; w < Math.max(20, passes / 10); w++) fn(); // warm up the JIT
  drain();
  const ns = [];
  for (let p = 0; p < passes; p++) {
    const t0 = process.hrtime.bigint();
    const sum = fn();
    const dt = Number(process.hrtime.bigint() - t0);
    if (isTurnout && sum !== scenario.expectedSum) throw new Error(`sum ${sum} != ${scenario.expectedSum}`);
    ns.push(dt / contexts.length);
    drain(); // outside the timing, as tests/bench/README.md says
  }
  ns.sort((a, b) => a - b);
  return { median: ns[ns.length >> 1], p10: ns[Math.floor(ns.length * 0.1)], p90: ns[Math.floor(ns.length * 0.9)] };
}

const results = {};
for (const [name, fn] of cases) results[name] = measure(fn, name.startsWith('turnout'));

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`turnout ${engineInfo().version} (WebAssembly), node ${process.version}, ${cpu}, ${os.cpus().length} cores, ${new Date().toISOString()}`);
console.log(`scenario: ${scenario.variable}, ${contexts.length} contexts x ${passes} passes = ${contexts.length * passes} decisions per contender\n`);
const base = { prepared: results['turnout prepared (ctx.getNumber)'].median, oneShot: results['turnout one-shot (getVariable)'].median };
console.log(`${'contender'.padEnd(36)} ${'median'.padStart(10)} ${'p10'.padStart(9)} ${'p90'.padStart(9)}   vs turnout one-shot / prepared`);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(36)} ${r.median.toFixed(1).padStart(7)} ns ${r.p10.toFixed(1).padStart(9)} ${r.p90.toFixed(1).padStart(9)}   ${(r.median / base.oneShot).toFixed(2)}x / ${(r.median / base.prepared).toFixed(2)}x`,
  );
}
console.log(`\ntargets: prepared <= 150 ns: ${base.prepared <= 150 ? 'met' : 'NOT met'} (${base.prepared.toFixed(1)} ns); one-shot <= 600 ns: ${base.oneShot <= 600 ? 'met' : 'NOT met'} (${base.oneShot.toFixed(1)} ns)`);
if (args.json) {
  mkdirSync(path.dirname(args.json), { recursive: true });
  writeFileSync(args.json, JSON.stringify({ node: process.version, cpu, date: new Date().toISOString(), passes, results }, null, 2) + '\n');
}
