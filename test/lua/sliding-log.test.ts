/**
 * The sliding-log scripts (consume / peek / refund) called directly through RedisStore with an
 * injected store clock, on the shared standalone Redis (this worker's DB).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { newRedisClient } from '../helpers/redis.js';
import { logEntries } from '../helpers/sliding-logs.js';
import { uniqueId } from '../helpers/stores.js';

/** A store time far from 0, like a real one. */
const T = 1_700_000_000_000;
/** TTL floor of logs written under the test clock (sliding-log.lua). */
const TEST_CLOCK_MIN_TTL_MS = 3_600_000;

let client: Redis;
let now = T;
let store: RedisStore;

beforeAll(async () => {
  client = newRedisClient();
  store = redisStoreForTests(client, { clock: () => now });
  await store.ready();
});

afterAll(async () => {
  await client.quit();
});

beforeEach(() => {
  now = T;
});

function limit(max: number, windowMs: number, name = `${windowMs}ms`): StoreLimit {
  return { key: limitKey('rl:', uniqueId('sliding'), name), windowMs, limit: max };
}

async function log(key: string): Promise<number[]> {
  return logEntries(client, key);
}

describe('window edges', () => {
  it('counts an entry at t until t + window - 1, not at t + window', async () => {
    const one = limit(1, 1000);
    expect(await store.consume([one], 1)).toEqual({ allowed: true, index: 0, remaining: 0, resetMs: 1000, retryAfterMs: 0, stamp: T, nextQuotaMs: 1000 });
    now = T + 999;
    expect(await store.consume([one], 1)).toEqual({ allowed: false, index: 0, remaining: 0, resetMs: 1, retryAfterMs: 1, stamp: 0, nextQuotaMs: 1 });
    now = T + 1000;
    expect(await store.consume([one], 1)).toMatchObject({ allowed: true, remaining: 0, stamp: T + 1000 });
    expect(await log(one.key)).toEqual([T + 1000]);
  });

  it('gives the exact retryAfterMs: the entry at index (limit - cost) from the newest must age out', async () => {
    const three = limit(3, 1000);
    for (const at of [0, 100, 200]) {
      now = T + at;
      expect(await store.consume([three], 1)).toMatchObject({ allowed: true, remaining: 2 - at / 100 });
    }
    now = T + 300;
    // cost 1: the oldest (T) must go → 1000 - 300.
    expect(await store.consume([three], 1)).toEqual({ allowed: false, index: 0, remaining: 0, resetMs: 900, retryAfterMs: 700, stamp: 0, nextQuotaMs: 700 });
    // cost 2: T and T+100 must go → 1100 - 300.
    expect(await store.peek([three], 2)).toMatchObject({ allowed: false, retryAfterMs: 800 });
    now = T + 1100;
    expect(await store.consume([three], 2)).toMatchObject({ allowed: true, remaining: 0, stamp: T + 1100 });
    // T and T + 100 are out of the window: two, past EXPIRED_KEPT (1), so both are trimmed.
    expect(await log(three.key)).toEqual([T + 1100, T + 1100, T + 200]);
  });

  it('never admits cost > limit and says so with retryAfterMs -1, writing nothing', async () => {
    const two = limit(2, 1000);
    expect(await store.consume([two], 3)).toEqual({ allowed: false, index: 0, remaining: 2, resetMs: 0, retryAfterMs: -1, stamp: 0, nextQuotaMs: 0 });
    expect(await client.exists(two.key)).toBe(0);
  });
});

describe('cost', () => {
  it('records one entry per unit of cost, also past the unpack() batch size', async () => {
    const big = limit(10_000, 60_000);
    expect(await store.consume([big], 9000)).toMatchObject({ allowed: true, remaining: 1000, stamp: T });
    expect(await client.llen(big.key)).toBe(9000);
    expect(await store.consume([big], 1001)).toMatchObject({ allowed: false, remaining: 1000, retryAfterMs: 60_000 });
    expect(await store.consume([big], 1000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await client.llen(big.key)).toBe(10_000);
  });
});

describe('several limits', () => {
  it('is all-or-nothing: a block by one limit writes nothing to the others', async () => {
    const perSecond = limit(2, 1000, '1s');
    const perHour = limit(100, 3_600_000, '1h');
    await store.consume([perSecond, perHour], 1);
    await store.consume([perSecond, perHour], 1);
    now = T + 10;
    expect(await store.consume([perSecond, perHour], 1)).toEqual({ allowed: false, index: 0, remaining: 0, resetMs: 990, retryAfterMs: 990, stamp: 0, nextQuotaMs: 990 });
    expect(await client.llen(perHour.key)).toBe(2);
  });

  it('decides by the fewest remaining when allowed (ties: lowest index) and the longest wait when blocked', async () => {
    const a = limit(5, 1000, 'a');
    const b = limit(3, 10_000, 'b');
    const c = limit(3, 5000, 'c');
    expect(await store.consume([a, b, c], 1)).toMatchObject({ allowed: true, index: 1, remaining: 2, resetMs: 10_000 });
    now = T + 1;
    await store.consume([a, b, c], 2);
    now = T + 2;
    // b and c both block (3 of 3); b's oldest ages out at T + 10000, c's at T + 5000.
    expect(await store.consume([a, b, c], 1)).toEqual({ allowed: false, index: 1, remaining: 0, resetMs: 9999, retryAfterMs: 9998, stamp: 0, nextQuotaMs: 9998 });
    // A cost no limit of the list can ever take wins over any finite wait.
    expect(await store.peek([a, b, c, limit(1, 1000, 'd')], 2)).toMatchObject({ allowed: false, index: 3, retryAfterMs: -1 });
  });
});

describe('peek', () => {
  it('answers what consume would, and writes nothing', async () => {
    const five = limit(5, 1000);
    await store.consume([five], 2);
    now = T + 50;
    expect(await store.peek([five], 2)).toEqual({ allowed: true, index: 0, remaining: 1, resetMs: 1000, retryAfterMs: 0, stamp: 0, nextQuotaMs: 950 });
    expect(await store.peek([five], 4)).toEqual({ allowed: false, index: 0, remaining: 3, resetMs: 950, retryAfterMs: 950, stamp: 0, nextQuotaMs: 950 });
    expect(await log(five.key)).toEqual([T, T]);
  });
});

describe('refund', () => {
  it('removes exactly cost entries of the stamp, never a newer request', async () => {
    const ten = limit(10, 1000);
    const first = await store.consume([ten], 3);
    const second = await store.consume([ten], 2); // same ms: same stamp, interchangeable entries
    now = T + 5;
    await store.consume([ten], 1);
    expect(first.stamp).toBe(T);
    expect(second.stamp).toBe(T);
    await store.refund([ten], 3, first.stamp);
    expect(await log(ten.key)).toEqual([T + 5, T, T]);
    await store.refund([ten], 1, T + 999); // never written: nothing to remove
    expect(await client.llen(ten.key)).toBe(3);
  });

  it('refunds every limit of the call', async () => {
    const a = limit(4, 1000, 'a');
    const b = limit(4, 60_000, 'b');
    const { stamp } = await store.consume([a, b], 2);
    await store.refund([a, b], 2, stamp);
    expect(await client.exists(a.key, b.key)).toBe(0);
  });
});

describe('one call of many decisions (pushes to a hot log go as one LPUSH)', () => {
  it('answers and writes exactly as the same decisions one call each', async () => {
    const run = async (hot: StoreLimit, other: StoreLimit, together: boolean) => {
      await store.consume([hot], 2); // a LIST already
      now = T + 10;
      const steps = [
        () => store.consume([hot], 1),
        () => store.consume([hot], 1),
        () => store.peek([hot], 1),
        () => store.consume([hot, other], 1), // two limits, one of them new
        () => store.consume([hot], 1), // the limit (5) is reached: blocked, its wait read with LINDEX
        () => store.refund([hot], 1, T + 10),
        () => store.consume([other], 1),
        () => store.consume([hot], 1),
      ];
      const results = together ? await Promise.all(steps.map((step) => step())) : [];
      if (!together) for (const step of steps) results.push(await step());
      return { results, hot: await log(hot.key), other: await log(other.key) };
    };
    const alone = await run(limit(5, 1000, 'hot-alone'), limit(5, 1000, 'other-alone'), false);
    now = T;
    const batched = await run(limit(5, 1000, 'hot-batched'), limit(5, 1000, 'other-batched'), true);
    expect(batched).toEqual(alone);
    expect(alone.hot).toEqual([T + 10, T + 10, T + 10, T, T]);
    expect(alone.results[4]).toMatchObject({ allowed: false });
  });
});

describe('clock steps', () => {
  it('clamps stamps to the newest entry when the clock steps back by less than a window', async () => {
    const three = limit(3, 1000);
    now = T + 500;
    await store.consume([three], 1);
    now = T + 100;
    expect(await store.consume([three], 1)).toMatchObject({ allowed: true, stamp: T + 500, resetMs: 1400 });
    expect(await log(three.key)).toEqual([T + 500, T + 500]);
  });

  it('drops a log from another clock epoch (stepped back by more than a window)', async () => {
    const one = limit(1, 1000);
    now = T + 5000;
    await store.consume([one], 1);
    now = T + 4000; // one window behind the entry: still this epoch
    expect(await store.consume([one], 1)).toMatchObject({ allowed: false, retryAfterMs: 2000 });
    now = T + 3999; // the entry at T + 5000 is more than a window ahead
    expect(await store.consume([one], 1)).toMatchObject({ allowed: true, stamp: T + 3999 });
    expect(await log(one.key)).toEqual([T + 3999]);
  });
});

describe('trimming', () => {
  it('trims only the expired tail, scanning past the chunked reads with a binary search', async () => {
    const big = limit(10_000, 1000);
    await store.consume([big], 2000);
    now = T + 10;
    await store.consume([big], 1500);
    now = T + 900;
    await store.consume([big], 5);
    now = T + 1010; // T and T + 10 are expired (3500 entries), T + 900 is not
    expect(await store.consume([big], 1)).toMatchObject({ allowed: true, remaining: 10_000 - 6 });
    expect(await log(big.key)).toEqual([T + 1010, ...Array<number>(5).fill(T + 900)]);
  });

  // Edges: the log's first read takes its TAIL_READ (4) oldest (the log also holds 3 entries in
  // the window: up to 1 expired it is read whole, up to 3 the boundary is in that read), then
  // single reads gallop 8, 16, 32, 64 ... entries further (to 12, 29, 62, 127 from the tail) and
  // binary-search the last stride.
  it.each([1, 2, 3, 4, 5, 11, 12, 13, 14, 28, 29, 30, 31, 61, 62, 63, 64, 126, 127, 128, 129, 4000])(
    'finds the boundary with %i expired entries (first read, galloping and binary search edges)',
    async (expired) => {
      const big = limit(10_000, 1000);
      await store.consume([big], expired);
      now = T + 500;
      await store.consume([big], 3);
      now = T + 1000;
      expect(await store.consume([big], 1)).toMatchObject({ allowed: true, remaining: 10_000 - 4 });
      // Up to EXPIRED_KEPT (1) expired entries stay; more are trimmed, all of them.
      const kept = expired <= 1 ? Array<number>(expired).fill(T) : [];
      expect(await log(big.key)).toEqual([T + 1000, T + 500, T + 500, T + 500, ...kept]);
    },
  );

  it('keeps up to 1 expired entry, then trims every expired one', async () => {
    const twelve = limit(12, 1000);
    for (let at = 0; at < 10; at++) {
      now = T + at * 100;
      await store.consume([twelve], 1);
    }
    now = T + 1050; // entry T is expired: counted out, kept
    expect(await store.consume([twelve], 1)).toMatchObject({ allowed: true, remaining: 2 });
    expect(await client.llen(twelve.key)).toBe(11);
    now = T + 1150; // T + 100 too: two expired, both trimmed
    expect(await store.consume([twelve], 1)).toMatchObject({ allowed: true, remaining: 2 });
    expect(await client.llen(twelve.key)).toBe(10);
  });

  it('deletes a log whose newest entry expired', async () => {
    const five = limit(5, 1000);
    await store.consume([five], 3);
    now = T + 1000;
    expect(await store.peek([five], 1)).toMatchObject({ allowed: true, remaining: 4 });
    expect(await client.exists(five.key)).toBe(0);
  });
});

describe('expiry', () => {
  it('leaves a TTL on every key after every operation', async () => {
    const a = limit(3, 1000, 'a');
    const b = limit(50, 60_000, 'b');
    const check = async () => {
      for (const key of [a.key, b.key]) {
        if ((await client.exists(key)) === 0) continue;
        const ttl = await client.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(TEST_CLOCK_MIN_TTL_MS);
      }
    };
    const steps: [number, () => Promise<unknown>][] = [
      [0, () => store.consume([a, b], 1)],
      [10, () => store.consume([a, b], 2)],
      [20, () => store.consume([a, b], 1)], // blocked by a
      [30, () => store.peek([a, b], 1)],
      [1005, () => store.consume([a, b], 1)], // trims a
      [1006, () => store.refund([a, b], 1, T + 1005)],
      [5000, () => store.consume([a, b], 1)], // a recreated
    ];
    for (const [at, step] of steps) {
      now = T + at;
      await step();
      await check();
    }
    expect(await client.exists(a.key, b.key)).toBe(2);
  });

  it('lasts as long as its entry counts when it holds one (a STRING), on Redis TIME', async () => {
    const real = new RedisStore({ client });
    const a = limit(3, 1000, 'a');
    const { stamp } = await real.consume([a], 1);
    const ttl = await client.pttl(a.key);
    expect(await client.type(a.key)).toBe('string');
    expect(stamp + ttl).toBeGreaterThan(stamp + 1000 - 50); // the entry leaves the window at stamp + 1000
    expect(stamp + ttl).toBeLessThanOrEqual(stamp + 1000 + 50);
  });

  it('lasts until the end of the window epoch after the newest entry (≤ 2 x window) on Redis TIME', async () => {
    const real = new RedisStore({ client });
    const a = limit(3, 1000, 'a');
    const { stamp } = await real.consume([a], 2); // a LIST (one entry would be a STRING)
    const ttl = await client.pttl(a.key);
    const end = (Math.floor(stamp / 1000) + 2) * 1000; // the epoch after the stamp's ends
    expect(ttl).toBeGreaterThan(1000 - 50);
    expect(ttl).toBeLessThanOrEqual(2000);
    expect(stamp + ttl).toBeGreaterThan(end - 50);
    expect(stamp + ttl).toBeLessThanOrEqual(end);
  });

  it('moves the TTL on when a push starts a new window epoch, and only then', async () => {
    const a = limit(100, 1000, 'a');
    now = 1_700_000_000_000; // an epoch start
    await store.consume([a], 2); // a LIST (one entry would be a STRING)
    await client.pexpire(a.key, 5_000_000); // marks the TTL: a push of the same epoch leaves it
    now += 400;
    await store.consume([a], 1);
    expect(await client.pttl(a.key)).toBeGreaterThan(TEST_CLOCK_MIN_TTL_MS);
    now += 700; // the next epoch
    await store.consume([a], 1);
    expect(await client.pttl(a.key)).toBeLessThanOrEqual(TEST_CLOCK_MIN_TTL_MS);
  });
});
