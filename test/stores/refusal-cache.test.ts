/**
 * The refusal cache on its own, on a virtual clock: what it answers, what it never answers (an
 * allowed call, a smaller cost, other limits), when it forgets, and its bound.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import type { Redis } from 'ioredis';
import { limitKey } from '../helpers/keys.js';
import { RedisStore } from '../../src/stores/redis.js';
import { MAX_REFUSAL_HOLD_MS, RefusalCache } from '../../src/stores/redis/refusal-cache.js';
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
    cache.remember(limits, 1, refused(800, { remaining: 3, index: 0 }));
    expect(cache.lookup(limits, 1)).toEqual({ allowed: false, index: 0, remaining: 3, resetMs: 50_000, retryAfterMs: 800, stamp: 0, nextQuotaMs: 800 });
    clock.now += 600;
    expect(cache.lookup([limit('rl:{a}:10-in-1m')], 1)).toMatchObject({ retryAfterMs: 200, resetMs: 49_400, nextQuotaMs: 200 });
    clock.now += 200;
    expect(cache.lookup(limits, 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  // A review: with refund: 'failure' on several processes, a refund made by another process left
  // this one refusing with Retry-After 58 s while Redis had units free (and a penalty box reset
  // elsewhere could have had an hour to run). A refusal is answered here for 1 s at most.
  it(`answers for ${MAX_REFUSAL_HOLD_MS} ms at most, then asks Redis again, however far T is`, () => {
    const { cache, clock } = cacheAt();
    const limits = [limit('k')];
    cache.remember(limits, 1, refused(60_000));
    clock.now += MAX_REFUSAL_HOLD_MS - 1;
    expect(cache.lookup(limits, 1)).toMatchObject({ retryAfterMs: 60_000 - MAX_REFUSAL_HOLD_MS + 1 });
    clock.now += 1;
    expect(cache.lookup(limits, 1)).toBeUndefined();
    cache.remember(limits, 1, refused(3_600_000, { boxed: true, nextQuotaMs: 0 }));
    clock.now += MAX_REFUSAL_HOLD_MS;
    expect(cache.lookup(limits, 1)).toBeUndefined();
  });

  it('answers only until the deciding limit frees its next unit, when that comes before the call can pass', () => {
    // Cost 3 refused with 1 unit left: one unit frees in 300 ms, the third in 2 000 ms. After 300 ms
    // Redis would answer 2 remaining, which the remembered refusal does not know.
    const { cache, clock } = cacheAt();
    const limits = [limit('k')];
    cache.remember(limits, 3, refused(900, { remaining: 1, nextQuotaMs: 300 }));
    clock.now += 299;
    expect(cache.lookup(limits, 3)).toMatchObject({ remaining: 1, nextQuotaMs: 1, retryAfterMs: 601 });
    clock.now += 1;
    expect(cache.lookup(limits, 3)).toBeUndefined();
    expect(cache.size).toBe(0);
    // nextQuotaMs 0 (nothing waiting to free): answerable until the call can pass.
    cache.remember(limits, 3, refused(900, { nextQuotaMs: 0 }));
    clock.now += 899;
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

  it(`sees a refund made by another process within ${MAX_REFUSAL_HOLD_MS} ms, not at the refusal's end (a minute here)`, async () => {
    const clients = [newRedisClient(), newRedisClient()];
    try {
      const [here, elsewhere] = clients.map((client) => new RedisStore({ client }));
      const limits = [{ key: limitKey('rl:', uniqueId('refunded-elsewhere'), '1-in-1m'), limit: 1, windowMs: 60_000 }];
      const first = await here!.consume(limits, 1);
      expect(first.allowed).toBe(true);
      expect(await here!.consume(limits, 1)).toMatchObject({ allowed: false }); // remembered here
      await elsewhere!.refund(limits, 1, first.stamp);
      expect(await elsewhere!.peek(limits, 1)).toMatchObject({ allowed: true });
      expect(await here!.consume(limits, 1)).toMatchObject({ allowed: false }); // the documented lag
      await sleep(MAX_REFUSAL_HOLD_MS + 50);
      expect(await here!.consume(limits, 1)).toMatchObject({ allowed: true, remaining: 0 });
      await here!.reset(limits.map((limit) => limit.key));
    } finally {
      for (const client of clients) client.disconnect();
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
