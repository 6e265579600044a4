/**
 * The lock-guard without HTTP: `new LockGuard({ store, ttl })`, then `acquire(key, { wait })`
 * returns a token-checked, fenced lease. Busy keys reject with LockBusyError (at once, or after
 * polling for `wait` ms); store failures reject with StoreError / StoreTimeoutError (fail closed).
 *
 * This is an efficiency lock (one Redis, or a replicated one that can lose acknowledged writes at
 * failover): for correctness, have the protected resource check `lease.fence`.
 */
import { DEFAULTS } from './defaults.js';
import type { Duration } from './duration.js';
import type { Logger } from './store-call.js';
import type { LockStore } from './store.js';
import { acquireLock } from './lock/acquire.js';
import type { LockLease } from './lock/lease.js';
import { LeaseGuard, type GuardKind } from './lock/lease-guard.js';
import { parseWaitOptions, validateGuardKey } from './lock/options.js';

export type { LockLease, LeaseState, AutoExtendOptions, AutoExtension } from './lock/lease.js';
export { AUTO_EXTEND_FRACTION } from './lock/auto-extend.js';
export { MIN_POLL_INTERVAL_MS, MAX_POLL_INTERVAL_MS } from './lock/poll.js';
export { MIN_LEASE_TTL_MS } from './lock/options.js';

export interface LockGuardOptions {
  /** Where locks live. @default the process-wide MemoryStore */
  store?: LockStore | undefined;
  /** Lease length (≥ MIN_LEASE_TTL_MS, 150 ms): a holder that crashes frees the key after this. @default DEFAULTS.lockTtlMs (30 s) */
  ttl?: Duration | undefined;
  /** Prefix of every lock key. @default DEFAULTS.lockPrefix (`'lk:'`) */
  prefix?: string | undefined;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** Longest a lease is auto-extended (`lease.autoExtend()`), counted from acquisition. @default max(ttl, DEFAULTS.lockMaxHoldMs) (5 min) */
  maxHold?: Duration | undefined;
  /** Receives the once-per-outage messages. @default console */
  logger?: Logger | undefined;
}

export interface AcquireOptions {
  /** ms to keep polling a busy key (jittered, ≤ 20 calls/s) before LockBusyError; 0 = one attempt. @default 0 */
  wait?: Duration | undefined;
  /** Aborts a wait (rejects with `signal.reason`); a lock granted meanwhile is released. */
  signal?: AbortSignal | undefined;
}

const LOCK_GUARD: GuardKind = {
  owner: 'LockGuard',
  example: "{ store, ttl: '30s' }",
  optionNames: ['store', 'ttl', 'prefix', 'timeout', 'maxHold', 'logger'] satisfies (keyof LockGuardOptions)[],
  storeNeeds: 'lock',
  defaultPrefix: DEFAULTS.lockPrefix,
};

/**
 * @example
 * const guard = new LockGuard({ store, ttl: '30s' });
 * await using lease = await guard.acquire(`order:${id}`, { wait: 2000 });
 * lease.autoExtend();
 * await ledger.write(entry, { fence: lease.fence, signal: lease.signal });
 */
export class LockGuard extends LeaseGuard<LockStore> {
  /** @throws ConfigError naming the bad option. */
  constructor(options: LockGuardOptions = {}) {
    super(options, LOCK_GUARD);
  }

  /**
   * Takes the lock on `key`.
   * @throws LockBusyError when another holder keeps it (after `wait`); StoreError / StoreTimeoutError
   *   when the store fails (a late grant after a timeout is released as soon as it lands).
   */
  async acquire(key: string, options: AcquireOptions = {}): Promise<LockLease> {
    validateGuardKey(key, 'acquire(key)');
    const { waitMs, signal } = parseWaitOptions(options, 'acquire()');
    return acquireLock(this, key, waitMs, signal);
  }
}
