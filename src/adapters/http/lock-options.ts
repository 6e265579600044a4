/**
 * `withLock` options → one validated config, built once at construction. Framework-agnostic:
 * `Req` is what callbacks receive (Express `req`, Koa `ctx`); `OnBusy` is the adapter's hook type.
 * Explicit `undefined` counts as absent; unknown option names are a ConfigError.
 */
import { ConfigError, type StoreError, type StoreTimeoutError } from '../../core/errors.js';
import { DEFAULTS } from '../../core/defaults.js';
import { formatValue, parseDuration, type Duration } from '../../core/duration.js';
import { IdempotencyGuard } from '../../core/idempotency.js';
import { LockGuard, type LockGuardOptions } from '../../core/lock-guard.js';
import { parseWait, requireOptionsObject } from '../../core/lock/options.js';
import { optionalFunction, rejectUnknownOptions, validateOnStoreError, type Awaitable } from '../../core/options.js';
import type { FailureMode, Logger } from '../../core/store-call.js';
import type { Store } from '../../core/store.js';
import { compileKeySpec, keys, validateKeySpec, type KeyResolver, type KeySpec } from '../../keys.js';
import { replayHeaderNames } from './idempotency-headers.js';

/** What `onBusy` is told about the request that could not get the lock. */
export interface BusyInfo {
  /** The lock key as the request gave it: its Idempotency-Key, or what the `key` extractor returned. */
  readonly key: string;
  /** ms until the holder's lease ends unless it is extended (or released earlier). */
  readonly retryAfterMs: number;
  /** `'locked'`: another request holds the lock; `'in-flight'`: a duplicate of this idempotent request is running. */
  readonly reason: 'locked' | 'in-flight';
}

/** `req.lock` / `ctx.state.lock` while the handler runs. */
export interface LockInfo {
  /** The lock key as the request gave it (Idempotency-Key or the `key` extractor's value), before scoping. */
  readonly key: string;
  readonly token: string;
  /** Fencing token: strictly increasing per key; hand it to the resource you protect. */
  readonly fence: number;
  /** Aborts (reason: LeaseLostError) if the lease is lost while the handler runs. */
  readonly signal: AbortSignal;
}

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
  store?: Store | undefined;
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
  onStoreError?: FailureMode | ((err: StoreError | StoreTimeoutError, req: Req) => FailureMode) | undefined;
  /** Called instead of the default 409 when the key is busy; may send its own response. */
  onBusy?: OnBusy | undefined;
  /** Store the finished response and replay it to retries with the same Idempotency-Key. @default false */
  replay?: boolean | ReplayOptions<Req> | undefined;
  /** Key prefix. @default DEFAULTS.lockPrefix (`'lk:'`), or DEFAULTS.idempotencyPrefix (`'idem:'`) with replay */
  prefix?: string | undefined;
  /** @default console */
  logger?: Logger | undefined;
}

export interface ReplayConfig<Req> {
  readonly fingerprint: ((req: Req) => Awaitable<string>) | undefined;
  readonly maxBodyBytes: number;
  readonly storeServerErrors: boolean;
  /** Lower-case names of the response headers stored and replayed. */
  readonly headers: ReadonlySet<string>;
}

export interface WithLockConfig<Req, OnBusy> {
  /** undefined: the Idempotency-Key header. */
  readonly key: readonly ((req: Req) => unknown)[] | undefined;
  /** Resolves the scope (falls back to the client IP); undefined: the custom key is used as is. */
  readonly scope: KeyResolver<Req> | undefined;
  readonly waitMs: number;
  readonly onStoreError: FailureMode | ((err: StoreError | StoreTimeoutError, req: Req) => FailureMode);
  readonly onBusy: OnBusy | undefined;
  readonly logger: Logger;
  /** Exactly one of `locks` (lock mode) and `records` + `replay` (replay mode) is set. */
  readonly locks: LockGuard | undefined;
  readonly records: IdempotencyGuard | undefined;
  readonly replay: ReplayConfig<Req> | undefined;
}

const OPTION_NAMES = ['store', 'key', 'scope', 'ttl', 'maxHold', 'wait', 'timeout', 'onStoreError', 'onBusy', 'replay', 'prefix', 'logger'] as const;
const REPLAY_OPTION_NAMES = ['ttl', 'fingerprint', 'maxBodyBytes', 'storeServerErrors', 'headers'] as const;

/** Largest accepted `replay.maxBodyBytes` (64 MiB): a stored response lives in the store for `replay.ttl`. */
export const MAX_REPLAY_BODY_BYTES = 64 * 1024 * 1024;

/** @throws ConfigError naming the bad option. */
export function resolveWithLockOptions<Req, OnBusy>(options: unknown, owner: string): WithLockConfig<Req, OnBusy> {
  requireOptionsObject(options, owner, "{ store, ttl: '30s', replay: { ttl: '24h' } }");
  rejectUnknownOptions(options, OPTION_NAMES, owner);
  const replayOption = options.replay ?? false;
  const replayMode = replayOption !== false;
  // The guard parses the options it shares with LockGuard / IdempotencyGuard (store, ttl, maxHold,
  // timeout, prefix, logger): one parser and one set of defaults for both entry points.
  const { store, ttl, maxHold, timeout, prefix, logger: loggerOption } = options;
  const guardOptions = { store, ttl, maxHold, timeout, prefix, logger: loggerOption } as LockGuardOptions;
  let replay: ReplayConfig<Req> | undefined;
  let records: IdempotencyGuard | undefined;
  let locks: LockGuard | undefined;
  if (replayMode) {
    const parsed = parseReplayOptions<Req>(replayOption);
    replay = parsed.config;
    records = new IdempotencyGuard({ ...guardOptions, replayTtl: parsed.ttlMs });
  } else {
    locks = new LockGuard(guardOptions);
  }
  const { logger } = (records ?? locks)!;

  const key = options.key === undefined ? undefined : asList(validateKeySpec(options.key, 'key'));
  // A custom key names a resource all clients share (e.g. a cart), unless a scope is asked for;
  // the Idempotency-Key and every replay record are always scoped, so clients never collide.
  const scoped = key === undefined || replayMode || options.scope !== undefined;
  // Proxy-setting warnings of the default scope (and of the IP fallback) go to the configured logger.
  const scope = scoped ? compileKeySpec<Req>(options.scope === undefined ? keys.ip({ logger }) : validateKeySpec(options.scope, 'scope'), { logger, option: 'scope' }) : undefined;

  return {
    key,
    scope,
    waitMs: parseWait(options.wait ?? DEFAULTS.lockWaitMs, 'wait'),
    onStoreError: validateOnStoreError(options.onStoreError) ?? DEFAULTS.lockOnStoreError,
    onBusy: optionalFunction(options.onBusy, 'onBusy', 'a function (…, info) => void that may send its own response') as OnBusy | undefined,
    logger,
    locks,
    records,
    replay,
  };
}

function parseReplayOptions<Req>(value: unknown): { config: ReplayConfig<Req>; ttlMs: number } {
  if (value === true) value = {};
  requireOptionsObject(value, 'replay', "{ ttl: '24h' }");
  rejectUnknownOptions(value, REPLAY_OPTION_NAMES, 'replay');
  const maxBodyBytes = value.maxBodyBytes ?? DEFAULTS.replayMaxBodyBytes;
  if (typeof maxBodyBytes !== 'number' || !Number.isInteger(maxBodyBytes) || maxBodyBytes < 0 || maxBodyBytes > MAX_REPLAY_BODY_BYTES) {
    throw new ConfigError(`replay.maxBodyBytes must be an integer from 0 to ${MAX_REPLAY_BODY_BYTES}; got ${formatValue(value.maxBodyBytes)}`);
  }
  const storeServerErrors = value.storeServerErrors ?? false;
  if (typeof storeServerErrors !== 'boolean') {
    throw new ConfigError(`replay.storeServerErrors must be true or false; got ${formatValue(value.storeServerErrors)}`);
  }
  return {
    ttlMs: parseDuration(value.ttl ?? DEFAULTS.replayTtlMs, 'replay.ttl'),
    config: {
      fingerprint: optionalFunction(value.fingerprint, 'replay.fingerprint', 'a function (req) => string') as ReplayConfig<Req>['fingerprint'],
      maxBodyBytes,
      storeServerErrors,
      headers: replayHeaderNames(value.headers, 'replay.headers'),
    },
  };
}

function asList<Req>(spec: KeySpec<Req>): readonly ((req: Req) => unknown)[] {
  return typeof spec === 'function' ? [spec] : spec;
}
