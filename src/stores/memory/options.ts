/** MemoryStore options: the public type, the defaults, and their validation. */
import { ConfigError } from '../../core/errors.js';
import { MAX_DURATION_MS, formatValue } from '../../core/duration.js';
import { optionNames, readOptions } from '../../core/options.js';

export interface MemoryStoreOptions {
  /**
   * Most rate-limit logs held. Beyond it the least recently used log is evicted, which forgets
   * that client's count: size it above the number of clients active within your longest window.
   * Expired logs are swept long before that. Locks and idempotency records are not counted here
   * and never evicted by it (see `maxLocks`, `maxReplayBytes`).
   * @default 100_000 (MEMORY_STORE_DEFAULTS.maxKeys)
   */
  maxKeys?: number | undefined;
  /**
   * Most locks held plus idempotency records in flight, at once. When that many are live, a NEW
   * lock or record is refused with a StoreError (the adapters answer 503, fail-closed): a live
   * lease is never evicted, since that would let a second holder in. Leases end when released or
   * expired, so only that many requests running at once can fill it. Expired leases not yet swept
   * are reclaimed before a refusal, a bounded batch at a time.
   * @default 100_000 (MEMORY_STORE_DEFAULTS.maxLocks)
   */
  maxLocks?: number | undefined;
  /**
   * Byte budget of finished idempotency records (stored responses kept for replay), counted as
   * body bytes plus the characters of key, fingerprint and headers plus 256 bytes per record.
   * Beyond it the least recently used finished records are evicted (never records in flight): a
   * retry of an evicted request runs the handler again. A response that alone exceeds the budget
   * is stored as not replayable (body null).
   * @default 67_108_864 = 64 MiB (MEMORY_STORE_DEFAULTS.maxReplayBytes)
   */
  maxReplayBytes?: number | undefined;
  /**
   * ms between sweeps of expired keys; 0 = no timer (expired keys then leave only when accessed
   * or evicted). The timer is `unref()`'d: it never keeps the process alive.
   * @default 1_000 (MEMORY_STORE_DEFAULTS.sweepIntervalMs)
   */
  sweepIntervalMs?: number | undefined;
  /**
   * Keys visited per sweep in each keyspace (logs, leases, finished records), which bounds the
   * time one sweep takes (≈ 0.5 ms per 10 000 keys).
   * @default 10_000 (MEMORY_STORE_DEFAULTS.sweepBatchSize)
   */
  sweepBatchSize?: number | undefined;
}

/** The defaults the docs quote. */
export const MEMORY_STORE_DEFAULTS = Object.freeze({
  maxKeys: 100_000,
  maxLocks: 100_000,
  maxReplayBytes: 64 * 1024 * 1024,
  sweepIntervalMs: 1_000,
  sweepBatchSize: 10_000,
});

/** Options after validation, defaults applied. */
export interface MemoryStoreConfig {
  readonly maxKeys: number;
  readonly maxLocks: number;
  readonly maxReplayBytes: number;
  readonly sweepIntervalMs: number;
  readonly sweepBatchSize: number;
}

const OPTION_NAMES = optionNames<MemoryStoreOptions>({
  maxKeys: true,
  maxLocks: true,
  maxReplayBytes: true,
  sweepIntervalMs: true,
  sweepBatchSize: true,
});

/** Validates `options` (unknown names included; `undefined` = absent) and applies the defaults; throws ConfigError. */
export function resolveMemoryStoreOptions(options: unknown): MemoryStoreConfig {
  const given = readOptions(options === undefined ? {} : options, OPTION_NAMES, 'MemoryStore', '{ maxKeys: 100_000 }');
  return {
    maxKeys: integerOption(given, 'maxKeys', MEMORY_STORE_DEFAULTS.maxKeys, 1, Number.MAX_SAFE_INTEGER),
    maxLocks: integerOption(given, 'maxLocks', MEMORY_STORE_DEFAULTS.maxLocks, 1, Number.MAX_SAFE_INTEGER),
    maxReplayBytes: integerOption(given, 'maxReplayBytes', MEMORY_STORE_DEFAULTS.maxReplayBytes, 1, Number.MAX_SAFE_INTEGER),
    sweepIntervalMs: integerOption(given, 'sweepIntervalMs', MEMORY_STORE_DEFAULTS.sweepIntervalMs, 0, MAX_DURATION_MS),
    sweepBatchSize: integerOption(given, 'sweepBatchSize', MEMORY_STORE_DEFAULTS.sweepBatchSize, 1, Number.MAX_SAFE_INTEGER),
  };
}

function integerOption(given: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = given[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`MemoryStore option "${name}" must be an integer ${range}; got ${formatValue(given[name])}`);
  }
  return value;
}
