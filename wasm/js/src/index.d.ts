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
  | 'NETWORK'
  | 'HTTP'
  | 'TIMEOUT'
  | 'TOO_LARGE';

/** The one error type this package throws (and emits as `'error'`). */
export class TurnoutError extends Error {
  constructor(message: string, code: TurnoutErrorCode, problems?: Problem[], extra?: { cause?: unknown; status?: number });
  readonly name: 'TurnoutError';
  /** A stable code. */
  readonly code: TurnoutErrorCode;
  /** For `INVALID_CONFIG` (and `LIMIT_EXCEEDED` from a config): every problem, with document and field. */
  readonly problems: Problem[];
  /** For `HTTP`: the response status. */
  readonly status?: number;
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

export interface StartOptions {
  /** Where the config is fetched from (GET, with If-None-Match). */
  configUrl?: string | URL;
  /** Where event batches are POSTed (application/octet-stream). */
  eventsUrl?: string | URL;
  /** Config poll interval (default 30,000 ms). */
  intervalMs?: number;
  /** Event upload interval (default: `intervalMs`). */
  flushIntervalMs?: number;
  /** Longest delay after repeated failures (default 300,000 ms). */
  maxBackoffMs?: number;
  /**
   * The one deadline of each request (default 10,000 ms): connect, headers and the whole body
   * together. When it passes the request is aborted and the attempt fails with code `TIMEOUT`.
   */
  timeoutMs?: number;
  /**
   * The largest config body read (default 16 MiB, the engine's limit); a larger one fails with
   * code `TOO_LARGE` (from Content-Length before reading, else as soon as the limit is passed).
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
  /** Listens to poller failures (network, HTTP, timeouts, bodies over the limit, rejected configs). */
  on(type: 'error', listener: (error: TurnoutError) => void): () => void;
  off(type: 'update' | 'error', listener: (...args: any[]) => void): void;
  /** Starts polling and uploading; resolves after the first config poll. */
  start(options: StartOptions): Promise<void>;
  /** Stops polling; a config request in progress is aborted. */
  stop(): Promise<void>;
  /** Uploads every queued event now. */
  flush(): Promise<{ sent: number; failed: boolean }>;
  /** Stops polling, uploads what is queued, frees the client. */
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
