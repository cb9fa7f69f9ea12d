// Every conformance vector file (tests/conformance/index.json) through the
// built package in Node: decisions (one-shot, prepared, typed getters, ids
// beyond 2^53 as BigInt, {$int64} and decimal strings), event batches
// (bytes identical to Rust's, exact decode, corrupted batches rejected) and
// the host protocol's scripts (docs/sync.md section 10, through `Sync`).
// Writes target/conformance/node.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as turnout from '../../pkg/node.js';
import { runConformance } from './support/conformance.mjs';
import { VECTORS, RESULTS } from './support/paths.mjs';

test('every conformance vector file passes in Node', async () => {
  const r = await runConformance(turnout, (p) => readFile(path.join(VECTORS, p), 'utf8'));
  assert.equal(r.specVersion, turnout.engineInfo().specVersion);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, 'node.json'), JSON.stringify({ platform: 'node', files: r.files }, null, 2) + '\n');
  for (const [file, { passed, failed }] of Object.entries(r.files)) {
    console.log(`${file}: ${passed} passed, ${failed} failed`);
  }
  const failures = Object.entries(r.failures).flatMap(([f, list]) => list.slice(0, 5).map((x) => `${f} ${x}`));
  assert.deepEqual(failures, []);
  assert.ok(r.cases >= 3000, `only ${r.cases} cases ran`);
});
