import { describe, expect, it } from 'vitest';
import { StoreError, StoreTimeoutError } from '../../src/core/errors.js';
import { withTimeout } from '../../src/core/store-call.js';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('withTimeout (the shared deadline queues)', () => {
  it('fails only the calls still pending at their deadline, in any settle order, and hands late values to onLate', async () => {
    const late: number[] = [];
    const calls = [5, 200, 1, 150, 10].map((ms, i) => withTimeout(after(ms, i), 60, (value) => late.push(value)));
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : s.reason instanceof StoreTimeoutError))).toEqual([0, true, 2, true, 4]);
    await after(200, undefined);
    expect(late.sort()).toEqual([1, 3]);
  });

  it('keeps calls of different budgets apart, and a queue that emptied starts again', async () => {
    await expect(withTimeout(after(1, 'a'), 30)).resolves.toBe('a');
    const short = withTimeout(after(80, 'short'), 20);
    const long = withTimeout(after(40, 'long'), 500);
    await expect(short).rejects.toBeInstanceOf(StoreTimeoutError);
    await expect(long).resolves.toBe('long');
    await expect(withTimeout(new Promise(() => undefined), 10)).rejects.toBeInstanceOf(StoreTimeoutError);
  });

  it('turns a rejection into a StoreError', async () => {
    await expect(withTimeout(Promise.reject(new Error('boom')), 50)).rejects.toBeInstanceOf(StoreError);
  });
});
