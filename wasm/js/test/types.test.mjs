// The TypeScript declarations (index.d.ts) type-check a realistic usage
// (test/types/usage.ts) under `tsc --strict`, against the built package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = path.join(here, '../node_modules/typescript/bin/tsc');

test('index.d.ts describes the API under tsc --strict', async () => {
  const r = await run(process.execPath, [tsc, '-p', path.join(here, 'types/tsconfig.json')]).catch((e) => e);
  assert.equal(r.code ?? 0, 0, `${r.stdout ?? ''}${r.stderr ?? ''}`);
});
