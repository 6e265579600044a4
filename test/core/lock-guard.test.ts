/**
 * LockGuard without HTTP, on every store kind: busy keys, polling waiters (jittered, ≤ 20 calls/s,
 * honouring the holder's lease), fences, token-checked extend/release, leases lost to a blocked
 * event loop, auto-extension up to maxHold, and option validation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, LeaseLostError, LockBusyError, StoreError } from '../../src/core/errors.js';
import { lockKeys } from '../../src/core/store-keys.js';
import { LockGuard, MIN_LEASE_TTL_MS, MIN_POLL_INTERVAL_MS } from '../../src/core/lock-guard.js';
import type { Store } from '../../src/core/store.js';
import { createTestStore, replyLostOnce, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';
import { watchEventLoop } from '../helpers/event-loop.js';

/** Blocks the event loop (the Node.js "GC pause") for `ms`. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** `store` with a count of calls per method. */
function countingStore(store: Store): { store: Store; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const counting = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls[String(property)] = (calls[String(property)] ?? 0) + 1;
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { store: counting, calls };
}

describe.each(storeKinds)('%s store: LockGuard', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  it('grants one holder; a busy key rejects at once with LockBusyError carrying the lease left', async () => {
    const guard = new LockGuard({ store: t.store, ttl: '5s' });
    const key = uniqueId('order');
    const lease = await guard.acquire(key);
    expect(lease.key).toBe(key);
    expect(lease.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(lease.state).toBe('held');
    const started = performance.now();
    const busy = await guard.acquire(key).catch((err: unknown) => err);
    expect(performance.now() - started).toBeLessThan(MIN_POLL_INTERVAL_MS);
    expect(busy).toBeInstanceOf(LockBusyError);
    expect((busy as LockBusyError).retryAfterMs).toBeGreaterThan(4_000);
    expect((busy as LockBusyError).retryAfterMs).toBeLessThanOrEqual(5_000);
    await lease.release();
    await lease.release(); // a second release does nothing
    expect(lease.state).toBe('ended');
    const again = await guard.acquire(key);
    expect(again.fence).toBeGreaterThan(lease.fence);
    await again.release();
  });

  it('gives strictly increasing fences to 20 waiters taking turns', async () => {
    const guard = new LockGuard({ store: t.store, ttl: '5s' });
    const key = uniqueId('ledger');
    let active = 0;
    let maxActive = 0;
    const fences: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        await using lease = await guard.acquire(key, { wait: 20_000 });
        active++;
        maxActive = Math.max(maxActive, active);
        fences.push(lease.fence);
        await sleep(5);
        active--;
      }),
    );
    expect(maxActive).toBe(1);
    expect(fences).toHaveLength(20);
    for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
  });

  it('polls a busy key with at most 20 store calls per second, and takes it as soon as the holder releases', async () => {
    const counting = countingStore(t.store);
    const guard = new LockGuard({ store: counting.store, ttl: '5s' });
    const key = uniqueId('poll');
    const holder = await guard.acquire(key);
    const before = counting.calls.acquireLock ?? 0;
    const loop = watchEventLoop(); // upper bounds on waits add the loop's own delay (a loaded machine)
    const started = performance.now();
    const waiting = guard.acquire(key, { wait: 5_000 });
    await sleep(1_500);
    await holder.release();
    const released = performance.now();
    const lease = await waiting;
    const tookMs = performance.now() - released;
    const elapsedS = (performance.now() - started) / 1000;
    const calls = (counting.calls.acquireLock ?? 0) - before;
    expect(calls).toBeGreaterThanOrEqual(5); // it polled, jittered between 50 and 250 ms
    expect(calls / elapsedS).toBeLessThanOrEqual(20);
    expect(tookMs).toBeLessThanOrEqual(250 + 50 + loop().max);
    await lease.release();
  });

  it('a waiter takes a crashed holder’s lock right after its lease runs out', async () => {
    const guard = new LockGuard({ store: t.store, ttl: 300 });
    const key = uniqueId('crash');
    const loop = watchEventLoop();
    const acquiredAt = performance.now();
    await guard.acquire(key); // never released: the holder "crashed"
    const lease = await guard.acquire(key, { wait: 2_000 });
    const after = performance.now() - acquiredAt;
    expect(after).toBeGreaterThanOrEqual(300 - 5);
    expect(after).toBeLessThanOrEqual(300 + MIN_POLL_INTERVAL_MS + 50 + loop().max);
    await lease.release();
  });

  it('rejects with LockBusyError after `wait` ms when the key stays busy', async () => {
    const guard = new LockGuard({ store: t.store, ttl: '5s' });
    const key = uniqueId('stays-busy');
    const holder = await guard.acquire(key);
    const loop = watchEventLoop();
    const started = performance.now();
    await expect(guard.acquire(key, { wait: 400 })).rejects.toBeInstanceOf(LockBusyError);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(400 - 5);
    expect(waited).toBeLessThanOrEqual(400 + 100 + loop().max);
    await holder.release();
  });

  it('stops waiting when the signal aborts, leaving no lock behind', async () => {
    const guard = new LockGuard({ store: t.store, ttl: '5s' });
    const key = uniqueId('abort');
    const holder = await guard.acquire(key);
    const controller = new AbortController();
    const waiting = guard.acquire(key, { wait: 5_000, signal: controller.signal });
    await sleep(100);
    controller.abort(new Error('client gone'));
    await expect(waiting).rejects.toThrow('client gone');
    await holder.release();
    const next = await guard.acquire(key);
    await next.release();
  });

  it('a lease lost to a blocked event loop aborts its signal; the old holder can neither release nor extend', async () => {
    const guard = new LockGuard({ store: t.store, ttl: 200 });
    const key = uniqueId('gc-pause');
    const lease = await guard.acquire(key);
    lease.autoExtend();
    let abortedAt = 0;
    lease.signal.addEventListener('abort', () => (abortedAt = performance.now()));
    blockEventLoop(3 * 200);
    const unblockedAt = performance.now();
    await sleep(20);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(lease.state).toBe('lost');
    expect(abortedAt - unblockedAt).toBeLessThan(20); // detected on the first timers phase after the block

    const successor = await guard.acquire(key);
    await expect(lease.extend()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(lease.release()).rejects.toBeInstanceOf(LeaseLostError);
    // The new holder's lock is intact: still busy for others, and its own release works.
    await expect(guard.acquire(key)).rejects.toBeInstanceOf(LockBusyError);
    await successor.release();
  });

  it('a lease taken over behind its back: the next extension aborts the signal and never re-acquires', async () => {
    const guard = new LockGuard({ store: t.store, ttl: 300 });
    const key = uniqueId('taken');
    const lease = await guard.acquire(key);
    const extension = lease.autoExtend({ every: 50 });
    await t.store.reset([lockKeys(guard.prefix, key).lock]); // e.g. Redis flushed
    const successor = await guard.acquire(key);
    await sleep(150);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(extension.active).toBe(false);
    await expect(guard.acquire(key)).rejects.toBeInstanceOf(LockBusyError);
    await successor.release();
  });

  it('auto-extension keeps a slow holder’s lock up to maxHold, then stops; a contender gets it by then', async () => {
    const guard = new LockGuard({ store: t.store, ttl: 300, maxHold: 1_200 });
    const key = uniqueId('slow');
    const loop = watchEventLoop();
    const started = performance.now();
    const lease = await guard.acquire(key);
    const extension = lease.autoExtend();
    let abortedAt = 0;
    lease.signal.addEventListener('abort', () => (abortedAt = performance.now() - started));
    const contender = await guard.acquire(key, { wait: 5_000 });
    const acquiredAt = performance.now() - started;
    const loopDelay = loop();
    expect(acquiredAt).toBeGreaterThanOrEqual(1_200 - 20);
    expect(acquiredAt).toBeLessThanOrEqual(1_200 + MIN_POLL_INTERVAL_MS + 100 + loopDelay.max);
    expect(extension.active).toBe(false);
    expect(extension.extensions).toBeGreaterThanOrEqual(8); // every ~100 ms (chained after each reply) for 1.2 s
    expect(abortedAt).toBeGreaterThanOrEqual(1_200 - 20);
    expect(abortedAt).toBeLessThanOrEqual(1_200 + 50 + loopDelay.max);
    await expect(lease.release()).rejects.toBeInstanceOf(LeaseLostError);
    await contender.release();
  });

  it('an acquire that failed after it landed (reply lost) gives its grant back at once, not after the ttl', async () => {
    const guard = new LockGuard({ store: replyLostOnce(t.store, 'acquireLock'), ttl: '30s' });
    const key = uniqueId('lost-reply');
    await expect(guard.acquire(key)).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE' });
    const started = performance.now();
    const lease = await guard.acquire(key, { wait: 2_000 }); // free again within a poll, not 30 s
    expect(performance.now() - started).toBeLessThan(1_000);
    await lease.release();
  });

  it('an acquire the store did not send (StoreError.notSent) gives nothing back: nothing was taken', async () => {
    const unsent = new Proxy(t.store, {
      get: (target, property, receiver) =>
        property === 'acquireLock'
          ? () => Promise.reject(new StoreError('not connected; the call was not sent', { notSent: true }))
          : Reflect.get(target, property, receiver),
    });
    const counting = countingStore(unsent);
    const guard = new LockGuard({ store: counting.store, ttl: '30s' });
    await expect(guard.acquire(uniqueId('unsent'))).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE', notSent: true });
    await sleep(20);
    expect(counting.calls.releaseLock ?? 0).toBe(0);
  });

  it('`await using` releases the lease at the end of the block', async () => {
    const guard = new LockGuard({ store: t.store, ttl: '5s' });
    const key = uniqueId('using');
    {
      await using lease = await guard.acquire(key);
      expect(lease.state).toBe('held');
    }
    const next = await guard.acquire(key);
    await next.release();
  });
});

describe('LockGuard with a flaky store (MemoryStore behind an injected fault)', () => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore('memory');
  });
  afterAll(() => t.close());

  /** The store whose extendLock fails while `failing.on` is true. */
  function flaky(store: Store): { store: Store; failing: { on: boolean } } {
    const failing = { on: false };
    const wrapped = new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (property === 'extendLock') {
          return (...args: unknown[]) => (failing.on ? Promise.reject(new Error('ECONNRESET')) : Reflect.apply(value as never, target, args));
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { store: wrapped, failing };
  }

  it('retries a failed extension on the next tick and keeps the lease when the store comes back', async () => {
    const { store, failing } = flaky(t.store);
    const guard = new LockGuard({ store, ttl: 300, logger: { warn: () => undefined } });
    const lease = await guard.acquire(uniqueId('flaky'));
    lease.autoExtend();
    failing.on = true;
    await sleep(150); // one failed tick (at 100 ms), lease still has time
    failing.on = false;
    await sleep(500);
    expect(lease.signal.aborted).toBe(false);
    expect(lease.state).toBe('held');
    await lease.release();
  });

  it('aborts the signal when extensions keep failing until the lease runs out', async () => {
    const { store, failing } = flaky(t.store);
    const guard = new LockGuard({ store, ttl: 300, logger: { warn: () => undefined } });
    const lease = await guard.acquire(uniqueId('flaky'));
    lease.autoExtend();
    failing.on = true;
    await sleep(450);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(String((lease.signal.reason as Error).message)).toMatch(/not extended within its ttl/);
  });
});

describe('LockGuard options', () => {
  it.each([
    [{ ttl: 0 }, /ttl must be/],
    [{ ttl: '1 week' }, /ttl must be/],
    [{ ttl: 1 }, /^ttl must be at least 150 ms, so the lease can be auto-extended every ttl\/3 .*; got 1$/],
    [{ ttl: '149ms' }, /^ttl must be at least 150 ms.*; got "149ms"$/],
    [{ ttl: 1_000, maxHold: 500 }, /maxHold must be at least the lease ttl/],
    [{ timeout: -1 }, /timeout must be/],
    [{ prefix: 'a{b' }, /prefix must be/],
    [{ store: {} }, /store must be a Store with acquireLock/],
    [{ ttl: 1_000, retries: 3 }, /LockGuard has no option "retries"/],
  ])('rejects %j with a ConfigError naming the option', (options, message) => {
    expect(() => new LockGuard(options as never)).toThrow(ConfigError);
    expect(() => new LockGuard(options as never)).toThrow(message);
  });

  it('accepts the shortest ttl, MIN_LEASE_TTL_MS (150 ms), and keeps it past its ttl by auto-extension', async () => {
    expect(MIN_LEASE_TTL_MS).toBe(150);
    const guard = new LockGuard({ ttl: MIN_LEASE_TTL_MS });
    const lease = await guard.acquire(uniqueId('shortest'));
    const extension = lease.autoExtend();
    await sleep(250); // past the ttl: only the extensions (every 50 ms; 100 ms of slack each) keep it
    expect(lease.state).toBe('held');
    expect(extension.extensions).toBeGreaterThanOrEqual(2);
    await lease.release();
  });

  it('rejects bad acquire arguments', async () => {
    const guard = new LockGuard({ ttl: 1_000 });
    await expect(guard.acquire('')).rejects.toThrow(/acquire\(key\) must be a non-empty string/);
    await expect(guard.acquire('k', { wait: -5 })).rejects.toThrow(/wait must be 0 or a whole number/);
    await expect(guard.acquire('k', { wait: 10, retries: 1 } as never)).rejects.toThrow(/acquire\(\) has no option "retries"/);
    const lease = await guard.acquire(uniqueId('bad-every'));
    expect(() => lease.autoExtend({ every: 1_000 })).toThrow(/autoExtend.every must be shorter than the lease ttl/);
    await lease.release();
  });
});
