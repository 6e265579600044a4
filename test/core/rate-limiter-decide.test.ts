import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { requestRateLimiter, type LimiterSettings } from '../../src/core/rate-limiter.js';
import { ConfigError, StoreError, StoreTimeoutError } from '../../src/core/errors.js';
import { type LimitPart } from '../../src/core/store-keys.js';
import { limitKey } from '../helpers/keys.js';
import type { Decision, Policy } from '../../src/core/decision.js';
import { OUTAGE_QUIET_MS, type Logger, type OnStoreError } from '../../src/core/store-call.js';
import { decideInProcess, type RateLimitStore } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { failingStore, recordingStore, silentStore, type RecordingStore } from './fake-stores.js';

const policy = (limit: number, windowMs: number, name = `${windowMs}ms`): Policy => ({ name, limit, windowMs });
const part = (id: string, ...policies: Policy[]): LimitPart => ({ id, prefix: 'rl:', policies });

/** What these tests vary per call: the store side of one limiter. */
interface StoreCallOptions {
  store: RateLimitStore;
  timeoutMs: number;
  logger: Logger;
  onStoreError: OnStoreError<undefined>;
  refundable?: boolean;
}

function limiterFor(options: StoreCallOptions) {
  const settings: LimiterSettings<undefined> = { prefix: 'rl:', refundable: false, ...options };
  return requestRateLimiter(settings);
}

/** One decision of a limiter with `options` (RateLimiter.decide, the step every limiter takes). */
function decide(parts: readonly LimitPart[], cost: number, mode: 'consume' | 'peek', options: StoreCallOptions, policies?: readonly Policy[]): Promise<Decision> {
  return limiterFor(options).decide({ parts, cost, policies }, undefined, mode);
}

/** Refunds `decision` through a limiter with `options` (the ticket on the decision says what to give back). */
function refund(decision: Decision, options: StoreCallOptions): Promise<void> {
  return limiterFor(options).refund(decision);
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (message) => lines.push(message) };
}

describe('RateLimiter.decide() and refund() on MemoryStore (virtual clock)', () => {
  let now: number;
  let memory: MemoryStore;
  let store: RecordingStore;
  let options: StoreCallOptions;

  beforeEach(() => {
    now = 1_000_000;
    memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    store = recordingStore(memory);
    options = { store, timeoutMs: 1_000, logger: recordingLogger(), onStoreError: 'open', refundable: true };
  });

  afterEach(() => memory.close());

  it('allows up to the limit, then blocks until the oldest entry leaves the window', async () => {
    const login = part('ip:1.2.3.4', policy(3, 1_000));
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const decision = await decide([login], 1, 'consume', options);
      expect(decision).toMatchObject({ allowed: true, reason: 'allowed', limit: 3, retryAfterMs: 0, key: 'ip:1.2.3.4' });
      remaining.push(decision.remaining);
      now += 100;
    }
    expect(remaining).toEqual([2, 1, 0]);
    const blocked = await decide([login], 1, 'consume', options);
    // The first entry (t = 0) leaves at t = 1000; it is now t = 300.
    expect(blocked).toMatchObject({ allowed: false, reason: 'limited', remaining: 0, retryAfterMs: 700, resetMs: 900 });
    expect(blocked.error).toBeUndefined();
    now += 700;
    await expect(decide([login], 1, 'consume', options)).resolves.toMatchObject({ allowed: true });
  });

  it('gives back a consume that timed out but was recorded later (no phantom entries after a stall)', async () => {
    const login = part('ip:5.6.7.8', policy(2, 60_000));
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    let landed!: Promise<unknown>;
    const slowStore: RateLimitStore = {
      consume: async (limits, cost) => {
        await stalled; // the store answers only after the caller gave up
        landed = memory.consume(limits, cost);
        return landed as ReturnType<MemoryStore['consume']>;
      },
      peek: (limits, cost) => memory.peek(limits, cost),
      refund: (limits, cost, stamp) => memory.refund(limits, cost, stamp),
      reset: (keys) => memory.reset(keys),
    };
    const timedOut = await decide([login], 1, 'consume', { ...options, store: slowStore, timeoutMs: 20 });
    expect(timedOut).toMatchObject({ allowed: true, reason: 'store-timeout' });
    release();
    await vi.waitFor(() => expect(landed).toBeDefined());
    await expect(landed).resolves.toMatchObject({ allowed: true }); // recorded after all...
    await vi.waitFor(async () => {
      // ...and given back.
      await expect(decide([login], 1, 'peek', options)).resolves.toMatchObject({ remaining: 1 });
    });
  });

  it('checks every limit of every part in ONE store call, with keys laid out as limitKey()', async () => {
    const user = part('user:7', policy(10, 1_000, '1s'), policy(100, 60_000, '1m'));
    const route = { id: 'route:/search', prefix: 'rl:search:', policies: [policy(50, 1_000, '1s')] };
    await decide([user, route], 1, 'consume', options);
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]!.limits).toEqual([
      { key: limitKey('rl:', 'user:7', '1s'), windowMs: 1_000, limit: 10 },
      { key: limitKey('rl:', 'user:7', '1m'), windowMs: 60_000, limit: 100 },
      { key: limitKey('rl:search:', 'route:/search', '1s'), windowMs: 1_000, limit: 50 },
    ]);
  });

  it('is all or nothing across parts: a block by one part records nothing in the others', async () => {
    const generous = part('user:1', policy(5, 60_000));
    const strict = { id: 'tenant:a', prefix: 'rl:t:', policies: [policy(2, 60_000)] };
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await decide([generous, strict], 1, 'consume', options));
    expect(outcomes.map((decision) => decision.allowed)).toEqual([true, true, false, false]);
    expect(outcomes[2]).toMatchObject({ key: 'tenant:a', limit: 2, policy: strict.policies[0] });
    expect(outcomes[2]!.policies).toEqual([...generous.policies, ...strict.policies]);
    // Only the two allowed requests are in user:1's log.
    await expect(decide([generous], 1, 'peek', options)).resolves.toMatchObject({ allowed: true, remaining: 2 });
  });

  it('reports the policy closest to blocking when allowed, and the longest wait when blocked', async () => {
    const parts = [part('k', policy(10, 1_000, 'second'), policy(3, 60_000, 'minute'))];
    const first = await decide(parts, 1, 'consume', options);
    expect(first).toMatchObject({ policy: { name: 'minute' }, limit: 3, remaining: 2 });
    now += 10;
    await decide(parts, 2, 'consume', options);
    const blocked = await decide(parts, 1, 'consume', options);
    expect(blocked).toMatchObject({ allowed: false, policy: { name: 'minute' }, retryAfterMs: 59_990 });
  });

  it('blocks a cost above a limit with retryAfterMs = that window, and records nothing', async () => {
    const parts = [part('k', policy(5, 1_000, 'small'), policy(100, 3_600_000, 'big'))];
    const decision = await decide(parts, 6, 'consume', options);
    expect(decision).toMatchObject({ allowed: false, reason: 'limited', policy: { name: 'small' }, retryAfterMs: 1_000 });
    await expect(decide(parts, 5, 'consume', options)).resolves.toMatchObject({ allowed: true, remaining: 0 });
  });

  it('rejects a call without limits with a ConfigError', async () => {
    await expect(decide([part('k')], 1, 'consume', options)).rejects.toThrow(ConfigError);
    await expect(decide([part('k')], 1, 'consume', options)).rejects.toThrow(/needs at least one limit/);
    await expect(decide([], 1, 'consume', options)).rejects.toThrow(/needs at least one limit/);
  });

  it('uses a joined policy list given by the caller, and names the owning part of the deciding limit', async () => {
    const a = part('user:1', policy(5, 1_000, 'a'));
    const b = { id: 'user:1', prefix: 'rl:b:', policies: [policy(1, 1_000, 'b'), policy(9, 60_000, 'c')] };
    const joined = Object.freeze([...a.policies, ...b.policies]);
    const decision = await decide([a, b], 1, 'consume', options, joined);
    expect(decision.policies).toBe(joined);
    expect(decision).toMatchObject({ policy: { name: 'b' }, key: 'user:1', remaining: 0 });
    // Both parts share the id: their keys share one hash tag.
    expect(store.calls[0]!.limits.map((limit) => limit.key)).toEqual([
      limitKey('rl:', 'user:1', 'a'),
      limitKey('rl:b:', 'user:1', 'b'),
      limitKey('rl:b:', 'user:1', 'c'),
    ]);
  });

  it("charges each part its own cost, and refund gives each part's limits back exactly that", async () => {
    const api = { ...part('key:k1', policy(100, 60_000, 'api')), cost: 1 };
    const exportPart = { ...part('key:k1', policy(25, 60_000, 'export')), prefix: 'rl:export:', cost: 10 };
    const plain = part('key:k1', policy(50, 60_000, 'plain')); // no own cost: the call's
    const decision = await decide([api, exportPart, plain], 2, 'consume', options);
    expect(decision).toMatchObject({ allowed: true, remaining: 15, policy: exportPart.policies[0] });
    expect(store.calls[0]!.limits).toEqual([
      { key: limitKey('rl:', 'key:k1', 'api'), windowMs: 60_000, limit: 100, cost: 1 },
      { key: limitKey('rl:export:', 'key:k1', 'export'), windowMs: 60_000, limit: 25, cost: 10 },
      { key: limitKey('rl:', 'key:k1', 'plain'), windowMs: 60_000, limit: 50 },
    ]);
    await expect(decide([api], 1, 'peek', options)).resolves.toMatchObject({ remaining: 98 });
    await expect(decide([plain], 1, 'peek', options)).resolves.toMatchObject({ remaining: 47 });
    await refund(decision, options);
    await expect(decide([api, exportPart, plain], 2, 'peek', options)).resolves.toMatchObject({ allowed: true, remaining: 15 });
    await expect(decide([plain], 1, 'peek', options)).resolves.toMatchObject({ remaining: 49 });
  });

  it('keeps no refund ticket when the limiter cannot refund: refund() is then a no-op', async () => {
    const parts = [part('k', policy(1, 1_000))];
    const decision = await decide(parts, 1, 'consume', { ...options, refundable: false });
    await refund(decision, options);
    expect(store.calls.map((call) => call.method)).toEqual(['consume']);
    await expect(decide(parts, 1, 'consume', options)).resolves.toMatchObject({ allowed: false });
  });

  it('peek records nothing', async () => {
    const parts = [part('k', policy(1, 1_000))];
    for (let i = 0; i < 3; i++) await expect(decide(parts, 1, 'peek', options)).resolves.toMatchObject({ allowed: true, remaining: 0 });
    await expect(decide(parts, 1, 'consume', options)).resolves.toMatchObject({ allowed: true });
    await expect(decide(parts, 1, 'peek', options)).resolves.toMatchObject({ allowed: false, reason: 'limited' });
  });

  it("refund gives back exactly that decision's cost, once, and never a newer entry", async () => {
    const parts = [part('k', policy(10, 1_000))];
    const early = await decide(parts, 3, 'consume', options);
    now += 200;
    const late = await decide(parts, 2, 'consume', options);
    expect(late.remaining).toBe(5);
    await refund(early, options);
    await refund(early, options);
    // 2 units left in the log (the late ones), which leave at t = 200 + 1000.
    const after = await decide(parts, 1, 'peek', options);
    expect(after).toMatchObject({ remaining: 7, resetMs: 1_000 });
    expect(store.calls.filter((call) => call.method === 'refund')).toEqual([{ method: 'refund', limits: store.calls[0]!.limits, cost: 3 }]);
  });

  it('refund is a no-op for blocked, peeked and foreign decisions', async () => {
    const parts = [part('k', policy(1, 1_000))];
    const allowed = await decide(parts, 1, 'consume', options);
    const blocked = await decide(parts, 1, 'consume', options);
    const peeked = await decide(parts, 1, 'peek', options);
    for (const decision of [blocked, peeked, { ...allowed }]) await refund(decision, options);
    expect(store.calls.some((call) => call.method === 'refund')).toBe(false);
    // The spread copy carried no refund ticket: the original still does.
    await refund(allowed, options);
    await expect(decide(parts, 1, 'consume', options)).resolves.toMatchObject({ allowed: true });
  });

  it('keeps refund data off the decision (plain, serialisable value)', async () => {
    const decision = await decide([part('k', policy(1, 1_000))], 1, 'consume', options);
    expect(Object.keys(decision).sort()).toEqual(['allowed', 'key', 'limit', 'nextQuotaMs', 'policies', 'policy', 'reason', 'remaining', 'resetMs', 'retryAfterMs', 'shadow']);
    expect(Object.getOwnPropertySymbols(decision).filter((symbol) => Object.prototype.propertyIsEnumerable.call(decision, symbol))).toEqual([]);
    expect(JSON.parse(JSON.stringify(decision))).toEqual(decision);
    expect({ ...decision }).toStrictEqual(decision);
  });

  it('refunds a frozen decision too, once', async () => {
    const parts = [part('k', policy(2, 1_000))];
    const decision = Object.freeze(await decide(parts, 2, 'consume', options));
    await refund(decision, options);
    await refund(decision, options);
    expect(store.calls.filter((call) => call.method === 'refund')).toHaveLength(1);
    await expect(decide(parts, 2, 'consume', options)).resolves.toMatchObject({ allowed: true });
  });
});

describe('RateLimiter.decide() when the store fails', () => {
  const parts = [part('ip:9.9.9.9', policy(10, 60_000, '1m'), policy(100, 3_600_000, '1h'))];

  it("'open' lets the request through with the reason and the error", async () => {
    const decision = await decide(parts, 1, 'consume', { store: failingStore(), timeoutMs: 100, logger: recordingLogger(), onStoreError: 'open' });
    expect(decision).toMatchObject({ allowed: true, reason: 'store-error', limit: 10, remaining: 10, retryAfterMs: 0, resetMs: 0, key: 'ip:9.9.9.9' });
    expect(decision.policy.name).toBe('1m');
    expect(decision.error).toBeInstanceOf(StoreError);
    expect(decision.error!.message).toMatch(/ECONNREFUSED/);
  });

  it("'closed' refuses the request with a 1 s back-off", async () => {
    const decision = await decide(parts, 1, 'consume', { store: failingStore(), timeoutMs: 100, logger: recordingLogger(), onStoreError: 'closed' });
    expect(decision).toMatchObject({ allowed: false, reason: 'store-error', remaining: 0, retryAfterMs: 1_000 });
  });

  it('a handler chooses per error, and a bad answer from it is a ConfigError', async () => {
    const seen: unknown[] = [];
    const handler = (err: StoreError | StoreTimeoutError) => {
      seen.push(err);
      return 'closed' as const;
    };
    const decision = await decide(parts, 1, 'consume', { store: failingStore(), timeoutMs: 100, logger: recordingLogger(), onStoreError: handler });
    expect(decision.allowed).toBe(false);
    expect(seen).toEqual([decision.error]);
    const bad = () => 'maybe' as never;
    await expect(decide(parts, 1, 'consume', { store: failingStore(), timeoutMs: 100, logger: recordingLogger(), onStoreError: bad })).rejects.toThrow(
      /^onStoreError must return 'open' or 'closed'; got "maybe"$/,
    );
  });

  it('a store that throws synchronously is a store error, not a crash', async () => {
    const store = { ...failingStore(), consume: () => { throw new Error('sync boom'); } };
    const decision = await decide(parts, 1, 'consume', { store, timeoutMs: 100, logger: recordingLogger(), onStoreError: 'open' });
    expect(decision).toMatchObject({ allowed: true, reason: 'store-error' });
  });

  it('holds the timeout budget against a store that never answers (within timeout + 50 ms)', async () => {
    const timeoutMs = 100;
    const store = silentStore();
    const started = performance.now();
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => decide(parts, 1, 'consume', { store, timeoutMs, logger: recordingLogger(), onStoreError: i % 2 === 0 ? 'open' : 'closed' })),
    );
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 1);
    expect(elapsed).toBeLessThan(timeoutMs + 50);
    expect(decisions.map((decision) => [decision.allowed, decision.reason])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i % 2 === 0, 'store-timeout']),
    );
    expect(decisions[0]!.error).toBeInstanceOf(StoreTimeoutError);
  });

  it('logs an outage once when it starts and once when it ends, over 100 failing calls', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const store = recordingStore(memory);
    const logger = recordingLogger();
    const options: StoreCallOptions = { store, timeoutMs: 100, logger, onStoreError: 'open' };
    await decide(parts, 1, 'consume', options);
    store.down = true;
    const during = await Promise.all(Array.from({ length: 100 }, () => decide(parts, 1, 'consume', options)));
    expect(during.every((decision) => decision.allowed && decision.reason === 'store-error')).toBe(true);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] store unavailable \(ERR_RATELOCK_STORE: .*ECONNREFUSED.*\)/);
    store.down = false;
    await decide(parts, 1, 'consume', options); // back: the outage's end, logged once it lasts
    expect(logger.lines).toHaveLength(1);
    // The outage ends after a quiet period without failures (store-call.ts): move Date past it.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + OUTAGE_QUIET_MS);
      for (let i = 0; i < 5; i++) await decide(parts, 1, 'consume', options);
    } finally {
      vi.useRealTimers();
    }
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[1]).toMatch(/^\[ratelock\] store recovered after \d+ ms \(100 failed calls\)$/);
    // Its length runs to the first success, not to the log a quiet period later (a review saw ~1 s added).
    expect(Number(/after (\d+) ms/.exec(logger.lines[1]!)![1])).toBeLessThan(OUTAGE_QUIET_MS / 2);
    memory.close();
  });

  it('refund on a failing store resolves, joins the outage log and asks a handler-form onStoreError', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const store = recordingStore(memory);
    const logger = recordingLogger();
    const seen: unknown[] = [];
    const onStoreError = (err: StoreError | StoreTimeoutError) => {
      seen.push(err);
      return 'closed' as const;
    };
    const options: StoreCallOptions = { store, timeoutMs: 100, logger, onStoreError, refundable: true };
    const decision = await decide(parts, 1, 'consume', options);
    store.down = true;
    await expect(refund(decision, options)).resolves.toBeUndefined();
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] store unavailable/);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(StoreError);
    memory.close();
  });
});

describe('RateLimiter.decideNow(): a store that decides in this process answers at once', () => {
  const parts = [part('user:7', policy(2, 60_000, '1m'))];

  it('MemoryStore: a Decision, not a promise, the same as decide() gives, and decide() still resolves', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const limiter = limiterFor({ store: memory, timeoutMs: 100, logger: recordingLogger(), onStoreError: 'open', refundable: true });
    const first = limiter.decideNow({ parts, cost: 1 }, undefined);
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toMatchObject({ allowed: true, remaining: 1, reason: 'allowed', key: 'user:7' });
    const second = limiter.decide({ parts, cost: 1 }, undefined);
    expect(second).toBeInstanceOf(Promise);
    expect(await second).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.decideNow({ parts, cost: 1 }, undefined)).toMatchObject({ allowed: false, reason: 'limited', remaining: 0 });
    // The refund ticket rides on the synchronous decision too.
    await limiter.refund(first as Decision);
    expect(limiter.decideNow({ parts, cost: 1 }, undefined, 'peek')).toMatchObject({ allowed: true, remaining: 0 });
    memory.close();
  });

  it('a store without the capability is awaited as before (a promise)', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const limiter = limiterFor({ store: recordingStore(memory), timeoutMs: 100, logger: recordingLogger(), onStoreError: 'open' });
    const pending = limiter.decideNow({ parts, cost: 1 }, undefined);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toMatchObject({ allowed: true, remaining: 1 });
    memory.close();
  });

  it('an error thrown in process follows onStoreError; a bad request throws (decide() rejects)', async () => {
    const broken = { ...failingStore(), [decideInProcess]: () => { throw new StoreError('in-process boom'); } };
    const closed = limiterFor({ store: broken, timeoutMs: 100, logger: recordingLogger(), onStoreError: 'closed' });
    const decision = closed.decideNow({ parts, cost: 1 }, undefined);
    expect(decision).toMatchObject({ allowed: false, reason: 'store-error', retryAfterMs: 1_000 });
    expect((decision as Decision).error!.message).toBe('in-process boom');
    const garbage = { ...failingStore(), [decideInProcess]: () => ({ allowed: true, index: 5 }) };
    const open = limiterFor({ store: garbage, timeoutMs: 100, logger: recordingLogger(), onStoreError: 'open' });
    expect(open.decideNow({ parts, cost: 1 }, undefined)).toMatchObject({ allowed: true, reason: 'store-error' });
    expect(() => closed.decideNow({ parts: [part('user:7')], cost: 1 }, undefined)).toThrow(ConfigError);
    await expect(closed.decide({ parts: [part('user:7')], cost: 1 }, undefined)).rejects.toThrow(/needs at least one limit/);
  });
});
