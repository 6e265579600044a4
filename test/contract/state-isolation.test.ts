/**
 * Store contract, one kind of state never costs another: rate-limit traffic on more keys than
 * MemoryStore keeps never frees a held lock or an in-flight idempotency record, and a consume
 * that meets a key holding another kind of state (Redis: WRONGTYPE) fails as a whole and records
 * nothing — on Cluster too, where limits of different ids are separate calls and the groups
 * already recorded must be refunded.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { idempotencyKeys, lockKeys } from '../../src/core/store-keys.js';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { MEMORY_STORE_DEFAULTS } from '../../src/stores/memory.js';
import { contractDecisionKinds, parseStoreKind, uniqueId } from '../helpers/stores.js';
import { entriesIn, freshLimit, useStore } from './fixtures.js';

const LONG_TTL_MS = 30_000;
/** Limits per consume call during the churn: one id (one hash tag, one call on Cluster), many names. */
const CHURN_BATCH = 1_000;

/** `count` rate-limit keys written in batches; a short window, so Redis expires them by itself soon after. */
async function churn(consume: (limits: StoreLimit[]) => Promise<unknown>, count: number): Promise<void> {
  for (let written = 0; written < count; written += CHURN_BATCH) {
    const id = uniqueId('churn');
    const limits = Array.from({ length: CHURN_BATCH }, (_, i) => ({ key: limitKey('rl:', id, `n${i}`), windowMs: 1_000, limit: 5 }));
    await consume(limits);
  }
}

/**
 * Keys of the churn: past MemoryStore's maxKeys on MemoryStore and the ioredis kinds; on the other
 * clients 5 calls of 1 000 keys, what their transport needs (Redis itself evicts nothing here, and
 * the full churn costs ~1.5 s per kind).
 */
function churnKeys(kind: Parameters<typeof parseStoreKind>[0]): number {
  return parseStoreKind(kind).client === 'ioredis' ? MEMORY_STORE_DEFAULTS.maxKeys + CHURN_BATCH : 5 * CHURN_BATCH;
}

describe.each(contractDecisionKinds)('%s store: state isolation', (kind) => {
  const store = useStore(kind);

  it('keeps a held lock (and its fence) and an in-flight record through rate-limit traffic on more keys than MemoryStore keeps', async () => {
    const lock = lockKeys('lock:', uniqueId('resource'));
    const record = idempotencyKeys('idem:', uniqueId('payment'));
    const holder = randomUUID();
    const granted = await store().acquireLock(lock, holder, LONG_TTL_MS);
    const begun = await store().beginIdempotent(record, holder, 'fp', LONG_TTL_MS);
    if (!granted.acquired || begun.state !== 'acquired') throw new Error('setup: the lock and the record must be free');

    await churn((limits) => store().consume(limits, 1), churnKeys(kind));

    expect(await store().acquireLock(lock, randomUUID(), LONG_TTL_MS)).toMatchObject({ acquired: false });
    expect(await store().acquireLock(lock, holder, LONG_TTL_MS)).toEqual({ acquired: true, fence: granted.fence });
    expect(await store().beginIdempotent(record, randomUUID(), 'fp', LONG_TTL_MS)).toMatchObject({ state: 'in-flight' });
    expect(await store().completeIdempotent(record, holder, { status: 200, headers: {}, body: null }, LONG_TTL_MS)).toBe(true);
    expect(await store().releaseLock(lock, holder)).toBe(true);
  }, 60_000);

  it('fails a consume that meets a key holding a lock, and records nothing in its other limits', async () => {
    const lock = lockKeys('lock:', uniqueId('resource'));
    expect(await store().acquireLock(lock, randomUUID(), LONG_TTL_MS)).toMatchObject({ acquired: true });
    const clash: StoreLimit = { key: lock.lock, windowMs: 60_000, limit: 10 };
    const before = freshLimit(60_000, 10); // another id: on Cluster an earlier, separately recorded call
    const after = freshLimit(60_000, 10);

    const failed = store().consume([before, clash, after], 1);
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toThrow(/WRONGTYPE|holds a HeldLock/);
    await expect(failed).rejects.toMatchObject({ lasting: true }); // no retry can get past it
    expect([await entriesIn(store(), before), await entriesIn(store(), after)]).toEqual([0, 0]);
    expect(await store().acquireLock(lock, randomUUID(), LONG_TTL_MS)).toMatchObject({ acquired: false });
  });

  it('fails a complete whose record key holds a lock as lasting (an idempotency lease does not retry it)', async () => {
    const lock = lockKeys('lock:', uniqueId('resource'));
    const holder = randomUUID();
    expect(await store().acquireLock(lock, holder, LONG_TTL_MS)).toMatchObject({ acquired: true });
    const record = { record: lock.lock, fence: lock.fence };
    const failed = store().completeIdempotent(record, holder, { status: 200, headers: {}, body: null }, LONG_TTL_MS);
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ lasting: true });
    expect(await store().releaseLock(lock, holder)).toBe(true);
  });
});
