/**
 * `rateLimit()` over HTTP, the same cases on Express 5/4, Koa 3/2, Fastify and Hono: headers per
 * mode, Retry-After, status/message variants, hooks, skip, refund, dynamic limits and costs,
 * default IP keying with and without a trusted proxy, and the exposed Decision.
 *
 * Stores are MemoryStores with a virtual clock held still, so every time figure is exact.
 */
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { limitKey } from '../helpers/keys.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { stillStore } from './support/still-store.js';
import { frameworks, recordingLogger } from './frameworks.js';

/** Quota left now for id `k` under the default prefix and a 1-minute limit of `limit` (its log: `<limit>-in-1m`). */
async function remainingFor(store: MemoryStore, limit: number, id = 'k'): Promise<number> {
  const result = await store.peek([{ key: limitKey('rl:', id, `${limit}-in-1m`), windowMs: 60_000, limit }], 1);
  // peek answers for a hypothetical request of cost 1: when it would pass, `remaining` is after it.
  return result.allowed ? result.remaining + 1 : result.remaining;
}

const fixedKey = () => 'k';

describe.each(frameworks)('rateLimit on $name', (fw) => {
  describe('headers', () => {
    it("writes draft-10 by default: RateLimit-Policy per policy and RateLimit for the deciding one", async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 3, window: '1m' })]);
      const first = await request(app).get('/hello');
      expect(first.status).toBe(200);
      expect(first.headers['ratelimit-policy']).toBe('"3-in-1m";q=3;w=60');
      expect(first.headers['ratelimit']).toBe('"3-in-1m";r=2;t=60');
      expect(first.headers['retry-after']).toBeUndefined();
    });

    it('lists every limit of the call in RateLimit-Policy and names the closest to blocking in RateLimit', async () => {
      const { store } = stillStore();
      const limits = [
        { limit: 5, window: '1s' },
        { limit: 2, window: '1h', name: 'hourly' },
      ];
      const app = fw.app([fw.rateLimit({ store, limits })]);
      const response = await request(app).get('/hello');
      expect(response.headers['ratelimit-policy']).toBe('"5-in-1s";q=5;w=1, "hourly";q=2;w=3600');
      expect(response.headers['ratelimit']).toBe('"hourly";r=1;t=3600');
    });

    it.each([
      ['draft-7', { 'ratelimit-policy': '3;w=60', ratelimit: 'limit=3, remaining=2, reset=60' }],
      [
        'draft-6',
        { 'ratelimit-policy': '3;w=60', 'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': '60' },
      ],
      ['legacy', { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '60' }],
    ] as const)('writes %s headers', async (mode, expected) => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 3, window: '1m', headers: mode })]);
      const response = await request(app).get('/hello');
      expect(response.status).toBe(200);
      for (const [name, value] of Object.entries(expected)) expect(response.headers[name], name).toBe(value);
      const written = Object.keys(response.headers).filter((name) => name.includes('ratelimit'));
      expect(written.sort()).toEqual(Object.keys(expected).sort());
    });

    it('writes no quota headers with headers: false, but still Retry-After on a 429', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', headers: false })]);
      const allowed = await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      for (const response of [allowed, limited]) {
        expect(Object.keys(response.headers).filter((name) => name.includes('ratelimit'))).toEqual([]);
      }
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('60');
    });
  });

  describe('limited responses', () => {
    it('answers 429 with Retry-After in whole seconds rounded up, and reset = Retry-After', async () => {
      const { store, clock } = stillStore();
      let last: Decision | undefined;
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1500ms', onDecision: (_req: unknown, d: Decision) => void (last = d) })]);
      await request(app).get('/hello');
      clock.now += 1; // 1499 ms left: 1.499 s → 2 s
      const limited = await request(app).get('/hello');
      expect(limited.status).toBe(429);
      expect(last?.retryAfterMs).toBe(1499);
      expect(limited.headers['retry-after']).toBe('2');
      expect(limited.headers['ratelimit']).toBe('"1-in-1500ms";r=0;t=2');
      clock.now += 1000; // 499 ms left → still at least 1 s
      const later = await request(app).get('/hello');
      expect(later.headers['retry-after']).toBe('1');
      clock.now += 499;
      expect((await request(app).get('/hello')).status).toBe(200);
    });

    it('sends a problem+json quota-exceeded body by default', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m' })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(limited.text)).toEqual({
        type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
        title: 'Quota Exceeded',
        status: 429,
        detail: 'Quota of policy "1-in-1m" exceeded (1 per 1m); retry in 60 s.',
        'violated-policies': ['1-in-1m'],
      });
    });

    it('uses statusCode and a text message', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', statusCode: 503, message: 'slow down' })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.status).toBe(503);
      expect(limited.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(limited.text).toBe('slow down');
      expect(limited.headers['retry-after']).toBe('60');
    });

    it('sends an object message as JSON', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', message: { error: 'rate_limited' } })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(limited.body).toEqual({ error: 'rate_limited' });
    });

    it('calls a message function with the request and the decision (async allowed)', async () => {
      const { store } = stillStore();
      const message = vi.fn(async (req: unknown, decision: Decision) => ({ path: fw.path(req), retryAfterMs: decision.retryAfterMs }));
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', message })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.body).toEqual({ path: '/hello', retryAfterMs: 60_000 });
      expect(message).toHaveBeenCalledTimes(1);
    });

    it.each([undefined, null, 42])('falls back to the default 429 body when a message function returns %s', async (value) => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', message: () => value as never })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('60');
      expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    });

    it('lets onLimited send its own response (headers already set)', async () => {
      const { store } = stillStore();
      const onLimited = fw.onLimitedAnswering(403, (decision) => ({ custom: decision.policy.name }));
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', onLimited })]);
      await request(app).get('/hello');
      const limited = await request(app).get('/hello');
      expect(limited.status).toBe(403);
      expect(limited.body).toEqual({ custom: '1-in-1m' });
      expect(limited.headers['retry-after']).toBe('60');
      expect(limited.headers['ratelimit']).toBe('"1-in-1m";r=0;t=60');
    });

    it('sends the default 429 after an onLimited that sends nothing', async () => {
      const { store } = stillStore();
      const onLimited = vi.fn();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', onLimited })]);
      await request(app).get('/hello');
      expect(onLimited).not.toHaveBeenCalled();
      const limited = await request(app).get('/hello');
      expect(limited.status).toBe(429);
      expect(limited.headers['content-type']).toBe('application/problem+json');
      expect(onLimited).toHaveBeenCalledTimes(1);
      const decision = onLimited.mock.calls[0]![fw.onLimitedDecisionArg] as Decision;
      expect(decision.allowed).toBe(false);
    });
  });

  describe('hooks and exposure', () => {
    it('exposes the decision (req.rateLimit / ctx.state.rateLimit / request.rateLimit / c.get) and passes it to onDecision', async () => {
      const { store } = stillStore();
      const onDecision = vi.fn();
      const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', onDecision })]);
      const response = await request(app).get('/decision');
      expect(response.body.decision).toEqual({
        allowed: true,
        limit: 2,
        remaining: 1,
        resetMs: 60_000,
        nextQuotaMs: 60_000,
        retryAfterMs: 0,
        key: 'ip:127.0.0.1',
        policy: { name: '2-in-1m', limit: 2, windowMs: 60_000 },
        policies: [{ name: '2-in-1m', limit: 2, windowMs: 60_000 }],
        reason: 'allowed',
        shadow: false,
      });
      expect(onDecision).toHaveBeenCalledTimes(1);
      const [req, decision] = onDecision.mock.calls[0]!;
      expect(fw.path(req)).toBe('/decision');
      expect(decision).toMatchObject({ allowed: true, remaining: 1 });
    });

    it('skips requests for which skip() is true: no store call, no headers, no quota used', async () => {
      const { store } = stillStore();
      const consume = vi.spyOn(store, 'consume');
      const skip = (req: unknown) => fw.header(req, 'x-skip') === 'yes';
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key: fixedKey, skip })]);
      for (let i = 0; i < 3; i++) {
        const skipped = await request(app).get('/hello').set('x-skip', 'yes');
        expect(skipped.status).toBe(200);
        expect(skipped.headers['ratelimit']).toBeUndefined();
      }
      expect(consume).not.toHaveBeenCalled();
      expect(await remainingFor(store, 1)).toBe(1);
      expect((await request(app).get('/hello')).status).toBe(200);
      expect((await request(app).get('/hello')).status).toBe(429);
    });

    it('accepts an async skip()', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', skip: async () => true })]);
      for (let i = 0; i < 3; i++) expect((await request(app).get('/hello')).status).toBe(200);
    });
  });

  describe('refund', () => {
    it("'success' gives back the cost of responses below 400 only", async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: fixedKey, refund: 'success' })]);
      expect((await request(app).get('/status/200')).status).toBe(200);
      await vi.waitFor(async () => expect(await remainingFor(store, 2)).toBe(2));
      expect((await request(app).get('/status/500')).status).toBe(500);
      expect((await request(app).get('/status/404')).status).toBe(404);
      expect((await request(app).get('/status/200')).status).toBe(429);
      expect(await remainingFor(store, 2)).toBe(0);
    });

    it("'failure' gives back the cost of responses from 400 up only", async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: fixedKey, refund: 'failure' })]);
      expect((await request(app).get('/status/503')).status).toBe(503);
      await vi.waitFor(async () => expect(await remainingFor(store, 2)).toBe(2));
      expect((await request(app).get('/status/201')).status).toBe(201);
      expect(await remainingFor(store, 2)).toBe(1);
    });

    it('asks a refund predicate after the response', async () => {
      const { store } = stillStore();
      const refund = fw.refundOnStatus(202);
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key: fixedKey, refund })]);
      for (let i = 0; i < 3; i++) {
        expect((await request(app).get('/status/202')).status).toBe(202);
        await vi.waitFor(async () => expect(await remainingFor(store, 1)).toBe(1));
      }
      expect((await request(app).get('/status/200')).status).toBe(200);
      expect((await request(app).get('/status/202')).status).toBe(429);
    });
  });

  describe('dynamic limit and cost', () => {
    it('evaluates limit(req) per request', async () => {
      const { store } = stillStore();
      const limit = async (req: unknown) => (fw.header(req, 'x-tier') === 'gold' ? 3 : 1);
      const app = fw.app([fw.rateLimit({ store, limit, window: '1m', key: (req: unknown) => fw.header(req, 'x-user') })]);
      expect((await request(app).get('/hello').set('x-user', 'a')).status).toBe(200);
      expect((await request(app).get('/hello').set('x-user', 'a')).status).toBe(429);
      for (let i = 0; i < 3; i++) {
        const response = await request(app).get('/hello').set('x-user', 'b').set('x-tier', 'gold');
        expect(response.status).toBe(200);
        expect(response.headers['ratelimit-policy']).toBe('"1m";q=3;w=60');
      }
      expect((await request(app).get('/hello').set('x-user', 'b').set('x-tier', 'gold')).status).toBe(429);
    });

    it('takes cost(req) units per request', async () => {
      const { store } = stillStore();
      const app = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', key: fixedKey, cost: () => 2 })]);
      expect((await request(app).get('/hello')).headers['ratelimit']).toBe('"5-in-1m";r=3;t=60');
      expect((await request(app).get('/hello')).headers['ratelimit']).toBe('"5-in-1m";r=1;t=60');
      expect((await request(app).get('/hello')).status).toBe(429);
    });

    it.each([
      ['limit', { limit: () => -1, window: '1m' }, 'limit must be an integer from 1 to 1000000000; got -1'],
      ['limit (NaN, async)', { limit: async () => Number.NaN, window: '1m' }, 'limit must be an integer from 1 to 1000000000; got NaN'],
      ['cost', { limit: 5, window: '1m', cost: () => 0 }, 'cost must be an integer from 1 to 10000; got 0'],
      ['cost (string)', { limit: 5, window: '1m', cost: () => '2' }, 'cost must be an integer from 1 to 10000; got "2"'],
      ['cost (above 10 000)', { limit: 5, window: '1m', cost: async () => 10_001 }, 'cost must be an integer from 1 to 10000; got 10001'],
    ])('turns a bad %s callback value into a 500 ConfigError on the error path', async (_name, options, message) => {
      const { store } = stillStore();
      const consume = vi.spyOn(store, 'consume');
      const app = fw.app([fw.rateLimit({ store, ...options })]);
      const response = await request(app).get('/hello');
      expect(response.status).toBe(500);
      expect(response.body).toEqual({ code: 'ERR_RATELOCK_CONFIG', name: 'ConfigError', message });
      expect(consume).not.toHaveBeenCalled();
    });

    it('sends a throwing key extractor to the error path', async () => {
      const { store } = stillStore();
      const key = () => {
        throw new Error('no session');
      };
      const app = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', key })]);
      const response = await request(app).get('/hello');
      expect(response.status).toBe(500);
      expect(response.body.message).toBe('no session');
    });
  });

  describe('keys', () => {
    it('keys by client IP by default and ignores X-Forwarded-For when no proxy is trusted', async () => {
      const { store } = stillStore();
      const logger = recordingLogger();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', logger })]);
      expect((await request(app).get('/hello').set('x-forwarded-for', '203.0.113.1')).status).toBe(200);
      const spoofed = await request(app).get('/decision').set('x-forwarded-for', '203.0.113.2');
      expect(spoofed.status).toBe(429);
    });

    it('keys by the proxied client address when one proxy hop is trusted', async () => {
      const { store } = stillStore();
      const logger = recordingLogger();
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', logger })], { trustProxyHops: 1 });
      const first = await request(app).get('/decision').set('x-forwarded-for', '203.0.113.1');
      expect(first.body.decision.key).toBe('ip:203.0.113.1');
      expect((await request(app).get('/hello').set('x-forwarded-for', '203.0.113.2')).status).toBe(200);
      expect((await request(app).get('/hello').set('x-forwarded-for', '203.0.113.1')).status).toBe(429);
      // With one trusted hop the client's own leftmost entries are not believed.
      expect((await request(app).get('/hello').set('x-forwarded-for', '198.51.100.9, 203.0.113.1')).status).toBe(429);
    });

    it('uses the first key extractor of a list that yields', async () => {
      const { store } = stillStore();
      const key = [(req: unknown) => fw.header(req, 'x-api-key'), () => 'fallback'];
      const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key })]);
      const withKey = await request(app).get('/decision').set('x-api-key', 'abc');
      expect(withKey.body.decision.key).toBe('abc');
      const without = await request(app).get('/decision');
      expect(without.body.decision.key).toBe('fallback');
    });
  });
});
