/**
 * RedisStore: the Store interface on Redis (standalone or Cluster; ioredis 5/6, node-redis 5/6 or
 * Valkey GLIDE 2, told apart by their shape in redis/clients/index.ts). The scripts live
 * in lua/ (sliding log on LISTs, one entry as a STRING; GCRA; lock with fencing; idempotency records); each has a typed binding
 * in src/stores/redis/bindings.ts, run by script-runner.ts.
 *
 * consume / peek / refund made in one event-loop turn are coalesced: sent at the end of the turn
 * (standalone: as soon as one call is full) as calls of lua/batch.lua, which runs them in arrival
 * order, each as exactly as alone (decision-batcher.ts; on Cluster grouped per master,
 * batch-dispatch.ts). reset, locks and idempotency records are one call each. A consume that Redis
 * refused until T is answered here, without a call, until T or for a second at most (refusal-cache.ts).
 *
 * On Cluster, the limits of one consume/peek/refund may carry different hash tags (a per-route
 * table mixing ids). Such a call is split per tag and is all-or-nothing by compensation (the
 * groups already recorded are refunded when a later one blocks), not one atomic step.
 */
import { ConfigError } from '../core/errors.js';
import { formatValue } from '../core/duration.js';
import { optionNames, readOptions } from '../core/options.js';
import type {
  ConsumeResult,
  IdempotencyBeginResult,
  IdempotencyKeys,
  IdempotencyRun,
  LockAcquireResult,
  LockKeys,
  Store,
  StoredResponse,
  StoreLimit,
} from '../core/store.js';
import { noteCallBudget } from '../core/store.js';
import { checkCall, checkInteger, checkRun } from './arguments.js';
import { bindings, library } from './redis/bindings.js';
import type { StoreClient } from './redis/client.js';
import { detectClient, type RedisClientLike } from './redis/clients/index.js';
import { clusterDispatch, standaloneDispatch } from './redis/batch-dispatch.js';
import { type CallOrder, callOrder } from './redis/key-ordered-calls.js';
import { DEFAULT_BATCH_BOUNDS, DecisionBatcher } from './redis/decision-batcher.js';
import { consumeGrouped, peekGrouped, type GroupOperations } from './redis/grouped-consume.js';
import { groupBySlotTag } from './redis/hash-tag.js';
import { RefusalCache } from './redis/refusal-cache.js';
import { ScriptRunner } from './redis/script-runner.js';
import { testHooks, testSettingsOf } from './test-hooks.js';

export type { RedisClientLike } from './redis/clients/index.js';

export interface RedisStoreOptions {
  /**
   * A Redis client as you created it: an ioredis `Redis` or `Cluster`, a node-redis client or
   * cluster (`createClient()` / `createCluster()`), or a Valkey GLIDE `GlideClient` or
   * `GlideClusterClient`. Calls made while it is not connected fail at once with a StoreError
   * rather than waiting in the client's offline queue.
   */
  client: RedisClientLike;
}

const OPTION_NAMES = optionNames<RedisStoreOptions>({ client: true });

export class RedisStore implements Store {
  static {
    // For scriptStats() of src/stores/testing.ts: this block alone can read a store's #runner.
    testHooks.scriptStats = (store) => ({ mode: store.#runner.currentMode, libraryLoads: store.#runner.libraryLoads });
  }

  readonly #runner: ScriptRunner;
  /** Calls on the same keys in the order made, whatever the client (see key-ordered-calls.ts). */
  readonly #order: CallOrder;
  readonly #isCluster: boolean;
  /** consume / peek / refund, coalesced per event-loop turn. */
  readonly #batcher: DecisionBatcher;
  /** consume / peek / refund of limits that share one slot (Cluster groups of one call). */
  readonly #perSlot: GroupOperations;
  /** Refusals answered locally until they end; none under a test clock (store time is virtual there). */
  readonly #refusals: RefusalCache | undefined;
  /**
   * A guard's call budget: the in-flight gate lets a connection stay silent that long before it
   * stops sending (see SilenceAllowance). A function of its own, not a method: it needs no `this`,
   * so it works through a Proxy around the store too.
   */
  readonly [noteCallBudget]: (timeoutMs: number) => void;

  /** @throws ConfigError naming the bad option. */
  constructor(options: RedisStoreOptions) {
    const { client } = readOptions(options, OPTION_NAMES, 'RedisStore', '{ client: new Redis() }') as Partial<RedisStoreOptions>;
    const view: StoreClient | undefined = detectClient(client);
    if (view === undefined) {
      throw new ConfigError(
        `RedisStore option "client" must be an ioredis Redis or Cluster, a node-redis client or cluster, or a Valkey GLIDE client; got ${formatValue(client)}`,
      );
    }
    this.#isCluster = view.cluster !== undefined;
    const test = testSettingsOf(options);
    const runner = new ScriptRunner(view, library, test);
    this.#runner = runner;
    this[noteCallBudget] = (timeoutMs) => runner.silence.allow(timeoutMs);
    // Connect and load the scripts now, in the background, so the first requests do not spend
    // their timeout budget on it. A failure here is not lost: the first call retries and reports it.
    runner.ready().catch(() => undefined);
    const bounds = test?.batchBounds ?? DEFAULT_BATCH_BOUNDS;
    const order = callOrder(view, runner);
    this.#order = order;
    const batcher = new DecisionBatcher(
      this.#isCluster ? clusterDispatch(runner, view, bounds, test?.clusterGrouping ?? 'node', order) : standaloneDispatch(runner, order),
      // Cluster: a turn's decisions spread over the masters, so a call sent when the queue is full
      // would give each master a fraction of one; they leave at the turn's end, one call per master
      // (of up to MAX_BATCH_DECISIONS: 256 callers on 3 masters, 10 000 keys, 93 k decisions/s with
      // calls of 24 vs 94–99 k with 43 or 64; one hot key 299–314 k vs 266–343 k; same Redis CPU).
      // An early flush on Cluster is not measured yet.
      this.#isCluster ? undefined : bounds,
    );
    this.#batcher = batcher;
    this.#refusals = test?.clock === undefined ? new RefusalCache() : undefined;
    this.#perSlot = {
      consume: (limits, cost, align) => batcher.consume(limits, cost, align),
      peek: (limits, cost) => batcher.peek(limits, cost),
      // Every refund, also the one that undoes a Cluster group (grouped-consume.ts), frees units:
      // refusals remembered for its keys are out of date, before it and once it landed (one
      // remembered while it was on its way, e.g. a request refused while a unit was held for it).
      refund: async (limits, cost, stamp) => {
        const keys = limits.map((limit) => limit.key);
        this.#refusals?.forget(keys);
        await batcher.refund(limits, cost, stamp);
        this.#refusals?.forget(keys);
      },
    };
  }

  /**
   * Waits until the client is connected (as any command of the client would) and loads the scripts.
   * Optional: the first call loads them; a call made before the client is ready fails fast.
   */
  ready(): Promise<void> {
    return this.#runner.ready();
  }

  consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    try {
      checkCall(limits, cost);
    } catch (err) {
      return Promise.reject(err);
    }
    const refusals = this.#refusals;
    const refused = refusals?.lookup(limits, cost);
    if (refused !== undefined) return Promise.resolve(refused);
    const groups = this.#slotGroups(limits);
    const decided = groups ? consumeGrouped(limits, groups, cost, this.#perSlot) : this.#batcher.consume(limits, cost, undefined);
    if (refusals === undefined) return decided;
    return decided.then((result) => {
      if (!result.allowed) refusals.remember(limits, cost, result);
      return result;
    });
  }

  peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    try {
      checkCall(limits, cost);
    } catch (err) {
      return Promise.reject(err);
    }
    const groups = this.#slotGroups(limits);
    if (groups) return peekGrouped(limits, groups, cost, this.#perSlot);
    return this.#batcher.peek(limits, cost);
  }

  async refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> {
    checkCall(limits, cost);
    checkInteger('stamp', stamp, 0);
    const groups = this.#slotGroups(limits);
    if (!groups) await this.#perSlot.refund(limits, cost, stamp);
    else await Promise.all(groups.map((group) => this.#perSlot.refund(group.map((index) => limits[index]!), cost, stamp)));
  }

  async reset(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    this.#refusals?.forget(keys);
    // Decisions asked for earlier in this turn go first, as they would without coalescing (and
    // on a client that does not keep the order of its commands, the reset waits for their calls).
    this.#batcher.flush();
    const groups = this.#isCluster ? groupBySlotTag(keys) : undefined;
    const calls = groups ? groups.map((group) => group.map((index) => keys[index]!)) : [keys];
    await Promise.all(calls.map((slotKeys) => this.#order(() => slotKeys, undefined, () => this.#runner.run(bindings.reset, slotKeys))));
    this.#refusals?.forget(keys);
  }

  acquireLock(keys: LockKeys, token: string, ttlMs: number): Promise<LockAcquireResult> {
    return this.#runner.run(bindings.lockAcquire, { keys, token, ttlMs });
  }

  extendLock(keys: LockKeys, token: string, ttlMs: number): Promise<boolean> {
    return this.#runner.run(bindings.lockExtend, { keys, token, ttlMs });
  }

  releaseLock(keys: LockKeys, token: string): Promise<boolean> {
    return this.#runner.run(bindings.lockRelease, { keys, token });
  }

  beginIdempotent(keys: IdempotencyKeys, token: string, fingerprint: string, leaseMs: number): Promise<IdempotencyBeginResult> {
    return this.#runner.run(bindings.idempotencyBegin, { keys, token, fingerprint, leaseMs });
  }

  extendIdempotent(keys: IdempotencyKeys, token: string, leaseMs: number): Promise<boolean> {
    return this.#runner.run(bindings.idempotencyExtend, { keys, token, leaseMs });
  }

  async completeIdempotent(keys: IdempotencyKeys, token: string, response: StoredResponse, ttlMs: number, run?: IdempotencyRun): Promise<boolean> {
    checkRun(run);
    return this.#runner.run(bindings.idempotencyComplete, { keys, token, response, ttlMs, run });
  }

  abortIdempotent(keys: IdempotencyKeys, token: string): Promise<boolean> {
    return this.#runner.run(bindings.idempotencyAbort, { keys, token });
  }

  /** Slot groups on Cluster when the limits' keys hash to different slots; else undefined. */
  #slotGroups(limits: readonly StoreLimit[]): number[][] | undefined {
    if (!this.#isCluster || limits.length < 2) return undefined;
    return groupBySlotTag(limits.map((limit) => limit.key));
  }
}
