/**
 * Idempotency record scripts (begin / extend / complete / abort) called through RedisStore: the
 * state machine acquired → in-flight | mismatch → replay, token checks, binary-safe bodies.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKeys } from '../../src/core/store-keys.js';
import type { IdempotencyKeys, StoredResponse } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { newRedisClient } from '../helpers/redis.js';
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

const EVERY_BYTE = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
const response: StoredResponse = {
  status: 201,
  headers: { 'content-type': 'application/octet-stream', link: ['<a>; rel="x"', '<b>; rel="y"'], 'x-name': 'zoë ☃' },
  body: Buffer.concat([EVERY_BYTE, Buffer.from(EVERY_BYTE).reverse()]),
};

function newKeys(): IdempotencyKeys {
  return idempotencyKeys('idem:', uniqueId('request'));
}

async function acquiredFence(keys: IdempotencyKeys, token: string, fingerprint = 'fp-1', leaseMs = 5000): Promise<number> {
  const begun = await store.beginIdempotent(keys, token, fingerprint, leaseMs);
  if (begun.state !== 'acquired') throw new Error(`expected acquired, got ${JSON.stringify(begun)}`);
  return begun.fence;
}

describe('begin', () => {
  it('acquires a new record with a lease, then reports in-flight to the same request and mismatch to another', async () => {
    const keys = newKeys();
    const fence = await acquiredFence(keys, 'holder');
    expect(fence).toBeGreaterThan(0);
    expect(await client.hgetall(keys.record)).toEqual({ state: 'run', token: 'holder', fp: 'fp-1', fence: String(fence) });
    const ttl = await client.pttl(keys.record);
    expect(ttl).toBeGreaterThan(4000);
    expect(ttl).toBeLessThanOrEqual(5000);
    expect(await client.pttl(keys.fence)).toBeGreaterThan(23 * 3600 * 1000); // a day after its last fence, not forever
    expect(await client.pttl(keys.fence)).toBeLessThanOrEqual(24 * 3600 * 1000);

    const inFlight = await store.beginIdempotent(keys, 'retry', 'fp-1', 5000);
    expect(inFlight.state).toBe('in-flight');
    if (inFlight.state === 'in-flight') {
      expect(inFlight.retryAfterMs).toBeGreaterThan(4000);
      expect(inFlight.retryAfterMs).toBeLessThanOrEqual(5000);
    }
    expect(await store.beginIdempotent(keys, 'other', 'fp-2', 5000)).toEqual({ state: 'mismatch' });
  });

  it('treats a re-sent begin of the holder as acquired with the same fence', async () => {
    const keys = newKeys();
    const fence = await acquiredFence(keys, 'holder', 'fp-1', 1000);
    expect(await store.beginIdempotent(keys, 'holder', 'fp-1', 9000)).toEqual({ state: 'acquired', fence });
    expect(await client.pttl(keys.record)).toBeGreaterThan(8000);
  });

  it('issues a greater fence after an abort', async () => {
    const keys = newKeys();
    const first = await acquiredFence(keys, 'a');
    expect(await store.abortIdempotent(keys, 'a')).toBe(true);
    expect(await acquiredFence(keys, 'b')).toBeGreaterThan(first);
  });
});

describe('complete and replay', () => {
  it('stores the response for the holder only, and replays status, headers and every byte of the body', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder');
    expect(await store.completeIdempotent(keys, 'intruder', response, 60_000)).toBe(false);
    expect(await client.hget(keys.record, 'state')).toBe('run');
    expect(await store.completeIdempotent(keys, 'holder', response, 60_000)).toBe(true);
    const ttl = await client.pttl(keys.record);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);

    const replay = await store.beginIdempotent(keys, 'retry', 'fp-1', 5000);
    expect(replay).toEqual({ state: 'replay', response });
    if (replay.state === 'replay') expect(replay.response.body!.equals(response.body!)).toBe(true);
    expect(await store.beginIdempotent(keys, 'retry', 'fp-other', 5000)).toEqual({ state: 'mismatch' });
  });

  it('replays a response stored without a body as not replayable (body null)', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder');
    expect(await store.completeIdempotent(keys, 'holder', { status: 500, headers: {}, body: null }, 60_000)).toBe(true);
    expect(await store.beginIdempotent(keys, 'retry', 'fp-1', 5000)).toEqual({
      state: 'replay',
      response: { status: 500, headers: {}, body: null },
    });
  });

  it('keeps an empty body apart from no body', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder');
    await store.completeIdempotent(keys, 'holder', { status: 204, headers: {}, body: Buffer.alloc(0) }, 60_000);
    expect(await store.beginIdempotent(keys, 'retry', 'fp-1', 5000)).toEqual({
      state: 'replay',
      response: { status: 204, headers: {}, body: Buffer.alloc(0) },
    });
  });

  it('answers a second complete of the holder as done without changing it; refuses extend or abort once done', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder');
    await store.completeIdempotent(keys, 'holder', response, 60_000);
    expect(await store.completeIdempotent(keys, 'holder', { status: 200, headers: {}, body: null }, 60_000)).toBe(true);
    expect(await store.completeIdempotent(keys, 'other', { status: 200, headers: {}, body: null }, 60_000)).toBe(false);
    expect(await store.extendIdempotent(keys, 'holder', 5000)).toBe(false);
    expect(await store.abortIdempotent(keys, 'holder')).toBe(false);
    expect(await client.hget(keys.record, 'status')).toBe('201');
  });
});

describe('extend and abort', () => {
  it('extends the lease for the holder only', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder', 'fp-1', 1000);
    expect(await store.extendIdempotent(keys, 'other', 9000)).toBe(false);
    expect(await client.pttl(keys.record)).toBeLessThanOrEqual(1000);
    expect(await store.extendIdempotent(keys, 'holder', 9000)).toBe(true);
    expect(await client.pttl(keys.record)).toBeGreaterThan(8000);
  });

  it('aborts for the holder only, so a retry can run', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'holder');
    expect(await store.abortIdempotent(keys, 'other')).toBe(false);
    expect(await client.exists(keys.record)).toBe(1);
    expect(await store.abortIdempotent(keys, 'holder')).toBe(true);
    expect(await client.exists(keys.record)).toBe(0);
    expect((await store.beginIdempotent(keys, 'retry', 'fp-2', 5000)).state).toBe('acquired');
  });

  it('lets a stale holder neither complete nor abort the record of the request that took over', async () => {
    const keys = newKeys();
    await acquiredFence(keys, 'stale', 'fp-1', 30);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await acquiredFence(keys, 'fresh');
    expect(await store.completeIdempotent(keys, 'stale', response, 60_000)).toBe(false);
    expect(await store.abortIdempotent(keys, 'stale')).toBe(false);
    expect(await client.hget(keys.record, 'token')).toBe('fresh');
  });
});
