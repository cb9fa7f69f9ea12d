// The turnout facade: an idiomatic JavaScript API over the WebAssembly engine.
//
// Every decision is taken by the Rust engine (turnout-core, compiled to
// WebAssembly); this file only converts arguments and results. The entry
// points `node.js` and `web.js` instantiate the module and re-export this file.
//
// Boundary rules (see wasm/src/lib.rs): the hot call `ctx.getNumber(variable,
// default)` goes straight to the wasm-bindgen class `Context` with two handles
// and a number; facets cross one value at a time by key id; full decisions
// come back as a packed code plus lazy reads; the host protocol (`Sync`,
// wasm/src/sync.rs) returns an action's kind and is read field by field.

import * as w from './wasm/turnout_wasm.js';
import { Context, Variable, WasmClient, WasmSync } from './wasm/turnout_wasm.js';
import { Poller } from './poller.js';

/** The package version (the engine crate has the same one; see `engineInfo()`). */
export const VERSION = '0.2.0';

export { Context, Variable };

/**
 * The one error type this package throws. `code` is stable:
 * `INVALID_CONFIG` (with `problems`), `INVALID_FACETS`, `INVALID_OPTIONS`,
 * `INVALID_ARGUMENT`, `INVALID_BATCH`, `NOT_A_BATCH`, `BATCH_VERSION`,
 * `BATCH_CHECKSUM`, `BATCH_MALFORMED`, `LIMIT_EXCEEDED` (a limit on hostile input:
 * config size, depth or expanded constraints, a batch's decoded size; the message
 * names it), `CLOSED`, and from the poller (docs/sync.md section 8) `NETWORK`,
 * `HTTP` (with `status`), `TIMEOUT` (a request passed `timeoutMs`), `TOO_LARGE`
 * (a config body over `maxConfigBytes`), `INCOMPLETE` (a body cut short),
 * `ABORTED`, and `INVALID_CONFIG` / `LIMIT_EXCEEDED` for a config the server
 * served and the engine rejected. Poller errors also carry `channel`
 * (`'config'` or `'events'`) and `repeat` (the same fault as the previous one).
 */
export class TurnoutError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   * @param {Array<{document: string, field: string, message: string}>} [problems]
   * @param {{cause?: unknown, status?: number, channel?: string, repeat?: boolean, limit?: {limit: string, max: number, found: number}}} [extra]
   */
  constructor(message, code, problems = [], extra = undefined) {
    super(message, extra && 'cause' in extra ? { cause: extra.cause } : undefined);
    this.name = 'TurnoutError';
    this.code = code;
    this.problems = problems;
    for (const k of ['status', 'channel', 'repeat', 'limit']) if (extra?.[k] != null) this[k] = extra[k];
  }
}

let ready = false;
/** Registers the error class with the module (once, after instantiation). */
function ensureReady() {
  if (!ready) {
    w.setErrorClass(TurnoutError);
    ready = true;
  }
}

// ---- facets -----------------------------------------------------------------

/** Facet name -> the module's key id. Bounded (see `loadFacets`): facet names may come from untrusted input. */
const KEY_IDS = new Map();
/** Past this many registered names, the next call that takes facets starts a fresh table. */
const MAX_KEY_IDS = 4096;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

function keyId(name) {
  let id = KEY_IDS.get(name);
  if (id === undefined) {
    id = w.facetKey(name);
    KEY_IDS.set(name, id);
  }
  return id;
}

function kindOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function putFacet(name, v) {
  switch (typeof v) {
    case 'number':
      if (v - v !== 0) break; // NaN and infinities are not units
      w.facetsNumber(keyId(name), v);
      return;
    case 'string':
      w.facetsString(keyId(name), v);
      return;
    case 'boolean':
      w.facetsBool(keyId(name), v);
      return;
    case 'bigint':
      // Exactly as the Rust engine reads JSON integers: i64 range -> integer,
      // up to u64::MAX -> its decimal string, beyond -> a float.
      if (v >= I64_MIN && v <= I64_MAX) w.facetsBigInt(keyId(name), v);
      else if (v > 0n && v <= U64_MAX) w.facetsString(keyId(name), v.toString());
      else if (Number.isFinite(Number(v))) w.facetsNumber(keyId(name), Number(v));
      else break;
      return;
    case 'undefined':
      return; // absent
    case 'object':
      if (v === null) return; // absent, as in JSON facets
      if (typeof v.$int64 === 'string' && Object.keys(v).length === 1) {
        w.facetsInt64Text(keyId(name), v.$int64);
        return;
      }
  }
  throw new TurnoutError(
    `facet \`${name}\` must be a finite number, a string, a boolean or a bigint, found ${typeof v === 'number' ? v : kindOf(v)}`,
    'INVALID_FACETS',
  );
}

/** Loads `facets` (an object or a Map) into the module's scratch set. */
function loadFacets(facets) {
  if (KEY_IDS.size > MAX_KEY_IDS) {
    KEY_IDS.clear();
    w.facetKeysReset();
  }
  w.facetsClear();
  if (facets === undefined || facets === null) return;
  if (typeof facets !== 'object' || Array.isArray(facets)) {
    throw new TurnoutError(`facets must be an object of name -> value, found ${kindOf(facets)}`, 'INVALID_FACETS');
  }
  if (facets instanceof Map) {
    for (const [k, v] of facets) putFacet(String(k), v);
    return;
  }
  // for-in walks V8's enum cache without allocating a key array; facets are
  // plain objects, whose prototype has no enumerable properties.
  for (const k in facets) putFacet(k, facets[k]);
}

// ---- decisions ----------------------------------------------------------------

const SOURCES = ['experiment', 'rollout', 'default', 'fallback'];
const REASONS = ['TARGETING_MATCH', 'SPLIT', 'DEFAULT', 'DISABLED', 'ERROR'];
const ERROR_CODES = [null, 'FLAG_NOT_FOUND', 'TYPE_MISMATCH', 'PARSE_ERROR', 'INVALID_CONTEXT'];

/** Reads `{"$int64": "..."}` back as a BigInt. */
function reviveInt64(_key, v) {
  if (v !== null && typeof v === 'object' && typeof v.$int64 === 'string' && Object.keys(v).length === 1) {
    return BigInt(v.$int64);
  }
  return v;
}

/**
 * JSON.stringify that writes BigInts as exact integer literals (configs and
 * batches may hold integers beyond 2^53, which the engine reads exactly).
 */
function stringify(value) {
  let marker = null;
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v !== 'bigint') return v;
    marker ??= `\u0000${Math.random().toString(36).slice(2)}:`;
    return marker + v.toString();
  });
  if (marker === null) return text;
  const escaped = JSON.stringify(marker).slice(1, -1).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  return text.replace(new RegExp(`"${escaped}(-?\\d+)"`, 'g'), '$1');
}

/**
 * A decision: the value and how it was reached. `value` is `null` when the
 * source is `fallback` (use your own default).
 */
export class Decision {
  constructor(variable, value, source, reason, experiment, rule, choice, errorCode, label) {
    /** The variable's name. */
    this.variable = variable;
    /** The value (any JSON value), or `null` for fallback. */
    this.value = value;
    /** `experiment`, `rollout`, `default` or `fallback`. */
    this.source = source;
    /** `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED` or `ERROR`. */
    this.reason = reason;
    /** The experiment that assigned the value, or `null`. */
    this.experiment = experiment;
    /** The index of the matched rollout rule, or `null`. */
    this.rule = rule;
    /** The index of the assigned experiment choice, or `null`. */
    this.choice = choice;
    /** `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PARSE_ERROR`, `INVALID_CONTEXT` or `null`. */
    this.errorCode = errorCode;
    /** The matched rule's `string` label, or `null`. */
    this.label = label;
  }
  /** The value if it is a number, else `fallback`. */
  number(fallback) {
    return typeof this.value === 'number' ? this.value : fallback;
  }
  /** The value if it is a string, else `fallback`. */
  string(fallback) {
    return typeof this.value === 'string' ? this.value : fallback;
  }
  /** The value if it is a boolean, else `fallback`. */
  boolean(fallback) {
    return typeof this.value === 'boolean' ? this.value : fallback;
  }
}

// The decision code's bits (wasm/src/decision.rs): 0-1 source, 2-4 reason,
// 5-7 error code, 8-10 value kind, 11 experiment, 12 label, 13 rule, 14 choice.
function lastValue(code) {
  switch ((code >>> 8) & 7) {
    case 0:
      return null;
    case 1:
      return w.lastNumber();
    case 2:
      return true;
    case 3:
      return false;
    case 4:
      return w.lastString();
    default:
      return JSON.parse(w.lastJson(), reviveInt64);
  }
}

/**
 * Builds a Decision from the code of the module's decision register.
 * `labels` (optional) caches rule labels by rule index for one variable and
 * config, so a repeated decision does not copy the same label string again.
 */
function readDecision(variable, code, labels) {
  const rule = code & 8192 ? w.lastRule() : null;
  let label = null;
  if (code & 4096) {
    if (labels === undefined || rule === null) label = w.lastLabel();
    else if ((label = labels[rule]) === undefined) label = labels[rule] = w.lastLabel();
  }
  return new Decision(
    variable,
    lastValue(code),
    SOURCES[code & 3],
    REASONS[(code >>> 2) & 7],
    code & 2048 ? w.lastExperiment() : null,
    rule,
    code & 16384 ? w.lastChoice() : null,
    ERROR_CODES[(code >>> 5) & 7],
    label,
  );
}

function decisionFromJson(o) {
  return new Decision(o.variable, o.value, o.source, o.reason, o.experiment, o.rule, o.choice, o.errorCode, o.label);
}

// The wasm-bindgen classes are the public Context and Variable (so the hot
// getters go straight to WebAssembly); these methods complete them.
Object.defineProperties(Context.prototype, {
  getDecision: {
    /** The full decision for `variable` (records a decision event). */
    value: function getDecision(variable) {
      return readDecision(variable.name, this.decide(variable));
    },
  },
  getJSON: {
    /** The value as any JSON value, or `fallback` when nothing in the config decided. */
    value: function getJSON(variable, fallback) {
      const code = this.decide(variable);
      return (code >>> 8) & 7 ? lastValue(code) : fallback;
    },
  },
  facets: {
    /** The context's facets (integers beyond 2^53 as BigInt). */
    get() {
      return JSON.parse(this.facetsJson(), reviveInt64);
    },
  },
});

// ---- client -------------------------------------------------------------------

const ENCODER = new TextEncoder();
const IS_NODE = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;
const MAX_CACHED_VARIABLES = 10000;
/** The hook through which a `Sync` reaches its client (module-private). */
const SYNC_HOOK = Symbol('turnout.sync');

function configBytes(config) {
  if (config instanceof Uint8Array) return config;
  if (config instanceof ArrayBuffer) return new Uint8Array(config);
  if (ArrayBuffer.isView(config)) return new Uint8Array(config.buffer, config.byteOffset, config.byteLength);
  if (typeof config === 'string') return ENCODER.encode(config);
  if (config !== null && typeof config === 'object') {
    let text;
    try {
      text = stringify(config);
    } catch (e) {
      throw new TurnoutError(`config object cannot be serialised: ${e.message}`, 'INVALID_CONFIG', [], { cause: e });
    }
    return ENCODER.encode(text);
  }
  throw new TurnoutError(
    `config must be a string, an object or a Uint8Array, found ${kindOf(config)}`,
    'INVALID_CONFIG',
  );
}

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function requireName(name, what) {
  if (typeof name !== 'string') {
    throw new TurnoutError(`${what} must be a string, found ${kindOf(name)}`, 'INVALID_ARGUMENT');
  }
}

/**
 * A turnout client: holds the compiled config, takes decisions locally, and
 * records decision events and metrics for upload.
 */
export class Client {
  #raw;
  /** name -> {handle, labels, generation}: the one-shot path's handles and rule labels. */
  #vars = new Map();
  /** Bumped by every config update (labels belong to one config). */
  #generation = 0;
  #listeners = { update: new Set(), error: new Set(), notice: new Set() };
  #poller = null;
  /** A config is in force (bootstrap, updateConfig or the poller); `#readyWaiters` wake when it is. */
  #ready = false;
  #readyWaiters = new Set();

  /**
   * @param {object} [options] `config` (string, object or Uint8Array: the
   *   bootstrap config, so the first decision never waits for the network)
   *   plus the engine options: `service`, `isolation`, `decisionEvents`,
   *   `excludeFacets`, `maxQueue`, `maxFoldKeys`, `maxUnackedBatches`,
   *   `clientId`, `sdk`, `sdkVersion`, `platform`, `fixedTimeMs`, `maxConfigBytes`
   *   (the largest config accepted, default 16 MiB: a larger one throws `LIMIT_EXCEEDED`).
   */
  constructor(options = {}) {
    ensureReady();
    if (options === null || typeof options !== 'object') {
      throw new TurnoutError(`options must be an object, found ${kindOf(options)}`, 'INVALID_OPTIONS');
    }
    const { config, ...engine } = options;
    const host = {
      sdk: 'turnout-js',
      sdkVersion: VERSION,
      platform: IS_NODE ? 'wasm-node' : 'wasm-browser',
      clientId: randomId(),
      ...engine,
    };
    this.#raw = new WasmClient(JSON.stringify(host));
    /** The report of the bootstrap config (`null` when none was given). */
    this.initialReport = null;
    if (config !== undefined && config !== null) {
      try {
        this.initialReport = this.updateConfig(config);
      } catch (e) {
        this.#raw.free();
        this.#raw = null;
        throw e;
      }
    }
  }

  #client() {
    if (this.#raw === null) throw new TurnoutError('this client was closed', 'CLOSED');
    return this.#raw;
  }

  #variable(name) {
    let e = this.#vars.get(name);
    if (e === undefined) {
      requireName(name, 'variable name');
      if (this.#vars.size >= MAX_CACHED_VARIABLES) this.#dropVariables();
      e = { handle: this.#client().variable(name), labels: [], generation: this.#generation };
      this.#vars.set(name, e);
    } else if (e.generation !== this.#generation) {
      e.labels = [];
      e.generation = this.#generation;
    }
    return e;
  }

  #dropVariables() {
    for (const e of this.#vars.values()) e.handle.free();
    this.#vars.clear();
  }

  /**
   * Validates, compiles and installs a config. Returns what changed. A bad
   * config throws a TurnoutError (`INVALID_CONFIG`, with every problem, or
   * `LIMIT_EXCEEDED` for one over a limit) and the previous config stays in force. Emits `'update'` when something
   * changed (variables added, removed or changed, or documents rejected).
   */
  updateConfig(config) {
    const report = JSON.parse(this.#client().updateConfig(configBytes(config)));
    this.#installed(report);
    this.#becomeReady();
    return report;
  }

  /** A config was installed (here or by the sync): labels are re-read; `'update'` when something changed. */
  #installed(report) {
    this.#generation++;
    if (report.added.length || report.removed.length || report.changed.length || report.rejected.length) {
      this.emit('update', report);
    }
  }

  #becomeReady() {
    this.#ready = true;
    for (const w of this.#readyWaiters) w(true);
    this.#readyWaiters.clear();
  }

  /**
   * A notice of this client's sync (docs/sync.md section 7): `'notice'`
   * listeners get every one; an installed config is an `'update'`, a failure
   * an `'error'` (a request the poller abandoned to stop is not one).
   */
  #notice(n) {
    if (n.notice === 'applied') {
      // The facade's UpdateReport: rejected documents in camelCase, as updateConfig returns them.
      const rejected = n.report.rejected.map((r) => ({
        problems: r.problems,
        keptLastGood: r.kept_last_good,
        killSwitch: r.kill_switch,
      }));
      const report = { ...n.report, rejected };
      n = { ...n, report };
      this.#installed(report);
    } else if (n.notice === 'ready') this.#becomeReady();
    else if (n.notice === 'error' && n.kind !== 'ABORTED') {
      const extra = { status: n.status, channel: n.channel, repeat: n.repeat };
      if (n.limit) extra.limit = n.limit;
      this.emit('error', new TurnoutError(n.message, n.kind, n.problems ?? [], extra));
    }
    this.emit('notice', n);
    return n;
  }

  /** @internal What a `Sync` needs of its client. */
  [SYNC_HOOK]() {
    return { raw: this.#client(), notice: (n) => this.#notice(n) };
  }

  /**
   * Resolves to `true` once a config is in force (the bootstrap, an
   * `updateConfig`, or the first config the poller installed), or to `false`
   * after `timeoutMs` (default: no limit) without one.
   */
  ready(timeoutMs = Infinity) {
    if (this.#ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok) => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        resolve(ok);
      };
      const timer = Number.isFinite(timeoutMs) ? setTimeout(done, Math.max(0, timeoutMs), false) : undefined;
      this.#readyWaiters.add(done);
    });
  }

  /** Checks a config strictly without installing it: the report an update would give, or a TurnoutError. */
  validate(config) {
    return JSON.parse(this.#client().validate(configBytes(config)));
  }

  /** A variable handle for the prepared path (free it, or let the GC do it). */
  variable(name) {
    requireName(name, 'variable name');
    return this.#client().variable(name);
  }

  /** A prepared context for one unit or request (free it, or let the GC do it). */
  context(facets) {
    const raw = this.#client();
    loadFacets(facets);
    return raw.context();
  }

  /** One decision (the convenient path; records a decision event). */
  getVariable(name, facets) {
    const e = this.#variable(name);
    loadFacets(facets);
    return readDecision(name, this.#raw.decide(e.handle), e.labels);
  }

  /** Every variable assigned by the experiment or domain `name` for these facets, by variable name. */
  getVariables(name, facets) {
    requireName(name, 'experiment or domain name');
    const raw = this.#client();
    loadFacets(facets);
    const out = {};
    for (const d of JSON.parse(raw.getVariables(name), reviveInt64)) out[d.variable] = decisionFromJson(d);
    return out;
  }

  /** The decision plus the steps that led to it (which rule or experiment matched, and why). Records nothing. */
  explain(name, facets) {
    requireName(name, 'variable name');
    const raw = this.#client();
    loadFacets(facets);
    const e = JSON.parse(raw.explain(name), reviveInt64);
    return { decision: decisionFromJson(e.decision), steps: e.steps };
  }

  /** Records a metric, named `service.name` in the events. */
  track(name, value, facets) {
    requireName(name, 'event name');
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TurnoutError(`track value must be a finite number, found ${value}`, 'INVALID_ARGUMENT');
    }
    const raw = this.#client();
    loadFacets(facets);
    raw.track(name, value);
  }

  /** The next batch to upload (`{seq, bytes, events}`), or `null`. Upload `bytes`, then `ack(seq)` or `nack(seq)`. */
  takeBatch(maxEvents = 1000) {
    return this.#client().takeBatch(maxEvents);
  }

  /** Batch `seq` was delivered. Returns `false` for an unknown seq. */
  ack(seq) {
    return this.#client().ack(seq);
  }

  /** Batch `seq` was not delivered: it is handed out again first. Returns `false` for an unknown seq. */
  nack(seq) {
    return this.#client().nack(seq);
  }

  /** Queue counters: recorded, folded, dropped, foldOverflow, queued, inFlight, retrying. */
  trackingStats() {
    return JSON.parse(this.#client().trackingStats());
  }

  /** The `version` of the config in force (`undefined` when it has none). */
  get configVersion() {
    return this.#client().configVersion;
  }

  /** The client id written in batch headers. */
  get clientId() {
    return this.#client().clientId;
  }

  /** Names of every variable the config defines, sorted. */
  variableNames() {
    return this.#client().variableNames();
  }

  /** Moves the clock of a client created with `fixedTimeMs` (tests, replays). */
  setNow(ms) {
    this.#client().setNow(ms);
  }

  /**
   * Listens to `'update'` (an installed config changed something; the
   * listener gets the report), `'error'` (the poller failed; the listener
   * gets a TurnoutError, every time: `repeat` tells a fault already reported)
   * or `'notice'` (every notice of the sync, docs/sync.md section 7).
   * Returns a function that removes the listener.
   */
  on(type, listener) {
    const set = this.#listeners[type];
    if (set === undefined) {
      throw new TurnoutError(`unknown event type ${type}; use 'update', 'error' or 'notice'`, 'INVALID_ARGUMENT');
    }
    if (typeof listener !== 'function') throw new TurnoutError('listener must be a function', 'INVALID_ARGUMENT');
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Removes a listener added with `on`. */
  off(type, listener) {
    this.#listeners[type]?.delete(listener);
  }

  /** @internal Calls the listeners of `type`; a throwing listener is reported asynchronously. */
  emit(type, payload) {
    for (const l of this.#listeners[type]) {
      try {
        l(payload);
      } catch (e) {
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }

  /**
   * Starts polling `configUrl` and uploading events to `eventsUrl`, by the
   * engine's host protocol (docs/sync.md: ETag / If-None-Match, backoff with
   * jitter and Retry-After, the rejected-config rule, staleness). Resolves
   * after the first config poll (success or not: failures are `'error'`
   * events, and logged once through `logger` at `logLevel`). Each request
   * has one deadline, `timeoutMs` (connect, headers and body); a config
   * body is read up to `maxConfigBytes` (see poller.js).
   */
  start(options) {
    this.#client();
    if (this.#poller !== null) throw new TurnoutError('the client is already started', 'INVALID_ARGUMENT');
    this.#poller = new Poller(this, options, (o) => new Sync(this, o), TurnoutError);
    return this.#poller.start();
  }

  /** Stops polling: a config request in progress is aborted; an upload in progress ends by its deadline. */
  async stop() {
    const p = this.#poller;
    this.#poller = null;
    if (p !== null) await p.stop(false);
  }

  /** Fetches the config now (needs `start({configUrl})`); failures are `'error'` events. */
  pollNow() {
    this.#poller?.pollNow();
  }

  /** Uploads every queued event now (needs `start({eventsUrl})`). Resolves to `{sent, failed}`. */
  flush() {
    if (this.#poller === null) return Promise.resolve({ sent: 0, failed: false });
    return this.#poller.flush();
  }

  /** Stops polling, uploads what is queued (one attempt per batch), and frees the client. */
  async close() {
    const p = this.#poller;
    this.#poller = null;
    if (p !== null) await p.stop(true);
    this.free();
  }

  /** Frees the engine client at once (pending events are lost; see `close()`). Safe to call twice. */
  free() {
    if (this.#poller !== null) {
      this.#poller.stop(false);
      this.#poller = null;
    }
    this.#dropVariables();
    if (this.#raw !== null) {
      this.#raw.free();
      this.#raw = null;
    }
  }

  /** `using client = new Client(...)` frees it at the end of the scope. */
  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.free();
  }

  /** `await using client = new Client(...)` closes it (with a final flush). */
  [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    return this.close();
  }
}

// ---- sync ---------------------------------------------------------------------

const ACTIONS = ['wait', 'fetch', 'upload', 'stop'];

/**
 * The engine's host protocol for one client (docs/sync.md), sans I/O: it
 * says what to do next (`next(nowMs)`: fetch the config, upload a batch,
 * wait, stop) and digests what happened (`onFetch`, `onUpload`). `start()`
 * drives one with `fetch` and timers; use it directly to bring your own HTTP.
 * Its notices also reach the client's listeners (`'update'`, `'error'`, `'notice'`).
 */
export class Sync {
  #raw;
  #notice;

  /**
   * `options` as docs/sync.md section 2 (`configUrl`, `eventsUrl`,
   * `pollIntervalMs`, ...); bad ones throw `INVALID_OPTIONS`.
   */
  constructor(client, options = {}) {
    if (!(client instanceof Client)) {
      throw new TurnoutError('new Sync(client, options) takes a Client', 'INVALID_ARGUMENT');
    }
    const { raw, notice } = client[SYNC_HOOK]();
    this.#raw = new WasmSync(raw, JSON.stringify(options));
    this.#notice = notice;
  }

  /**
   * The next action at `nowMs` (monotonic ms): `{action: 'fetch', url, etag,
   * timeoutMs, maxBytes}`, `{action: 'upload', url, seq, events, timeoutMs,
   * bytes}`, `{action: 'wait', ms}` or `{action: 'stop'}`.
   */
  next(nowMs) {
    const s = this.#raw;
    const action = ACTIONS[s.next(nowMs)];
    switch (action) {
      case 'wait':
        return { action, ms: s.waitMs };
      case 'fetch':
        return { action, url: s.url, etag: s.etag ?? null, timeoutMs: s.timeoutMs, maxBytes: s.maxBytes };
      case 'upload':
        return { action, url: s.url, seq: s.seq, events: s.events, timeoutMs: s.timeoutMs, bytes: s.takeBytes() };
      default:
        return { action };
    }
  }

  /**
   * Reports the last fetch: `{status, etag, retryAfter, body}` (body: a
   * Uint8Array or a string) or `{failure, message}` (failure: `NETWORK`,
   * `TIMEOUT`, `TOO_LARGE`, `INCOMPLETE` or `ABORTED`).
   */
  onFetch(nowMs, o) {
    const body = typeof o.body === 'string' ? ENCODER.encode(o.body) : (o.body ?? new Uint8Array(0));
    const { status = 0, etag, retryAfter, failure, message = '' } = o;
    this.#raw.onFetch(nowMs, status, etag ?? undefined, retryAfter ?? undefined, body, failure ?? undefined, message);
  }

  /** Reports the upload of batch `seq`: `{status, retryAfter}` or `{failure, message}`. */
  onUpload(nowMs, seq, o) {
    this.#raw.onUpload(nowMs, seq, o.status ?? 0, o.retryAfter ?? undefined, o.failure ?? undefined, o.message ?? '');
  }

  /** Makes a config fetch due now. */
  pollNow() {
    this.#raw.pollNow();
  }

  /** Makes an upload round due now. */
  flushNow() {
    this.#raw.flushNow();
  }

  /** Stops; with `flush`, queued batches are uploaded first (one attempt each). */
  stop(flush = false) {
    this.#raw.stop(flush);
  }

  /**
   * What happened since the last call, oldest first (docs/sync.md section 7); each also
   * reaches the client's listeners.
   */
  takeNotices() {
    const text = this.#raw.takeNoticesJson();
    return text === '[]' ? [] : JSON.parse(text).map(this.#notice);
  }

  /**
   * `{ready, stale, etag, rejectedEtag, configFailures, uploadFailures,
   * nextFetchMs, nextFlushMs, batchesAcked, batchesDropped, stopped}`.
   */
  state() {
    return JSON.parse(this.#raw.stateJson());
  }

  /** Frees the machine now (otherwise the garbage collector does). Safe to call twice. */
  free() {
    this.#raw?.free();
    this.#raw = null;
  }
}

// ---- batches ------------------------------------------------------------------

/**
 * Decodes an event batch (what the client uploads) into `{header, events}`;
 * integers beyond 2^53 come back as BigInt. A corrupted batch throws
 * (`BATCH_CHECKSUM`, `NOT_A_BATCH`, `BATCH_VERSION`, `BATCH_MALFORMED`). For collectors and tests.
 */
export function decodeBatch(bytes) {
  ensureReady();
  if (!(bytes instanceof Uint8Array)) throw new TurnoutError('decodeBatch takes a Uint8Array', 'INVALID_ARGUMENT');
  return JSON.parse(w.decodeBatch(bytes), reviveInt64);
}

/** Encodes `{header, events}` (the form `decodeBatch` returns) into batch bytes. */
export function encodeBatch(batch) {
  ensureReady();
  let text;
  try {
    text = stringify(batch);
  } catch (e) {
    throw new TurnoutError(`batch cannot be serialised: ${e.message}`, 'INVALID_BATCH', [], { cause: e });
  }
  return w.encodeBatch(text);
}

/** The engine's version and the evaluation contract (spec) version it implements. */
export function engineInfo() {
  ensureReady();
  return JSON.parse(w.engineInfo());
}
