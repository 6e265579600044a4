/**
 * MemoryStore: the Store contract in process memory, with the same semantics as RedisStore's Lua
 * (the property tests hold the two to identical results). The default store for development,
 * single-process apps and the demo; with several processes each one counts alone, so use
 * RedisStore to share limits and locks.
 *
 * Every method does its whole work synchronously before returning its Promise, so each call is
 * atomic within the process, as one Lua call is in Redis.
 *
 * Three maps of state (ExpiringMap), each bounded its own way, so that pressure on one never costs
 * another's state:
 * - logs (rate limits): least recently used evicted beyond `maxKeys`; losing one forgets a count.
 * - leases (held locks, idempotency records in flight): never evicted; beyond `maxLocks` a new
 *   one is refused (StoreError), since evicting a live lease would admit a second holder.
 * - replays (finished idempotency records): least recently used evicted beyond `maxReplayBytes`;
 *   losing one means a retry runs again.
 * - last runs (the fence of the last idempotency run begun per record key, so that a complete
 *   whose lease lapsed can tell nobody began since): least recently used evicted beyond
 *   `maxLocks`; losing one only makes such a late complete answer false.
 * A key lives in at most one of them: creating state under a key that holds another kind fails
 * with a StoreError, as Redis answers WRONGTYPE.
 */
import { ConfigError, StoreError } from '../core/errors.js';
import { formatValue } from '../core/duration.js';
import type {
  ConsumeResult,
  IdempotencyBeginResult,
  IdempotencyKeys,
  IdempotencyRun,
  LockAcquireResult,
  LockKeys,
  Store,
  StoreLimit,
  StoredResponse,
} from '../core/store.js';
import { decideInProcess } from '../core/store.js';
import { checkCall, checkInteger, checkResponse, checkRun, checkToken } from './arguments.js';
import { type LimitState, boxedResult, checkLimits, periodOf, tatOf } from './memory/check-limits.js';
import { GcraState } from './memory/gcra.js';
import { PenaltyBox, readBox, strikeBox } from './memory/penalty-box.js';
import { type Clock, MicrosecondCounter, monotonicClock } from './memory/clock.js';
import { type Expiring, ExpiringMap } from './memory/expiring-map.js';
import { DoneRecord, HeldLock, LastRun, RunningRecord, copyResponse, doneRecord, lastRunTtlMs } from './memory/locks-and-records.js';
import { type MemoryStoreConfig, type MemoryStoreOptions, resolveMemoryStoreOptions } from './memory/options.js';
import { SlidingLog } from './memory/sliding-log.js';
import { testSettingsOf } from './test-hooks.js';

export type { MemoryStoreOptions } from './memory/options.js';
export { MEMORY_STORE_DEFAULTS } from './memory/options.js';

/**
 * Expired leases visited (from the rolling sweep's position) before refusing a new one at
 * `maxLocks`: enough to reclaim a backlog when the timer is off or behind, small enough that a
 * flood of refused requests stays cheap (~10 µs each).
 */
const LEASE_RECLAIM_BATCH = 256;

/** Any of the maps, for checks that only look. */
type KeyLookup = Pick<ExpiringMap<Expiring>, 'find'>;

/**
 * Options and their defaults: MemoryStoreOptions / MEMORY_STORE_DEFAULTS.
 *
 * @example
 * const store = new MemoryStore({ maxKeys: 50_000, maxLocks: 10_000, maxReplayBytes: 16 * 1024 * 1024 });
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));
 * app.post('/payments', withLock({ store, replay: { ttl: '24h' } }), pay);
 */
export class MemoryStore implements Store, Disposable {
  readonly #config: MemoryStoreConfig;
  /**
   * Store time in whole ms: a monotonic clock (process start wall time plus `performance.now()`),
   * so `Date` steps never move windows or leases; tests may set a virtual one (src/stores/testing.ts).
   */
  readonly #clock: Clock;
  /** The source of every fence: strictly increasing across all keys (see memory/locks-and-records.ts). */
  readonly #micros: MicrosecondCounter;
  /** Rate-limit state: sliding logs, GCRA states and penalty boxes (each key holds one kind). */
  readonly #logs: ExpiringMap<LimitEntry>;
  /** Held locks and idempotency records in flight: the state that carries a lease. */
  readonly #leases: ExpiringMap<HeldLock | RunningRecord>;
  readonly #replays: ExpiringMap<DoneRecord>;
  readonly #lastRuns: ExpiringMap<LastRun>;
  #sweepTimer: NodeJS.Timeout | undefined;

  /** @throws ConfigError naming the bad option. */
  constructor(options?: MemoryStoreOptions) {
    this.#config = resolveMemoryStoreOptions(options);
    this.#clock = testSettingsOf(options)?.clock ?? monotonicClock;
    this.#micros = new MicrosecondCounter(this.#clock);
    this.#logs = new ExpiringMap({ maxKeys: this.#config.maxKeys });
    this.#leases = new ExpiringMap();
    this.#replays = new ExpiringMap({ maxWeight: this.#config.maxReplayBytes, weigh: (record) => record.bytes });
    this.#lastRuns = new ExpiringMap({ maxKeys: this.#config.maxLocks });
    if (this.#config.sweepIntervalMs > 0) {
      // The timer holds the store only weakly: a store the app dropped without close() is
      // garbage-collected, and its timer stops at its next tick.
      const store = new WeakRef(this);
      const timer = setInterval(() => {
        const alive = store.deref();
        if (alive === undefined) clearInterval(timer);
        else alive.#sweep();
      }, this.#config.sweepIntervalMs);
      timer.unref();
      this.#sweepTimer = timer;
    }
  }

  /** Number of keys held (limit logs, locks, idempotency records), expired ones not yet swept included. */
  get size(): number {
    return this.#logs.size + this.#leases.size + this.#replays.size;
  }

  /** Bytes counted against `maxReplayBytes` by the finished idempotency records held. */
  get replayBytes(): number {
    return this.#replays.weight;
  }

  async consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    return this[decideInProcess](limits, cost, true);
  }

  async peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    return this[decideInProcess](limits, cost, false);
  }

  /** consume (`record`) or peek, answered at once: what a limiter on this store calls. */
  [decideInProcess](limits: readonly StoreLimit[], cost: number, record: boolean): ConsumeResult {
    checkCall(limits, cost);
    return this.#decide(limits, cost, this.#clock(), record);
  }

  async refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> {
    checkCall(limits, cost);
    checkInteger('stamp', stamp, 0);
    const now = this.#clock();
    for (const limit of limits) {
      const entry = this.#logs.get(limit.key, now);
      if (entry === undefined || limit.algorithm === 'penalty-box') continue;
      if (limit.algorithm === 'gcra') {
        // As lua/gcra.lua's refund_tat: TAT moves back, never before now.
        if (!(entry instanceof GcraState)) throw wrongType(limit.key, entry, GcraState);
        entry.tat -= (limit.cost ?? cost) * periodOf(limit);
        if (entry.tat <= now) this.#logs.delete(limit.key);
        continue;
      }
      if (!(entry instanceof SlidingLog)) throw wrongType(limit.key, entry, SlidingLog);
      entry.remove(stamp, limit.cost ?? cost);
      if (entry.total === 0) this.#logs.delete(limit.key);
    }
  }

  async reset(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      this.#logs.delete(key);
      this.#leases.delete(key);
      this.#replays.delete(key);
    }
  }

  async acquireLock(keys: LockKeys, token: string, ttlMs: number): Promise<LockAcquireResult> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    const now = this.#clock();
    const held = this.#lease(keys.lock, now, HeldLock);
    if (held !== undefined) {
      if (held.token !== token) return { acquired: false, retryAfterMs: held.expiresAt - now };
      // A re-sent acquire by the holder (e.g. after a reconnect): same lease and fence, refreshed.
      held.expiresAt = now + ttlMs;
      return { acquired: true, fence: held.fence };
    }
    this.#admitLease(keys.lock, now, HeldLock);
    const fence = this.#micros.next();
    this.#leases.set(keys.lock, new HeldLock(token, fence, now + ttlMs));
    return { acquired: true, fence };
  }

  async extendLock(keys: LockKeys, token: string, ttlMs: number): Promise<boolean> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    const now = this.#clock();
    const held = this.#lease(keys.lock, now, HeldLock);
    if (held?.token !== token) return false;
    held.expiresAt = now + ttlMs;
    return true;
  }

  async releaseLock(keys: LockKeys, token: string): Promise<boolean> {
    checkToken(token);
    const held = this.#lease(keys.lock, this.#clock(), HeldLock);
    if (held?.token !== token) return false;
    this.#leases.delete(keys.lock);
    return true;
  }

  async beginIdempotent(
    keys: IdempotencyKeys,
    token: string,
    fingerprint: string,
    leaseMs: number,
  ): Promise<IdempotencyBeginResult> {
    checkToken(token);
    if (typeof fingerprint !== 'string') throw new ConfigError(`fingerprint must be a string; got ${formatValue(fingerprint)}`);
    checkInteger('leaseMs', leaseMs, 1);
    const now = this.#clock();
    const running = this.#lease(keys.record, now, RunningRecord);
    if (running !== undefined) {
      if (running.token === token) {
        // A re-sent begin (reconnect) of the request that holds the record: still acquired, lease refreshed.
        running.expiresAt = now + leaseMs;
        return { state: 'acquired', fence: running.fence };
      }
      if (running.fingerprint !== fingerprint) return { state: 'mismatch' };
      return { state: 'in-flight', retryAfterMs: running.expiresAt - now };
    }
    const done = this.#replays.get(keys.record, now);
    if (done !== undefined) {
      return done.fingerprint === fingerprint ? { state: 'replay', response: copyResponse(done.response) } : { state: 'mismatch' };
    }
    this.#admitLease(keys.record, now, RunningRecord);
    const fence = this.#micros.next();
    this.#leases.set(keys.record, new RunningRecord(token, fingerprint, fence, now + leaseMs));
    this.#lastRuns.set(keys.record, new LastRun(fence, now + lastRunTtlMs(leaseMs)));
    this.#lastRuns.evictOverflow();
    return { state: 'acquired', fence };
  }

  async extendIdempotent(keys: IdempotencyKeys, token: string, leaseMs: number): Promise<boolean> {
    checkToken(token);
    checkInteger('leaseMs', leaseMs, 1);
    const now = this.#clock();
    const record = this.#runningRecord(keys, token, now);
    if (record === undefined) return false;
    record.expiresAt = now + leaseMs;
    return true;
  }

  async completeIdempotent(
    keys: IdempotencyKeys,
    token: string,
    response: StoredResponse,
    ttlMs: number,
    run?: IdempotencyRun,
  ): Promise<boolean> {
    checkToken(token);
    checkInteger('ttlMs', ttlMs, 1);
    checkResponse(response);
    checkRun(run);
    const now = this.#clock();
    const running = this.#lease(keys.record, now, RunningRecord);
    let fingerprint: string;
    if (running !== undefined) {
      if (running.token !== token) return false;
      fingerprint = running.fingerprint;
    } else {
      const done = this.#replays.get(keys.record, now);
      // Completed already by this lease (its complete is retried after a failure): done, unchanged.
      if (done !== undefined) return done.token === token;
      // The lease lapsed: stored only if no run has begun on the key since this one.
      if (run === undefined || this.#lastRuns.get(keys.record, now)?.fence !== run.fence) return false;
      this.#assertFree(keys.record, now, RunningRecord, this.#logs);
      fingerprint = run.fingerprint;
    }
    const done = doneRecord(keys.record, token, fingerprint, response, now + ttlMs, this.#config.maxReplayBytes);
    this.#leases.delete(keys.record);
    this.#replays.set(keys.record, done);
    this.#replays.evictOverflow();
    return true;
  }

  async abortIdempotent(keys: IdempotencyKeys, token: string): Promise<boolean> {
    checkToken(token);
    const record = this.#runningRecord(keys, token, this.#clock());
    if (record === undefined) return false;
    this.#leases.delete(keys.record);
    return true;
  }

  /** Stops the sweep timer. The store keeps working (expired keys then leave when accessed). */
  close(): void {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * consume (`record`) or peek, in lua/consume.lua's order: penalty boxes first (a closed one
   * answers alone, before any limit is read), then the quotas; a recorded refusal strikes every
   * box (one that closes answers for the call), a recorded admission writes the quotas and clears
   * the boxes' strikes.
   */
  #decide(limits: readonly StoreLimit[], cost: number, now: number, record: boolean): ConsumeResult {
    let boxes: { index: number; strikes: number }[] | undefined;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      if (limit.algorithm !== 'penalty-box') continue;
      const { closedMs, strikes } = readBox(this.#entry(limit.key, now, PenaltyBox), now, limit.blockMs!, limit.windowMs);
      if (closedMs > 0) return boxedResult(i, closedMs);
      (boxes ??= []).push({ index: i, strikes });
    }
    const states = this.#liveStates(limits, now);
    const result = checkLimits(limits, states, cost, now, record);
    if (!record) return result;
    if (!result.allowed) {
      for (const { index, strikes } of boxes ?? []) {
        const limit = limits[index]!;
        const box = strikeBox(strikes, now, limit.limit, limit.blockMs!, limit.windowMs);
        this.#logs.set(limit.key, box);
        if (box.closedUntil > 0) return boxedResult(index, limit.blockMs!);
      }
      return result;
    }
    this.#record(limits, states, cost, result.stamp, now);
    for (const { index, strikes } of boxes ?? []) if (strikes > 0) this.#logs.delete(limits[index]!.key);
    return result;
  }

  /** Each quota's state at `now`: its log trimmed to its window, its GCRA state (undefined = empty, or a box). */
  #liveStates(limits: readonly StoreLimit[], now: number): LimitState[] {
    const states = new Array<LimitState>(limits.length);
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      if (limit.algorithm === 'gcra') states[i] = this.#entry(limit.key, now, GcraState);
      else if (limit.algorithm !== 'penalty-box') states[i] = this.#liveLog(limit, now);
    }
    return states;
  }

  /** Writes an allowed consume: each log's cost (its own, else `cost`) of entries stamped `stamp`, each GCRA limit's new TAT. */
  #record(limits: readonly StoreLimit[], states: readonly LimitState[], cost: number, stamp: number, now: number): void {
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      const { key, windowMs, cost: ownCost, algorithm } = limit;
      const units = ownCost ?? cost;
      if (algorithm === 'penalty-box') continue;
      if (algorithm === 'gcra') {
        const tat = tatOf(limit, states[i], now) + units * periodOf(limit);
        const state = states[i] ?? this.#entry(key, now, GcraState); // a key listed twice may have been created just before
        if (state instanceof GcraState) state.tat = tat;
        else this.#logs.set(key, new GcraState(tat));
        continue;
      }
      // An empty log is looked up again: a key listed twice may have been created just before.
      const log = (states[i] as SlidingLog | undefined) ?? this.#entry(key, now, SlidingLog);
      if (log === undefined) this.#logs.set(key, new SlidingLog(stamp, units, windowMs));
      else log.append(stamp, units, windowMs);
    }
    this.#logs.evictOverflow();
  }

  /**
   * The live rate-limit state under `key` if it is a `type`; undefined when there is none. A key
   * holding another kind of state is a StoreError (Redis: WRONGTYPE), checked before any write.
   */
  #entry<T extends LimitEntry>(key: string, now: number, type: new (...args: never[]) => T): T | undefined {
    const entry = this.#logs.get(key, now);
    if (entry === undefined) {
      this.#assertFree(key, now, type, this.#leases, this.#replays);
      return undefined;
    }
    if (entry instanceof type) return entry;
    throw wrongType(key, entry, type);
  }

  /** The log of `limit` trimmed to its window at `now`; undefined (and the key deleted) when empty. */
  #liveLog({ key, windowMs }: StoreLimit, now: number): SlidingLog | undefined {
    const log = this.#entry(key, now, SlidingLog);
    if (log === undefined) return undefined;
    log.trim(now, windowMs);
    if (log.total > 0) return log;
    this.#logs.delete(key);
    return undefined;
  }

  /**
   * The live lease under `key` if it is a `type` (a lock and a record under one key: WRONGTYPE).
   * `find`, not `get`: leases are never evicted, so their recency needs no upkeep.
   */
  #lease<T extends HeldLock | RunningRecord>(key: string, now: number, type: new (...args: never[]) => T): T | undefined {
    const entry = this.#leases.find(key, now);
    if (entry === undefined || entry instanceof type) return entry;
    throw wrongType(key, entry, type);
  }

  /** The record under `keys.record` if it is running and `token` holds it. */
  #runningRecord(keys: IdempotencyKeys, token: string, now: number): RunningRecord | undefined {
    const record = this.#lease(keys.record, now, RunningRecord);
    return record?.token === token ? record : undefined;
  }

  /**
   * Clears the way for a new lease under `key`: no other kind of state may live there, and
   * `maxLocks` must leave room (after reclaiming expired leases). Never evicts a live lease.
   */
  #admitLease(key: string, now: number, type: { readonly name: string }): void {
    this.#assertFree(key, now, type, this.#logs, this.#replays);
    const { maxLocks } = this.#config;
    if (this.#leases.size >= maxLocks) this.#leases.sweep(now, LEASE_RECLAIM_BATCH);
    if (this.#leases.size >= maxLocks) {
      throw new StoreError(
        `MemoryStore holds ${maxLocks} live locks and in-flight idempotency records, its limit (option "maxLocks"); ` +
          'a new one is refused rather than evicting a live one',
      );
    }
  }

  /** Throws a StoreError (Redis: WRONGTYPE) if one of `others` holds live state under `key`. */
  #assertFree(key: string, now: number, type: { readonly name: string }, ...others: KeyLookup[]): void {
    for (const map of others) {
      const entry = map.find(key, now);
      if (entry !== undefined) throw wrongType(key, entry, type);
    }
  }

  /** The timer's job: a bounded batch of expired keys out of each map. */
  #sweep(): void {
    const now = this.#clock();
    const budget = this.#config.sweepBatchSize;
    this.#logs.sweep(now, budget);
    this.#leases.sweep(now, budget);
    this.#replays.sweep(now, budget);
    this.#lastRuns.sweep(now, budget);
  }
}

/** What one rate-limit key holds. */
type LimitEntry = SlidingLog | GcraState | PenaltyBox;

function wrongType(key: string, entry: Expiring, wanted: { readonly name: string }): StoreError {
  return new StoreError(`key "${key}" holds a ${entry.constructor.name}, not a ${wanted.name}: two kinds of state share one key`, { lasting: true });
}
