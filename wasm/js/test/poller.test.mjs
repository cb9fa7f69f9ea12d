// client.start(): the poller and uploader against a real node:http server
// on 127.0.0.1 - config changes picked up, 304 honoured, the server down and
// up again (backoff, last good config kept), rejected configs, and events
// delivered exactly once per ack; one deadline per request (a slow body),
// the body limit, and the ETag kept only for a complete body the engine
// accepted (bodies cut short, over the limit, rejected).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, TurnoutError, decodeBatch } from '../../pkg/node.js';
import { ROOT } from './support/paths.mjs';

const SEED = readFileSync(path.join(ROOT, 'examples/configs/seed-rollout.json'), 'utf8');
const DELAY = 'automatedMessageDelay';
const withDefault = (n) => JSON.stringify({ ...JSON.parse(SEED), default: n });
const SG = { city: 6, svc: 302 };
const ELSEWHERE = { city: 3 };

/** A config and events server: `config` and `etag` can be changed, `failEvents` makes uploads fail. */
class Server {
  constructor() {
    this.config = SEED;
    this.etag = '"v1"';
    this.configRequests = [];
    this.failEvents = 0; // how many uploads to answer 500
    this.uploads = []; // every POST: {status, bytes}
    this.script = []; // raw answers for the next config GETs (see rawAnswer)
    this.server = http.createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      if (req.url === '/config' && req.method === 'GET') {
        this.configRequests.push({ ifNoneMatch: req.headers['if-none-match'] ?? null, auth: req.headers.authorization });
        const raw = this.script.shift();
        if (raw !== undefined) return raw(req.socket);
        if (this.config === null) return res.writeHead(503).end('maintenance');
        if (req.headers['if-none-match'] === this.etag) return res.writeHead(304, { etag: this.etag }).end();
        return res.writeHead(200, { 'content-type': 'application/json', etag: this.etag }).end(this.config);
      }
      if (req.url === '/events' && req.method === 'POST') {
        const bytes = new Uint8Array(Buffer.concat(chunks));
        const status = this.failEvents > 0 ? (this.failEvents--, 500) : 204;
        this.uploads.push({ status, bytes, type: req.headers['content-type'] });
        return res.writeHead(status).end();
      }
      res.writeHead(404).end();
    });
  }
  listen(port = 0) {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', () => resolve(this.server.address().port)));
  }
  async start() {
    this.port = await this.listen();
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }
  /** Down: stop listening and drop every open connection. */
  down() {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
  up() {
    return this.listen(this.port);
  }
  setConfig(text, etag) {
    this.config = text;
    this.etag = etag;
  }
}

/**
 * A raw 200 written straight to the socket: `contentLength` -1 declares the
 * body's size, null declares nothing (the body ends when the connection
 * closes); only the first `send` bytes are sent; `everyMs` > 0 sends one byte
 * at a time with that pause.
 */
function rawAnswer(text, etag, { contentLength = -1, send, everyMs = 0 } = {}) {
  const body = Buffer.from(text);
  const n = send ?? body.length;
  return (socket) => {
    let head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nETag: ${etag}\r\n`;
    if (contentLength !== null) head += `Content-Length: ${contentLength === -1 ? body.length : contentLength}\r\n`;
    socket.write(`${head}\r\n`);
    if (everyMs <= 0) return socket.end(body.subarray(0, n));
    let i = 0;
    const t = setInterval(() => {
      if (i >= n || socket.destroyed) {
        clearInterval(t);
        socket.end();
      } else socket.write(body.subarray(i, ++i));
    }, everyMs);
    socket.on('close', () => clearInterval(t));
  };
}

const cleanup = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(clientOptions = {}) {
  const server = await new Server().start();
  cleanup.push(() => server.down());
  const client = new Client({ config: SEED, service: 'svc', ...clientOptions });
  cleanup.push(() => client.free());
  const updates = [];
  const errors = [];
  client.on('update', (r) => updates.push(r));
  client.on('error', (e) => errors.push(e));
  return { server, client, updates, errors };
}

async function until(what, pred, ms = 5000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a config change on the server is picked up, and 304 keeps the config', async () => {
  const { server, client, updates, errors } = await setup();
  server.setConfig(withDefault(31), '"v2"');
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, headers: { authorization: 'Bearer t' } });
  // start() resolves after the first poll, which installed v2.
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 31);
  assert.equal(updates.length, 1);
  assert.deepEqual(updates[0].changed, [DELAY]);
  assert.equal(server.configRequests[0].ifNoneMatch, null);
  assert.equal(server.configRequests[0].auth, 'Bearer t');

  // Unchanged: every later poll sends the ETag and gets a 304; nothing is re-installed.
  await until('three more polls', () => server.configRequests.length >= 4);
  assert.ok(server.configRequests.slice(1).every((r) => r.ifNoneMatch === '"v2"'));
  assert.equal(updates.length, 1);

  // A kill switch flip on the server reaches the app as an 'update'.
  server.setConfig(JSON.stringify({ ...JSON.parse(SEED), enabled: false }), '"v3"');
  await until('the kill switch', () => updates.length === 2);
  assert.deepEqual(updates[1].changed, [DELAY]);
  const killed = client.getVariable(DELAY, SG);
  assert.deepEqual([killed.source, killed.reason], ['fallback', 'DISABLED']);
  assert.deepEqual(errors, []);
  await client.stop();
  const n = server.configRequests.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.configRequests.length, n, 'no poll after stop()');
});

test('the server down then up: errors with backoff, the last good config stays, then recovery', async () => {
  const { server, client, updates, errors } = await setup();
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 400 });
  assert.equal(client.getVariable(DELAY, SG).value, 60);
  await server.down();
  const downAt = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  const during = errors.length;
  assert.ok(during >= 2, `errors while down: ${during}`);
  // Without backoff a 20 ms interval would fail ~50 times in a second.
  assert.ok(during <= 12, `backoff: ${during} failures in 1 s`);
  assert.ok(errors.every((e) => e instanceof TurnoutError && e.code === 'NETWORK'), errors.map((e) => e.code).join());
  assert.equal(client.getVariable(DELAY, SG).value, 60, 'the last good config stays in force');
  assert.equal(updates.length, 0);

  server.setConfig(withDefault(33), '"v-after"');
  await server.up();
  await until('recovery', () => updates.length === 1, 5000);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 33);
  assert.ok(Date.now() - downAt < 5000);
  // 503 is an HTTP error, reported with its status.
  const before = errors.length;
  server.setConfig(null, '"x"');
  await until('an HTTP error', () => errors.length > before);
  assert.equal(errors.at(-1).code, 'HTTP');
  assert.equal(errors.at(-1).status, 503);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 33);
});

test('a rejected config from the server is an error event; the old config stays', async () => {
  const { server, client, updates, errors } = await setup();
  server.setConfig('{"variable": "automatedMessageDelay", "rollouts": [{"value": 1, "constraints": [{"op": "~"}]}]}', '"bad"');
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 100 });
  assert.equal(updates.length, 0);
  assert.ok(errors.length >= 1);
  assert.equal(errors[0].code, 'INVALID_CONFIG');
  assert.ok(errors[0].problems.length > 0);
  assert.equal(client.getVariable(DELAY, SG).value, 60);
  server.setConfig(withDefault(34), '"good"');
  await until('the fixed config', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 34);
});

test('events are delivered exactly once per ack: failed uploads are nacked and retried with the same bytes', async () => {
  const { server, client, errors } = await setup({ clientId: 'exactly-once' });
  server.failEvents = 2;
  await client.start({ eventsUrl: `${server.url}/events`, flushIntervalMs: 20, maxBackoffMs: 80, intervalMs: 20 });
  const v = client.variable(DELAY);
  let made = 0;
  for (let round = 0; round < 4; round++) {
    for (let pax = 0; pax < 50; pax++) {
      client.context({ ...SG, pax: round * 1000 + pax }).getNumber(v, 0);
      made++;
    }
    client.track('round', round, { tag: `r${round}` });
    made++;
    await until(`round ${round} delivered`, () => client.trackingStats().queued === 0 && client.trackingStats().inFlight === 0 && client.trackingStats().retrying === 0);
  }
  await client.flush();
  const accepted = server.uploads.filter((u) => u.status === 204);
  const failed = server.uploads.filter((u) => u.status === 500);
  assert.equal(failed.length, 2);
  assert.ok(server.uploads.every((u) => u.type === 'application/octet-stream'));
  const batches = accepted.map((u) => decodeBatch(u.bytes));
  const seqs = batches.map((b) => b.header.seq);
  assert.equal(new Set(seqs).size, seqs.length, 'no batch was accepted twice');
  // Each failed upload was retried with identical bytes, then accepted once.
  for (const f of failed) {
    const seq = decodeBatch(f.bytes).header.seq;
    const retry = accepted.filter((u) => decodeBatch(u.bytes).header.seq === seq);
    assert.equal(retry.length, 1);
    assert.deepEqual(retry[0].bytes, f.bytes);
  }
  const delivered = batches.flatMap((b) => b.events).reduce((n, e) => n + e.count, 0);
  assert.equal(delivered, made, 'every occurrence arrived exactly once');
  assert.ok(batches.every((b) => b.header.clientId === 'exactly-once'));
  assert.equal(errors.filter((e) => e.code === 'HTTP').length, 2);
  const stats = client.trackingStats();
  assert.equal(stats.dropped, 0);
});

test('close() stops polling and uploads what is still queued', async () => {
  const { server, client } = await setup();
  await client.start({ configUrl: `${server.url}/config`, eventsUrl: `${server.url}/events`, intervalMs: 60000 });
  client.track('last', 1, {});
  await client.close();
  assert.equal(server.uploads.length, 1);
  assert.equal(decodeBatch(server.uploads[0].bytes).events[0].name, 'svc.last');
  assert.throws(() => client.variableNames(), (e) => e.code === 'CLOSED');
});

test('start() validates its options', async () => {
  const { server, client } = await setup();
  const bad = (opts, re) => assert.throws(() => client.start(opts), (e) => e instanceof TurnoutError && e.code === (re.code ?? 'INVALID_OPTIONS') && re.test(e.message));
  bad({}, /configUrl, an eventsUrl or both/);
  bad({ configUrl: server.url, intervalMs: 0 }, /intervalMs/);
  bad({ configUrl: server.url, intervall: 10 }, /unknown option `intervall`/);
  bad(null, /start\(\) takes/);
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 60000 });
  assert.throws(() => client.start({ configUrl: server.url }), (e) => e.code === 'INVALID_ARGUMENT');
  await client.stop();
});

test('a custom fetch is used for every request', async () => {
  const { client } = await setup();
  const seen = [];
  const fakeFetch = async (url, init) => {
    seen.push([url, init.method]);
    return new Response(withDefault(35), { status: 200, headers: { etag: '"f"' } });
  };
  await client.start({ configUrl: 'https://config.invalid/turnout.json', intervalMs: 60000, fetch: fakeFetch });
  assert.deepEqual(seen, [['https://config.invalid/turnout.json', 'GET']]);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 35);
  await client.stop();
});

// ---- one deadline, the body limit, the ETag rule (issue 13) ----

test('a slow body fails at the deadline (TIMEOUT), then the next poll runs as usual', async () => {
  const { server, client, updates, errors } = await setup();
  server.setConfig(withDefault(31), '"v2"');
  // One byte every 0.5 s: headers at once, the body would take minutes.
  server.script.push(rawAnswer(withDefault(31), '"v2"', { everyMs: 500 }));
  const t0 = Date.now();
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 100, timeoutMs: 1000 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 900 && elapsed < 2000, `the first poll took ${elapsed} ms`);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'TIMEOUT');
  assert.match(errors[0].message, /timed out/);
  assert.equal(updates.length, 0);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 30, 'nothing installed');
  await until('the config after the timeout', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 31);
  assert.equal(server.configRequests[1].ifNoneMatch, null, "the slow answer's ETag was never sent");
  await client.stop();
});

test('stop() resolves promptly during a slow body', async () => {
  const { server, client, updates, errors } = await setup();
  server.script.push(rawAnswer(withDefault(31), '"v2"', { everyMs: 500 }));
  const started = client.start({ configUrl: `${server.url}/config`, intervalMs: 60000, timeoutMs: 10000 });
  await until('the request', () => server.configRequests.length === 1);
  await new Promise((r) => setTimeout(r, 300)); // the body is trickling in
  const t0 = Date.now();
  await client.stop();
  assert.ok(Date.now() - t0 < 500, `stop() took ${Date.now() - t0} ms`);
  await started;
  assert.deepEqual(errors, [], 'stopping is not a failure');
  assert.equal(updates.length, 0);
});

test('bodies cut short keep no ETag: the full body with the same ETag is fetched again', async () => {
  const { server, client, updates, errors } = await setup();
  const full = withDefault(31);
  server.setConfig(full, '"E"');
  // Content-Length larger than what is sent, then close-delimited and cut short.
  server.script.push(
    rawAnswer(full, '"E"', { send: full.length >> 1 }),
    rawAnswer(full, '"E"', { contentLength: null, send: full.length >> 1 }),
  );
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 40, timeoutMs: 2000 });
  await until('the full config', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 31);
  assert.equal(errors[0].code, 'NETWORK', errors[0].message); // Content-Length not met
  assert.equal(errors[1].code, 'INVALID_CONFIG'); // close-delimited: the half is all the client sees
  assert.equal(errors.length, 2);
  assert.deepEqual(server.configRequests.slice(0, 3).map((r) => r.ifNoneMatch), [null, null, null]);
  await until('a 304', () => server.configRequests.at(-1).ifNoneMatch === '"E"');
  await client.stop();
});

test('a body over maxConfigBytes is TOO_LARGE and keeps no ETag', async () => {
  const { server, client, updates, errors } = await setup();
  const big = withDefault(31);
  server.setConfig(big, '"E"');
  // Declared (refused from Content-Length), then undeclared (refused while reading).
  server.script.push(rawAnswer(big, '"E"'), rawAnswer(big, '"E"', { contentLength: null }));
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 40, maxConfigBytes: big.length - 1 });
  await until('three polls', () => errors.length >= 3);
  await client.stop();
  assert.ok(errors.every((e) => e.code === 'TOO_LARGE' && e.message.includes(String(big.length - 1))), errors.map((e) => e.message).join('\n'));
  assert.match(errors[0].message, /Content-Length/);
  assert.ok(server.configRequests.every((r) => r.ifNoneMatch === null));
  assert.equal(updates.length, 0);
  // At the limit it is fine.
  const { server: s2, client: c2, updates: u2 } = await setup();
  s2.setConfig(big, '"E"');
  await c2.start({ configUrl: `${s2.url}/config`, intervalMs: 60000, maxConfigBytes: big.length });
  assert.equal(u2.length, 1);
  await c2.stop();
  assert.throws(() => client.start({ configUrl: server.url, maxConfigBytes: 0 }), (e) => e.code === 'INVALID_OPTIONS' && /maxConfigBytes/.test(e.message));
});

test('a rejected config then a valid one under the same ETag: the valid one is installed', async () => {
  const { server, client, updates, errors } = await setup();
  server.setConfig('{"variable": "automatedMessageDelay", "rollouts": [{"value": 1, "constraints": [{"op": "~"}]}]}', '"E"');
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 40 });
  assert.equal(errors[0].code, 'INVALID_CONFIG');
  server.setConfig(withDefault(36), '"E"');
  await until('the valid config', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 36);
  const first = server.configRequests.findIndex((r) => r.ifNoneMatch === '"E"');
  assert.ok(first === -1 || server.configRequests.slice(0, first).every((r) => r.ifNoneMatch === null));
  await client.stop();
});
