// The config poller and event uploader behind `client.start(...)`.
//
// - Config: GET `configUrl` every `intervalMs` with `If-None-Match` (the last
//   ETag); 304 keeps the config; 200 installs the body unless it is
//   byte-identical to the one in force; a rejected config, an HTTP error or
//   a network failure is an 'error' event, the last good config stays, and
//   the next poll backs off exponentially (with jitter) up to `maxBackoffMs`.
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
};

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
  #maxBatchEvents;
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

  async stop() {
    for (const off of this.#unlisten) off();
    this.#unlisten = [];
    await Promise.all([this.#config?.stop(), this.#events?.stop()]);
  }

  #error(message, code, extra) {
    this.#client.emit('error', new this.#TurnoutError(message, code, [], extra));
  }

  /** A fetch that gives up after `timeoutMs`. */
  async #request(url, init) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl === null ? null : setTimeout(() => ctl.abort(), this.#timeoutMs);
    try {
      return await this.#fetch(url, ctl === null ? init : { ...init, signal: ctl.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  /** One config poll; resolves to whether it succeeded. */
  async #pollConfig() {
    const headers = { accept: 'application/json', ...this.#headers };
    if (this.#etag !== null) headers['if-none-match'] = this.#etag;
    let res, body;
    try {
      res = await this.#request(this.#configUrl, { method: 'GET', headers });
      if (res.status === 304) return true;
      body = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      this.#error(`config poll of ${this.#configUrl} failed: ${e.message}`, 'NETWORK', { cause: e });
      return false;
    }
    if (!res.ok) {
      this.#error(`config poll of ${this.#configUrl}: HTTP ${res.status}`, 'HTTP', { status: res.status });
      return false;
    }
    const etag = res.headers.get('etag');
    if (sameBytes(body, this.#lastBody)) {
      this.#etag = etag;
      return true;
    }
    try {
      this.#client.updateConfig(body); // emits 'update'
    } catch (e) {
      this.#client.emit('error', e); // the last good config stays in force
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
        const res = await this.#request(this.#eventsUrl, {
          method: 'POST',
          headers: { ...this.#headers, 'content-type': 'application/octet-stream' },
          body: batch.bytes,
        });
        ok = res.ok;
        await res.arrayBuffer().catch(() => undefined);
        if (!ok) this.#error(`event upload to ${this.#eventsUrl}: HTTP ${res.status}`, 'HTTP', { status: res.status });
      } catch (e) {
        this.#error(`event upload to ${this.#eventsUrl} failed: ${e.message}`, 'NETWORK', { cause: e });
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
