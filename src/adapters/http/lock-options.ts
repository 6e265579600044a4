/**
 * `withLock` options → ONE configured guard (`HttpLock`), built at construction: core's
 * RequestLock (mode lock | replay, with its LockGuard or IdempotencyGuard, key, scope, wait and
 * onStoreError) plus what HTTP adds (`onBusy`, and in replay mode what part of a response is
 * stored). Framework-agnostic: `Req` is what callbacks receive (Express `req`, Koa `ctx`), and
 * `RequestAccess` says how to read the Node request, method, URL and body from it.
 */
import {
  ConfigError,
  DEFAULTS,
  IdempotencyGuard,
  LockGuard,
  RequestLock,
  formatValue,
  optionNames,
  optionalFunction,
  parseDuration,
  parseWait,
  readOptions,
  validateOnStoreError,
  type Awaitable,
  type Duration,
  type IdempotencyStore,
  type LockMode,
  type LockRequestReadings,
  type LockStore,
  type Logger,
  type OnStoreError,
} from '../../core/index.js';
import { compileFirstKey, compileKeySpec, keys, validateKeySpec, type KeySpec } from '../../keys/index.js';
import { requestFingerprint } from './idempotency-fingerprint.js';
import { replayHeaderNames } from './idempotency-headers.js';
import { idempotencyKeyValues, readIdempotencyKey, type HeaderLines } from './idempotency-key.js';

export type { BusyInfo, LockInfo } from '../../core/index.js';

export interface ReplayOptions<Req> {
  /** How long a finished response is replayed. @default DEFAULTS.replayTtlMs (24 h) */
  ttl?: Duration | undefined;
  /** The request fingerprint (same key + different fingerprint → 422). @default method + path + sorted query + body (see idempotency-fingerprint.ts) */
  fingerprint?: ((req: Req) => Awaitable<string>) | undefined;
  /** Largest body stored; a larger response is recorded as "not replayable" (retries get 409). @default DEFAULTS.replayMaxBodyBytes (1 MiB) */
  maxBodyBytes?: number | undefined;
  /** Store and replay 5xx responses (except 503) instead of aborting the record so a retry runs again. @default false */
  storeServerErrors?: boolean | undefined;
  /** Extra response header names to replay, besides DEFAULT_REPLAYED_HEADERS. Set-Cookie and the like are refused. */
  headers?: readonly string[] | undefined;
}

export interface WithLockOptionsBase<Req, OnBusy> {
  /** @default the process-wide MemoryStore */
  store?: (LockStore & IdempotencyStore) | LockStore | IdempotencyStore | undefined;
  /** Extractor(s) of the lock key; a request where none yields gets 400. @default the Idempotency-Key header, scoped by `scope` */
  key?: KeySpec<Req> | undefined;
  /** Who the key belongs to: applies to the default key, to every replay record, and to a custom `key` when given explicitly. @default keys.ip() */
  scope?: KeySpec<Req> | undefined;
  /** Lease length (≥ MIN_LEASE_TTL_MS, 150 ms), auto-extended every ttl/3 while the handler runs. @default DEFAULTS.lockTtlMs (30 s) */
  ttl?: Duration | undefined;
  /** Longest the lease is extended, from acquisition. @default max(ttl, DEFAULTS.lockMaxHoldMs) (5 min) */
  maxHold?: Duration | undefined;
  /** ms a contender polls for the lock (or, with replay, for the duplicate's response) before 409. @default 0 */
  wait?: Duration | undefined;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** On store failure or timeout: 503 (`'closed'`) or run the handler without a lock (`'open'`). @default 'closed' */
  onStoreError?: OnStoreError<Req> | undefined;
  /** Called instead of the default 409 when the key is busy; may send its own response. */
  onBusy?: OnBusy | undefined;
  /** Store the finished response and replay it to retries with the same Idempotency-Key. @default false */
  replay?: boolean | ReplayOptions<Req> | undefined;
  /** Key prefix. @default DEFAULTS.lockPrefix (`'lk:'`), or DEFAULTS.idempotencyPrefix (`'idem:'`) with replay */
  prefix?: string | undefined;
  /** @default console */
  logger?: Logger | undefined;
}

/** Replay mode's HTTP side: the request fingerprint, and what part of a finished response is stored. */
export interface ReplayConfig<Req = unknown> {
  /** The request fingerprint (same key + different fingerprint → 422); checked to be a string. */
  readonly fingerprint: (req: Req) => Promise<string>;
  readonly maxBodyBytes: number;
  readonly storeServerErrors: boolean;
  /** Lower-case names of the response headers stored and replayed. */
  readonly headers: ReadonlySet<string>;
}

/** One withLock middleware, configured. */
export interface HttpLock<Req, OnBusy> {
  readonly guard: RequestLock<Req>;
  readonly onBusy: OnBusy | undefined;
  /** Set in replay mode. */
  readonly replay: ReplayConfig<Req> | undefined;
  readonly logger: Logger;
  readonly access: RequestAccess<Req>;
}

/** How the guard reads what it needs from the adapter's request object. */
export interface RequestAccess<Req> {
  /** The Node request, or anything with its header field lines (for the Idempotency-Key lines). */
  node(req: Req): HeaderLines;
  method(req: Req): string;
  /** The request target as received (`req.originalUrl`, `ctx.originalUrl`). */
  url(req: Req): string;
  /** The parsed body, if a body parser ran. */
  body(req: Req): unknown;
}

const OPTION_NAMES = optionNames<WithLockOptionsBase<unknown, unknown>>({
  store: true,
  key: true,
  scope: true,
  ttl: true,
  maxHold: true,
  wait: true,
  timeout: true,
  onStoreError: true,
  onBusy: true,
  replay: true,
  prefix: true,
  logger: true,
});
const REPLAY_OPTION_NAMES = optionNames<ReplayOptions<unknown>>({ ttl: true, fingerprint: true, maxBodyBytes: true, storeServerErrors: true, headers: true });

/** Largest accepted `replay.maxBodyBytes` (64 MiB): a stored response lives in the store for `replay.ttl`. */
export const MAX_REPLAY_BODY_BYTES = 64 * 1024 * 1024;

/** @throws ConfigError naming the bad option. */
export function resolveWithLock<Req, OnBusy>(options: unknown, owner: string, access: RequestAccess<Req>): HttpLock<Req, OnBusy> {
  const defined = readOptions(options, OPTION_NAMES, owner, "{ store, ttl: '30s', replay: { ttl: '24h' } }");
  const replayOption = defined.replay ?? false;
  // The guard parses the options it shares with LockGuard / IdempotencyGuard (store, ttl, maxHold,
  // timeout, prefix, logger): one parser and one set of defaults for both entry points.
  const { store, ttl, maxHold, timeout, prefix, logger: loggerOption } = defined;
  const guardOptions = { store, ttl, maxHold, timeout, prefix, logger: loggerOption };
  let mode: LockMode;
  let replay: ReplayConfig<Req> | undefined;
  if (replayOption === false) {
    mode = { kind: 'lock', guard: new LockGuard(guardOptions as ConstructorParameters<typeof LockGuard>[0]) };
  } else {
    const parsed = parseReplayOptions<Req>(replayOption, access);
    replay = parsed.config;
    mode = { kind: 'replay', guard: new IdempotencyGuard({ ...guardOptions, replayTtl: parsed.ttlMs } as ConstructorParameters<typeof IdempotencyGuard>[0]) };
  }
  const { logger } = mode.guard;

  const key = defined.key === undefined ? undefined : compileFirstKey<Req>(validateKeySpec(defined.key, 'key'), 'key');
  // A custom key names a resource all clients share (e.g. a cart), unless a scope is asked for;
  // the Idempotency-Key and every replay record are always scoped, so clients never collide.
  const scoped = key === undefined || replay !== undefined || defined.scope !== undefined;
  // Proxy-setting warnings of the default scope (and of the IP fallback) go to the configured logger.
  const scopeSpec = defined.scope === undefined ? keys.ip({ logger }) : validateKeySpec(defined.scope, 'scope');
  const scope = scoped ? compileKeySpec<Req>(scopeSpec as KeySpec<Req>, { logger, option: 'scope' }) : undefined;

  const guard = new RequestLock<Req>({
    mode,
    key,
    scope,
    waitMs: parseWait(defined.wait ?? DEFAULTS.lockWaitMs, 'wait'),
    onStoreError: validateOnStoreError<Req>(defined.onStoreError) ?? DEFAULTS.lockOnStoreError,
  });
  return {
    guard,
    onBusy: optionalFunction(defined.onBusy, 'onBusy', 'a function (…, info) => void that may send its own response') as OnBusy | undefined,
    replay,
    logger,
    access,
  };
}

/**
 * What withLock reads from the request before asking core: its Idempotency-Key (when that is the
 * key), in replay mode its fingerprint (not needed when the key is unusable: that is a 400), and
 * when the guard waits for a busy key, the signal of the client leaving (`clientGone`, made only then).
 */
export async function readLockRequest<Req>(config: HttpLock<Req, unknown>, req: Req, clientGone: () => AbortSignal): Promise<LockRequestReadings> {
  const idempotencyKey = config.guard.keyedByIdempotencyKey ? readIdempotencyKey(idempotencyKeyValues(config.access.node(req))) : undefined;
  const gone = config.guard.waits ? clientGone() : undefined; // watched only by a request that may wait
  if (config.replay === undefined || idempotencyKey?.ok === false) return { idempotencyKey, clientGone: gone };
  return { idempotencyKey, fingerprint: await config.replay.fingerprint(req), clientGone: gone };
}

function parseReplayOptions<Req>(value: unknown, access: RequestAccess<Req>): { config: ReplayConfig<Req>; ttlMs: number } {
  const defined = readOptions(value === true ? {} : value, REPLAY_OPTION_NAMES, 'replay', "{ ttl: '24h' }");
  const maxBodyBytes = defined.maxBodyBytes ?? DEFAULTS.replayMaxBodyBytes;
  if (typeof maxBodyBytes !== 'number' || !Number.isInteger(maxBodyBytes) || maxBodyBytes < 0 || maxBodyBytes > MAX_REPLAY_BODY_BYTES) {
    throw new ConfigError(`replay.maxBodyBytes must be an integer from 0 to ${MAX_REPLAY_BODY_BYTES}; got ${formatValue(defined.maxBodyBytes)}`);
  }
  const storeServerErrors = defined.storeServerErrors ?? false;
  if (typeof storeServerErrors !== 'boolean') {
    throw new ConfigError(`replay.storeServerErrors must be true or false; got ${formatValue(defined.storeServerErrors)}`);
  }
  const custom = optionalFunction(defined.fingerprint, 'replay.fingerprint', 'a function (req) => string') as ((req: Req) => Awaitable<string>) | undefined;
  const fingerprint = custom ?? ((req: Req) => requestFingerprint({ method: access.method(req), url: access.url(req), body: access.body(req) }));
  return {
    ttlMs: parseDuration(defined.ttl ?? DEFAULTS.replayTtlMs, 'replay.ttl'),
    config: { fingerprint: checkedFingerprint(fingerprint), maxBodyBytes, storeServerErrors, headers: replayHeaderNames(defined.headers, 'replay.headers') },
  };
}

/** A fingerprint function whose answer must be a string (a ConfigError otherwise, answered 500). */
function checkedFingerprint<Req>(fingerprint: (req: Req) => Awaitable<string>): (req: Req) => Promise<string> {
  return async (req) => {
    const value: unknown = await fingerprint(req);
    if (typeof value !== 'string') throw new ConfigError(`replay.fingerprint must return a string; got ${formatValue(value)}`);
    return value;
  };
}
