/**
 * The lock-guard without HTTP: `new LockGuard({ store, ttl })`, then `acquire(key, { wait })`
 * returns a token-checked, fenced lease. Busy keys reject with LockBusyError (at once, or after
 * polling for `wait` ms); store failures reject with StoreError / StoreTimeoutError (fail closed).
 *
 * This is an efficiency lock (one Redis, or a replicated one that can lose acknowledged writes at
 * failover): for correctness, have the protected resource check `lease.fence`.
 */
import { randomUUID } from 'node:crypto';
import { LockBusyError } from './errors.js';
import { DEFAULTS } from './defaults.js';
import { parseDuration, type Duration } from './duration.js';
import { lockKeys, validatePrefix } from './keyspace.js';
import { callStore, type Logger } from './store-call.js';
import type { LockAcquireResult, LockKeys, Store } from './store.js';
import { Lease, type LockLease } from './lock/lease.js';
import { monotonicNow, pollWhileBusy } from './lock/poll.js';
import {
  defaultMaxHold,
  parseMaxHold,
  parseWait,
  rejectUnknownOptions,
  requireOptionsObject,
  validateGuardKey,
  validateGuardStore,
  validateSignal,
} from './lock/options.js';
import { validateLogger } from './rate-limiter.js';
import { getDefaultStore } from '../stores/default-store.js';

export type { LockLease, LeaseState, AutoExtendOptions, AutoExtension } from './lock/lease.js';
export { AUTO_EXTEND_FRACTION } from './lock/auto-extend.js';
export { MIN_POLL_INTERVAL_MS, MAX_POLL_INTERVAL_MS } from './lock/poll.js';

export interface LockGuardOptions {
  /** Where locks live. @default the process-wide MemoryStore (`getDefaultStore()`) */
  store?: Store;
  /** Lease length: a holder that crashes frees the key after this. @default DEFAULTS.lockTtlMs (30 s) */
  ttl?: Duration;
  /** Prefix of every lock key. @default DEFAULTS.lockPrefix (`'lk:'`) */
  prefix?: string;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration;
  /** Longest a lease is auto-extended (`lease.autoExtend()`), counted from acquisition. @default max(ttl, DEFAULTS.lockMaxHoldMs) (5 min) */
  maxHold?: Duration;
  /** Receives the once-per-outage messages. @default console */
  logger?: Logger;
}

export interface AcquireOptions {
  /** ms to keep polling a busy key (jittered, ≤ 20 calls/s) before LockBusyError; 0 = one attempt. @default 0 */
  wait?: Duration;
  /** Aborts a wait (rejects with `signal.reason`); a lock granted meanwhile is released. */
  signal?: AbortSignal;
}

const OPTION_NAMES = ['store', 'ttl', 'prefix', 'timeout', 'maxHold', 'logger'] as const;
const ACQUIRE_OPTION_NAMES = ['wait', 'signal'] as const;

/**
 * @example
 * const guard = new LockGuard({ store, ttl: '30s' });
 * await using lease = await guard.acquire(`order:${id}`, { wait: 2000 });
 * lease.autoExtend();
 * await ledger.write(entry, { fence: lease.fence, signal: lease.signal });
 */
export class LockGuard {
  readonly store: Store;
  readonly ttlMs: number;
  readonly maxHoldMs: number;
  readonly timeoutMs: number;
  readonly prefix: string;
  readonly logger: Logger;

  /** @throws ConfigError naming the bad option. */
  constructor(options: LockGuardOptions = {}) {
    requireOptionsObject(options, 'LockGuard', "{ store, ttl: '30s' }");
    rejectUnknownOptions(options, OPTION_NAMES, 'LockGuard');
    this.store = validateGuardStore(options.store, 'store', 'lock') ?? getDefaultStore();
    this.ttlMs = parseDuration(options.ttl ?? DEFAULTS.lockTtlMs, 'ttl');
    this.maxHoldMs = options.maxHold === undefined ? defaultMaxHold(this.ttlMs, DEFAULTS.lockMaxHoldMs) : parseMaxHold(options.maxHold, this.ttlMs, 'maxHold');
    this.timeoutMs = parseDuration(options.timeout ?? DEFAULTS.timeoutMs, 'timeout');
    this.prefix = validatePrefix(options.prefix ?? DEFAULTS.lockPrefix, 'prefix');
    this.logger = validateLogger(options.logger) ?? console;
  }

  /**
   * Takes the lock on `key`.
   * @throws LockBusyError when another holder keeps it (after `wait`); StoreError / StoreTimeoutError
   *   when the store fails (a late grant after a timeout is released as soon as it lands).
   */
  async acquire(key: string, options: AcquireOptions = {}): Promise<LockLease> {
    validateGuardKey(key, 'acquire(key)');
    requireOptionsObject(options, 'acquire()', '{ wait: 2000 }');
    rejectUnknownOptions(options, ACQUIRE_OPTION_NAMES, 'acquire()');
    const waitMs = parseWait(options.wait ?? DEFAULTS.lockWaitMs, 'wait');
    const signal = validateSignal(options.signal, 'acquire() option signal');
    signal?.throwIfAborted();

    const keys = lockKeys(this.prefix, key);
    // One token for every attempt: a re-sent acquire of ours counts as acquired, not busy.
    const token = randomUUID();
    let sentAt = 0;
    const attempt = (): Promise<LockAcquireResult> => {
      sentAt = monotonicNow();
      return callStore(this.store, () => this.store.acquireLock(keys, token, this.ttlMs), {
        timeoutMs: this.timeoutMs,
        logger: this.logger,
        failureMode: 'closed',
        // Timed out but granted later: nobody will use that lock, free it now rather than after ttl.
        onLate: (late) => {
          if (late.acquired) this.releaseQuietly(keys, token);
        },
      });
    };
    const result = await pollWhileBusy(attempt, (r) => (r.acquired ? undefined : r.retryAfterMs), { waitMs, signal });
    if (!result.acquired) throw new LockBusyError(key, result.retryAfterMs);
    if (signal?.aborted) {
      this.releaseQuietly(keys, token);
      throw signal.reason;
    }
    return new Lease({
      key,
      token,
      fence: result.fence,
      ttlMs: this.ttlMs,
      maxHoldMs: this.maxHoldMs,
      acquiredAt: sentAt,
      operations: {
        extend: (ttlMs) => this.call(() => this.store.extendLock(keys, token, ttlMs)),
        release: () => this.call(() => this.store.releaseLock(keys, token)),
      },
    });
  }

  private call<T>(operation: () => Promise<T>): Promise<T> {
    return callStore(this.store, operation, { timeoutMs: this.timeoutMs, logger: this.logger, failureMode: 'closed' });
  }

  /** Best-effort token-checked release nobody awaits (the ttl frees the key if this fails too). */
  private releaseQuietly(keys: LockKeys, token: string): void {
    Promise.resolve()
      .then(() => this.store.releaseLock(keys, token))
      .catch(() => undefined);
  }
}
