/**
 * Lock scripts (acquire / extend / release with fencing) called through RedisStore. The fence
 * must grow strictly per key, also after its counter is lost (DEL, a server restarted empty).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockKeys } from '../../src/core/store-keys.js';
import type { LockAcquireResult } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { newRedisClient, startRedisServer } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

let client: Redis;
let store: RedisStore;

beforeAll(async () => {
  client = newRedisClient();
  store = new RedisStore({ client });
  await store.ready();
});

afterAll(async () => {
  await client.quit();
});

function fenceOf(result: LockAcquireResult): number {
  if (!result.acquired) throw new Error(`expected the lock to be acquired, got ${JSON.stringify(result)}`);
  return result.fence;
}

describe('acquire, extend, release', () => {
  it('grants one holder; a contender learns how long the lease has left', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    const fence = fenceOf(await store.acquireLock(keys, 'holder', 5000));
    expect(await client.get(keys.lock)).toBe('holder');
    const busy = await store.acquireLock(keys, 'contender', 5000);
    expect(busy.acquired).toBe(false);
    if (!busy.acquired) {
      expect(busy.retryAfterMs).toBeGreaterThan(4000);
      expect(busy.retryAfterMs).toBeLessThanOrEqual(5000);
    }
    expect(fence).toBeGreaterThan(0);
  });

  it('treats a re-sent acquire with the same token as acquired, with the same fence', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    const first = fenceOf(await store.acquireLock(keys, 'holder', 1000));
    expect(await store.acquireLock(keys, 'holder', 8000)).toEqual({ acquired: true, fence: first });
    expect(await client.pttl(keys.lock)).toBeGreaterThan(7000); // the lease was reset to the new ttl
  });

  it('extends and releases only for the holder, and never re-acquires', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    await store.acquireLock(keys, 'holder', 1000);
    expect(await store.extendLock(keys, 'other', 9000)).toBe(false);
    expect(await store.releaseLock(keys, 'other')).toBe(false);
    expect(await client.get(keys.lock)).toBe('holder');
    expect(await store.extendLock(keys, 'holder', 9000)).toBe(true);
    expect(await client.pttl(keys.lock)).toBeGreaterThan(8000);
    expect(await store.releaseLock(keys, 'holder')).toBe(true);
    expect(await client.exists(keys.lock)).toBe(0);
    expect(await store.extendLock(keys, 'holder', 9000)).toBe(false);
    expect(await client.exists(keys.lock)).toBe(0);
    expect(await store.releaseLock(keys, 'holder')).toBe(false);
  });

  it('frees the lock when the lease runs out', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    await store.acquireLock(keys, 'holder', 30);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await store.acquireLock(keys, 'next', 1000)).acquired).toBe(true);
    expect(await store.extendLock(keys, 'holder', 1000)).toBe(false);
  });

  it('gives both keys a TTL, the fence key far longer than the lease', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    await store.acquireLock(keys, 'holder', 2000);
    expect(await client.pttl(keys.lock)).toBeGreaterThan(0);
    expect(await client.pttl(keys.fence)).toBeGreaterThan(23 * 3600 * 1000); // a day after its last fence
    expect(await client.pttl(keys.fence)).toBeLessThanOrEqual(24 * 3600 * 1000);
  });
});

describe('fencing tokens', () => {
  it('increase strictly over acquisitions, also after the fence counter is deleted', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    const fences: number[] = [];
    for (let round = 0; round < 20; round++) {
      fences.push(fenceOf(await store.acquireLock(keys, `holder-${round}`, 1000)));
      await store.releaseLock(keys, `holder-${round}`);
      if (round % 5 === 4) await client.del(keys.fence);
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
  });

  it('start above the store time in µs, so a lost counter never reissues an old fence', async () => {
    const keys = lockKeys('lk:', uniqueId('lock'));
    const [seconds, micros] = (await client.time()).map(Number) as [number, number];
    const fence = fenceOf(await store.acquireLock(keys, 'holder', 1000));
    expect(fence).toBeGreaterThanOrEqual(seconds * 1_000_000 + micros);
  });

  it('increase across a server restarted empty', async () => {
    const server = await startRedisServer();
    const own = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    try {
      const ownStore = new RedisStore({ client: own });
      await ownStore.ready();
      const keys = lockKeys('lk:', uniqueId('lock'));
      const before = fenceOf(await ownStore.acquireLock(keys, 'a', 60_000));
      await server.restart();
      await ownStore.ready(); // waits for the reconnect; the library is reloaded on first use
      const after = fenceOf(await ownStore.acquireLock(keys, 'b', 60_000));
      expect(after).toBeGreaterThan(before);
      expect(await own.call('FUNCTION', 'LIST')).toHaveLength(1);
    } finally {
      own.disconnect();
      await server.stop();
    }
  });
});

describe('test clock', () => {
  it('uses the injected clock (in µs) as the fence floor', async () => {
    const clocked = redisStoreForTests(client, { clock: () => 5_000_000_000_000 });
    const keys = lockKeys('lk:', uniqueId('lock'));
    expect(await clocked.acquireLock(keys, 'a', 1000)).toEqual({ acquired: true, fence: 5_000_000_000_000_000 });
    await clocked.releaseLock(keys, 'a');
    expect(await clocked.acquireLock(keys, 'b', 1000)).toEqual({ acquired: true, fence: 5_000_000_000_000_001 });
  });
});
