/**
 * retryUntil (src/core/lock/poll.ts), the one retry loop of the lease code: growing delays, capped
 * at maxDelayMs, no try started at or after `until`, non-retryable errors thrown at once.
 */
import { describe, expect, it } from 'vitest';
import { monotonicNow, retryUntil } from '../../src/core/lock/poll.js';

const failing = (starts: number[], origin: number) => () => {
  starts.push(monotonicNow() - origin);
  return Promise.reject(new Error('still down'));
};

describe('retryUntil', () => {
  it('grows the delay by `factor` up to maxDelayMs, and starts no try at or after `until`', async () => {
    const starts: number[] = [];
    const origin = monotonicNow();
    const plan = { firstDelayMs: 20, factor: 10, maxDelayMs: 40, until: origin + 400, retryable: () => true, keepAlive: true };
    await expect(retryUntil(failing(starts, origin), plan)).rejects.toThrow('still down');
    // At 0, 20, then every 40 ms: 60, 100 … 380 (11 tries). Uncapped, 20 then 200 would leave 3
    // tries before `until`; a loaded machine firing timers late may make a few fewer, never that few.
    expect(starts.length).toBeGreaterThanOrEqual(6);
    expect(starts.length).toBeLessThanOrEqual(11);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(i === 1 ? 19 : 39);
    expect(starts[starts.length - 1]!).toBeLessThan(400);
  });

  it('throws an error the plan does not retry at once, and returns the first success', async () => {
    const plan = { firstDelayMs: 5, factor: 2, maxDelayMs: 10, until: monotonicNow() + 1_000, retryable: (err: unknown) => (err as Error).message === 'transient', keepAlive: true };
    let calls = 0;
    await expect(retryUntil(() => Promise.reject(new Error(++calls === 1 ? 'transient' : 'fatal')), plan)).rejects.toThrow('fatal');
    expect(calls).toBe(2);
    let tries = 0;
    await expect(retryUntil(() => (++tries < 3 ? Promise.reject(new Error('transient')) : Promise.resolve('done')), plan)).resolves.toBe('done');
    expect(tries).toBe(3);
  });
});
