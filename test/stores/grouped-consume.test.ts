/**
 * The compensation logic of a Cluster consume split by slot, with scripted group answers: what a
 * real cluster cannot be made to do on cue (a refund failing while the call that needs it fails).
 * The same paths on a real cluster are in redis-cluster.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import { consumeGrouped, type GroupOperations } from '../../src/stores/redis/grouped-consume.js';

const limits: StoreLimit[] = ['a', 'b', 'c'].map((id) => ({ key: `rl:{${id}}:1m`, windowMs: 60_000, limit: 5 }));
const groups = [[0], [1], [2]];
const allowed = (stamp: number): ConsumeResult => ({ allowed: true, index: 0, remaining: 4, resetMs: 60_000, retryAfterMs: 0, stamp, nextQuotaMs: 60_000 });

/** Groups answer by key: allowed (stamp 100), or the error given for that key. */
function operations(failures: Record<string, Error>): GroupOperations & { refunds: string[] } {
  const refunds: string[] = [];
  const fail = (key: string): void => {
    const error = failures[key];
    if (error) throw error;
  };
  return {
    refunds,
    async consume(group) {
      fail(group[0]!.key);
      return allowed(100);
    },
    async peek(group) {
      fail(group[0]!.key);
      return allowed(0);
    },
    async refund(group, _cost, stamp) {
      refunds.push(`${group[0]!.key}@${stamp}`);
      fail(`refund ${group[0]!.key}`);
    },
  };
}

describe('consumeGrouped when a group fails', () => {
  it('refunds every group recorded before the failing one, then rethrows the original error', async () => {
    const failure = new Error('WRONGTYPE');
    const ops = operations({ 'rl:{c}:1m': failure });
    await expect(consumeGrouped(limits, groups, 1, ops)).rejects.toBe(failure);
    expect(ops.refunds.sort()).toEqual(['rl:{a}:1m@100', 'rl:{b}:1m@100']);
  });

  it('swallows a failed refund (best effort), still refunds the others and rethrows the original error', async () => {
    const failure = new Error('timeout');
    const ops = operations({ 'rl:{c}:1m': failure, 'refund rl:{a}:1m': new Error('refund failed too') });
    await expect(consumeGrouped(limits, groups, 1, ops)).rejects.toBe(failure);
    expect(ops.refunds.sort()).toEqual(['rl:{a}:1m@100', 'rl:{b}:1m@100']);
  });

  it('refunds nothing when the first group fails', async () => {
    const failure = new Error('down');
    const ops = operations({ 'rl:{a}:1m': failure });
    await expect(consumeGrouped(limits, groups, 1, ops)).rejects.toBe(failure);
    expect(ops.refunds).toEqual([]);
  });
});

describe('consumeGrouped order', () => {
  /** Records which group each consume was for (by its first key), all allowed. */
  function recording(): GroupOperations & { order: string[] } {
    const order: string[] = [];
    return {
      order,
      async consume(group) {
        order.push(group[0]!.key);
        return allowed(100);
      },
      async peek() {
        return allowed(0);
      },
      async refund() {},
    };
  }

  it('consumes the group of the smallest quota first (a GCRA burst, a limit’s own cost), ties in their order', async () => {
    const wide: StoreLimit = { key: 'wide', windowMs: 1000, limit: 30 };
    const costly: StoreLimit = { key: 'costly', windowMs: 1000, limit: 40, cost: 10 }; // 4 requests
    const gcra: StoreLimit = { key: 'gcra', windowMs: 1000, limit: 100, algorithm: 'gcra', burst: 6 };
    const box: StoreLimit = { key: 'box', windowMs: 1000, limit: 1, algorithm: 'penalty-box', blockMs: 1000 };
    const twin: StoreLimit = { key: 'twin', windowMs: 1000, limit: 30 };
    const ops = recording();
    await consumeGrouped([wide, costly, gcra, box, twin], [[0], [1], [2, 3], [4]], 1, ops);
    expect(ops.order).toEqual(['costly', 'gcra', 'wide', 'twin']);
  });

  it('refused by the tightest group, consumes nothing elsewhere (nothing to refund)', async () => {
    const wide: StoreLimit = { key: 'wide', windowMs: 1000, limit: 30 };
    const tight: StoreLimit = { key: 'tight', windowMs: 1000, limit: 5 };
    const ops = recording();
    const refunds: string[] = [];
    ops.consume = async (group) => {
      ops.order.push(group[0]!.key);
      return group[0]!.key === 'tight' ? { ...allowed(0), allowed: false, remaining: 0, retryAfterMs: 500 } : allowed(100);
    };
    ops.refund = async (group) => void refunds.push(group[0]!.key);
    const result = await consumeGrouped([wide, tight], [[0], [1]], 1, ops);
    expect(result).toMatchObject({ allowed: false, index: 1 });
    expect(ops.order).toEqual(['tight']);
    expect(refunds).toEqual([]);
  });
});
