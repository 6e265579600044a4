/**
 * GCRA limits and the penalty box through RateLimiter, on every store (virtual clock): the
 * `algorithm` option (top level and per limit), `burst`, GCRA mixed with a sliding log in one
 * limiter, `block: { after, for }` (reason `'blocked'`, its Retry-After, reset clears it), and the
 * option errors.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { storeKinds, uniqueId } from '../helpers/stores.js';
import { ManualClock, useStore } from '../contract/fixtures.js';

const quiet = { warn: () => undefined };

describe.each(storeKinds)('GCRA and the penalty box on the %s store', (kind) => {
  const clock = new ManualClock();
  const store = useStore(kind, clock);

  it("algorithm: 'gcra' lets a burst through, then one request per window / limit; its policy says so", async () => {
    clock.start();
    const limiter = new RateLimiter({ store: store(), limit: 4, window: '4s', algorithm: 'gcra', prefix: uniqueId('g') + ':', logger: quiet });
    expect(limiter.policies).toEqual([{ name: '4-in-4s-gcra', limit: 4, windowMs: 4_000, algorithm: 'gcra' }]);
    const key = 'client';
    for (let i = 3; i >= 0; i--) expect(await limiter.consume(key)).toMatchObject({ allowed: true, remaining: i, reason: 'allowed' });
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, reason: 'limited', retryAfterMs: 1_000, nextQuotaMs: 1_000, resetMs: 4_000 });
    clock.advance(1_000);
    expect(await limiter.consume(key)).toMatchObject({ allowed: true, remaining: 0 });
    await limiter.reset(key);
    expect(await limiter.peek(key)).toMatchObject({ allowed: true, remaining: 3 });
  });

  it('burst per limit, and a GCRA limit beside a sliding log in one limiter (all or nothing)', async () => {
    clock.start();
    const limiter = new RateLimiter({
      store: store(),
      limits: [
        { limit: 10, window: '1s', algorithm: 'gcra', burst: 2, name: 'rate' },
        { limit: 3, window: '1h', name: 'hourly' },
      ],
      prefix: uniqueId('m') + ':',
      logger: quiet,
    });
    const key = 'client';
    expect(await limiter.consume(key)).toMatchObject({ allowed: true });
    expect(await limiter.consume(key)).toMatchObject({ allowed: true, policy: { name: 'rate' }, remaining: 0 });
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, policy: { name: 'rate' }, retryAfterMs: 100 });
    clock.advance(100);
    // Both limits at 0 left: the lower index decides.
    expect(await limiter.consume(key)).toMatchObject({ allowed: true, policy: { name: 'rate' }, remaining: 0 });
    clock.advance(1_000);
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, policy: { name: 'hourly' } });
    // The refused call took nothing from the GCRA limit: its burst is whole again.
    expect(await limiter.peek(key)).toMatchObject({ allowed: false, policy: { name: 'hourly' } });
  });

  it("block: after N refusals in a row the key is refused for 'for' (reason 'blocked'), without touching its log", async () => {
    clock.start();
    const limiter = new RateLimiter({ store: store(), limit: 1, window: '1m', block: { after: 2, for: '10s' }, prefix: uniqueId('b') + ':', logger: quiet });
    const key = 'client';
    expect(await limiter.consume(key)).toMatchObject({ allowed: true });
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, reason: 'limited', retryAfterMs: 60_000 });
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, reason: 'blocked', retryAfterMs: 10_000, remaining: 0, key, policy: { name: '1-in-1m' } });
    clock.advance(3_000);
    expect(await limiter.consume(key)).toMatchObject({ allowed: false, reason: 'blocked', retryAfterMs: 7_000 });
    expect(await limiter.consume('other')).toMatchObject({ allowed: true });
    await limiter.reset(key); // the log and the box
    expect(await limiter.consume(key)).toMatchObject({ allowed: true });
  });

  it('rejects bad algorithm, burst and block options with a ConfigError naming them', () => {
    const base = { store: store(), logger: quiet };
    expect(() => new RateLimiter({ ...base, limit: 1, window: '1s', algorithm: 'token-bucket' as never })).toThrow(/algorithm must be 'sliding-log'.*'gcra'/);
    expect(() => new RateLimiter({ ...base, limits: [{ limit: 1, window: '1s', burst: 2 }] })).toThrow(/limits\[0\]\.burst applies to algorithm 'gcra' only/);
    expect(() => new RateLimiter({ ...base, limits: [{ limit: 1, window: '1s', algorithm: 'gcra', burst: 0 }] })).toThrow(ConfigError);
    expect(() => new RateLimiter({ ...base, limit: 1, window: '1s', block: { after: 2 } as never })).toThrow(/block\.for is required/);
    expect(() => new RateLimiter({ ...base, limit: 1, window: '1s', block: { after: 0, for: '1s' } })).toThrow(/block\.after must be an integer/);
    expect(() => new RateLimiter({ ...base, limit: 1, window: '1s', block: { for: '1s', forever: true } as never })).toThrow(ConfigError);
  });
});
