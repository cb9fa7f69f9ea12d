// The driver behind `client.start(...)`: every rule (intervals, backoff, Retry-After, ETags, rejected configs,
// batches, ack/nack, staleness, log-once) is the engine's host protocol (docs/sync.md, the `Sync` machine);
// this file does the I/O: `fetch` under one deadline, timers, console logging, and sendBeacon on pagehide.

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };
/** start() options that are positive numbers: SyncOptions (docs/sync.md section 2), intervalMs its pollIntervalMs. */
const COUNTS = ['intervalMs', 'flushIntervalMs', 'maxBackoffMs', 'timeoutMs', 'maxBatchEvents', 'staleAfterPolls'];
const OWN = ['maxConfigBytes', 'headers', 'fetch', 'beacon', 'logLevel', 'logger']; // the driver's own options
const KNOWN = [...COUNTS, 'configUrl', 'eventsUrl', 'jitter', 'seed', ...OWN];
const noop = () => undefined;
/** A request without a usable response; `failure` is its ErrorKind code (docs/sync.md section 1). */
const failed = (failure, message) => Object.assign(new Error(message), { failure });

/** The whole body of `res`: TOO_LARGE past `max` bytes (never more is read), INCOMPLETE short of its Content-Length. */
async function readBody(res, max) {
  const raw = res.headers.get('content-encoding') === null ? res.headers.get('content-length') : null;
  const declared = raw !== null && /^\s*\d+\s*$/.test(raw) ? Number(raw) : null;
  const over = (what) => failed('TOO_LARGE', `the body is larger than ${max} bytes (${what})`);
  if (declared !== null && declared > max) throw over(`Content-Length ${declared}`);
  const stream = typeof res.body?.getReader === 'function' ? res.body : new Blob([await res.arrayBuffer()]).stream();
  const chunks = [];
  for (let reader = stream.getReader(), r, size = 0; !(r = await reader.read()).done; chunks.push(r.value)) {
    if ((size += r.value.length) > max) throw over('while reading'); // the caller aborts the request
  }
  const body = new Uint8Array(await new Blob(chunks).arrayBuffer());
  if (declared === null || body.length === declared) return body;
  throw failed('INCOMPLETE', `the body ended after ${body.length} of ${declared} bytes`);
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
    error: () => ['warn', `${channel} failed (${n.kind}): ${n.message}; ${after}`],
    recovered: () => ['info', `${channel} recovered after ${n.failures} failed attempts`],
    stale: () => ['warn', `config stale: not confirmed by the server since ${n.sinceMs} ms (host time)`],
    fresh: () => ['info', 'config fresh again'],
    dropped: () => ['error', `batch ${n.seq} (${n.events} events) refused for good with HTTP ${n.status}: dropped`],
  }[n.notice]();
}

export class Poller {
  #sync;
  #io; // {fetch, headers, maxBytes, log}
  #wake = noop; // ends the current sleep
  #abort = noop; // aborts the config request in flight (stop)
  #flushes = []; // flush() callers, answered when the loop goes idle (the upload round is over)
  #unlisten = noop;
  #idle; // the loop goes idle: resolves #polled (the first config poll is over)
  #polled = new Promise((resolve) => (this.#idle = resolve));
  #done;

  /** Maps the start() options onto SyncOptions, builds the Sync with `makeSync` and starts the loop. */
  constructor(_client, options, makeSync, TurnoutError) {
    if (options === null || typeof options !== 'object') {
      throw new TurnoutError('start() takes {configUrl, intervalMs, eventsUrl, ...}', 'INVALID_OPTIONS');
    }
    const bad = (m) => new TurnoutError(`start(): ${m}`, 'INVALID_OPTIONS');
    const unknown = Object.keys(options).find((k) => !KNOWN.includes(k));
    if (unknown !== undefined) throw bad(`unknown option \`${unknown}\` (known: ${KNOWN.join(', ')})`);
    const o = { jitter: options.jitter, seed: options.seed ?? Math.floor(Math.random() * 2 ** 53) }; // SyncOptions
    const count = (k, v = options[k]) => {
      if (v === undefined || (v > 0 && Number.isFinite(v))) return v && Math.ceil(v);
      throw bad(`${k} must be a positive number`);
    };
    for (const k of COUNTS) o[k === 'intervalMs' ? 'pollIntervalMs' : k] = count(k);
    for (const k of ['configUrl', 'eventsUrl']) if (options[k] != null) o[k] = String(options[k]);
    const level = LEVELS[options.logLevel ?? 'info'];
    if (level === undefined) throw bad(`logLevel is one of ${Object.keys(LEVELS).join(', ')}`);
    const logger = options.logger === undefined ? console : options.logger;
    const log = ([lv, line]) => LEVELS[lv] >= level && logger?.[lv]?.(`turnout: ${line}`);
    const fetch = options.fetch ?? globalThis.fetch;
    if (typeof fetch !== 'function') throw bad('no fetch available; pass {fetch}');
    // maxBytes: the start() option's limit, under the client's own (the action's maxBytes).
    this.#io = { fetch, headers: { ...options.headers }, maxBytes: count('maxConfigBytes') ?? Infinity, log };
    this.#sync = makeSync(o); // bad SyncOptions throw INVALID_OPTIONS
    const drain = { ...o, configUrl: undefined }; // the options of the page-hide drain's Sync
    if (o.eventsUrl !== undefined && options.beacon !== false) this.#listenForPageHide(makeSync, drain);
    this.#done = this.#run();
  }

  /** Resolves after the first config poll (at once without a configUrl). */
  start() {
    return this.#polled;
  }

  /** Stops: a config request in flight is aborted, an upload ends by its deadline; `flush` uploads the queue first. */
  async stop(flush = false) {
    this.#unlisten();
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
    this.#sync.flushNow();
    this.#wake();
    return new Promise((resolve) => this.#flushes.push({ sent: 0, failed: false, resolve }));
  }

  async #run() {
    const now = () => Math.floor(performance.now());
    const idle = () => (this.#idle(), this.#flushes.splice(0).forEach(({ resolve, ...result }) => resolve(result)));
    for (;;) {
      const a = this.#sync.next(now());
      this.#notices(); // next() itself may notice: stale, a request past its deadline
      if (a.action === 'stop') break;
      if (a.action === 'wait') {
        idle();
        await new Promise((resolve) => {
          const t = setTimeout(resolve, Math.min(a.ms, 2 ** 31 - 1));
          t?.unref?.(); // Node: the poller does not keep the process alive
          this.#wake = () => (clearTimeout(t), resolve());
        });
        this.#wake = noop;
        continue;
      }
      const outcome = await this.#request(a);
      if (a.action === 'fetch') this.#sync.onFetch(now(), outcome);
      else this.#sync.onUpload(now(), a.seq, outcome);
      const bad = (n) => n.notice === 'dropped' || (n.notice === 'error' && n.channel === 'events');
      const failed = this.#notices().some(bad);
      if (a.action === 'upload') for (const f of this.#flushes) failed ? (f.failed = true) : (f.sent += a.events);
    }
    this.#sync.free();
    this.#sync = null;
    idle();
  }

  /** The notices since the last step (Sync also hands them to the client's listeners), logged unless repeats. */
  #notices() {
    const notices = this.#sync.takeNotices();
    for (const n of notices) if (!n.repeat) this.#io.log(describe(n));
    return notices;
  }

  /** One fetch or upload under one deadline (connect, headers and body): the outcome as Sync takes it. */
  async #request(a) {
    const { fetch, headers, maxBytes: max } = this.#io;
    const get = a.action === 'fetch';
    const init = get
      ? { method: 'GET', headers: { accept: 'application/json', ...headers } }
      : { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: a.bytes };
    if (get && a.etag !== null) init.headers['if-none-match'] = a.etag;
    const ctl = new AbortController();
    const end = (failure, message) => ctl.abort(failed(failure, message));
    const late = `timed out: no complete response within ${a.timeoutMs} ms (connect, headers and body)`;
    const timer = setTimeout(end, a.timeoutMs, 'TIMEOUT', late);
    if (get) this.#abort = () => end('ABORTED', 'the poller was stopped');
    // Each step races the abort, so that the deadline holds whatever the fetch does with the signal.
    const aborted = new Promise((_, reject) => ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason)));
    const step = (p) => ([p, aborted].forEach((q) => q.catch(noop)), Promise.race([p, aborted]));
    let res = null; // until the headers arrive a failure is NETWORK, then a failed body is INCOMPLETE
    try {
      res = await step(fetch(a.url, { ...init, signal: ctl.signal }));
      const read = get && res.status >= 200 && res.status < 300;
      const body = read ? await step(readBody(res, Math.min(a.maxBytes, max))) : void res.body?.cancel().catch(noop);
      return { status: res.status, etag: res.headers.get('etag'), retryAfter: res.headers.get('retry-after'), body };
    } catch (e) {
      const why = `${e?.message ?? e}${e?.cause?.message ? ` (${e.cause.message})` : ''}`;
      const f = [ctl.signal.reason, e].find((x) => x?.failure) ?? failed(res ? 'INCOMPLETE' : 'NETWORK', why);
      ctl.abort(f); // whatever failed, the connection goes
      return { failure: f.failure, message: `${init.method} ${a.url}: ${f.message}` };
    } finally {
      clearTimeout(timer);
      this.#abort = noop;
    }
  }

  /**
   * Browsers: when the page goes away, a Sync of its own (events only) drains the queue through sendBeacon:
   * a batch the browser takes is acked, the first it refuses is nacked and ends the drain (docs/sync.md section 9).
   */
  #listenForPageHide(makeSync, options) {
    const g = globalThis;
    if (typeof g.addEventListener !== 'function' || typeof g.navigator?.sendBeacon !== 'function') return;
    const send = (a) => g.navigator.sendBeacon(a.url, new Blob([a.bytes], { type: 'application/octet-stream' }));
    const beacon = () => {
      const s = makeSync(options);
      s.stop(true);
      for (let a; (a = s.next(0)).action === 'upload'; ) {
        let taken = false;
        try {
          taken = send(a);
        } catch {} // a URL sendBeacon refuses: the batch stays queued
        s.onUpload(0, a.seq, taken ? { status: 202 } : { failure: 'NETWORK', message: 'sendBeacon refused it' });
      }
      s.free();
    };
    const onHidden = () => g.document?.visibilityState === 'hidden' && beacon();
    const listeners = [[g, 'pagehide', beacon], [g.document, 'visibilitychange', onHidden]];
    listeners.forEach(([target, type, f]) => target?.addEventListener(type, f));
    this.#unlisten = () => listeners.forEach(([target, type, f]) => target?.removeEventListener(type, f));
  }
}
