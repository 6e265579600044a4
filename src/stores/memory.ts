/**
 * MemoryStore: the Store contract in process memory, with the same semantics as RedisStore's Lua
 * (the property tests hold the two to identical results). The default store for development,
 * single-process apps and the demo; with several processes each one counts alone, so use
 * RedisStore to share limits and locks.
 *
 * Every method does its whole work synchronously before returning its Promise, so each call is
 * atomic within the process, as one Lua call is in Redis.
 */
import { ConfigError, StoreError } from '../core/errors.js';
import { describe } from '../core/duration.js';
import type {
  ConsumeResult,
  IdempotencyBeginResult,
  IdempotencyKeys,
  LockAcquireResult,
  LockKeys,
  Store,
  StoreLimit,
  StoredResponse,
} from '../core/store.js';
import { checkInteger, checkLimits, checkToken } from './memory/arguments.js';
import { type Clock, MicrosecondCounter } from './memory/clock.js';
import { type Expiring, ExpiringKeyspace } from './memory/keyspace.js';
import {
  FENCE_KEEP_MIN_MS,
  FENCE_KEEP_TTL_FACTOR,
  FenceCounter,
  IdempotencyRecord,
  Lease,
  copyResponse,
} from './memory/leases.js';
import { type MemoryStoreConfig, type MemoryStoreOptions, resolveMemoryStoreOptions } from './memory/options.js';
import { SlidingLog } from './memory/sliding-log.js';
import { judge } from './memory/verdict.js';

export type { MemoryStoreOptions } from './memory/options.js';
export { MEMORY_STORE_DEFAULTS } from './memory/options.js';

/**
 * @example
 * const store = new MemoryStore({ maxKeys: 50_000 });
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));
 */
export class MemoryStore implements Store, Disposable {
  private readonly config: MemoryStoreConfig;
  private readonly clock: Clock;
  private readonly micros: MicrosecondCounter;
  private readonly keys: ExpiringKeyspace;
  private sweepTimer: NodeJS.Timeout | undefined;

  /** @throws ConfigError naming the bad option. */
  constructor(options?: MemoryStoreOptions) {
    this.config = resolveMemoryStoreOptions(options);
    this.clock = this.config.clock;
    this.micros = new MicrosecondCounter(() => this.now());
    this.keys = new ExpiringKeyspace(this.config.maxKeys);
    if (this.config.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), this.config.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  /** Number of keys held (limit logs, locks, fence counters, idempotency records), expired ones not yet swept included. */
  get size(): number {
    return this.keys.size;
  }

  async consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    checkInteger('cost', cost, 1);
    return this.decide(limits, cost, true);
  }

  async peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    checkInteger('cost', cost, 1);
    return this.decide(limits, cost, false);
  }

  async refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> {
    checkLimits(limits);
    checkInteger('cost', cost, 1);
    checkInteger('stamp', stamp, 0);
    const now = this.now();
    for (const { key } of limits) {
      const log = this.entry(key, now, SlidingLog);
      if (log === undefined) continue;
      log.remove(stamp, cost);
      if (log.total === 0) this.keys.delete(key);
    }
  }

  async reset(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.keys.delete(key);
  }

  async acquireLock(keys: LockKeys, token: string, ttlMs: number): Promise<LockAcquireResult> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    const now = this.now();
    const held = this.entry(keys.lock, now, Lease);
    if (held !== undefined && held.token !== token) return { acquired: false, retryAfterMs: held.expiresAt - now };
    if (held !== undefined) {
      // A re-sent acquire by the holder (e.g. after a reconnect): same lease, refreshed, same
      // fence; if the counter was lost meanwhile, a new and still greater one (as the Lua does).
      held.expiresAt = now + ttlMs;
      const counter = this.entry(keys.fence, now, FenceCounter);
      return { acquired: true, fence: counter?.value ?? this.nextFence(keys.fence, ttlMs, now) };
    }
    const fence = this.nextFence(keys.fence, ttlMs, now);
    this.keys.set(keys.lock, new Lease(token, now + ttlMs));
    this.keys.evictOverflow();
    return { acquired: true, fence };
  }

  async extendLock(keys: LockKeys, token: string, ttlMs: number): Promise<boolean> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    const now = this.now();
    const held = this.entry(keys.lock, now, Lease);
    if (held?.token !== token) return false;
    held.expiresAt = now + ttlMs;
    return true;
  }

  async releaseLock(keys: LockKeys, token: string): Promise<boolean> {
    checkToken(token);
    const held = this.entry(keys.lock, this.now(), Lease);
    if (held?.token !== token) return false;
    this.keys.delete(keys.lock);
    return true;
  }

  async beginIdempotent(
    keys: IdempotencyKeys,
    token: string,
    fingerprint: string,
    leaseMs: number,
  ): Promise<IdempotencyBeginResult> {
    checkToken(token);
    if (typeof fingerprint !== 'string') throw new ConfigError(`fingerprint must be a string; got ${describe(fingerprint)}`);
    checkInteger('leaseMs', leaseMs, 1);
    const now = this.now();
    const record = this.entry(keys.record, now, IdempotencyRecord);
    if (record === undefined) {
      const fence = this.nextFence(keys.fence, leaseMs, now);
      this.keys.set(keys.record, new IdempotencyRecord(token, fingerprint, fence, now + leaseMs));
      this.keys.evictOverflow();
      return { state: 'acquired', fence };
    }
    if (record.state === 'run' && record.token === token) {
      // A re-sent begin (reconnect) of the request that holds the record: still acquired, lease refreshed.
      record.expiresAt = now + leaseMs;
      return { state: 'acquired', fence: record.fence };
    }
    if (record.fingerprint !== fingerprint) return { state: 'mismatch' };
    if (record.state === 'run') return { state: 'in-flight', retryAfterMs: record.expiresAt - now };
    return { state: 'replay', response: copyResponse(record.response!) };
  }

  async extendIdempotent(keys: IdempotencyKeys, token: string, leaseMs: number): Promise<boolean> {
    checkToken(token);
    checkInteger('leaseMs', leaseMs, 1);
    const now = this.now();
    const record = this.runningRecord(keys, token, now);
    if (record === undefined) return false;
    record.expiresAt = now + leaseMs;
    return true;
  }

  async completeIdempotent(
    keys: IdempotencyKeys,
    token: string,
    response: StoredResponse,
    ttlMs: number,
  ): Promise<boolean> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    checkResponse(response);
    const now = this.now();
    const record = this.runningRecord(keys, token, now);
    if (record === undefined) return false;
    record.state = 'done';
    record.response = copyResponse(response);
    record.expiresAt = now + ttlMs;
    return true;
  }

  async abortIdempotent(keys: IdempotencyKeys, token: string): Promise<boolean> {
    checkToken(token);
    const record = this.runningRecord(keys, token, this.now());
    if (record === undefined) return false;
    this.keys.delete(keys.record);
    return true;
  }

  /** Stops the sweep timer. The store keeps working (expired keys then leave when accessed). */
  close(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** consume and peek: trim, decide, and (consume, when allowed) write `cost` entries to every log. */
  private decide(limits: readonly StoreLimit[], cost: number, record: boolean): ConsumeResult {
    checkLimits(limits);
    const now = this.now();
    const logs = limits.map(({ key, windowMs }) => this.liveLog(key, windowMs, now));
    const verdict = judge(limits, logs, cost, now);
    if (!record || !verdict.allowed) return verdict.stamp === 0 ? verdict : { ...verdict, stamp: 0 };
    for (let i = 0; i < limits.length; i++) {
      const { key, windowMs } = limits[i]!;
      // An empty log is looked up again: a key listed twice may have been created just before.
      const log = logs[i] ?? this.entry(key, now, SlidingLog);
      if (log === undefined) this.keys.set(key, new SlidingLog(verdict.stamp, cost, windowMs));
      else log.append(verdict.stamp, cost, windowMs);
    }
    this.keys.evictOverflow();
    return verdict;
  }

  /** The log under `key` trimmed to `windowMs` at `now`; undefined (and the key deleted) when empty. */
  private liveLog(key: string, windowMs: number, now: number): SlidingLog | undefined {
    const log = this.entry(key, now, SlidingLog);
    if (log === undefined) return undefined;
    log.trim(now, windowMs);
    if (log.total > 0) return log;
    this.keys.delete(key);
    return undefined;
  }

  /** The record under `keys.record` if it is running and `token` holds it. */
  private runningRecord(keys: IdempotencyKeys, token: string, now: number): IdempotencyRecord | undefined {
    const record = this.entry(keys.record, now, IdempotencyRecord);
    return record?.state === 'run' && record.token === token ? record : undefined;
  }

  /** Grants the next fence for `key`: max(previous + 1, store time in µs), kept max(ttl × 10, 7 days). */
  private nextFence(key: string, ttlMs: number, now: number): number {
    const keepUntil = now + Math.max(ttlMs * FENCE_KEEP_TTL_FACTOR, FENCE_KEEP_MIN_MS);
    const counter = this.entry(key, now, FenceCounter);
    const fence = Math.max((counter?.value ?? 0) + 1, this.micros.next());
    if (counter === undefined) this.keys.set(key, new FenceCounter(fence, keepUntil));
    else {
      counter.value = fence;
      counter.expiresAt = keepUntil;
    }
    return fence;
  }

  /** The live entry under `key`, which must be a `type` (else, like Redis WRONGTYPE, a StoreError). */
  private entry<T extends Expiring>(key: string, now: number, type: new (...args: never[]) => T): T | undefined {
    const entry = this.keys.get(key, now);
    if (entry === undefined || entry instanceof type) return entry;
    throw new StoreError(`key "${key}" holds a ${entry.constructor.name}, not a ${type.name}: two kinds of state share one key`);
  }

  /** The timer's job. Never throws: a bad clock surfaces at the next store call, not as an uncaught error. */
  private sweep(): void {
    const now = this.clock();
    if (Number.isFinite(now)) this.keys.sweep(Math.floor(now), this.config.sweepBatchSize);
  }

  private now(): number {
    const now = this.clock();
    if (!Number.isFinite(now)) throw new ConfigError(`MemoryStore option "clock" must return a finite number of ms; got ${describe(now)}`);
    return Math.floor(now);
  }
}

function checkResponse(response: StoredResponse): void {
  if (!Number.isInteger(response?.status)) {
    throw new ConfigError(`response.status must be an integer; got ${describe(response?.status)}`);
  }
  if (response.body !== null && !(response.body instanceof Uint8Array)) {
    throw new ConfigError(`response.body must be a Buffer or null; got ${describe(response.body)}`);
  }
}
