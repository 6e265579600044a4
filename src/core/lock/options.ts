/**
 * Option checks shared by LockGuard, IdempotencyGuard and the withLock adapters: each returns the
 * parsed value or throws a ConfigError naming the option, the expected range and the value.
 */
import { ConfigError } from '../errors.js';
import { DEFAULTS } from '../defaults.js';
import { MAX_DURATION_MS, formatValue, parseDuration } from '../duration.js';
import { readOptions } from '../options.js';
import type { IdempotencyStore, LockStore } from '../store.js';
import { AUTO_EXTEND_FRACTION } from './auto-extend.js';
import { MIN_POLL_INTERVAL_MS } from './poll.js';

/**
 * Shortest lease `ttl` (150 ms). A held lease is auto-extended every ttl × AUTO_EXTEND_FRACTION,
 * so at this ttl every 50 ms: at most 20 store calls per second per lease, the same ceiling as a
 * waiter's polling (MIN_POLL_INTERVAL_MS). Shorter leases would turn each held lock into a flood
 * of extensions (ttl 2 ms → 1000 calls/s) that a store round trip can no longer keep ahead of
 * (ttl 1 ms cannot be extended at all).
 */
export const MIN_LEASE_TTL_MS = Math.round(MIN_POLL_INTERVAL_MS / AUTO_EXTEND_FRACTION);

const LOCK_STORE_METHODS = ['acquireLock', 'extendLock', 'releaseLock'] as const;
const IDEMPOTENCY_STORE_METHODS = ['beginIdempotent', 'extendIdempotent', 'completeIdempotent', 'abortIdempotent'] as const;

/** The store, if given: it must have the lock (and, for replay, the idempotency) operations of the Store interface. */
export function validateGuardStore(store: unknown, option: string, needs: 'lock' | 'idempotency'): LockStore | IdempotencyStore | undefined {
  if (store === undefined) return undefined;
  const methods = needs === 'lock' ? LOCK_STORE_METHODS : IDEMPOTENCY_STORE_METHODS;
  const candidate = store as Record<string, unknown> | null;
  if (candidate === null || typeof candidate !== 'object' || methods.some((method) => typeof candidate[method] !== 'function')) {
    throw new ConfigError(
      `${option} must be a Store with ${methods.join(', ')} (e.g. new RedisStore({ client }) or new MemoryStore()); got ${formatValue(store)}`,
    );
  }
  return store as LockStore | IdempotencyStore;
}

/** A lease `ttl`: a duration from MIN_LEASE_TTL_MS up. */
export function parseLeaseTtl(value: unknown, option: string): number {
  const ttlMs = parseDuration(value, option);
  if (ttlMs < MIN_LEASE_TTL_MS) {
    throw new ConfigError(
      `${option} must be at least ${MIN_LEASE_TTL_MS} ms, so the lease can be auto-extended every ttl/3 without flooding the store; got ${formatValue(value)}`,
    );
  }
  return ttlMs;
}

/** `wait`: 0 (answer at once) or a duration in ms / duration string. */
export function parseWait(value: unknown, option: string): number {
  if (value === 0) return 0;
  if (typeof value === 'number' && !(Number.isInteger(value) && value >= 0 && value <= MAX_DURATION_MS)) {
    throw new ConfigError(`${option} must be 0 or a whole number of milliseconds up to ${MAX_DURATION_MS}, or a string like '2s'; got ${formatValue(value)}`);
  }
  return parseDuration(value, option);
}

/** `maxHold`: a duration no shorter than the lease ttl (else the very first lease would outlive it). */
export function parseMaxHold(value: unknown, ttlMs: number, option: string): number {
  const maxHoldMs = parseDuration(value, option);
  if (maxHoldMs < ttlMs) {
    throw new ConfigError(`${option} must be at least the lease ttl (${ttlMs} ms); got ${formatValue(value)}`);
  }
  return maxHoldMs;
}

/** Default maxHold for a ttl: DEFAULTS.lockMaxHoldMs, raised to the ttl when the ttl is longer. */
export function defaultMaxHold(ttlMs: number): number {
  return Math.max(ttlMs, DEFAULTS.lockMaxHoldMs);
}

/** A non-empty string key (the caller's id for the lock or record). */
export function validateGuardKey(key: unknown, option: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ConfigError(`${option} must be a non-empty string (e.g. 'order:42'); got ${formatValue(key)}`);
  }
  return key;
}

const WAIT_OPTION_NAMES = ['wait', 'signal'] as const;

/** The `{ wait, signal }` options of `acquire()` / `begin()`, parsed (`owner` names the method in errors). */
export function parseWaitOptions(options: unknown, owner: string): { waitMs: number; signal: AbortSignal | undefined } {
  const defined = readOptions(options, WAIT_OPTION_NAMES, owner, '{ wait: 2000 }');
  return {
    waitMs: parseWait(defined.wait ?? DEFAULTS.lockWaitMs, 'wait'),
    signal: validateSignal(defined.signal, `${owner} option signal`),
  };
}

/** An optional AbortSignal option. */
export function validateSignal(signal: unknown, option: string): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new ConfigError(`${option} must be an AbortSignal; got ${formatValue(signal)}`);
}
