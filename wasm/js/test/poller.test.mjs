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
import { Client, Sync, TurnoutError, decodeBatch } from '../../pkg/node.js';
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
  // A request in flight when stop() was called is aborted, but a loaded server may still log it late.
  await new Promise((r) => setTimeout(r, 50));
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
  // The sync's notice carries the engine's message and its structured problems (docs/sync.md section 7).
  assert.match(errors[0].message, /constraints\[0\]/);
  assert.ok(errors[0].problems.some((p) => p.field.startsWith('rollouts[0].constraints[0]')), JSON.stringify(errors[0].problems));
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

// ---- one deadline, the body limit, the ETag rule (docs/sync.md sections 1 and 4) ----

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
  // Content-Length larger than what is sent (INCOMPLETE: no ETag changes), then
  // close-delimited and cut short: the half is all the client can see, a body
  // that is not JSON, whose ETag is not remembered (docs/sync.md section 4), so
  // the next poll fetches the whole config again.
  server.script.push(
    rawAnswer(full, '"E"', { send: full.length >> 1 }),
    rawAnswer(full, '"E-cut"', { contentLength: null, send: full.length >> 1 }),
  );
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 40, timeoutMs: 2000 });
  await until('the full config', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 31);
  assert.equal(errors[0].code, 'INCOMPLETE', errors[0].message); // Content-Length not met
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

test("a rejected config's ETag is sent until the server serves another: no download, no error, then the valid one", async () => {
  // This rule changed after 0.2.0 (docs/sync.md section 4): before, a rejected
  // config's ETag was never sent, so the same bad bytes were downloaded and
  // compiled at every poll; a server that fixes a config must now give it a new ETag.
  const { server, client, updates, errors } = await setup();
  server.setConfig('{"variable": "automatedMessageDelay", "rollouts": [{"value": 1, "constraints": [{"op": "~"}]}]}', '"E"');
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 20, maxBackoffMs: 40 });
  assert.equal(errors[0].code, 'INVALID_CONFIG');
  await until('three 304s to the rejected ETag', () => server.configRequests.filter((r) => r.ifNoneMatch === '"E"').length >= 3);
  assert.equal(server.configRequests[0].ifNoneMatch, null);
  assert.equal(errors.length, 1, 'a 304 to the rejected ETag is no new error');
  assert.equal(client.getVariable(DELAY, SG).value, 60, 'the good config stays in force');
  server.setConfig(withDefault(36), '"F"');
  await until('the valid config', () => updates.length === 1);
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 36);
  await client.stop();
});

// ---- the driver over the engine's host protocol (docs/sync.md) ----

/** A logger that records `{level, line}`. */
function recorder() {
  const records = [];
  const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (line) => records.push({ level, line })]));
  return { records, logger };
}

/**
 * A config and events server that misbehaves on purpose by `mode`: 'ok',
 * '500' (both channels), 'truncated' (a config body cut short of its
 * Content-Length), 'oversize' (a chunked config body over the limit),
 * 'invalid' (a config the engine rejects, then 304 to its ETag), 'slow'
 * (answers after the client's deadline; an upload is taken in first), and
 * `down()` / `up()`.
 */
class FaultServer extends Server {
  constructor() {
    super();
    this.mode = 'ok';
    // Every upload, in arrival order: {mode, seq, bytes, taken, lost}: taken = the server kept the
    // batch; lost = the client cannot have seen the answer (answered after its deadline, or cut).
    this.posts = [];
    this.server.removeAllListeners('request');
    this.server.on('request', (req, res) => this.#answer(req, res).catch(() => req.socket.destroy()));
  }

  async #answer(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const mode = this.mode;
    const post = req.url === '/events' ? { mode, bytes: new Uint8Array(Buffer.concat(chunks)), taken: mode !== '500', lost: mode === 'slow' } : null;
    if (post !== null) {
      post.seq = decodeBatch(post.bytes).header.seq;
      this.posts.push(post);
      res.on('close', () => (post.lost ||= !res.writableFinished));
    }
    if (mode === 'slow') await new Promise((r) => setTimeout(r, 700));
    if (post !== null) return res.writeHead(mode === '500' ? 500 : 204).end();
    const inm = req.headers['if-none-match'] ?? null;
    this.configRequests.push({ mode, ifNoneMatch: inm });
    if (mode === '500') return res.writeHead(500).end('boom');
    if (mode === 'truncated') return rawAnswer(this.config, '"cut"', { send: this.config.length >> 1 })(req.socket);
    if (mode === 'oversize') {
      res.writeHead(200, { etag: '"big"' }); // chunked: the limit is found while reading
      return res.end(JSON.stringify({ ...JSON.parse(this.config), description: 'x'.repeat(9000) }));
    }
    const [body, etag] = mode === 'invalid' ? ['{"variable": "automatedMessageDelay", "rollouts": [{"value": 1, "constraints": [{"op": "~"}]}]}', '"bad"'] : [this.config, this.etag];
    if (inm === etag) return res.writeHead(304, { etag }).end();
    res.writeHead(200, { 'content-type': 'application/json', etag }).end(body);
  }
}

test('fault injection: each fault leaves the last good config answering, is logged once, recovers, and loses no event', async () => {
  const server = await new FaultServer().start();
  cleanup.push(() => server.down().catch(() => undefined));
  const client = new Client({ config: SEED, service: 'svc', clientId: 'faults' });
  cleanup.push(() => client.free());
  const notices = [];
  client.on('notice', (n) => notices.push(n));
  const { records, logger } = recorder();
  let tracked = 0;
  const ticker = setInterval(() => client.track('tick', 1, { n: tracked++ % 3 }), 3);
  cleanup.push(() => clearInterval(ticker));
  server.setConfig(withDefault(41), '"c41"');
  await (await fetch(`${server.url}/warm-up`)).arrayBuffer(); // Node loads fetch on first use: not in a deadline
  await client.start({
    configUrl: `${server.url}/config`,
    eventsUrl: `${server.url}/events`,
    intervalMs: 20,
    maxBackoffMs: 40,
    timeoutMs: 300,
    staleAfterPolls: 10,
    maxConfigBytes: 4096,
    logger,
    logLevel: 'debug',
  });
  assert.equal(client.getVariable(DELAY, ELSEWHERE).value, 41, JSON.stringify(records));
  const errorsOf = (channel, kind) => notices.filter((n) => n.notice === 'error' && n.channel === channel && n.kind === kind);
  const recoveries = (channel) => notices.filter((n) => n.notice === 'recovered' && n.channel === channel).length;

  const count = (notice) => notices.filter((n) => n.notice === notice).length;
  const answers = (value) => assert.equal(client.getVariable(DELAY, ELSEWHERE).value, value, 'the last good config answers');

  /**
   * The server misbehaves by `mode` until `done()`, the last good config (`value`) answering
   * throughout; then it serves `next` (a new config) and the client must recover.
   */
  async function fault(mode, done, value, next) {
    const recovered = recoveries('config');
    server.mode = mode;
    await until(`the ${mode} faults`, () => (answers(value), done()), 8000);
    server.setConfig(withDefault(next), `"c${next}"`);
    server.mode = 'ok';
    await until(`recovery from ${mode}`, () => client.getVariable(DELAY, ELSEWHERE).value === next && (mode === 'invalid' || recoveries('config') > recovered), 8000);
  }
  await fault('500', () => errorsOf('config', 'HTTP').length >= 2 && errorsOf('events', 'HTTP').length >= 2, 41, 42);
  await fault('truncated', () => errorsOf('config', 'INCOMPLETE').length >= 2, 42, 43);
  await fault('oversize', () => errorsOf('config', 'TOO_LARGE').length >= 2, 43, 44);
  // A rejected config: its ETag is sent and answered 304 (a stale ETag), so the client turns stale.
  const stale = count('stale');
  await fault('invalid', () => count('stale') > stale, 44, 45);
  assert.ok(server.configRequests.filter((r) => r.mode === 'invalid' && r.ifNoneMatch === '"bad"').length >= 2);
  assert.equal(errorsOf('config', 'INVALID_CONFIG').length, 1, 'a 304 to the rejected ETag is no new error');
  await until('fresh again', () => count('fresh') === count('stale'));
  await fault('slow', () => errorsOf('config', 'TIMEOUT').length >= 2 && errorsOf('events', 'TIMEOUT').length >= 1, 45, 46);
  // The server goes away, then comes back.
  await server.down();
  await until('the server is missed', () => (answers(46), errorsOf('config', 'NETWORK').length >= 2 && errorsOf('events', 'NETWORK').length >= 2), 8000);
  server.setConfig(withDefault(47), '"c47"');
  const uploadsRecovered = recoveries('events');
  await server.up();
  await until('back', () => client.getVariable(DELAY, ELSEWHERE).value === 47 && recoveries('events') > uploadsRecovered, 8000);

  // Every event is delivered: stop tracking, let the queue drain, then close.
  clearInterval(ticker);
  await until('the queue drained', () => {
    const s = client.trackingStats();
    return s.queued === 0 && s.inFlight === 0 && s.retrying === 0;
  }, 8000);
  assert.equal(client.trackingStats().dropped, 0);
  await client.close();

  // Each fault run was logged once (one warn line per run), however many attempts it failed.
  const warns = (what) => records.filter((r) => r.level === 'warn' && r.line.includes(what)).length;
  for (const kind of ['HTTP', 'INCOMPLETE', 'TOO_LARGE', 'INVALID_CONFIG', 'TIMEOUT', 'NETWORK']) {
    assert.equal(warns(`config sync failed (${kind})`), 1, `config ${kind}: ${records.map((r) => r.line).join('\n')}`);
  }
  for (const kind of ['HTTP', 'TIMEOUT', 'NETWORK']) assert.equal(warns(`event upload failed (${kind})`), 1, `events ${kind}`);
  assert.equal(warns('stale'), notices.filter((n) => n.notice === 'stale').length);
  assert.deepEqual(records.filter((r) => r.level === 'error'), []);
  assert.ok(records.some((r) => r.level === 'info' && /config sync recovered after \d+ failed attempts/.test(r.line)));
  assert.ok(records.some((r) => r.level === 'info' && /event upload recovered/.test(r.line)));

  // No event lost: every batch sent was taken by the server, with the same bytes each time; a batch
  // taken twice is one whose answer the client never got (docs/sync.md section 5: at least once).
  const bySeq = new Map();
  for (const p of server.posts) bySeq.set(p.seq, [...(bySeq.get(p.seq) ?? []), p]);
  let delivered = 0;
  for (const [seq, posts] of bySeq) {
    const taken = posts.filter((p) => p.taken);
    assert.ok(taken.length >= 1, `batch ${seq} never taken`);
    assert.ok(posts.every((p) => Buffer.compare(p.bytes, posts[0].bytes) === 0), `batch ${seq} changed`);
    if (taken.length > 1) assert.ok(taken.slice(0, -1).every((p) => p.lost), `batch ${seq} taken twice, answered`);
    delivered += decodeBatch(posts[0].bytes).events.filter((e) => e.kind === 'track').reduce((n, e) => n + e.count, 0);
  }
  assert.equal(delivered, tracked, 'every tracked event arrived');
});

test('logging: console by default at info, logLevel filters, logger replaces it, null silences it', async () => {
  const { server, client } = await setup();
  server.config = null; // 503
  const seen = [];
  const saved = { info: console.info, warn: console.warn };
  console.info = (line) => seen.push(['info', line]);
  console.warn = (line) => seen.push(['warn', line]);
  try {
    await client.start({ configUrl: `${server.url}/config`, intervalMs: 60000 });
  } finally {
    Object.assign(console, saved);
  }
  await client.stop();
  assert.deepEqual(seen.map(([l]) => l), ['info', 'warn']); // ready (the bootstrap), then the failure
  assert.match(seen[1][1], /^turnout: config sync failed \(HTTP\): HTTP 503; the last good config stays in force$/);
  const { records, logger } = recorder();
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 60000, logger, logLevel: 'warn' });
  await client.stop();
  assert.deepEqual(records.map((r) => r.level), ['warn']);
  await client.start({ configUrl: `${server.url}/config`, intervalMs: 60000, logger: null });
  await client.stop();
  assert.throws(() => client.start({ configUrl: server.url, logLevel: 'loud' }), (e) => e.code === 'INVALID_OPTIONS' && /logLevel/.test(e.message));
  assert.throws(() => client.start({ configUrl: server.url, jitter: 2 }), (e) => e.code === 'INVALID_OPTIONS' && /jitter/.test(e.message));
});

test('client.ready(timeoutMs): true once a config is in force, false after the timeout', async () => {
  const server = await new Server().start();
  cleanup.push(() => server.down());
  const client = new Client({ service: 'svc' });
  cleanup.push(() => client.free());
  assert.equal(await client.ready(30), false, 'no config yet');
  server.script.push(rawAnswer(SEED, '"slow"', { everyMs: 2 })); // the first answer takes about a second
  const { logger } = recorder();
  const started = client.start({ configUrl: `${server.url}/config`, intervalMs: 20, logger });
  const t0 = Date.now();
  assert.equal(await client.ready(5000), true);
  assert.ok(Date.now() - t0 >= 500, 'ready waited for the config');
  await started;
  assert.equal(client.getVariable(DELAY, SG).value, 60);
  assert.equal(await client.ready(0), true);
  await client.stop();
  const boot = new Client({ config: SEED });
  assert.equal(await boot.ready(0), true, 'a bootstrap config is ready at once');
  boot.free();
});

test('Sync: the state machine without I/O, its notices reaching the client', () => {
  const client = new Client({ service: 'svc' });
  const updates = [];
  client.on('update', (r) => updates.push(r));
  assert.throws(() => new Sync(client, {}), (e) => e instanceof TurnoutError && e.code === 'INVALID_OPTIONS');
  assert.throws(() => new Sync({}, { configUrl: 'u' }), (e) => e.code === 'INVALID_ARGUMENT');
  const sync = new Sync(client, { configUrl: 'https://c.example/flags.json', eventsUrl: 'https://c.example/events', pollIntervalMs: 100, jitter: 0 });
  assert.deepEqual(sync.next(0), { action: 'fetch', url: 'https://c.example/flags.json', etag: null, timeoutMs: 10000, maxBytes: 16777216 });
  sync.onFetch(5, { status: 200, etag: '"a"', body: SEED });
  assert.deepEqual(sync.takeNotices().map((n) => n.notice), ['applied', 'ready']);
  assert.equal(updates.length, 1);
  assert.deepEqual(sync.next(5), { action: 'wait', ms: 95 });
  client.track('e', 1);
  sync.flushNow();
  const up = sync.next(6);
  assert.equal(up.action, 'upload');
  assert.equal(decodeBatch(up.bytes).events.length, 1);
  sync.onUpload(7, up.seq, { failure: 'TIMEOUT', message: 'slow' });
  assert.deepEqual(sync.takeNotices(), [{ notice: 'error', channel: 'events', kind: 'TIMEOUT', status: null, message: 'slow', repeat: false }]);
  assert.equal(sync.state().uploadFailures, 1);
  sync.stop(false);
  assert.deepEqual(sync.next(8), { action: 'stop' });
  sync.free();
  client.free();
});
