/**
 * Store contract, locks: one holder at a time, token-checked extend/release, a re-sent acquire
 * by the holder, strictly increasing fences, and leases that expire. Real time on every kind
 * (Redis leases are PX expiries on Redis's own clock), with explicit tolerances.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { lockKeys } from '../../src/core/store-keys.js';
import type { LockKeys } from '../../src/core/store.js';
import { contractStoreKinds, uniqueId } from '../helpers/stores.js';
import { useStore } from './fixtures.js';

/** Long enough that a lease never runs out during a test step on a loaded CI machine. */
const LONG_TTL_MS = 30_000;
const freshLock = (): LockKeys => lockKeys('lock:', uniqueId('resource'));

describe.each(contractStoreKinds)('%s store: locks', (kind) => {
  const store = useStore(kind);

  it('grants one holder among 100 concurrent acquires; the others learn how long the lease has left', async () => {
    const keys = freshLock();
    const tokens = Array.from({ length: 100 }, () => randomUUID());
    const results = await Promise.all(tokens.map((token) => store().acquireLock(keys, token, LONG_TTL_MS)));
    const winners = results.filter((result) => result.acquired);
    expect(winners).toHaveLength(1);
    for (const result of results) {
      if (!result.acquired) {
        expect(result.retryAfterMs).toBeGreaterThan(0);
        expect(result.retryAfterMs).toBeLessThanOrEqual(LONG_TTL_MS);
      }
    }
  });

  it('extends and releases only for the holder’s token', async () => {
    const keys = freshLock();
    const holder = randomUUID();
    const other = randomUUID();
    expect(await store().acquireLock(keys, holder, LONG_TTL_MS)).toMatchObject({ acquired: true });
    expect(await store().extendLock(keys, other, LONG_TTL_MS)).toBe(false);
    expect(await store().releaseLock(keys, other)).toBe(false);
    expect(await store().acquireLock(keys, other, LONG_TTL_MS)).toMatchObject({ acquired: false });
    expect(await store().extendLock(keys, holder, LONG_TTL_MS)).toBe(true);
    expect(await store().releaseLock(keys, holder)).toBe(true);
    expect(await store().releaseLock(keys, holder)).toBe(false);
    expect(await store().extendLock(keys, holder, LONG_TTL_MS)).toBe(false); // never re-acquires
    expect(await store().acquireLock(keys, other, LONG_TTL_MS)).toMatchObject({ acquired: true });
  });

  it('treats an acquire re-sent by the holder as acquired, with the same fence and a refreshed lease', async () => {
    const keys = freshLock();
    const holder = randomUUID();
    const first = await store().acquireLock(keys, holder, 1_000);
    const again = await store().acquireLock(keys, holder, LONG_TTL_MS);
    expect(first.acquired && again.acquired).toBe(true);
    expect(again).toEqual(first);
    const busy = await store().acquireLock(keys, randomUUID(), LONG_TTL_MS);
    expect(busy.acquired).toBe(false);
    expect(!busy.acquired && busy.retryAfterMs).toBeGreaterThan(1_000); // the refreshed lease, not the first one
  });

  it('issues strictly increasing fences, also after the fence counter is lost', async () => {
    const keys = freshLock();
    const fences: number[] = [];
    for (let i = 0; i < 20; i++) {
      const token = randomUUID();
      const result = await store().acquireLock(keys, token, LONG_TTL_MS);
      if (!result.acquired) throw new Error(`acquire ${i} was refused`);
      fences.push(result.fence);
      expect(await store().releaseLock(keys, token)).toBe(true);
      if (i === 10) await store().reset([keys.fence]);
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
    expect(Number.isSafeInteger(fences.at(-1))).toBe(true);
  });

  it('frees the lock when the lease expires; the old holder can then neither extend nor release it', async () => {
    const keys = freshLock();
    const stale = randomUUID();
    const first = await store().acquireLock(keys, stale, 100);
    await sleep(250);
    const next = randomUUID();
    const second = await store().acquireLock(keys, next, LONG_TTL_MS);
    expect(second.acquired).toBe(true);
    expect(first.acquired && second.acquired && second.fence > first.fence).toBe(true);
    expect(await store().extendLock(keys, stale, LONG_TTL_MS)).toBe(false);
    expect(await store().releaseLock(keys, stale)).toBe(false);
    expect(await store().releaseLock(keys, next)).toBe(true);
  });

  it('an extension keeps the lease beyond its first ttl', async () => {
    const keys = freshLock();
    const holder = randomUUID();
    await store().acquireLock(keys, holder, 500);
    expect(await store().extendLock(keys, holder, LONG_TTL_MS)).toBe(true);
    await sleep(700);
    expect(await store().acquireLock(keys, randomUUID(), LONG_TTL_MS)).toMatchObject({ acquired: false });
    expect(await store().releaseLock(keys, holder)).toBe(true);
  });
});
