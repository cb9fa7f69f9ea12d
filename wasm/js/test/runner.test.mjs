// The demo runner (wasm/js/runner.mjs, tests/bench/README.md contract): its
// decision lines for the contexts of a conformance file equal the expected
// decisions, with exactly the keys of `turnout eval`, and it writes a timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseExact, same, show } from './support/json.mjs';
import { ROOT, VECTORS } from './support/paths.mjs';

const run = promisify(execFile);
const KEYS = ['variable', 'value', 'source', 'experiment', 'rule', 'choice', 'reason', 'errorCode'];

test('the runner writes the contract decision lines and a timing', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'turnout-runner-'));
  try {
    const file = parseExact(await readFile(path.join(VECTORS, 'seed-rollout.json'), 'utf8'));
    const config = path.join(dir, 'config.json');
    const contexts = path.join(dir, 'contexts.jsonl');
    const out = path.join(dir, 'decisions.jsonl');
    const timing = path.join(dir, 'timing.json');
    await writeFile(config, JSON.stringify(file.config));
    const toJson = (v) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? { $int64: x.toString() } : x));
    await writeFile(contexts, file.cases.map((c) => toJson({ variable: c.variable, facets: c.facets }) + '\n').join(''));
    await run(process.execPath, [path.join(ROOT, 'wasm/js/runner.mjs'), '--config', config, '--contexts', contexts, '--now-ms', String(file.nowMs), '--out', out, '--timing', timing]);
    const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, file.cases.length);
    lines.forEach((line, i) => {
      assert.deepEqual(Object.keys(line), KEYS);
      const { variable, ...rest } = line;
      assert.equal(variable, file.cases[i].variable);
      assert.ok(same(rest, file.cases[i].expected), `#${i}: ${show(rest)} != ${show(file.cases[i].expected)}`);
    });
    const t = JSON.parse(await readFile(timing, 'utf8'));
    assert.equal(t.platform, 'node');
    assert.equal(t.decisions, file.cases.length);
    assert.ok(t.nsPerDecisionMedian > 0 && t.nsPerDecisionMedian < 1e6);
    await assert.rejects(run(process.execPath, [path.join(ROOT, 'wasm/js/runner.mjs'), '--config', config]), (e) => e.code === 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
