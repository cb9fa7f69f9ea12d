// The conformance runner, shared by the Node test and the headless-Chromium
// page: every file of tests/conformance/index.json (never a hard-coded list)
// through the package, as tests/conformance/README.md describes: kinds
// `decisions`, `batches` and `sync`; a kind it does not know is skipped.

import { parseExact, same, show, hexToBytes, bytesToHex } from './json.mjs';

const FIELDS = ['value', 'source', 'experiment', 'rule', 'choice', 'reason', 'errorCode'];
const BATCH_ERRORS = {
  checksum: 'BATCH_CHECKSUM',
  'not-a-batch': 'NOT_A_BATCH',
  version: 'BATCH_VERSION',
  malformed: 'BATCH_MALFORMED',
};

function fields(d) {
  const o = {};
  for (const f of FIELDS) o[f] = d[f];
  return o;
}

/** The same facets with every BigInt written another way (`{$int64}` or a decimal string). */
function rewriteBigInts(facets, as) {
  const o = {};
  for (const [k, v] of Object.entries(facets)) o[k] = typeof v === 'bigint' ? (as === 'int64' ? { $int64: v.toString() } : v.toString()) : v;
  return o;
}

function typedGetterAgrees(ctx, v, expected) {
  if (expected.source === 'fallback' || expected.value === null) return ctx.getNumber(v, -7.5) === -7.5;
  switch (typeof expected.value) {
    case 'number':
      return ctx.getNumber(v, -7.5) === expected.value;
    case 'string':
      return ctx.getString(v, '\u0000default') === expected.value;
    case 'boolean':
      return ctx.getBoolean(v, !expected.value) === expected.value;
    default:
      return same(ctx.getJSON(v, undefined), expected.value);
  }
}

function runDecisions(turnout, file, failures) {
  const client = new turnout.Client({ config: file.config, fixedTimeMs: file.nowMs });
  const vars = new Map();
  let passed = 0;
  let failed = 0;
  try {
    file.cases.forEach((c, i) => {
      client.setNow(c.nowMs ?? file.nowMs);
      const problems = [];
      // One-shot, facets as given (BigInt for ids beyond 2^53).
      const oneShot = fields(client.getVariable(c.variable, c.facets));
      if (!same(oneShot, c.expected)) problems.push(`one-shot got ${show(oneShot)}`);
      // Prepared, with BigInts in the {$int64} form.
      let v = vars.get(c.variable);
      if (v === undefined) vars.set(c.variable, (v = client.variable(c.variable)));
      const hasBig = Object.values(c.facets).some((x) => typeof x === 'bigint');
      const ctx = client.context(hasBig ? rewriteBigInts(c.facets, 'int64') : c.facets);
      try {
        const prepared = fields(ctx.getDecision(v));
        if (!same(prepared, c.expected)) problems.push(`prepared got ${show(prepared)}`);
        if (!typedGetterAgrees(ctx, v, c.expected)) problems.push('typed getter disagrees');
      } finally {
        ctx.free();
      }
      // Ids beyond 2^53 as decimal strings bucket the same.
      if (hasBig) {
        const asText = fields(client.getVariable(c.variable, rewriteBigInts(c.facets, 'string')));
        if (!same(asText, c.expected)) problems.push(`decimal-string facets got ${show(asText)}`);
      }
      if (problems.length === 0) passed++;
      else {
        failed++;
        failures.push(`#${i} ${c.variable} ${show(c.facets)}: expected ${show(c.expected)}; ${problems.join('; ')}`);
      }
    });
  } finally {
    for (const v of vars.values()) v.free();
    client.free();
  }
  return { passed, failed };
}

function runBatches(turnout, file, failures) {
  let passed = 0;
  let failed = 0;
  for (const c of file.cases) {
    const problems = [];
    try {
      const bytes = turnout.encodeBatch({ header: c.header, events: c.events });
      if (bytesToHex(bytes) !== c.hex) problems.push(`encoded ${bytesToHex(bytes)}`);
    } catch (e) {
      problems.push(`encode threw ${e.message}`);
    }
    try {
      const decoded = turnout.decodeBatch(hexToBytes(c.hex));
      if (!same(decoded.header, c.header)) problems.push(`decoded header ${show(decoded.header)}`);
      if (!same(decoded.events, c.events)) problems.push(`decoded events ${show(decoded.events)}`);
    } catch (e) {
      problems.push(`decode threw ${e.message}`);
    }
    if (problems.length === 0) passed++;
    else {
      failed++;
      failures.push(`${c.name}: ${problems.join('; ')}`);
    }
  }
  for (const c of file.invalid) {
    let code = 'accepted';
    try {
      turnout.decodeBatch(hexToBytes(c.hex));
    } catch (e) {
      code = e instanceof turnout.TurnoutError ? e.code : `not a TurnoutError: ${e}`;
    }
    if (code === BATCH_ERRORS[c.error]) passed++;
    else {
      failed++;
      failures.push(`${c.name}: expected ${BATCH_ERRORS[c.error]}, got ${code}`);
    }
  }
  return { passed, failed };
}

/** A notice as the facade gives it: an applied report's rejected documents in camelCase, like `UpdateReport`. */
function facadeNotice(n) {
  if (n.notice !== 'applied') return n;
  const rejected = n.report.rejected.map((r) => ({ problems: r.problems, keptLastGood: r.kept_last_good, killSwitch: r.kill_switch }));
  return { ...n, report: { ...n.report, rejected } };
}

/** One script of a `sync` file (docs/sync.md section 10); returns the first mismatch, or null. */
function runScript(turnout, script) {
  const { fixedTimeMs } = script.clientOptions;
  const client = new turnout.Client({ ...script.clientOptions, config: script.bootstrap ?? undefined });
  let sync;
  try {
    sync = new turnout.Sync(client, script.options);
    for (const [i, step] of script.steps.entries()) {
      const { at, ...rest } = step;
      const [[op, want]] = Object.entries(rest);
      if (fixedTimeMs !== undefined) client.setNow(fixedTimeMs + at);
      let got;
      if (op === 'next') {
        const { bytes, ...action } = sync.next(at);
        got = action;
      } else if (op === 'notices') {
        got = sync.takeNotices();
        if (!same(got, want.map(facadeNotice))) return `step ${i}: notices: expected ${show(want)}, got ${show(got)}`;
        continue;
      } else if (op === 'state') {
        const full = sync.state();
        got = Object.fromEntries(Object.keys(want).map((k) => [k, full[k] ?? null]));
      } else if (op === 'fetched') {
        const body = want.body !== undefined && want.body !== null ? JSON.stringify(want.body) : (want.bodyText ?? '');
        sync.onFetch(at, { ...want, body });
      } else if (op === 'uploaded') sync.onUpload(at, want.seq, want);
      else if (op === 'track') client.track(want.name ?? 'event', want.value ?? 1);
      else if (op === 'pollNow') sync.pollNow();
      else if (op === 'flushNow') sync.flushNow();
      else if (op === 'stop') sync.stop(want?.flush ?? true);
      else return `step ${i}: unknown operation ${op}`;
      if (got !== undefined && !same(got, want)) return `step ${i}: ${op}: expected ${show(want)}, got ${show(got)}`;
    }
    return null;
  } catch (e) {
    return `threw ${e?.stack ?? e}`;
  } finally {
    sync?.free();
    client.free();
  }
}

function runSync(turnout, file, failures) {
  let passed = 0;
  let failed = 0;
  for (const script of file.scripts) {
    const problem = runScript(turnout, script);
    if (problem === null) passed++;
    else {
      failed++;
      failures.push(`${script.name}: ${problem}`);
    }
  }
  return { passed, failed };
}

/**
 * Runs every vector file. `readText(path)` reads a file of tests/conformance/.
 * Returns `{files: {path: {passed, failed[, skipped]}}, failures: {path: [...]}, cases}`.
 */
export async function runConformance(turnout, readText) {
  const index = JSON.parse(await readText('index.json'));
  const files = {};
  const failures = {};
  let cases = 0;
  for (const entry of index.files) {
    const file = parseExact(await readText(entry.path));
    const f = [];
    let r;
    if (entry.kind === 'decisions') {
      if (file.cases.length !== entry.cases) f.push(`index says ${entry.cases} cases, file has ${file.cases.length}`);
      r = runDecisions(turnout, file, f);
    } else if (entry.kind === 'batches' || entry.kind === 'sync') {
      r = (entry.kind === 'sync' ? runSync : runBatches)(turnout, file, f);
      if (r.passed + r.failed !== entry.cases) f.push(`index says ${entry.cases} cases, ran ${r.passed + r.failed}`);
    } else {
      // A kind this runner does not know yet is reported as skipped, not failed
      // (the matrix, `cargo xtask conformance`, counts it as not run).
      r = { passed: 0, failed: 0, skipped: entry.cases };
    }
    if (f.length > 0 && r.failed === 0) r.failed = 1;
    files[entry.path] = r;
    failures[entry.path] = f;
    cases += r.passed + r.failed;
  }
  return { specVersion: index.specVersion, files, failures, cases };
}
