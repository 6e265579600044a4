/**
 * RateLimiter end to end on every store kind (MemoryStore, RedisStore, RedisStore on Cluster):
 * exact counts under concurrency, all-or-nothing multi-limit, refunds, resets, hostile ids.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter, type RateLimiterOptions } from '../../src/core/rate-limiter.js';
import { createTestStore, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';

describe.each(storeKinds)('RateLimiter on the %s store', (kind) => {
  let t: TestStore;
  const limiter = (options: Omit<RateLimiterOptions, 'store'>) =>
    // A generous budget: these tests are about counts, not about timeouts on a busy CI box.
    new RateLimiter({ store: t.store, timeout: 5_000, prefix: `${uniqueId('p')}:`, ...options });

  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterEach(() => t.flush());
  afterAll(() => t.close());

  it('allows exactly the limit out of 300 concurrent requests', async () => {
    const rl = limiter({ limit: 100, window: '1m' });
    const key = uniqueId('hot');
    const decisions = await Promise.all(Array.from({ length: 300 }, () => rl.consume(key)));
    expect(decisions.filter((decision) => decision.reason === 'allowed')).toHaveLength(100);
    const blocked = decisions.filter((decision) => !decision.allowed);
    expect(blocked).toHaveLength(200);
    for (const decision of blocked) {
      expect(decision.reason).toBe('limited');
      expect(decision.retryAfterMs).toBeGreaterThan(0);
      expect(decision.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
  });

  it('records a request in every limit or in none', async () => {
    const prefix = `${uniqueId('multi')}:`;
    const both = new RateLimiter({ store: t.store, timeout: 5_000, prefix, limits: [{ limit: 5, window: '10s' }, { limit: 8, window: '1m' }] });
    const minuteOnly = new RateLimiter({ store: t.store, timeout: 5_000, prefix, limits: [{ limit: 8, window: '1m' }] });
    const key = uniqueId('user');
    const decisions = await Promise.all(Array.from({ length: 20 }, () => both.consume(key)));
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
    expect(decisions.find((decision) => !decision.allowed)!.policy.name).toBe('5-in-10s');
    // The 15 refused requests left nothing in the 1 m log: 5 of 8 used.
    await expect(minuteOnly.peek(key)).resolves.toMatchObject({ allowed: true, remaining: 2 });
  });

  it('keeps an app-wide 100/1m limiter and a 5/1m route limiter apart on one store and prefix (BUG 1)', async () => {
    const appWide = new RateLimiter({ store: t.store, timeout: 5_000, limit: 100, window: '1m' });
    const login = new RateLimiter({ store: t.store, timeout: 5_000, limit: 5, window: '1m' });
    const key = uniqueId('client');
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) {
      // A login request passes the app-wide limiter first, then the route's.
      const wide = await appWide.consume(key);
      const route = await login.consume(key);
      outcomes.push(`${wide.reason}/${route.reason}`);
    }
    expect(outcomes).toEqual([...Array(5).fill('allowed/allowed'), 'allowed/limited', 'allowed/limited']);
    await expect(appWide.peek(key)).resolves.toMatchObject({ allowed: true, remaining: 100 - 7 - 1, policy: { name: '100-in-1m' } });
    await expect(login.peek(key)).resolves.toMatchObject({ allowed: false, remaining: 0, policy: { name: '5-in-1m' } });
  });

  it('blocks a cost above the limit with retryAfterMs = the window, recording nothing', async () => {
    const rl = limiter({ limit: 3, window: '30s' });
    const key = uniqueId('big');
    await expect(rl.consume(key, { cost: 4 })).resolves.toMatchObject({ allowed: false, reason: 'limited', retryAfterMs: 30_000 });
    await expect(rl.consume(key, { cost: 3 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
  });

  it('refunds exactly one decision, and resets every limit of a key', async () => {
    const rl = limiter({ limits: [{ limit: 4, window: '1m' }, { limit: 10, window: '1h' }] });
    const key = uniqueId('refund');
    const first = await rl.consume(key, { cost: 2 });
    await rl.consume(key, { cost: 2 });
    await rl.refund(first);
    await rl.refund(first);
    await expect(rl.peek(key)).resolves.toMatchObject({ allowed: true, remaining: 1 });
    await rl.reset(key);
    await expect(rl.consume(key, { cost: 4 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
  });

  it('keeps hostile ids apart and every call in one slot (RELIABILITY B1)', async () => {
    const rl = limiter({ limits: [{ limit: 2, window: '1s' }, { limit: 3, window: '1h' }] });
    const ids = ['{', '}', '}{', '{}', 'a}b', '{x}y', 'k'.repeat(1_024), 'ключ🔑', 'a\u0000b\r\nc'];
    for (const id of ids) {
      const decisions = [await rl.consume(id), await rl.consume(id), await rl.consume(id)];
      expect(decisions.map((decision) => decision.reason)).toEqual(['allowed', 'allowed', 'limited']);
    }
  });
});
