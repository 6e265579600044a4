/**
 * RELIABILITY C1, Redis half: app servers whose clocks disagree by ±10 min share one key. ratelock
 * decides with Redis `TIME` inside its scripts, never the app's clock, so the limit stays exact
 * and both "processes" are told the same Retry-After.
 *
 * The two app processes are played by one process whose `Date` is moved before each call (+10 min,
 * then −10 min; vitest fakes `Date` only, timers and the Redis client run on real time): what
 * ratelock could read of an app's clock is exactly `Date`. (The MemoryStore half of C1 — a
 * monotonic clock, steps of the system clock change nothing — is stores/memory.test.ts.)
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RateLimiter, RedisStore, type Decision } from '../../src/index.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { record } from './support/record.js';
import { max, min } from './support/stats.js';

const LIMIT = 20;
const WINDOW_MS = 10_000;
const OFFSET_MS = 10 * 60_000;
/** RELIABILITY C1: spread of Retry-After / resetMs between the processes ≤ 1 s. */
const SPREAD_BOUND_MS = 1_000;

describe('C1: app clocks ±10 min apart on one key (RedisStore)', () => {
  let server: RedisServerHandle;
  let client: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    vi.useRealTimers();
    client?.disconnect();
    await server?.stop();
  });

  it('admits exactly the limit; both processes get the same Retry-After', async () => {
    const store = new RedisStore({ client });
    await store.ready();
    const limiter = new RateLimiter({ store, limit: LIMIT, window: WINDOW_MS, prefix: 'c1:', onStoreError: 'closed' });
    vi.useFakeTimers({ toFake: ['Date'] });
    const decisions: { process: 'ahead' | 'behind'; decision: Decision }[] = [];
    try {
      for (let i = 0; i < 3 * LIMIT; i++) {
        const process = i % 2 === 0 ? 'ahead' : 'behind';
        vi.setSystemTime(Date.now() + (process === 'ahead' ? OFFSET_MS : -OFFSET_MS));
        decisions.push({ process, decision: await limiter.consume('shared-client') });
        vi.useRealTimers();
        vi.useFakeTimers({ toFake: ['Date'] });
      }
    } finally {
      vi.useRealTimers();
    }
    const allowed = decisions.filter((d) => d.decision.allowed).length;
    const blocked = (process: 'ahead' | 'behind') => decisions.filter((d) => d.process === process && !d.decision.allowed).map((d) => d.decision.retryAfterMs);
    const ahead = blocked('ahead');
    const behind = blocked('behind');
    const spread = Math.max(max(ahead), max(behind)) - Math.min(min(ahead), min(behind));
    record({
      check: 'C1',
      case: 'app clocks ±10 min (Redis)',
      done: `${3 * LIMIT} decisions on one key, limit ${LIMIT} per ${WINDOW_MS / 1000} s, alternately from an app clock 10 min ahead and one 10 min behind`,
      bound: `allowed = limit exactly; Retry-After spread between the two ≤ ${SPREAD_BOUND_MS} ms`,
      figures: {
        allowed,
        'blocked (ahead / behind)': `${ahead.length} / ${behind.length}`,
        'Retry-After spread ms': spread,
      },
    });
    expect(allowed).toBe(LIMIT);
    expect(decisions.every((d) => d.decision.reason === 'allowed' || d.decision.reason === 'limited')).toBe(true);
    expect(spread).toBeLessThanOrEqual(SPREAD_BOUND_MS);
  });
});
