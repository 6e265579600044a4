/**
 * A single call never does unbounded work: a log of limit 100 000 whose window expires at once
 * (wholly, or all but its newest entries) is dropped or trimmed in bounded steps (UNLINK, LTRIM of
 * whole quicklist nodes after a chunked scan + binary search), measured with SLOWLOG on an own
 * server (SLOWLOG and its threshold are server-wide).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import type { RedisStore } from '../../src/stores/redis.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { logLength } from '../helpers/sliding-logs.js';
import { uniqueId } from '../helpers/stores.js';

const T = 1_700_000_000_000;
const LIMIT = 100_000;
const WINDOW_MS = 60_000;
/** Generous for a noisy 2-core box; the purge of a ZSET log of this size measured 23.7 ms. */
const MAX_CALL_US = 10_000;

let server: RedisServerHandle;
let client: Redis;
let now = T;
let store: RedisStore;

beforeAll(async () => {
  server = await startRedisServer({ args: ['--slowlog-log-slower-than', '0', '--slowlog-max-len', '128'] });
  client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  store = redisStoreForTests(client, { clock: () => now });
  await store.ready();
});

afterAll(async () => {
  client.disconnect();
  await server.stop();
});

/** Runs `call` alone and returns the µs Redis spent in its FCALL (SLOWLOG, threshold 0). */
async function fcallMicros(call: () => Promise<unknown>): Promise<number> {
  await client.slowlog('RESET');
  await call();
  const entries = (await client.slowlog('GET', 128)) as [number, number, number, string[]][];
  const fcalls = entries.filter((entry) => entry[3][0]?.toUpperCase() === 'FCALL');
  expect(fcalls).toHaveLength(1);
  return fcalls[0]![2];
}

function bigLimit(): StoreLimit {
  return { key: limitKey('rl:', uniqueId('huge'), '1m'), windowMs: WINDOW_MS, limit: LIMIT };
}

describe(`limit ${LIMIT} whose whole window expires at once`, () => {
  it('drops the expired log in one bounded call', async () => {
    const huge = bigLimit();
    now = T;
    const fill = await fcallMicros(() => store.consume([huge], LIMIT));
    expect(await client.llen(huge.key)).toBe(LIMIT);
    now = T + WINDOW_MS;
    let decision;
    const purge = await fcallMicros(async () => {
      decision = await store.consume([huge], 1);
    });
    expect(decision).toMatchObject({ allowed: true, remaining: LIMIT - 1 });
    expect(await logLength(client, huge.key)).toBe(1);
    console.log(`[large-log] fill ${LIMIT} entries (cost ${LIMIT}): ${fill} µs; whole-log purge: ${purge} µs`);
    expect(purge).toBeLessThan(MAX_CALL_US);
  });

  it('trims all but the newest entries in one bounded call', async () => {
    const huge = bigLimit();
    now = T;
    await store.consume([huge], LIMIT - 3);
    now = T + 30_000;
    await store.consume([huge], 3);
    now = T + WINDOW_MS;
    let decision;
    const trim = await fcallMicros(async () => {
      decision = await store.consume([huge], 1);
    });
    expect(decision).toMatchObject({ allowed: true, remaining: LIMIT - 4 });
    expect(await client.llen(huge.key)).toBe(4);
    expect(await client.pttl(huge.key)).toBeGreaterThan(0);
    console.log(`[large-log] trim of ${LIMIT - 3} of ${LIMIT} entries: ${trim} µs`);
    expect(trim).toBeLessThan(MAX_CALL_US);
  });

  it('answers a blocked request on a full log in one bounded call', async () => {
    const huge = bigLimit();
    now = T;
    await store.consume([huge], LIMIT / 2);
    now = T + 1;
    await store.consume([huge], LIMIT / 2);
    now = T + 2;
    let decision;
    const blocked = await fcallMicros(async () => {
      decision = await store.consume([huge], 1);
    });
    // The entry at index limit - cost (the oldest) must age out; it also gives the next unit back.
    expect(decision).toEqual({ allowed: false, index: 0, remaining: 0, resetMs: WINDOW_MS - 1, retryAfterMs: WINDOW_MS - 2, stamp: 0, nextQuotaMs: WINDOW_MS - 2 });
    console.log(`[large-log] blocked decision on a full log of ${LIMIT}: ${blocked} µs`);
    expect(blocked).toBeLessThan(MAX_CALL_US);
  });
});
