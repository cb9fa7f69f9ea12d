// The limits on hostile input (docs/spec.md, section 16) through the WebAssembly
// module: each is a TurnoutError with code LIMIT_EXCEEDED and a message naming
// the limit (never a trap such as `RuntimeError: unreachable`), the previous
// config stays in force, and the module stays usable afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, decodeBatch, encodeBatch } from '../../pkg/node.js';
import { ROOT } from './support/paths.mjs';
import { throwsTurnout } from './support/errors.mjs';

const SEED = readFileSync(path.join(ROOT, 'examples/configs/seed-rollout.json'), 'utf8');
const EXAMPLE = readFileSync(path.join(ROOT, 'examples/configs/example.json'), 'utf8');
const DELAY = 'automatedMessageDelay';

/** Runs `fn`, which must throw a TurnoutError LIMIT_EXCEEDED naming `limit`; returns it. */
function throwsLimit(fn, limit) {
  return throwsTurnout(fn, 'LIMIT_EXCEEDED', new RegExp(`limit \`${limit}\` exceeded: found \\d+, the maximum is \\d+`));
}

/** seed-rollout.json is still the config in force. */
function stillSeed(c) {
  assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).value, 60);
}

/** One segment of 1,000 constraints referenced 10,000 times: 10,000,000 constraints from ~80 KB. */
function blowUpBundle() {
  const constraints = Array.from({ length: 1000 }, (_, i) => ({ target: 'city', op: '=', value: i }));
  return JSON.stringify({
    schema: 1,
    version: 2,
    segments: { s: { constraints } },
    rollouts: [{ variable: 'blowUp', rollouts: [{ value: 1, segments: Array(10000).fill('s') }], default: 0 }],
  });
}

/** An object of `n` integer facets f0..f(n-1), plus `extra`. */
function bigFacets(n, extra = {}) {
  const f = { ...extra };
  for (let i = 0; i < n; i++) f[`f${i}`] = i;
  return f;
}

test('a config over maxConfigBytes: LIMIT_EXCEEDED, the previous config stays', () => {
  throwsLimit(() => new Client({ config: EXAMPLE, maxConfigBytes: 1000 }), 'config_bytes');
  const c = new Client({ config: SEED, maxConfigBytes: 1000 });
  const bytes = new TextEncoder().encode(EXAMPLE).length;
  const e = throwsLimit(() => c.updateConfig(EXAMPLE), 'config_bytes');
  assert.match(e.message, new RegExp(`found ${bytes}, the maximum is 1000`));
  assert.equal(e.problems.length, 1);
  assert.equal(e.problems[0].document, 'bundle');
  throwsLimit(() => c.validate(EXAMPLE), 'config_bytes');
  stillSeed(c);
  c.free();
});

test('a segment referenced 10,000 times: LIMIT_EXCEEDED (no trap), and the module keeps working', () => {
  const c = new Client({ config: SEED });
  const bundle = blowUpBundle();
  throwsLimit(() => c.updateConfig(bundle), 'expanded_constraints');
  throwsLimit(() => c.validate(bundle), 'expanded_constraints');
  throwsLimit(() => new Client({ config: bundle }), 'expanded_constraints');
  stillSeed(c);
  assert.equal(c.getVariable('blowUp').source, 'fallback');
  // A fresh client and a decision after it: the module is intact.
  const d = new Client({ config: SEED });
  assert.equal(d.getVariable(DELAY, { city: 10, pax: 1 }).reason, 'TARGETING_MATCH');
  d.free();
  c.free();
});

test('a config of 100 nested arrays: LIMIT_EXCEEDED (json_depth)', () => {
  const c = new Client({ config: SEED });
  throwsLimit(() => c.updateConfig('['.repeat(100) + ']'.repeat(100)), 'json_depth');
  stillSeed(c);
  c.free();
});

test('facets over a limit: the default with reason ERROR and INVALID_CONTEXT', () => {
  const c = new Client({ config: SEED });
  const v = c.variable(DELAY);
  const cases = {
    '2,000 facets': bigFacets(2000, { city: 6, svc: 302 }),
    'a 10,000-byte value': { city: 6, svc: 302, note: 'x'.repeat(10000) },
    '2,000 facets (Map)': new Map(Object.entries(bigFacets(2000, { city: 6, svc: 302 }))),
  };
  for (const [what, facets] of Object.entries(cases)) {
    const d = c.getVariable(DELAY, facets);
    assert.equal(d.reason, 'ERROR', what);
    assert.equal(d.errorCode, 'INVALID_CONTEXT', what);
    assert.equal(d.value, null, what);
    assert.equal(d.number(-7), -7, what);
    const ctx = c.context(facets);
    assert.equal(ctx.getNumber(v, -7), -7, what);
    assert.equal(ctx.getString(v, 'd'), 'd', what);
    assert.equal(ctx.getDecision(v).errorCode, 'INVALID_CONTEXT', what);
    ctx.free();
    assert.equal(c.explain(DELAY, facets).decision.errorCode, 'INVALID_CONTEXT', what);
    // The same facets within the limits decide normally.
    assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).value, 60);
  }
  // At the limits: accepted.
  const atLimit = bigFacets(1024 - 3, { city: 6, svc: 302, note: 'x'.repeat(8 << 10) });
  assert.equal(c.getVariable(DELAY, atLimit).value, 60);
  v.free();
  c.free();
});

// ~10 KB on the wire, ~3 MB once every event's copy of the set is counted (the budget: ~1.4 MB).
test('a batch whose 1,000-facet set is shared by 200 events: small, and LIMIT_EXCEEDED on decode', () => {
  const facets = bigFacets(1000);
  const events = Array.from({ length: 200 }, (_, i) => ({
    kind: 'track',
    name: 'm',
    service: 's',
    time: 1700000000000 + i,
    count: 1,
    value: 1,
    facets,
  }));
  const header = {
    clientId: 'limits',
    seq: 1,
    createdAtMs: 1700000000000,
    sdk: 'js-test',
    sdkVersion: '1',
    platform: 'node',
    dropped: 0,
    foldOverflow: 0,
  };
  const bytes = encodeBatch({ header, events });
  assert.ok(bytes.length < 100 << 10, `${bytes.length} bytes`);
  throwsLimit(() => decodeBatch(bytes), 'decode_expansion');
  // The module keeps working.
  const c = new Client({ config: SEED });
  stillSeed(c);
  c.free();
});

test('fresh facet names on every call: the name tables stay bounded and decisions stay right', () => {
  const c = new Client({ config: SEED });
  const v = c.variable(DELAY);
  // 40 calls of 1,000 names never seen before: 40,000 names, past the 4,096-name table bound.
  for (let call = 0; call < 40; call++) {
    const facets = { city: 6, svc: 302 };
    for (let i = 0; i < 1000; i++) facets[`n${call}_${i}`] = i;
    assert.equal(c.getVariable(DELAY, facets).value, 60);
    const ctx = c.context(facets);
    assert.equal(ctx.getNumber(v, 0), 60);
    assert.equal(ctx.facets[`n${call}_999`], 999);
    ctx.free();
    // Names registered before a reset still decide right after it.
    assert.equal(c.getVariable(DELAY, { city: 10, pax: 1 }).reason, 'TARGETING_MATCH');
    assert.equal(c.getVariable(DELAY, { city: 3 }).value, 30);
  }
  v.free();
  c.free();
});
