/**
 * The diagnostics channels (`ratelock:decision`, `ratelock:lock`): the messages and their shapes,
 * outcome names, nothing published while nobody subscribes, and issue 12 item 4 end to end — every
 * fail-open or fail-closed decision carries its reason, is published as `store_error` /
 * `store_timeout`, and the outage is logged once when it starts and once when it ends.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withLock } from '../../src/adapters/express/with-lock.js';
import type { Decision } from '../../src/core/decision.js';
import { DECISION_CHANNEL, LOCK_CHANNEL, decisionChannel, decisionOutcome, type DecisionMessage, type LockMessage } from '../../src/core/metrics.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { OUTAGE_QUIET_MS } from '../../src/core/store-call.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { recordingStore } from '../core/fake-stores.js';

/** Subscribes to `name` for the test; returns the messages received. */
function listen<T>(name: string): T[] {
  const messages: T[] = [];
  const listener = (message: unknown) => void messages.push(message as T);
  subscribe(name, listener);
  cleanups.push(() => unsubscribe(name, listener));
  return messages;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  vi.restoreAllMocks();
});

describe('ratelock:decision', () => {
  it('publishes nothing while nobody subscribes', async () => {
    const publish = vi.spyOn(decisionChannel, 'publish');
    const limiter = new RateLimiter({ store: memoryStoreForTests({ sweepIntervalMs: 0 }), limit: 1, window: '1m' });
    expect(decisionChannel.hasSubscribers).toBe(false);
    await limiter.consume('a');
    await limiter.consume('a');
    expect(publish).not.toHaveBeenCalled();
  });

  it('publishes every decision: the decision, its outcome, the adapter, the operation and the store time', async () => {
    const messages = listen<DecisionMessage>(DECISION_CHANNEL);
    const limiter = new RateLimiter({ store: memoryStoreForTests({ sweepIntervalMs: 0 }), limit: 1, window: '1m' });
    const first = await limiter.consume('a');
    await limiter.consume('a');
    await limiter.peek('a');
    expect(messages.map(({ outcome, adapter, operation }) => [outcome, adapter, operation])).toEqual([
      ['allowed', 'core', 'consume'],
      ['limited', 'core', 'consume'],
      ['limited', 'core', 'peek'],
    ]);
    expect(messages[0]!.decision).toBe(first);
    for (const { durationMs } of messages) expect(durationMs).toBeGreaterThanOrEqual(0);
  });

  it('names outcomes: shadow_limited for a shadow refusal, blocked_by_penalty for a penalty-box reason', () => {
    const base = { allowed: false, reason: 'limited', shadow: false } as Decision;
    expect(decisionOutcome(base)).toBe('limited');
    expect(decisionOutcome({ ...base, shadow: true })).toBe('shadow_limited');
    expect(decisionOutcome({ ...base, reason: 'store-timeout' })).toBe('store_timeout');
    expect(decisionOutcome({ ...base, reason: 'blocked' as Decision['reason'] })).toBe('blocked_by_penalty');
  });

  it('an outage: each decision says why (reason, outcome), the log says it once when it starts and once when it ends', async () => {
    const messages = listen<DecisionMessage>(DECISION_CHANNEL);
    const lines: string[] = [];
    const memory = memoryStoreForTests({ sweepIntervalMs: 0 });
    const store = recordingStore(memory);
    const open = new RateLimiter({ store, limit: 100, window: '1m', logger: { warn: (line) => void lines.push(line) } });
    const closed = new RateLimiter({ store, limit: 100, window: '1m', onStoreError: 'closed', logger: { warn: (line) => void lines.push(line) } });
    await open.consume('a');
    store.down = true;
    const during = [...(await Promise.all(Array.from({ length: 20 }, () => open.consume('a')))), await closed.consume('a')];
    expect(during.map((d) => [d.allowed, d.reason]).slice(-2)).toEqual([
      [true, 'store-error'],
      [false, 'store-error'],
    ]);
    expect(during.every((d) => d.reason === 'store-error' && d.error !== undefined)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[ratelock\] store unavailable/);
    store.down = false;
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + OUTAGE_QUIET_MS);
      await open.consume('a');
    } finally {
      vi.useRealTimers();
    }
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\[ratelock\] store recovered after \d+ ms \(21 failed calls\)$/);
    expect(messages.map((m) => m.outcome)).toEqual(['allowed', ...Array<string>(21).fill('store_error'), 'allowed']);
    memory.close();
  });
});

describe('ratelock:lock', () => {
  it('publishes each withLock outcome with its mode, key and time', async () => {
    const messages = listen<LockMessage>(LOCK_CHANNEL);
    const store = memoryStoreForTests({ sweepIntervalMs: 0 });
    const app = express();
    app.use(express.json());
    app.post('/pay', withLock({ store, replay: { ttl: '1h' } }), (_req, res) => void res.status(201).send('paid'));
    app.post('/job', withLock({ store, key: () => 'job-1' }), (_req, res) => void res.send('done'));
    await request(app).post('/pay').set('Idempotency-Key', '"p1"').send({ n: 1 });
    await request(app).post('/pay').set('Idempotency-Key', '"p1"').send({ n: 1 });
    await request(app).post('/job');
    expect(messages.map(({ mode, outcome, key }) => [mode, outcome, key])).toEqual([
      ['replay', 'acquired', 'p1'],
      ['replay', 'replayed', undefined],
      ['lock', 'acquired', 'job-1'],
    ]);
    for (const { durationMs } of messages) expect(durationMs).toBeGreaterThanOrEqual(0);
  });
});
