import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, StoreError, StoreTimeoutError } from '../../src/core/errors.js';
import { DEFAULTS } from '../../src/core/defaults.js';
import { limitKey } from '../helpers/keys.js';
import { RateLimiter, type RateLimiterOptions } from '../../src/core/rate-limiter.js';
import type { Logger } from '../../src/core/store-call.js';
import { getDefaultStore } from '../../src/stores/default-store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { failingStore, recordingStore, silentStore, type RecordingStore } from './fake-stores.js';

const store = new MemoryStore({ sweepIntervalMs: 0 });
const valid: RateLimiterOptions = { store, limit: 5, window: '1m' };

describe('RateLimiter options', () => {
  it.each<[string, unknown, RegExp]>([
    ['not an object', 5, /^RateLimiter options must be an object like \{ limit: 100, window: '1m' \}; got 5$/],
    ['null', null, /^RateLimiter options must be an object/],
    ['an unknown option', { ...valid, max: 5 }, /^RateLimiter has no option "max": use "limit" \(express-rate-limit's max\); allowed options: store, prefix, timeout, onStoreError, logger, limit, window, limits, mode, algorithm, burst, block$/],
    ['a negative limit', { ...valid, limit: -1 }, /^limit must be an integer from 1 to 1000000000; got -1$/],
    ['a fractional limit', { ...valid, limit: 2.5 }, /^limit must be an integer from 1 to 1000000000; got 2\.5$/],
    ['a NaN limit', { ...valid, limit: Number.NaN }, /^limit must be an integer from 1 to 1000000000; got NaN$/],
    ['a function limit (no request here)', { ...valid, limit: () => 5 }, /^limit must be an integer .* \(a function limit needs a request\); got a function$/],
    ['a bad window', { ...valid, window: '1 week' }, /^window must be a whole number of milliseconds .*; got "1 week"$/],
    ['a window over 24.8 days', { ...valid, window: '30d' }, /^window must be .* from 1 to 2147483647 .*; got "30d"$/],
    ['no limit at all', { store }, /^limit and window are both required/],
    ['both limit and limits', { ...valid, limits: [{ limit: 1, window: '1s' }] }, /^limits cannot be combined with limit\/window/],
    ['empty limits', { store, limits: [] }, /^limits must be a non-empty array .*; got \[\]$/],
    ['non-array limits', { store, limits: 'many' }, /^limits must be a non-empty array .*; got "many"$/],
    ['duplicate limit names', { store, limits: [{ limit: 9, window: '1m' }, { limit: 9, window: '60s' }] }, /^limits\[1\]\.name must differ from limits\[0\]'s: both are named "9-in-1m"/],
    ['a prefix with braces', { ...valid, prefix: 'rl:{x}' }, /^prefix must be a string of at most 64 printable ASCII characters without spaces, '\{' or '\}'; got "rl:\{x\}"$/],
    ['a prefix with a space', { ...valid, prefix: 'rl :' }, /^prefix must be .*; got "rl :"$/],
    ['a non-string prefix', { ...valid, prefix: 42 }, /^prefix must be .*; got 42$/],
    ['a too long prefix', { ...valid, prefix: 'p'.repeat(65) }, /^prefix must be a string of at most 64/],
    ['a zero timeout', { ...valid, timeout: 0 }, /^timeout must be a whole number of milliseconds from 1 .*; got 0$/],
    ['a negative timeout', { ...valid, timeout: -100 }, /^timeout must be .*; got -100$/],
    ['a bad onStoreError', { ...valid, onStoreError: 'ignore' }, /^onStoreError must be 'open', 'closed' or a function returning one of them; got "ignore"$/],
    ['a store without the Store methods', { ...valid, store: { get() {} } }, /^store must be a Store \(e\.g\. new RedisStore\(\{ client \}\) or new MemoryStore\(\)\); got \{\}$/],
    ['a Redis client passed as the store', { ...valid, store: { eval() {}, evalsha() {} } }, /^store must be a Store/],
    ['a logger without warn()', { ...valid, logger: { log() {} } }, /^logger must be an object with a warn\(message\) method \(e\.g\. console\); got \{\}$/],
  ])('rejects %s with a ConfigError naming the option', (_case, options, message) => {
    expect(() => new RateLimiter(options as RateLimiterOptions)).toThrow(ConfigError);
    expect(() => new RateLimiter(options as RateLimiterOptions)).toThrow(message);
  });

  it('accepts durations as ms or strings and exposes the parsed policies', () => {
    const limiter = new RateLimiter({ store, limits: [{ limit: 10, window: 1_000 }, { limit: 500, window: '1h', name: 'hourly' }], timeout: '100ms' });
    expect(limiter.policies).toEqual([
      { name: '10-in-1s', limit: 10, windowMs: 1_000 },
      { name: 'hourly', limit: 500, windowMs: 3_600_000 },
    ]);
    expect(limiter.prefix).toBe(DEFAULTS.prefix);
  });

  it('treats explicit undefined options as omitted', () => {
    const limiter = new RateLimiter({ ...valid, prefix: undefined, timeout: undefined, logger: undefined, onStoreError: undefined, limits: undefined });
    expect(limiter.prefix).toBe('rl:');
  });

  it('warns once, through its logger, when another limiter on the store uses a log name with a different limit', () => {
    const shared = new MemoryStore({ sweepIntervalMs: 0 });
    const lines: string[] = [];
    const logger = { warn: (line: string) => void lines.push(line) };
    new RateLimiter({ store: shared, limits: [{ limit: 5, window: '1m', name: 'api' }], logger });
    new RateLimiter({ store: shared, limits: [{ limit: 50, window: '1m', name: 'api' }], logger });
    new RateLimiter({ store: shared, limits: [{ limit: 500, window: '1m', name: 'api' }], logger });
    new RateLimiter({ store: shared, limit: 50, window: '1m', logger });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[ratelock\] two limiters on one store use the same log "rl:\{…\}:api" with different limits \(5 per 1m; 50 per 1m\)/);
  });

  it('uses the process-wide MemoryStore when no store is given', async () => {
    const limiter = new RateLimiter({ limit: 1, window: '1m', prefix: 'default-store-test:' });
    await limiter.consume('k');
    const key = limitKey('default-store-test:', 'k', '1-in-1m');
    await expect(getDefaultStore().peek([{ key, windowMs: 60_000, limit: 1 }], 1)).resolves.toMatchObject({ allowed: false });
    expect(getDefaultStore()).toBe(getDefaultStore());
  });
});

describe('RateLimiter on MemoryStore (virtual clock)', () => {
  let now: number;
  let memory: MemoryStore;
  let recorded: RecordingStore;
  let limiter: RateLimiter;

  beforeEach(() => {
    now = 5_000_000;
    memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    recorded = recordingStore(memory);
    limiter = new RateLimiter({ store: recorded, limits: [{ limit: 3, window: '1s' }, { limit: 5, window: '1m' }] });
  });

  afterEach(() => memory.close());

  it('consume takes one unit from every limit, all or nothing, one store call each', async () => {
    const allowed = [];
    for (let i = 0; i < 7; i++) {
      allowed.push((await limiter.consume('user:1')).allowed);
      now += 400;
    }
    // 1 s limit: 3 per second; the 1 m limit (5) then blocks the 6th and 7th.
    expect(allowed).toEqual([true, true, true, true, true, false, false]);
    expect(recorded.calls.map((call) => call.method)).toEqual(Array(7).fill('consume'));
    const blocked = await limiter.consume('user:1');
    expect(blocked).toMatchObject({ allowed: false, key: 'user:1', policy: { name: '5-in-1m' }, limit: 5, retryAfterMs: 60_000 - 7 * 400 });
  });

  it('consume with a cost takes that many units; a cost above a limit is always blocked', async () => {
    await expect(limiter.consume('k', { cost: 3 })).resolves.toMatchObject({ allowed: true, remaining: 0, policy: { name: '3-in-1s' } });
    await expect(limiter.consume('k', { cost: 4 })).resolves.toMatchObject({ allowed: false, retryAfterMs: 1_000, policy: { name: '3-in-1s' } });
    now += 1_000;
    await expect(limiter.consume('k', { cost: 2 })).resolves.toMatchObject({ allowed: true, remaining: 0, policy: { name: '5-in-1m' } });
  });

  it('rejects bad keys and consume options with a ConfigError', async () => {
    await expect(limiter.consume('')).rejects.toThrow(/^key must be a non-empty string \(e\.g\. 'user:42'\); got ""$/);
    await expect(limiter.consume(42 as never)).rejects.toThrow(ConfigError);
    await expect(limiter.peek(undefined as never)).rejects.toThrow(/^key must be a non-empty string/);
    await expect(limiter.consume('k', { cost: 0 })).rejects.toThrow(/^cost must be an integer from 1 to 10000; got 0$/);
    await expect(limiter.consume('k', { cost: -3 })).rejects.toThrow(/^cost must be an integer .*; got -3$/);
    await expect(limiter.consume('k', { cost: 10_001 })).rejects.toThrow(/^cost must be an integer from 1 to 10000; got 10001$/);
    await expect(limiter.consume('k', { weight: 2 } as never)).rejects.toThrow(/^consume\(\) has no option "weight"; allowed options: cost$/);
    expect(recorded.calls).toEqual([]);
  });

  it('peek records nothing', async () => {
    for (let i = 0; i < 5; i++) await expect(limiter.peek('k')).resolves.toMatchObject({ allowed: true, remaining: 2 });
    await limiter.consume('k', { cost: 3 });
    await expect(limiter.peek('k')).resolves.toMatchObject({ allowed: false, reason: 'limited' });
  });

  it('peek takes a cost: what a request of that cost would get now', async () => {
    await limiter.consume('p', { cost: 1 });
    await expect(limiter.peek('p', { cost: 2 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
    await expect(limiter.peek('p', { cost: 3 })).resolves.toMatchObject({ allowed: false, reason: 'limited' });
    await expect(limiter.peek('p', { cost: 0 })).rejects.toThrow(/^cost must be an integer/);
    await expect(limiter.peek('p', { weight: 1 } as never)).rejects.toThrow(/^peek\(\) has no option "weight"/);
  });

  it('reset deletes every limit of the key and nothing else', async () => {
    await limiter.consume('a', { cost: 3 });
    await limiter.consume('b', { cost: 3 });
    await limiter.reset('a');
    expect(recorded.calls.at(-1)!.limits.map((limit) => limit.key)).toEqual([limitKey('rl:', 'a', '3-in-1s'), limitKey('rl:', 'a', '5-in-1m')]);
    await expect(limiter.consume('a', { cost: 3 })).resolves.toMatchObject({ allowed: true });
    await expect(limiter.consume('b')).resolves.toMatchObject({ allowed: false });
  });

  it('refund gives back that decision, once', async () => {
    const decision = await limiter.consume('k', { cost: 3 });
    await limiter.refund(decision);
    await limiter.refund(decision);
    await expect(limiter.peek('k')).resolves.toMatchObject({ allowed: true, remaining: 2 });
    await limiter.consume('k', { cost: 3 });
    await expect(limiter.peek('k')).resolves.toMatchObject({ allowed: false });
  });

  it('refund rejects what is not a decision with a ConfigError; a decision without a ticket (a copy) is a no-op', async () => {
    for (const bad of [null, undefined, 'decision', 42, {}, { allowed: true }]) {
      await expect(limiter.refund(bad as never)).rejects.toThrow(ConfigError);
      await expect(limiter.refund(bad as never)).rejects.toThrow(/refund\(decision\) needs a decision returned by consume\(\)/);
    }
    await expect(limiter.refund({ ...(await limiter.consume('copy')) })).resolves.toBeUndefined();
  });
});

describe('RateLimiter when the store fails', () => {
  const quiet: Logger = { warn: () => {} };

  it("fails open by default, with the reason, within the timeout", async () => {
    const limiter = new RateLimiter({ store: silentStore(), limit: 5, window: '1m', timeout: 50, logger: quiet });
    const started = performance.now();
    const decision = await limiter.consume('k');
    expect(performance.now() - started).toBeLessThan(50 + 50);
    expect(decision).toMatchObject({ allowed: true, reason: 'store-timeout', remaining: 5 });
    expect(decision.error).toBeInstanceOf(StoreTimeoutError);
  });

  it("fails closed when asked, and a handler sees the error", async () => {
    const closed = new RateLimiter({ store: failingStore(), limit: 5, window: '1m', onStoreError: 'closed', logger: quiet });
    await expect(closed.consume('k')).resolves.toMatchObject({ allowed: false, reason: 'store-error', retryAfterMs: DEFAULTS.storeErrorRetryAfterMs });
    const errors: unknown[] = [];
    const chooser = new RateLimiter({
      store: failingStore(),
      limit: 5,
      window: '1m',
      logger: quiet,
      onStoreError: (err) => {
        errors.push(err);
        return 'closed';
      },
    });
    await expect(chooser.peek('k')).resolves.toMatchObject({ allowed: false, reason: 'store-error' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StoreError);
  });

  it('reset rejects with the store error (an explicit operation must not fail silently)', async () => {
    const limiter = new RateLimiter({ store: failingStore(), limit: 5, window: '1m', logger: quiet });
    await expect(limiter.reset('k')).rejects.toThrow(StoreError);
    const slow = new RateLimiter({ store: silentStore(), limit: 5, window: '1m', timeout: 30, logger: quiet });
    await expect(slow.reset('k')).rejects.toThrow(StoreTimeoutError);
  });
});
