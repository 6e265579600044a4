/**
 * Store contract, sliding log: consume / peek / refund / reset, on every store kind with the same
 * expectations, so MemoryStore and the Lua scripts cannot drift apart. Exact results come from a
 * virtual clock (injected through src/stores/testing.ts); concurrency and window-boundary runs use
 * real time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import type { StoreLimit } from '../../src/core/store.js';
import { contractDecisionKinds, uniqueId } from '../helpers/stores.js';
import { ManualClock, allowed, blocked, entriesIn, freshLimit, useStore, withQuota } from './fixtures.js';

describe.each(contractDecisionKinds)('%s store: sliding log', (kind) => {
  const clock = new ManualClock();
  const store = useStore(kind, clock);

  describe('consume', () => {
    it('allows up to the limit, then blocks until the oldest counted entry ages out', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 3);
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 2, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      clock.advance(100);
      // nextQuotaMs: until the oldest entry (t) ages out and gives one unit back.
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_000, stamp: t + 100, nextQuotaMs: 900 }));
      clock.advance(100);
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 1_000, stamp: t + 200, nextQuotaMs: 800 }));
      clock.advance(100);
      // resetMs: until the newest (t+200) ages out; retryAfterMs and nextQuotaMs: until the oldest (t) does.
      expect(await store().consume([limit], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 900, retryAfterMs: 700, nextQuotaMs: 700 }));
      expect(await entriesIn(store(), limit)).toBe(3);
    });

    it('counts an entry for exactly windowMs: blocked at entry + window - 1, allowed at entry + window', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 2);
      await store().consume([limit], 1);
      clock.advance(500);
      await store().consume([limit], 1);
      clock.advance(499); // t + 999: both entries still count
      expect(await store().consume([limit], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 501, retryAfterMs: 1, nextQuotaMs: 1 }));
      clock.advance(1); // t + 1000: the entry at t is out, the one at t + 500 still counts
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 1_000, stamp: t + 1_000, nextQuotaMs: 500 }));
      clock.advance(499); // t + 1499: entries t + 500 and t + 1000
      expect((await store().consume([limit], 1)).retryAfterMs).toBe(1);
      clock.advance(1);
      expect((await store().consume([limit], 1)).allowed).toBe(true);
    });

    it('retryAfterMs is exact: a retry 1 ms earlier is blocked, a retry after it is allowed', async () => {
      clock.start();
      const limit = freshLimit(1_000, 5);
      for (let i = 0; i < 4; i++) {
        await store().consume([limit], 1);
        clock.advance(10);
      }
      // 4 entries (t, t+10, t+20, t+30), now t+40, cost 2: the entry 5-2 = 3rd from the newest (t) must age out.
      const first = await store().consume([limit], 2);
      expect(first).toEqual(blocked({ index: 0, remaining: 1, resetMs: 990, retryAfterMs: 960, nextQuotaMs: 960 }));
      clock.advance(first.retryAfterMs - 1);
      expect(await store().consume([limit], 2)).toEqual(blocked({ index: 0, remaining: 1, resetMs: 31, retryAfterMs: 1, nextQuotaMs: 1 }));
      clock.advance(1);
      expect(await store().consume([limit], 2)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('records a cost > 1 as that many entries', async () => {
      const t = clock.start();
      const limit = freshLimit(2_000, 10);
      expect(await store().consume([limit], 4)).toEqual(allowed({ index: 0, remaining: 6, resetMs: 2_000, stamp: t, nextQuotaMs: 2_000 }));
      expect(await entriesIn(store(), limit)).toBe(4);
      clock.advance(300);
      // 4 + 7 > 10: the entry 10-7 = 3rd from the newest (one of the four at t) must age out.
      expect(await store().consume([limit], 7)).toEqual(blocked({ index: 0, remaining: 6, resetMs: 1_700, retryAfterMs: 1_700, nextQuotaMs: 1_700 }));
      expect(await store().consume([limit], 6)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 2_000, stamp: t + 300, nextQuotaMs: 1_700 }));
      expect(await entriesIn(store(), limit)).toBe(10);
    });

    it('answers -1 for a cost above the limit, and records nothing', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 2);
      // An empty log has nothing waiting to free: nextQuotaMs 0.
      expect(await store().consume([limit], 3)).toEqual(blocked({ index: 0, remaining: 2, resetMs: 0, retryAfterMs: -1, nextQuotaMs: 0 }));
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      expect(await store().consume([limit], 3)).toEqual(blocked({ index: 0, remaining: 1, resetMs: 1_000, retryAfterMs: -1, nextQuotaMs: 1_000 }));
    });

    it('reports remaining 0, never negative, when the log holds more than a lowered limit', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 5);
      await store().consume([limit], 5);
      clock.advance(1);
      // limit 2, cost 1: the entry 2-1 = 1st from the newest (one of the five at t) must age out,
      // and it is also the one whose leaving gives a unit back (5 entries > limit 2).
      expect(await store().consume([withQuota(limit, 2)], 1)).toEqual(
        blocked({ index: 0, remaining: 0, resetMs: 999, retryAfterMs: 999, nextQuotaMs: 999 }),
      );
      expect(await store().consume([withQuota(limit, 10)], 1)).toEqual(
        allowed({ index: 0, remaining: 4, resetMs: 1_000, stamp: t + 1, nextQuotaMs: 999 }),
      );
    });

    it('stamps equal times as distinct entries (several requests in one ms)', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 3);
      for (const remaining of [2, 1, 0]) {
        expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      }
      expect(await store().consume([limit], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 1_000, retryAfterMs: 1_000, nextQuotaMs: 1_000 }));
    });
  });

  describe('several limits in one call', () => {
    it('records in all of them or in none: a block by one writes nothing to the others', async () => {
      const t = clock.start();
      const id = uniqueId('client');
      const perSecond = freshLimit(1_000, 2, id);
      const perMinute = freshLimit(60_000, 10, id);
      expect(await store().consume([perSecond, perMinute], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      clock.advance(1);
      expect(await store().consume([perSecond, perMinute], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 1_000, stamp: t + 1, nextQuotaMs: 999 }));
      clock.advance(1);
      expect(await store().consume([perSecond, perMinute], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 999, retryAfterMs: 998, nextQuotaMs: 998 }));
      expect(await entriesIn(store(), perMinute)).toBe(2);
      expect(await entriesIn(store(), perSecond)).toBe(2);
    });

    it('keeps all-or-nothing across ids (a per-route table mixing keys)', async () => {
      clock.start();
      const route = freshLimit(1_000, 1, uniqueId('route'));
      const user = freshLimit(60_000, 5, uniqueId('user'));
      expect((await store().consume([route, user], 1)).allowed).toBe(true);
      clock.advance(10);
      expect(await store().consume([route, user], 1)).toMatchObject({ allowed: false, index: 0, retryAfterMs: 990 });
      expect(await entriesIn(store(), user)).toBe(1);
    });

    it('when allowed, reports the limit with the fewest remaining (ties: the lowest index)', async () => {
      const t = clock.start();
      const id = uniqueId('client');
      const wide = freshLimit(1_000, 10, id);
      const narrow = freshLimit(2_000, 3, id);
      expect(await store().consume([wide, narrow], 1)).toEqual(allowed({ index: 1, remaining: 2, resetMs: 2_000, stamp: t, nextQuotaMs: 2_000 }));
      const twin = freshLimit(2_000, 10, id, 'twin');
      expect(await store().consume([wide, twin], 1)).toEqual(allowed({ index: 0, remaining: 8, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
    });

    it('when blocked, reports the blocking limit with the longest wait (ties: the lowest index)', async () => {
      clock.start();
      const id = uniqueId('client');
      const short = freshLimit(1_000, 1, id);
      const long = freshLimit(5_000, 1, id);
      const roomy = freshLimit(60_000, 100, id);
      await store().consume([short, long, roomy], 1);
      clock.advance(100);
      expect(await store().consume([roomy, short, long], 1)).toEqual(blocked({ index: 2, remaining: 0, resetMs: 4_900, retryAfterMs: 4_900, nextQuotaMs: 4_900 }));
      const twinA = freshLimit(1_000, 1, id, 'a');
      const twinB = freshLimit(1_000, 1, id, 'b');
      await store().consume([twinA, twinB], 1);
      clock.advance(10);
      expect(await store().consume([twinA, twinB], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 990, retryAfterMs: 990, nextQuotaMs: 990 }));
    });

    it('a limit the cost can never fit decides the block with -1, over any finite wait', async () => {
      const t = clock.start();
      const id = uniqueId('client');
      const small = freshLimit(1_000, 3, id);
      const tiny = freshLimit(60_000, 2, id);
      await store().consume([small], 1);
      clock.advance(5);
      expect(await store().consume([small, tiny], 3)).toEqual(blocked({ index: 1, remaining: 2, resetMs: 0, retryAfterMs: -1, nextQuotaMs: 0 }));
      expect(await store().consume([tiny, small], 3)).toEqual(blocked({ index: 0, remaining: 2, resetMs: 0, retryAfterMs: -1, nextQuotaMs: 0 }));
      expect(await store().consume([small], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_000, stamp: t + 5, nextQuotaMs: 995 }));
    });
  });

  describe('per-limit costs', () => {
    /** Two limits charged 1 and 5 by one request (a `/api/*` rule and a costly export rule), on one id or two. */
    function apiAndExport(mixedIds: boolean): { api: StoreLimit; exportLimit: StoreLimit } {
      const id = uniqueId('client');
      return {
        api: freshLimit(60_000, 20, id, 'api'), // no own cost: the call's cost (1)
        exportLimit: { ...freshLimit(60_000, 12, mixedIds ? uniqueId('export') : id, 'export'), cost: 5 },
      };
    }

    it.each([
      ['one id', false],
      ['two ids (a per-route table mixing keys)', true],
    ])('charges each limit its own cost, all or nothing (%s)', async (_, mixedIds) => {
      const t = clock.start();
      const { api, exportLimit } = apiAndExport(mixedIds);
      // Remaining after: api 20 - 1 = 19, export 12 - 5 = 7 → export decides.
      expect(await store().consume([api, exportLimit], 1)).toEqual(allowed({ index: 1, remaining: 7, resetMs: 60_000, stamp: t, nextQuotaMs: 60_000 }));
      expect(await entriesIn(store(), api)).toBe(1);
      expect(await entriesIn(store(), exportLimit)).toBe(5);
      clock.advance(100);
      expect(await store().consume([api, exportLimit], 1)).toEqual(allowed({ index: 1, remaining: 2, resetMs: 60_000, stamp: t + 100, nextQuotaMs: 59_900 }));
      clock.advance(100);
      // export: 10 + 5 > 12; the entry 12 - 5 = 7th from the newest (one of the five at t) must age out.
      expect(await store().consume([api, exportLimit], 1)).toEqual(blocked({ index: 1, remaining: 2, resetMs: 59_900, retryAfterMs: 59_800, nextQuotaMs: 59_800 }));
      expect(await store().peek([api, exportLimit], 1)).toEqual(blocked({ index: 1, remaining: 2, resetMs: 59_900, retryAfterMs: 59_800, nextQuotaMs: 59_800 }));
      // The block wrote nothing, not even to api, which had room for its 1.
      expect(await entriesIn(store(), api)).toBe(2);
      expect(await entriesIn(store(), exportLimit)).toBe(10);
      // A limit's own cost above its quota can never fit: -1, whatever the call's cost.
      expect(await store().consume([api, { ...exportLimit, cost: 13 }], 1)).toEqual(
        blocked({ index: 1, remaining: 2, resetMs: 59_900, retryAfterMs: -1, nextQuotaMs: 59_800 }),
      );
      // The call's cost still applies to limits without their own: api takes 3, export 2.
      expect(await store().consume([api, { ...exportLimit, cost: 2 }], 3)).toEqual(
        allowed({ index: 1, remaining: 0, resetMs: 60_000, stamp: t + 200, nextQuotaMs: 59_800 }),
      );
      expect(await entriesIn(store(), api)).toBe(5);
      expect(await entriesIn(store(), exportLimit)).toBe(12);
    });

    it('rejects a limit’s own cost below 1 or fractional, naming the limit, and records nothing', async () => {
      clock.start();
      const { api, exportLimit } = apiAndExport(false);
      await expect(store().consume([api, { ...exportLimit, cost: 0 }], 1)).rejects.toThrow('limits[1].cost must be an integer ≥ 1; got 0');
      await expect(store().refund([{ ...api, cost: 1.5 }, exportLimit], 1, 0)).rejects.toThrow('limits[0].cost must be an integer ≥ 1; got 1.5');
      expect(await entriesIn(store(), api)).toBe(0);
    });

    it.each<[string, () => StoreLimit[], number, string]>([
      ['an empty list of limits', () => [], 1, 'limits must be a non-empty array of { key, windowMs, limit }; got []'],
      ['a call cost of 0', () => [freshLimit(1_000, 5)], 0, 'cost must be an integer ≥ 1; got 0'],
      ['a fractional window', () => [{ ...freshLimit(1_000, 5), windowMs: 1.5 }], 1, 'limits[0].windowMs must be an integer ≥ 1; got 1.5'],
      ['a key that is not a string', () => [{ ...freshLimit(1_000, 5), key: 7 as unknown as string }], 1, 'limits[0].key must be a string; got 7'],
    ])('rejects %s with the same ConfigError on every store', async (_label, limitsOf, cost, message) => {
      clock.start();
      const limits = limitsOf();
      for (const call of [() => store().consume(limits, cost), () => store().peek(limits, cost), () => store().refund(limits, cost, 0)]) {
        const failure = call();
        await expect(failure).rejects.toBeInstanceOf(ConfigError);
        await expect(failure).rejects.toThrow(message);
      }
      const first = limits[0];
      if (typeof first?.key === 'string') expect(await entriesIn(store(), { ...first, windowMs: 1_000 })).toBe(0);
    });

    it('retryAfterMs of the deciding limit uses that limit’s cost, exactly', async () => {
      const t = clock.start();
      const id = uniqueId('client');
      const narrow = { ...freshLimit(1_000, 4, id, 'narrow'), cost: 3 };
      const wide = freshLimit(1_000, 100, id, 'wide');
      await store().consume([narrow, wide], 1); // 3 entries at t
      clock.advance(300);
      // 3 + 3 > 4: the entry 4 - 3 = 1st from the newest (t) must age out at t + 1000.
      const first = await store().consume([wide, narrow], 1);
      expect(first).toEqual(blocked({ index: 1, remaining: 1, resetMs: 700, retryAfterMs: 700, nextQuotaMs: 700 }));
      clock.advance(first.retryAfterMs - 1);
      expect((await store().consume([wide, narrow], 1)).allowed).toBe(false);
      clock.advance(1);
      expect(await store().consume([wide, narrow], 1)).toEqual(allowed({ index: 1, remaining: 1, resetMs: 1_000, stamp: t + 1_000, nextQuotaMs: 1_000 }));
      expect(await entriesIn(store(), wide)).toBe(1); // the entry at t aged out; this one is new
    });

    it.each([
      ['one id', false],
      ['two ids (a per-route table mixing keys)', true],
    ])('refund gives back each limit exactly its own cost (%s)', async (_, mixedIds) => {
      clock.start();
      const { api, exportLimit } = apiAndExport(mixedIds);
      // Two requests in the same ms share a stamp: a refund must take back one request's worth only.
      const first = await store().consume([api, exportLimit], 1);
      const second = await store().consume([api, exportLimit], 1);
      expect(second.stamp).toBe(first.stamp);
      await store().refund([api, exportLimit], 1, first.stamp);
      expect(await entriesIn(store(), api)).toBe(1);
      expect(await entriesIn(store(), exportLimit)).toBe(5);
      await store().refund([api, exportLimit], 1, second.stamp);
      expect(await entriesIn(store(), api)).toBe(0);
      expect(await entriesIn(store(), exportLimit)).toBe(0);
    });
  });

  describe('peek', () => {
    it('answers what consume would, with stamp 0, and records nothing', async () => {
      clock.start();
      const limit = freshLimit(1_000, 2);
      expect(await store().peek([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_000, stamp: 0, nextQuotaMs: 1_000 }));
      expect(await entriesIn(store(), limit)).toBe(0);
      await store().consume([limit], 2);
      clock.advance(250);
      const peeked = await store().peek([limit], 1);
      expect(peeked).toEqual(blocked({ index: 0, remaining: 0, resetMs: 750, retryAfterMs: 750, nextQuotaMs: 750 }));
      expect(await store().consume([limit], 1)).toEqual(peeked);
      expect(await store().peek([limit], 3)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 750, retryAfterMs: -1, nextQuotaMs: 750 }));
      expect(await entriesIn(store(), limit)).toBe(2);
    });
  });

  describe('refund', () => {
    it('removes exactly the refunded request’s entries, never a newer request’s', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 3);
      const first = await store().consume([limit], 2);
      clock.advance(10);
      await store().consume([limit], 1);
      await store().refund([limit], 2, first.stamp);
      expect(await entriesIn(store(), limit)).toBe(1);
      clock.advance(10);
      // The entry left is the newer one (t + 10): a cost-3 request waits for it alone.
      expect(await store().peek([limit], 3)).toEqual(blocked({ index: 0, remaining: 2, resetMs: 990, retryAfterMs: 990, nextQuotaMs: 990 }));
      expect(first.stamp).toBe(t);
    });

    it('removes at most `cost` entries of a stamp shared by requests in the same ms', async () => {
      clock.start();
      const limit = freshLimit(1_000, 5);
      const first = await store().consume([limit], 1);
      const second = await store().consume([limit], 1);
      expect(second.stamp).toBe(first.stamp);
      await store().refund([limit], 1, first.stamp);
      expect(await entriesIn(store(), limit)).toBe(1);
    });

    it('refunds every limit of the call, and ignores stamps that are not there', async () => {
      clock.start();
      const id = uniqueId('client');
      const perSecond = freshLimit(1_000, 5, id);
      const perHour = freshLimit(3_600_000, 50, id);
      const result = await store().consume([perSecond, perHour], 3);
      await store().refund([perSecond, perHour], 3, result.stamp + 1);
      await store().refund([perSecond, perHour], 3, 0);
      expect(await entriesIn(store(), perHour)).toBe(3);
      await store().refund([perSecond, perHour], 3, result.stamp);
      expect(await entriesIn(store(), perSecond)).toBe(0);
      expect(await entriesIn(store(), perHour)).toBe(0);
      clock.advance(2_000);
      await store().refund([perSecond, perHour], 3, result.stamp); // already gone: a no-op
      expect(await store().consume([perSecond, perHour], 5)).toMatchObject({ allowed: true, index: 0, remaining: 0 });
    });
  });

  describe('reset', () => {
    it('deletes the logs: full quota again', async () => {
      clock.start();
      const id = uniqueId('client');
      const limits = [freshLimit(1_000, 2, id), freshLimit(60_000, 2, id)];
      await store().consume(limits, 2);
      expect((await store().consume(limits, 1)).allowed).toBe(false);
      await store().reset(limits.map((limit) => limit.key));
      expect(await store().consume(limits, 1)).toMatchObject({ allowed: true, remaining: 1 });
      await store().reset([freshLimit(1_000, 1).key]); // a key that does not exist
    });
  });

  describe('clock steps', () => {
    it('keeps logs sorted when the clock steps back less than a window: stamp = the newest entry', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 3);
      await store().consume([limit], 1);
      clock.advance(-400);
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_400, stamp: t, nextQuotaMs: 1_400 }));
      clock.advance(1_399); // t + 999: both entries still count
      expect(await entriesIn(store(), limit)).toBe(2);
      clock.advance(1);
      expect(await entriesIn(store(), limit)).toBe(0);
    });

    it('drops a log whose newest entry is more than a window ahead (the clock stepped back further)', async () => {
      const t = clock.start();
      const limit = freshLimit(1_000, 1);
      await store().consume([limit], 1);
      clock.advance(-1_000); // newest = now + window: still counts
      expect(await store().consume([limit], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 2_000, retryAfterMs: 2_000, nextQuotaMs: 2_000 }));
      clock.advance(-1); // newest > now + window: nobody may stay blocked by it
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 1_000, stamp: t - 1_001, nextQuotaMs: 1_000 }));
    });
  });
});

describe.each(contractDecisionKinds)('%s store: sliding log under real concurrency', (kind) => {
  const store = useStore(kind);

  it('admits exactly 100 of 300 concurrent consumes on a limit of 100', async () => {
    const limit = freshLimit(60_000, 100);
    const results = await Promise.all(Array.from({ length: 300 }, () => store().consume([limit], 1)));
    expect(results.filter((result) => result.allowed)).toHaveLength(100);
    expect(results.filter((result) => !result.allowed).every((result) => result.retryAfterMs > 0)).toBe(true);
    expect(await entriesIn(store(), limit)).toBe(100);
  });

  it('never lets more than the limit through in any window-long span while hammering across window edges', async () => {
    const windowMs = 250;
    const quota = 20;
    const limit = freshLimit(windowMs, quota);
    const stamps: number[] = [];
    const deadline = Date.now() + 20_000;
    // Until four windows' worth went through (so at least three window edges were crossed).
    while (stamps.length < 4 * quota) {
      if (Date.now() > deadline) throw new Error(`only ${stamps.length} allowed within 20 s`);
      const burst = await Promise.all(Array.from({ length: 15 }, () => store().consume([limit], 1)));
      for (const result of burst) if (result.allowed) stamps.push(result.stamp);
      await sleep(7);
    }
    stamps.sort((a, b) => a - b);
    let worst = 0;
    for (let first = 0, last = 0; last < stamps.length; last++) {
      while (stamps[last]! - stamps[first]! >= windowMs) first++;
      worst = Math.max(worst, last - first + 1);
    }
    // 4 × quota admitted with never more than quota per window: at least 4 windows were filled.
    expect(worst).toBeLessThanOrEqual(quota);
  });
});
