/**
 * Shadow mode in core, on every store (MemoryStore, Redis, Cluster; virtual clock): a shadow
 * limiter decides and records exactly what an enforcing one does — the same decisions, `shadow`
 * aside, and the same log — and a request meeting both shadow and enforced parts (a route table
 * whose rules differ in `mode`) is decided by the enforced parts alone, while the shadow parts
 * decide and record as a limiter of their own would.
 */
import { describe, expect, it } from 'vitest';
import type { Decision, Policy } from '../../src/core/decision.js';
import { RateLimiter, requestRateLimiter } from '../../src/core/rate-limiter.js';
import { type LimitPart } from '../../src/core/store-keys.js';
import { RedisStore } from '../../src/stores/redis.js';
import { limitKey } from '../helpers/keys.js';
import { decodeBatch, recordingClient, scriptCalls } from '../helpers/recording-redis.js';
import { storeKinds, uniqueId } from '../helpers/stores.js';
import { ManualClock, entriesIn, useStore } from '../contract/fixtures.js';

const quiet = { warn: () => undefined };

/** What must match between an enforcing and a shadow limiter: everything but `shadow`. */
function comparable(decision: Decision): Omit<Decision, 'shadow'> {
  const { shadow: _shadow, ...rest } = decision;
  return rest;
}

describe.each(storeKinds)('shadow mode on the %s store', (kind) => {
  const clock = new ManualClock();
  const store = useStore(kind, clock);

  it('a shadow RateLimiter makes every decision an enforcing one makes, marked shadow, and records the same', async () => {
    clock.start();
    const options = { store: store(), limits: [{ limit: 2, window: '1s' }, { limit: 3, window: '1m', name: 'minute' }], logger: quiet };
    const enforcing = new RateLimiter({ ...options, prefix: 'enf:' });
    const shadow = new RateLimiter({ ...options, prefix: 'shd:', mode: 'shadow' });
    expect(shadow.mode).toBe('shadow');
    const key = uniqueId('client');
    const steps = [0, 10, 10, 1_000, 5, 5, 400];
    for (const [i, advance] of steps.entries()) {
      clock.advance(advance);
      const cost = i === 4 ? 2 : 1;
      const [expected, actual] = [await enforcing.consume(key, { cost }), await shadow.consume(key, { cost })];
      expect(actual.shadow).toBe(true);
      expect(expected.shadow).toBe(false);
      expect(comparable(actual)).toEqual(comparable(expected));
    }
    // The same log: enforcing and shadow recorded the same entries (refused requests: nothing).
    for (const [name, windowMs] of [['2-in-1s', 1_000], ['minute', 60_000]] as const) {
      expect(await entriesIn(store(), { key: limitKey('shd:', key, name), windowMs, limit: 1 })).toBe(
        await entriesIn(store(), { key: limitKey('enf:', key, name), windowMs, limit: 1 }),
      );
    }
    expect(await shadow.peek(key)).toMatchObject({ allowed: false, shadow: true, reason: 'limited' });
  });

  describe('a request with shadow and enforced parts (route rules of both modes)', () => {
    const policy = (name: string, limit: number, windowMs = 60_000): Policy => ({ name, limit, windowMs });
    const limiter = () => requestRateLimiter({ store: store(), prefix: 'rl:', timeoutMs: 1_000, onStoreError: 'open', logger: quiet, refundable: true });
    function parts(id: string, enforcedQuota: number, shadowQuota: number): LimitPart[] {
      return [
        { id, prefix: 'rl:enforced:', policies: [policy('enforced', enforcedQuota)] },
        { id, prefix: 'rl:shadow:', policies: [policy('shadow', shadowQuota)], shadow: true },
      ];
    }
    const entries = (id: string, part: 'enforced' | 'shadow') => entriesIn(store(), { key: limitKey(`rl:${part}:`, id, part), windowMs: 60_000, limit: 1 });

    it('lets the request through while only the shadow rule is over, recording it in the enforced rule only', async () => {
      clock.start();
      const id = uniqueId('mixed');
      const decisions: Decision[] = [];
      for (let i = 0; i < 4; i++) decisions.push(await limiter().decide({ parts: parts(id, 10, 2), cost: 1 }, undefined));
      // 1st: both allow, the shadow rule is closer to blocking (1 left against 9).
      expect(decisions[0]).toMatchObject({ allowed: true, shadow: true, policy: { name: 'shadow' }, remaining: 1 });
      expect(decisions[0]!.enforced).toMatchObject({ allowed: true, shadow: false, policy: { name: 'enforced' }, remaining: 9 });
      // 3rd and 4th: the shadow rule is over (what it would refuse), the enforced one lets through.
      for (const decision of decisions.slice(2)) {
        expect(decision).toMatchObject({ allowed: false, shadow: true, reason: 'limited', policy: { name: 'shadow' } });
        expect(decision.enforced).toMatchObject({ allowed: true, shadow: false, policies: [{ name: 'enforced' }] });
      }
      expect(decisions[3]!.enforced!.remaining).toBe(6);
      expect(await entries(id, 'enforced')).toBe(4);
      expect(await entries(id, 'shadow')).toBe(2); // a shadow rule records what it would admit
    });

    it('refuses by the enforced rule alone (its decision, its Retry-After), the shadow rule deciding on its own', async () => {
      clock.start();
      const id = uniqueId('mixed');
      await limiter().decide({ parts: parts(id, 1, 5), cost: 1 }, undefined);
      clock.advance(100);
      const refused = await limiter().decide({ parts: parts(id, 1, 5), cost: 1 }, undefined);
      expect(refused).toMatchObject({ allowed: false, shadow: false, reason: 'limited', policy: { name: 'enforced' }, retryAfterMs: 59_900 });
      expect(refused.enforced).toBeUndefined();
      expect(await entries(id, 'enforced')).toBe(1);
      expect(await entries(id, 'shadow')).toBe(2);
    });

    it('a refund gives back what both parts recorded, once', async () => {
      clock.start();
      const id = uniqueId('mixed');
      const rl = limiter();
      const shadowDecides = await rl.decide({ parts: parts(id, 10, 3), cost: 1 }, undefined);
      expect(shadowDecides.shadow).toBe(true);
      const enforcedDecides = await rl.decide({ parts: parts(id, 3, 10), cost: 1 }, undefined);
      expect(enforcedDecides.shadow).toBe(false);
      expect([await entries(id, 'enforced'), await entries(id, 'shadow')]).toEqual([2, 2]);
      await rl.refund(shadowDecides);
      await rl.refund(enforcedDecides);
      await rl.refund(shadowDecides);
      await rl.refund(shadowDecides.enforced!);
      expect([await entries(id, 'enforced'), await entries(id, 'shadow')]).toEqual([0, 0]);
    });
  });
});

describe('a request with shadow and enforced parts, on RedisStore', () => {
  it('starts both store calls in the same turn: one script call carries the two decisions', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limiter = requestRateLimiter({ store, prefix: 'rl:', timeoutMs: 1_000, onStoreError: 'open', logger: quiet, refundable: false });
    const policies = [{ name: '1m', limit: 5, windowMs: 60_000 }];
    const decision = await limiter.decide(
      { parts: [{ id: 'a', prefix: 'rl:on:', policies }, { id: 'a', prefix: 'rl:shadow:', policies, shadow: true }], cost: 1 },
      undefined,
    );
    expect(decision.allowed).toBe(true);
    const calls = scriptCalls(client.sent);
    expect(calls).toHaveLength(1);
    expect(decodeBatch(calls[0]!.args).decisions.map(({ kind, keys }) => [kind, keys])).toEqual([
      ['c', [limitKey('rl:on:', 'a', '1m')]],
      ['c', [limitKey('rl:shadow:', 'a', '1m')]],
    ]);
  });
});
