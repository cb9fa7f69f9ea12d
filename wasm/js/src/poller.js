// The config poller and event uploader behind `client.start(...)`.
//
// - Config: GET `configUrl` every `intervalMs` with `If-None-Match` (the ETag
//   of the config in force); 304 keeps the config; 200 installs the body
//   unless it is byte-identical to the one in force; a rejected config, an
//   HTTP error, a network failure, a timeout or a body over the limit is an
//   'error' event, the last good config stays, and the next poll backs off
//   exponentially (with jitter) up to `maxBackoffMs`.
// - One deadline per request: `timeoutMs` covers connect, headers and the
//   whole body (the timer runs until the last byte is read). When it passes
//   the request is aborted and the poll fails with code TIMEOUT. `stop()`
//   aborts a config request in progress, so it resolves at once.
// - Body limit: a config body over `maxConfigBytes` (default 16 MiB, the
//   engine's limit) fails with code TOO_LARGE: refused from Content-Length
//   before reading, otherwise as soon as the bytes read pass the limit (never
//   more is buffered). A body shorter than its Content-Length fails (NETWORK).
// - ETag rule: the ETag is remembered only when the body was read completely
//   and the engine accepted it (or it is byte-identical to the config in
//   force). A timed-out, truncated, over-limit or rejected body leaves it as
//   it was, so the next poll fetches the config again instead of getting 304
//   for bytes that were never installed.
// - Events: every `flushIntervalMs`, batches are taken from the engine and
//   POSTed to `eventsUrl` as application/octet-stream, one at a time; a 2xx
//   acks the batch, anything else nacks it (the engine hands the same bytes
//   out again next time) and the uploader backs off.
// - Browsers: on `pagehide` and when the page becomes hidden, queued batches
//   go out with `navigator.sendBeacon` (acked when the browser accepts them).

const DEFAULTS = {
  intervalMs: 30000,
  maxBackoffMs: 300000,
  timeoutMs: 10000,
  maxBatchEvents: 1000,
  maxConfigBytes: 16 * 1024 * 1024, // the engine's limit
};

/** What ended a request early: the deadline, stop(), or a body over the limit. */
class Abort extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * The whole body of `res`, at most `limit` bytes (else an Abort TOO_LARGE):
 * a larger Content-Length is refused before reading; a body that ends short
 * of its Content-Length is an error.
 */
async function readBody(res, limit, url) {
  const tooLarge = (what) => new Abort('TOO_LARGE', `config at ${url} is larger than ${limit} bytes (${what})`);
  // Content-Length counts the bytes on the wire: only used without a Content-Encoding.
  const raw = res.headers.get('content-encoding') === null ? res.headers.get('content-length') : null;
  const declared = raw !== null && /^\s*\d+\s*$/.test(raw) ? Number(raw) : null;
  if (declared !== null && declared > limit) {
    res.body?.cancel().catch(() => undefined);
    throw tooLarge(`Content-Length ${declared}`);
  }
  let body;
  if (res.body === null || typeof res.body?.getReader !== 'function') {
    body = new Uint8Array(await res.arrayBuffer());
    if (body.length > limit) throw tooLarge('while reading');
  } else {
    const reader = res.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        reader.cancel().catch(() => undefined);
        throw tooLarge('while reading');
      }
      chunks.push(value);
    }
    body = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
  }
  if (declared !== null && body.length !== declared) {
    throw new Error(`incomplete body: ${body.length} of ${declared} bytes (Content-Length)`);
  }
  return body;
}

function sameBytes(a, b) {
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function positive(name, v, fallback, TurnoutError) {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new TurnoutError(`start(): ${name} must be a positive number of milliseconds`, 'INVALID_OPTIONS');
  }
  return v;
}

/** One loop (config or events): its timer, its failure count, its in-flight run. */
class Loop {
  constructor(run, intervalMs, maxBackoffMs) {
    this.run = run;
    this.intervalMs = intervalMs;
    this.maxBackoffMs = maxBackoffMs;
    this.failures = 0;
    this.timer = null;
    this.running = null;
    this.stopped = false;
  }
  /** Runs once now (or joins the run in flight), then schedules the next. */
  now() {
    if (this.running === null) {
      this.running = this.run()
        .then(
          (ok) => {
            this.failures = ok ? 0 : this.failures + 1;
          },
          () => {
            this.failures += 1;
          },
        )
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }
    return this.running;
  }
  delay() {
    if (this.failures === 0) return this.intervalMs;
    const backoff = Math.min(this.maxBackoffMs, this.intervalMs * 2 ** Math.min(this.failures, 30));
    return backoff / 2 + (Math.random() * backoff) / 2; // jitter: spread clients out
  }
  schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), this.delay());
    if (typeof this.timer === 'object' && typeof this.timer.unref === 'function') this.timer.unref();
  }
  async stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.running !== null) await this.running;
  }
}

export class Poller {
  #client;
  #TurnoutError;
  #fetch;
  #configUrl;
  #eventsUrl;
  #headers;
  #timeoutMs;
  #maxConfigBytes;
  #maxBatchEvents;
  #aborts = new Set(); // abort functions of the config requests in progress (stop() calls them)
  #stopped = false;
  #etag = null;
  #lastBody = null;
  #config = null;
  #events = null;
  #flushing = null;
  #unlisten = [];

  constructor(client, options, TurnoutError) {
    this.#client = client;
    this.#TurnoutError = TurnoutError;
    if (options === null || typeof options !== 'object') {
      throw new TurnoutError('start() takes {configUrl, intervalMs, eventsUrl, ...}', 'INVALID_OPTIONS');
    }
    const known = [
      'configUrl',
      'eventsUrl',
      'intervalMs',
      'flushIntervalMs',
      'maxBackoffMs',
      'timeoutMs',
      'maxConfigBytes',
      'maxBatchEvents',
      'headers',
      'fetch',
      'beacon',
    ];
    for (const k of Object.keys(options)) {
      if (!known.includes(k)) {
        throw new TurnoutError(`start(): unknown option \`${k}\` (known: ${known.join(', ')})`, 'INVALID_OPTIONS');
      }
    }
    const { configUrl, eventsUrl } = options;
    if (configUrl === undefined && eventsUrl === undefined) {
      throw new TurnoutError('start() needs a configUrl, an eventsUrl or both', 'INVALID_OPTIONS');
    }
    this.#configUrl = configUrl === undefined ? null : String(configUrl);
    this.#eventsUrl = eventsUrl === undefined ? null : String(eventsUrl);
    const intervalMs = positive('intervalMs', options.intervalMs, DEFAULTS.intervalMs, TurnoutError);
    const flushIntervalMs = positive('flushIntervalMs', options.flushIntervalMs, intervalMs, TurnoutError);
    const maxBackoffMs = Math.max(
      intervalMs,
      positive('maxBackoffMs', options.maxBackoffMs, DEFAULTS.maxBackoffMs, TurnoutError),
    );
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs, TurnoutError);
    this.#maxConfigBytes = positive('maxConfigBytes', options.maxConfigBytes, DEFAULTS.maxConfigBytes, TurnoutError);
    this.#maxBatchEvents = positive('maxBatchEvents', options.maxBatchEvents, DEFAULTS.maxBatchEvents, TurnoutError);
    this.#headers = { ...(options.headers ?? {}) };
    this.#fetch = options.fetch ?? globalThis.fetch;
    if (typeof this.#fetch !== 'function') {
      throw new TurnoutError('start(): no fetch available; pass {fetch}', 'INVALID_OPTIONS');
    }
    if (this.#configUrl !== null) this.#config = new Loop(() => this.#pollConfig(), intervalMs, maxBackoffMs);
    if (this.#eventsUrl !== null) {
      this.#events = new Loop(async () => !(await this.flush()).failed, flushIntervalMs, maxBackoffMs);
      if (options.beacon !== false) this.#listenForPageHide();
    }
  }

  /** Starts both loops; resolves after the first config poll. */
  async start() {
    this.#events?.schedule();
    if (this.#config !== null) await this.#config.now();
  }

  /** Stops both loops; a config request in progress is aborted, an upload in progress ends by its deadline. */
  async stop() {
    this.#stopped = true;
    for (const off of this.#unlisten) off();
    this.#unlisten = [];
    for (const abort of this.#aborts) abort();
    await Promise.all([this.#config?.stop(), this.#events?.stop()]);
  }

  #error(message, code, extra) {
    this.#client.emit('error', new this.#TurnoutError(message, code, [], extra));
  }

  /**
   * `fetch(url, init)`, then `read(response)`, under one deadline of
   * `timeoutMs` (connect, headers and the whole body). Rejects with an Abort
   * TIMEOUT when it passes (the fetch is aborted and the result dropped, even
   * from a fetch that ignores the signal), and with an Abort STOPPED when
   * `stop()` is called during a request made `abortable`.
   */
  async #request(url, init, read, abortable = false) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    let end;
    const ended = new Promise((_, reject) => {
      end = (e) => {
        ctl?.abort();
        reject(e);
      };
    });
    ended.catch(() => undefined);
    const abort = () => end(new Abort('STOPPED', 'the poller was stopped'));
    if (abortable) {
      if (this.#stopped) throw new Abort('STOPPED', 'the poller was stopped');
      this.#aborts.add(abort);
    }
    const timer = setTimeout(
      () => end(new Abort('TIMEOUT', `timed out: no complete response within ${this.#timeoutMs} ms (connect, headers and body together)`)),
      this.#timeoutMs,
    );
    const work = (async () => {
      const res = await this.#fetch(url, ctl === null ? init : { ...init, signal: ctl.signal });
      return { res, value: await read(res) };
    })();
    work.catch(() => undefined);
    try {
      return await Promise.race([work, ended]);
    } catch (e) {
      ctl?.abort(); // whatever failed, the connection goes
      throw e;
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
    }
  }

  /** One config poll; resolves to whether it succeeded. */
  async #pollConfig() {
    const headers = { accept: 'application/json', ...this.#headers };
    if (this.#etag !== null) headers['if-none-match'] = this.#etag;
    let res, body;
    try {
      ({ res, value: body } = await this.#request(
        this.#configUrl,
        { method: 'GET', headers },
        async (r) => {
          if (r.status === 304 || !r.ok) {
            await r.body?.cancel().catch(() => undefined);
            return null;
          }
          return readBody(r, this.#maxConfigBytes, this.#configUrl);
        },
        true,
      ));
      if (res.status === 304) return true;
    } catch (e) {
      if (e instanceof Abort && e.code === 'STOPPED') return true; // not a failure
      const code = e instanceof Abort ? e.code : 'NETWORK';
      this.#error(`config poll of ${this.#configUrl} failed: ${e.message}`, code, { cause: e });
      return false;
    }
    if (!res.ok) {
      this.#error(`config poll of ${this.#configUrl}: HTTP ${res.status}`, 'HTTP', { status: res.status });
      return false;
    }
    // The body was read completely: its ETag may be remembered once the engine accepts it.
    const etag = res.headers.get('etag');
    if (sameBytes(body, this.#lastBody)) {
      this.#etag = etag;
      return true;
    }
    try {
      this.#client.updateConfig(body); // emits 'update'
    } catch (e) {
      this.#client.emit('error', e); // the last good config stays in force, and its ETag
      return false;
    }
    this.#lastBody = body;
    this.#etag = etag;
    return true;
  }

  /** Uploads every queued batch, one at a time; stops at the first failure. */
  flush() {
    if (this.#eventsUrl === null) return Promise.resolve({ sent: 0, failed: false });
    if (this.#flushing === null) {
      this.#flushing = this.#upload().finally(() => {
        this.#flushing = null;
      });
    }
    return this.#flushing;
  }

  async #upload() {
    let sent = 0;
    for (;;) {
      let batch;
      try {
        batch = this.#client.takeBatch(this.#maxBatchEvents);
      } catch {
        return { sent, failed: false }; // the client was freed
      }
      if (batch === null) return { sent, failed: false };
      let ok = false;
      try {
        const { res } = await this.#request(
          this.#eventsUrl,
          {
            method: 'POST',
            headers: { ...this.#headers, 'content-type': 'application/octet-stream' },
            body: batch.bytes,
          },
          (r) => r.arrayBuffer().catch(() => undefined),
        );
        ok = res.ok;
        if (!ok) this.#error(`event upload to ${this.#eventsUrl}: HTTP ${res.status}`, 'HTTP', { status: res.status });
      } catch (e) {
        const code = e instanceof Abort ? e.code : 'NETWORK';
        this.#error(`event upload to ${this.#eventsUrl} failed: ${e.message}`, code, { cause: e });
      }
      try {
        if (ok) this.#client.ack(batch.seq);
        else this.#client.nack(batch.seq);
      } catch {
        return { sent, failed: !ok }; // freed meanwhile
      }
      if (!ok) return { sent, failed: true };
      sent += batch.events;
    }
  }

  /** Browsers: hand queued batches to sendBeacon when the page goes away. */
  #listenForPageHide() {
    const g = globalThis;
    if (typeof g.addEventListener !== 'function' || typeof g.navigator?.sendBeacon !== 'function') return;
    const beacon = () => this.#beacon();
    const onVisibility = () => {
      if (g.document?.visibilityState === 'hidden') beacon();
    };
    g.addEventListener('pagehide', beacon);
    g.document?.addEventListener('visibilitychange', onVisibility);
    this.#unlisten.push(
      () => g.removeEventListener('pagehide', beacon),
      () => g.document?.removeEventListener('visibilitychange', onVisibility),
    );
  }

  #beacon() {
    for (;;) {
      let batch;
      try {
        batch = this.#client.takeBatch(this.#maxBatchEvents);
      } catch {
        return;
      }
      if (batch === null) return;
      let queued = false;
      try {
        queued = globalThis.navigator.sendBeacon(
          this.#eventsUrl,
          new Blob([batch.bytes], { type: 'application/octet-stream' }),
        );
      } catch {
        queued = false;
      }
      if (queued) this.#client.ack(batch.seq);
      else {
        this.#client.nack(batch.seq);
        return;
      }
    }
  }
}
