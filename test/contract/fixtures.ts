/**
 * Shared pieces of the store contract suite: a virtual clock the stores read (injected through
 * src/stores/testing.ts), production-shaped keys, and a way to count a log's entries through the
 * Store interface alone (so the same assertion holds on every backend).
 */
import { afterAll, beforeAll } from 'vitest';
import { limitKey } from '../helpers/keys.js';
import type { ConsumeResult, Store, StoreLimit } from '../../src/core/store.js';
import { type StoreKind, type TestStore, createTestStore, uniqueId } from '../helpers/stores.js';

/** An allowed result: `retryAfterMs` 0, the rest as given. */
export const allowed = (fields: Omit<ConsumeResult, 'allowed' | 'retryAfterMs'>): ConsumeResult => ({ allowed: true, retryAfterMs: 0, ...fields });
/** A refused result: nothing recorded (`stamp` 0), the rest as given. */
export const blocked = (fields: Omit<ConsumeResult, 'allowed' | 'stamp'>): ConsumeResult => ({ allowed: false, stamp: 0, ...fields });

/** Virtual store time in whole ms; each test starts from its own `start()`. */
export class ManualClock {
  now = 0;
  private epoch = 1_750_000_000_000;
  readonly read = (): number => this.now;

  /** Jumps to a fresh time far past every earlier test's, and returns it. */
  start(): number {
    this.epoch += 100_000_000;
    this.now = this.epoch;
    return this.now;
  }

  /** Moves the clock by `ms` (negative = the clock stepped back) and returns the new time. */
  advance(ms: number): number {
    this.now += ms;
    return this.now;
  }
}

/** A limit on a fresh id: `limit` per `windowMs`, key `rl:{<digest>}:<name>`. */
export function freshLimit(windowMs: number, limit: number, id = uniqueId('client'), name = `${windowMs}ms`): StoreLimit {
  return { key: limitKey('rl:', id, name), windowMs, limit };
}

/** The same log seen with another quota (what a `limit(req)` function returning another value does). */
export function withQuota(limit: StoreLimit, quota: number): StoreLimit {
  return { ...limit, limit: quota };
}

const COUNTING_QUOTA = 1_000_000;

/** How many entries of `limit`'s log count now: a peek with a huge quota, which records nothing. */
export async function entriesIn(store: Store, limit: StoreLimit): Promise<number> {
  // Only key and window: a limit's own `cost` would skew the count.
  const result = await store.peek([{ key: limit.key, windowMs: limit.windowMs, limit: COUNTING_QUOTA }], 1);
  return COUNTING_QUOTA - 1 - result.remaining;
}

/**
 * Opens one test store of `kind` for the enclosing describe (with `clock` when given) and flushes
 * and closes it afterwards. Returns a getter, as the store exists only once `beforeAll` ran.
 */
export function useStore(kind: StoreKind, clock?: ManualClock): () => Store {
  let test: TestStore | undefined;
  beforeAll(async () => {
    test = await createTestStore(kind, clock ? { clock: clock.read } : {});
  });
  afterAll(async () => {
    await test?.flush();
    await test?.close();
  });
  return () => test!.store;
}
