// The package in a real browser: Debian's Chromium, headless, driven by
// playwright-core (never a browser download), pages served from 127.0.0.1.
// - every conformance vector file, imported from the built package; writes
//   target/conformance/chromium.json
// - the playground (examples/web/) on the seed config
// - events leave with navigator.sendBeacon when the page goes away
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Client, decodeBatch } from '../../pkg/node.js';
import { serveStatic } from '../tools/serve.mjs';
import { ROOT, RESULTS } from './support/paths.mjs';

const EXECUTABLE = process.env.TURNOUT_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let site;
let browser;
let profile;
const collected = [];
const waiters = [];

before(async () => {
  site = await serveStatic({
    handler: async (req, res) => {
      if (req.method !== 'POST' || !req.url.startsWith('/collect')) return false;
      const chunks = [];
      for await (const c of req) chunks.push(c);
      collected.push({ type: req.headers['content-type'], body: new Uint8Array(Buffer.concat(chunks)) });
      res.writeHead(204).end();
      waiters.splice(0).forEach((w) => w());
      return true;
    },
  });
  profile = await mkdtemp(path.join(tmpdir(), 'turnout-chromium-'));
  browser = await chromium.launchPersistentContext(profile, { executablePath: EXECUTABLE, headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  site?.server.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function open(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${site.url}${url}`);
  return { page, errors };
}

test('every conformance vector file passes in headless Chromium', async () => {
  const { page, errors } = await open('/wasm/js/test/browser/conformance.html');
  await page.waitForFunction(() => window.__conformance !== undefined);
  const r = await page.evaluate(() => window.__conformance);
  assert.equal(r.error, undefined, r.error);
  assert.match(r.userAgent, /Chrome/);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, 'chromium.json'), JSON.stringify({ platform: 'chromium', files: r.files }, null, 2) + '\n');
  const index = JSON.parse(await readFile(path.join(ROOT, 'tests/conformance/index.json'), 'utf8'));
  assert.deepEqual(Object.keys(r.files).sort(), index.files.map((f) => f.path).sort());
  for (const [file, { passed, failed }] of Object.entries(r.files)) console.log(`chromium ${file}: ${passed} passed, ${failed} failed`);
  const failures = Object.entries(r.failures).flatMap(([f, list]) => list.slice(0, 5).map((x) => `${f} ${x}`));
  assert.deepEqual(failures, []);
  assert.ok(r.cases >= 3000);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the playground decides on the seed config and explains it', async () => {
  const seed = await readFile(path.join(ROOT, 'examples/configs/seed-rollout.json'), 'utf8');
  const node = new Client({ config: seed });
  const { page, errors } = await open('/examples/web/');
  await page.waitForSelector('body[data-ready="true"]');
  assert.deepEqual(await page.$$eval('#variable option', (os) => os.map((o) => o.value)), node.variableNames());

  const check = async (facetsText, facets) => {
    await page.fill('#facets', facetsText);
    const want = node.explain('automatedMessageDelay', facets);
    await page.waitForFunction((v) => document.getElementById('value').textContent === v, String(want.decision.value));
    assert.equal(await page.textContent('#source'), want.decision.source);
    assert.equal(await page.textContent('#reason'), want.decision.reason);
    assert.deepEqual(await page.$$eval('#steps li', (ls) => ls.map((l) => l.textContent)), want.steps);
  };
  await check('city=10\npax=7', { city: 10, pax: 7 });
  await check('city=6\nsvc=302', { city: 6, svc: 302 });
  await check('{"city": 10, "pax": 9007199254740993}', { city: 10, pax: 9007199254740993n });

  // A broken config is reported; the last good one keeps deciding.
  await page.fill('#config', '{"variable": "automatedMessageDelay", "rollouts": [{"value": 1, "constraints": [{"target": "city", "op": "~", "value": "6"}]}]}');
  await page.waitForSelector('#config-status.error');
  assert.match(await page.textContent('#config-status'), /last good config stays in force/);
  assert.equal(await page.textContent('#source'), node.explain('automatedMessageDelay', { city: 10, pax: 9007199254740993n }).decision.source);
  assert.deepEqual(errors, []);
  node.free();
  await page.close();
});

test('queued events leave with navigator.sendBeacon on pagehide', async () => {
  const { page, errors } = await open('/wasm/js/test/browser/beacon.html');
  await page.waitForFunction(() => window.__ready !== undefined);
  const ready = await page.evaluate(() => window.__ready);
  assert.deepEqual(ready.values, [60, 60, 60]);
  assert.equal(collected.length, 0, 'nothing is uploaded before the page goes away');
  const arrived = new Promise((resolve) => waiters.push(resolve));
  await page.goto('about:blank'); // pagehide
  await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error('no beacon within 10 s')), 10000))]);
  assert.equal(collected.length, 1);
  assert.equal(collected[0].type, 'application/octet-stream');
  const batch = decodeBatch(collected[0].body);
  assert.equal(batch.header.clientId, 'beacon-page');
  assert.equal(batch.header.platform, 'wasm-browser');
  const decisions = batch.events.filter((e) => e.kind === 'decision');
  assert.deepEqual(decisions.map((e) => [e.name, e.value, e.facets.pax]), [
    ['automatedMessageDelay', 60, 1],
    ['automatedMessageDelay', 60, 2],
    ['automatedMessageDelay', 60, 3],
  ]);
  const tracks = batch.events.filter((e) => e.kind === 'track');
  assert.deepEqual(tracks.map((e) => [e.name, e.value, e.facets.device]), [['web.pageSeconds', 12.5, 'd-1']]);
  assert.deepEqual(errors, []);
  await page.close();
});
