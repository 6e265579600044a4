/**
 * What only MemoryStore has (the shared semantics are in test/contract): option and argument
 * validation, the monotonic clock, LRU eviction at maxKeys, the bounded sweep of expired keys,
 * the timer's lifecycle, and isolation of stored responses.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, StoreError } from '../../src/core/errors.js';
import { idempotencyKeys, limitKey, lockKeys } from '../../src/core/keyspace.js';
import type { StoreLimit, StoredResponse } from '../../src/core/store.js';
import { MEMORY_STORE_DEFAULTS, MemoryStore, type MemoryStoreOptions } from '../../src/stores/memory.js';

const limitOn = (id: string, windowMs = 60_000, limit = 10): StoreLimit => ({ key: limitKey('rl:', id, 'w'), windowMs, limit });

/** Entries counted now in `limit`'s log (a peek with a huge quota records nothing). */
async function entriesIn(store: MemoryStore, limit: StoreLimit): Promise<number> {
  const quota = 1_000_000;
  return quota - 1 - (await store.peek([{ ...limit, limit: quota }], 1)).remaining;
}

function virtualClock(start = 1_750_000_000_000): { now: number; read: () => number } {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryStore options', () => {
  it('has documented defaults', () => {
    expect(MEMORY_STORE_DEFAULTS).toEqual({ maxKeys: 100_000, sweepIntervalMs: 1_000, sweepBatchSize: 10_000 });
    const store = new MemoryStore();
    expect(store.size).toBe(0);
    store.close();
  });

  it.each<[string, MemoryStoreOptions, string]>([
    ['maxKeys 0', { maxKeys: 0 }, 'MemoryStore option "maxKeys" must be an integer ≥ 1; got 0'],
    ['maxKeys 1.5', { maxKeys: 1.5 }, 'MemoryStore option "maxKeys" must be an integer ≥ 1; got 1.5'],
    ['maxKeys NaN', { maxKeys: Number.NaN }, 'MemoryStore option "maxKeys" must be an integer ≥ 1; got NaN'],
    ["maxKeys '10'", { maxKeys: '10' as unknown as number }, 'MemoryStore option "maxKeys" must be an integer ≥ 1; got "10"'],
    ['sweepIntervalMs -1', { sweepIntervalMs: -1 }, 'MemoryStore option "sweepIntervalMs" must be an integer from 0 to 2147483647; got -1'],
    ['sweepBatchSize 0', { sweepBatchSize: 0 }, 'MemoryStore option "sweepBatchSize" must be an integer ≥ 1; got 0'],
    ['clock 5', { clock: 5 as unknown as () => number }, 'MemoryStore option "clock" must be a function returning ms; got 5'],
    [
      'an unknown option',
      { maxkeys: 10 } as MemoryStoreOptions,
      'MemoryStore has no option "maxkeys"; known options: maxKeys, clock, sweepIntervalMs, sweepBatchSize',
    ],
    ['a string', 'fast' as MemoryStoreOptions, 'MemoryStore options must be an object; got "fast"'],
  ])('rejects %s with a ConfigError naming the option, the range and the value', (_label, options, message) => {
    expect(() => new MemoryStore(options)).toThrow(new ConfigError(message));
  });

  it('rejects a clock that returns no number, at the call', async () => {
    const store = new MemoryStore({ clock: () => Number.NaN, sweepIntervalMs: 0 });
    await expect(store.consume([limitOn('a')], 1)).rejects.toThrow('option "clock" must return a finite number of ms; got NaN');
  });
});

describe('MemoryStore call arguments', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });

  it.each([0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects cost %s, recording and refunding nothing', async (cost) => {
    const limit = limitOn('cost');
    await store.consume([limit], 2);
    await expect(store.consume([limit], cost)).rejects.toBeInstanceOf(ConfigError);
    await expect(store.peek([limit], cost)).rejects.toThrow(/^cost must be an integer ≥ 1; got /);
    await expect(store.refund([limit], cost, 0)).rejects.toBeInstanceOf(ConfigError);
    expect(await entriesIn(store, limit)).toBe(2);
    await store.reset([limit.key]);
  });

  it('rejects malformed limits with the offending field', async () => {
    await expect(store.consume([], 1)).rejects.toThrow('limits must be a non-empty array of { key, windowMs, limit }; got []');
    await expect(store.consume([{ ...limitOn('x'), windowMs: 0 }], 1)).rejects.toThrow('limits[0].windowMs must be an integer ≥ 1; got 0');
    await expect(store.consume([limitOn('y'), { ...limitOn('x'), limit: 2.5 }], 1)).rejects.toThrow('limits[1].limit must be an integer ≥ 1; got 2.5');
  });

  it('rejects empty tokens, bad lease lengths and non-binary bodies', async () => {
    const keys = lockKeys('lock:', 'args');
    await expect(store.acquireLock(keys, '', 1_000)).rejects.toThrow('token must be a non-empty string; got ""');
    await expect(store.acquireLock(keys, 't', 0)).rejects.toThrow('ttlMs must be an integer ≥ 1; got 0');
    const record = idempotencyKeys('idem:', 'args');
    await store.beginIdempotent(record, 't', 'fp', 1_000);
    const bad = { status: 200, headers: {}, body: 'text' } as unknown as StoredResponse;
    await expect(store.completeIdempotent(record, 't', bad, 1_000)).rejects.toThrow('response.body must be a Buffer or null; got "text"');
  });

  it('refuses to treat one kind of state as another (as Redis answers WRONGTYPE)', async () => {
    const limit = limitOn('kinds');
    await store.consume([limit], 1);
    const rejection = store.acquireLock({ lock: limit.key, fence: `${limit.key}:fence` }, 't', 1_000);
    await expect(rejection).rejects.toBeInstanceOf(StoreError);
    await expect(rejection).rejects.toThrow('holds a SlidingLog, not a Lease');
  });
});

describe('MemoryStore clock', () => {
  it('ignores steps of the system clock: windows and leases run on a monotonic clock', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const limit = limitOn('steps', 60_000, 2);
    const lock = lockKeys('lock:', 'steps');
    await store.consume([limit], 2);
    expect(await store.acquireLock(lock, 'holder', 60_000)).toMatchObject({ acquired: true });
    for (const step of [3_600_000, -7_200_000]) {
      vi.setSystemTime(Date.now() + step);
      const result = await store.consume([limit], 1);
      expect(result.allowed).toBe(false);
      expect(result.retryAfterMs).toBeGreaterThan(55_000); // tolerance: a slow machine, not an hour
      expect(result.retryAfterMs).toBeLessThanOrEqual(60_000);
      expect(await store.acquireLock(lock, 'other', 60_000)).toMatchObject({ acquired: false });
    }
    expect(await entriesIn(store, limit)).toBe(2);
  });

  it('issues strictly increasing fences even when the clock stands still and the counter is lost', async () => {
    const clock = virtualClock();
    const store = new MemoryStore({ clock: clock.read, sweepIntervalMs: 0 });
    const keys = lockKeys('lock:', 'frozen');
    const fences: number[] = [];
    for (let i = 0; i < 5; i++) {
      const result = await store.acquireLock(keys, `t${i}`, 1_000);
      if (!result.acquired) throw new Error('refused');
      fences.push(result.fence);
      await store.releaseLock(keys, `t${i}`);
      await store.reset([keys.fence]);
    }
    expect(fences[0]).toBe(clock.now * 1_000);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBe(fences[i - 1]! + 1);
  });
});

describe('MemoryStore bounded memory', () => {
  it('evicts the least recently used key beyond maxKeys; an access counts as a use', async () => {
    const store = new MemoryStore({ maxKeys: 3, sweepIntervalMs: 0 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => limitOn(id)) as [StoreLimit, StoreLimit, StoreLimit, StoreLimit];
    for (const limit of [a, b, c]) await store.consume([limit], 1);
    await store.peek([a], 1); // a is now more recent than b and c
    await store.consume([d], 1);
    expect(store.size).toBe(3);
    expect(await entriesIn(store, b)).toBe(0);
    for (const limit of [a, c, d]) expect(await entriesIn(store, limit)).toBe(1);
  });

  it('holds at most maxKeys keys through 300 000 distinct clients, keeping the most recent', async () => {
    const store = new MemoryStore({ maxKeys: 50_000, sweepIntervalMs: 0 });
    for (let i = 0; i < 300_000; i++) await store.consume([{ key: `rl:{ip-${i}}:1m`, windowMs: 60_000, limit: 10 }], 1);
    expect(store.size).toBe(50_000);
    expect(await entriesIn(store, { key: 'rl:{ip-299999}:1m', windowMs: 60_000, limit: 10 })).toBe(1);
    expect(await entriesIn(store, { key: 'rl:{ip-249999}:1m', windowMs: 60_000, limit: 10 })).toBe(0);
  });

  it('sweeps expired keys on a timer, a bounded batch per tick, least recently used first', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = virtualClock();
    const store = new MemoryStore({ clock: clock.read, sweepIntervalMs: 1_000, sweepBatchSize: 100 });
    for (let i = 0; i < 250; i++) await store.consume([limitOn(`short-${i}`, 1_000)], 1);
    for (let i = 0; i < 50; i++) await store.consume([limitOn(`long-${i}`, 60_000)], 1);
    const lock = lockKeys('lock:', 'swept');
    await store.acquireLock(lock, 'holder', 500); // the lease and its fence counter (kept 7 days)
    expect(store.size).toBe(302);
    clock.now += 1_000;
    const sizes: number[] = [];
    for (let tick = 0; tick < 5; tick++) {
      vi.advanceTimersByTime(1_000);
      sizes.push(store.size);
    }
    // 100 expired per tick; then only the live logs and the fence counter remain.
    expect(sizes).toEqual([202, 102, 52, 51, 51]);
    expect(await store.acquireLock(lock, 'next', 500)).toMatchObject({ acquired: true });
    store.close();
  });

  it('stops its timer on close() and on dispose, and keeps working without it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const closed = new MemoryStore();
    const disposed = new MemoryStore();
    const untimed = new MemoryStore({ sweepIntervalMs: 0 });
    expect(vi.getTimerCount()).toBe(2);
    closed.close();
    disposed[Symbol.dispose]();
    expect(vi.getTimerCount()).toBe(0);
    expect((await closed.consume([limitOn('after-close')], 1)).allowed).toBe(true);
    untimed.close();
  });

  it('never keeps the process alive (the sweep timer is unref()ed)', () => {
    const source = fileURLToPath(new URL('../../src/stores/memory.ts', import.meta.url));
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `const { MemoryStore } = await import(${JSON.stringify(source)}); new MemoryStore({ sweepIntervalMs: 10 });`],
      { timeout: 20_000, encoding: 'utf8' },
    );
    expect(child.error).toBeUndefined();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
  }, 30_000);
});

describe('MemoryStore idempotency records', () => {
  it('keeps its own copy of a stored response: neither the caller nor a replay can change it', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const keys = idempotencyKeys('idem:', 'copy');
    const body = Buffer.from('original');
    const links = ['</a>'];
    await store.beginIdempotent(keys, 'holder', 'fp', 10_000);
    await store.completeIdempotent(keys, 'holder', { status: 200, headers: { link: links }, body }, 10_000);
    body.write('tampered');
    links.push('</b>');
    const first = await store.beginIdempotent(keys, 'retry', 'fp', 10_000);
    if (first.state !== 'replay') throw new Error(`expected a replay, got ${first.state}`);
    first.response.body!.write('tampered');
    const second = await store.beginIdempotent(keys, 'retry', 'fp', 10_000);
    expect(second).toEqual({ state: 'replay', response: { status: 200, headers: { link: ['</a>'] }, body: Buffer.from('original') } });
  });
});
