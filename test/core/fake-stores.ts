/**
 * Store doubles for core tests: a store that fails, one that never answers, and a wrapper that
 * records the calls a real store receives (and can be switched "down"). These are Store objects,
 * not Redis mocks: Lua semantics are only ever tested against a real redis-server.
 */
import type { Store, StoreLimit } from '../../src/core/store.js';

const STORE_METHODS = [
  'consume',
  'peek',
  'refund',
  'reset',
  'acquireLock',
  'extendLock',
  'releaseLock',
  'beginIdempotent',
  'extendIdempotent',
  'completeIdempotent',
  'abortIdempotent',
] as const satisfies readonly (keyof Store)[];

function storeWhere(answer: (method: keyof Store) => Promise<never>): Store {
  return Object.fromEntries(STORE_METHODS.map((method) => [method, () => answer(method)])) as unknown as Store;
}

/** Every call rejects, as a client does when Redis refuses connections. */
export function failingStore(message = 'connect ECONNREFUSED 127.0.0.1:6390'): Store {
  return storeWhere(() => Promise.reject(new Error(message)));
}

/** Every call stays pending forever, as with a SIGSTOPped Redis and an offline queue. */
export function silentStore(): Store {
  return storeWhere(() => new Promise<never>(() => {}));
}

export interface RecordingStore extends Store {
  /** The limits of every consume/peek/refund call, in order. */
  readonly calls: { method: string; limits: readonly StoreLimit[]; cost?: number }[];
  /** While true, every call rejects like `failingStore`. */
  down: boolean;
}

/** Wraps a real store: records its rate-limit calls, and fails while `down`. */
export function recordingStore(inner: Store): RecordingStore {
  const calls: RecordingStore['calls'] = [];
  const store = { calls, down: false } as unknown as RecordingStore;
  const delegate = inner as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of STORE_METHODS) {
    (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      if (method === 'reset') calls.push({ method, limits: (args[0] as string[]).map((key) => ({ key, windowMs: 0, limit: 0 })) });
      else if (method === 'consume' || method === 'peek' || method === 'refund') calls.push({ method, limits: args[0] as StoreLimit[], cost: args[1] as number });
      return store.down ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390')) : delegate[method]!.apply(inner, args);
    };
  }
  return store;
}
