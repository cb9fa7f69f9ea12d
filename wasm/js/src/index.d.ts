// Type declarations of the turnout npm package.

/** The package version. */
export const VERSION: string;

/**
 * A facet value. Ids above 2^53 (Number.MAX_SAFE_INTEGER) must be passed as a
 * `bigint` (or a decimal string, or `{ $int64: "..." }`): a JavaScript number
 * cannot hold them and would bucket a different unit than Rust, Go or Kotlin.
 * `null` and `undefined` mean "absent".
 */
export type FacetValue = number | string | boolean | bigint | { $int64: string } | null | undefined;

/** The facets of one unit or request: `{ pax: 7, city: 10, booking: "ADR-1" }` or a Map. */
export type Facets = Record<string, FacetValue> | Map<string, FacetValue>;

/** Any JSON value a variable can take. */
export type JsonValue = null | boolean | number | string | bigint | JsonValue[] | { [key: string]: JsonValue };

/** Engine options (all optional). */
export interface EngineOptions {
  /** The service this client runs in (prefixes tracked event names: `service.name`). */
  service?: string;
  /** `'perDocument'` (default: a broken document keeps its last good version) or `'strict'`. */
  isolation?: 'perDocument' | 'strict';
  /** Which decisions are recorded: `'all'` (default), `'experiments'` or `'off'`. */
  decisionEvents?: 'all' | 'experiments' | 'off';
  /** Facet names never recorded in events (PII). */
  excludeFacets?: string[];
  /** Queue limit in events (default 10,000; the oldest are dropped and counted). */
  maxQueue?: number;
  /** Fold table limit in keys (default 10,000). */
  maxFoldKeys?: number;
  /** Batches taken and not yet acked kept for retry (default 64). */
  maxUnackedBatches?: number;
  /** Client instance id in batch headers (default: a random UUID). */
  clientId?: string;
  /** SDK name in batch headers (default `turnout-js`). */
  sdk?: string;
  /** SDK version in batch headers (default: this package's version). */
  sdkVersion?: string;
  /** Platform in batch headers (default `wasm-node` or `wasm-browser`). */
  platform?: string;
  /** Pin the clock at this unix time in ms (tests, replays); move it with `setNow`. */
  fixedTimeMs?: number;
  /** The largest config accepted, in bytes (default 16 MiB); a larger one throws `LIMIT_EXCEEDED`. */
  maxConfigBytes?: number;
}

/** A config: JSON text, a parsed object, or the bytes of the JSON text. */
export type Config = string | object | Uint8Array | ArrayBuffer;

export interface ClientOptions extends EngineOptions {
  /** The bootstrap config: the first decision never waits for the network. */
  config?: Config;
}

/** One problem found in a config. */
export interface Problem {
  /** The document, e.g. `rollout "automatedMessageDelay"`, or `bundle`. */
  document: string;
  /** A JSON path inside the document, e.g. `rollouts[0].constraints[1].op`. */
  field: string;
  /** What is wrong. */
  message: string;
}

/** What a config update changed. */
export interface UpdateReport {
  /** The bundle's `version`, if it has one. */
  version: number | null;
  /** Variables that did not exist before (sorted). */
  added: string[];
  /** Variables that no longer exist (sorted). */
  removed: string[];
  /** Variables whose documents changed (sorted): a kill switch flip shows up here. */
  changed: string[];
  /** Documents rejected inside an accepted bundle (per-document isolation). */
  rejected: { problems: Problem[]; keptLastGood: boolean; killSwitch: boolean }[];
  /** Things that load but are almost certainly mistakes. */
  warnings: Problem[];
}

/** Error codes of {@link TurnoutError}. */
export type TurnoutErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_FACETS'
  | 'INVALID_OPTIONS'
  | 'INVALID_ARGUMENT'
  | 'INVALID_BATCH'
  | 'NOT_A_BATCH'
  | 'BATCH_VERSION'
  | 'BATCH_CHECKSUM'
  | 'BATCH_MALFORMED'
  /**
   * A limit on hostile input was exceeded (docs/spec.md, section 17): a config over `maxConfigBytes`,
   * nested deeper than 64 or expanding to too many constraints (the previous config stays in force), or a
   * batch that would decode to more than its expansion limit. The message names the limit, e.g.
   * "limit `expanded_constraints` exceeded: found 10000000, the maximum is 36384".
   */
  | 'LIMIT_EXCEEDED'
  | 'CLOSED'
  /** The poller (docs/sync.md section 8): no HTTP response (refused, reset, DNS, TLS). */
  | 'NETWORK'
  /** The poller: a status the protocol counts as a failure (`status` says which). */
  | 'HTTP'
  /** The poller: no complete response within `timeoutMs` (connect, headers and body together). */
  | 'TIMEOUT'
  /** The poller: a config body over `maxConfigBytes`. */
  | 'TOO_LARGE'
  /** The poller: a body that ended before its Content-Length, or a cut chunked body. */
  | 'INCOMPLETE'
  /** The poller: a request abandoned to stop (a debug log line; never an `'error'` event). */
  | 'ABORTED';

/** The one error type this package throws (and emits as `'error'`). */
export class TurnoutError extends Error {
  constructor(
    message: string,
    code: TurnoutErrorCode,
    problems?: Problem[],
    extra?: {
      cause?: unknown;
      status?: number;
      channel?: 'config' | 'events';
      repeat?: boolean;
      limit?: { limit: string; max: number; found: number };
    },
  );
  readonly name: 'TurnoutError';
  /** A stable code. */
  readonly code: TurnoutErrorCode;
  /**
   * For `INVALID_CONFIG` (and `LIMIT_EXCEEDED` from a config) thrown by `updateConfig` / `validate`: every
   * problem, with document and field. Empty on the poller's `'error'` events (the message lists them).
   */
  readonly problems: Problem[];
  /** For `HTTP` (and a config the server served and the engine rejected: 200): the response status. */
  readonly status?: number;
  /** Poller errors: which side failed, config sync or event upload. */
  readonly channel?: 'config' | 'events';
  /** Poller errors: the same fault as the previous error of this channel (it was logged once already). */
  readonly repeat?: boolean;
  /** `LIMIT_EXCEEDED` from a poller: the limit's name, its maximum and what was found. */
  readonly limit?: { limit: string; max: number; found: number };
}

export type Source = 'experiment' | 'rollout' | 'default' | 'fallback';
export type Reason = 'TARGETING_MATCH' | 'SPLIT' | 'DEFAULT' | 'DISABLED' | 'ERROR';
export type ErrorCode = 'FLAG_NOT_FOUND' | 'TYPE_MISMATCH' | 'PARSE_ERROR' | 'INVALID_CONTEXT';

/** A decision: the value and how it was reached. */
export class Decision {
  private constructor();
  /** The variable's name. */
  readonly variable: string;
  /** The value, or `null` when the source is `fallback` (use your own default). */
  readonly value: JsonValue;
  /** Where the value came from. */
  readonly source: Source;
  /** Why. */
  readonly reason: Reason;
  /** The experiment that assigned the value. */
  readonly experiment: string | null;
  /** The matched rollout rule's index. */
  readonly rule: number | null;
  /** The assigned choice's index. */
  readonly choice: number | null;
  /** Set when `reason` is `ERROR`. */
  readonly errorCode: ErrorCode | null;
  /** The matched rule's `string` label. */
  readonly label: string | null;
  /** The value if it is a number, else `fallback`. */
  number(fallback: number): number;
  /** The value if it is a string, else `fallback`. */
  string(fallback: string): string;
  /** The value if it is a boolean, else `fallback`. */
  boolean(fallback: boolean): boolean;
}

/** A variable handle: resolved once per config version, usable with any context. */
export class Variable {
  private constructor();
  /** The variable's name. */
  readonly name: string;
  /** Frees the handle now (otherwise the garbage collector does). */
  free(): void;
  [Symbol.dispose](): void;
}

/**
 * The facets of one unit or request, prepared once: the hot path. Every
 * getter takes a {@link Variable} and your default, and records a decision
 * event (repeats fold into a count).
 */
export class Context {
  private constructor();
  /** The value as a number, or `fallback`. Integers above 2^53 lose precision: use `getBigInt`. */
  getNumber(variable: Variable, fallback: number): number;
  /** The value as an exact 64-bit integer, or `fallback`. */
  getBigInt(variable: Variable, fallback: bigint): bigint;
  /** The value as a string, or `fallback`. */
  getString(variable: Variable, fallback: string): string;
  /** The value as a boolean, or `fallback`. */
  getBoolean(variable: Variable, fallback: boolean): boolean;
  /** The value as any JSON value, or `fallback` when nothing in the config decided. */
  getJSON<T = JsonValue>(variable: Variable, fallback?: T): JsonValue | T;
  /** The full decision. */
  getDecision(variable: Variable): Decision;
  /** Records a metric with this context's facets. */
  track(name: string, value: number): void;
  /** The context's facets (integers beyond 2^53 as BigInt). */
  readonly facets: Record<string, number | string | boolean | bigint>;
  /** Frees the context now (otherwise the garbage collector does). */
  free(): void;
  [Symbol.dispose](): void;
}

/** A batch of events to upload. */
export interface Batch {
  /** Sequence number: `ack(seq)` after a successful upload, `nack(seq)` otherwise. */
  seq: number;
  /** The encoded batch (POST it as `application/octet-stream`). */
  bytes: Uint8Array;
  /** How many events (folded records) it holds. */
  events: number;
}

export interface TrackingStats {
  recorded: number;
  folded: number;
  dropped: number;
  foldOverflow: number;
  queued: number;
  inFlight: number;
  retrying: number;
}

/** Where log lines go: `console` (the default), or any object with these methods (pino, winston, ...). */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * `client.start()` options. The engine's host protocol (docs/sync.md) decides every poll and upload;
 * `intervalMs` ... `staleAfterPolls` are its options (`intervalMs` is its `pollIntervalMs`).
 */
export interface StartOptions {
  /** Where the config is fetched from (GET, with If-None-Match). */
  configUrl?: string | URL;
  /** Where event batches are POSTed (application/octet-stream). */
  eventsUrl?: string | URL;
  /** Config poll interval (default 30,000 ms). */
  intervalMs?: number;
  /** Event upload interval (default: `intervalMs`). */
  flushIntervalMs?: number;
  /** Longest delay after repeated failures (default 300,000 ms; never below an interval). */
  maxBackoffMs?: number;
  /**
   * The one deadline of each request (default 10,000 ms): connect, headers and the whole body
   * together. When it passes the request is aborted and the attempt fails with code `TIMEOUT`.
   */
  timeoutMs?: number;
  /** Every delay is spread over +-`jitter` of itself, in [0, 1) (default 0.1). */
  jitter?: number;
  /** Seed of the jitter (default: a random one). */
  seed?: number;
  /** Polls without a confirmed config before the client is stale (a `'stale'` notice; default 5). */
  staleAfterPolls?: number;
  /**
   * The largest config body read (default: the client's `maxConfigBytes`, 16 MiB); a larger one fails
   * with code `TOO_LARGE` (from Content-Length before reading, else as soon as the limit is passed).
   */
  maxConfigBytes?: number;
  /** Events per uploaded batch (default 1,000). */
  maxBatchEvents?: number;
  /** Extra request headers (e.g. authorization); not sent with beacons. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global fetch). */
  fetch?: typeof fetch;
  /** In browsers, send queued events with navigator.sendBeacon on pagehide / hidden (default true). */
  beacon?: boolean;
  /**
   * The least level logged (default `'info'`): errors and staleness are `warn` (each fault once, however
   * long it lasts), a dropped batch `error`, readiness, recoveries and config changes `info`.
   */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Where log lines go (default `console`; `null`: nowhere). */
  logger?: Logger | null;
}

/** Options of a {@link Sync} (docs/sync.md section 2); one of the URLs is required. */
export interface SyncOptions {
  configUrl?: string;
  eventsUrl?: string;
  /** Default 30,000. */
  pollIntervalMs?: number;
  /** Default: `pollIntervalMs`. */
  flushIntervalMs?: number;
  /** Default 300,000. */
  maxBackoffMs?: number;
  /** Default 10,000. */
  timeoutMs?: number;
  /** In [0, 1); default 0.1. */
  jitter?: number;
  /** Default 0. */
  seed?: number;
  /** Default 1,000. */
  maxBatchEvents?: number;
  /** Default 5. */
  staleAfterPolls?: number;
}

/** What the host does next (docs/sync.md section 1). */
export type SyncAction =
  | { action: 'fetch'; url: string; etag: string | null; timeoutMs: number; maxBytes: number }
  | { action: 'upload'; url: string; seq: number; events: number; timeoutMs: number; bytes: Uint8Array }
  | { action: 'wait'; ms: number }
  | { action: 'stop' };

/** The codes of a request that got no usable response. */
export type SyncFailure = 'NETWORK' | 'TIMEOUT' | 'TOO_LARGE' | 'INCOMPLETE' | 'ABORTED';

/** What a request gave: a complete response, or a failure. */
export type SyncOutcome =
  | { status: number; etag?: string | null; retryAfter?: string | null; body?: Uint8Array | string }
  | { failure: SyncFailure; message?: string };

/** Something the host should tell its user (docs/sync.md section 7); `'notice'` listeners get every one. */
export type SyncNotice =
  | { notice: 'ready' }
  | { notice: 'applied'; report: UpdateReport; etag: string | null }
  | {
      notice: 'error';
      channel: 'config' | 'events';
      kind: TurnoutErrorCode;
      status: number | null;
      message: string;
      /** The same fault as the channel's previous error: logged once already. */
      repeat: boolean;
      /** A rejected config's problems (kind `INVALID_CONFIG`). */
      problems?: Problem[];
      /** The limit a rejected config exceeded (kind `LIMIT_EXCEEDED`): its name, maximum and what was found. */
      limit?: { limit: string; max: number; found: number };
    }
  | { notice: 'recovered'; channel: 'config' | 'events'; failures: number }
  | { notice: 'stale'; sinceMs: number }
  | { notice: 'fresh' }
  | { notice: 'dropped'; seq: number; events: number; status: number };

/** The state of a {@link Sync}. */
export interface SyncState {
  ready: boolean;
  stale: boolean;
  etag: string | null;
  rejectedEtag: string | null;
  configFailures: number;
  uploadFailures: number;
  nextFetchMs: number | null;
  nextFlushMs: number | null;
  batchesAcked: number;
  batchesDropped: number;
  stopped: boolean;
}

/**
 * The engine's host protocol for one client, without I/O (docs/sync.md): `client.start()` drives one
 * with `fetch` and timers; use it directly to bring your own HTTP. Its notices also reach the client's
 * listeners (`'update'`, `'error'`, `'notice'`).
 */
export class Sync {
  /** Throws `INVALID_OPTIONS` for bad options. */
  constructor(client: Client, options: SyncOptions);
  /** The next action at host time `nowMs` (any monotonic milliseconds). */
  next(nowMs: number): SyncAction;
  /** Reports the last fetch. */
  onFetch(nowMs: number, outcome: SyncOutcome): void;
  /** Reports the upload of batch `seq`. */
  onUpload(nowMs: number, seq: number, outcome: SyncOutcome): void;
  /** Makes a config fetch due now. */
  pollNow(): void;
  /** Makes an upload round due now. */
  flushNow(): void;
  /** Stops; with `flush` (default false), queued batches are uploaded first (one attempt each). */
  stop(flush?: boolean): void;
  /** What happened since the last call, oldest first. */
  takeNotices(): SyncNotice[];
  state(): SyncState;
  /** Frees the machine now (otherwise the garbage collector does). */
  free(): void;
}

export interface Explanation {
  decision: Decision;
  /** Human-readable steps, in evaluation order. */
  steps: string[];
}

/** A turnout client. */
export class Client {
  constructor(options?: ClientOptions);
  /** The report of the bootstrap config (`null` when none was given). */
  readonly initialReport: UpdateReport | null;
  /**
   * Installs a config; throws a TurnoutError (`INVALID_CONFIG`, or `LIMIT_EXCEEDED` for one over a limit)
   * and keeps the old one if it is bad.
   * Emits `'update'` when variables were added, removed or changed, or documents were rejected.
   */
  updateConfig(config: Config): UpdateReport;
  /** Checks a config strictly without installing it. */
  validate(config: Config): UpdateReport;
  /** A variable handle for the prepared path. */
  variable(name: string): Variable;
  /**
   * A prepared context for one unit or request. Facets over a limit (more than 1,024, a name over 1 KiB,
   * a value over 8 KiB) give a context whose every decision is the caller's default with reason `ERROR`
   * and error code `INVALID_CONTEXT`.
   */
  context(facets?: Facets): Context;
  /** One decision (the convenient path; facets over a limit: `INVALID_CONTEXT`, as for `context`). */
  getVariable(name: string, facets?: Facets): Decision;
  /** Every variable assigned by the experiment or domain `name`, by variable name. */
  getVariables(name: string, facets?: Facets): Record<string, Decision>;
  /** The decision plus the steps that led to it. Records nothing. */
  explain(name: string, facets?: Facets): Explanation;
  /** Records a metric (`service.name`). */
  track(name: string, value: number, facets?: Facets): void;
  /** The next batch to upload, or `null`. */
  takeBatch(maxEvents?: number): Batch | null;
  /** Batch `seq` was delivered. */
  ack(seq: number): boolean;
  /** Batch `seq` was not delivered: it comes back first. */
  nack(seq: number): boolean;
  /** Queue counters. */
  trackingStats(): TrackingStats;
  /** The `version` of the config in force. */
  readonly configVersion: number | undefined;
  /** The client id written in batch headers. */
  readonly clientId: string;
  /** Names of every variable the config defines, sorted. */
  variableNames(): string[];
  /** Moves the clock of a client created with `fixedTimeMs`. */
  setNow(ms: number): void;
  /** Listens to config updates that changed something; returns a function that removes the listener. */
  on(type: 'update', listener: (report: UpdateReport) => void): () => void;
  /**
   * Listens to poller failures (network, HTTP, timeouts, bodies over the limit or cut short, rejected
   * configs), every attempt: `repeat` marks a fault already reported (and logged once).
   */
  on(type: 'error', listener: (error: TurnoutError) => void): () => void;
  /** Listens to every notice of the sync (docs/sync.md section 7). */
  on(type: 'notice', listener: (notice: SyncNotice) => void): () => void;
  off(type: 'update' | 'error' | 'notice', listener: (...args: any[]) => void): void;
  /** Resolves to `true` once a config is in force, or `false` after `timeoutMs` (default: no limit). */
  ready(timeoutMs?: number): Promise<boolean>;
  /** Starts polling and uploading; resolves after the first config poll. */
  start(options: StartOptions): Promise<void>;
  /** Fetches the config now (after `start({configUrl})`). */
  pollNow(): void;
  /** Stops polling; a config request in progress is aborted. */
  stop(): Promise<void>;
  /** Uploads every queued event now. */
  flush(): Promise<{ sent: number; failed: boolean }>;
  /** Stops polling, uploads what is queued (one attempt per batch), frees the client. */
  close(): Promise<void>;
  /** Frees the client now (queued events are lost). */
  free(): void;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The JSON form of a decoded batch. */
export interface DecodedBatch {
  header: {
    clientId: string;
    seq: number;
    createdAtMs: number;
    sdk: string;
    sdkVersion: string;
    platform: string;
    dropped: number;
    foldOverflow: number;
  };
  events: Array<{
    kind: 'decision' | 'track';
    time: number;
    count: number;
    service: string;
    name: string;
    value: JsonValue;
    /** Decision events: the value's exact JSON text. */
    valueText?: string;
    source?: Source;
    experiment?: string | null;
    rule?: number | null;
    choice?: number | null;
    facets: Record<string, number | string | boolean | bigint>;
  }>;
}

/**
 * Decodes an uploaded batch (for collectors and tests); throws on corrupted bytes, and with code
 * `LIMIT_EXCEEDED` for a batch that would decode to more than 128 times its size plus 64 KiB.
 */
export function decodeBatch(bytes: Uint8Array): DecodedBatch;
/** Encodes the JSON form of a batch into its bytes. */
export function encodeBatch(batch: DecodedBatch): Uint8Array;
/** The engine's version and the spec version it implements. */
export function engineInfo(): { version: string; specVersion: number };
