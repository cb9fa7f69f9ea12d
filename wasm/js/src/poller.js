// The driver behind `client.start(...)`. Every rule (poll interval, backoff with jitter, Retry-After,
// ETags and rejected configs, upload ack/nack, staleness, log-once) is the engine's host protocol
// (docs/sync.md, the `Sync` state machine); this file only does the I/O: a loop asks `next(now)`, does
// the action with `fetch` under one AbortController deadline (connect, headers and body; a config body
// read up to `maxBytes`), reports the outcome, sleeps on `wait` (woken by pollNow, flush and stop), and
// logs each notice that is not a repeat. In browsers, queued batches leave with sendBeacon on pagehide.

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };
/** start() options in ms or counts -> their SyncOptions names (docs/sync.md section 2). */
const MS = { intervalMs: 'pollIntervalMs', flushIntervalMs: 'flushIntervalMs', maxBackoffMs: 'maxBackoffMs' };
Object.assign(MS, { timeoutMs: 'timeoutMs', maxBatchEvents: 'maxBatchEvents', staleAfterPolls: 'staleAfterPolls' });
const KNOWN = [...Object.keys(MS), 'configUrl', 'eventsUrl', 'jitter', 'seed', 'maxConfigBytes', 'headers', 'fetch'];
KNOWN.push('beacon', 'logLevel', 'logger');
const noop = () => undefined;

/** A request without a usable response; `failure` is its ErrorKind code (docs/sync.md section 1). */
class Failed extends Error {
  constructor(failure, message) {
    super(message);
    this.failure = failure;
  }
}

/** The whole body of `res`: TOO_LARGE past `max` bytes (never more is read), INCOMPLETE short of its Content-Length. */
async function readBody(res, max) {
  const raw = res.headers.get('content-encoding') === null ? res.headers.get('content-length') : null;
  const declared = raw !== null && /^\s*\d+\s*$/.test(raw) ? Number(raw) : null;
  const over = (what) => new Failed('TOO_LARGE', `the body is larger than ${max} bytes (${what})`);
  if (declared !== null && declared > max) throw over(`Content-Length ${declared}`);
  const chunks = [];
  let size = 0;
  if (typeof res.body?.getReader !== 'function') chunks.push(new Uint8Array(await res.arrayBuffer()));
  else for (let reader = res.body.getReader(), r; !(r = await reader.read()).done; chunks.push(r.value)) {
    if ((size += r.value.length) > max) throw (reader.cancel().catch(noop), over('while reading'));
  }
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (body.set(c, at), at + c.length), 0);
  if (body.length > max) throw over('while reading');
  if (declared !== null && body.length !== declared) {
    throw new Failed('INCOMPLETE', `the body ended after ${body.length} of ${declared} bytes`);
  }
  return body;
}

/** A notice's log level and line (docs/sync.md section 7). */
function describe(n) {
  const r = n.report;
  const channel = n.channel === 'events' ? 'event upload' : 'config sync';
  const after = n.channel === 'events' ? 'the batch is kept and sent again' : 'the last good config stays in force';
  return {
    ready: () => ['info', 'config ready'],
    applied: () => [
      r.added.length + r.removed.length + r.changed.length + r.rejected.length ? 'info' : 'debug',
      `config applied (version ${r.version ?? '-'}, ETag ${n.etag ?? '-'}): ${r.added.length} added, ` +
        `${r.changed.length} changed, ${r.removed.length} removed, ${r.rejected.length} documents rejected`,
    ],
    error: () => [n.kind === 'ABORTED' ? 'debug' : 'warn', `${channel} failed (${n.kind}): ${n.message}; ${after}`],
    recovered: () => ['info', `${channel} recovered after ${n.failures} failed attempts`],
    stale: () => ['warn', `config stale: not confirmed by the server since ${n.sinceMs} ms (host time)`],
    fresh: () => ['info', 'config fresh again'],
    dropped: () => ['error', `batch ${n.seq} (${n.events} events) refused for good with HTTP ${n.status}: dropped`],
  }[n.notice]();
}

export class Poller {
  #sync;
  #client;
  #options;
  #log;
  #wake = noop; // ends the current sleep
  #abort = noop; // aborts the config request in flight (stop)
  #flushes = []; // flush() callers, answered at the end of the upload round: {sent, failed, resolve}
  #unlisten = [];
  #polled;
  #done = null;

  /** Maps the start() options onto SyncOptions, builds the Sync with `makeSync` and starts the loop. */
  constructor(client, options, makeSync, TurnoutError) {
    const bad = (m) => new TurnoutError(`start(): ${m}`, 'INVALID_OPTIONS');
    if (options === null || typeof options !== 'object') {
      throw new TurnoutError('start() takes {configUrl, intervalMs, eventsUrl, ...}', 'INVALID_OPTIONS');
    }
    const unknown = Object.keys(options).find((k) => !KNOWN.includes(k));
    if (unknown !== undefined) throw bad(`unknown option \`${unknown}\` (known: ${KNOWN.join(', ')})`);
    const ms = (k, v = options[k]) => {
      if (v === undefined || (typeof v === 'number' && v > 0 && Number.isFinite(v))) return v && Math.ceil(v);
      throw bad(`${k} must be a positive number`);
    };
    const o = { jitter: options.jitter, seed: options.seed ?? Math.floor(Math.random() * 2 ** 53) }; // SyncOptions
    for (const [k, name] of Object.entries(MS)) o[name] = ms(k);
    for (const k of ['configUrl', 'eventsUrl']) if (options[k] != null) o[k] = String(options[k]);
    const level = LEVELS[options.logLevel ?? 'info'];
    if (level === undefined) throw bad(`logLevel is one of ${Object.keys(LEVELS).join(', ')}`);
    const logger = options.logger === undefined ? console : options.logger;
    this.#log = ([lv, line]) => LEVELS[lv] >= level && logger?.[lv]?.(`turnout: ${line}`);
    const fetch = options.fetch ?? globalThis.fetch;
    if (typeof fetch !== 'function') throw bad('no fetch available; pass {fetch}');
    const maxBytes = ms('maxConfigBytes') ?? Infinity; // below the client's maxConfigBytes (the action's maxBytes)
    this.#options = { fetch, headers: { ...options.headers }, maxBytes, maxBatchEvents: o.maxBatchEvents ?? 1000 };
    this.#sync = makeSync(o); // bad SyncOptions throw INVALID_OPTIONS
    this.#client = client;
    if (o.eventsUrl !== undefined && options.beacon !== false) this.#listenForPageHide(o.eventsUrl);
    let polled = noop;
    this.#polled = o.configUrl === undefined ? Promise.resolve() : new Promise((r) => (polled = r));
    this.#done = this.#run(polled);
  }

  /** Resolves after the first config poll (at once without a configUrl). */
  start() {
    return this.#polled;
  }

  /** Stops: a config request in flight is aborted, an upload ends by its deadline; `flush` uploads the queue first. */
  async stop(flush = false) {
    this.#unlisten.splice(0).forEach((off) => off());
    this.#sync?.stop(flush);
    this.#abort();
    this.#wake();
    await this.#done;
  }

  /** Polls the config now. */
  pollNow() {
    this.#sync?.pollNow();
    this.#wake();
  }

  /** Uploads every queued batch now; resolves to `{sent, failed}` when the round ends. */
  flush() {
    if (this.#sync === null) return Promise.resolve({ sent: 0, failed: false });
    return new Promise((resolve) => {
      this.#flushes.push({ sent: 0, failed: false, resolve });
      this.#sync.flushNow();
      this.#wake();
    });
  }

  async #run(polled) {
    const now = () => Math.floor(performance.now());
    const answer = () => this.#flushes.splice(0).forEach((f) => f.resolve({ sent: f.sent, failed: f.failed }));
    for (;;) {
      const a = this.#sync.next(now());
      this.#notices(); // next() itself may notice: stale, a request past its deadline
      if (a.action === 'stop') break;
      if (a.action === 'wait') {
        answer();
        await new Promise((resolve) => {
          const t = setTimeout(resolve, Math.min(a.ms, 2 ** 31 - 1));
          t?.unref?.(); // Node: the poller does not keep the process alive
          this.#wake = () => (clearTimeout(t), resolve());
        });
        this.#wake = noop;
      } else if (a.action === 'fetch') {
        const { headers, maxBytes } = this.#options;
        const init = { method: 'GET', headers: { accept: 'application/json', ...headers } };
        if (a.etag !== null) init.headers['if-none-match'] = a.etag;
        const outcome = await this.#request(a, init, Math.min(a.maxBytes, maxBytes));
        this.#sync.onFetch(now(), outcome);
        this.#notices();
        polled();
      } else {
        const headers = { ...this.#options.headers, 'content-type': 'application/octet-stream' };
        const outcome = await this.#request(a, { method: 'POST', headers, body: a.bytes }, -1);
        this.#sync.onUpload(now(), a.seq, outcome);
        const bad = (n) => (n.notice === 'error' && n.channel === 'events') || n.notice === 'dropped';
        const failed = this.#notices().some(bad);
        for (const f of this.#flushes) failed ? (f.failed = true) : (f.sent += a.events);
      }
    }
    this.#sync.free();
    this.#sync = null;
    answer();
    polled();
  }

  /** The notices since the last step (Sync also hands them to the client's listeners), logged unless repeats. */
  #notices() {
    const notices = this.#sync.takeNotices();
    for (const n of notices) if (!n.repeat) this.#log(describe(n));
    return notices;
  }

  /** One request under one deadline: the outcome as Sync takes it. `maxBytes` < 0: the body is not read. */
  async #request(a, init, maxBytes) {
    const ctl = new AbortController();
    const end = (failure, message) => ctl.abort(new Failed(failure, message));
    const late = `timed out: no complete response within ${a.timeoutMs} ms (connect, headers and body)`;
    const timer = setTimeout(end, a.timeoutMs, 'TIMEOUT', late);
    if (maxBytes >= 0) this.#abort = () => end('ABORTED', 'the poller was stopped');
    const aborted = new Promise((_, reject) => ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason)));
    let phase = 'NETWORK'; // until the headers arrive; then a failed body is INCOMPLETE
    const work = (async () => {
      const res = await this.#options.fetch(a.url, { ...init, signal: ctl.signal });
      phase = 'INCOMPLETE';
      const read = maxBytes >= 0 && res.status >= 200 && res.status < 300;
      const body = read ? await readBody(res, maxBytes) : (res.body?.cancel().catch(noop), undefined);
      return { status: res.status, etag: res.headers.get('etag'), retryAfter: res.headers.get('retry-after'), body };
    })();
    [aborted, work].forEach((p) => p.catch(noop)); // the loser of the race
    try {
      return await Promise.race([work, aborted]);
    } catch (e) {
      const why = `${e?.message ?? e}${e?.cause?.message ? ` (${e.cause.message})` : ''}`;
      const f = [ctl.signal.reason, e].find((x) => x instanceof Failed) ?? new Failed(phase, why);
      ctl.abort(f); // whatever failed, the connection goes
      return { failure: f.failure, message: `${init.method} ${a.url}: ${f.message}` };
    } finally {
      clearTimeout(timer);
      this.#abort = noop;
    }
  }

  /** Browsers: hand queued batches to sendBeacon when the page goes away (acked when the browser takes them). */
  #listenForPageHide(url) {
    const g = globalThis;
    if (typeof g.addEventListener !== 'function' || typeof g.navigator?.sendBeacon !== 'function') return;
    const beacon = () => {
      for (let b; (b = this.#client.takeBatch(this.#options.maxBatchEvents)) !== null; this.#client.ack(b.seq)) {
        let queued = false;
        try {
          queued = g.navigator.sendBeacon(url, new Blob([b.bytes], { type: 'application/octet-stream' }));
        } catch {} // a URL sendBeacon refuses: the batch stays queued
        if (!queued) return this.#client.nack(b.seq);
      }
    };
    const onHidden = () => g.document?.visibilityState === 'hidden' && beacon();
    g.addEventListener('pagehide', beacon);
    g.document?.addEventListener('visibilitychange', onHidden);
    this.#unlisten.push(
      () => g.removeEventListener('pagehide', beacon),
      () => g.document?.removeEventListener('visibilitychange', onHidden),
    );
  }
}
