/**
 * Store contract, GCRA limits and penalty boxes (StoreLimit.algorithm): consume / peek / refund /
 * reset on every store kind and client with the same expectations, on a virtual clock, as the
 * sliding-log contract does for logs.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import { contractDecisionKinds, uniqueId } from '../helpers/stores.js';
import { ManualClock, allowed, blocked, entriesIn, freshLimit, useStore } from './fixtures.js';

const boxed = (index: number, ms: number): ConsumeResult => ({
  allowed: false,
  index,
  remaining: 0,
  resetMs: ms,
  retryAfterMs: ms,
  stamp: 0,
  nextQuotaMs: ms,
  boxed: true,
});

function gcra(windowMs: number, limit: number, burst?: number, id = uniqueId('gcra'), name = `gcra-${limit}-in-${windowMs}`): StoreLimit {
  const base = freshLimit(windowMs, limit, id, name);
  return burst === undefined ? { ...base, algorithm: 'gcra' } : { ...base, algorithm: 'gcra', burst };
}

/** A penalty box closing for `blockMs` after `after` refusals in a row, each within `memoryMs` of the one before. */
function box(after: number, blockMs: number, memoryMs: number, id: string): StoreLimit {
  return { ...freshLimit(memoryMs, after, id, 'box'), algorithm: 'penalty-box', blockMs };
}

describe.each(contractDecisionKinds)('%s store: GCRA and penalty boxes', (kind) => {
  const clock = new ManualClock();
  const store = useStore(kind, clock);

  describe('GCRA', () => {
    it('lets a burst of `limit` pass at once, then one unit per window / limit', async () => {
      const t = clock.start();
      const limit = gcra(3_000, 3); // one unit per 1 000 ms, burst 3
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 2, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 2_000, stamp: t, nextQuotaMs: 1_000 }));
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 3_000, stamp: t, nextQuotaMs: 1_000 }));
      expect(await store().consume([limit], 1)).toEqual(blocked({ index: 0, remaining: 0, resetMs: 3_000, retryAfterMs: 1_000, nextQuotaMs: 1_000 }));
      clock.advance(999);
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: false, retryAfterMs: 1, nextQuotaMs: 1 });
      clock.advance(1);
      expect(await store().consume([limit], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 3_000, stamp: t + 1_000, nextQuotaMs: 1_000 }));
      clock.advance(2_500); // 2.5 units back: 2 whole ones now, the third in 500 ms
      expect(await store().peek([limit], 1)).toEqual(allowed({ index: 0, remaining: 1, resetMs: 1_500, stamp: 0, nextQuotaMs: 500 }));
    });

    it('burst 1 spaces requests evenly; a fractional period rounds waits up, never early', async () => {
      clock.start();
      const smooth = gcra(1_000, 10, 1);
      expect(await store().consume([smooth], 1)).toMatchObject({ allowed: true, remaining: 0 });
      expect(await store().consume([smooth], 1)).toMatchObject({ allowed: false, retryAfterMs: 100 });
      clock.advance(100);
      expect(await store().consume([smooth], 1)).toMatchObject({ allowed: true });

      const thirds = gcra(1_000, 3); // 333.3… ms per unit
      for (let i = 0; i < 3; i++) expect(await store().consume([thirds], 1)).toMatchObject({ allowed: true });
      expect(await store().consume([thirds], 1)).toMatchObject({ allowed: false, retryAfterMs: 334 });
      clock.advance(333);
      expect(await store().consume([thirds], 1)).toMatchObject({ allowed: false, retryAfterMs: 1 });
      clock.advance(1);
      expect(await store().consume([thirds], 1)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('charges cost units; a cost above the burst can never pass (-1)', async () => {
      clock.start();
      const limit = gcra(3_000, 3);
      expect(await store().consume([limit], 2)).toMatchObject({ allowed: true, remaining: 1, resetMs: 2_000 });
      expect(await store().consume([limit], 2)).toEqual(blocked({ index: 0, remaining: 1, resetMs: 2_000, retryAfterMs: 1_000, nextQuotaMs: 1_000 }));
      expect(await store().consume([limit], 4)).toMatchObject({ allowed: false, retryAfterMs: -1 });
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: true, remaining: 0 });
    });

    // A review found RedisStore answering cost 5 with cost 1's wait (its refusal cache), as below.
    it('after a refusal, a larger cost is told its own, longer wait', async () => {
      clock.start();
      const limit = gcra(10_000, 10);
      expect(await store().consume([limit], 10)).toMatchObject({ allowed: true, remaining: 0 });
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: false, retryAfterMs: 1_000 });
      expect(await store().consume([limit], 5)).toMatchObject({ allowed: false, retryAfterMs: 5_000 });
      expect(await store().consume([limit], 11)).toMatchObject({ allowed: false, retryAfterMs: -1 });
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: false, retryAfterMs: 1_000 });
    });

    it('peek records nothing; refund gives units back; reset frees the whole burst', async () => {
      clock.start();
      const limit = gcra(60_000, 2);
      expect(await store().peek([limit], 1)).toMatchObject({ allowed: true, remaining: 1, stamp: 0 });
      const first = await store().consume([limit], 1);
      await store().consume([limit], 1);
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: false });
      await store().refund([limit], 1, first.stamp);
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: true, remaining: 0 });
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: false });
      await store().reset([limit.key]);
      expect(await store().consume([limit], 1)).toMatchObject({ allowed: true, remaining: 1 });
    });

    it('mixes with sliding logs in one all-or-nothing call', async () => {
      const t = clock.start();
      const id = uniqueId('mixed');
      const log = freshLimit(3_600_000, 1, id, '1h');
      const rate = gcra(1_000, 5, undefined, id);
      expect(await store().consume([log, rate], 1)).toEqual(allowed({ index: 0, remaining: 0, resetMs: 3_600_000, stamp: t, nextQuotaMs: 3_600_000 }));
      expect(await store().consume([log, rate], 1)).toMatchObject({ allowed: false, index: 0 });
      // The refused call took nothing from the GCRA limit: 4 of 5 left.
      expect(await store().peek([rate], 1)).toMatchObject({ allowed: true, remaining: 3 });
      // The GCRA limit decides when it is the one closest to blocking.
      const tight = gcra(1_000, 1, undefined, id);
      const roomy = freshLimit(1_000, 100, id, 'roomy');
      expect(await store().consume([roomy, tight], 1)).toEqual(allowed({ index: 1, remaining: 0, resetMs: 1_000, stamp: t, nextQuotaMs: 1_000 }));
      expect(await store().consume([roomy, tight], 1)).toEqual(blocked({ index: 1, remaining: 0, resetMs: 1_000, retryAfterMs: 1_000, nextQuotaMs: 1_000 }));
      expect(await entriesIn(store(), roomy)).toBe(1);
    });
  });

  describe('penalty box', () => {
    it('closes after `after` refusals in a row and refuses without touching the limits until it opens', async () => {
      clock.start();
      const id = uniqueId('boxed');
      const limit = freshLimit(60_000, 1, id, '1m');
      const penalty = box(2, 10_000, 60_000, id);
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: true, index: 0 });
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0, retryAfterMs: 60_000 }); // strike 1
      expect(await store().consume([limit, penalty], 1)).toEqual(boxed(1, 10_000)); // strike 2 closes it
      clock.advance(4_000);
      expect(await store().consume([limit, penalty], 1)).toEqual(boxed(1, 6_000));
      expect(await store().peek([limit, penalty], 1)).toEqual(boxed(1, 6_000));
      expect(await entriesIn(store(), limit)).toBe(1);
      clock.advance(6_000); // open again: the limit decides (still full), and counts strikes anew
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0, retryAfterMs: 50_000 });
      expect(await store().consume([limit, penalty], 1)).toEqual(boxed(1, 10_000));
    });

    it('an allowed request clears the strikes; strikes older than the box window are forgotten; peek never strikes', async () => {
      clock.start();
      const id = uniqueId('strikes');
      const limit = freshLimit(1_000, 1, id, '1s');
      const penalty = box(2, 5_000, 500, id);
      await store().consume([limit, penalty], 1);
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0 }); // strike 1
      for (let i = 0; i < 3; i++) expect(await store().peek([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0 });
      clock.advance(1_000);
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: true }); // clears strike 1
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0 }); // strike 1 again
      clock.advance(500); // strike 1 is forgotten
      expect(await store().consume([limit, penalty], 1)).toMatchObject({ allowed: false, index: 0 }); // strike 1 again
      clock.advance(499);
      expect(await store().consume([limit, penalty], 1)).toEqual(boxed(1, 5_000)); // strike 2, within 500 ms
    });

    it('after 1 closes at the first refusal; a call of boxes alone is refused', async () => {
      clock.start();
      const id = uniqueId('first');
      const limit = gcra(1_000, 1, undefined, id);
      const penalty = box(1, 3_000, 1_000, id);
      await store().consume([penalty, limit], 1);
      expect(await store().consume([penalty, limit], 1)).toEqual(boxed(0, 3_000));
      await expect(store().consume([penalty], 1)).rejects.toBeInstanceOf(ConfigError);
    });
  });
});
