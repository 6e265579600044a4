/**
 * RedisStore: the Store interface on Redis (standalone or Cluster, ioredis 5/6), one Lua call per
 * operation. The scripts live in lua/ (sliding log on LISTs, lock with fencing, idempotency
 * records); see src/stores/redis/ for loading, reply parsing and Cluster grouping.
 *
 * On Cluster, the limits of one consume/peek/refund may carry different hash tags (a per-route
 * table mixing ids). Such a call is split per tag and is all-or-nothing by compensation (the
 * groups already recorded are refunded when a later one blocks), not one atomic step.
 */
import { ConfigError } from '../core/errors.js';
import { formatValue } from '../core/duration.js';
import type {
  ConsumeResult,
  IdempotencyBeginResult,
  IdempotencyKeys,
  LockAcquireResult,
  LockKeys,
  Store,
  StoredResponse,
  StoreLimit,
} from '../core/store.js';
import type { RedisArgument, RedisClientLike } from './redis/client.js';
import { consumeGrouped, peekGrouped, type GroupOperations } from './redis/grouped-consume.js';
import { groupBySlotTag } from './redis/hash-tag.js';
import { parseConsume, parseFlag, parseIdempotencyBegin, parseInteger, parseLockAcquire } from './redis/replies.js';
import { ScriptRunner, type ScriptMode } from './redis/script-runner.js';
import { scripts, type Script } from './redis/scripts.js';

export type { RedisClientLike } from './redis/client.js';

export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster`, connected. Calls made while it is not `ready` fail at once
   * with a StoreError rather than waiting in the offline queue.
   */
  client: RedisClientLike;
  /**
   * For tests only: the store clock in ms (fractions dropped), replacing Redis `TIME` in the scripts (the
   * property tests drive MemoryStore and RedisStore with one virtual clock). Key expiry still
   * runs on Redis's real clock, so under this option logs keep a TTL of at least 1 h.
   */
  clock?: (() => number) | undefined;
  /**
   * Internal, for tests: `'eval'` forces EVALSHA/EVAL as on servers without Functions.
   * @default 'function' (falls back to 'eval' by itself when the server lacks FUNCTION)
   */
  mode?: ScriptMode | undefined;
}

/** Slot 0 of every argument list is filled by the runner (function name, SHA1 or source). */
const SLOT = '';

export class RedisStore implements Store {
  private readonly runner: ScriptRunner;
  private readonly clock: (() => number) | undefined;
  private readonly isCluster: boolean;
  private readonly groupOperations: GroupOperations;

  constructor(options: RedisStoreOptions) {
    const client = (options as Partial<RedisStoreOptions> | undefined)?.client;
    if (!client || typeof client.call !== 'function' || typeof client.callBuffer !== 'function' || typeof client.status !== 'string') {
      throw new ConfigError(`client must be an ioredis Redis or Cluster instance; got ${formatValue(client)}`);
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new ConfigError(`clock must be a function returning ms (tests only); got ${formatValue(options.clock)}`);
    }
    if (options.mode !== undefined && options.mode !== 'function' && options.mode !== 'eval') {
      throw new ConfigError(`mode must be 'function' or 'eval'; got ${formatValue(options.mode)}`);
    }
    this.clock = options.clock;
    this.isCluster = client.isCluster === true;
    this.runner = new ScriptRunner(client, options.mode);
    // Connect and load the scripts now, in the background, so the first requests do not spend
    // their timeout budget on it. A failure here is not lost: the first call retries and reports it.
    this.runner.ready().catch(() => undefined);
    this.groupOperations = {
      consume: (limits, cost, align) => this.consumeOne(scripts.consume, limits, cost, align),
      peek: (limits, cost) => this.consumeOne(scripts.peek, limits, cost, undefined),
      refund: (limits, cost, stamp) => this.refundOne(limits, cost, stamp),
    };
  }

  /**
   * Waits until the client is connected (as any ioredis command does) and loads the scripts.
   * Optional: the first call loads them; a call made before the client is ready fails fast.
   */
  ready(): Promise<void> {
    return this.runner.ready();
  }

  /** Diagnostics for tests: the script mode in use and FUNCTION LOADs sent per server. */
  get scriptStats(): { mode: ScriptMode; libraryLoads: ReadonlyMap<string, number> } {
    return { mode: this.runner.currentMode, libraryLoads: this.runner.libraryLoads };
  }

  async consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    checkCall(limits, cost);
    const groups = this.slotGroups(limits);
    if (!groups) return this.consumeOne(scripts.consume, limits, cost, undefined);
    return consumeGrouped(limits, groups, cost, this.groupOperations);
  }

  async peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    checkCall(limits, cost);
    const groups = this.slotGroups(limits);
    if (!groups) return this.consumeOne(scripts.peek, limits, cost, undefined);
    return peekGrouped(limits, groups, cost, this.groupOperations);
  }

  async refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> {
    checkCall(limits, cost);
    const groups = this.slotGroups(limits);
    if (!groups) return this.refundOne(limits, cost, stamp);
    await Promise.all(groups.map((group) => this.refundOne(group.map((index) => limits[index]!), cost, stamp)));
  }

  async reset(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const groups = this.isCluster ? groupBySlotTag(keys) : undefined;
    if (!groups) return this.resetOne(keys);
    await Promise.all(groups.map((group) => this.resetOne(group.map((index) => keys[index]!))));
  }

  async acquireLock(keys: LockKeys, token: string, ttlMs: number): Promise<LockAcquireResult> {
    const reply = await this.runner.run(scripts.lockAcquire, [SLOT, 2, keys.lock, keys.fence, this.clockArg(), token, ttlMs]);
    return parseLockAcquire(scripts.lockAcquire.operation, reply);
  }

  async extendLock(keys: LockKeys, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.runner.run(scripts.lockExtend, [SLOT, 1, keys.lock, token, ttlMs]);
    return parseFlag(scripts.lockExtend.operation, reply);
  }

  async releaseLock(keys: LockKeys, token: string): Promise<boolean> {
    const reply = await this.runner.run(scripts.lockRelease, [SLOT, 1, keys.lock, token]);
    return parseFlag(scripts.lockRelease.operation, reply);
  }

  async beginIdempotent(keys: IdempotencyKeys, token: string, fingerprint: string, leaseMs: number): Promise<IdempotencyBeginResult> {
    const args = [SLOT, 2, keys.record, keys.fence, this.clockArg(), token, fingerprint, leaseMs];
    const reply = await this.runner.run(scripts.idempotencyBegin, args, true);
    return parseIdempotencyBegin(scripts.idempotencyBegin.operation, reply);
  }

  async extendIdempotent(keys: IdempotencyKeys, token: string, leaseMs: number): Promise<boolean> {
    const reply = await this.runner.run(scripts.idempotencyExtend, [SLOT, 1, keys.record, token, leaseMs]);
    return parseFlag(scripts.idempotencyExtend.operation, reply);
  }

  async completeIdempotent(keys: IdempotencyKeys, token: string, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const hasBody = response.body !== null;
    const args = [
      SLOT,
      1,
      keys.record,
      token,
      response.status,
      JSON.stringify(response.headers),
      hasBody ? '1' : '0',
      response.body ?? '',
      ttlMs,
    ];
    const reply = await this.runner.run(scripts.idempotencyComplete, args);
    return parseFlag(scripts.idempotencyComplete.operation, reply);
  }

  async abortIdempotent(keys: IdempotencyKeys, token: string): Promise<boolean> {
    const reply = await this.runner.run(scripts.idempotencyAbort, [SLOT, 1, keys.record, token]);
    return parseFlag(scripts.idempotencyAbort.operation, reply);
  }

  /** Slot groups on Cluster when the limits' keys hash to different slots; else undefined. */
  private slotGroups(limits: readonly StoreLimit[]): number[][] | undefined {
    if (!this.isCluster || limits.length < 2) return undefined;
    return groupBySlotTag(limits.map((limit) => limit.key));
  }

  /** The test clock in whole ms (a fraction would make the written and the returned stamp differ), or '' for TIME. */
  private clockArg(): string | number {
    return this.clock ? Math.floor(this.clock()) : '';
  }

  /**
   * One consume or peek call: `[_, n, key_1..key_n, clock, cost, align, window_1, limit_1, cost_1, ...]`.
   * Every limit's cost is sent (its own, else the call's), so the script never falls back.
   */
  private async consumeOne(script: Script, limits: readonly StoreLimit[], cost: number, align: number | undefined): Promise<ConsumeResult> {
    const n = limits.length;
    const args = new Array<RedisArgument>(5 + 4 * n);
    args[0] = SLOT;
    args[1] = n;
    const tail = 2 + n;
    args[tail] = this.clockArg();
    args[tail + 1] = cost;
    args[tail + 2] = align ?? '';
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      args[2 + i] = limit.key;
      args[tail + 3 + 3 * i] = limit.windowMs;
      args[tail + 4 + 3 * i] = limit.limit;
      args[tail + 5 + 3 * i] = limit.cost ?? cost;
    }
    const reply = await this.runner.run(script, args);
    return parseConsume(script.operation, reply, n);
  }

  /** One refund call: `[_, n, key_1..key_n, clock, cost, stamp, window_1, cost_1, ...]` (each limit's own cost, else the call's). */
  private async refundOne(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> {
    const n = limits.length;
    const args = new Array<RedisArgument>(5 + 3 * n);
    args[0] = SLOT;
    args[1] = n;
    args[2 + n] = this.clockArg();
    args[3 + n] = cost;
    args[4 + n] = stamp;
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      args[2 + i] = limit.key;
      args[5 + n + 2 * i] = limit.windowMs;
      args[6 + n + 2 * i] = limit.cost ?? cost;
    }
    parseInteger(scripts.refund.operation, await this.runner.run(scripts.refund, args));
  }

  private async resetOne(keys: readonly string[]): Promise<void> {
    parseInteger(scripts.reset.operation, await this.runner.run(scripts.reset, [SLOT, keys.length, ...keys]));
  }
}

/** Rejects calls the scripts cannot answer meaningfully (a cost < 1, the call's or a limit's own, would make LREM remove all). */
function checkCall(limits: readonly StoreLimit[], cost: number): void {
  if (limits.length === 0) throw new ConfigError('limits must hold at least 1 limit; got an empty list');
  if (!Number.isSafeInteger(cost) || cost < 1) throw new ConfigError(`cost must be an integer ≥ 1; got ${formatValue(cost)}`);
  for (let i = 0; i < limits.length; i++) {
    const own = limits[i]!.cost;
    if (own !== undefined && (!Number.isSafeInteger(own) || own < 1)) {
      throw new ConfigError(`limits[${i}].cost must be an integer ≥ 1; got ${formatValue(own)}`);
    }
  }
}
