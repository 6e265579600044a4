/**
 * The refusal cache on its own, on a virtual clock: what it answers, what it never answers (an
 * allowed call, a smaller cost, other limits), when it forgets, and its bound.
 */
import { describe, expect, it } from 'vitest';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import type { Redis } from 'ioredis';
import { limitKey } from '../helpers/keys.js';
import { RedisStore } from '../../src/stores/redis.js';
import { RefusalCache } from '../../src/stores/redis/refusal-cache.js';
import { newRedisClient } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const limit = (key: string, extra: Partial<StoreLimit> = {}): StoreLimit => ({ key, limit: 10, windowMs: 60_000, ...extra });
const refused = (retryAfterMs: number, extra: Partial<ConsumeResult> = {}): ConsumeResult => ({
  allowed: false,
  index: 0,
  remaining: 0,
  resetMs: 50_000,
  retryAfterMs,
  stamp: 0,
  nextQuotaMs: retryAfterMs,
  ...extra,
});

function cacheAt(start = 1_000): { cache: RefusalCache; clock: { now: number } } {
  const clock = { now: start };
  return { cache: new RefusalCache(3, () => clock.now), clock };
}

describe('RefusalCache', () => {
  it('answers the same call with the remembered refusal until it can pass, counting down', () => {
    const { cache, clock } = cacheAt();
    const limits = [limit('rl:{a}:10-in-1m')];
    cache.remember(limits, 1, refused(2_000, { remaining: 3, index: 0 }));
    expect(cache.lookup(limits, 1)).toEqual({ allowed: false, index: 0, remaining: 3, resetMs: 50_000, retryAfterMs: 2_000, stamp: 0, nextQuotaMs: 2_000 });
    clock.now += 1_500;
    expect(cache.lookup([limit('rl:{a}:10-in-1m')], 1)).toMatchObject({ retryAfterMs: 500, resetMs: 48_500, nextQuotaMs: 500 });
    clock.now += 500;
    expect(cache.lookup(limits, 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('answers only until the deciding limit frees its next unit, when that comes before the call can pass', () => {
    // Cost 3 refused with 1 unit left: one unit frees in 300 ms, the third in 2 000 ms. After 300 ms
    // Redis would answer 2 remaining, which the remembered refusal does not know.
    const { cache, clock } = cacheAt();
    const limits = [limit('k')];
    cache.remember(limits, 3, refused(2_000, { remaining: 1, nextQuotaMs: 300 }));
    clock.now += 299;
    expect(cache.lookup(limits, 3)).toMatchObject({ remaining: 1, nextQuotaMs: 1, retryAfterMs: 1_701 });
    clock.now += 1;
    expect(cache.lookup(limits, 3)).toBeUndefined();
    expect(cache.size).toBe(0);
    // nextQuotaMs 0 (nothing waiting to free): answerable until the call can pass.
    cache.remember(limits, 3, refused(2_000, { nextQuotaMs: 0 }));
    clock.now += 1_999;
    expect(cache.lookup(limits, 3)).toMatchObject({ nextQuotaMs: 0, retryAfterMs: 1 });
  });

  // A review found a larger cost answered with a smaller one's Retry-After (too early: GCRA 10 per
  // 10 s spent, cost 1 waits ~1 s, cost 5 ~5 s). Refused it is, but only Redis knows for how long.
  it('answers the same cost only: a smaller may pass, a larger needs longer', () => {
    const { cache } = cacheAt();
    const limits = [limit('k')];
    cache.remember(limits, 3, refused(1_000));
    expect(cache.lookup(limits, 3)).toMatchObject({ allowed: false, retryAfterMs: 1_000 });
    expect(cache.lookup(limits, 5)).toBeUndefined();
    expect(cache.lookup(limits, 2)).toBeUndefined();
    cache.remember(limits, 5, refused(4_000));
    expect(cache.lookup(limits, 5)).toMatchObject({ retryAfterMs: 4_000 });
    expect(cache.lookup(limits, 3)).toMatchObject({ retryAfterMs: 1_000 });
    cache.forget(['k']);
    expect(cache.size).toBe(0);
  });

  it('never answers other limits, other quotas or other own costs', () => {
    const { cache } = cacheAt();
    cache.remember([limit('k'), limit('h', { windowMs: 3_600_000 })], 1, refused(1_000));
    expect(cache.lookup([limit('k')], 1)).toBeUndefined();
    expect(cache.lookup([limit('k', { limit: 11 }), limit('h', { windowMs: 3_600_000 })], 1)).toBeUndefined();
    expect(cache.lookup([limit('k', { cost: 2 }), limit('h', { windowMs: 3_600_000 })], 1)).toBeUndefined();
    expect(cache.lookup([limit('k'), limit('h', { windowMs: 3_600_000 })], 1)).toMatchObject({ allowed: false });
  });

  it('remembers neither allowed calls nor costs that can never fit', () => {
    const { cache } = cacheAt();
    cache.remember([limit('k')], 1, { ...refused(0), allowed: true });
    cache.remember([limit('k')], 99, refused(-1));
    expect(cache.size).toBe(0);
  });

  it('forgets every refusal involving a reset or refunded key', () => {
    const { cache } = cacheAt();
    cache.remember([limit('a'), limit('b')], 1, refused(1_000));
    cache.remember([limit('b')], 1, refused(1_000));
    cache.remember([limit('c')], 1, refused(1_000));
    cache.forget(['b']);
    expect(cache.size).toBe(1);
    expect(cache.lookup([limit('c')], 1)).toMatchObject({ allowed: false });
  });

  it('keeps at most its bound, dropping the oldest refusal first', () => {
    const { cache } = cacheAt();
    for (const key of ['a', 'b', 'c', 'd']) cache.remember([limit(key)], 1, refused(1_000));
    expect(cache.size).toBe(3);
    expect(cache.lookup([limit('a')], 1)).toBeUndefined();
    expect(cache.lookup([limit('d')], 1)).toMatchObject({ allowed: false });
    cache.forget(['a', 'b', 'c', 'd']);
    expect(cache.size).toBe(0);
  });
});

describe('RedisStore answers refused calls locally until they can pass', () => {
  it('a 429 flood on one key costs ≤ 0.01 Redis calls per refused request; a refund through the store ends it at once', async () => {
    const client = newRedisClient();
    await client.ping();
    let scriptCalls = 0;
    // The store's calls, counted: the client itself answers them.
    const counting = Object.create(client) as Redis;
    counting.call = ((command: string, args: unknown[]) => {
      if (/^(FCALL|EVALSHA|EVAL)$/.test(command)) scriptCalls++;
      return client.call(command, args as string[]);
    }) as Redis['call'];
    counting.callBuffer = ((command: string, args: unknown[]) => {
      if (/^(FCALL|EVALSHA|EVAL)$/.test(command)) scriptCalls++;
      return client.callBuffer(command, args as string[]);
    }) as Redis['callBuffer'];
    try {
      const store = new RedisStore({ client: counting });
      await store.ready();
      const limits = [{ key: limitKey('rl:', uniqueId('flood'), '1-in-1m'), limit: 1, windowMs: 60_000 }];
      const first = await store.consume(limits, 1);
      expect(first.allowed).toBe(true);
      scriptCalls = 0;
      const REFUSED = 2_000;
      for (let i = 0; i < REFUSED; i++) {
        const result = await store.consume(limits, 1);
        expect(result.allowed).toBe(false);
        expect(result.retryAfterMs).toBeGreaterThan(55_000);
      }
      expect(scriptCalls / REFUSED).toBeLessThanOrEqual(0.01);
      await store.refund(limits, 1, first.stamp);
      await expect(store.consume(limits, 1)).resolves.toMatchObject({ allowed: true });
      await store.reset(limits.map((limit) => limit.key));
    } finally {
      client.disconnect();
    }
  });

  it('tells a larger cost after a refusal its own wait, as MemoryStore does (a review found the smaller cost’s)', async () => {
    const client = newRedisClient();
    try {
      const store = new RedisStore({ client });
      const limits: StoreLimit[] = [{ key: limitKey('rl:', uniqueId('costs'), '10-in-10s-gcra'), limit: 10, windowMs: 10_000, algorithm: 'gcra' }];
      expect(await store.consume(limits, 10)).toMatchObject({ allowed: true, remaining: 0 });
      const one = await store.consume(limits, 1);
      const five = await store.consume(limits, 5);
      const never = await store.consume(limits, 11);
      expect(one.retryAfterMs).toBeGreaterThan(900);
      expect(one.retryAfterMs).toBeLessThanOrEqual(1_000);
      expect(five.retryAfterMs).toBeGreaterThan(4_900);
      expect(never.retryAfterMs).toBe(-1);
      await store.reset(limits.map((limit) => limit.key));
    } finally {
      client.disconnect();
    }
  });
});
