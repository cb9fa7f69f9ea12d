// The JavaScript API of the package (Node): configs, updates, errors, facets
// (BigInt above 2^53), typed getters, decisions, explanations, tracking and
// batches, handles and their lifetime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Context, Decision, Variable, VERSION, decodeBatch, encodeBatch, engineInfo } from '../../pkg/node.js';
import { ROOT, PKG } from './support/paths.mjs';
import { throwsTurnout } from './support/errors.mjs';

const SEED = readFileSync(path.join(ROOT, 'examples/configs/seed-rollout.json'), 'utf8');
const EXAMPLE = readFileSync(path.join(ROOT, 'examples/configs/example.json'), 'utf8');
const DELAY = 'automatedMessageDelay';

test('the bootstrap config can be a string, an object, a Uint8Array or an ArrayBuffer', () => {
  const bytes = new TextEncoder().encode(SEED);
  const forms = [SEED, JSON.parse(SEED), bytes, bytes.buffer.slice(0)];
  const answers = forms.map((config) => {
    const c = new Client({ config });
    assert.deepEqual(c.initialReport.added, [DELAY]);
    const r = [c.getVariable(DELAY, { city: 6, svc: 302 }).value, c.getVariable(DELAY, { city: 3 }).value];
    c.free();
    return r;
  });
  for (const a of answers) assert.deepEqual(a, answers[0]);
  assert.deepEqual(answers[0], [60, 30]);
  assert.equal(new Client().initialReport, null);
});

test('a decision carries value, source, reason, rule, label and the typed helpers', () => {
  const c = new Client({ config: SEED });
  const d = c.getVariable(DELAY, { city: 6, svc: 302 });
  assert.ok(d instanceof Decision);
  assert.deepEqual({ ...d }, {
    variable: DELAY,
    value: 60,
    source: 'rollout',
    reason: 'TARGETING_MATCH',
    experiment: null,
    rule: 0,
    choice: null,
    errorCode: null,
    label: '60s delay',
  });
  assert.equal(d.number(1), 60);
  assert.equal(d.string('x'), 'x');
  assert.equal(d.boolean(true), true);
  const missing = c.getVariable('noSuchVariable', { city: 6 });
  assert.equal(missing.value, null);
  assert.equal(missing.source, 'fallback');
  assert.equal(missing.reason, 'ERROR');
  assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
  assert.equal(missing.number(42), 42);
  c.free();
});

test('updateConfig reports what changed; a kill switch flip is a change', () => {
  const c = new Client({ config: SEED });
  const seen = [];
  const off = c.on('update', (r) => seen.push(r));
  const doc = JSON.parse(SEED);
  const r1 = c.updateConfig({ ...doc, enabled: false });
  assert.deepEqual([r1.added, r1.removed, r1.changed], [[], [], [DELAY]]);
  const killed = c.getVariable(DELAY, { city: 6, svc: 302 });
  assert.deepEqual([killed.value, killed.source, killed.reason], [null, 'fallback', 'DISABLED']);
  const r2 = c.updateConfig(SEED);
  assert.deepEqual(r2.changed, [DELAY]);
  assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).value, 60);
  assert.deepEqual(seen, [r1, r2]);
  c.updateConfig(SEED);
  assert.equal(seen.length, 2, 'an update that changes nothing is not an event');
  off();
  c.updateConfig({ ...doc, enabled: false });
  assert.equal(seen.length, 2, 'the listener was removed');
  // Labels belong to the config in force.
  const relabelled = { ...doc, rollouts: doc.rollouts.map((r) => ({ ...r, string: `new ${r.string}` })) };
  c.updateConfig(relabelled);
  assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).label, 'new 60s delay');
  const bundle = c.updateConfig(EXAMPLE);
  assert.equal(bundle.version, JSON.parse(EXAMPLE).version);
  assert.equal(c.configVersion, bundle.version);
  assert.ok(bundle.added.includes('checkoutButtonColor'));
  assert.deepEqual(c.variableNames(), [...c.variableNames()].sort());
  c.free();
});

test('a config that is not JSON is rejected with serde_json\'s message and position, as natively', () => {
  // The WebAssembly build reads every config with serde_json's byte reader
  // (native builds use its &str reader for UTF-8 text: core/src/config.rs,
  // fill_str). These are the messages `turnout validate` prints for the same
  // bytes; each case reaches a different check of the reader.
  const c = new Client({ config: SEED });
  const cases = [
    ['{not json', 'key must be a string at line 1 column 2'],
    ['[1,]', 'trailing comma at line 1 column 4'],
    ['{"a": "\\ud800"}', 'unexpected end of hex escape at line 1 column 14'],
    ['{"a": "\\u00e9\\q"}', 'invalid escape at line 1 column 15'],
    ['{"a": 1e999}', 'number out of range at line 1 column 11'],
    ['{"a": "x\u0001"}', 'control character (\\u0000-\\u001F) found while parsing a string at line 1 column 9'],
    ['{"a":1} x', 'trailing characters at line 1 column 9'],
    ['{"a": "\u00e9', 'EOF while parsing a string at line 1 column 9'],
    [new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), 'invalid unicode code point at line 1 column 7'],
  ];
  for (const [config, message] of cases) {
    const e = throwsTurnout(() => c.validate(config), 'INVALID_CONFIG');
    assert.deepEqual(e.problems, [{ document: 'bundle', field: '', message: `not valid JSON: ${message}` }], String(config));
  }
  assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).value, 60);
  c.free();
});

test('a bad config throws INVALID_CONFIG with every problem and leaves the old one in force', () => {
  const c = new Client({ config: SEED });
  const before = c.getVariable(DELAY, { city: 6, svc: 302 });
  const bad = {
    variable: DELAY,
    rollouts: [{ value: 1, constraints: [{ target: 'city', op: '~', value: '6' }, { target: '', op: '=', value: '1' }] }],
  };
  const e = throwsTurnout(() => c.updateConfig(bad), 'INVALID_CONFIG', /rejected/);
  assert.ok(e.problems.length >= 2, JSON.stringify(e.problems));
  for (const p of e.problems) {
    assert.equal(typeof p.document, 'string');
    assert.match(p.field, /rollouts\[0\]\.constraints\[\d\]/);
    assert.ok(p.message.length > 0);
  }
  throwsTurnout(() => c.updateConfig('{not json'), 'INVALID_CONFIG', /not valid JSON/);
  throwsTurnout(() => c.updateConfig(42), 'INVALID_CONFIG', /string, an object or a Uint8Array/);
  assert.deepEqual(c.getVariable(DELAY, { city: 6, svc: 302 }), before);
  throwsTurnout(() => new Client({ config: bad }), 'INVALID_CONFIG');
  // validate() is strict and installs nothing.
  throwsTurnout(() => c.validate(bad), 'INVALID_CONFIG');
  const report = c.validate({ ...JSON.parse(SEED), enabled: false });
  assert.deepEqual(report.changed, [DELAY]);
  assert.equal(c.getVariable(DELAY, { city: 6, svc: 302 }).value, 60);
  c.free();
});

test('invalid options are rejected by name', () => {
  throwsTurnout(() => new Client({ servce: 'booking' }), 'INVALID_OPTIONS', /servce/);
  throwsTurnout(() => new Client({ maxQueue: 0 }), 'INVALID_OPTIONS', /maxQueue/);
  throwsTurnout(() => new Client({ decisionEvents: 'some' }), 'INVALID_OPTIONS', /some/);
  throwsTurnout(() => new Client('nope'), 'INVALID_OPTIONS');
});

test('ids above 2^53 bucket exactly like Rust: BigInt, decimal string and {$int64} agree', () => {
  // A 50% rollout on pax. Expected values computed by the Rust engine:
  // `turnout eval --config big.json --variable bigIdFlag --facet pax=ID`.
  const config = {
    variable: 'bigIdFlag',
    rollouts: [{ value: 'on', constraints: [{ target: 'pax', op: '/', value: '0.5' }] }],
    default: 'off',
  };
  const rust = {
    9007199254740993n: 'off',
    9007199254740994n: 'on',
    9007199254740995n: 'on',
    9007199254740996n: 'off',
    9007199254740997n: 'off',
  };
  const c = new Client({ config });
  const v = c.variable('bigIdFlag');
  for (const [text, want] of Object.entries(rust)) {
    const id = BigInt(text);
    assert.equal(c.getVariable('bigIdFlag', { pax: id }).value, want, `${id}n`);
    assert.equal(c.getVariable('bigIdFlag', { pax: text }).value, want, `"${text}"`);
    assert.equal(c.getVariable('bigIdFlag', { pax: { $int64: text } }).value, want, `{$int64: ${text}}`);
    const ctx = c.context({ pax: id });
    assert.equal(ctx.getString(v, '?'), want);
    assert.equal(ctx.facets.pax, id, 'the context keeps the exact id');
    ctx.free();
  }
  // The same id as a (rounded) JavaScript number is another unit: 9007199254740995
  // is not a double, Number() makes it ...996, which buckets differently.
  assert.equal(Number(9007199254740995n), 9007199254740996);
  assert.notEqual(c.getVariable('bigIdFlag', { pax: Number(9007199254740995n) }).value, rust[9007199254740995n]);
  // Beyond i64: like a Rust JSON integer, u64 values are their decimal string.
  assert.deepEqual(
    c.getVariable('bigIdFlag', { pax: 18446744073709551615n }),
    c.getVariable('bigIdFlag', { pax: '18446744073709551615' }),
  );
  // i64 bounds are integers.
  for (const id of [9223372036854775807n, -9223372036854775808n]) {
    assert.equal(c.getVariable('bigIdFlag', { pax: id }).value, 'off');
  }
  throwsTurnout(() => c.getVariable('bigIdFlag', { pax: { $int64: '1.5' } }), 'INVALID_FACETS', /pax/);
  c.free();
});

test('getBigInt returns 64-bit values exactly; getNumber is the double', () => {
  const c = new Client({ config: { variable: 'big', rollouts: [], default: 9007199254740993n } });
  const ctx = c.context({});
  const v = c.variable('big');
  assert.equal(ctx.getBigInt(v, 0n), 9007199254740993n);
  assert.equal(ctx.getNumber(v, 0), 9007199254740992);
  assert.equal(ctx.getBigInt(c.variable('missing'), -1n), -1n);
  c.free();
});

test('facet values: numbers, strings, booleans, BigInt, null/undefined absent, Map; others rejected', () => {
  const c = new Client({ config: EXAMPLE });
  const d1 = c.getVariable('checkoutButtonColor', { pax: 1000, country: 'SG', city: null, extra: undefined });
  const d2 = c.getVariable('checkoutButtonColor', new Map([['pax', 1000n], ['country', 'SG']]));
  assert.deepEqual(d1, d2);
  assert.deepEqual(c.getVariable(DELAY, { city: 6.0, svc: 302 }), c.getVariable(DELAY, { city: '6', svc: 302 }));
  for (const [bad, found] of [[[1], /array/], [{ a: 1 }, /object/], [NaN, /NaN/], [Infinity, /Infinity/], [() => 1, /function/], [Symbol('x'), /symbol/]]) {
    throwsTurnout(() => c.getVariable(DELAY, { city: bad }), 'INVALID_FACETS', found);
    throwsTurnout(() => c.context({ pax: bad }), 'INVALID_FACETS', /pax/);
  }
  throwsTurnout(() => c.getVariable(DELAY, [1, 2]), 'INVALID_FACETS');
  throwsTurnout(() => c.getVariable(DELAY, 'city=6'), 'INVALID_FACETS');
  throwsTurnout(() => c.getVariable(42, {}), 'INVALID_ARGUMENT');
  // A failed conversion leaves nothing behind for the next call.
  assert.equal(c.getVariable(DELAY, {}).source, 'default');
  c.free();
});

test('prepared contexts and variable handles: typed getters, JSON, decisions, type mismatch', () => {
  const c = new Client({ config: EXAMPLE });
  const ctx = c.context({ pax: 1000, country: 'SG', city: 6, svc: 302 });
  assert.ok(ctx instanceof Context);
  const delay = c.variable(DELAY);
  assert.ok(delay instanceof Variable);
  assert.equal(delay.name, DELAY);
  assert.equal(ctx.getNumber(delay, 0), c.getVariable(DELAY, ctx.facets).value);
  assert.equal(ctx.getString(delay, 'default'), 'default', 'a number is not a string');
  assert.equal(ctx.getBoolean(delay, true), true);
  const color = c.variable('checkoutButtonColor');
  const d = ctx.getDecision(color);
  assert.deepEqual(d, c.getVariable('checkoutButtonColor', ctx.facets));
  assert.equal(ctx.getString(color, '?'), d.value);
  assert.equal(ctx.getNumber(color, -1), -1);
  assert.deepEqual(ctx.getJSON(color), d.value);
  assert.equal(ctx.getJSON(c.variable('missing'), 'fallback'), 'fallback');
  // A handle works with any context and survives config updates.
  c.updateConfig({ ...JSON.parse(SEED), rollouts: [{ value: 5, constraints: [] }] });
  assert.equal(ctx.getNumber(delay, 0), 5);
  ctx.free();
  delay.free();
  color.free();
  c.free();
});

test('getVariables returns every variable an experiment or domain assigns', () => {
  const c = new Client({ config: EXAMPLE });
  const cfg = JSON.parse(EXAMPLE);
  const exp = cfg.experiments.find((e) => e.name === 'checkout.buttonColorTest');
  // Find a passenger inside the experiment's slot, using the one-shot path as the reference.
  let found = null;
  for (let pax = 1; pax < 200 && found === null; pax++) {
    const one = c.getVariable('checkoutButtonColor', { pax, country: 'SG' });
    if (one.source === 'experiment') found = { pax, one };
  }
  assert.ok(found, 'some passenger is in the experiment');
  const byName = c.getVariables(exp.name, { pax: found.pax, country: 'SG' });
  const byDomain = c.getVariables(exp.domain, { pax: found.pax, country: 'SG' });
  assert.deepEqual(Object.keys(byName).sort(), exp.variables.map((v) => v.name).sort());
  assert.deepEqual(byName.checkoutButtonColor.value, found.one.value);
  assert.equal(byName.checkoutButtonColor.experiment, exp.name);
  for (const [k, d] of Object.entries(byName)) {
    assert.ok(d instanceof Decision);
    assert.deepEqual(byDomain[k], d);
  }
  assert.deepEqual(c.getVariables('no.such.experiment', { pax: 1 }), {});
  c.free();
});

test('explain gives the decision and the steps, and records nothing', () => {
  const c = new Client({ config: SEED });
  const before = c.trackingStats().recorded;
  const e = c.explain(DELAY, { city: 6, svc: 302 });
  assert.ok(e.decision instanceof Decision);
  assert.equal(e.decision.value, 60);
  assert.ok(e.steps.length >= 1 && e.steps.every((s) => typeof s === 'string'));
  assert.match(e.steps.join('\n'), /rule 0/);
  assert.equal(c.trackingStats().recorded, before);
  c.free();
});

test('tracking: decisions and metrics, batches with ack/nack, exact decode', () => {
  const c = new Client({ config: SEED, service: 'booking', clientId: 'c-1', excludeFacets: ['device'] });
  assert.equal(c.clientId, 'c-1');
  const ctx = c.context({ city: 6, svc: 302, pax: 9007199254740993n, device: 'secret' });
  const v = c.variable(DELAY);
  for (let i = 0; i < 5; i++) ctx.getNumber(v, 0);
  c.track('fare', 12.5, { pax: 7, booking: 'ADR-1' });
  ctx.track('pickupSeconds', 42);
  throwsTurnout(() => c.track('fare', NaN, {}), 'INVALID_ARGUMENT');
  throwsTurnout(() => c.track('fare', '3', {}), 'INVALID_ARGUMENT');
  const stats = c.trackingStats();
  assert.equal(stats.recorded, 7);
  assert.equal(stats.folded, 4);
  assert.equal(stats.queued, 3);

  const b = c.takeBatch();
  assert.equal(b.events, 3);
  assert.ok(b.bytes instanceof Uint8Array);
  assert.equal(c.takeBatch(), null, 'everything went into one batch');
  assert.equal(c.nack(b.seq), true);
  const again = c.takeBatch();
  assert.equal(again.seq, b.seq, 'a nacked batch comes back first');
  assert.deepEqual(again.bytes, b.bytes, 'with the same bytes');
  assert.equal(c.ack(again.seq), true);
  assert.equal(c.ack(again.seq), false, 'already acked');
  assert.equal(c.trackingStats().inFlight, 0);

  const batch = decodeBatch(b.bytes);
  assert.equal(batch.header.clientId, 'c-1');
  assert.equal(batch.header.sdk, 'turnout-js');
  assert.equal(batch.header.sdkVersion, VERSION);
  assert.equal(batch.header.platform, 'wasm-node');
  const [decision, fare, pickup] = batch.events;
  assert.deepEqual(
    [decision.kind, decision.name, decision.count, decision.value, decision.valueText, decision.rule],
    ['decision', DELAY, 5, 60, '60', 0],
  );
  assert.deepEqual(decision.facets, { city: 6, svc: 302, pax: 9007199254740993n }, 'device is excluded, pax exact');
  assert.deepEqual([fare.kind, fare.name, fare.value, fare.facets], ['track', 'booking.fare', 12.5, { pax: 7, booking: 'ADR-1' }]);
  assert.deepEqual([pickup.name, pickup.value], ['booking.pickupSeconds', 42]);
  // Re-encoding the decoded batch gives the same bytes.
  assert.deepEqual(encodeBatch(batch), b.bytes);
  // Corrupted bytes are rejected, never mis-decoded.
  const bad = b.bytes.slice();
  bad[bad.length - 1] ^= 1;
  throwsTurnout(() => decodeBatch(bad), 'BATCH_CHECKSUM');
  throwsTurnout(() => decodeBatch(new Uint8Array([1, 2, 3])), 'NOT_A_BATCH');
  throwsTurnout(() => decodeBatch('TRNB'), 'INVALID_ARGUMENT');
  throwsTurnout(() => encodeBatch({ header: {} }), 'INVALID_BATCH');
  c.free();
});

test('decisionEvents "off" records metrics only', () => {
  const c = new Client({ config: SEED, decisionEvents: 'off' });
  c.getVariable(DELAY, { city: 6, svc: 302 });
  c.track('x', 1, {});
  assert.equal(c.trackingStats().recorded, 1);
  c.free();
});

test('a fixed clock: fixedTimeMs and setNow', () => {
  const c = new Client({ config: SEED, fixedTimeMs: 1700000000000 });
  c.track('x', 1, {});
  c.setNow(1700000005000);
  c.track('y', 1, {});
  const { events, header } = decodeBatch(c.takeBatch().bytes);
  assert.deepEqual(events.map((e) => e.time), [1700000000000, 1700000005000]);
  assert.equal(header.createdAtMs, 1700000005000);
  const live = new Client({ config: SEED });
  throwsTurnout(() => live.setNow(1), 'NO_FIXED_CLOCK', /fixedTimeMs/);
  live.track('z', 1, {});
  const t = decodeBatch(live.takeBatch().bytes).events[0].time;
  assert.ok(Math.abs(t - Date.now()) < 60000, 'the default clock is Date.now()');
  c.free();
  live.free();
});

test('lifetimes: free, Symbol.dispose, use after free, contexts outlive their client', () => {
  const c = new Client({ config: SEED });
  const ctx = c.context({ city: 6, svc: 302 });
  const v = c.variable(DELAY);
  c.free();
  c.free(); // twice is fine
  throwsTurnout(() => c.getVariable(DELAY, {}), 'CLOSED');
  throwsTurnout(() => c.updateConfig(SEED), 'CLOSED');
  throwsTurnout(() => c.takeBatch(), 'CLOSED');
  assert.equal(ctx.getNumber(v, 0), 60, 'a context keeps the engine it was made from');
  ctx.free();
  assert.throws(() => ctx.getNumber(v, 0), 'a freed context cannot be used');
  if (typeof Symbol.dispose === 'symbol') {
    const d = new Client({ config: SEED });
    const h = d.variable(DELAY);
    d[Symbol.dispose]();
    throwsTurnout(() => d.variableNames(), 'CLOSED');
    h[Symbol.dispose]();
  }
});

test('the package version matches the engine crate and package.json', () => {
  const pkg = JSON.parse(readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  assert.equal(VERSION, pkg.version);
  assert.equal(engineInfo().version, pkg.version);
  assert.equal(engineInfo().specVersion, 1);
  assert.equal(pkg.devDependencies, undefined, 'the published manifest has no dev dependencies');
});
