/**
 * IdempotencyGuard without HTTP, on every store kind: the record's states, waiting for a
 * duplicate's response, a crashed holder freeing the key within ttl, a stale holder unable to
 * complete over its successor's record, and records expiring after replayTtl.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyGuard, type IdempotencyOutcome } from '../../src/core/idempotency-guard.js';
import { ConfigError, LeaseLostError, StoreError } from '../../src/core/errors.js';
import type { StoredResponse } from '../../src/core/store.js';
import { createTestStore, failsFirst, replyLostOnce, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';

const response = (text: string, status = 201): StoredResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', link: ['</a>; rel="a"', '</b>; rel="b"'] },
  body: Buffer.from(text),
});

function acquired(outcome: IdempotencyOutcome) {
  if (outcome.state !== 'acquired') throw new Error(`expected acquired, got ${outcome.state}`);
  return outcome.lease;
}

/** The lease of a request begun on `id` whose event loop was then blocked past the guard's ttl (200 ms): lost locally, lapsed in the store. */
async function lapsedLease(guard: IdempotencyGuard, id: string) {
  const lease = acquired(await guard.begin(id, 'fp'));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600); // the "GC pause"
  await sleep(10);
  expect(lease.signal.aborted).toBe(true);
  return lease;
}

describe.each(storeKinds)('%s store: IdempotencyGuard', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  it('acquired → in-flight / mismatch for duplicates → replay after complete; abort frees the key', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: '5s' });
    const id = uniqueId('pay');
    const lease = acquired(await guard.begin(id, 'fp-1'));
    const duplicate = await guard.begin(id, 'fp-1');
    expect(duplicate.state).toBe('in-flight');
    expect(duplicate.state === 'in-flight' && duplicate.retryAfterMs).toBeGreaterThan(4_000);
    expect((await guard.begin(id, 'fp-2')).state).toBe('mismatch');
    await lease.complete(response('paid'));
    const replay = await guard.begin(id, 'fp-1');
    expect(replay).toEqual({ state: 'replay', response: response('paid') });
    expect((await guard.begin(id, 'fp-2')).state).toBe('mismatch');

    const other = uniqueId('pay');
    const first = acquired(await guard.begin(other, 'fp'));
    await first.abort();
    const second = acquired(await guard.begin(other, 'fp'));
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.abort();
  });

  it('a duplicate with `wait` gets the response as soon as the first completes', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: '5s' });
    const id = uniqueId('wait');
    const lease = acquired(await guard.begin(id, 'fp'));
    const waiting = guard.begin(id, 'fp', { wait: 3_000 });
    await sleep(200);
    await lease.complete(response('done'));
    const outcome = await waiting;
    expect(outcome.state).toBe('replay');
  });

  it('a begin that failed after it landed (reply lost) aborts its record at once, so the retry runs', async () => {
    const store = replyLostOnce(t.store, 'beginIdempotent');
    const guard = new IdempotencyGuard({ store, ttl: '30s' });
    const id = uniqueId('lost-reply');
    await expect(guard.begin(id, 'fp')).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE' });
    const started = performance.now();
    const retry = await guard.begin(id, 'fp', { wait: 2_000 }); // not in flight for 30 s
    expect(retry.state).toBe('acquired');
    expect(performance.now() - started).toBeLessThan(1_000);
    await acquired(retry).abort();
  });

  // A review found a handler run twice: Redis stalled while the handler ran, its complete failed
  // and was given up, the record stayed in flight until the lease ended, and the retry ran again.
  it('a complete that fails while the store stalls is retried within the lease, so a retry of the request replays', async () => {
    const { store, calls } = failsFirst(t.store, 'completeIdempotent', 3);
    const guard = new IdempotencyGuard({ store, ttl: '5s' });
    const id = uniqueId('stalled-complete');
    await acquired(await guard.begin(id, 'fp')).complete(response('paid'));
    expect(calls.count).toBe(4);
    expect(await guard.begin(id, 'fp')).toEqual({ state: 'replay', response: response('paid') });
  });

  it('a complete whose reply was lost after it landed is retried and recognised (no LeaseLostError)', async () => {
    const guard = new IdempotencyGuard({ store: replyLostOnce(t.store, 'completeIdempotent'), ttl: '5s' });
    const id = uniqueId('lost-complete');
    await acquired(await guard.begin(id, 'fp')).complete(response('paid'));
    expect(await guard.begin(id, 'fp')).toEqual({ state: 'replay', response: response('paid') });
  });

  it('a complete that keeps failing gives up one lease length after the lease ends, with the store error', async () => {
    const { store, calls } = failsFirst(t.store, 'completeIdempotent', Infinity);
    const guard = new IdempotencyGuard({ store, ttl: 600 });
    const id = uniqueId('failing-complete');
    const lease = acquired(await guard.begin(id, 'fp'));
    const started = performance.now();
    await expect(lease.complete(response('paid'))).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE' });
    const elapsed = performance.now() - started;
    expect(calls.count).toBe(4); // at 0, 100, 300 and 700 ms; the next (1 500 ms) would be past 2 × 600
    expect(elapsed).toBeGreaterThanOrEqual(700 - 5);
    expect(elapsed).toBeLessThan(1200 + 500);
  });

  // Retrying a complete the store calls lasting (the record key holds another kind of state) only
  // held the response for the lease plus one ttl before failing the same way.
  it('a complete that fails lasting is not retried: it fails at once', async () => {
    const calls = { count: 0 };
    const lasting = new StoreError('Redis script idempotency_complete failed: WRONGTYPE Operation against a key holding the wrong kind of value', { lasting: true });
    const store = new Proxy(t.store, {
      get(target, name, receiver) {
        if (name !== 'completeIdempotent') return Reflect.get(target, name, receiver);
        return async () => {
          calls.count++;
          throw lasting;
        };
      },
    });
    const guard = new IdempotencyGuard({ store, ttl: '5s' });
    const lease = acquired(await guard.begin(uniqueId('lasting'), 'fp'));
    const started = performance.now();
    await expect(lease.complete(response('paid'))).rejects.toBe(lasting);
    expect(calls.count).toBe(1);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('a holder whose lease lapsed still completes while nobody began since, and the retry replays', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: 200 });
    const id = uniqueId('lapsed');
    const lease = await lapsedLease(guard, id);
    await lease.complete(response('late'));
    expect(lease.state).toBe('ended');
    const replay = await guard.begin(id, 'fp');
    expect(replay.state === 'replay' && replay.response.body?.toString()).toBe('late');
  });

  it('a crashed holder’s record frees itself within ttl', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: 300 });
    const id = uniqueId('crash');
    const started = performance.now();
    acquired(await guard.begin(id, 'fp')); // never completed
    const retry = acquired(await guard.begin(id, 'fp', { wait: 2_000 }));
    const after = performance.now() - started;
    expect(after).toBeGreaterThanOrEqual(300 - 5);
    expect(after).toBeLessThanOrEqual(300 + 150);
    await retry.abort();
  });

  it('a stale holder cannot complete over its successor’s record (LeaseLostError), nor abort it', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: 200 });
    const id = uniqueId('stale');
    const stale = await lapsedLease(guard, id);
    const successor = acquired(await guard.begin(id, 'fp'));
    await expect(stale.complete(response('stale'))).rejects.toBeInstanceOf(LeaseLostError);
    await expect(stale.abort()).rejects.toBeInstanceOf(LeaseLostError);
    await successor.complete(response('fresh'));
    const replay = await guard.begin(id, 'fp');
    expect(replay.state === 'replay' && replay.response.body?.toString()).toBe('fresh');
  });

  it('forgets a completed record after replayTtl', async () => {
    const guard = new IdempotencyGuard({ store: t.store, ttl: '5s', replayTtl: 300 });
    const id = uniqueId('expire');
    await acquired(await guard.begin(id, 'fp')).complete(response('old'));
    expect((await guard.begin(id, 'fp')).state).toBe('replay');
    await sleep(400);
    const again = acquired(await guard.begin(id, 'fp-new'));
    await again.abort();
  });
});

describe('IdempotencyGuard options', () => {
  it.each([
    [{ replayTtl: 0 }, /replayTtl must be/],
    [{ ttl: 1 }, /^ttl must be at least 150 ms, so the lease can be auto-extended every ttl\/3 .*; got 1$/],
    [{ ttl: 100, replayTtl: '1h' }, /^ttl must be at least 150 ms/],
    [{ ttl: '5s', maxHold: '1s' }, /maxHold must be at least the lease ttl/],
    [{ store: { acquireLock() {} } }, /store must be a Store with beginIdempotent/],
    [{ ttl: '5s', lease: 1 }, /IdempotencyGuard has no option "lease"/],
  ])('rejects %j with a ConfigError naming the option', (options, message) => {
    expect(() => new IdempotencyGuard(options as never)).toThrow(ConfigError);
    expect(() => new IdempotencyGuard(options as never)).toThrow(message);
  });
});
