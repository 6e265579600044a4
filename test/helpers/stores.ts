/**
 * One store per backend, for suites that must behave the same on all of them:
 *
 *   describe.each(storeKinds)('%s store', (kind) => {
 *     let t: TestStore;
 *     beforeAll(async () => { t = await createTestStore(kind); });
 *     afterAll(() => t.close());
 *     it('…', async () => { const id = uniqueId('login'); … t.store.consume([{ key: limitKey('rl:', id, '1m'), … }], 1) … });
 *   });
 *
 * Isolation. Test files run in parallel worker processes against the same shared servers, and key
 * prefixes belong to core (not to stores), so:
 * - Use `uniqueId()` for every id. That alone keeps tests apart on every backend, the cluster included.
 * - `flush()` deletes every key this test store has been handed (limit logs, locks, idempotency
 *   records, fences; recorded from the calls' arguments), on every kind. On `'redis'` it also
 *   FLUSHDBs this worker's own logical DB (see redis.ts), which catches keys other clients of the
 *   file wrote (a child app process on `redisUrl()`). It never touches other workers' data: no
 *   FLUSHALL, and on the cluster (DB 0 only, shared) nothing beyond the keys this store saw.
 * - `close()` closes the store (MemoryStore's sweep timer) and quits the Redis client.
 *
 * `store` is the real store behind a transparent Proxy that records keys; `instanceof` and
 * store-specific methods work as usual.
 *
 * Coalesced decisions. RedisStore sends the consume / peek / refund calls of one event-loop turn
 * as one batch call (several past its bounds). A suite awaiting each call sends batches of one;
 * the `decisionStoreKinds` add Redis kinds that put every decision in a crowd: each consume /
 * peek / refund is made in the same turn as unrelated ones (a consume, a peek, a refund of fresh
 * keys, before and after it), with bounds so small that a turn takes several calls, so a suite's
 * expectations hold for a decision wherever it lands in a batch. `'cluster-crowded'` batches per
 * master (cross-slot calls), `'cluster-by-slot'` per slot.
 *
 * Clients. Those kinds use ioredis. `clientStoreKinds` are the same Redis kinds on every other
 * client RedisStore accepts (test/helpers/clients.ts), named `<kind>:<client>`, e.g.
 * `'cluster:glide'`, `'redis:node-redis-resp3'`, `'cluster-crowded:node-redis'`: suites about the
 * store's behaviour on its client run them too (`contractStoreKinds`, `contractDecisionKinds`),
 * suites about core and the adapters stay on `storeKinds`.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { limitKey } from './keys.js';
import { StoreError } from '../../src/core/errors.js';
import type { Store, StoreLimit } from '../../src/core/store.js';
import { type RedisStoreTestSettings, memoryStoreForTests, redisStoreForTests } from '../../src/stores/testing.js';
import { type ClientKind, connectClient } from './clients.js';
import { clusterNodes, newClusterClient, newRedisClient, redisUrl } from './redis.js';

export const storeKinds = ['memory', 'redis', 'cluster'] as const;
/** Redis kinds whose every decision is made in a crowded turn (see the file header). */
export const crowdedStoreKinds = ['redis-crowded', 'cluster-crowded', 'cluster-by-slot'] as const;
/** For suites of consume / peek / refund: every kind, plus the crowded ones. */
export const decisionStoreKinds = [...storeKinds, ...crowdedStoreKinds] as const;

/**
 * The Redis kinds on the other clients: standalone and Cluster on each. RESP3 on node-redis 6 and
 * GLIDE (its default); node-redis 5 on RESP2.
 */
export const clientStoreKinds = [
  'redis:ioredis-ap',
  'cluster:ioredis-ap',
  'redis:node-redis',
  'cluster:node-redis',
  'redis:node-redis-resp3',
  'cluster:node-redis-resp3',
  'redis:node-redis5',
  'cluster:node-redis5',
  'redis:glide',
  'cluster:glide',
] as const;
/** Crowded Cluster kinds on the clients whose cross-slot calls go their own way (a master's node client, GLIDE by address). */
export const crowdedClientStoreKinds = ['cluster-crowded:node-redis', 'cluster-crowded:glide'] as const;
/** Store contract suites of locks and records: every store, every client. */
export const contractStoreKinds = [...storeKinds, ...clientStoreKinds] as const;
/** Store contract suites of decisions: every store and crowd, every client. */
export const contractDecisionKinds = [...decisionStoreKinds, ...clientStoreKinds, ...crowdedClientStoreKinds] as const;

export type StoreKind = (typeof contractDecisionKinds)[number];
type BaseKind = (typeof decisionStoreKinds)[number];

/** The store kind of `kind` without its client, and the client (ioredis when none is named). */
export function parseStoreKind(kind: StoreKind): { base: BaseKind; client: ClientKind } {
  const [base, client = 'ioredis'] = kind.split(':') as [BaseKind, ClientKind | undefined];
  return { base, client };
}

/** Bounds of the crowded kinds: a crowd of five decisions takes two or three calls. */
const CROWDED_BOUNDS = { maxDecisions: 2, maxArguments: 24 } as const;

export interface TestStore {
  readonly kind: StoreKind;
  readonly store: Store;
  /** Deletes what this store wrote (see the file header for exactly what). */
  flush(): Promise<void>;
  /** Closes the store and its Redis client. */
  close(): Promise<void>;
}

/** Test settings of the store (src/stores/testing.ts), e.g. a virtual `clock` for property tests. */
export interface TestStoreOptions {
  clock?: () => number;
  /** Redis kinds: decisions and arguments per batch call. */
  batchBounds?: RedisStoreTestSettings['batchBounds'];
}

const READY_TIMEOUT_MS = 10_000;

export async function createTestStore(kind: StoreKind, options: TestStoreOptions = {}): Promise<TestStore> {
  if (kind === 'memory') {
    const memory = memoryStoreForTests({ clock: options.clock });
    return recordingTestStore(kind, memory, async () => memory.close()); // stops its sweep timer
  }
  const { base, client: clientKind } = parseStoreKind(kind);
  const crowded = base !== 'redis' && base !== 'cluster';
  const standalone = base === 'redis' || base === 'redis-crowded';
  const settings = {
    ...options,
    ...(crowded ? { batchBounds: CROWDED_BOUNDS } : {}),
    ...(base === 'cluster-by-slot' ? { clusterGrouping: 'slot' as const } : {}),
  };
  if (clientKind === 'ioredis') {
    if (standalone) {
      const client = newRedisClient();
      await waitUntilReady(client, 'the shared standalone Redis');
      const test = recordingTestStore(kind, redisStoreForTests(client, settings), () => quit(client), crowded);
      return {
        ...test,
        async flush() {
          await test.flush();
          await client.flushdb(); // this worker's own DB only (redis.ts)
        },
      };
    }
    const client = newClusterClient();
    await waitUntilReady(client, 'the shared Redis Cluster');
    return recordingTestStore(kind, redisStoreForTests(client, settings), () => quit(client), crowded);
  }
  const connected = await connectClient(clientKind, standalone ? { url: redisUrl() } : { nodes: clusterNodes() });
  const test = recordingTestStore(kind, redisStoreForTests(connected.client, settings), () => connected.close(), crowded);
  if (!standalone) return test;
  return {
    ...test,
    async flush() {
      await test.flush();
      const admin = newRedisClient(); // FLUSHDB of this worker's own DB, as on 'redis'
      try {
        await admin.flushdb();
      } finally {
        await quit(admin);
      }
    },
  };
}

/** A random id no other test (or test run) shares, e.g. `login:1f3a:7:9c2e4b10`. */
export function uniqueId(name = 'id'): string {
  uniqueCounter++;
  return `${name}:${process.pid.toString(36)}:${uniqueCounter.toString(36)}:${randomBytes(4).toString('hex')}`;
}
let uniqueCounter = 0;

const DECISIONS = new Set<PropertyKey>(['consume', 'peek', 'refund']);

/**
 * Wraps `store` so every key a call is handed is remembered; `flush()` resets exactly those keys.
 * `crowded`: each consume / peek / refund is surrounded, in its turn, by unrelated decisions.
 */
function recordingTestStore(kind: StoreKind, store: Store, close: () => Promise<void>, crowded = false): TestStore {
  const touched = new Set<string>();
  const wrappers = new Map<PropertyKey, unknown>();
  /** Unrelated decisions on fresh keys, their outcomes ignored (they are only company). */
  const crowd = (): void => {
    const limit: StoreLimit = { key: limitKey('rl:', uniqueId('crowd'), '1m'), windowMs: 60_000, limit: 3 };
    touched.add(limit.key);
    const ignore = (): undefined => undefined;
    store.consume([limit], 1).catch(ignore);
    store.peek([limit, { key: limitKey('rl:', uniqueId('crowd'), '1s'), windowMs: 1_000, limit: 2 }], 2).catch(ignore);
    store.refund([limit], 1, 1).catch(ignore);
  };
  const recording = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let wrapper = wrappers.get(property);
      if (!wrapper) {
        const crowdThis = crowded && DECISIONS.has(property);
        wrapper = (...args: unknown[]) => {
          for (const key of keysIn(args[0])) touched.add(key);
          if (!crowdThis) return Reflect.apply(value, target, args); // `target`, not the proxy: private fields need it
          crowd();
          const result: unknown = Reflect.apply(value, target, args);
          crowd();
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
  return {
    kind,
    store: recording,
    async flush() {
      const keys = [...touched];
      touched.clear();
      // One reset per hash tag, so no call spans two cluster slots.
      for (const group of groupByHashTag(keys)) await store.reset(group);
    },
    close,
  };
}

/**
 * The store keys in a call's first argument: `StoreLimit[]` (`.key`), `string[]` (reset), or a
 * `LockKeys` / `IdempotencyKeys` object (its string values).
 */
function keysIn(argument: unknown): string[] {
  if (Array.isArray(argument)) {
    return argument.flatMap((item: unknown) => {
      if (typeof item === 'string') return [item];
      const key = (item as { key?: unknown } | null)?.key;
      return typeof key === 'string' ? [key] : [];
    });
  }
  if (argument !== null && typeof argument === 'object') {
    return Object.values(argument).filter((value): value is string => typeof value === 'string');
  }
  return [];
}

/** Redis Cluster's rule: the text between the first `{` and the next `}`, if not empty; else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

function groupByHashTag(keys: readonly string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const tag = hashTag(key);
    const group = groups.get(tag);
    if (group) group.push(key);
    else groups.set(tag, [key]);
  }
  return [...groups.values()];
}

function waitUntilReady(client: Redis | Cluster, what: string): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const onError = (err: unknown): void => {
      lastError = err;
    };
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      client.off('error', onError);
      client.disconnect();
      reject(new Error(`could not connect to ${what} within ${READY_TIMEOUT_MS} ms`, { cause: lastError }));
    }, READY_TIMEOUT_MS);
    const onReady = (): void => {
      clearTimeout(timer);
      client.off('error', onError);
      resolve();
    };
    client.once('ready', onReady);
    client.on('error', onError);
  });
}

async function quit(client: Redis | Cluster): Promise<void> {
  await client.quit().catch(() => client.disconnect());
}

/** `store` with `method` replaced by `wrap(original)`; every other method bound to the store (its private fields need it). */
function withMethod<S extends object>(store: S, method: string, wrap: (original: (...args: unknown[]) => Promise<unknown>) => (...args: unknown[]) => Promise<unknown>): S {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property !== method) return value.bind(target);
      return wrap(async (...args) => Reflect.apply(value, target, args));
    },
  });
}

/**
 * `store` whose first `method` call reaches the store, then fails as if its reply were lost with
 * the connection (a client that does not re-send: node-redis, GLIDE).
 */
export function replyLostOnce<S extends object>(store: S, method: 'acquireLock' | 'beginIdempotent' | 'completeIdempotent'): S {
  let lost = false;
  return withMethod(store, method, (original) => async (...args) => {
    const result = await original(...args);
    if (lost) return result;
    lost = true;
    throw new Error('Socket closed unexpectedly');
  });
}

/**
 * `store` whose first `times` calls of `method` fail without reaching the store, as while Redis
 * is stalled (the store's in-flight gate refuses to send); `calls.count` counts every call.
 */
export function failsFirst<S extends object>(store: S, method: 'completeIdempotent', times: number): { store: S; calls: { count: number } } {
  const calls = { count: 0 };
  const wrapped = withMethod(store, method, (original) => async (...args) => {
    calls.count++;
    if (calls.count <= times) throw new StoreError('connection stalled; the call was not sent', { notSent: true });
    return original(...args);
  });
  return { store: wrapped, calls };
}
