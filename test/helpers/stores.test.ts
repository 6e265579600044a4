/**
 * The test-store helper: every kind gives a working store, `flush()` deletes what the store wrote
 * (and, on 'redis', this worker's DB) without touching other ids, and the recording Proxy is
 * transparent (instanceof, getters, methods using private state).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockKeys } from '../../src/core/store-keys.js';
import { limitKey } from './keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { RedisStore } from '../../src/stores/redis.js';
import { newRedisClient } from './redis.js';
import { createTestStore, storeKinds, uniqueId, type TestStore } from './stores.js';

const limitOf = (id: string): StoreLimit[] => [{ key: limitKey('rl:', id, '1m'), windowMs: 60_000, limit: 1 }];

describe.each(storeKinds)('createTestStore(%s)', (kind) => {
  let test: TestStore;
  beforeAll(async () => {
    test = await createTestStore(kind);
  });
  afterAll(async () => {
    await test.close();
  });

  it('gives the real store class behind the recording proxy', () => {
    expect(test.kind).toBe(kind);
    expect(test.store).toBeInstanceOf(kind === 'memory' ? MemoryStore : RedisStore);
  });

  it('flush() empties the limit logs and locks this store wrote', async () => {
    const id = uniqueId('flush');
    expect((await test.store.consume(limitOf(id), 1)).allowed).toBe(true);
    expect((await test.store.consume(limitOf(id), 1)).allowed).toBe(false);
    const lock = lockKeys('lk:', id);
    expect(await test.store.acquireLock(lock, 'holder-a', 60_000)).toMatchObject({ acquired: true });

    await test.flush();

    expect((await test.store.consume(limitOf(id), 1)).allowed).toBe(true);
    expect(await test.store.acquireLock(lock, 'holder-b', 60_000)).toMatchObject({ acquired: true });
    await test.flush();
  });

  it('flush() leaves ids written through another test store alone', async () => {
    const other = await createTestStore(kind);
    try {
      const id = uniqueId('other');
      expect((await other.store.consume(limitOf(id), 1)).allowed).toBe(true);
      await test.store.consume(limitOf(uniqueId('mine')), 1);
      if (kind !== 'redis') {
        await test.flush(); // on 'redis' flush() also FLUSHDBs this worker's DB, shared by both stores
        expect((await other.store.consume(limitOf(id), 1)).allowed).toBe(false);
      }
      await other.flush();
    } finally {
      await other.close();
    }
  });
});

describe("createTestStore('redis').flush()", () => {
  it("also deletes keys other clients wrote in this worker's DB", async () => {
    const test = await createTestStore('redis');
    const client = newRedisClient();
    try {
      const key = `stores-test:${uniqueId()}`;
      await client.set(key, 'written by a child process, say');
      await test.flush();
      expect(await client.exists(key)).toBe(0);
    } finally {
      await client.quit();
      await test.close();
    }
  });
});

describe('uniqueId()', () => {
  it('never repeats', () => {
    const ids = Array.from({ length: 1_000 }, () => uniqueId('x'));
    expect(new Set(ids).size).toBe(1_000);
    expect(ids[0]).toMatch(/^x:/);
  });
});
